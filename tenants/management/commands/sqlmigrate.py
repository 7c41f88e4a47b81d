"""`manage.py sqlmigrate` reads the catalog as the owner role by default, as `migrate` runs.

The printed SQL is what `migrate` would run on that connection; nothing is
executed (every operation writes through `schema_editor.execute()`). The app
role could not answer it anyway: it holds no privilege on django_migrations
(tenants.catalog.privileges).
"""

from django.core.management.commands.sqlmigrate import Command as DjangoSqlMigrateCommand

from tenants.constants import OWNER_DATABASE


class Command(DjangoSqlMigrateCommand):
    def add_arguments(self, parser):
        super().add_arguments(parser)
        parser.set_defaults(database=OWNER_DATABASE)
