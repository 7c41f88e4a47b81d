"""The seed's verification queries, as code: is every tenant table protected,
and is the data whole? Used by `rls_check`, `tenant_integrity` and the tests.

Catalog queries run on the owner connection (it sees every row and every
table); the probe "with no tenant set the app role sees nothing" runs on the
app connection itself, outside any tenant context.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.db import DatabaseError, connections, transaction
from psycopg import sql

from tenants.catalog.privileges import privilege_problems_on_every_node
from tenants.constants import (
    APP_ROLE,
    BYPASS_ROLE,
    INSERT_POLICY,
    ISOLATION_POLICY,
    OWNER_DATABASE,
    TENANT_SETTING,
)
from tenants.database.bypass import rls_bypass
from tenants.registry import tenant_models, tenant_tables


@dataclass
class Finding:
    subject: str
    check: str
    ok: bool
    detail: str = ""


TABLE_SECURITY_SQL = """
SELECT c.relname, c.relrowsecurity, c.relforcerowsecurity,
       ARRAY(SELECT p.polname::text FROM pg_policy p WHERE p.polrelid = c.oid ORDER BY 1),
       ARRAY(SELECT pg_get_expr(p.polqual, p.polrelid) FROM pg_policy p
              WHERE p.polrelid = c.oid AND p.polname = %(isolation)s),
       has_table_privilege(%(app)s, c.oid, 'TRUNCATE'),
       pg_get_userbyid(c.relowner),
       (SELECT a.attnotnull FROM pg_attribute a WHERE a.attrelid = c.oid AND a.attname = 'tenant_id')
FROM pg_class c
WHERE c.relname = ANY(%(tables)s) AND c.relkind = 'r' AND c.relnamespace = 'public'::regnamespace
"""


def rls_findings() -> list[Finding]:
    findings: list[Finding] = []
    with connections[OWNER_DATABASE].cursor() as cursor:
        cursor.execute(
            TABLE_SECURITY_SQL, {"tables": list(tenant_tables()), "app": APP_ROLE, "isolation": ISOLATION_POLICY}
        )
        rows = {row[0]: row[1:] for row in cursor.fetchall()}
        role = rls_bypass(cursor, APP_ROLE)
    for table in tenant_tables():
        if table not in rows:
            findings.append(Finding(table, "table exists", False, "missing"))
            continue
        enabled, forced, policies, isolation_expr, can_truncate, owner, not_null = rows[table]
        findings += [
            Finding(table, "row level security enabled", enabled),
            Finding(table, "row level security forced", forced),
            Finding(table, f"policy {ISOLATION_POLICY}", ISOLATION_POLICY in policies, ", ".join(policies)),
            Finding(table, f"policy {INSERT_POLICY}", INSERT_POLICY in policies),
            Finding(
                table,
                "policy survives an empty setting (NULLIF)",
                bool(isolation_expr) and "nullif" in isolation_expr[0].lower(),
                isolation_expr[0] if isolation_expr else "",
            ),
            Finding(table, "tenant_id NOT NULL", bool(not_null)),
            Finding(table, f"{APP_ROLE} cannot TRUNCATE", not can_truncate),
            Finding(table, f"not owned by {APP_ROLE}", owner != APP_ROLE, f"owner {owner}"),
        ]
    if role is None:
        findings.append(Finding(APP_ROLE, "role exists", False))
    else:
        findings += [
            Finding(APP_ROLE, "not a superuser", not role.superuser),
            Finding(APP_ROLE, "no BYPASSRLS", not role.bypassrls),
            Finding(APP_ROLE, f"not a member of {BYPASS_ROLE}", not role.in_bypass_role),
        ]
    # Every node: Citus propagates neither every grant nor a revoke on the catalogs.
    problems = privilege_problems_on_every_node(OWNER_DATABASE)
    findings += [Finding(APP_ROLE, "holds exactly its least-privilege set", False, p) for p in problems]
    if not problems:
        findings.append(Finding(APP_ROLE, "holds exactly its least-privilege set", True))
    findings += _app_role_sees_nothing_without_tenant()
    return findings


def _app_role_sees_nothing_without_tenant() -> list[Finding]:
    """The empty-setting probe, on the app connection, in its own transaction."""
    findings = []
    app = connections["default"]
    with app.cursor() as cursor:
        cursor.execute("SELECT current_user")
        (current,) = cursor.fetchone()
        if current != APP_ROLE:
            return [Finding("default", f"DATABASE_URL connects as {APP_ROLE}", False, f"connects as {current}")]
        for table in tenant_tables():
            # '' is what a pooled connection carries after a local setting ended.
            # Each probe is its own transaction (or savepoint), always rolled back.
            try:
                with transaction.atomic(using="default"):
                    cursor.execute("SELECT set_config(%s, '', true)", [TENANT_SETTING])
                    count = sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(table))
                    cursor.execute(count.as_string(cursor.connection))
                    (visible,) = cursor.fetchone()
                    transaction.set_rollback(True, using="default")
                findings.append(
                    Finding(table, "no rows visible to the app role without a tenant", visible == 0, f"{visible} rows")
                )
            except DatabaseError as exc:  # the query must not raise either
                findings.append(Finding(table, "no error without a tenant", False, str(exc).splitlines()[0]))
    return findings


def integrity_counts() -> list[tuple[str, int, int, int]]:
    """Per tenant table: (table, NULL tenant_id rows, orphan rows, rows whose user is in another tenant)."""
    results = []
    with connections[OWNER_DATABASE].cursor() as cursor:
        for model in tenant_models():
            table = model._meta.db_table
            t = sql.Identifier(table)
            query = sql.SQL(
                "SELECT count(*) FILTER (WHERE x.tenant_id IS NULL), "
                "count(*) FILTER (WHERE x.tenant_id IS NOT NULL AND NOT EXISTS "
                "(SELECT 1 FROM tenants WHERE tenants.id = x.tenant_id)) "
                "FROM {} x"
            ).format(t)
            cursor.execute(query.as_string(cursor.connection))
            nulls, orphans = cursor.fetchone()
            mismatched = 0
            if any(field.attname == "user_id" for field in model._meta.concrete_fields):
                # Joined on (tenant_id, user_id): a row whose user is not a user
                # of its own tenant. A join on user_id alone is not on the
                # distribution column, which a Citus coordinator refuses.
                cursor.execute(
                    sql.SQL(
                        "SELECT count(*) FROM {} x WHERE NOT EXISTS "
                        "(SELECT 1 FROM users u WHERE u.tenant_id = x.tenant_id AND u.id = x.user_id)"
                    )
                    .format(t)
                    .as_string(cursor.connection)
                )
                (mismatched,) = cursor.fetchone()
            results.append((table, nulls, orphans, mismatched))
    return results
