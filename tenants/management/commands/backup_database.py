"""`backup_database [--db-name NAME] [--file PATH]` (make backup): pg_dump with RLS forced,
with the row counts per table and tenant taken in the dump's own snapshot. Exit 2 on failure."""

from datetime import UTC, datetime
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from tenants.catalog.backups import backup
from tenants.catalog.servers import ToolError
from tenants.constants import OWNER_DATABASE


class Command(BaseCommand):
    help = (
        "Back up a database as the owner role (custom format, every tenant's rows) with its row counts "
        "beside it. Exit status: 0 written, 2 failed (pg_dump error, unknown database)."
    )

    def add_arguments(self, parser):
        parser.add_argument("--db-name", help="PostgreSQL database to dump (default: MIGRATION_DATABASE_URL's)")
        parser.add_argument("--file", help="dump path (default: backups/<database>-<UTC time>.dump)")

    def handle(self, *args, db_name: str | None, file: str | None, **options):
        dbname = db_name or settings.DATABASES[OWNER_DATABASE]["NAME"]
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
        dump = Path(file or f"backups/{dbname}-{stamp}.dump")
        self.stdout.write(f"[backup] pg_dump {dbname} -> {dump} (counts in the same snapshot)")
        try:
            tables, pairs = backup(dbname, dump)
        except ToolError as exc:  # BackupError included
            raise CommandError(str(exc), returncode=2) from exc
        size = dump.stat().st_size / 1024
        self.stdout.write(
            f"[backup] done: {dump} ({size:.0f} KiB, {tables} tables with data, {pairs} table/tenant counts)"
        )
        self.stdout.write(f"[backup] restore with: make restore FILE={dump}")
