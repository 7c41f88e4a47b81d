"""`rebuild_positions [--tenant] [--check]` and `tenant_integrity` find positions that do not
follow their trades: one changed behind the API, one typed in that no trade explains, one
missing; --check names each and changes nothing (exit 1), a rebuild writes the trades'
figures and records each change in the tenant's audit log."""

from __future__ import annotations

from decimal import Decimal
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.db import connection

from tenants.context import tenant_context
from tenants.models import TenantAuditEvent
from tests.support.clients import bearer_client
from tests.support.factories import PositionFactory, UserFactory
from trading.models import Position

pytestmark = pytest.mark.django_db(databases=["default", "owner"])


def run(*args: str) -> tuple[int, str]:
    out = StringIO()
    try:
        call_command(*args, stdout=out, stderr=StringIO())
    except CommandError as error:
        return error.returncode, out.getvalue() + str(error)
    return 0, out.getvalue()


@pytest.fixture
def booked(tenant_a, tenant_b):
    alice = UserFactory(tenant=tenant_a, username="rb-alice", role="admin")
    bob = UserFactory(tenant=tenant_b, username="rb-bob", role="admin")
    for user, symbol in ((alice, "AAPL"), (alice, "MSFT"), (bob, "AAPL")):
        body = {"symbol": symbol, "side": "buy", "quantity": "10", "price": "100"}
        assert bearer_client(user).post("/api/trades/", body, format="json").status_code == 201
    return alice, bob


def positions(tenant) -> dict:
    with tenant_context(tenant):
        return {p.symbol: (p.quantity, p.average_price) for p in Position.objects.all()}


def test_positions_booked_through_the_api_pass_the_check(booked):
    code, out = run("rebuild_positions", "--check")
    assert code == 0, out
    assert "follow their trades" in out
    assert run("tenant_integrity")[0] == 0


def test_check_names_every_difference_and_changes_nothing(booked, tenant_a, tenant_b):
    alice, _ = booked
    with tenant_context(tenant_a), connection.cursor() as cursor:  # behind the API's back
        cursor.execute("UPDATE positions SET quantity = 7 WHERE tenant_id = %s AND symbol = 'AAPL'", [tenant_a.pk])
        cursor.execute("DELETE FROM positions WHERE tenant_id = %s AND symbol = 'MSFT'", [tenant_a.pk])
    with tenant_context(tenant_a):
        PositionFactory(user=alice, symbol="TYPED", quantity=Decimal("5"), average_price=Decimal("1"))
    before = positions(tenant_a)
    code, out = run("rebuild_positions", "--check")
    assert code == 1
    assert f"acme: user {alice.pk} AAPL: stored 7 @ 100, trades say 10 @ 100" in out
    assert f"acme: user {alice.pk} MSFT: stored none, trades say 10 @ 100" in out
    assert f"acme: user {alice.pk} TYPED: stored 5 @ 1, trades say none" in out
    assert "3 positions differ from their trades." in out
    assert "globex" not in out
    assert positions(tenant_a) == before
    code, out = run("tenant_integrity")
    assert code == 1 and "position drift: acme" in out

    assert run("rebuild_positions", "--tenant", "globex", "--check")[0] == 0
    code, out = run("rebuild_positions", "--tenant", "acme")
    assert code == 0 and "3 positions rewritten from trades." in out
    assert positions(tenant_a) == {"AAPL": (Decimal(10), Decimal(100)), "MSFT": (Decimal(10), Decimal(100))}
    with tenant_context(tenant_a):
        events = list(TenantAuditEvent.objects.filter(action="position.rebuilt").values_list("details", flat=True))
    typed = next(e for e in events if e["symbol"] == "TYPED")
    assert typed["before"] == {"quantity": "5.00000000", "average_price": "1.00000000"}
    assert typed["after"] is None  # kept visible: what the rebuild removed
    assert run("rebuild_positions", "--check")[0] == 0


def test_an_unknown_tenant_is_refused():
    code, out = run("rebuild_positions", "--tenant", "nope", "--check")
    assert code == 2 and "nope" in out
