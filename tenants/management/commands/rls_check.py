"""`rls_check`: the seed's verification queries, the runtime role's own check, and policy drift
(tenants.catalog.drift: the live policies against what the migrations generate). Exit 1 on any gap
or difference. The pre-deploy and daily check (docs/runbook.md)."""

from django.core.management.base import BaseCommand, CommandError

from tenants.catalog.drift import drift_findings
from tenants.catalog.verification import rls_findings


class Command(BaseCommand):
    help = (
        "Run the seed's RLS verification and policy drift detection: every tenant table has forced RLS and "
        "exactly the policies the migrations generate, and the app role cannot get past them. "
        "Exit status: 0 enforced, 1 any gap or drift (listed as FAIL)."
    )

    def handle(self, *args, **options):
        findings = rls_findings() + drift_findings()
        failed = [f for f in findings if not f.ok]
        for finding in findings:
            mark = self.style.SUCCESS("ok  ") if finding.ok else self.style.ERROR("FAIL")
            detail = f"  ({finding.detail})" if finding.detail and not finding.ok else ""
            self.stdout.write(f"{mark} {finding.subject:<20} {finding.check}{detail}")
        if failed:
            raise CommandError(f"{len(failed)} of {len(findings)} checks failed.", returncode=1)
        self.stdout.write(self.style.SUCCESS(f"All {len(findings)} checks passed: RLS is enforced."))
