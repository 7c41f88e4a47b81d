"""`manage.py sqlmigrate` prints every migration's SQL and changes nothing.

For every migration of the project's apps (found on disk, so migrations added
later are covered too), forwards and `--backwards`, against scratch databases
in two states: mid-rollout (legacy rows still without a tenant, the legacy
user keys still in place) and complete (RLS on, a customer tenant). The
catalog and every table's rows are compared before and after, byte for byte.
"""

from __future__ import annotations

import json

import psycopg
import pytest
from psycopg import sql

from tests.support.scratch import ROOT, connect, manage, scratch_database
from tests.tenants.test_migrations import load_legacy_rows

# Catalog columns that DDL, grants or policies change; statistics (reltuples,
# relpages), which autovacuum may move at any time, are left out.
CATALOG_QUERIES = {
    "namespaces": "SELECT nspname, nspowner::regrole, nspacl FROM pg_namespace ORDER BY nspname",
    "relations": (
        "SELECT c.relname, n.nspname, c.relkind, c.relowner::regrole, c.relacl, c.relrowsecurity, "
        "c.relforcerowsecurity, c.reloptions, c.relpersistence FROM pg_class c "
        "JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname NOT IN ('pg_catalog', 'information_schema') "
        "ORDER BY n.nspname, c.relname"
    ),
    "columns": (
        "SELECT a.attrelid::regclass::text AS rel, a.attnum, a.attname, a.atttypid::regtype, a.attnotnull, "
        "a.attisdropped, a.attacl, pg_get_expr(d.adbin, d.adrelid) FROM pg_attribute a "
        "JOIN pg_class c ON c.oid = a.attrelid JOIN pg_namespace n ON n.oid = c.relnamespace "
        "LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum "
        "WHERE n.nspname = 'public' ORDER BY rel, a.attnum"
    ),
    "constraints": (
        "SELECT conrelid::regclass::text AS rel, conname, contype, convalidated, pg_get_constraintdef(oid) "
        "FROM pg_constraint WHERE connamespace = 'public'::regnamespace ORDER BY rel, conname"
    ),
    "policies": (
        "SELECT polrelid::regclass::text AS rel, polname, polcmd, polpermissive, polroles::regrole[], "
        "pg_get_expr(polqual, polrelid), pg_get_expr(polwithcheck, polrelid) FROM pg_policy ORDER BY rel, polname"
    ),
    "indexes": (
        "SELECT indexrelid::regclass::text AS idx, indisunique, indisvalid, indisready, "
        "pg_get_indexdef(indexrelid) FROM pg_index i JOIN pg_class c ON c.oid = i.indrelid "
        "WHERE c.relnamespace = 'public'::regnamespace ORDER BY idx"
    ),
    "default_acls": (
        "SELECT defaclrole::regrole, defaclnamespace::regnamespace, defaclobjtype, defaclacl "
        "FROM pg_default_acl ORDER BY 1, 2, 3"
    ),
}

# One `manage.py` process runs sqlmigrate for every migration both ways
# (call_command, the command's own code path) and prints the outputs as JSON.
SQLMIGRATE_EVERY_MIGRATION = """
import json
from pathlib import Path
from io import StringIO
from django.apps import apps
from django.core.management import call_command
from django.db.migrations.loader import MigrationLoader

root = Path({root!r})
ours = {{c.label for c in apps.get_app_configs() if Path(c.path).parent == root}}
outputs = {{}}
for app_label, name in sorted(MigrationLoader(None, ignore_no_migrations=True).disk_migrations):
    if app_label not in ours:
        continue
    for backwards in (False, True):
        out = StringIO()
        call_command("sqlmigrate", app_label, name, backwards=backwards, stdout=out)
        outputs[f"{{app_label}}.{{name}}{{' --backwards' if backwards else ''}}"] = out.getvalue()
print(json.dumps(outputs))
"""


def catalog_and_rows(conn: psycopg.Connection) -> str:
    """The catalog rows above and a digest of every public table's rows, as text."""
    dump = {name: conn.execute(query).fetchall() for name, query in CATALOG_QUERIES.items()}
    tables = [
        row[0]
        for row in conn.execute(
            "SELECT relname FROM pg_class WHERE relnamespace = 'public'::regnamespace AND relkind = 'r' "
            "ORDER BY relname"
        )
    ]
    # The owner holds rls_bypass_role, so it reads every row even under FORCE.
    dump["rows"] = [
        (
            table,
            conn.execute(
                sql.SQL(
                    "SELECT count(*), md5(coalesce(string_agg(t::text, ',' ORDER BY t::text), '')) FROM {} t"
                ).format(sql.Identifier(table))
            ).fetchone(),
        )
        for table in tables
    ]
    return "\n".join(f"{name}: {rows!r}" for name, rows in dump.items())


def sqlmigrate_everything(dbname: str) -> dict[str, str]:
    result = manage(dbname, "shell", "-c", SQLMIGRATE_EVERY_MIGRATION.format(root=str(ROOT)))
    return json.loads(result.stdout.strip().splitlines()[-1])


def mid_rollout(dbname: str) -> None:
    """Legacy rows, us001..us003's columns and indexes added, nothing backfilled yet."""
    manage(dbname, "migrate", "tenants", "0001_legacy_users")
    manage(dbname, "migrate", "trading", "0001_legacy_domain")
    with connect("owner", dbname) as owner:
        load_legacy_rows(owner)
    manage(dbname, "migrate", "trading", "0003_us003_tenant_indexes")


def complete(dbname: str) -> None:
    manage(dbname, "migrate")
    manage(dbname, "create_tenant", "acme", "--name", "Acme")
    manage(dbname, "create_tenant_user", "acme", "alice", "--password", "a-long-password")


@pytest.mark.slow
@pytest.mark.parametrize("prepare", [mid_rollout, complete], ids=["mid-rollout", "complete"])
def test_sqlmigrate_prints_every_migration_and_changes_nothing(prepare):
    with scratch_database("alphapulse_sqlmigrate") as dbname:
        prepare(dbname)
        with connect("owner", dbname) as owner:
            before = catalog_and_rows(owner)
        outputs = sqlmigrate_everything(dbname)
        with connect("owner", dbname) as owner:
            after = catalog_and_rows(owner)

    assert after == before
    assert {"tenants.0001_legacy_users", "trading.0001_legacy_domain"} <= outputs.keys()
    for name, output in outputs.items():
        assert "CANNOT BE WRITTEN AS SQL" not in output, name

    us004 = outputs["tenants.0008_us004_enable_rls"]
    for table in ("users", "trades", "agent_signals"):
        assert f'ALTER TABLE "{table}" ENABLE ROW LEVEL SECURITY;' in us004
        assert f'ALTER TABLE "{table}" FORCE ROW LEVEL SECURITY;' in us004
        assert f'CREATE POLICY "tenant_isolation_policy" ON "{table}"' in us004
        assert f'CREATE POLICY "tenant_insert_policy" ON "{table}"' in us004
    assert (
        'DROP POLICY IF EXISTS "tenant_isolation_policy" ON "users"'
        in outputs["tenants.0008_us004_enable_rls --backwards"]
    )
    # The writes of the zero-downtime steps are printed, not executed.
    assert 'UPDATE "trades" AS row SET tenant_id' in outputs["trading.0004_us003_tenant_backfill"]
    assert (
        'CREATE UNIQUE INDEX CONCURRENTLY "users_tenant_username_uniq"'
        in outputs["tenants.0007_us002_users_tenant_not_null"]
    )
    assert "Cannot roll % back to single-tenant" in outputs["tenants.0004_us002_users_tenant_column --backwards"]
    assert "GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES" in outputs["tenants.0001_legacy_users"]
