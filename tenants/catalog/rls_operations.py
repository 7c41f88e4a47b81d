"""The operations every tenant table needs: forced RLS, its policies, the app role's grants.

One class writes all RLS SQL for a table (EnableTenantRLS) and its reverse; a
new tenant table's migration adds one line. The policies fail closed: with no
tenant set, or an empty one, they compare against NULL and a query sees no
rows, with no error (docs/design.md explains NULLIF and the separate bypass
policy).
"""

from __future__ import annotations

from django.db.migrations.operations.base import Operation
from psycopg import sql

from tenants.catalog.ddl import TableOperation, run_ddl
from tenants.constants import (
    APP_ROLE,
    BYPASS_POLICY,
    BYPASS_ROLE,
    INSERT_POLICY,
    ISOLATION_POLICY,
    OWNER_ROLE,
    TENANT_SETTING,
)

# The one expression every tenant policy compares against. NULLIF: after a
# transaction-local setting ends, it reads '' (not NULL) and a bare ::uuid
# cast would raise on every later query of that pooled connection. Inline,
# not a scalar sub-select: Citus refuses sub-selects in the policies of
# distributed tables, and measured on 1M rows the inline form costs the same
# (docs/scaling.md, "Policy shape: measured"). Applied migrations pass the
# shape they were written with (`current_tenant=`), so their meaning is fixed.
CURRENT_TENANT_SQL = sql.SQL("NULLIF(current_setting({}, true), '')::uuid").format(sql.Literal(TENANT_SETTING))


class EnableTenantRLS(TableOperation):
    """US-004 for one table: forced RLS, the seed's two policies, the bypass policy.

    - tenant_isolation_policy: USING and WITH CHECK, so a row can neither be
      seen nor moved (UPDATE) outside the current tenant.
    - tenant_insert_policy: FOR INSERT WITH CHECK, as the seed names it.
    - tenant_bypass_policy: a separate permissive policy TO rls_bypass_role.
      Never an OR inside the tenant policy: that turned a 0.15 ms index scan
      into a 140-415 ms parallel seq scan (docs/design.md).
    - FORCE, so the owner is held too unless it holds rls_bypass_role.
    With no tenant set, or '', the policies compare against NULL: no rows, no error.

    `current_tenant`: the SQL expression for "the current tenant" (a constant
    fragment, never a value); CURRENT_TENANT_SQL unless a migration froze its own.
    """

    def __init__(self, table: str, current_tenant: str | None = None) -> None:
        super().__init__(table)
        self.current_tenant = current_tenant

    def statements(self) -> list[sql.Composable]:
        t = self.t
        tenant = CURRENT_TENANT_SQL if self.current_tenant is None else sql.SQL(self.current_tenant)  # type: ignore[arg-type]
        return [
            sql.SQL("ALTER TABLE {} ENABLE ROW LEVEL SECURITY").format(t),
            sql.SQL("ALTER TABLE {} FORCE ROW LEVEL SECURITY").format(t),
            sql.SQL("CREATE POLICY {} ON {} USING (tenant_id = {}) WITH CHECK (tenant_id = {})").format(
                sql.Identifier(ISOLATION_POLICY), t, tenant, tenant
            ),
            sql.SQL("CREATE POLICY {} ON {} FOR INSERT WITH CHECK (tenant_id = {})").format(
                sql.Identifier(INSERT_POLICY), t, tenant
            ),
            sql.SQL("CREATE POLICY {} ON {} TO {} USING (true) WITH CHECK (true)").format(
                sql.Identifier(BYPASS_POLICY), t, sql.Identifier(BYPASS_ROLE)
            ),
        ]

    def reverse_statements(self) -> list[sql.Composable]:
        t = self.t
        return [
            *(
                sql.SQL("DROP POLICY IF EXISTS {} ON {}").format(sql.Identifier(p), t)
                for p in (BYPASS_POLICY, INSERT_POLICY, ISOLATION_POLICY)
            ),
            sql.SQL("ALTER TABLE {} NO FORCE ROW LEVEL SECURITY").format(t),
            sql.SQL("ALTER TABLE {} DISABLE ROW LEVEL SECURITY").format(t),
        ]

    def database_forwards(self, app_label, schema_editor, from_state, to_state):
        run_ddl(schema_editor, self.statements())

    def database_backwards(self, app_label, schema_editor, from_state, to_state):
        run_ddl(schema_editor, self.reverse_statements())

    def describe(self):
        return f"Enable and force row-level security on {self.table}"


class GrantAppRole(Operation):
    """The app role's rights: SELECT, INSERT, UPDATE, DELETE on every table the
    owner creates, now and later (default privileges), and nothing more:
    no TRUNCATE (it ignores RLS), no ownership, no DDL. Read-only on
    django_migrations. Cluster roles themselves come from scripts/db.sh.

    Applied by the first migration and left as it was; tenants.0010 narrows
    it to the exact least-privilege set (tenants/catalog/privilege_operations.py,
    tenants/catalog/privileges.py)."""

    reversible = True
    reduces_to_sql = True

    def state_forwards(self, app_label, state):
        pass

    def _roles(self):
        return sql.Identifier(OWNER_ROLE), sql.Identifier(APP_ROLE)

    def database_forwards(self, app_label, schema_editor, from_state, to_state):
        owner, app = self._roles()
        run_ddl(
            schema_editor,
            [
                sql.SQL("GRANT USAGE ON SCHEMA public TO {}").format(app),
                sql.SQL(
                    "ALTER DEFAULT PRIVILEGES FOR ROLE {} IN SCHEMA public "
                    "GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO {}"
                ).format(owner, app),
                sql.SQL(
                    "ALTER DEFAULT PRIVILEGES FOR ROLE {} IN SCHEMA public GRANT USAGE, SELECT ON SEQUENCES TO {}"
                ).format(owner, app),
                sql.SQL("GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO {}").format(app),
                sql.SQL("GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO {}").format(app),
                sql.SQL("REVOKE INSERT, UPDATE, DELETE ON django_migrations FROM {}").format(app),
            ],
        )

    def database_backwards(self, app_label, schema_editor, from_state, to_state):
        owner, app = self._roles()
        run_ddl(
            schema_editor,
            [
                sql.SQL(
                    "ALTER DEFAULT PRIVILEGES FOR ROLE {} IN SCHEMA public "
                    "REVOKE SELECT, INSERT, UPDATE, DELETE ON TABLES FROM {}"
                ).format(owner, app),
                sql.SQL(
                    "ALTER DEFAULT PRIVILEGES FOR ROLE {} IN SCHEMA public REVOKE USAGE, SELECT ON SEQUENCES FROM {}"
                ).format(owner, app),
                sql.SQL("REVOKE ALL ON ALL TABLES IN SCHEMA public FROM {}").format(app),
                sql.SQL("REVOKE ALL ON ALL SEQUENCES IN SCHEMA public FROM {}").format(app),
            ],
        )

    def describe(self):
        return "Grant the app role SELECT, INSERT, UPDATE, DELETE (never TRUNCATE)"
