"""The shard-move commands refuse the transfer modes that hang on FORCE-RLS
tables, and a database that is no Citus coordinator, with a clear error and
before touching anything (the moves themselves: make citus-drills)."""

from __future__ import annotations

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from tenants.catalog.servers import Server
from tests.support.scratch import ON_CITUS


@pytest.mark.parametrize("mode", ["auto", "force_logical"])
@pytest.mark.parametrize(
    "command", [("citus_rebalance",), ("citus_move_tenant", "acme", "--to", "127.0.0.1:54343")], ids=lambda c: c[0]
)
def test_logical_transfer_modes_are_refused(command, mode):
    # No django_db mark: any query would raise, so the refusal comes first.
    with pytest.raises(CommandError) as refused:
        call_command(*command, "--transfer-mode", mode)
    message = str(refused.value)
    assert refused.value.returncode == 2
    assert "ROW LEVEL SECURITY" in message and "hang" in message and "block_writes" in message


def test_an_unknown_transfer_mode_is_refused():
    with pytest.raises(CommandError, match="unknown shard_transfer_mode 'fast'"):
        call_command("citus_rebalance", "--transfer-mode", "fast")


def test_a_bad_target_is_refused():
    with pytest.raises(CommandError, match="HOST:PORT"):
        call_command("citus_move_tenant", "acme", "--to", "worker-two")


def test_without_the_superuser_url_nothing_runs(monkeypatch):
    monkeypatch.delenv("CITUS_ADMIN_DATABASE_URL", raising=False)
    with pytest.raises(CommandError, match="CITUS_ADMIN_DATABASE_URL is not set") as refused:
        call_command("citus_rebalance")
    assert refused.value.returncode == 2


@pytest.mark.skipif(ON_CITUS, reason="the single-node database")
@pytest.mark.django_db(databases=["default", "owner"])
def test_a_plain_postgresql_is_not_a_coordinator(monkeypatch):
    monkeypatch.setenv("CITUS_ADMIN_DATABASE_URL", Server.of("owner").url("postgres"))
    with pytest.raises(CommandError, match="not a Citus coordinator") as refused:
        call_command("citus_rebalance")
    assert refused.value.returncode == 2
