"""restore_tenant: one tenant's rows back from a verified export, in a live database that
already holds that tenant, every other tenant's rows untouched (same id, same xmin).

Real `manage.py` runs against committed data: a source database with load_demo data is
exported (acme, globex); each test gets a fresh target database (a copy of a template
that imported both exports, so the tenants carry the same ids), damages it, runs
restore_tenant and compares every row with the source."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from psycopg import sql

from platform_ops.tenant_export import sha256_of, verify_export
from tenants.registry import tenant_tables
from tests.support.scratch import ON_CITUS, connect, demo_database, manage, scratch_database

pytestmark = pytest.mark.skipif(ON_CITUS, reason="CREATE DATABASE ... TEMPLATE: single node (the cluster: drills)")


@pytest.fixture(scope="module")
def exports(django_db_setup, django_db_blocker, tmp_path_factory) -> Iterator[dict[str, Path]]:
    with django_db_blocker.unblock(), demo_database("alphapulse_restore_src", trades=200) as source:
        base = tmp_path_factory.mktemp("restore")
        paths = {slug: base / slug for slug in ("acme", "globex")}
        for slug, path in paths.items():
            manage(source, "export_tenant", slug, "--output", str(path))
        yield paths


@pytest.fixture(scope="module")
def template(exports, django_db_blocker) -> Iterator[str]:
    with django_db_blocker.unblock(), scratch_database("alphapulse_restore_tpl") as name:
        manage(name, "migrate")
        for path in exports.values():
            manage(name, "import_tenant", str(path))
        yield name


@pytest.fixture
def target(template, django_db_blocker) -> Iterator[str]:
    name = f"alphapulse_restore_{uuid.uuid4().hex[:8]}"
    with django_db_blocker.unblock():
        with connect("owner", "postgres") as admin:
            admin.execute(
                sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(sql.Identifier(name), sql.Identifier(template))
            )
        try:
            yield name
        finally:
            with connect("owner", "postgres") as admin:
                admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


def execute(db: str, query: str, *params) -> list[tuple]:
    with connect("owner", db) as conn:
        cursor = conn.execute(query, params)
        return cursor.fetchall() if cursor.description else []


def tenant_id(db: str, slug: str) -> str:
    return str(execute(db, "SELECT id FROM tenants WHERE slug = %s", slug)[0][0])


def rows(db: str, table: str, tenant: str) -> list[tuple]:
    query = sql.SQL("SELECT * FROM {} WHERE tenant_id = %s ORDER BY id").format(sql.Identifier(table))
    with connect("owner", db) as conn:
        return conn.execute(query, [tenant]).fetchall()


def versions(db: str, tenant: str) -> dict[str, set[tuple]]:
    """(id, xmin) of every row of a tenant: a row rewritten in any way gets a new xmin."""
    found = {}
    with connect("owner", db) as conn:
        for table in tenant_tables():
            query = sql.SQL("SELECT id::text, xmin::text FROM {} WHERE tenant_id = %s").format(sql.Identifier(table))
            found[table] = set(conn.execute(query, [tenant]).fetchall())
    return found


def exported_rows(path: Path, table: str) -> list[dict]:
    return [json.loads(line) for line in (path / f"{table}.ndjson").read_text().splitlines()]


def audit(db: str, slug: str) -> list[tuple[str, str, dict]]:
    return execute(db, "SELECT action, result, detail FROM platform_audit WHERE tenant_slug = %s ORDER BY id", slug)


def restore(db: str, *args: str, check: bool = False):
    return manage(db, "restore_tenant", *args, check=check)


def test_merge_brings_back_what_was_deleted_and_leaves_every_other_tenant_untouched(target, exports):
    acme, globex = tenant_id(target, "acme"), tenant_id(target, "globex")
    want = {table: rows(target, table, acme) for table in tenant_tables()}
    # The mistake: acme's trades and half its orders gone; a later live trade must survive the merge.
    execute(target, "DELETE FROM trades WHERE tenant_id = %s", acme)
    execute(
        target,
        "DELETE FROM orders WHERE tenant_id = %s AND id IN "
        "(SELECT id FROM orders WHERE tenant_id = %s ORDER BY id LIMIT 20)",
        acme,
        acme,
    )
    user = execute(target, "SELECT id FROM users WHERE tenant_id = %s ORDER BY id LIMIT 1", acme)[0][0]
    later = uuid.uuid4()
    execute(
        target,
        "INSERT INTO trades (id, tenant_id, user_id, symbol, side, quantity, price, executed_at, created_at) "
        "VALUES (%s, %s, %s, 'LATE', 'buy', 1, 1, now(), now())",
        later,
        acme,
        user,
    )
    neighbours = versions(target, globex)
    audit_before = len(audit(target, "acme"))

    result = restore(target, "acme", "--from", str(exports["acme"]), "--provenance", "pitr AT=test", "--yes")

    assert result.returncode == 0, result.stderr
    for table in tenant_tables():
        got = rows(target, table, acme)
        if table == "trades":
            assert [r for r in got if r[0] != later] == want[table]
            assert any(r[0] == later for r in got), "merge dropped a live row written after the export"
        else:
            assert got == want[table], table
    assert versions(target, globex) == neighbours
    assert execute(target, "SELECT status FROM tenants WHERE slug = 'acme'") == [("active",)]
    entries = audit(target, "acme")[audit_before:]
    assert [(a, r) for a, r, _ in entries] == [
        ("tenant.status", "ok"),
        ("tenant.restore.started", "ok"),
        ("tenant.status", "ok"),
        ("tenant.restore.finished", "ok"),
    ]
    started, finished = entries[1][2], entries[3][2]
    assert started["provenance"] == "pitr AT=test"
    assert started["manifest_sha256"] == sha256_of(exports["acme"] / "manifest.json")
    assert finished["report"]["trades"]["inserted"] == len(want["trades"])
    assert finished["report"]["orders"]["inserted"] == 20
    assert finished["report"]["users"]["skipped"] == len(want["users"])


def test_replace_sets_the_tables_back_saves_what_it_removed_and_keeps_live_users(target, exports, tmp_path):
    acme, globex = tenant_id(target, "acme"), tenant_id(target, "globex")
    want_trades = rows(target, "trades", acme)
    execute(target, "UPDATE trades SET symbol = 'OOPS' WHERE tenant_id = %s", acme)
    user = execute(target, "SELECT id FROM users WHERE tenant_id = %s ORDER BY id LIMIT 1", acme)[0][0]
    execute(target, "UPDATE users SET is_active = false WHERE id = %s", user)  # deactivated after the export
    neighbours = versions(target, globex)
    damaged = rows(target, "trades", acme)

    result = restore(
        target, "acme", "--from", str(exports["acme"]), "--mode", "replace", "--safety-dir", str(tmp_path), "--yes"
    )

    assert result.returncode == 0, result.stderr
    assert rows(target, "trades", acme) == want_trades
    assert execute(target, "SELECT is_active FROM users WHERE id = %s", user) == [(False,)], "users were replaced"
    assert versions(target, globex) == neighbours
    (safety,) = tmp_path.iterdir()
    manifest = verify_export(safety)
    assert manifest.rows()["trades"] == len(damaged)
    assert {r["symbol"] for r in exported_rows(safety, "trades")} == {"OOPS"}
    assert manifest.rows()["users"] == 0
    assert oct(safety.stat().st_mode & 0o777) == "0o700"


def test_replace_with_users_brings_the_old_user_rows_back(target, exports, tmp_path):
    acme = tenant_id(target, "acme")
    want = rows(target, "users", acme)
    execute(target, "UPDATE users SET is_active = false WHERE tenant_id = %s", acme)
    result = restore(
        target,
        "acme",
        "--from",
        str(exports["acme"]),
        "--mode",
        "replace",
        "--tables",
        "users",
        "trades",
        "orders",
        "positions",
        "portfolio_snapshots",
        "risk_metrics",
        "agent_signals",
        "--with-users",
        "--safety-dir",
        str(tmp_path),
        "--yes",
    )
    assert result.returncode == 0, result.stderr
    assert rows(target, "users", acme) == want


def _unchanged(target: str, slug: str) -> tuple:
    tenant = tenant_id(target, slug)
    return (execute(target, "SELECT status FROM tenants WHERE id = %s", tenant), versions(target, tenant))


@pytest.mark.parametrize(
    "case, message",
    [
        ("another tenant's export", "is an export of tenant 'globex'"),
        ("platform tenant", "platform tenant"),
        ("unknown table", "Not tenant tables: nope"),
        ("no --yes", "add --yes"),
        ("bad checksum", "checksum mismatch"),
        ("schema version", "another schema version"),
    ],
)
def test_refusals_exit_2_and_write_nothing(target, exports, tmp_path, case, message):
    source = tmp_path / "export"
    import shutil

    shutil.copytree(exports["globex" if case == "another tenant's export" else "acme"], source)
    args = ["acme", "--from", str(source), "--yes"]
    if case == "platform tenant":
        manage(target, "create_tenant", "platform", "--name", "Platform", "--tier", "enterprise", check=False)
        args[0] = "platform"
    elif case == "unknown table":
        args += ["--tables", "trades", "nope"]
    elif case == "no --yes":
        args.remove("--yes")
    elif case == "bad checksum":
        with (source / "trades.ndjson").open("a") as handle:
            handle.write("{}\n")
    elif case == "schema version":
        manifest = json.loads((source / "manifest.json").read_text())
        manifest["schema_version"]["tenants"].append("9999_from_the_future")
        (source / "manifest.json").write_text(json.dumps(manifest))
    execute(target, "DELETE FROM trades WHERE tenant_id = %s", tenant_id(target, "acme"))
    before = _unchanged(target, "acme")

    result = restore(target, *args)

    assert result.returncode == 2, result.stdout + result.stderr
    assert message in result.stderr
    assert "Traceback" not in result.stderr
    assert _unchanged(target, "acme") == before


def test_a_bad_row_rolls_everything_back_and_leaves_the_tenant_suspended(target, exports, tmp_path):
    source = tmp_path / "export"
    import shutil

    shutil.copytree(exports["acme"], source)
    # A row of another tenant slipped into the file, checksums made to match: caught row by row.
    lines = (source / "trades.ndjson").read_text().splitlines()
    row = json.loads(lines[-1])
    row["tenant_id"], row["id"] = tenant_id(target, "globex"), str(uuid.uuid4())
    lines.append(json.dumps(row, sort_keys=True))
    (source / "trades.ndjson").write_text("\n".join(lines) + "\n")
    manifest = json.loads((source / "manifest.json").read_text())
    for entry in manifest["files"]:
        if entry["table"] == "trades":
            entry["sha256"], entry["rows"] = sha256_of(source / "trades.ndjson"), len(lines)
    (source / "manifest.json").write_text(json.dumps(manifest))
    acme = tenant_id(target, "acme")
    execute(target, "DELETE FROM trades WHERE tenant_id = %s", acme)
    before = versions(target, acme)

    result = restore(
        target, "acme", "--from", str(source), "--mode", "replace", "--safety-dir", str(tmp_path / "s"), "--yes"
    )

    assert result.returncode == 1, result.stderr
    assert "belongs to another tenant" in result.stderr and "Traceback" not in result.stderr
    assert versions(target, acme) == before
    assert execute(target, "SELECT status FROM tenants WHERE id = %s", acme) == [("suspended",)]
    assert [a for a, r, _ in audit(target, "acme")][-1] == "tenant.restore.failed"
    assert not (tmp_path / "s").exists() or not any((tmp_path / "s").iterdir()), "a safety export of a rollback"
