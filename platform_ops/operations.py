"""The migration operation that writes the append-only audit table.

Who can do what on `platform_audit`:
- the app role: nothing (REVOKE ALL, explicitly, whatever default privileges
  the owner's earlier migrations set up);
- the owner role: SELECT and INSERT only; UPDATE, DELETE and TRUNCATE are
  revoked from it, and a trigger refuses them even if it grants them back;
- residual risk: the owner owns the table, so it could still drop the trigger
  and re-grant itself. Closing that needs a superuser to hand the table to a
  NOLOGIN role the owner is not a member of (docs/runbook.md, "Audit trail").
"""

from __future__ import annotations

from psycopg import sql

from tenants.catalog.ddl import StatementOperation
from tenants.constants import APP_ROLE, OWNER_ROLE

TABLE = "platform_audit"
REFUSE_FUNCTION = "platform_audit_refuse_change"


class CreateAuditTable(StatementOperation):
    def deconstruct(self):
        return self.__class__.__qualname__, [], {}

    def forwards_statements(self) -> list[sql.Composable]:
        t, fn = sql.Identifier(TABLE), sql.Identifier(REFUSE_FUNCTION)
        app, owner = sql.Identifier(APP_ROLE), sql.Identifier(OWNER_ROLE)
        return [
            sql.SQL(
                "CREATE TABLE {} ("
                "id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, "
                "at timestamptz NOT NULL DEFAULT clock_timestamp(), "
                "actor text NOT NULL, "
                "source text NOT NULL DEFAULT '', "
                "action text NOT NULL, "
                "tenant_id uuid, "
                "tenant_slug text NOT NULL DEFAULT '', "
                "reason text NOT NULL DEFAULT '', "
                "result text NOT NULL CHECK (result IN ('ok', 'started', 'refused', 'failed')), "
                "detail jsonb NOT NULL DEFAULT '{{}}'::jsonb)"
            ).format(t),
            sql.SQL("CREATE INDEX {} ON {} (at)").format(sql.Identifier(f"{TABLE}_at"), t),
            sql.SQL("CREATE INDEX {} ON {} (tenant_id, at)").format(sql.Identifier(f"{TABLE}_tenant_at"), t),
            sql.SQL(
                "CREATE FUNCTION {}() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
                "RAISE EXCEPTION 'platform_audit is append-only: % refused', TG_OP "
                "USING ERRCODE = 'insufficient_privilege'; END $$"
            ).format(fn),
            sql.SQL(
                "CREATE TRIGGER platform_audit_append_only BEFORE UPDATE OR DELETE ON {} "
                "FOR EACH ROW EXECUTE FUNCTION {}()"
            ).format(t, fn),
            sql.SQL(
                "CREATE TRIGGER platform_audit_no_truncate BEFORE TRUNCATE ON {} "
                "FOR EACH STATEMENT EXECUTE FUNCTION {}()"
            ).format(t, fn),
            sql.SQL("REVOKE ALL ON {} FROM PUBLIC").format(t),
            # Functions are executable by PUBLIC by default: the app role's set holds none of ours.
            sql.SQL("REVOKE EXECUTE ON FUNCTION {}() FROM PUBLIC").format(fn),
            sql.SQL("REVOKE ALL ON {} FROM {}").format(t, app),
            sql.SQL("REVOKE ALL ON SEQUENCE {} FROM {}").format(sql.Identifier(f"{TABLE}_id_seq"), app),
            sql.SQL("REVOKE UPDATE, DELETE, TRUNCATE, REFERENCES, TRIGGER ON {} FROM {}").format(t, owner),
        ]

    def backwards_statements(self) -> list[sql.Composable]:
        # Dropping the trail is a deliberate migration rollback; the trigger does not fire on DROP.
        return [
            sql.SQL("DROP TABLE IF EXISTS {}").format(sql.Identifier(TABLE)),
            sql.SQL("DROP FUNCTION IF EXISTS {}()").format(sql.Identifier(REFUSE_FUNCTION)),
        ]

    def describe(self):
        return "Create the append-only platform_audit table (no access for the app role)"
