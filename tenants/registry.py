"""Which tables hold one tenant's rows: discovered from the models, never listed.

Every concrete `TenantModel` subclass in any installed app is a tenant table,
so a new app's tenant model is checked (`rls_check`, the database check,
`/health`), verified (`tenant_integrity`) and backed up with no change here;
`tenants` never names another app's tables. Applied migrations do not call
this: each freezes its own literal list, because a list that grows must not
change what an old migration did.
"""

from __future__ import annotations

import functools

from django.apps import apps
from django.db import models
from psycopg import sql

from tenants.models import Tenant, TenantModel


def tenant_models() -> list[type[TenantModel]]:
    """Concrete, managed TenantModel subclasses, each after the tenant models it references
    (users before trades): the order to create, load or restore them in."""
    found = [
        model
        for model in apps.get_models()
        if issubclass(model, TenantModel) and model._meta.managed and not model._meta.proxy
    ]
    ordered: list[type[TenantModel]] = []

    def visit(model: type[TenantModel], path: tuple[type[models.Model], ...]) -> None:
        if model in ordered or model in path:  # placed already, or a cycle (self-reference)
            return
        for field in model._meta.concrete_fields:
            target = field.related_model if field.is_relation else None
            if target in found and target is not model:
                visit(target, (*path, model))  # type: ignore[arg-type]
        ordered.append(model)

    for model in found:
        visit(model, ())
    return ordered


@functools.cache
def tenant_tables() -> tuple[str, ...]:
    """The tenant tables' names, in foreign-key order (the app registry is fixed once loaded)."""
    return tuple(model._meta.db_table for model in tenant_models())


@functools.cache
def append_only_tables() -> frozenset[str]:
    """The tenant tables the app role may only INSERT into and SELECT from (TenantModel.append_only)."""
    return frozenset(model._meta.db_table for model in tenant_models() if model.append_only)


@functools.cache
def never_deleted_tables() -> frozenset[str]:
    """The tenant tables the app role may SELECT, INSERT and UPDATE but not DELETE (TenantModel.never_deleted)."""
    return frozenset(model._meta.db_table for model in tenant_models() if model.never_deleted)


def tenant_key(table: str) -> str:
    """The column that says which tenant a row of `table` is: `id` in the tenants table itself,
    `tenant_id` in every tenant table. The one answer to "the rows of tenant T in table X"."""
    return "id" if table == Tenant._meta.db_table else "tenant_id"


def tenant_rows_count_sql(table: str) -> sql.Composed:
    """SELECT count(*) of one tenant's rows (the tenant's id as the one parameter) in `table`."""
    return sql.SQL("SELECT count(*) FROM {} WHERE {} = %s").format(
        sql.Identifier(table), sql.Identifier(tenant_key(table))
    )


def tenant_rows(model: type[models.Model], tenant_id: object, *, using: str) -> models.QuerySet:
    """One tenant's rows of `model` (Tenant: its own row), unscoped: for platform work on `using`."""
    key = tenant_key(model._meta.db_table)
    return model._base_manager.using(using).filter(**{"pk" if key == "id" else "tenant_id": tenant_id})
