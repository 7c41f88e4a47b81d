"""dumpdata and loaddata behave as a Django user expects: the owner connection by default, like
migrate (every tenant's rows), never an empty success on the app role's connection."""

from __future__ import annotations

import json
from decimal import Decimal
from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from tenants import services
from tenants.constants import OWNER_DATABASE
from tenants.context import tenant_context
from trading.models import Trade

pytestmark = pytest.mark.django_db(databases=["default", "owner"])


@pytest.fixture
def owner_trade():
    tenant = services.tenant_create(slug="acme", name="Acme")
    user = services.user_create(tenant=tenant, username="alice", password="long-enough-pw")
    with tenant_context(tenant, using=OWNER_DATABASE):
        trade = Trade(user=user, symbol="AAPL", side="buy", quantity=Decimal("1"), price=Decimal("2"))
        trade.save(using=OWNER_DATABASE)
    return trade


def run(*args: str) -> str:
    out = StringIO()
    call_command(*args, stdout=out, stderr=StringIO())
    return out.getvalue()


def test_dumpdata_dumps_the_rows_and_loaddata_puts_them_back(owner_trade, tmp_path):
    dumped = json.loads(run("dumpdata", "trading.Trade"))
    assert [row["pk"] for row in dumped] == [str(owner_trade.pk)]
    fixture = tmp_path / "trades.json"
    fixture.write_text(json.dumps(dumped))
    Trade.all_tenants.using(OWNER_DATABASE).filter(pk=owner_trade.pk).delete()
    assert "Installed 1 object(s)" in run("loaddata", str(fixture))
    assert Trade.all_tenants.using(OWNER_DATABASE).filter(pk=owner_trade.pk, symbol="AAPL").exists()


@pytest.mark.parametrize("command", ["dumpdata", "loaddata"])
def test_the_app_roles_connection_is_refused_with_the_reason(command, tmp_path):
    fixture = tmp_path / "empty.json"
    fixture.write_text("[]")
    args = ["trading.Trade"] if command == "dumpdata" else [str(fixture)]
    with pytest.raises(CommandError, match="would see no rows") as refused:
        run(command, *args, "--database", "default")
    assert refused.value.returncode == 2
