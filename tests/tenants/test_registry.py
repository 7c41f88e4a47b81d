"""Tenant tables are discovered from the models, and `tenants` never imports `trading`."""

from __future__ import annotations

import ast
from pathlib import Path

from django.apps import apps

from tenants.models import TenantModel
from tenants.registry import tenant_models, tenant_tables

TENANTS = Path(__file__).resolve().parents[2] / "tenants"


def test_tenant_tables_are_every_tenant_model_users_first():
    assert set(tenant_tables()) == {
        "users",
        "trades",
        "positions",
        "orders",
        "portfolio_snapshots",
        "risk_metrics",
        "agent_signals",
    }
    assert tenant_tables()[0] == "users"  # every domain table references it
    concrete = {m for m in apps.get_models() if issubclass(m, TenantModel)}
    assert set(tenant_models()) == concrete


def test_each_tenant_model_comes_after_the_tenant_models_it_references():
    order = tenant_models()
    for position, model in enumerate(order):
        for field in model._meta.concrete_fields:
            if field.is_relation and field.related_model in order and field.related_model is not model:
                assert order.index(field.related_model) < position, (model, field.name)


def test_tenants_never_imports_trading():
    offenders = []
    for path in TENANTS.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = (
                [alias.name for alias in node.names]
                if isinstance(node, ast.Import)
                else [node.module or ""]
                if isinstance(node, ast.ImportFrom)
                else []
            )
            offenders += [
                f"{path.relative_to(TENANTS.parent)}: {name}" for name in names if name.split(".")[0] == "trading"
            ]
    assert offenders == []
