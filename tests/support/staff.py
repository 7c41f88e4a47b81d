"""Platform staff for the admin tests: rows made on the owner connection, and the admin login."""

from __future__ import annotations

from tenants.models import Tenant, User

OWNER = "owner"
STAFF_PASSWORD = "staff-password-123"


def owner_tenant(slug: str, **fields) -> Tenant:
    return Tenant.objects.using(OWNER).create(slug=slug, name=fields.pop("name", slug.title()), **fields)


def owner_user(tenant: Tenant, username: str, password: str = STAFF_PASSWORD, **fields) -> User:
    user = User(tenant=tenant, username=username, **fields)
    user.set_password(password)
    user.save(using=OWNER)
    return user


def admin_login(client, username: str, password: str = STAFF_PASSWORD):
    return client.post("/admin/login/?next=/admin/", {"username": username, "password": password})
