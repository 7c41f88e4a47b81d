"""Scenario 1: the emergency bypass. It changes a cluster-wide role membership
(committed through the owner connection), so every test turns it off again."""

from io import StringIO

import pytest
from django.core.management import call_command

from tenants.context import tenant_context
from tenants.management.commands.rls_bypass import app_role_bypasses, set_app_role_bypass
from tests.support.factories import TradeFactory
from trading.models import Trade

pytestmark = pytest.mark.django_db(databases=["default", "owner"])


@pytest.fixture
def bypass_restored():
    yield
    set_app_role_bypass(False)
    assert not app_role_bypasses()


def run(*args: str) -> str:
    out = StringIO()
    call_command("rls_bypass", *args, stdout=out)
    return out.getvalue()


def test_on_flips_health_to_bypassed_and_off_restores_enforced(client, bypass_restored):
    assert client.get("/health").json()["rls"] == "enforced"
    assert "RLS bypass ON" in run("on", "--yes")
    assert client.get("/health").json() == {"status": "ok", "database": "ok", "rls": "bypassed"}
    assert "ON" in run("status")
    assert "RLS bypass off" in run("off")
    assert client.get("/health").json()["rls"] == "enforced"


def test_orm_keeps_tenants_apart_while_rls_is_bypassed(user_a, user_b, client_a, bypass_restored):
    TradeFactory(user=user_a, symbol="AAPL")
    TradeFactory(user=user_b, symbol="MSFT")
    run("on", "--yes")
    with tenant_context(user_a.tenant):
        # The database would now show both rows; the tenant manager shows one.
        assert Trade.all_tenants.count() == 2  # proves the bypass is really on
        assert list(Trade.objects.values_list("symbol", flat=True)) == ["AAPL"]
    symbols = [t["symbol"] for t in client_a.get("/api/trades/").json()["results"]]
    assert symbols == ["AAPL"]


def test_on_asks_for_confirmation(monkeypatch, bypass_restored):
    monkeypatch.setattr("builtins.input", lambda prompt: "no")
    with pytest.raises(Exception, match="Aborted"):
        run("on")
    assert not app_role_bypasses()
