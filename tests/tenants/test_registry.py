"""Tenant tables are discovered from the models (`tenants` never imports `trading`: test_import_boundaries)."""

from __future__ import annotations

from django.apps import apps

from tenants.models import TenantModel
from tenants.registry import tenant_models, tenant_tables


def test_tenant_tables_are_every_tenant_model_users_first():
    assert set(tenant_tables()) == {
        "users",
        "trades",
        "positions",
        "orders",
        "portfolio_snapshots",
        "risk_metrics",
        "agent_signals",
        "audit_events",
        "idempotency_keys",
        "user_sessions",
        "api_keys",
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
