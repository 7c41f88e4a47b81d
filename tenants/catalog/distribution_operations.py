"""Migration operations for the distributed layout on a Citus coordinator.

Contract. On a Citus coordinator (the `citus` extension installed here, this
node the coordinator, at least one worker registered) the operations below
build the layout docs/scaling.md describes: `tenants` a reference table
(a copy on every node), the tenant tables distributed by `tenant_id` and
colocated with `users`, so one tenant's rows of every table live on the same
worker and the keys between them are checked there. On plain PostgreSQL, or a
Citus node with no workers, each one is a no-op: the single-node schema stays
exactly what the earlier migrations made. `ReshapeTenantPolicies` is the one
exception: it runs on both, so both backends share one policy shape.

Why the steps and their order (each reproduced on Citus 13.2):
- Citus distributes a table only when every unique key holds the
  distribution column: primary keys become (tenant_id, id). Django's pk
  stays `id` (uuid4, unique in practice; the database enforces it per tenant).
- A local table may not reference a distributed one, and making `tenants` a
  reference table while local tables reference it turns them into "Citus
  local tables" that can then not be distributed. So the foreign keys come
  off first (DropForeignKeyOnCitus), the tables are distributed, and the keys
  go back between colocated shards (AddForeignKeyOnCitus). Django's
  `django_admin_log.user_id` key stays off: the admin log is a coordinator
  table, `users` is not.
- Forced RLS, the policies (in the inline shape: Citus refuses sub-selects in
  them), the bypass policy and the grants are copied onto every shard by
  `create_distributed_table` itself; later GRANTs and policy changes on the
  distributed table reach the shards too.
- `SET LOCAL citus.multi_shard_modify_mode TO 'sequential'` first: DDL
  after a parallel multi-shard step in one transaction is refused otherwise.

Every statement goes through `schema_editor.execute()`, so `sqlmigrate`
prints it (against a coordinator: the Citus statements; elsewhere: none) and
runs nothing; the only thing read is whether the database is a coordinator.
Use the Citus operations in an atomic migration: a half-distributed schema
has lost its foreign keys, so any error rolls the whole layout back.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from django.db.migrations.operations.base import Operation
from psycopg import sql

from tenants.catalog.ddl import StatementOperation, run_ddl
from tenants.catalog.rls_operations import EnableTenantRLS

DISTRIBUTION_COLUMN = "tenant_id"
SEQUENTIAL = sql.SQL("SET LOCAL citus.multi_shard_modify_mode TO 'sequential'")


def is_citus_coordinator(connection) -> bool:
    """True when `connection` is on a Citus coordinator with at least one worker.

    A read of the catalog only, so it is safe under `sqlmigrate` too.
    """
    with connection.cursor() as cursor:
        cursor.execute("SELECT EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'citus')")
        if not cursor.fetchone()[0]:
            return False
        cursor.execute(
            "SELECT citus_is_coordinator() AND EXISTS (SELECT 1 FROM pg_dist_node "
            "WHERE groupid <> 0 AND noderole = 'primary' AND isactive)"
        )
        return bool(cursor.fetchone()[0])


class CitusOperation(StatementOperation):
    """Statements that run on a Citus coordinator only; a no-op anywhere else."""

    def applies_to(self, connection) -> bool:
        return is_citus_coordinator(connection)

    def prologue(self) -> list[sql.Composable]:
        return [SEQUENTIAL]


class MakeReferenceTable(CitusOperation):
    """A table every tenant shares (`tenants`), copied whole onto every node, so
    keys to it and joins with it stay on the worker. Reverse: a local table again."""

    def __init__(self, table: str) -> None:
        self.table = table

    def deconstruct(self):
        return self.__class__.__qualname__, [self.table], {}

    def forwards_statements(self) -> list[sql.Composable]:
        name = sql.Literal(self.table)
        return [
            sql.SQL("SELECT create_reference_table({})").format(name),
            # The rows now live in the shards; the coordinator's own heap copy goes.
            sql.SQL("SELECT truncate_local_data_after_distributing_table({})").format(name),
        ]

    def backwards_statements(self) -> list[sql.Composable]:
        return [sql.SQL("SELECT undistribute_table({})").format(sql.Literal(self.table))]

    def describe(self):
        return f"On a Citus coordinator: make {self.table} a reference table"


class DistributeTenantTable(CitusOperation):
    """One tenant table distributed by tenant_id, colocated with `colocate_with`.

    Its primary key becomes (tenant_id, id) first: Citus refuses a unique key
    without the distribution column. Every other unique key here already
    leads with tenant_id. Rows already in the table are copied into the shards.
    Reverse: a local table with its single-column primary key again.
    """

    def __init__(self, table: str, colocate_with: str | None = None) -> None:
        self.table = table
        self.colocate_with = colocate_with

    def deconstruct(self):
        kwargs = {"colocate_with": self.colocate_with} if self.colocate_with else {}
        return self.__class__.__qualname__, [self.table], kwargs

    def _primary_key(self, *columns: str) -> sql.Composable:
        t = sql.Identifier(self.table)
        pkey = sql.Identifier(f"{self.table}_pkey")
        return sql.SQL("ALTER TABLE {t} DROP CONSTRAINT {pkey}, ADD CONSTRAINT {pkey} PRIMARY KEY ({cols})").format(
            t=t, pkey=pkey, cols=sql.SQL(", ").join(map(sql.Identifier, columns))
        )

    def _owner_copies(self, statement: sql.Composable) -> list[sql.Composable]:
        # Distributing (and undistributing) a table that holds rows COPYs them
        # into the shards as the owner, and COPY is refused under row-level
        # security: FORCE is lifted for the copy and put back in the same
        # transaction, so no other session ever sees the table without it (the
        # app role, which owns nothing, is under the policies either way).
        t = sql.Identifier(self.table)
        return [
            sql.SQL("ALTER TABLE {} NO FORCE ROW LEVEL SECURITY").format(t),
            statement,
            sql.SQL("ALTER TABLE {} FORCE ROW LEVEL SECURITY").format(t),
        ]

    def forwards_statements(self) -> list[sql.Composable]:
        name = sql.Literal(self.table)
        colocation = (
            sql.SQL(", colocate_with => {}").format(sql.Literal(self.colocate_with))
            if self.colocate_with
            else sql.SQL("")
        )
        return [
            self._primary_key(DISTRIBUTION_COLUMN, "id"),
            *self._owner_copies(
                sql.SQL("SELECT create_distributed_table({}, {}{})").format(
                    name, sql.Literal(DISTRIBUTION_COLUMN), colocation
                )
            ),
            sql.SQL("SELECT truncate_local_data_after_distributing_table({})").format(name),
        ]

    def backwards_statements(self) -> list[sql.Composable]:
        return [
            *self._owner_copies(sql.SQL("SELECT undistribute_table({})").format(sql.Literal(self.table))),
            self._primary_key("id"),
        ]

    def describe(self):
        where = f", colocated with {self.colocate_with}" if self.colocate_with else ""
        return f"On a Citus coordinator: distribute {self.table} by {DISTRIBUTION_COLUMN}{where}"


@dataclass(frozen=True)
class ForeignKeySpec:
    """A foreign key spelled out, so a migration freezes its literal copy."""

    table: str
    name: str
    columns: tuple[str, ...]
    references: str
    referenced_columns: tuple[str, ...]
    on_delete_cascade: bool = False
    deferrable: bool = False

    def add(self) -> sql.Composable:
        return sql.SQL("ALTER TABLE {} ADD CONSTRAINT {} FOREIGN KEY ({}) REFERENCES {} ({}){}{}").format(
            sql.Identifier(self.table),
            sql.Identifier(self.name),
            sql.SQL(", ").join(map(sql.Identifier, self.columns)),
            sql.Identifier(self.references),
            sql.SQL(", ").join(map(sql.Identifier, self.referenced_columns)),
            sql.SQL(" ON DELETE CASCADE") if self.on_delete_cascade else sql.SQL(""),
            sql.SQL(" DEFERRABLE INITIALLY DEFERRED") if self.deferrable else sql.SQL(""),
        )

    def drop(self) -> sql.Composable:
        return sql.SQL("ALTER TABLE {} DROP CONSTRAINT IF EXISTS {}").format(
            sql.Identifier(self.table), sql.Identifier(self.name)
        )


class _ForeignKeyOperation(CitusOperation):
    def __init__(
        self,
        table: str,
        name: str,
        columns: Sequence[str],
        references: str,
        referenced_columns: Sequence[str],
        on_delete_cascade: bool = False,
        deferrable: bool = False,
    ) -> None:
        self.key = ForeignKeySpec(
            table, name, tuple(columns), references, tuple(referenced_columns), on_delete_cascade, deferrable
        )

    def deconstruct(self):
        key = self.key
        kwargs = {"on_delete_cascade": key.on_delete_cascade, "deferrable": key.deferrable}
        args = [key.table, key.name, list(key.columns), key.references, list(key.referenced_columns)]
        return self.__class__.__qualname__, args, {k: v for k, v in kwargs.items() if v}


class DropForeignKeyOnCitus(_ForeignKeyOperation):
    """A foreign key off before distribution (reverse: back on, as spelled here)."""

    def forwards_statements(self) -> list[sql.Composable]:
        return [self.key.drop()]

    def backwards_statements(self) -> list[sql.Composable]:
        return [self.key.add()]

    def describe(self):
        return f"On a Citus coordinator: drop {self.key.name} on {self.key.table} before distributing"


class DropForeignKeyBeforeDistributing(DropForeignKeyOnCitus):
    """A key from a new tenant table to another distributed table (users), off before distributing.

    On a coordinator the key only ever exists between distributed tables
    (AddForeignKeyOffCitus adds it elsewhere; a database moved onto a cluster
    arrives with it, and citus_distribute drops it first). Its reverse puts
    nothing back: the reverse has made the table local again, and a local
    table may not reference a distributed one.
    """

    def backwards_statements(self) -> list[sql.Composable]:
        return []


class AddForeignKeyOnCitus(_ForeignKeyOperation):
    """A foreign key back on once both of its tables are distributed (or reference)."""

    def forwards_statements(self) -> list[sql.Composable]:
        return [self.key.add()]

    def backwards_statements(self) -> list[sql.Composable]:
        return [self.key.drop()]

    def describe(self):
        return f"On a Citus coordinator: add {self.key.name} on {self.key.table} between colocated shards"


class AddForeignKeyOffCitus(_ForeignKeyOperation):
    """A foreign key added where the database is NOT a Citus coordinator.

    For a tenant table created after the layout exists: on a coordinator its
    key to `tenants` must wait until the table is distributed
    (AddForeignKeyOnCitus after DistributeTenantTable), because a local table
    that references a reference table turns into a Citus local table. A
    database moved onto a cluster later (citus_distribute) arrives with the
    key: the migration's DropForeignKeyOnCitus takes it off before distributing.
    """

    def applies_to(self, connection) -> bool:
        return not is_citus_coordinator(connection)

    def prologue(self) -> list[sql.Composable]:
        return []

    def forwards_statements(self) -> list[sql.Composable]:
        return [self.key.add()]

    def backwards_statements(self) -> list[sql.Composable]:
        return [self.key.drop()]

    def describe(self):
        return f"Unless on a Citus coordinator: add {self.key.name} on {self.key.table}"


class OffCitus(Operation):
    """Another operation, run only where the database is NOT a Citus coordinator.

    For a key added NOT VALID then validated on one node (no long lock), whose
    Citus twin is AddForeignKeyOnCitus: a database moved onto a cluster
    arrives with the key, and citus_distribute takes it off first
    (DropForeignKeyBeforeDistributing) and puts it back once both tables are
    distributed; on a coordinator the twin alone adds it.
    """

    reversible = True
    reduces_to_sql = True

    def __init__(self, operation: Operation) -> None:
        self.operation = operation

    def state_forwards(self, app_label, state):
        self.operation.state_forwards(app_label, state)

    def database_forwards(self, app_label, schema_editor, from_state, to_state):
        if not is_citus_coordinator(schema_editor.connection):
            self.operation.database_forwards(app_label, schema_editor, from_state, to_state)

    def database_backwards(self, app_label, schema_editor, from_state, to_state):
        if not is_citus_coordinator(schema_editor.connection):
            self.operation.database_backwards(app_label, schema_editor, from_state, to_state)

    def describe(self):
        return f"Unless on a Citus coordinator: {self.operation.describe()}"


class ReshapeTenantPolicies(Operation):
    """One table's tenant policies rewritten from one "current tenant" expression
    to another, on every backend. All statements are EnableTenantRLS's own: its
    reverse for `old`, then its forward for `new`, in one short transaction (other
    sessions never see the table without its policies) under lock_timeout,
    retried on a lock timeout like the other DDL of this project. Reverse: the
    same with `old` and `new` swapped."""

    reduces_to_sql = True
    reversible = True
    atomic = False

    def __init__(self, table: str, old: str, new: str) -> None:
        self.table, self.old, self.new = table, old, new

    def deconstruct(self):
        return self.__class__.__qualname__, [self.table, self.old, self.new], {}

    def state_forwards(self, app_label, state):
        pass

    def resulting_rls(self) -> EnableTenantRLS:
        """The EnableTenantRLS whose statements the table holds once this is applied (tenants.catalog.drift)."""
        return EnableTenantRLS(self.table, current_tenant=self.new)

    def _reshape(self, schema_editor, old: str, new: str) -> None:
        statements = [
            *EnableTenantRLS(self.table, current_tenant=old).reverse_statements(),
            *EnableTenantRLS(self.table, current_tenant=new).statements(),
        ]
        run_ddl(schema_editor, statements)

    def database_forwards(self, app_label, schema_editor, from_state, to_state):
        self._reshape(schema_editor, self.old, self.new)

    def database_backwards(self, app_label, schema_editor, from_state, to_state):
        self._reshape(schema_editor, self.new, self.old)

    def describe(self):
        return f"Rewrite the tenant policies of {self.table} to compare against {self.new}"
