"""Tenant export and import: a round trip between two databases that compares
every row of every tenant table, and the refusals (bad archive, checksum,
schema version, existing tenant, a bad row) that leave the target unchanged.

The source is a scratch database with load_demo data (committed, as an
export needs); the target is the test database, through the owner alias."""

from __future__ import annotations

import json
import shutil
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command
from django.db import connections
from psycopg import sql

from platform_ops.models import AuditEntry
from platform_ops.tenant_export import ExportError, import_tenant, sha256_of, verify_export
from tenants.models import Tenant
from tenants.registry import tenant_tables
from tests.support.scratch import connect, demo_database, manage

pytestmark = pytest.mark.django_db(databases=["default", "owner"])


@pytest.fixture(scope="module")
def source_db(django_db_setup, django_db_blocker):
    with django_db_blocker.unblock(), demo_database("alphapulse_export", trades=300) as name:
        with connect("owner", name) as owner:
            # load_demo logs nobody in and makes no key: a session and a key of acme's, so
            # that every tenant table has rows to carry.
            owner.execute(
                "INSERT INTO user_sessions (id, tenant_id, user_id, refresh_jti, created_at, end_reason) "
                "SELECT gen_random_uuid(), tenant_id, id, md5(id::text), now(), '' FROM users "
                "WHERE tenant_id = (SELECT id FROM tenants WHERE slug = 'acme')"
            )
            owner.execute(
                "INSERT INTO api_keys (id, tenant_id, user_id, name, prefix, hashed_secret, scopes, created_at) "
                "SELECT gen_random_uuid(), tenant_id, id, 'bot', left(md5(id::text), 12), md5(username), "
                "'[\"read\"]', now() FROM users WHERE tenant_id = (SELECT id FROM tenants WHERE slug = 'acme')"
            )
        yield name


@pytest.fixture(scope="module")
def exported(source_db, tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("exports") / "acme"
    manage(source_db, "export_tenant", "acme", "--output", str(path))
    return path


def copy_of(exported: Path, tmp_path: Path) -> Path:
    target = tmp_path / "copy"
    shutil.copytree(exported, target)
    return target


def rows_query(table: str) -> sql.Composed:
    key = "id" if table == "tenants" else "tenant_id"
    return sql.SQL("SELECT * FROM {} WHERE {} = %s ORDER BY id").format(sql.Identifier(table), sql.Identifier(key))


def comparable(row: tuple) -> tuple:
    """jsonb as one form: plain psycopg loads it as a dict, Django's cursor leaves it as text."""
    return tuple(_as_json(value) for value in row)


def _as_json(value):
    if isinstance(value, str) and value[:1] in "{[":
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value


def source_rows(source_db: str, table: str, tenant_id) -> list[tuple]:
    with connect("owner", source_db) as conn:
        return [comparable(row) for row in conn.execute(rows_query(table), [tenant_id]).fetchall()]


def target_rows(table: str, tenant_id) -> list[tuple]:
    with connections["owner"].cursor() as cursor:
        cursor.execute(rows_query(table).as_string(cursor.connection), [tenant_id])
        return [comparable(row) for row in cursor.fetchall()]


def run(*args: str) -> str:
    out = StringIO()
    call_command(*args, stdout=out, stderr=StringIO())
    return out.getvalue()


def test_the_export_is_a_readable_directory_with_a_manifest(exported):
    manifest = json.loads((exported / "manifest.json").read_text())
    assert [f["table"] for f in manifest["files"]] == ["tenants", *tenant_tables()]
    assert tenant_tables()[0] == "users"
    assert manifest["tenant"]["slug"] == "acme"
    assert "0008_us004_enable_rls" in manifest["schema_version"]["tenants"]
    for entry in manifest["files"]:
        assert sha256_of(exported / entry["file"]) == entry["sha256"]
        assert entry["rows"] > 0, f"load_demo left {entry['table']} empty: the round trip would prove nothing"
        first = json.loads((exported / entry["file"]).open().readline())
        assert sorted(first) == sorted(entry["columns"])
    assert (exported / "README.txt").read_text().startswith("AlphaPulse tenant export")
    assert not exported.with_name("acme.partial").exists()


def test_the_export_is_readable_by_its_owner_only(source_db, tmp_path):
    """Issue 20 item 9: 0755/0644 under the default umask, password hashes included."""
    path = tmp_path / "private"
    manage(source_db, "export_tenant", "acme", "--output", str(path))
    assert path.stat().st_mode & 0o777 == 0o700
    files = sorted(path.iterdir())
    assert "users.ndjson" in [f.name for f in files]
    assert {f.name: f.stat().st_mode & 0o777 for f in files} == {f.name: 0o600 for f in files}


def test_round_trip_preserves_every_row_of_every_table(source_db, exported):
    out = run("import_tenant", str(exported))
    manifest = verify_export(exported)
    assert "Imported tenant 'acme'" in out
    for table in ["tenants", *tenant_tables()]:
        expected = source_rows(source_db, table, manifest.tenant_id)
        assert expected, table
        assert target_rows(table, manifest.tenant_id) == expected, f"{table} differs after the round trip"
    (entry,) = AuditEntry.objects.using("owner").filter(action="tenant.import", result="ok")
    assert entry.detail["rows"] == manifest.rows()


def test_export_and_import_are_recorded_in_the_source_trail(source_db):
    lines = manage(source_db, "audit_log", "--action", "tenant.export", "--json").stdout.splitlines()
    assert json.loads(lines[-1])["tenant"] == "acme"


def test_an_existing_tenant_is_refused(exported):
    import_tenant(exported)
    with pytest.raises(CommandError, match="already exists here"):
        run("import_tenant", str(exported))
    assert AuditEntry.objects.using("owner").filter(action="tenant.import", result="refused").exists()


def test_the_same_slug_with_another_id_is_refused(exported):
    Tenant.objects.using("owner").create(slug="acme", name="Another Acme")
    with pytest.raises(ExportError, match="already exists here"):
        import_tenant(exported)


def test_a_directory_without_a_manifest_is_refused(tmp_path):
    with pytest.raises(ExportError, match="not an AlphaPulse tenant export"):
        import_tenant(tmp_path)


@pytest.mark.parametrize(
    "damage",
    [
        "not json",
        json.dumps({"format": "zip"}),
        json.dumps({"format": "alphapulse-tenant-export", "format_version": 1}),
    ],
)
def test_a_bad_manifest_is_refused(exported, tmp_path, damage):
    path = copy_of(exported, tmp_path)
    (path / "manifest.json").write_text(damage)
    with pytest.raises(ExportError):
        import_tenant(path)


def test_a_missing_file_is_refused(exported, tmp_path):
    path = copy_of(exported, tmp_path)
    (path / "orders.ndjson").unlink()
    with pytest.raises(ExportError, match="orders.ndjson is missing"):
        import_tenant(path)


def test_a_checksum_mismatch_is_refused_and_nothing_is_written(exported, tmp_path):
    path = copy_of(exported, tmp_path)
    trades = path / "trades.ndjson"
    trades.write_bytes(trades.read_bytes().replace(b'"side": "buy"', b'"side": "sell"', 1))
    with pytest.raises(ExportError, match="trades.ndjson: checksum mismatch"):
        import_tenant(path)
    assert not Tenant.objects.using("owner").filter(slug="acme").exists()


def test_a_schema_version_mismatch_is_refused(exported, tmp_path):
    path = copy_of(exported, tmp_path)
    manifest = json.loads((path / "manifest.json").read_text())
    manifest["schema_version"]["trading"].append("0099_from_the_future")
    (path / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(ExportError, match="Schema version mismatch: trading.0099_from_the_future in the export"):
        import_tenant(path)


def test_a_bad_row_late_in_the_import_rolls_everything_back(exported, tmp_path):
    """Checksums recomputed, so only the database can refuse it: all or nothing."""
    path = copy_of(exported, tmp_path)
    manifest = json.loads((path / "manifest.json").read_text())
    last = manifest["files"][-1]
    file = path / last["file"]
    lines = file.read_text().splitlines(keepends=True)
    row = json.loads(lines[-1])
    row["user_id"] = "00000000-0000-0000-0000-00000000dead"  # no such user: the composite key refuses it
    lines[-1] = json.dumps(row, sort_keys=True) + "\n"
    file.write_text("".join(lines))
    last["sha256"] = sha256_of(file)
    (path / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(Exception, match="violates foreign key"):
        import_tenant(path)
    assert not Tenant.objects.using("owner").filter(slug="acme").exists()
    with connections["owner"].cursor() as cursor:
        cursor.execute("SELECT count(*) FROM users WHERE tenant_id = %s", [manifest["tenant"]["id"]])
        assert cursor.fetchone()[0] == 0


def test_export_refuses_an_existing_path(source_db, exported):
    result = manage(source_db, "export_tenant", "acme", "--output", str(exported), check=False)
    assert result.returncode == 2 and "already exists" in result.stderr


# -- issue 20 item 13: every refusal clear, audited, and nothing written ---------------


def edited(exported: Path, tmp_path: Path, table: str, change) -> Path:
    """A copy of the export with the first row of `table` changed, its checksum made to match again."""
    path = copy_of(exported, tmp_path)
    file = path / f"{table}.ndjson"
    lines = file.read_text().splitlines()
    lines[0] = json.dumps(change(json.loads(lines[0])))
    file.write_text("\n".join(lines) + "\n")
    manifest = json.loads((path / "manifest.json").read_text())
    for entry in manifest["files"]:
        if entry["table"] == table:
            entry["sha256"] = sha256_of(file)
    (path / "manifest.json").write_text(json.dumps(manifest))
    return path


def refused_import(path: Path, match: str) -> None:
    with pytest.raises(CommandError, match=match) as refused:
        run("import_tenant", str(path))
    assert refused.value.returncode == 2
    assert AuditEntry.objects.using("owner").filter(action="tenant.import", result="refused").exists()
    assert not Tenant.objects.using("owner").filter(slug="acme").exists()


def test_a_row_id_another_tenant_holds_is_a_clear_refusal(exported, tmp_path):
    first_user = json.loads((exported / "users.ndjson").open().readline())
    other = Tenant.objects.using("owner").create(slug="other", name="Other")
    from tests.support.staff import owner_user

    owner_user(other, "someone", id=first_user["id"])
    refused_import(exported, "conflict with rows already here")


def test_a_tenants_file_naming_another_tenant_is_refused(exported, tmp_path):
    refused_import(edited(exported, tmp_path, "tenants", lambda row: {**row, "slug": "evil"}), "the manifest says")


def test_staff_users_are_not_imported_into_a_customer_tenant(exported, tmp_path):
    path = edited(exported, tmp_path, "users", lambda row: {**row, "is_staff": True, "is_superuser": True})
    refused_import(path, "is staff or superuser")


def test_an_export_with_a_capital_slug_is_imported_lower_case(exported, tmp_path):
    """An export from a database older than the lower-case rule: the slug comes in lowered."""
    path = copy_of(exported, tmp_path)
    manifest = json.loads((path / "manifest.json").read_text())
    manifest["tenant"]["slug"] = "ACME"
    entry = next(e for e in manifest["files"] if e["table"] == "tenants")
    file = path / entry["file"]
    row = json.loads(file.read_text())
    row["slug"] = "ACME"
    file.write_text(json.dumps(row, sort_keys=True) + "\n")
    entry["sha256"] = sha256_of(file)
    (path / "manifest.json").write_text(json.dumps(manifest))
    import_tenant(path)
    assert Tenant.objects.using("owner").filter(slug="acme").exists()
