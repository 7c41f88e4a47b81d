"""`manage.py sqlmigrate` reads the catalog as the owner role by default, as `migrate` runs.

The printed SQL is what `migrate` would run on that connection; nothing is
executed (every operation writes through `schema_editor.execute()`). The app
role could not answer it anyway: it holds no privilege on django_migrations
(tenants.catalog.privileges).
"""

from django.core.management.commands.sqlmigrate import Command as DjangoSqlMigrateCommand

from tenants.constants import OWNER_DATABASE
from tenants.management.base import RefusalsExit2


class Command(RefusalsExit2, DjangoSqlMigrateCommand):
    help = (
        "Print the SQL of a migration as the owner role would run it; runs nothing."
        " Exit status: 0 printed, 2 refused (unknown app or migration)."
    )

    def add_arguments(self, parser):
        super().add_arguments(parser)
        parser.set_defaults(database=OWNER_DATABASE)
