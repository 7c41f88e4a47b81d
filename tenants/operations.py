"""Migration operations, under the name applied migrations import them by.

Three modules hold them, one concern each:
- tenants.ddl: lock-safe DDL helpers (lock_timeout and retries, printed by
  `sqlmigrate`), LockSafeRunSQL, AddUniqueConstraintConcurrently;
- tenants.retrofit_operations: the one-off tenancy retrofit (US-002/US-003);
- tenants.rls_operations: forced RLS, policies and grants, which every future
  tenant table needs.
"""

from tenants.ddl import AddUniqueConstraintConcurrently, LockSafeRunSQL, TableOperation, run_ddl
from tenants.retrofit_operations import (
    AddTenantColumn,
    BackfillTenant,
    DropTenantDefault,
    ReplaceUserForeignKey,
    SetTenantNotNull,
    tenant_fk_name,
)
from tenants.rls_operations import CURRENT_TENANT_SQL, EnableTenantRLS, GrantAppRole

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
