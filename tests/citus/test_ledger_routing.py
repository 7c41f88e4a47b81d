"""The ledger's statements route to one shard (the tenant's): a fill (the order's conditional
UPDATE, the trade-and-position statement, the audit event), a trade booked with its position
move (one data-modifying CTE), an amendment's recomputation, and an Idempotency-Key's claim,
answer and replay. Each request runs with fan-out made an error, then each statement it ran
is EXPLAINed as the app role and must be a single-task plan (tests/citus/test_routing.py)."""

from __future__ import annotations

import pytest

from tenants.context import tenant_context
from tests.citus.test_routing import single_task_plans, statements_of
from tests.support.factories import OrderFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def fan_out_is_an_error(db):
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL citus.multi_task_query_log_level TO 'error'")


@pytest.fixture
def admin_a(user_a, tenant_a):
    user_a.role = "admin"
    with tenant_context(tenant_a):
        user_a.save()
    return user_a


def test_a_fill_runs_on_one_shard(client_a, admin_a, tenant_a, fan_out_is_an_error):
    with tenant_context(tenant_a):
        order = OrderFactory(user=admin_a, order_type="market", limit_price=None, quantity=5)
    fill = statements_of(
        lambda: client_a.post(f"/api/orders/{order.pk}/fills/", {"quantity": "2", "price": "10"}, format="json")
    )
    assert any(s.lstrip().startswith("UPDATE") and "filled_quantity" in s for s in fill), fill
    assert any(s.lstrip().startswith("WITH t AS (INSERT INTO") for s in fill), fill
    single_task_plans(fill, tenant_a)


def test_a_trade_with_its_position_and_an_idempotent_replay_run_on_one_shard(
    client_a, admin_a, tenant_a, fan_out_is_an_error
):
    body = {"symbol": "AAPL", "side": "buy", "quantity": "3", "price": "7"}
    responses: list = []
    first = statements_of(
        lambda: client_a.post("/api/trades/", body, format="json", HTTP_IDEMPOTENCY_KEY="route-1"), responses
    )
    again = statements_of(lambda: client_a.post("/api/trades/", body, format="json", HTTP_IDEMPOTENCY_KEY="route-1"))
    amend = statements_of(
        lambda: client_a.patch(f"/api/trades/{responses[0].json()['id']}/", {"quantity": "4"}, format="json")
    )
    single_task_plans(first + again + amend, tenant_a)
