"""Property-based run over our own OpenAPI schema (schemathesis + hypothesis), bounded.

Every operation gets generated inputs, sent through the real WSGI stack with
tenant A's token while tenant B has data of every kind. Two properties:
no 5xx, and no response ever contains tenant B's id or B's user's id.
About 12 examples per operation (~25 operations): well under two minutes.
"""

from __future__ import annotations

import json

import pytest
import schemathesis
from django.core.serializers.json import DjangoJSONEncoder
from django.core.signals import request_finished, request_started
from django.db import close_old_connections
from drf_spectacular.generators import SchemaGenerator
from hypothesis import HealthCheck, given, settings

from alphapulse.wsgi import application
from tests.conftest import bearer_client
from tests.factories import FACTORY_BY_TABLE

pytestmark = [pytest.mark.django_db, pytest.mark.slow]
EXAMPLES_PER_OPERATION = 12


@pytest.fixture
def keep_test_connection():
    """As Django's test client does: a WSGI request must not close the connection
    that holds the test's transaction."""
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    yield
    request_started.connect(close_old_connections)
    request_finished.connect(close_old_connections)


def api_schema():
    spec = SchemaGenerator().get_schema(request=None, public=True)
    schema = schemathesis.openapi.from_dict(json.loads(json.dumps(spec, cls=DjangoJSONEncoder)))
    schema.app = application  # call through WSGI, in this test's transaction
    return schema


def test_no_5xx_and_no_foreign_tenant_in_any_response(user_a, user_b, keep_test_connection):
    for factory in FACTORY_BY_TABLE.values():
        factory(user=user_b)
    authorization = bearer_client(user_a)._credentials["HTTP_AUTHORIZATION"]
    forbidden = (str(user_b.tenant_id), str(user_b.pk))
    operations = [result.ok() for result in api_schema().get_all_operations()]
    assert len(operations) >= 25

    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(
            max_examples=EXAMPLES_PER_OPERATION,
            deadline=None,
            derandomize=True,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        def run(case):
            response = case.call(headers={"Authorization": authorization})
            where = f"{case.method} {case.formatted_path} -> {response.status_code}"
            assert response.status_code < 500, f"{where} query={case.query!r} body={case.body!r}"
            assert not any(value in response.text for value in forbidden), f"{where} leaked tenant B"

        run()
