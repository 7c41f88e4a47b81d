"""GET /health: is the database up, and is RLS really what isolates tenants?

"rls" is "enforced" only when every tenant table has forced RLS with its
policies, the app connection cannot get past them (not superuser, no
BYPASSRLS, not in rls_bypass_role) and RLS_ENABLED is on; otherwise
"bypassed" (scenario-1 rollback, or us004 rolled back). A database that does
not answer gives 503 with the same JSON shape, never a hang or a 500.
"""

from django.conf import settings
from django.db import DatabaseError, connection
from django.http import HttpRequest, JsonResponse
from django.views.decorators.http import require_GET

from tenants.constants import POLICY_NAMES
from tenants.database.bypass import rls_bypass
from tenants.registry import tenant_tables

PROTECTED_TABLES_SQL = """
SELECT count(*) FROM pg_class c
  JOIN pg_namespace n ON n.oid = c.relnamespace
 WHERE n.nspname = current_schema() AND c.relname = ANY(%(tables)s)
   AND c.relrowsecurity AND c.relforcerowsecurity
   AND (SELECT count(*) FROM pg_policy p
         WHERE p.polrelid = c.oid AND p.polname = ANY(%(policies)s)) = %(policy_count)s
"""


def rls_state() -> str:
    with connection.cursor() as cursor:
        bypass = rls_bypass(cursor)
        can_bypass = bypass is None or bypass.any
        cursor.execute(
            PROTECTED_TABLES_SQL,
            {"tables": list(tenant_tables()), "policies": list(POLICY_NAMES), "policy_count": len(POLICY_NAMES)},
        )
        (protected_tables,) = cursor.fetchone()
    enforced = settings.RLS_ENABLED and not can_bypass and protected_tables == len(tenant_tables())
    return "enforced" if enforced else "bypassed"


@require_GET
def health(request: HttpRequest) -> JsonResponse:
    try:
        rls = rls_state()
    except DatabaseError:
        return JsonResponse({"status": "error", "database": "unavailable", "rls": "unknown"}, status=503)
    return JsonResponse({"status": "ok", "database": "ok", "rls": rls})
