"""`manage.py loaddata` runs as the owner role by default, as `migrate` does.

On the app role's connection the router keeps every model away
(tenants.database.routers: the app role owns nothing and sees a tenant's rows
only inside that tenant's context), so Django's loaddata there did nothing and
said so as a success ("[]", "Installed 0 object(s)"). The owner holds
rls_bypass_role: every tenant's rows, as a Django user expects. Naming
`--database default` is refused with that reason.
"""

from django.core.management.commands.loaddata import Command as DjangoLoaddataCommand

from tenants.management.base import OnOwnerConnection, RefusalsExit2


class Command(RefusalsExit2, OnOwnerConnection, DjangoLoaddataCommand):
    command_name = "loaddata"
    help = (
        "Django's loaddata, as the owner role (every tenant's rows). "
        "Exit status: 0 done, 2 refused (unknown model or fixture, the app role's connection)."
    )
