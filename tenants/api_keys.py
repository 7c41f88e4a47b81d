"""API keys for machine clients: made, shown once, checked, revoked.

A key reads `ap_<tenant id, 32 hex>_<prefix, 12 hex>_<secret, 43 base64url>`.
- The tenant id lets the request open its tenant's transaction before it
  knows anything else, so the key's row is read in the same opening round
  trip as the tenant row, under RLS (tenants.http.middleware), exactly like
  a bearer token's user. It is no secret: a token carries it too.
- `ap_<tenant>_<prefix>` is the visible part (`prefix` in the API): it finds
  the key in the table, and tells a leaked key in a log or a paste apart
  (a scanner can match `ap_[0-9a-f]{32}_[0-9a-f]{12}_`).
- The secret is 256 random bits. Only HMAC-SHA256(API_KEY_HASH_KEY,
  tenant:prefix:secret) is stored: a copy of the table alone checks no key,
  and the check is one HMAC (no slow KDF is needed for a random 256-bit
  secret, and none is paid per request), compared in constant time.

Scopes (tenants.access.Scope) limit what a key may do; its user's role
limits it further (tenants.http.permissions.RoleAccess). A viewer's keys may
hold the read scope only. Creating and revoking a key is recorded in the
tenant's audit log (`api_key.created`, `api_key.revoked`), in the
transaction of the change. Functions run inside the caller's tenant context.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import DEFAULT_DB_ALIAS
from django.utils import timezone
from psycopg import sql

from tenants.access import Scope
from tenants.models import ApiKey, User
from tenants.roles import Role
from tenants.tenant_audit import record_event

KEY_PATTERN = re.compile(r"^ap_([0-9a-f]{32})_([0-9a-f]{12})_([A-Za-z0-9_-]{43})$")
# The scopes a viewer's key may hold: a viewer reads, so its keys read.
VIEWER_SCOPES = frozenset({Scope.READ})


@dataclass(frozen=True)
class PresentedKey:
    """A key as a client sent it, well-formed (not yet checked)."""

    tenant_id: uuid.UUID
    prefix: str
    secret: str


def parse_key(raw: str) -> PresentedKey | None:
    """The parts of a well-formed key, or None."""
    match = KEY_PATTERN.match(raw)
    if match is None:
        return None
    tenant_hex, prefix, secret = match.groups()
    return PresentedKey(uuid.UUID(hex=tenant_hex), prefix, secret)


def visible_prefix(tenant_id: uuid.UUID, prefix: str) -> str:
    return f"ap_{tenant_id.hex}_{prefix}"


def _hash_key() -> bytes:
    configured = settings.API_KEY_HASH_KEY
    if configured:
        return configured.encode()
    # Derived, so SECRET_KEY itself never keys two different things.
    return hmac.new(settings.SECRET_KEY.encode(), b"alphapulse api keys", hashlib.sha256).digest()


def hashed_secret(tenant_id: uuid.UUID, prefix: str, secret: str) -> str:
    message = f"{tenant_id}:{prefix}:{secret}".encode()
    return hmac.new(_hash_key(), message, hashlib.sha256).hexdigest()


def secret_matches(key: ApiKey, presented: PresentedKey) -> bool:
    expected = hashed_secret(presented.tenant_id, presented.prefix, presented.secret)
    return hmac.compare_digest(expected, key.hashed_secret)


def refusal(key: ApiKey | None, presented: PresentedKey, user: User | None) -> str | None:
    """Why this key may not be used now (401), or None. One answer for unknown and tampered keys."""
    if key is None or not secret_matches(key, presented):
        return "API key rejected: unknown or tampered key."
    if key.revoked_at is not None:
        return "API key rejected: it has been revoked."
    if key.expires_at is not None and key.expires_at <= timezone.now():
        return "API key rejected: it has expired."
    if user is None or not user.is_active:
        return "API key rejected: its user is inactive."
    return None


def check_scopes(scopes: object, user: User) -> list[str]:
    """The scopes, known and allowed for the user's role (ValidationError, 400, naming the problem)."""
    if not isinstance(scopes, list) or not scopes or not all(isinstance(s, str) for s in scopes):
        raise ValidationError({"scopes": f"A non-empty list of scopes: {', '.join(Scope.ALL)}."})
    unknown = sorted(set(scopes) - set(Scope.ALL))
    if unknown:
        raise ValidationError({"scopes": f"Unknown scope(s) {', '.join(unknown)}: choose from {', '.join(Scope.ALL)}."})
    if user.role == Role.VIEWER and set(scopes) - VIEWER_SCOPES:
        raise ValidationError({"scopes": "A viewer's API keys may hold the 'read' scope only."})
    return sorted(set(scopes), key=Scope.ALL.index)


def create_api_key(
    user: User, *, name: str, scopes: object, expires_at: datetime | None, actor: str, using: str = DEFAULT_DB_ALIAS
) -> tuple[ApiKey, str]:
    """A new key of `user` and the key itself, which is never stored and never shown again."""
    checked = check_scopes(scopes, user)
    if expires_at is not None and expires_at <= timezone.now():
        raise ValidationError({"expires_at": "The expiry must be in the future."})
    prefix, secret = secrets.token_hex(6), secrets.token_urlsafe(32)
    key = ApiKey(
        tenant_id=user.tenant_id,
        user_id=user.pk,
        name=name,
        prefix=prefix,
        hashed_secret=hashed_secret(user.tenant_id, prefix, secret),
        scopes=checked,
        expires_at=expires_at,
    )
    key.save(using=using, force_insert=True)
    record_event(
        "api_key.created",
        actor=actor,
        target_type="api_key",
        target_id=str(key.pk),
        details={
            "name": name,
            "prefix": visible_prefix(user.tenant_id, prefix),
            "scopes": checked,
            "user": str(user.pk),
        },
        using=using,
    )
    return key, f"{visible_prefix(user.tenant_id, prefix)}_{secret}"


def revoke_api_key(key: ApiKey, *, actor: str, using: str = DEFAULT_DB_ALIAS) -> bool:
    """Revoke at once (the next request with it is refused); False when it was revoked already."""
    if key.revoked_at is not None:
        return False
    key.revoked_at = timezone.now()
    key.save(using=using, update_fields=["revoked_at"])
    record_event(
        "api_key.revoked",
        actor=actor,
        target_type="api_key",
        target_id=str(key.pk),
        details={"name": key.name, "prefix": visible_prefix(key.tenant_id, key.prefix), "user": str(key.user_id)},
        using=using,
    )
    return True


def use_is_stale(key: ApiKey) -> bool:
    """True when last_used_at is older than API_KEY_LAST_USED_SECONDS: time to write it again."""
    if key.last_used_at is None:
        return True
    return (timezone.now() - key.last_used_at).total_seconds() >= settings.API_KEY_LAST_USED_SECONDS


# Written after the request's own transaction, in a short one of its own
# (tenants.http.middleware): a GET's transaction stays READ ONLY. The
# condition makes concurrent requests write once.
RECORD_USE_SQL = (
    sql.SQL(
        "UPDATE {t} SET last_used_at = now() WHERE tenant_id = %s AND id = %s "
        "AND (last_used_at IS NULL OR last_used_at < now() - make_interval(secs => %s)) RETURNING id"
    )
    .format(t=sql.Identifier(ApiKey._meta.db_table))
    .as_string(None)
)
