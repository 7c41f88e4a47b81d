"""Sends admin (staff) requests to the owner connection, everything else to the app role.

The owner role holds rls_bypass_role, so the admin can see every tenant. Only
requests under /admin/ (marked by tenants.http.middleware.StaffDatabaseMiddleware)
and code that names `using("owner")` reach it; API requests never do.
"""

from contextvars import ContextVar

from django.db import DEFAULT_DB_ALIAS

from tenants.constants import OWNER_DATABASE

_staff_request: ContextVar[bool] = ContextVar("staff_request", default=False)


class StaffDatabaseRouter:
    def db_for_read(self, model, **hints):
        return OWNER_DATABASE if _staff_request.get() else None

    def db_for_write(self, model, **hints):
        return OWNER_DATABASE if _staff_request.get() else None

    def allow_relation(self, obj1, obj2, **hints):
        return True

    def allow_migrate(self, db, app_label, model_name=None, **hints):
        # The app role never migrates and may not even read django_migrations
        # (tenants.catalog.privileges): Django's migration-history checks (makemigrations)
        # then skip its connection instead of failing on it.
        return db != DEFAULT_DB_ALIAS
