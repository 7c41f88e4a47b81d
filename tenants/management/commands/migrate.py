"""`manage.py migrate` runs as the owner role (MIGRATION_DATABASE_URL) by default.

The app role may not create or alter tables; the owner does, and its
migrations grant the app role what it needs. `--database default` still works
for a deliberate check that the app role cannot migrate.
"""

from django.core.management.commands.migrate import Command as DjangoMigrateCommand

from tenants.constants import OWNER_DATABASE
from tenants.management.base import RefusalsExit2


class Command(RefusalsExit2, DjangoMigrateCommand):
    help = (
        "Apply migrations as the owner role."
        " Exit status: 0 applied (or nothing to apply), 2 refused (unknown app or migration,"
        " a migration that stops with its reason)."
    )

    def add_arguments(self, parser):
        super().add_arguments(parser)
        parser.set_defaults(database=OWNER_DATABASE)
