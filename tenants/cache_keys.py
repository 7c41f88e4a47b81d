"""Cache keys carry the tenant: a value cached for tenant A is never read as B's.

Django's cache calls `tenant_cache_key` (settings CACHES KEY_FUNCTION) for
every key. Inside `tenant_context(A)` the key becomes
`<prefix>:<version>:tenant:<A's uuid>:<key>`; outside any tenant context it is
`<prefix>:<version>:platform:<key>`. The scope sits in a fixed position before
the caller's key, so no key one tenant can choose equals a key of another
tenant or of the platform: code that caches per tenant needs to do nothing,
and code that forgets to cannot leak.
"""

from __future__ import annotations

import uuid

from tenants.context import current_tenant_id


def tenant_cache_key(key: str, key_prefix: str, version: int | str) -> str:
    return scoped_cache_key(key, key_prefix, version, current_tenant_id())


def scoped_cache_key(key: str, key_prefix: str, version: int | str, tenant_id: uuid.UUID | None) -> str:
    """The key `tenant_cache_key` makes inside `tenant_context(tenant_id)` (None: outside any),
    for code that must name it before the context is entered (tenants.http.throttling)."""
    scope = "platform" if tenant_id is None else f"tenant:{tenant_id}"
    return f"{key_prefix}:{version}:{scope}:{key}"
