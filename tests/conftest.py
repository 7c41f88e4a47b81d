"""Test harness: the owner builds the test database, the app role runs the tests.

- `django_db_setup` creates and migrates the test database through the
  `owner` alias (alphapulse_owner, CREATEDB) with the real migrations (RLS
  included: never --no-migrations), then points `default` (alphapulse_app)
  at it. The app role cannot create databases or tables, as in production.
- On Citus (`make test-citus`, TEST_ON_CITUS=1) Django cannot create the
  test database (it exists on every node, with the citus extension and the
  nodes registered in it): scripts/citus.sh builds it, the owner migrates it
  here, and the run stops unless the tables really are distributed.
- `assert_app_role` (session, autouse) fails the whole run if `default` is a
  superuser, has BYPASSRLS, owns a tenant table or holds rls_bypass_role: a
  suite running past RLS would pass while proving nothing.
- Two tenants (acme, globex), a user each, and bearer-token API clients.
  Data goes in through the app role inside tenant_context(), in the test's
  transaction, so every test starts from the same empty database.
"""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
from django.core.management import call_command
from django.db import connections
from rest_framework.test import APIClient

from tenants.catalog.checks import runtime_role_problems
from tenants.constants import APP_ROLE
from tenants.context import tenant_context
from tests.support import scratch
from tests.support.citus_layout import layout_problems
from tests.support.clients import PASSWORD, bearer_client
from tests.support.factories import TenantFactory, UserFactory, delete_committed_tenants
from tests.support.scratch import forget_cache_prefix


@pytest.fixture(scope="session")
def django_db_setup(django_test_environment, django_db_blocker):
    if scratch.ON_CITUS:
        yield from _citus_test_database(django_db_blocker)
        return
    owner = connections["owner"]
    app = connections["default"]
    original_name = owner.settings_dict["NAME"]
    with django_db_blocker.unblock():
        test_name = owner.creation.create_test_db(verbosity=0, autoclobber=True, serialize=False)
        app.close()
        app.settings_dict["NAME"] = test_name
    yield
    with django_db_blocker.unblock():
        for alias in connections:
            connections[alias].close()
        owner.creation.destroy_test_db(original_name, verbosity=0)
        app.settings_dict["NAME"] = original_name


def _citus_test_database(django_db_blocker):
    owner = connections["owner"]
    original_name = owner.settings_dict["NAME"]
    test_name = owner.settings_dict["TEST"]["NAME"]
    with django_db_blocker.unblock():
        scratch.create_database(test_name)  # every node: database, citus, nodes registered
        for alias in connections:
            connections[alias].close()
            connections[alias].settings_dict["NAME"] = test_name
        call_command("migrate", database="owner", verbosity=0, interactive=False)
        with owner.cursor() as cursor:
            problems = layout_problems(cursor)
        if problems:
            owner.close()
            scratch.drop_database(test_name)
            pytest.exit(f"the Citus test database is not distributed: {problems}", returncode=1)
    yield
    with django_db_blocker.unblock():
        for alias in connections:
            connections[alias].close()
            connections[alias].settings_dict["NAME"] = original_name
        scratch.drop_database(test_name)


@pytest.fixture(scope="session", autouse=True)
def assert_app_role(django_db_setup, django_db_blocker):
    with django_db_blocker.unblock():
        with connections["default"].cursor() as cursor:
            cursor.execute("SELECT current_user")
            (role,) = cursor.fetchone()
        problems = runtime_role_problems("default")
    assert role == APP_ROLE, f"tests must query as {APP_ROLE}, not {role}"
    assert not problems, f"the test connection can get past RLS: {problems}"


# make test-citus runs every test marked `citus` (scripts/test-citus.sh). Each
# test of these directories has the marker, so a new API write or job test runs
# on the cluster by default; a module elsewhere opts in with pytestmark, and one
# of them opts out with `single_node` (a reason in its docstring).
CITUS_DIRECTORIES = ("trading", "jobs", "citus")
TESTS_ROOT = Path(__file__).resolve().parent


def pytest_collection_modifyitems(config, items):
    for item in items:
        parts = Path(str(item.fspath)).resolve().relative_to(TESTS_ROOT).parts
        if parts and parts[0] in CITUS_DIRECTORIES and not item.get_closest_marker("single_node"):
            item.add_marker(pytest.mark.citus)


@pytest.fixture(autouse=True)
def no_tenants_of_earlier_tests(request):
    """TenantFactory commits tenants as the owner (the app role may only read them);
    the previous test's are removed before this one starts."""
    if request.node.get_closest_marker("django_db") or {"db", "tenant_a", "tenant_b"} & set(request.fixturenames):
        with django_db_blocker_unblocked(request):
            delete_committed_tenants()
    yield


def django_db_blocker_unblocked(request):
    return request.getfixturevalue("django_db_blocker").unblock()


@pytest.fixture(autouse=True)
def fresh_rate_limits(settings):
    """The cache (rate-limit counters included) is the shared Redis: each test
    gets a key prefix of its own, so nothing carries over between tests or
    reaches another suite on the same Redis, and no FLUSHDB is ever needed.
    Changing CACHES makes Django open the cache anew (setting_changed)."""
    prefix = f"test-{uuid.uuid4().hex[:12]}"
    settings.CACHES = {**settings.CACHES, "default": {**settings.CACHES["default"], "KEY_PREFIX": prefix}}
    yield
    forget_cache_prefix(prefix)  # on the real Redis, even if a test pointed the cache away


@pytest.fixture(autouse=True)
def fast_password_hasher(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def tenant_a(db):
    return TenantFactory(slug="acme", name="Acme Capital")


@pytest.fixture
def tenant_b(db):
    return TenantFactory(slug="globex", name="Globex Trading")


@pytest.fixture
def user_a(tenant_a):
    return UserFactory(tenant=tenant_a, username="alice", password=PASSWORD)


@pytest.fixture
def user_b(tenant_b):
    return UserFactory(tenant=tenant_b, username="bob", password=PASSWORD)


@pytest.fixture
def client_a(user_a) -> APIClient:
    return bearer_client(user_a)


@pytest.fixture
def client_b(user_b) -> APIClient:
    return bearer_client(user_b)


@pytest.fixture
def as_tenant():
    """`with as_tenant(tenant): ...` — tenant_context, for readability in tests."""
    return tenant_context
