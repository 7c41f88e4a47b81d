"""`manage.py showmigrations` reads the migration history as the owner role by default.

The app role (DATABASE_URL) holds no privilege on django_migrations
(tenants.catalog.privileges), so Django's default connection cannot answer it.
"""

from django.core.management.commands.showmigrations import Command as DjangoShowmigrationsCommand

from tenants.constants import OWNER_DATABASE


class Command(DjangoShowmigrationsCommand):
    def add_arguments(self, parser):
        super().add_arguments(parser)
        parser.set_defaults(database=OWNER_DATABASE)
