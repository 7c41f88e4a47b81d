"""Rows per tenant table and tenant, as the owner (who passes the policies).

Backups compare these before and after a round trip (scripts/backup.sh,
scripts/restore.sh): a dump taken by a role the policies filter would hold 0
rows without any error, so counts are the only proof a dump is whole.

Works at every phase of the migration: before us002/us003 a table has no
`tenant_id` yet and is counted as a whole (tenant `-`), and a table that does
not exist yet is left out, so a pre-migration backup (scenario 3) is checked too.
"""

from django.core.management.base import BaseCommand
from django.db import connections
from psycopg import sql

from tenants.constants import TENANT_TABLES
from tenants.management.base import OWNER

COLUMNS = "SELECT table_name::text, column_name::text FROM information_schema.columns WHERE table_schema = 'public'"


class Command(BaseCommand):
    help = "Print 'table tenant_id rows' for every tenant table (sorted), as the owner role."

    def handle(self, *args, **options):
        with connections[OWNER].cursor() as cursor:
            cursor.execute(COLUMNS)
            columns = set(cursor.fetchall())
            for table in TENANT_TABLES:
                if (table, "tenant_id") in columns:
                    query = sql.SQL("SELECT tenant_id::text, count(*) FROM {} GROUP BY 1 ORDER BY 1")
                elif (table, "id") in columns:
                    query = sql.SQL("SELECT '-', count(*) FROM {}")
                else:
                    continue
                cursor.execute(query.format(sql.Identifier(table)).as_string(cursor.connection))
                for tenant_id, rows in cursor.fetchall():
                    self.stdout.write(f"{table} {tenant_id} {rows}")
