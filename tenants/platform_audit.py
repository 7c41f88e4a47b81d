"""`record()`: the one way a platform action reaches the audit trail.

Every platform action (the RLS bypass, tenant creation, status and tier
changes, staff rights, exports, imports, offboarding, admin logins, the us004
migration) calls `record(action, ...)`. The row is written on the owner
connection (`alias`), inside whatever transaction that connection holds: an
action and its entry commit or roll back together. Actions that must leave a
trace even when the caller's transaction rolls back (a refusal, a failure)
pass `durable=True`, which writes on a fresh autocommit connection.

Who and from where (`Actor`): the admin request's user and client address when
a request is given; otherwise the OS user running the command (or
`AUDIT_ACTOR`, e.g. a ticket or an on-call name) and `cli@<host>`. The tenant
services (tenants.services) take an `Actor` and record their own change, so an
action is audited the same whichever surface (admin, command, offboarding) ran it.

Fails loudly: if the entry cannot be written the action's own transaction
fails with it; an unaudited platform action is a bug, not a warning.
"""

from __future__ import annotations

import getpass
import json
import os
import socket
import sys
import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from django.core.serializers.json import DjangoJSONEncoder
from django.db import connections
from psycopg import sql

from tenants.constants import OWNER_DATABASE

if TYPE_CHECKING:
    from django.http import HttpRequest

    from tenants.models import Tenant

TABLE = "platform_audit"

INSERT_SQL = sql.SQL(
    "INSERT INTO {} (actor, source, action, tenant_id, tenant_slug, reason, result, detail) "
    "VALUES (%s, %s, %s, %s, %s, %s, %s, %s::jsonb) RETURNING id"
).format(sql.Identifier(TABLE))


def cli_actor() -> str:
    configured = os.environ.get("AUDIT_ACTOR", "").strip()
    if configured:
        return configured
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return f"uid:{os.getuid()}"


def cli_source() -> str:
    command = " ".join(os.path.basename(a) for a in sys.argv[:2]) if sys.argv else ""
    return f"cli@{socket.gethostname()} ({command})".strip()


def request_actor(request: HttpRequest) -> tuple[str, str]:
    user = getattr(request, "user", None)
    if user is not None and getattr(user, "is_authenticated", False):
        actor = f"{user.get_username()}@{getattr(user.tenant, 'slug', '?')}"
    else:
        actor = "anonymous"
    return actor, str(request.META.get("REMOTE_ADDR", ""))


@dataclass(frozen=True)
class Actor:
    """Who did a platform action and from where, as the audit trail writes them."""

    name: str
    source: str

    @classmethod
    def operator(cls) -> Actor:
        """The person running this process (a command, a shell): AUDIT_ACTOR or the OS user, cli@<host>."""
        return cls(cli_actor(), cli_source())

    @classmethod
    def of_request(cls, request: HttpRequest) -> Actor:
        """The admin request's user and client address."""
        return cls(*request_actor(request))


def record(
    action: str,
    *,
    tenant: Tenant | None = None,
    tenant_id: uuid.UUID | None = None,
    tenant_slug: str = "",
    result: str = "ok",
    reason: str = "",
    detail: dict[str, Any] | None = None,
    request: HttpRequest | None = None,
    by: Actor | None = None,
    actor: str | None = None,
    source: str | None = None,
    alias: str = OWNER_DATABASE,
    durable: bool = False,
) -> int:
    """Append one entry to the audit trail; returns its id."""
    if by is None and request is not None:
        by = Actor.of_request(request)
    if by is not None:
        actor, source = actor or by.name, source or by.source
    actor, source = actor or cli_actor(), source or cli_source()
    if tenant is not None:
        tenant_id, tenant_slug = tenant.pk, tenant.slug
    params = [
        actor,
        source,
        action,
        tenant_id,
        tenant_slug,
        reason,
        result,
        json.dumps(detail or {}, cls=DjangoJSONEncoder, sort_keys=True),
    ]
    if durable:
        connection = connections.create_connection(alias)
        try:
            connection.set_autocommit(True)
            return _insert(connection, params)
        finally:
            connection.close()
    return _insert(connections[alias], params)


def _insert(connection, params: list[Any]) -> int:
    with connection.cursor() as cursor:
        cursor.execute(INSERT_SQL.as_string(cursor.connection), params)
        return cursor.fetchone()[0]


def audit_table_exists(alias: str = OWNER_DATABASE) -> bool:
    with connections[alias].cursor() as cursor:
        cursor.execute("SELECT to_regclass(%s) IS NOT NULL", [TABLE])
        return bool(cursor.fetchone()[0])
