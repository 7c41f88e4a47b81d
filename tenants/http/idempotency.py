"""`Idempotency-Key` on POST under /api/: a retried write answers with its first answer.

The same key from the same principal within KEY_TTL answers with the first
answer's status and body and writes nothing; the same key with another body
(method, path and body hashed: the fingerprint) is 422; a key longer than 255
characters is 400. Keys live per tenant under RLS (`idempotency_keys`,
tenants.models.IdempotencyKey).

How, in the request's own transaction (tenants.http.middleware):
1. the claim rides in the request's opening round trip (no extra trip):
   INSERT ... ON CONFLICT (tenant_id, principal, key) DO UPDATE ... WHERE the
   stored key has expired, RETURNING id. A new (or expired, taken over) key
   returns its id: this request owns it and runs. A live key returns nothing.
   A concurrent request with the same key waits on the unique index until the
   first one's transaction ends, so N concurrent requests write once;
2. the owner's answer (status < 400) is stored by one UPDATE in the same
   transaction before COMMIT: the write and its answer commit together, so no
   answer is lost between them. A 4xx/5xx rolls the transaction back, claim
   included: a refused request may be retried with the same key;
3. a request that did not get the claim reads the stored answer (one SELECT)
   and replays it, or answers 422 when its fingerprint differs.
A request without the header costs nothing: none of this runs.

Expiry: a key older than KEY_TTL is taken over by the claim itself; the
`purge_idempotency_keys` job deletes the rest (jobs.tasks, on beat).
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.db import connection
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.utils import timezone

from tenants.database.tenant_setting import Query

HEADER = "Idempotency-Key"
MAX_KEY_LENGTH = 255
KEY_TTL = timedelta(hours=24)
REPLAYED_HEADER = "Idempotent-Replayed"

# The times are parameters: Citus refuses a non-immutable function (now()) in the
# WHERE of ON CONFLICT on a distributed table. VALUES, not INSERT ... SELECT: one
# router statement on Citus. A token of a tenant that no longer exists fails the
# claim's key to `tenants`: the middleware answers that as the unknown tenant it is.
CLAIM_SQL = (
    "INSERT INTO idempotency_keys (id, tenant_id, principal, key, fingerprint, created_at) "
    "VALUES (%s, %s, %s, %s, %s, %s) "
    "ON CONFLICT (tenant_id, principal, key) DO UPDATE SET fingerprint = EXCLUDED.fingerprint, "
    "created_at = EXCLUDED.created_at, status_code = NULL, body = NULL "
    "WHERE idempotency_keys.created_at < %s "
    "RETURNING id"
)
STORE_SQL = "UPDATE idempotency_keys SET status_code = %s, body = %s::jsonb WHERE tenant_id = %s AND id = %s"
READ_SQL = (
    "SELECT fingerprint, status_code, body FROM idempotency_keys WHERE tenant_id = %s AND principal = %s AND key = %s"
)
PURGE_SQL = "DELETE FROM idempotency_keys WHERE tenant_id = %s AND created_at < now() - %s"


class KeyRefused(Exception):
    """The header itself is unusable: 400."""


def principal_of(user_id: uuid.UUID | None = None, api_key_prefix: str | None = None) -> str:
    """Whose key it is: the ONE answer. An API key's own (its prefix, unique in its tenant), else the token's user."""
    return f"api_key:{api_key_prefix}" if api_key_prefix else f"user:{user_id}"


@dataclass(frozen=True)
class Claim:
    tenant_id: uuid.UUID
    principal: str
    key: str
    fingerprint: str
    claim_id: uuid.UUID  # the new row's id; a taken-over expired row keeps its own (see `claimed`)

    def query(self) -> Query:
        """The claim, for the opening round trip (tenants.context.tenant_transaction's `queries`)."""
        now = timezone.now()
        return (
            CLAIM_SQL,
            [self.claim_id, self.tenant_id, self.principal, self.key, self.fingerprint, now, now - KEY_TTL],
        )


def claim_for(request: HttpRequest, tenant_id: uuid.UUID, principal: str) -> Claim | None:
    """The claim of a POST that carries the header, else None (nothing to do, nothing sent)."""
    if request.method != "POST" or HEADER not in request.headers:
        return None
    key = request.headers[HEADER]
    if not key.strip():
        raise KeyRefused(f"{HEADER} is empty: send a client-chosen string of 1 to {MAX_KEY_LENGTH} characters.")
    if len(key) > MAX_KEY_LENGTH:
        raise KeyRefused(f"{HEADER} is {len(key)} characters long: at most {MAX_KEY_LENGTH}.")
    digest = hashlib.sha256()
    for part in (request.method.encode(), request.path_info.encode(), request.body):
        digest.update(len(part).to_bytes(8, "big"))
        digest.update(part)
    return Claim(tenant_id, principal, key, digest.hexdigest(), uuid.uuid4())


def answered(claim: Claim | None, rows: list[tuple | None], get_response: Callable[[], HttpResponse]) -> HttpResponse:
    """The view's answer (stored when this request holds the claim), or the stored one replayed.
    `rows`: what the opening round trip returned for the claim ([] without one)."""
    if claim is None:
        return get_response()
    held = claimed(claim, rows[0] if rows else None)
    if held is None:
        return replay(claim)
    response = get_response()
    if response.status_code < 400:
        store(held, response)
    return response


def refusal(exc: KeyRefused) -> JsonResponse:
    return JsonResponse({"detail": str(exc)}, status=400)


def replay(claim: Claim) -> HttpResponse:
    """The stored answer of a key this request did not claim (it is live: the claim said so)."""
    with connection.cursor() as cursor:
        cursor.execute(READ_SQL, [claim.tenant_id, claim.principal, claim.key])
        row = cursor.fetchone()
    if row is None or row[1] is None:
        # Not reachable while the claim holds (a claimed key is answered before COMMIT);
        # say so rather than run the request a second time.
        return JsonResponse({"detail": f"A request with this {HEADER} is still in progress: retry."}, status=409)
    fingerprint, status_code, body = row
    if isinstance(body, str):  # Django's psycopg set-up loads jsonb as text
        body = json.loads(body)
    if fingerprint != claim.fingerprint:
        return JsonResponse(
            {
                "detail": f"This {HEADER} was used with another request (method, path or body) "
                "in the last 24 hours: use a new key for a new request."
            },
            status=422,
        )
    response = JsonResponse(body, status=status_code, safe=False)
    response[REPLAYED_HEADER] = "true"
    return response


def claimed(claim: Claim, row: tuple | None) -> Claim | None:
    """The claim this request holds (with the row's id), or None when the key is live: replay."""
    if row is None:
        return None
    return Claim(claim.tenant_id, claim.principal, claim.key, claim.fingerprint, row[0])


def store(claim: Claim, response: HttpResponse) -> None:
    """Keep a successful answer with its claim, in the request's transaction."""
    body: Any = None
    content = getattr(response, "content", b"")
    if content:
        try:
            body = json.loads(content)
        except ValueError:
            body = None
    with connection.cursor() as cursor:
        cursor.execute(STORE_SQL, [response.status_code, json.dumps(body), claim.tenant_id, claim.claim_id])


def purge_expired(tenant_id: uuid.UUID) -> int:
    """Delete the current tenant's expired keys; the count deleted."""
    with connection.cursor() as cursor:
        cursor.execute(PURGE_SQL, [tenant_id, KEY_TTL])  # type: ignore[list-item]
        return cursor.rowcount
