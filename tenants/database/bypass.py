"""The one answer to "can this role get past row-level security?".

A role gets past RLS if it is a superuser, has BYPASSRLS, or is a member of
rls_bypass_role, whose permissive policy (tenant_bypass_policy) lets every
row through. Membership is tested as PostgreSQL tests it for a policy's
`TO role`: 'MEMBER', direct or indirect, whether or not the role INHERITs.
('USAGE' would miss a NOINHERIT member, to whom the policy still applies.)

/health, the runtime-role system check, `rls_check` and `rls_bypass status`
all read it here.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from tenants.constants import BYPASS_ROLE

BYPASS_SQL = """
SELECT r.rolname, r.rolsuper, r.rolbypassrls, pg_has_role(r.oid, %(bypass)s, 'MEMBER')
FROM pg_roles r WHERE r.rolname = COALESCE(%(role)s, current_user)
"""


@dataclass(frozen=True)
class Bypass:
    role: str
    superuser: bool
    bypassrls: bool
    in_bypass_role: bool

    @property
    def any(self) -> bool:
        return self.superuser or self.bypassrls or self.in_bypass_role


def rls_bypass(cursor: Any, role: str | None = None) -> Bypass | None:
    """How `role` (the cursor's own role when None) gets past RLS; None when no such role exists."""
    cursor.execute(BYPASS_SQL, {"bypass": BYPASS_ROLE, "role": role})
    row = cursor.fetchone()
    return Bypass(*row) if row is not None else None
