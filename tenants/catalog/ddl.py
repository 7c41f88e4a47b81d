"""Lock-safe DDL: the helpers every migration operation here writes through.

`execute()` sends one statement through `schema_editor.execute()`, so
`manage.py sqlmigrate` prints it and runs nothing (as
django.contrib.postgres.operations do). `run_ddl()` runs a group of statements
in one short transaction under `SET LOCAL lock_timeout` (200 ms by default)
and retries it on a lock timeout, so DDL never queues behind a long reader
while blocking everyone queued behind it (docs/design.md, "Zero-downtime
DDL"). It fails with the database's error once MIGRATION_LOCK_RETRIES attempts
have timed out. Migrations using these are `atomic = False`.

SQL is composed with psycopg.sql (identifiers, literals) and bound parameters only.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

from django.conf import settings
from django.db import OperationalError, models, transaction
from django.db.migrations.operations import AddConstraint
from django.db.migrations.operations.base import Operation
from psycopg import errors, sql

Statement = sql.Composable | str
Params = Sequence[object] | None


def execute(schema_editor, statement: Statement, params: Params = None) -> None:
    """Run (or, under `sqlmigrate`, collect) one statement through the schema editor.

    Every write of every operation goes through here, so `sqlmigrate` prints
    it and runs nothing, as Django's own operations do. Composed statements
    are rendered to text first: the schema editor only takes strings.
    """
    if isinstance(statement, sql.Composable):
        schema_editor.connection.ensure_connection()
        statement = statement.as_string(schema_editor.connection.connection)
    schema_editor.execute(statement, params)


def comment(schema_editor, text: str) -> None:
    """A line in `sqlmigrate`'s output saying what the printed SQL cannot (loops, retries)."""
    if schema_editor.collect_sql:
        schema_editor.collected_sql.append(f"-- {text}")


def lock_timeout_statement() -> sql.Composable:
    return sql.SQL("SET LOCAL lock_timeout = {}").format(sql.Literal(f"{settings.MIGRATION_LOCK_TIMEOUT_MS}ms"))


def run_ddl(schema_editor, statements: Sequence[Statement | tuple[Statement, Params]]) -> None:
    """Run statements in one short transaction under lock_timeout, retrying on lock timeouts.

    Under `sqlmigrate` the same transaction is printed (BEGIN/COMMIT where the
    migration is not atomic itself) and nothing runs; the retries exist only
    at run time, so the output says so.
    """
    pairs = [statement if isinstance(statement, tuple) else (statement, None) for statement in statements]
    if schema_editor.collect_sql:
        comment(
            schema_editor,
            f"lock_timeout {settings.MIGRATION_LOCK_TIMEOUT_MS}ms: migrate retries this transaction on a lock timeout",
        )
        if not schema_editor.atomic_migration:
            execute(schema_editor, "BEGIN")
        execute(schema_editor, lock_timeout_statement())
        for query, params in pairs:
            execute(schema_editor, query, params)
        if not schema_editor.atomic_migration:
            execute(schema_editor, "COMMIT")
        return
    connection = schema_editor.connection
    retries = settings.MIGRATION_LOCK_RETRIES
    for attempt in range(1, retries + 1):
        try:
            with transaction.atomic(using=connection.alias):
                execute(schema_editor, lock_timeout_statement())
                for query, params in pairs:
                    execute(schema_editor, query, params)
            return
        except OperationalError as exc:
            if not isinstance(exc.__cause__, errors.LockNotAvailable) or attempt == retries:
                raise
            # Someone holds a conflicting lock (a long transaction, autovacuum):
            # step aside so the traffic queued behind us runs, then try again.
            time.sleep(min(0.05 * attempt, 1.0))


class StatementOperation(Operation):
    """A migration operation that is a list of SQL statements each way, and no model state change.

    The one statement runner of the migration operations here (privileges,
    Citus distribution, the platform audit table): subclasses say
    `forwards_statements()` and `backwards_statements()`; each statement goes
    through `execute()`, so `sqlmigrate` prints them. `applies_to()` lets an
    operation skip a database (the Citus ones run on a coordinator only), and
    `prologue()` adds statements that open either direction.
    """

    reversible = True
    reduces_to_sql = True

    def state_forwards(self, app_label, state):
        pass  # the database only: Django's model state does not change

    def forwards_statements(self) -> list[sql.Composable]:
        raise NotImplementedError

    def backwards_statements(self) -> list[sql.Composable]:
        raise NotImplementedError

    def applies_to(self, connection) -> bool:
        return True

    def prologue(self) -> list[sql.Composable]:
        return []

    def database_forwards(self, app_label, schema_editor, from_state, to_state):
        if self.applies_to(schema_editor.connection):
            for statement in [*self.prologue(), *self.forwards_statements()]:
                execute(schema_editor, statement)

    def database_backwards(self, app_label, schema_editor, from_state, to_state):
        if self.applies_to(schema_editor.connection):
            for statement in [*self.prologue(), *self.backwards_statements()]:
                execute(schema_editor, statement)


class TableOperation(Operation):
    """An operation on one table by name, whose database side is our own SQL."""

    reduces_to_sql = True
    reversible = True

    def __init__(self, table: str) -> None:
        self.table = table

    def state_forwards(self, app_label, state):
        pass

    @property
    def t(self) -> sql.Identifier:
        return sql.Identifier(self.table)


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

    def _constraint(self) -> models.UniqueConstraint:
        return models.UniqueConstraint(fields=self.fields, name=self.name)

    def state_forwards(self, app_label, state):
        AddConstraint(self.model_name, self._constraint()).state_forwards(app_label, state)

    def database_forwards(self, app_label, schema_editor, from_state, to_state):
        name, t = sql.Identifier(self.name), sql.Identifier(self.table)
        cols = sql.SQL(", ").join(sql.Identifier(c) for c in self.columns)
        # An interrupted CONCURRENTLY build leaves an INVALID index behind.
        execute(schema_editor, sql.SQL("DROP INDEX CONCURRENTLY IF EXISTS {}").format(name))
        execute(schema_editor, sql.SQL("CREATE UNIQUE INDEX CONCURRENTLY {} ON {} ({})").format(name, t, cols))
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

    def state_forwards(self, app_label, state):
        for operation in self.state_operations:
            operation.state_forwards(app_label, state)

    def database_forwards(self, app_label, schema_editor, from_state, to_state):
        run_ddl(schema_editor, [self.sql])

    def database_backwards(self, app_label, schema_editor, from_state, to_state):
        run_ddl(schema_editor, [self.reverse_sql])

    def describe(self):
        return f"Lock-safe SQL: {self.sql[:60]}"
