"""TenantModel names its tenant in the statements Django writes by primary key
alone (UPDATE on save, DELETE, refresh_from_db's SELECT), and bulk_insert
writes multi-row VALUES: on a Citus coordinator, what routes a statement to
the one worker that holds the tenant (tests/citus/test_routing.py). Checked
here on the SQL itself, so they hold on any backend. Runs as the app role."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from tenants.context import tenant_context
from tenants.database.bulk import bulk_insert
from tests.support.factories import TradeFactory
from trading.models import Trade

pytestmark = pytest.mark.django_db


def sql_of(action) -> list[str]:
    with CaptureQueriesContext(connection) as captured:
        action()
    return [
        q["sql"] for q in captured.captured_queries if q["sql"].startswith(("UPDATE", "DELETE", "SELECT", "INSERT"))
    ]


def test_save_of_an_existing_row_updates_by_tenant_and_id(user_a):
    trade = TradeFactory(user=user_a)
    with tenant_context(user_a.tenant):
        trade.symbol = "MSFT"
        [update] = sql_of(trade.save)
        assert Trade.objects.get(pk=trade.pk).symbol == "MSFT"
    assert update.startswith('UPDATE "trades"')
    assert f'"trades"."tenant_id" = \'{user_a.tenant_id.hex}\'' in update.split(" WHERE ")[1]


def test_delete_is_by_tenant_and_id_and_clears_the_pk(user_a):
    trade = TradeFactory(user=user_a)
    pk = trade.pk
    with tenant_context(user_a.tenant):
        deletes = [s for s in sql_of(trade.delete) if s.startswith("DELETE")]
        assert not Trade.objects.filter(pk=pk).exists()
    assert trade.pk is None
    assert deletes and all(f'"trades"."tenant_id" = \'{user_a.tenant_id.hex}\'' in s for s in deletes), deletes


def test_refresh_from_db_reads_by_tenant_and_id(user_a):
    trade = TradeFactory(user=user_a)
    with tenant_context(user_a.tenant):
        [select] = sql_of(trade.refresh_from_db)
    assert f'"trades"."tenant_id" = \'{user_a.tenant_id.hex}\'' in select


def test_bulk_insert_writes_multi_row_values_not_unnest(user_a):
    with tenant_context(user_a.tenant):
        trades = [
            Trade(tenant=user_a.tenant, user=user_a, symbol="AAPL", side="buy", quantity=1, price=1) for _ in range(3)
        ]
        keys = [t.pk for t in trades]
        [insert] = sql_of(lambda: bulk_insert(Trade.objects, trades))
        assert Trade.objects.filter(pk__in=keys).count() == 3
    assert "UNNEST" not in insert.upper() and insert.count("), (") == 2, insert
    assert [t.pk for t in trades] == keys
