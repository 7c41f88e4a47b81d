"""`tenant_integrity`: rows with NULL or orphaned tenant_id, or pointing at a user of another
tenant, per table, counted as the owner (past RLS); then each app's own checks
(an AppConfig's `tenant_integrity_checks`: trading's position drift). Exit 1 on any."""

from django.apps import apps
from django.core.management.base import CommandError

from tenants.catalog.verification import integrity_counts
from tenants.management.base import OperatorCommand


class Command(OperatorCommand):
    help = (
        "Count rows with NULL tenant_id, orphaned tenant_id, or a user in another tenant, and positions "
        "that differ from their trades. "
        "Exit status: 0 clean, 1 any such row."
    )

    def handle(self, *args, **options):
        bad = 0
        self.stdout.write(f"{'table':<20} {'null tenant':>12} {'orphans':>8} {'cross-tenant user':>18}")
        for table, nulls, orphans, mismatched in integrity_counts():
            bad += nulls + orphans + mismatched
            self.stdout.write(f"{table:<20} {nulls:>12} {orphans:>8} {mismatched:>18}")
        for config in apps.get_app_configs():
            for check in getattr(config, "tenant_integrity_checks", ()):
                for finding in check():
                    bad += 1
                    self.stdout.write(finding)
        if bad:
            raise CommandError(f"{bad} rows need attention.", returncode=1)
        self.stdout.write(self.style.SUCCESS("No NULL, orphaned or cross-tenant rows; positions follow their trades."))
