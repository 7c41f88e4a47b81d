"""The runtime floor of tenancy: the database as the running app sees it.

The tenant setting (`tenant_setting`), the router that sends staff requests to the owner
connection (`routers`) and bulk inserts (`bulk`). It stands under the core (models, context),
so it imports neither the core nor the catalog machinery above it (`tenants.catalog`), nor the
HTTP edge (tests/tenants/test_import_boundaries.py).
"""
