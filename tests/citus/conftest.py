"""Citus-only tests: they run on a Citus coordinator (`make test-citus`) and
are skipped, with the reason, on plain PostgreSQL (`make test`)."""

from __future__ import annotations

import pytest
from django.db import connections

from tenants.catalog.distribution_operations import is_citus_coordinator


@pytest.fixture(scope="session", autouse=True)
def citus_coordinator(django_db_setup, django_db_blocker) -> None:
    with django_db_blocker.unblock():
        on_citus = is_citus_coordinator(connections["owner"])
    if not on_citus:
        pytest.skip("needs a Citus coordinator with workers (make test-citus); this database is plain PostgreSQL")
