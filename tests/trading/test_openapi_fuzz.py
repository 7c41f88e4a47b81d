"""Property-based run over our own OpenAPI schema (schemathesis + hypothesis), bounded.

Every operation gets generated inputs, sent through the real WSGI stack with
tenant A's token while tenant B has data of every kind. Two properties:
no 5xx, and no response ever contains tenant B's id or B's user's id.
Three callers: A's token, B's token, and tokens forged to reach the other
tenant (wrong key, alg none, tampered claim), which must get 401 everywhere.
About 8 examples per operation (~25 operations) per caller: under a minute.
"""

from __future__ import annotations

import json

import jwt
import pytest
import schemathesis
from django.core.serializers.json import DjangoJSONEncoder
from django.core.signals import request_finished, request_started
from django.db import close_old_connections
from drf_spectacular.generators import SchemaGenerator
from hypothesis import HealthCheck, given, settings
from rest_framework_simplejwt.tokens import AccessToken

from alphapulse.wsgi import application
from tests.support.clients import bearer_client
from tests.support.factories import FACTORY_BY_TABLE

pytestmark = [pytest.mark.django_db, pytest.mark.slow]
EXAMPLES_PER_OPERATION = 8
PUBLIC_PATHS = ("/api/auth/", "/api/schema/", "/api/docs/", "/health")


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


def forged_tokens(user_a, user_b) -> dict[str, str]:
    """Tokens a hostile client of tenant A could make up to reach tenant B."""
    genuine = AccessToken.for_user(user_a)
    genuine["tenant_id"] = str(user_a.tenant_id)
    claims = {**genuine.payload, "tenant_id": str(user_b.tenant_id)}
    header, payload, signature = str(genuine).split(".")
    swapped = jwt.encode(claims, "not-the-key-" * 4, algorithm="HS256")
    unsigned = jwt.encode(claims, None, algorithm="none")
    tampered_payload = jwt.utils.base64url_encode(json.dumps(claims).encode()).decode()
    return {
        "wrong key": swapped,
        "alg none": unsigned,
        "tampered claim, original signature": f"{header}.{tampered_payload}.{signature}",
    }


@pytest.mark.parametrize("caller", ["tenant A", "tenant B", "forged"])
def test_no_5xx_and_no_foreign_tenant_in_any_response(caller, user_a, user_b, keep_test_connection):
    """Each tenant's token sees only its own rows, whatever the input; forged
    tokens get 401 on every operation that needs a token."""
    victim, attacker = (user_a, user_b) if caller == "tenant B" else (user_b, user_a)
    for factory in FACTORY_BY_TABLE.values():
        factory(user=victim)
    if caller == "forged":
        tokens = list(forged_tokens(attacker, victim).values())
    else:
        tokens = [bearer_client(attacker)._credentials["HTTP_AUTHORIZATION"].split(" ", 1)[1]]
    forbidden = (str(victim.tenant_id), str(victim.pk))
    operations = [result.ok() for result in api_schema().get_all_operations()]
    assert len(operations) >= 25

    for n, operation in enumerate(operations):
        authorization = f"Bearer {tokens[n % len(tokens)]}"
        public = operation.path.startswith(PUBLIC_PATHS)

        @given(case=operation.as_strategy())
        @settings(
            max_examples=EXAMPLES_PER_OPERATION,
            deadline=None,
            derandomize=True,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        def run(case):
            response = case.call(headers={"Authorization": authorization})  # noqa: B023 (run() is called right here)
            where = f"{case.method} {case.formatted_path} -> {response.status_code}"
            assert response.status_code < 500, f"{where} query={case.query!r} body={case.body!r}"
            assert not any(value in response.text for value in forbidden), f"{where} leaked the other tenant"
            if caller == "forged" and not public:  # noqa: B023
                assert response.status_code == 401, where

        run()
