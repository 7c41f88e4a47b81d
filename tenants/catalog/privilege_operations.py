"""Migration operations that give the app role exactly its privileges (tenants.catalog.privileges).

- `RestrictAppRolePrivileges`: once, for the existing schema. Takes back
  what the first migration's GrantAppRole handed out broadly (read-write on
  every table and sequence, the same on every table created later through
  default privileges), takes TEMP on the database and CREATE on schema public
  from PUBLIC and the app role, then grants exactly SELECT on `tenants` and
  SELECT, INSERT, UPDATE, DELETE on the tenant tables it names.
- `GrantTenantTablePrivileges`: for every tenant table created after that
  (`append_only=True`: SELECT and INSERT only, for a record of history such
  as the tenant audit log, which no request may rewrite).
  Default privileges no longer grant anything, so a new table is closed to
  the app role until its migration says otherwise (a platform table stays
  closed); tests/tenants/test_privileges.py fails if a TenantModel table
  lacks its grant.

Every statement goes through `schema_editor.execute()`, so `sqlmigrate`
prints it and runs nothing. Reversible: the reverse restores the previous
grants (except CREATE on schema public for PUBLIC, which PostgreSQL 15 no
longer gives either). Database-wide statements name the database with
`current_database()` in a DO block, so they hold on test databases and behind
a pooler alias alike. On Citus the coordinator propagates GRANT/REVOKE on
distributed and reference tables to their shards.
"""

from __future__ import annotations

from collections.abc import Sequence

from psycopg import sql

from tenants.catalog.ddl import StatementOperation
from tenants.constants import APP_ROLE, OWNER_ROLE

READ_WRITE = sql.SQL("SELECT, INSERT, UPDATE, DELETE")
APPEND_ONLY = sql.SQL("SELECT, INSERT")
NEVER_DELETED = sql.SQL("SELECT, INSERT, UPDATE")


def _database_statement(before: str, after: str) -> sql.Composed:
    """`<before> <the current database, quoted> <after>`, run as a DO block."""
    return sql.SQL(
        "DO $privileges$ BEGIN EXECUTE {} || quote_ident(current_database()) || {}; END $privileges$"
    ).format(sql.Literal(before + " "), sql.Literal(" " + after))


class RestrictAppRolePrivileges(StatementOperation):
    def __init__(self, read_only_tables: Sequence[str], tenant_tables: Sequence[str]) -> None:
        self.read_only_tables = list(read_only_tables)
        self.tenant_tables = list(tenant_tables)

    def deconstruct(self):
        return self.__class__.__qualname__, [self.read_only_tables, self.tenant_tables], {}

    def forwards_statements(self) -> list[sql.Composable]:
        owner, app = sql.Identifier(OWNER_ROLE), sql.Identifier(APP_ROLE)
        app_name = APP_ROLE.replace('"', '""')
        return [
            # Tables created from now on are closed to the app role by default.
            sql.SQL("ALTER DEFAULT PRIVILEGES FOR ROLE {} IN SCHEMA public REVOKE ALL ON TABLES FROM {}").format(
                owner, app
            ),
            sql.SQL("ALTER DEFAULT PRIVILEGES FOR ROLE {} IN SCHEMA public REVOKE ALL ON SEQUENCES FROM {}").format(
                owner, app
            ),
            sql.SQL("REVOKE ALL ON ALL TABLES IN SCHEMA public FROM {}").format(app),
            sql.SQL("REVOKE ALL ON ALL SEQUENCES IN SCHEMA public FROM {}").format(app),
            *(sql.SQL("GRANT SELECT ON {} TO {}").format(sql.Identifier(t), app) for t in self.read_only_tables),
            *(sql.SQL("GRANT {} ON {} TO {}").format(READ_WRITE, sql.Identifier(t), app) for t in self.tenant_tables),
            # A temp table named like a tenant table would shadow it (no RLS)
            # for every unqualified query of that session. PostgreSQL 15 no
            # longer gives PUBLIC CREATE on public; 14 did.
            sql.SQL("REVOKE CREATE ON SCHEMA public FROM PUBLIC, {}").format(app),
            _database_statement("REVOKE TEMPORARY, CREATE ON DATABASE", f'FROM PUBLIC, "{app_name}"'),
        ]

    def backwards_statements(self) -> list[sql.Composable]:
        owner, app = sql.Identifier(OWNER_ROLE), sql.Identifier(APP_ROLE)
        # What tenants.operations.GrantAppRole left, and PostgreSQL's default TEMP.
        return [
            _database_statement("GRANT TEMPORARY ON DATABASE", "TO PUBLIC"),
            sql.SQL("GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO {}").format(app),
            sql.SQL("GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO {}").format(app),
            sql.SQL("REVOKE INSERT, UPDATE, DELETE ON django_migrations FROM {}").format(app),
            sql.SQL("ALTER DEFAULT PRIVILEGES FOR ROLE {} IN SCHEMA public GRANT {} ON TABLES TO {}").format(
                owner, READ_WRITE, app
            ),
            sql.SQL(
                "ALTER DEFAULT PRIVILEGES FOR ROLE {} IN SCHEMA public GRANT USAGE, SELECT ON SEQUENCES TO {}"
            ).format(owner, app),
        ]

    def describe(self):
        return "Give the app role exactly SELECT on tenants and read-write on the tenant tables; no TEMP, no CREATE"


class GrantTenantTablePrivileges(StatementOperation):
    """SELECT, INSERT, UPDATE, DELETE on one new tenant table (never TRUNCATE);
    SELECT and INSERT only with `append_only=True`; no DELETE with `never_deleted=True`."""

    def __init__(self, table: str, append_only: bool = False, never_deleted: bool = False) -> None:
        self.table = table
        self.append_only = append_only
        self.never_deleted = never_deleted

    def deconstruct(self):
        kwargs = {"append_only": self.append_only, "never_deleted": self.never_deleted}
        return self.__class__.__qualname__, [self.table], {k: v for k, v in kwargs.items() if v}

    def forwards_statements(self) -> list[sql.Composable]:
        privileges = APPEND_ONLY if self.append_only else NEVER_DELETED if self.never_deleted else READ_WRITE
        return [
            sql.SQL("GRANT {} ON {} TO {}").format(privileges, sql.Identifier(self.table), sql.Identifier(APP_ROLE))
        ]

    def backwards_statements(self) -> list[sql.Composable]:
        return [sql.SQL("REVOKE ALL ON {} FROM {}").format(sql.Identifier(self.table), sql.Identifier(APP_ROLE))]

    def describe(self):
        what = (
            "SELECT and INSERT only"
            if self.append_only
            else "SELECT, INSERT and UPDATE"
            if self.never_deleted
            else "read-write"
        )
        return f"Grant the app role {what} on tenant table {self.table}"
