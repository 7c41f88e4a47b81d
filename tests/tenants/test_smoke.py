from tenants.context import tenant_context
from tenants.models import User
from tests.support.factories import TradeFactory
from trading.models import Trade


def test_each_tenant_sees_only_its_own_trade(user_a, user_b):
    TradeFactory(user=user_a, symbol="AAPL")
    TradeFactory(user=user_b, symbol="MSFT")
    with tenant_context(user_a.tenant):
        assert list(Trade.objects.values_list("symbol", flat=True)) == ["AAPL"]
        assert list(User.objects.values_list("username", flat=True)) == ["alice"]
    with tenant_context(user_b.tenant):
        assert list(Trade.objects.values_list("symbol", flat=True)) == ["MSFT"]


def test_api_lists_only_callers_users(client_a, user_b):
    response = client_a.get("/api/users/")
    assert response.status_code == 200, response.content
    body = response.json()
    usernames = [u["username"] for u in body.get("results", body)]
    assert usernames == ["alice"]
