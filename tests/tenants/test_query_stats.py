"""`manage.py query_stats`: snapshot, compare, and its errors (no timings asserted)."""

from __future__ import annotations

import json
from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from tenants.management.commands import query_stats
from tenants.management.commands.query_stats import HEADER, QueryStat, compare_stats
from tenants.models import Tenant

pytestmark = pytest.mark.django_db(databases=["default", "owner"])


def run(*args: str) -> str:
    out = StringIO()
    call_command("query_stats", *args, stdout=out)
    return out.getvalue()


def test_snapshot_then_compare_on_the_test_database(tmp_path):
    snapshot = tmp_path / "before.json"
    assert "saved" in run("snapshot", str(snapshot))
    document = json.loads(snapshot.read_text())
    assert document["role"] == "alphapulse_owner" and isinstance(document["queries"], list)

    for _ in range(3):
        Tenant.objects.filter(slug="query-stats-probe").exists()
    output = run("compare", str(snapshot))

    assert HEADER in output.splitlines()
    assert "queries ran in between" in output
    assert 'FROM "tenants"' in output  # the probe query, normalized


def test_compare_without_a_snapshot_is_a_command_error(tmp_path):
    with pytest.raises(CommandError, match="No snapshot at"):
        run("compare", str(tmp_path / "missing.json"))


def test_compare_with_a_file_that_is_not_a_snapshot(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text('{"something": "else"}')
    with pytest.raises(CommandError, match="not a query_stats snapshot"):
        run("compare", str(bad))


def test_missing_extension_is_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.setattr(query_stats, "EXTENSION_SQL", "SELECT 1 WHERE false")
    with pytest.raises(CommandError, match="pg_stat_statements is not installed"):
        run("snapshot", str(tmp_path / "x.json"))


def stat(key: str, calls: int, total_ms: float, max_ms: float) -> QueryStat:
    return QueryStat(key, "alphapulse_app", f"SELECT {key}", calls, total_ms, total_ms / calls, max_ms, calls)


def test_flags_slow_and_regressed_queries_only():
    before = {
        "steady": stat("steady", 100, 100.0, 3.0),
        "slower": stat("slower", 100, 100.0, 3.0),
        "few": stat("few", 100, 100.0, 3.0),
        "idle": stat("idle", 5, 5.0, 1.0),
    }
    after = {
        "steady": stat("steady", 200, 210.0, 3.0),  # mean in between 1.1 ms vs 1.0: +10 %
        "slower": stat("slower", 200, 250.0, 4.0),  # 1.5 ms vs 1.0: +50 %
        "few": stat("few", 102, 110.0, 5.0),  # +400 %, but only 2 calls
        "idle": stat("idle", 5, 5.0, 1.0),  # did not run
        "spike": stat("spike", 20, 700.0, 650.0),  # new, max over 500 ms
    }
    changes = {c.stat.key: c for c in compare_stats(before, after)}

    assert set(changes) == {"steady", "slower", "few", "spike"}
    assert changes["steady"].flags == []
    assert changes["slower"].flags == ["REGRESSED"]
    assert changes["few"].flags == []
    assert changes["spike"].flags == ["SLOW"] and changes["spike"].mean_before is None
