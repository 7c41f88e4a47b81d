"""`restore_database FILE [--db-name NEW] [--unchecked]` (make restore): restore into a new
database and compare its row counts per table and tenant with the backup's. Exit 1 when they
differ, 2 when the restore could not run (missing file or counts, existing database, pg_restore error)."""

from datetime import UTC, datetime
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from tenants.catalog.backups import restore
from tenants.catalog.servers import ToolError


class Command(BaseCommand):
    help = (
        "Restore a backup into a NEW database and check its row counts against the backup's. "
        "Exit status: 0 restored and counts match, 1 counts differ, 2 could not restore (missing file or "
        "counts, existing database, pg_restore error)."
    )

    def add_arguments(self, parser):
        parser.add_argument("file", help="the .dump written by make backup (its .counts beside it)")
        parser.add_argument("--db-name", help="new PostgreSQL database (default: alphapulse_restored_<UTC time>)")
        parser.add_argument("--unchecked", action="store_true", help="restore even without the .counts file")
        parser.add_argument(
            "--into-empty",
            action="store_true",
            help="restore into --db-name, which exists and is empty (a Citus database: scripts/citus.sh createdb)",
        )

    def handle(self, *args, file: str, db_name: str | None, unchecked: bool, into_empty: bool, **options):
        if into_empty and not db_name:
            raise CommandError("--into-empty needs --db-name NAME (the empty database to restore into)", returncode=2)
        dbname = db_name or "alphapulse_restored_" + datetime.now(UTC).strftime("%Y%m%dt%H%M%Sz")
        self.stdout.write(f"[restore] {file} -> {'empty' if into_empty else 'new'} database {dbname}")
        try:
            differences = restore(Path(file), dbname, unchecked=unchecked, into_empty=into_empty)
        except ToolError as exc:  # BackupError included
            raise CommandError(str(exc), returncode=2) from exc
        if differences:
            self.stderr.write("[restore] ROW COUNTS DIFFER from the backup (- backup, + restored):")
            for line in differences:
                self.stderr.write(f"    {line}")
            raise CommandError("row counts differ from the backup: see above", returncode=1)
        if unchecked:
            self.stderr.write("[restore] warning: restored WITHOUT a count check (--unchecked)")
        else:
            self.stdout.write("[restore] row counts match the backup")
        self.stdout.write(
            f"[restore] done: database {dbname}. Point DATABASE_URL and MIGRATION_DATABASE_URL at it, or rename it."
        )
