"""`manage.py sqlmigrate` reads the migration history as the owner role by default.

The app role (DATABASE_URL) holds no privilege on django_migrations
(tenants.privileges), so Django's default connection cannot answer it.
"""

from django.core.management.commands.sqlmigrate import Command as DjangoSqlmigrateCommand

from tenants.routers import STAFF_DATABASE


class Command(DjangoSqlmigrateCommand):
    def add_arguments(self, parser):
        super().add_arguments(parser)
        parser.set_defaults(database=STAFF_DATABASE)
