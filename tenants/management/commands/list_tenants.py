"""`list_tenants [--json]`: every tenant with its tier, status and user count, as the owner role.

The `platform` tenant holds the staff; `default` is where the migrations put the rows of a legacy
single-tenant database (empty on a fresh install, and skipped by the jobs while it has no users)."""

from __future__ import annotations

import json

from django.conf import settings
from django.db.models import Count

from tenants.constants import DEFAULT_TENANT_ID, OWNER_DATABASE
from tenants.management.base import OperatorCommand
from tenants.models import Tenant, User


def _note(tenant: Tenant, users: int) -> str:
    if tenant.slug == settings.PLATFORM_TENANT_SLUG:
        return "platform staff"
    if tenant.pk == DEFAULT_TENANT_ID:
        return "legacy rows (migrations)" if users else "legacy rows (migrations); empty"
    return ""


class Command(OperatorCommand):
    help = "List every tenant: slug, name, tier, status, users, created. Exit status: 0 listed."

    def add_arguments(self, parser):
        parser.add_argument("--json", action="store_true", help="one JSON object per line")

    def handle(self, *args, json: bool, **options):
        tenants = list(Tenant.objects.using(OWNER_DATABASE).order_by("slug"))
        # The owner gets past the policies: one GROUP BY for every tenant's count.
        counts = dict(User.all_tenants.using(OWNER_DATABASE).order_by().values_list("tenant_id").annotate(n=Count("*")))
        rows = [
            {
                "slug": t.slug,
                "name": t.name,
                "tier": t.subscription_tier,
                "status": t.status,
                "users": counts.get(t.pk, 0),
                "created_at": t.created_at.isoformat(),
                "id": str(t.pk),
                "note": _note(t, counts.get(t.pk, 0)),
            }
            for t in tenants
        ]
        if json:
            for row in rows:
                self.stdout.write(_dumps(row))
            return
        header = ("slug", "name", "tier", "status", "users", "created", "note")
        table = [header] + [
            (r["slug"], r["name"], r["tier"], r["status"], str(r["users"]), r["created_at"][:10], r["note"])
            for r in rows
        ]
        widths = [max(len(line[i]) for line in table) for i in range(len(header))]
        for line in table:
            self.stdout.write("  ".join(cell.ljust(width) for cell, width in zip(line, widths, strict=True)).rstrip())


def _dumps(row: dict) -> str:
    return json.dumps(row, sort_keys=True)
