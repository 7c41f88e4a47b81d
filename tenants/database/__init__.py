"""The database machinery of tenancy: everything that talks SQL about tenants.

The tenant setting (`tenant_setting`), the migration operations that write every RLS,
grant and distribution statement (`ddl`, `retrofit_operations`, `rls_operations`,
`privilege_operations`, `distribution_operations`), the checks that read them back
(`checks`, `verification`, `drift`, `privileges`), the routers and server lookups, backups
and shard moves. It runs in migrations, commands and Celery workers, where there is no
request, so it never imports the HTTP edge (tests/tenants/test_import_boundaries.py).
"""
