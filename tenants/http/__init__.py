"""The request edge of tenancy: JWT login and refresh, the middleware that opens each
request's tenant transaction, throttling, the health endpoint and the OpenAPI scheme.

It may use the core (`tenants.models`, `tenants.context`) and the database machinery; the
reverse never happens (tests/tenants/test_import_boundaries.py).
"""
