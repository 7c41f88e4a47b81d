"""The catalog machinery of tenancy: everything that writes or reads tenancy in the catalog.

The migration operations that write every RLS, grant and distribution statement (`ddl`,
`retrofit_operations`, `rls_operations`, `privilege_operations`, `distribution_operations`),
the checks that read them back (`checks`, `verification`, `drift`, `privileges`), the server
lookups, backups and shard moves. It stands above the core (it reads the tenant tables from
`tenants.registry`). It runs in migrations, commands and Celery workers, where there is no
request, so it never imports the HTTP edge (tests/tenants/test_import_boundaries.py).
"""
