"""Which tables hold one tenant's rows, discovered from the models.

Every concrete `TenantModel` subclass is a tenant table. Export, import,
offboarding and drift detection read this list, so a new tenant model is
covered the moment it exists; nothing keeps a hand-written list in step.
(Applied migrations freeze their own literal copies and never read this.)

Order: parents before children along foreign keys between tenant tables
(`users` first), which is the order rows can be inserted in; delete in reverse.
"""

from __future__ import annotations

from django.apps import apps
from django.db import models

from tenants.models import TenantModel


def tenant_models() -> list[type[models.Model]]:
    """Concrete TenantModel subclasses, parents first (insert order)."""
    found = [m for m in apps.get_models() if issubclass(m, TenantModel) and not m._meta.abstract and not m._meta.proxy]
    found.sort(key=lambda m: m._meta.db_table)  # deterministic among equals
    ordered: list[type[models.Model]] = []
    placed: set[type[models.Model]] = set()

    def place(model: type[models.Model], trail: tuple[type[models.Model], ...] = ()) -> None:
        if model in placed:
            return
        if model in trail:
            raise RuntimeError(f"Foreign-key cycle among tenant tables: {[m._meta.db_table for m in trail]}")
        for field in model._meta.concrete_fields:
            target = getattr(field, "related_model", None)
            if field.is_relation and target in found and target is not model:
                place(target, (*trail, model))
        placed.add(model)
        ordered.append(model)

    for model in found:
        place(model)
    return ordered


def tenant_table_names() -> list[str]:
    return [m._meta.db_table for m in tenant_models()]
