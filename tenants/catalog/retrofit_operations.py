"""The one-off tenancy retrofit: turning the single-tenant schema into a tenant one.

US-002/US-003's steps, one operation per step and table, each with its
reverse so `migrate <app> <previous>` undoes a phase. They keep traffic
flowing (docs/design.md, "Zero-downtime DDL"): columns are added nullable,
foreign keys NOT VALID then VALIDATE (SHARE UPDATE EXCLUSIVE: traffic flows),
NOT NULL through a validated CHECK (no table scan under ACCESS EXCLUSIVE),
backfills in committed batches by primary key that print progress and are
safe to re-run (they only touch NULL rows). Rolling back past tenancy fails
closed: it refuses, with the row count, while other tenants own rows.
"""

from __future__ import annotations

import sys
import time
import uuid

from django.conf import settings
from django.db import models, transaction
from django.db.migrations.operations import AddField, AlterField
from psycopg import sql

from tenants.catalog.ddl import TableOperation, comment, execute, run_ddl
from tenants.constants import DEFAULT_TENANT_ID


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

    def refuse_if_other_tenants(self) -> sql.Composable:
        # In SQL, not Python: the guard is part of what `sqlmigrate --backwards`
        # prints, and it runs in the same transaction as the DROP it protects.
        return sql.SQL(
            "DO $guard$ DECLARE foreign_rows bigint; BEGIN "
            "SELECT count(*) INTO foreign_rows FROM {t} WHERE tenant_id <> {default}; "
            "IF foreign_rows > 0 THEN RAISE EXCEPTION 'Cannot roll % back to single-tenant: % rows belong to tenants "
            "other than the default one. Move or delete them first (no data is dropped silently).', "
            "{name}, foreign_rows; END IF; END $guard$"
        ).format(t=self.t, default=sql.Literal(str(DEFAULT_TENANT_ID)), name=sql.Literal(self.table))

    def database_backwards(self, app_label, schema_editor, from_state, to_state):
        run_ddl(
            schema_editor,
            [
                self.refuse_if_other_tenants(),
                sql.SQL("ALTER TABLE {} DROP COLUMN IF EXISTS tenant_id").format(self.t),
            ],
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

    def _source(self) -> sql.Composable:
        if self.from_users:
            return sql.SQL("(SELECT u.tenant_id FROM users u WHERE u.id = row.user_id)")
        return sql.Literal(str(DEFAULT_TENANT_ID))

    def _fill_range(self) -> sql.Composable:
        return sql.SQL(
            "UPDATE {t} AS row SET tenant_id = {source} WHERE row.id > %s AND row.id <= %s AND row.tenant_id IS NULL"
        ).format(t=self.t, source=self._source())

    def _next_batch(self, cursor, after, batch_size) -> tuple[uuid.UUID, int, int]:
        """Read-only: the batch's last primary key, its size and how many rows it will fill."""
        query = sql.SQL(
            "WITH batch AS (SELECT id, tenant_id FROM {} WHERE id > %s ORDER BY id LIMIT %s) "
            "SELECT (SELECT id FROM batch ORDER BY id DESC LIMIT 1), (SELECT count(*) FROM batch), "
            "(SELECT count(*) FROM batch WHERE tenant_id IS NULL)"
        ).format(self.t)
        cursor.execute(query.as_string(cursor.connection), [after, batch_size])
        return cursor.fetchone()

    def _collect(self, schema_editor, batch_size: int) -> None:
        comment(
            schema_editor,
            f"migrate runs this in committed batches of {batch_size} rows by primary key "
            "(TENANT_BACKFILL_BATCH_SIZE), one transaction each, until no row is left; one statement here:",
        )
        execute(
            schema_editor,
            sql.SQL("UPDATE {t} AS row SET tenant_id = {source} WHERE row.tenant_id IS NULL").format(
                t=self.t, source=self._source()
            ),
        )
        execute(schema_editor, sql.SQL("ANALYZE {}").format(self.t))

    def database_forwards(self, app_label, schema_editor, from_state, to_state):
        batch_size = settings.TENANT_BACKFILL_BATCH_SIZE
        if schema_editor.collect_sql:
            self._collect(schema_editor, batch_size)
            return
        connection = schema_editor.connection
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
            with transaction.atomic(using=connection.alias):
                with connection.cursor() as cursor:
                    last_id, scanned, to_fill = self._next_batch(cursor, after, batch_size)
                if not scanned:
                    break
                if to_fill:
                    execute(schema_editor, self._fill_range(), [after, last_id])
            after = last_id
            filled_total += to_fill
            if to_fill and (filled_total % (batch_size * 20) < to_fill or filled_total >= todo):
                rate = filled_total / max(time.monotonic() - started, 1e-6)
                _say(f"backfill {self.table}: {filled_total}/{todo} rows ({rate:,.0f} rows/s)")
        # Fresh statistics for the new column, before the planner needs them.
        execute(schema_editor, sql.SQL("ANALYZE {}").format(self.t))
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


class ReplaceUserForeignKey(TableOperation):
    """US-003: the plain `user_id -> users(id)` key becomes the composite
    `(tenant_id, user_id) -> users(tenant_id, id)`, so a row can only point at
    a user of its own tenant. Foreign-key checks run past RLS (docs/design.md): with the
    plain key, tenant A could reference, and so probe, tenant B's user ids."""

    def __init__(self, model_name: str, table: str) -> None:
        super().__init__(table)
        self.model_name = model_name

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
        # The legacy key carries Django's generated name; find it by shape. A
        # read-only catalog lookup, so `sqlmigrate` runs it too and prints the
        # DROP for the name this database really has.
        with schema_editor.connection.cursor() as cursor:
            cursor.execute(
                "SELECT conname FROM pg_constraint c WHERE c.conrelid = to_regclass(%s) AND c.contype = 'f' "
                "AND c.confrelid = to_regclass('users') AND cardinality(c.conkey) = 1 ORDER BY conname",
                [self.table],
            )
            names = [row[0] for row in cursor.fetchall()]
        if not names:
            comment(schema_editor, f"{self.table} has no single-column key to users in this database: nothing to drop")
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
