"""`rebuild_positions [--tenant SLUG] [--check]`: positions recomputed from trades (trading.rebuild).

Each tenant in its own transaction, as that tenant (tenant_context on the app
connection: RLS holds, every statement routes to the tenant's shard on Citus).
Without --check, every difference is written over with the trades' figures
and recorded in the tenant's audit log (`position.rebuilt`, before and after).
With --check nothing changes, and every (tenant, user, symbol) that differs is
named. Exit status: 0 no difference (or all rewritten), 1 differences found by
--check, 2 refused (unknown tenant).
"""

from __future__ import annotations

from django.core.management.base import CommandError
from django.db import connection
from tqdm import tqdm

from tenants.context import tenant_context
from tenants.management.base import OperatorCommand, tenant_by_slug
from tenants.models import Tenant
from trading import rebuild


class Command(OperatorCommand):
    help = (
        "Recompute positions from trades (weighted average cost), or with --check name every "
        "(tenant, user, symbol) whose position differs from its trades and change nothing. "
        "Exit status: 0 no difference left, 1 differences found (--check), 2 refused (unknown tenant)."
    )

    def add_arguments(self, parser):
        parser.add_argument("--tenant", metavar="SLUG", help="only this tenant (default: every tenant)")
        parser.add_argument("--check", action="store_true", help="change nothing; exit 1 naming every difference")

    def handle(self, *args, tenant: str | None, check: bool, **options):
        tenants = [tenant_by_slug(tenant)] if tenant else list(Tenant.objects.order_by("slug"))
        found: list[str] = []
        rewritten = 0
        for one in tqdm(tenants, desc="tenants", unit="tenant", disable=None):
            with tenant_context(one), connection.cursor() as cursor:
                differences = rebuild.differences(cursor, one.pk)
                if not check:
                    rebuild.apply(cursor, one.pk, differences, actor="rebuild_positions")
            rewritten += len(differences)
            found.extend(f"{one.slug}: {diff.describe()}" for diff in differences)
        for line in found:
            self.stdout.write(line)
        if check and found:
            raise CommandError(f"{len(found)} positions differ from their trades.", returncode=1)
        if check:
            self.stdout.write(self.style.SUCCESS(f"Positions of {len(tenants)} tenants follow their trades."))
        else:
            self.stdout.write(self.style.SUCCESS(f"{rewritten} positions rewritten from trades."))
