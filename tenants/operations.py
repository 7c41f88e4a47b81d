"""Migration operations: every RLS statement and every zero-downtime step.

Modelled on django.contrib.postgres.operations. The migrations read like the
seed's checklist, one line per table; each operation writes its SQL and its
reverse, so `migrate <app> <previous>` undoes any phase.

How they keep traffic flowing (NOTES, "Zero-downtime DDL"):
- Each DDL statement runs in its own short transaction with
  `SET LOCAL lock_timeout` (200 ms by default) and is retried on a lock
  timeout, so it never queues behind a long reader while blocking everyone
  queued behind it. Migrations using them are `atomic = False`.
- Columns are added nullable, foreign keys NOT VALID then VALIDATE (SHARE
  UPDATE EXCLUSIVE: traffic flows), NOT NULL through a validated CHECK (no
  table scan under ACCESS EXCLUSIVE), indexes CONCURRENTLY.
- Backfills run in committed batches by primary key, print progress, and are
  safe to re-run after an interruption (they only touch NULL rows).

SQL is composed with psycopg.sql (identifiers) and bound parameters only.
"""

from __future__ import annotations

import sys
import time
import uuid
from collections.abc import Sequence

from django.conf import settings
from django.db import OperationalError, models, transaction
from django.db.migrations.operations import AddConstraint, AddField, AlterField
from django.db.migrations.operations.base import Operation
from psycopg import errors, sql

from tenants.constants import (
    APP_ROLE,
    BYPASS_POLICY,
    BYPASS_ROLE,
    DEFAULT_TENANT_ID,
    INSERT_POLICY,
    ISOLATION_POLICY,
    OWNER_ROLE,
    TENANT_SETTING,
)

Statement = sql.Composable | str
Params = Sequence[object] | None


def run_ddl(schema_editor, statements: Sequence[Statement | tuple[Statement, Params]]) -> None:
    """Run statements in one short transaction under lock_timeout, retrying on lock timeouts."""
    connection = schema_editor.connection
    retries = settings.MIGRATION_LOCK_RETRIES
    for attempt in range(1, retries + 1):
        try:
            with (
                transaction.atomic(using=connection.alias),
                connection.cursor() as cursor,
            ):
                cursor.execute(
                    "SELECT set_config('lock_timeout', %s, true)",
                    [f"{settings.MIGRATION_LOCK_TIMEOUT_MS}ms"],
                )
                for statement in statements:
                    query, params = statement if isinstance(statement, tuple) else (statement, None)
                    if isinstance(query, sql.Composable):
                        query = query.as_string(cursor.connection)
                    cursor.execute(query, params)
            return
        except OperationalError as exc:
            if not isinstance(exc.__cause__, errors.LockNotAvailable) or attempt == retries:
                raise
            # Someone holds a conflicting lock (a long transaction, autovacuum):
            # step aside so the traffic queued behind us runs, then try again.
            time.sleep(min(0.05 * attempt, 1.0))


def _say(message: str) -> None:
    sys.stdout.write(f"  {message}\n")
    sys.stdout.flush()


def tenant_fk_name(table: str) -> str:
    return f"fk_{table}_tenant"


def _tenant_field() -> models.ForeignKey:
    # Same shape as tenants.models.TenantModel.tenant.
    return models.ForeignKey(
        "tenants.Tenant",
        on_delete=models.CASCADE,
        db_constraint=False,
        db_index=False,
        related_name="+",
        editable=False,
    )


class TableOperation(Operation):
    """An operation on one table by name, whose database side is our own SQL."""

    reduces_to_sql = True
    reversible = True

    def __init__(self, table: str) -> None:
        self.table = table

    def deconstruct(self):
        return self.__class__.__qualname__, [self.table], {}

    def state_forwards(self, app_label, state):
        pass

    @property
    def t(self) -> sql.Identifier:
        return sql.Identifier(self.table)


class AddTenantColumn(TableOperation):
    """US-002/US-003 step 1: `tenant_id uuid NULL`, the default tenant as a temporary
    column default (old code still inserts rows without one), and the foreign key
    `ON DELETE CASCADE NOT VALID`. All three are metadata-only: no table rewrite.

    Reversing drops the column, and refuses while any row belongs to a tenant
    other than the default one: rolling back past tenancy would merge firms.
    """

    def __init__(self, model_name: str, table: str) -> None:
        super().__init__(table)
        self.model_name = model_name

    def deconstruct(self):
        return self.__class__.__qualname__, [self.model_name, self.table], {}

    def state_forwards(self, app_label, state):
        AddField(self.model_name, "tenant", _tenant_field()).state_forwards(app_label, state)

    def database_forwards(self, app_label, schema_editor, from_state, to_state):
        run_ddl(
            schema_editor,
            [
                sql.SQL("ALTER TABLE {} ADD COLUMN IF NOT EXISTS tenant_id uuid").format(self.t),
                (
                    sql.SQL("ALTER TABLE {} ALTER COLUMN tenant_id SET DEFAULT {}").format(
                        self.t, sql.Literal(str(DEFAULT_TENANT_ID))
                    ),
                    None,
                ),
                sql.SQL(
                    "ALTER TABLE {} ADD CONSTRAINT {} FOREIGN KEY (tenant_id) "
                    "REFERENCES tenants (id) ON DELETE CASCADE NOT VALID"
                ).format(self.t, sql.Identifier(tenant_fk_name(self.table))),
            ],
        )

    def database_backwards(self, app_label, schema_editor, from_state, to_state):
        with schema_editor.connection.cursor() as cursor:
            cursor.execute(
                sql.SQL("SELECT count(*) FROM {} WHERE tenant_id <> %s").format(self.t).as_string(cursor.connection),
                [DEFAULT_TENANT_ID],
            )
            foreign_rows = cursor.fetchone()[0]
        if foreign_rows:
            raise RuntimeError(
                f"Cannot roll {self.table} back to single-tenant: {foreign_rows} rows belong to tenants "
                "other than the default one. Move or delete them first (no data is dropped silently)."
            )
        run_ddl(
            schema_editor,
            [sql.SQL("ALTER TABLE {} DROP COLUMN IF EXISTS tenant_id").format(self.t)],
        )

    def describe(self):
        return f"Add nullable tenant_id (default tenant as temporary default, FK NOT VALID) to {self.table}"


class BackfillTenant(TableOperation):
    """US-002/US-003 step 3: fill tenant_id where it is NULL, in committed batches.

    `from_users=False` gives every row the default tenant (users); True takes
    the tenant of the row's user (domain tables). Walks the primary key so each
    batch is an index range scan; re-running after an interruption only
    touches the rows still NULL. Batch size: TENANT_BACKFILL_BATCH_SIZE.
    """

    def __init__(self, table: str, from_users: bool = False) -> None:
        super().__init__(table)
        self.from_users = from_users

    def deconstruct(self):
        return (
            self.__class__.__qualname__,
            [self.table],
            {"from_users": self.from_users},
        )

    def _update_batch(self, cursor, after, batch_size):
        batch = sql.SQL(
            "WITH batch AS (SELECT id FROM {t} WHERE id > %(after)s ORDER BY id LIMIT %(size)s), "
            "filled AS (UPDATE {t} AS row SET tenant_id = {source} "
            "FROM batch WHERE row.id = batch.id AND row.tenant_id IS NULL RETURNING 1) "
            "SELECT (SELECT id FROM batch ORDER BY id DESC LIMIT 1), "
            "(SELECT count(*) FROM batch), (SELECT count(*) FROM filled)"
        )
        source: sql.Composable
        if self.from_users:
            source = sql.SQL("(SELECT u.tenant_id FROM users u WHERE u.id = row.user_id)")
        else:
            source = sql.Literal(str(DEFAULT_TENANT_ID))
        query = batch.format(t=self.t, source=source).as_string(cursor.connection)
        cursor.execute(query, {"after": after, "size": batch_size})
        return cursor.fetchone()

    def database_forwards(self, app_label, schema_editor, from_state, to_state):
        connection = schema_editor.connection
        batch_size = settings.TENANT_BACKFILL_BATCH_SIZE
        with connection.cursor() as cursor:
            cursor.execute(
                sql.SQL("SELECT count(*) FROM {} WHERE tenant_id IS NULL").format(self.t).as_string(cursor.connection)
            )
            todo = cursor.fetchone()[0]
        _say(f"backfill {self.table}: {todo} rows without tenant_id, batches of {batch_size}")
        started = time.monotonic()
        after = uuid.UUID(int=0)
        filled_total = 0
        while True:
            # Each batch is its own transaction: short row locks, nothing to
            # redo if the migration is interrupted.
            with (
                transaction.atomic(using=connection.alias),
                connection.cursor() as cursor,
            ):
                last_id, scanned, filled = self._update_batch(cursor, after, batch_size)
            if not scanned:
                break
            after = last_id
            filled_total += filled
            if filled and (filled_total % (batch_size * 20) < filled or filled_total >= todo):
                rate = filled_total / max(time.monotonic() - started, 1e-6)
                _say(f"backfill {self.table}: {filled_total}/{todo} rows ({rate:,.0f} rows/s)")
        with connection.cursor() as cursor:
            # Fresh statistics for the new column, before the planner needs them.
            cursor.execute(sql.SQL("ANALYZE {}").format(self.t).as_string(cursor.connection))
        _say(f"backfill {self.table}: done, {filled_total} rows in {time.monotonic() - started:.1f}s")

    def database_backwards(self, app_label, schema_editor, from_state, to_state):
        pass  # AddTenantColumn's reverse drops the column

    def describe(self):
        return f"Backfill {self.table}.tenant_id in batches"


class SetTenantNotNull(TableOperation):
    """US-002/US-003 step 4: validate the foreign key, then NOT NULL without a
    long ACCESS EXCLUSIVE scan: CHECK NOT VALID -> VALIDATE (traffic flows) ->
    SET NOT NULL (skips the scan, PG12+) -> drop the CHECK."""

    def database_forwards(self, app_label, schema_editor, from_state, to_state):
        check = sql.Identifier(f"{self.table}_tenant_id_not_null")
        for statement in (
            sql.SQL("ALTER TABLE {} VALIDATE CONSTRAINT {}").format(self.t, sql.Identifier(tenant_fk_name(self.table))),
            sql.SQL("ALTER TABLE {} ADD CONSTRAINT {} CHECK (tenant_id IS NOT NULL) NOT VALID").format(self.t, check),
            sql.SQL("ALTER TABLE {} VALIDATE CONSTRAINT {}").format(self.t, check),
            sql.SQL("ALTER TABLE {} ALTER COLUMN tenant_id SET NOT NULL").format(self.t),
            sql.SQL("ALTER TABLE {} DROP CONSTRAINT {}").format(self.t, check),
        ):
            run_ddl(schema_editor, [statement])

    def database_backwards(self, app_label, schema_editor, from_state, to_state):
        run_ddl(
            schema_editor,
            [sql.SQL("ALTER TABLE {} ALTER COLUMN tenant_id DROP NOT NULL").format(self.t)],
        )

    def describe(self):
        return f"Make {self.table}.tenant_id NOT NULL via a validated CHECK"


class DropTenantDefault(TableOperation):
    """US-004: new code always sets tenant_id; the temporary default goes, so a row
    without a tenant fails loudly instead of landing in the default tenant."""

    def database_forwards(self, app_label, schema_editor, from_state, to_state):
        run_ddl(
            schema_editor,
            [sql.SQL("ALTER TABLE {} ALTER COLUMN tenant_id DROP DEFAULT").format(self.t)],
        )

    def database_backwards(self, app_label, schema_editor, from_state, to_state):
        run_ddl(
            schema_editor,
            [
                sql.SQL("ALTER TABLE {} ALTER COLUMN tenant_id SET DEFAULT {}").format(
                    self.t, sql.Literal(str(DEFAULT_TENANT_ID))
                )
            ],
        )

    def describe(self):
        return f"Drop the temporary tenant_id default of {self.table}"


class AddUniqueConstraintConcurrently(Operation):
    """A unique constraint built as CREATE UNIQUE INDEX CONCURRENTLY + ADD CONSTRAINT
    USING INDEX, so writes are never blocked for the index build."""

    reversible = True
    atomic = False

    def __init__(
        self,
        model_name: str,
        table: str,
        name: str,
        columns: Sequence[str],
        fields: Sequence[str],
    ) -> None:
        self.model_name, self.table, self.name = model_name, table, name
        self.columns, self.fields = list(columns), list(fields)

    def deconstruct(self):
        return (
            self.__class__.__qualname__,
            [self.model_name, self.table, self.name, self.columns, self.fields],
            {},
        )

    def _constraint(self) -> models.UniqueConstraint:
        return models.UniqueConstraint(fields=self.fields, name=self.name)

    def state_forwards(self, app_label, state):
        AddConstraint(self.model_name, self._constraint()).state_forwards(app_label, state)

    def database_forwards(self, app_label, schema_editor, from_state, to_state):
        name, t = sql.Identifier(self.name), sql.Identifier(self.table)
        cols = sql.SQL(", ").join(sql.Identifier(c) for c in self.columns)
        with schema_editor.connection.cursor() as cursor:
            # An interrupted CONCURRENTLY build leaves an INVALID index behind.
            cursor.execute(sql.SQL("DROP INDEX CONCURRENTLY IF EXISTS {}").format(name).as_string(cursor.connection))
            cursor.execute(
                sql.SQL("CREATE UNIQUE INDEX CONCURRENTLY {} ON {} ({})")
                .format(name, t, cols)
                .as_string(cursor.connection)
            )
        run_ddl(
            schema_editor,
            [sql.SQL("ALTER TABLE {} ADD CONSTRAINT {} UNIQUE USING INDEX {}").format(t, name, name)],
        )

    def database_backwards(self, app_label, schema_editor, from_state, to_state):
        run_ddl(
            schema_editor,
            [
                sql.SQL("ALTER TABLE {} DROP CONSTRAINT IF EXISTS {}").format(
                    sql.Identifier(self.table), sql.Identifier(self.name)
                )
            ],
        )

    def describe(self):
        return f"Create unique constraint {self.name} concurrently"


class ReplaceUserForeignKey(TableOperation):
    """US-003: the plain `user_id -> users(id)` key becomes the composite
    `(tenant_id, user_id) -> users(tenant_id, id)`, so a row can only point at
    a user of its own tenant. Foreign-key checks run past RLS (NOTES): with the
    plain key, tenant A could reference, and so probe, tenant B's user ids."""

    def __init__(self, model_name: str, table: str) -> None:
        super().__init__(table)
        self.model_name = model_name

    def deconstruct(self):
        return self.__class__.__qualname__, [self.model_name, self.table], {}

    @property
    def composite(self) -> sql.Identifier:
        return sql.Identifier(f"fk_{self.table}_tenant_user")

    @property
    def legacy(self) -> sql.Identifier:
        return sql.Identifier(f"fk_{self.table}_user")

    def state_forwards(self, app_label, state):
        field: models.ForeignKey = models.ForeignKey(
            "tenants.User",
            on_delete=models.PROTECT,
            db_constraint=False,
            related_name="+",
            editable=False,
        )
        AlterField(self.model_name, "user", field).state_forwards(app_label, state)

    def _drop_plain_user_keys(self, schema_editor) -> None:
        # The legacy key carries Django's generated name; find it by shape.
        with schema_editor.connection.cursor() as cursor:
            cursor.execute(
                "SELECT conname FROM pg_constraint c WHERE c.conrelid = %s::regclass AND c.contype = 'f' "
                "AND c.confrelid = 'users'::regclass AND cardinality(c.conkey) = 1",
                [self.table],
            )
            names = [row[0] for row in cursor.fetchall()]
        for name in names:
            run_ddl(
                schema_editor,
                [sql.SQL("ALTER TABLE {} DROP CONSTRAINT {}").format(self.t, sql.Identifier(name))],
            )

    def database_forwards(self, app_label, schema_editor, from_state, to_state):
        run_ddl(
            schema_editor,
            [
                sql.SQL(
                    "ALTER TABLE {} ADD CONSTRAINT {} FOREIGN KEY (tenant_id, user_id) "
                    "REFERENCES users (tenant_id, id) NOT VALID"
                ).format(self.t, self.composite)
            ],
        )
        run_ddl(
            schema_editor,
            [sql.SQL("ALTER TABLE {} VALIDATE CONSTRAINT {}").format(self.t, self.composite)],
        )
        # The plain key: Django's generated name from `legacy`, or ours after a
        # rollback and a second forward.
        self._drop_plain_user_keys(schema_editor)

    def database_backwards(self, app_label, schema_editor, from_state, to_state):
        run_ddl(
            schema_editor,
            [
                sql.SQL(
                    "ALTER TABLE {} ADD CONSTRAINT {} FOREIGN KEY (user_id) REFERENCES users (id) NOT VALID"
                ).format(self.t, self.legacy)
            ],
        )
        run_ddl(
            schema_editor,
            [sql.SQL("ALTER TABLE {} VALIDATE CONSTRAINT {}").format(self.t, self.legacy)],
        )
        run_ddl(
            schema_editor,
            [sql.SQL("ALTER TABLE {} DROP CONSTRAINT IF EXISTS {}").format(self.t, self.composite)],
        )

    def describe(self):
        return f"Replace {self.table}.user_id's key with (tenant_id, user_id) -> users"


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
      into a 140-415 ms parallel seq scan (NOTES).
    - FORCE, so the owner is held too unless it holds rls_bypass_role.
    With no tenant set, or '', the policies compare against NULL: no rows, no error.

    `current_tenant`: the SQL expression for "the current tenant" (a constant
    fragment, never a value); CURRENT_TENANT_SQL unless a migration froze its own.
    """

    def __init__(self, table: str, current_tenant: str | None = None) -> None:
        super().__init__(table)
        self.current_tenant = current_tenant

    def deconstruct(self):
        kwargs = {} if self.current_tenant is None else {"current_tenant": self.current_tenant}
        return self.__class__.__qualname__, [self.table], kwargs

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
    django_migrations. Cluster roles themselves come from scripts/db.sh."""

    reversible = True
    reduces_to_sql = True

    def deconstruct(self):
        return self.__class__.__qualname__, [], {}

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


class LockSafeRunSQL(Operation):
    """RunSQL for one-off DDL, run through run_ddl (lock_timeout and retries).

    `sql`/`reverse_sql` are constant statements (no values interpolated);
    `state_operations` keep Django's model state in step, as in RunSQL.
    """

    reversible = True
    reduces_to_sql = True

    def __init__(self, sql: str, reverse_sql: str, state_operations: Sequence[Operation] = ()) -> None:
        self.sql, self.reverse_sql, self.state_operations = (
            sql,
            reverse_sql,
            list(state_operations),
        )

    def deconstruct(self):
        kwargs = {"state_operations": self.state_operations} if self.state_operations else {}
        return self.__class__.__qualname__, [self.sql, self.reverse_sql], kwargs

    def state_forwards(self, app_label, state):
        for operation in self.state_operations:
            operation.state_forwards(app_label, state)

    def database_forwards(self, app_label, schema_editor, from_state, to_state):
        run_ddl(schema_editor, [self.sql])

    def database_backwards(self, app_label, schema_editor, from_state, to_state):
        run_ddl(schema_editor, [self.reverse_sql])

    def describe(self):
        return f"Lock-safe SQL: {self.sql[:60]}"
