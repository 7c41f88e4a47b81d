"""Point-in-time recovery tooling that needs no backup: the pg_waldump reader behind
`make pitr-find`, and the argument refusals of `scripts/pitr.sh restore` (exit 2, one
line, nothing created). The restores themselves run in tests/drills/test_pitr.py."""

from __future__ import annotations

import socket
import subprocess
from datetime import UTC, datetime

import pytest

from platform_ops import waldump
from tests.support.scratch import ROOT

# Real pg_waldump (PostgreSQL 15) lines: xid 1882 deleted two rows and aborted; 1883 updated two
# rows, deleted two and, in a subtransaction (1884), one row of another table, then committed.
WAL = """\
rmgr: Heap        len (rec/tot):     54/    54, tx:       1882, lsn: 0/127D63C8, prev 0/127D52C8, desc: DELETE off 4 flags 0x00 KEYS_UPDATED , blkref #0: rel 1663/16387/16612 blk 0
rmgr: Heap        len (rec/tot):     54/    54, tx:       1882, lsn: 0/127D6400, prev 0/127D63C8, desc: DELETE off 3 flags 0x00 KEYS_UPDATED , blkref #0: rel 1663/16387/16612 blk 0
rmgr: Transaction len (rec/tot):     34/    34, tx:       1882, lsn: 0/127D6440, prev 0/127D6400, desc: ABORT 2026-12-03 20:14:31.000001 UTC
rmgr: Heap        len (rec/tot):     73/  4445, tx:       1883, lsn: 0/127D6498, prev 0/127D6460, desc: UPDATE off 1 xmax 1883 flags 0x02 ; new off 37 xmax 0, blkref #0: rel 1663/16387/16612 blk 87 FPW, blkref #1: rel 1663/16387/16612 blk 0
rmgr: Heap        len (rec/tot):    162/   162, tx:       1883, lsn: 0/127D7758, prev 0/127D7720, desc: HOT_UPDATE off 2 xmax 1883 flags 0x00 ; new off 38 xmax 0, blkref #0: rel 1663/16387/16612 blk 87
rmgr: Heap        len (rec/tot):     54/    54, tx:       1883, lsn: 0/127D7928, prev 0/127D78D8, desc: DELETE off 4 flags 0x00 KEYS_UPDATED , blkref #0: rel 1663/16387/16612 blk 0
rmgr: Heap        len (rec/tot):     54/    54, tx:       1883, lsn: 0/127D7960, prev 0/127D7928, desc: DELETE off 3 flags 0x00 KEYS_UPDATED , blkref #0: rel 1663/16387/16612 blk 0
rmgr: Heap        len (rec/tot):     59/  8223, tx:       1884, lsn: 0/127D7998, prev 0/127D7960, desc: DELETE off 1 flags 0x00 KEYS_UPDATED , blkref #0: rel 1663/16387/16573 blk 0 FPW
rmgr: Heap        len (rec/tot):     54/    54, tx:       1890, lsn: 0/127D9A00, prev 0/127D99D0, desc: DELETE off 5 flags 0x00 KEYS_UPDATED , blkref #0: rel 1663/99999/16612 blk 0
rmgr: Transaction len (rec/tot):     46/    46, tx:       1883, lsn: 0/127D99D0, prev 0/127D7998, desc: COMMIT 2026-12-03 20:14:32.401895 UTC; subxacts: 1884
rmgr: Transaction len (rec/tot):     34/    34, tx:       1890, lsn: 0/127DA000, prev 0/127D9A00, desc: COMMIT 2026-12-03 20:14:33.000000 UTC
"""  # noqa: E501 (pg_waldump lines as it prints them)
RELATIONS = {"16612": "trades", "16573": "agent_signals"}


def test_waldump_counts_committed_changes_per_transaction_and_folds_subtransactions():
    changes = waldump.parse(WAL.splitlines(), db_oid="16387", relations=RELATIONS)
    assert [c.xid for c in changes] == [1883], "the aborted 1882 and another database's 1890 are not listed"
    (change,) = changes
    assert change.rows == {("trades", "updated"): 2, ("trades", "deleted"): 2, ("agent_signals", "deleted"): 1}
    assert change.committed_at == datetime(2026, 12, 3, 20, 14, 32, 401895, tzinfo=UTC)


def test_waldump_selects_by_window_table_and_size():
    changes = waldump.parse(WAL.splitlines(), db_oid="16387", relations=RELATIONS)
    since = datetime(2026, 12, 3, 20, 14, tzinfo=UTC)
    assert waldump.select(changes, since=since, table="trades", min_rows=4) == changes
    assert waldump.select(changes, since=since, table="trades", min_rows=5) == []
    assert waldump.select(changes, since=since, table="orders", min_rows=1) == []
    assert waldump.select(changes, since=datetime(2026, 12, 3, 20, 15, tzinfo=UTC)) == []


def pitr(*args: str, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["bash", "scripts/pitr.sh", *args],
        cwd=ROOT,
        env={"PATH": "/usr/bin:/bin", "PGPORT": "1", "PGBACKREST_DIR": "/nonexistent", **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.fixture
def busy_port():
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        yield str(listener.getsockname()[1])


@pytest.mark.parametrize(
    "env, message",
    [
        ({}, "give AT="),
        ({"AT": "2026-12-03 18:50:35+00", "BEFORE_XID": "7"}, "not both"),
        ({"AT": "2026-12-03 18:50:35"}, "not a timestamp with a zone"),
        ({"AT": "yesterday"}, "not a timestamp with a zone"),
        ({"AT": "2999-01-01 00:00:00+00"}, "is in the future"),
        ({"BEFORE_XID": "12ab"}, "not a transaction id"),
        ({"AT": "2026-12-03 18:50:35+00", "RESTORE_PORT": "80x"}, "is not a port"),
        ({"AT": "2026-12-03 18:50:35+00", "RESTORE_PORT": "{busy}"}, "is in use"),
        ({"AT": "2026-12-03 18:50:35+00", "RESTORE_PORT": "56999"}, "make pitr-setup first"),
    ],
)
def test_restore_refuses_bad_arguments_in_one_line_with_exit_2(env, message, busy_port, tmp_path):
    env = {k: v.replace("{busy}", busy_port) for k, v in env.items()}
    result = pitr("restore", **env)
    assert result.returncode == 2, result.stderr
    assert message in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert not (ROOT / ".pitr" / "56999").exists()
