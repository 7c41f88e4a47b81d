"""`offboard_tenant <slug> (--export PATH | --no-export --reason TEXT) [--yes] [--batch-size N]`:
suspend a tenant, delete its rows in short batches, then the tenant; every step in the audit
trail; resumable (run it again after an interruption). See platform_ops/offboarding.py.
Exit 2 when refused (nothing deleted; no terminal to confirm on without --yes), 1 when not confirmed."""

from __future__ import annotations

from pathlib import Path

from django.core.management.base import CommandError
from tqdm import tqdm

from platform_ops.offboarding import (
    DEFAULT_BATCH,
    OffboardingRefused,
    live_counts,
    offboard_tenant,
    unfinished_offboarding,
)
from tenants.management.base import OperatorCommand, ask, tenant_by_slug


class Command(OperatorCommand):
    help = (
        "Offboard a tenant: verify its export, suspend it, delete its data in batches, then the tenant. "
        "Exit status: 0 offboarded, 1 not confirmed at the prompt, 2 refused (bad arguments, unknown tenant, "
        "unverified export, no terminal to confirm on: pass --yes); nothing deleted on 1 or 2."
    )

    def add_arguments(self, parser):
        parser.add_argument("slug")
        source = parser.add_mutually_exclusive_group(required=True)
        source.add_argument("--export", type=Path, help="the directory export_tenant wrote for this tenant")
        source.add_argument("--no-export", action="store_true", help="offboard without an export (needs --reason)")
        parser.add_argument("--reason", default="", help="why (required with --no-export; kept in the audit trail)")
        parser.add_argument("--yes", action="store_true", help="do not ask for confirmation")
        parser.add_argument("--batch-size", type=int, default=DEFAULT_BATCH, help="rows per delete transaction")

    def handle(self, *args, slug: str, export, no_export: bool, reason: str, yes: bool, batch_size: int, **options):
        if batch_size < 1:
            raise CommandError("--batch-size must be at least 1.", returncode=2)
        if no_export and not reason.strip():
            raise CommandError("--no-export needs --reason TEXT (kept in the audit trail).", returncode=2)
        tenant = tenant_by_slug(slug)
        counts = live_counts(tenant)
        resuming = unfinished_offboarding(tenant) is not None
        if not yes:
            verb = "Resume offboarding" if resuming else "Offboard"
            answer = ask(
                f"{verb} tenant '{slug}' ({tenant.name}): suspend it now and DELETE {sum(counts.values())} rows "
                f"({', '.join(f'{t} {n}' for t, n in counts.items() if n)}), then the tenant. "
                f"Type the slug '{slug}' to continue: "
            )
            if answer.strip() != slug:
                raise CommandError("Aborted: nothing changed.", returncode=1)
        bars: dict[str, tqdm] = {}

        def progress(table: str, deleted: int) -> None:
            bar = bars.get(table)
            if bar is None:
                bar = bars[table] = tqdm(total=counts.get(table) or None, desc=f"delete {table}", unit="rows")
            bar.update(deleted - bar.n)

        try:
            outcome = offboard_tenant(
                tenant,
                export_path=export,
                no_export_reason=reason if no_export else "",
                batch_size=batch_size,
                progress=progress,
            )
        except OffboardingRefused as exc:
            raise CommandError(str(exc), returncode=2) from exc
        finally:
            for bar in bars.values():
                bar.close()
        total = sum(outcome.deleted.values())
        resumed = " (resumed)" if outcome.resumed else ""
        self.stdout.write(
            self.style.SUCCESS(f"Offboarded tenant '{slug}'{resumed}: {total} rows deleted, tenant gone.")
        )
