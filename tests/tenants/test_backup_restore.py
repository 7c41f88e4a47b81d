"""Backups with RLS forced (scenario 3), on scratch databases with committed data.

`scripts/backup.sh` must dump every tenant's rows (a dump the policies filter
holds 0 rows without an error), and `scripts/restore.sh` must prove it by
counts per table and tenant, failing loudly when they differ.
"""

from __future__ import annotations

import threading
import time

import pytest

from tests.support.scratch import connect, drop_database, manage, scratch_database, script

pytestmark = [pytest.mark.slow, pytest.mark.django_db(databases=["default", "owner"])]


@pytest.fixture
def two_tenant_db():
    with scratch_database("alphapulse_backup") as name:
        manage(name, "migrate")
        manage(name, "load_demo", "--trades", "40")
        yield name


def test_backup_round_trip_keeps_every_tenants_rows(two_tenant_db, tmp_path):
    dump = tmp_path / "two-tenants.dump"
    restored = f"{two_tenant_db}_restored"
    try:
        backup = script("scripts/backup.sh", DB=two_tenant_db, FILE=str(dump))
        assert "tables with data" in backup.stdout
        counts = (tmp_path / "two-tenants.dump.counts").read_text().splitlines()
        tenants_in_trades = {line.split()[1] for line in counts if line.startswith("trades ")}
        assert len(tenants_in_trades) == 3  # acme, globex, initech: nothing filtered away
        result = script("scripts/restore.sh", FILE=str(dump), DB=restored)
        assert "row counts match the backup" in result.stdout
        assert manage(restored, "rls_check", check=False).returncode == 0
    finally:
        drop_database(restored)


def test_restore_fails_loudly_when_counts_differ(two_tenant_db, tmp_path):
    dump = tmp_path / "tampered.dump"
    restored = f"{two_tenant_db}_tampered"
    try:
        script("scripts/backup.sh", DB=two_tenant_db, FILE=str(dump))
        counts = dump.with_name("tampered.dump.counts")
        lines = counts.read_text().splitlines()
        table, tenant, rows = lines[-1].split()
        lines[-1] = f"{table} {tenant} {int(rows) + 1}"
        counts.write_text("\n".join(lines) + "\n")
        result = script("scripts/restore.sh", check=False, FILE=str(dump), DB=restored)
        assert result.returncode == 1
        assert "ROW COUNTS DIFFER" in result.stderr
    finally:
        drop_database(restored)


def test_scenario_3_restore_pre_migration_backup_then_migrate_forward(tmp_path):
    """Backup at the legacy schema, migrate, restore the old backup, migrate forward again."""
    with scratch_database("alphapulse_legacy") as legacy:
        manage(legacy, "migrate", "tenants", "0001_legacy_users")
        manage(legacy, "migrate", "trading", "0001_legacy_domain")
        with connect("owner", legacy) as owner:
            owner.execute(
                "INSERT INTO users (id, password, username, email, is_active, is_staff, is_superuser, created_at) "
                "VALUES (gen_random_uuid(), '', 'legacy', '', true, false, false, now())"
            )
            owner.execute(
                "INSERT INTO trades (id, user_id, symbol, side, quantity, price, executed_at, created_at) "
                "SELECT gen_random_uuid(), id, 'AAPL', 'buy', 1, 100, now(), now() FROM users, generate_series(1, 25)"
            )
        dump = tmp_path / "pre-migration.dump"
        script("scripts/backup.sh", DB=legacy, FILE=str(dump))
        assert "trades - 25" in (tmp_path / "pre-migration.dump.counts").read_text()
        assert dump.exists()
        manage(legacy, "migrate")
        restored = f"{legacy}_restored"
        try:
            started = time.monotonic()
            result = script("scripts/restore.sh", FILE=str(dump), DB=restored)
            assert "row counts match the backup" in result.stdout
            with connect("owner", restored) as owner:
                assert owner.execute("SELECT count(*) FROM trades").fetchone() == (25,)
                assert owner.execute("SELECT to_regclass('tenants')").fetchone() == (None,)
            manage(restored, "migrate")
            assert manage(restored, "rls_check", check=False).returncode == 0
            with connect("owner", restored) as owner:
                assert owner.execute("SELECT count(*) FROM trades").fetchone() == (25,)
            print(f"scenario 3 recovery (restore + migrate forward): {time.monotonic() - started:.1f} s")
        finally:
            drop_database(restored)


def test_counts_and_dump_share_one_snapshot_under_concurrent_writes(two_tenant_db, tmp_path):
    """Rows written while the backup runs are either in both the counts and the
    dump or in neither (a review caught counts taken in a separate snapshot)."""
    dump = tmp_path / "live.dump"
    restored = f"{two_tenant_db}_live"
    stop = threading.Event()

    def writer() -> None:
        with connect("owner", two_tenant_db) as owner:
            while not stop.is_set():
                owner.execute(
                    "INSERT INTO trades (id, tenant_id, user_id, symbol, side, quantity, price, executed_at, "
                    "created_at) SELECT gen_random_uuid(), tenant_id, id, 'LIVE', 'buy', 1, 1, now(), now() FROM users "
                    "WHERE username = 'alice'"
                )
                time.sleep(0.01)  # pacing the writer, not a timing assertion

    thread = threading.Thread(target=writer)
    thread.start()
    try:
        script("scripts/backup.sh", DB=two_tenant_db, FILE=str(dump))
    finally:
        stop.set()
        thread.join()
    try:
        result = script("scripts/restore.sh", check=False, FILE=str(dump), DB=restored)
        assert result.returncode == 0, result.stderr
        assert "row counts match the backup" in result.stdout
    finally:
        drop_database(restored)


def test_restore_refuses_what_it_cannot_check_or_would_overwrite(two_tenant_db, tmp_path):
    dump = tmp_path / "x.dump"
    script("scripts/backup.sh", DB=two_tenant_db, FILE=str(dump))
    existing = script("scripts/restore.sh", check=False, FILE=str(dump), DB=two_tenant_db)
    assert existing.returncode == 2 and "already exists" in existing.stderr
    dump.with_name("x.dump.counts").unlink()
    unchecked = script("scripts/restore.sh", check=False, FILE=str(dump), DB=f"{two_tenant_db}_x")
    assert unchecked.returncode == 2 and "could not be checked" in unchecked.stderr
    missing = script("scripts/restore.sh", check=False, FILE=str(tmp_path / "nope.dump"), DB=f"{two_tenant_db}_y")
    assert missing.returncode == 2 and "no such file" in missing.stderr
    with connect("owner", "postgres") as admin:
        names = {row[0] for row in admin.execute("SELECT datname FROM pg_database").fetchall()}
    assert not {f"{two_tenant_db}_x", f"{two_tenant_db}_y"} & names
