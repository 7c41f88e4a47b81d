"""Roles on users (CONTRACT section 9): the migration makes every existing user an
admin, a new user is a trader unless told otherwise, the database refuses any
other role, and the migration goes back and forth with no user lost.

The migration runs on a scratch database (real `manage.py migrate`), so
rolling it back never touches the database the other tests share.
"""

from __future__ import annotations

import uuid

import pytest
from django.db import DatabaseError, connection, transaction

from tenants.models import User
from tenants.roles import Role
from tests.support.factories import UserFactory
from tests.support.scratch import connect, manage, scratch_database

pytestmark = pytest.mark.django_db

INSERT_USER = (
    "INSERT INTO users (id, tenant_id, password, username, email, is_active, is_staff, is_superuser, created_at) "
    "VALUES (%s, '00000000-0000-0000-0000-000000000001', '', %s, '', true, false, false, now())"
)


def test_role_values_are_admin_trader_viewer():
    assert Role.values == ["admin", "trader", "viewer"]


def test_new_user_is_a_trader_unless_told_otherwise(tenant_a, as_tenant):
    with as_tenant(tenant_a):
        user = User.objects.create_user("newbie", "correct-horse-battery-staple")
        user.refresh_from_db()
    assert user.role == Role.TRADER


def test_database_refuses_an_unknown_role(tenant_a, as_tenant):
    user = UserFactory(tenant=tenant_a, username="carol", role=Role.VIEWER)
    with as_tenant(tenant_a), pytest.raises(DatabaseError, match="users_role_valid"):
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute("UPDATE users SET role = 'root' WHERE tenant_id = %s AND id = %s", [tenant_a.pk, user.pk])


def test_users_api_shows_the_role(client_a, user_a):
    assert client_a.get("/api/users/me/").json()["role"] == "admin"
    assert {u["role"] for u in client_a.get("/api/users/").json()["results"]} == {"admin"}


def test_migration_makes_existing_users_admins_and_reverses(django_db_blocker):
    with django_db_blocker.unblock(), scratch_database("alphapulse_roles") as name:
        manage(name, "migrate", "tenants", "0012_citus_distribute")
        with connect("owner", name) as owner:
            owner.execute(INSERT_USER, [uuid.uuid4(), "before-roles"])
        manage(name, "migrate", "tenants", "0013_i22_user_roles")
        with connect("owner", name) as owner:
            owner.execute(INSERT_USER, [uuid.uuid4(), "after-roles"])
            roles = dict(owner.execute("SELECT username, role FROM users").fetchall())
        assert roles == {"before-roles": "admin", "after-roles": "trader"}
        manage(name, "migrate", "tenants", "0012_citus_distribute")
        with connect("owner", name) as owner:
            columns = {
                r[0]
                for r in owner.execute(
                    "SELECT column_name FROM information_schema.columns WHERE table_name = 'users'"
                ).fetchall()
            }
            assert "role" not in columns
            assert owner.execute("SELECT count(*) FROM users").fetchone()[0] == 2
        manage(name, "migrate")
