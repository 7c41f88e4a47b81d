"""`citus_distribute [--dry-run]`: give a database restored onto a Citus coordinator
its distributed layout.

A database moved from a single PostgreSQL (pg_dump, restore into the
coordinator) arrives with every migration recorded as applied, the Citus
ones included: they were no-ops there, so its tables are plain coordinator
tables, and `migrate` has nothing left to do. This command replays the Citus
steps of the applied migrations (every CitusOperation, in migration order,
the foreign keys' drops first) in one transaction, as the owner, so the layout is the
one `migrate` builds on a fresh cluster. Rows are copied into the shards;
the row counts per table and tenant are compared before and after (exit 1
on a difference, which rolls nothing back: the counts are read after
commit, so a difference means investigate, not retry).

Refuses (exit 2) on a database that is not a Citus coordinator with
workers, or that still has migrations to apply (run `migrate`: on a
coordinator it distributes by itself). Does nothing when the tenant tables
are distributed already. `--dry-run` prints the statements and runs none.
"""

from __future__ import annotations

from django.core.management.base import CommandError
from django.db import connections, transaction
from django.db.migrations.executor import MigrationExecutor

from tenants.catalog.backups import row_counts
from tenants.catalog.distribution_operations import CitusOperation, DropForeignKeyOnCitus, is_citus_coordinator
from tenants.constants import OWNER_DATABASE
from tenants.management.base import OperatorCommand
from tenants.registry import tenant_tables


def distributed_tables(connection) -> set[str]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT logicalrelid::regclass::text FROM pg_dist_partition")
        return {name for (name,) in cursor.fetchall()}


class Command(OperatorCommand):
    help = (
        "Distribute a database restored onto a Citus coordinator (replays the Citus steps of its migrations). "
        "Exit status: 0 distributed (or already), 1 row counts differ afterwards, 2 refused (not a coordinator, "
        "migrations pending, partly distributed)."
    )

    def add_arguments(self, parser):
        parser.add_argument("--database", default=OWNER_DATABASE, help="alias to use (default: the owner's)")
        parser.add_argument("--dry-run", action="store_true", help="print the statements, run nothing")

    def handle(self, *args, database: str, dry_run: bool, **options):
        connection = connections[database]
        if not is_citus_coordinator(connection):
            raise CommandError(
                f"database {connection.settings_dict['NAME']} is not a Citus coordinator with workers: "
                "create it with scripts/citus.sh createdb, restore into it, then run this",
                returncode=2,
            )
        executor = MigrationExecutor(connection)
        if executor.migration_plan(executor.loader.graph.leaf_nodes()):
            raise CommandError("migrations are still to be applied: run `manage.py migrate` (it distributes)", 2)
        already = distributed_tables(connection) & set(tenant_tables())
        if already == set(tenant_tables()):
            self.stdout.write("The tenant tables are distributed already: nothing to do.")
            return
        if already:
            raise CommandError(f"only some tenant tables are distributed ({sorted(already)}): fix by hand", 2)

        steps = [
            (migration, operation)
            for migration, _ in executor.migration_plan(
                [node for node in executor.loader.graph.leaf_nodes()], clean_start=True
            )
            for operation in migration.operations
            if isinstance(operation, CitusOperation)
        ]
        # Every key comes off before anything is distributed: a later migration's table that
        # references users (tenants 0017) would otherwise tie users to a local table when
        # 0012 distributes it. The rest keeps migration order.
        steps.sort(key=lambda step: not isinstance(step[1], DropForeignKeyOnCitus))
        if dry_run:
            with connection.schema_editor(collect_sql=True, atomic=False) as editor:
                self._run(steps, editor)
            self.stdout.write("\n".join(editor.collected_sql))
            return
        with connection.cursor() as cursor:
            before = row_counts(cursor.cursor)
        with transaction.atomic(using=database), connection.schema_editor(atomic=False) as editor:
            self._run(steps, editor)
        with connection.cursor() as cursor:
            after = row_counts(cursor.cursor)
        if before != after:
            self.stderr.write("Row counts per table and tenant differ after distributing:")
            for line in sorted(set(before) ^ set(after)):
                self.stderr.write(f"    {'-' if line in before else '+'} {line}")
            raise SystemExit(1)
        self.stdout.write(
            self.style.SUCCESS(
                f"Distributed {len(tenant_tables())} tenant tables and made tenants a reference table "
                f"({len(steps)} steps); row counts per table and tenant match ({len(after)} lines)."
            )
        )

    def _run(self, steps, editor) -> None:
        for migration, operation in steps:
            self.stdout.write(f"  {migration.app_label}.{migration.name}: {operation.describe()}")
            operation.database_forwards(migration.app_label, editor, None, None)
