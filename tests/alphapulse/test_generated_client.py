"""The schema tells the truth: a Python client generated from /api/schema/ at test time
(openapi-python-client) runs the README's "Try it" session against a real gunicorn.

A route, field or answer that drifts from the schema fails here: the client parses every
body into the documented model (a missing field is an error) and raises on any status the
schema does not document. The rules are generic, so endpoints added later are held too:
every operation documents its errors, the generator accepts the whole document without a
warning, and every generated module imports."""

from __future__ import annotations

import importlib
import json
import os
import pkgutil
import subprocess
import sys
from decimal import Decimal
from pathlib import Path
from types import ModuleType

import pytest
from rest_framework.test import APIClient

from tests.support.scratch import DEMO_PASSWORD, FAST_HASHER, demo_database, gunicorn

GENERATOR = Path(sys.executable).with_name("openapi-python-client")
PACKAGE = "alphapulse_client"


def schema() -> dict:
    response = APIClient().get("/api/schema/?format=json")
    assert response.status_code == 200
    return json.loads(response.content)


@pytest.fixture(scope="module")
def client_package(tmp_path_factory) -> ModuleType:
    root = tmp_path_factory.mktemp("generated")
    document = root / "schema.json"
    document.write_text(json.dumps(schema()))
    result = subprocess.run(
        [str(GENERATOR), "generate", "--path", str(document), "--output-path", str(root / PACKAGE), "--meta", "none"],
        capture_output=True,
        text=True,
        timeout=300,
        # The generator formats its output with ruff: the venv's.
        env={**os.environ, "PATH": f"{GENERATOR.parent}{os.pathsep}{os.environ['PATH']}"},
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Warning" not in result.stdout + result.stderr, result.stdout + result.stderr
    sys.path.insert(0, str(root))
    try:
        yield importlib.import_module(PACKAGE)
    finally:
        sys.path.remove(str(root))
        for name in [m for m in sys.modules if m == PACKAGE or m.startswith(f"{PACKAGE}.")]:
            del sys.modules[name]


def test_every_generated_module_imports(client_package):
    for module in pkgutil.walk_packages(client_package.__path__, f"{PACKAGE}."):
        importlib.import_module(module.name)


def test_every_operation_documents_its_errors():
    document = schema()
    for path, item in document["paths"].items():
        for method, operation in item.items():
            codes = set(operation["responses"])
            assert {"401", "429", "503"} <= codes, f"{method.upper()} {path}: {sorted(codes)}"
            if "{" in path:
                assert "404" in codes, f"{method.upper()} {path}"
            if "requestBody" in operation:
                assert {"400", "413", "415"} <= codes, f"{method.upper()} {path}"
            for code, answer in operation["responses"].items():
                if code.startswith("4") or code.startswith("5"):
                    ref = answer["content"]["application/json"]["schema"]["$ref"]
                    assert ref.rsplit("/", 1)[1] in document["components"]["schemas"]


def test_the_schema_version_is_the_projects():
    import tomllib

    from tests.support.scratch import ROOT

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    assert schema()["info"]["version"] == project
    assert f"## {project}" in (ROOT / "CHANGELOG.md").read_text()


@pytest.fixture(scope="module")
def server(django_db_setup, django_db_blocker):
    with django_db_blocker.unblock(), demo_database("alphapulse_client", trades=20) as name:
        with gunicorn(name, **FAST_HASHER) as base:
            yield base


def test_the_readme_session_runs_through_the_generated_client(client_package, server):
    """README, "Try it": health, log in as alice of acme, record a trade, list trades, list risk metrics."""
    from alphapulse_client import AuthenticatedClient, Client
    from alphapulse_client.api.auth import auth_token_create
    from alphapulse_client.api.risk_metrics import risk_metrics_list
    from alphapulse_client.api.trades import trades_create, trades_list
    from alphapulse_client.api.users import users_me_retrieve
    from alphapulse_client.models import Error, PaginatedTradeList, TenantLogin, TenantLoginRequest, Trade, TradeRequest
    from alphapulse_client.models.side_enum import SideEnum

    public = Client(base_url=server, raise_on_unexpected_status=True)
    assert public.get_httpx_client().get("/health").json()["rls"] == "enforced"

    refused = auth_token_create.sync(
        client=public, body=TenantLoginRequest(tenant="acme", username="alice", password="wrong")
    )
    assert isinstance(refused, Error) and "Invalid tenant, username or password" in refused.detail

    tokens = auth_token_create.sync(
        client=public, body=TenantLoginRequest(tenant="acme", username="alice", password=DEMO_PASSWORD)
    )
    assert isinstance(tokens, TenantLogin), tokens
    alice = AuthenticatedClient(base_url=server, token=tokens.access, raise_on_unexpected_status=True)
    me = users_me_retrieve.sync(client=alice)
    assert me.username == "alice"

    trade = trades_create.sync(
        client=alice, body=TradeRequest(symbol="AAPL", side=SideEnum.BUY, quantity="10", price="189.50")
    )
    assert isinstance(trade, Trade), trade
    assert (trade.symbol, Decimal(trade.quantity), str(trade.tenant_id)) == ("AAPL", Decimal(10), str(me.tenant_id))

    page = trades_list.sync(client=alice, page_size=5)
    assert isinstance(page, PaginatedTradeList)
    assert len(page.results) == 5 and page.results[0].id == trade.id
    risk = risk_metrics_list.sync(client=alice, page_size=5)
    assert all(str(row.tenant_id) == str(me.tenant_id) for row in risk.results)

    anonymous = AuthenticatedClient(base_url=server, token="not.a.jwt", raise_on_unexpected_status=True)
    rejected = trades_list.sync(client=anonymous)
    assert isinstance(rejected, Error) and rejected.detail.startswith("Token rejected")
