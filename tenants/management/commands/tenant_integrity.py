"""`tenant_integrity`: rows with NULL or orphaned tenant_id, or pointing at a user of another
tenant, per table, counted as the owner (past RLS). Exit 1 on any."""

from django.core.management.base import BaseCommand, CommandError

from tenants.catalog.verification import integrity_counts


class Command(BaseCommand):
    help = (
        "Count rows with NULL tenant_id, orphaned tenant_id, or a user in another tenant. "
        "Exit status: 0 clean, 1 any such row."
    )

    def handle(self, *args, **options):
        bad = 0
        self.stdout.write(f"{'table':<20} {'null tenant':>12} {'orphans':>8} {'cross-tenant user':>18}")
        for table, nulls, orphans, mismatched in integrity_counts():
            bad += nulls + orphans + mismatched
            self.stdout.write(f"{table:<20} {nulls:>12} {orphans:>8} {mismatched:>18}")
        if bad:
            raise CommandError(f"{bad} rows need attention.", returncode=1)
        self.stdout.write(self.style.SUCCESS("No NULL, orphaned or cross-tenant rows."))
