"""`tenant_row_counts`: 'table tenant_id rows' for every tenant table, as the owner (past the
policies). The same lines `make backup` writes beside a dump (tenants.catalog.backups.row_counts)."""

from django.core.management.base import BaseCommand
from django.db import connections

from tenants.catalog.backups import row_counts
from tenants.constants import OWNER_DATABASE


class Command(BaseCommand):
    help = "Print 'table tenant_id rows' for every tenant table (sorted), as the owner role. Exit status: 0."

    def handle(self, *args, **options):
        connections[OWNER_DATABASE].ensure_connection()
        with connections[OWNER_DATABASE].connection.cursor() as cursor:
            for line in row_counts(cursor):
                self.stdout.write(line)
