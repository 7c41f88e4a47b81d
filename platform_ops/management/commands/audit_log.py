"""`audit_log [--tenant SLUG|ID] [--action PREFIX] [--since WHEN] [--limit N] [--json]`:
read the audit trail, oldest first. `--json` prints one JSON object per line
(at, actor, source, action, tenant, tenant_id, result, reason, detail, id).
Exit 2 on a filter it cannot read."""

from __future__ import annotations

import json
import re
import uuid
from datetime import UTC, datetime, timedelta

from django.core.management.base import BaseCommand, CommandError
from django.db.models import Q
from django.utils import timezone
from django.utils.dateparse import parse_date, parse_datetime

from platform_ops.models import AuditEntry
from tenants.constants import OWNER_DATABASE

RELATIVE = re.compile(r"^(\d+)([mhdw])$")
# Control characters (a newline in a login attempt's username, an escape
# sequence) would let a stored value print as a line of its own: each is shown
# escaped, so one entry is always exactly one line.
CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")


def printable(value: object) -> str:
    """`value` as text with every control character escaped (\\n, \\x1b, ...)."""
    return CONTROL.sub(lambda m: m[0].encode("unicode_escape").decode("ascii"), str(value))


UNITS = {"m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def parse_since(value: str) -> datetime:
    relative = RELATIVE.match(value.strip())
    if relative:
        return timezone.now() - timedelta(**{UNITS[relative[2]]: int(relative[1])})
    moment = parse_datetime(value)
    if moment is None:
        day = parse_date(value)
        if day is None:
            raise CommandError(
                f"--since {value!r}: give an ISO date or time (2026-12-01, 2026-12-01T10:00Z) or 30m, 24h, 7d, 2w.",
                returncode=2,
            )
        moment = datetime(day.year, day.month, day.day)
    return moment if timezone.is_aware(moment) else timezone.make_aware(moment, UTC)


def as_json(entry: AuditEntry) -> str:
    return json.dumps(
        {
            "id": entry.id,
            "at": entry.at.isoformat(),
            "actor": entry.actor,
            "source": entry.source,
            "action": entry.action,
            "tenant": entry.tenant_slug or None,
            "tenant_id": str(entry.tenant_id) if entry.tenant_id else None,
            "result": entry.result,
            "reason": entry.reason,
            "detail": entry.detail,
        },
        sort_keys=True,
    )


class Command(BaseCommand):
    help = "Show the platform audit trail (who did what, on which tenant, when, why, with what result)."

    def add_arguments(self, parser):
        parser.add_argument("--tenant", help="a tenant's slug or id (offboarded tenants too)")
        parser.add_argument("--action", help="an action or a prefix of one: rls_bypass, tenant.status, admin.")
        parser.add_argument("--since", help="ISO date/time, or 30m, 24h, 7d, 2w ago")
        parser.add_argument("--limit", type=int, default=0, help="only the newest N entries (default: all)")
        parser.add_argument("--json", action="store_true", help="one JSON object per line")

    def handle(self, *args, tenant, action, since, limit, json: bool, **options):
        entries = AuditEntry.objects.using(OWNER_DATABASE).all()
        if tenant:
            try:
                entries = entries.filter(tenant_id=uuid.UUID(tenant))
            except ValueError:
                entries = entries.filter(Q(tenant_slug=tenant))
        if action:
            entries = entries.filter(action__startswith=action)
        if since:
            entries = entries.filter(at__gte=parse_since(since))
        entries = entries.order_by("-at", "-id")
        if limit:
            entries = entries[:limit]
        for entry in reversed(list(entries)):
            if json:
                self.stdout.write(as_json(entry))
            else:
                detail = " ".join(f"{printable(k)}={printable(v)}" for k, v in sorted(entry.detail.items()))
                self.stdout.write(
                    f"{entry.at:%Y-%m-%d %H:%M:%S%z} {printable(entry.actor)} [{printable(entry.source)}] "
                    f"{printable(entry.action)} {printable(entry.tenant_slug or '-')} {printable(entry.result)}"
                    + (f" reason={entry.reason!r}" if entry.reason else "")
                    + (f" {detail}" if detail else "")
                )
