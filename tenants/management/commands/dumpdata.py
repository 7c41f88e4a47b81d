"""`manage.py dumpdata` runs as the owner role by default, as `migrate` does.

On the app role's connection the router keeps every model away
(tenants.database.routers: the app role owns nothing and sees a tenant's rows
only inside that tenant's context), so Django's dumpdata there did nothing and
said so as a success ("[]", "Installed 0 object(s)"). The owner holds
rls_bypass_role: every tenant's rows, as a Django user expects. Naming
`--database default` is refused with that reason.
"""

from django.core.management.base import CommandError
from django.core.management.commands.dumpdata import Command as DjangoDumpdataCommand
from django.db import DEFAULT_DB_ALIAS

from tenants.constants import OWNER_DATABASE
from tenants.management.base import EXIT_REFUSED, RefusalsExit2

APP_ROLE_REFUSAL = (
    "dumpdata on the app role's connection ('default') would see no rows: it owns no table and reads a "
    "tenant's rows only inside that tenant's context (RLS). Use the owner connection (the default: "
    "drop --database, or pass --database owner)."
)


class Command(RefusalsExit2, DjangoDumpdataCommand):
    help = (
        "Django's dumpdata, as the owner role (every tenant's rows). "
        "Exit status: 0 done, 2 refused (unknown model or fixture, the app role's connection)."
    )

    def add_arguments(self, parser):
        super().add_arguments(parser)
        parser.set_defaults(database=OWNER_DATABASE)

    def handle(self, *args, **options):
        if options.get("database") == DEFAULT_DB_ALIAS:
            raise CommandError(APP_ROLE_REFUSAL, returncode=EXIT_REFUSED)
        return super().handle(*args, **options)
