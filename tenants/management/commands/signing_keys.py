"""`signing_keys [--record]`: the token key ring this configuration loads, and its changes in the audit trail.

Prints the algorithm and the kids, first the one that signs (never a key).
`--record` appends `jwt.signing_keys` to the platform audit trail when the
ring differs from the last one recorded (a key rotated in, a key retired):
gunicorn runs it at every server start (gunicorn.conf.py), so each rotation
is in the trail once, with the kids before and after. Exit status: 0 done;
2 refused (the ring does not load: the one-line error says why).
"""

from __future__ import annotations

import json

from django.core.exceptions import ImproperlyConfigured
from django.core.management.base import CommandError
from django.db import transaction

from tenants import platform_audit
from tenants.constants import OWNER_DATABASE
from tenants.management.base import EXIT_REFUSED, OperatorCommand
from tenants.signing_keys import configured_ring

ACTION = "jwt.signing_keys"
# One server start at a time decides whether the ring changed (several start at once in a deploy).
LOCK_KEY = 0x6A77746B  # "jwtk"


class Command(OperatorCommand):
    help = (
        "Print the token key ring (algorithm, kids; the first signs); --record appends a change of it to the "
        "platform audit trail. Exit status: 0 done; 2 the ring does not load."
    )

    def add_arguments(self, parser):
        parser.add_argument("--record", action="store_true", help="record the ring in the audit trail if it changed")

    def handle(self, *args, record: bool, **options):
        try:
            ring = configured_ring()
        except ImproperlyConfigured as exc:
            raise CommandError(str(exc), returncode=EXIT_REFUSED) from exc
        now = {"algorithm": ring.algorithm, "kids": ring.kids()}
        self.stdout.write(f"{ring.algorithm}: {', '.join(ring.kids())} (signs: {ring.current.kid})")
        if not record:
            return
        with transaction.atomic(using=OWNER_DATABASE), platform_audit_cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [LOCK_KEY])
            cursor.execute(
                "SELECT detail FROM platform_audit WHERE action = %s ORDER BY id DESC LIMIT 1",
                [ACTION],
            )
            row = cursor.fetchone()
            before = row[0] if row else None
            if isinstance(before, str):
                before = json.loads(before)
            if before is not None and {k: before.get(k) for k in now} == now:
                return
            platform_audit.record(
                ACTION,
                detail={**now, "before": before and {k: before.get(k) for k in now}},
                actor="server",
                source="server start",
                alias=OWNER_DATABASE,
            )
            self.stdout.write(f"recorded {ACTION}")


def platform_audit_cursor():
    from django.db import connections

    return connections[OWNER_DATABASE].cursor()
