"""Migration operations, under the name applied migrations import them by.

Three modules hold them, one concern each:
- tenants.catalog.ddl: lock-safe DDL helpers (lock_timeout and retries, printed by
  `sqlmigrate`), LockSafeRunSQL, AddUniqueConstraintConcurrently;
- tenants.catalog.retrofit_operations: the one-off tenancy retrofit (US-002/US-003);
- tenants.catalog.rls_operations: forced RLS, policies and grants, which every future
  tenant table needs.
"""

from tenants.catalog.ddl import AddUniqueConstraintConcurrently, LockSafeRunSQL, TableOperation, run_ddl
from tenants.catalog.retrofit_operations import (
    AddTenantColumn,
    BackfillTenant,
    DropTenantDefault,
    ReplaceUserForeignKey,
    SetTenantNotNull,
    tenant_fk_name,
)
from tenants.catalog.rls_operations import CURRENT_TENANT_SQL, EnableTenantRLS, GrantAppRole

__all__ = [
    "CURRENT_TENANT_SQL",
    "AddTenantColumn",
    "AddUniqueConstraintConcurrently",
    "BackfillTenant",
    "DropTenantDefault",
    "EnableTenantRLS",
    "GrantAppRole",
    "LockSafeRunSQL",
    "ReplaceUserForeignKey",
    "SetTenantNotNull",
    "TableOperation",
    "run_ddl",
    "tenant_fk_name",
]
