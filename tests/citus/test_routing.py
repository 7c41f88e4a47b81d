"""Every request routes: each statement the app role sends for list, detail,
create, update and delete of every resource (and login, refresh, the user
lookups of the middleware) runs on one shard of one worker.

Through the real viewsets with Django's test client: the SQL each request
ran is captured, then EXPLAINed on the coordinator as the app role inside
the tenant's context, and must be a single-task plan (`Task Count: 1`). The
requests themselves run with `citus.multi_task_query_log_level = error`, so a
statement that would have fanned out to every shard fails the request.
"""

from __future__ import annotations

import re

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from psycopg import sql

from tenants.context import tenant_context
from tests.support.clients import PASSWORD
from tests.support.factories import FACTORY_BY_TABLE
from tests.trading.test_api_isolation import ROUTES, VALID_BODY

pytestmark = pytest.mark.django_db

# Transaction control and the tenant setting itself: not statements on a table.
NOT_A_QUERY = re.compile(r"^\s*(SAVEPOINT|RELEASE|ROLLBACK|BEGIN|COMMIT|SET)\b", re.IGNORECASE)
UPDATES = {
    "trades": {"symbol": "MSFT"},
    "orders": {"quantity": "4"},
    "positions": {"quantity": "60"},
    "portfolio_snapshots": {"cash": "300.00"},
    "risk_metrics": {"value": "1.5"},
    "agent_signals": {"confidence": "0.6"},
}


@pytest.fixture
def fan_out_is_an_error(db):
    """Any statement Citus would send to more than one shard raises, in this test's transaction."""
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL citus.multi_task_query_log_level TO 'error'")


def statements_of(request, responses: list | None = None) -> list[str]:
    """The statements on tables that `request()` ran (it must succeed)."""
    with CaptureQueriesContext(connection) as captured:
        response = request()
    assert response.status_code < 400, (response.status_code, response.content[:300])
    if responses is not None:
        responses.append(response)
    statements = [q["sql"] for q in captured.captured_queries if not NOT_A_QUERY.match(q["sql"])]
    assert statements, "the request ran no statement at all"
    return statements


SHARD = re.compile(r"\b[a-z_]+_\d{5,}\b")  # a shard's name: the table's and its shard id


def single_node(plan: str) -> bool:
    """One task on one shard; or (a data-modifying CTE, which Citus plans as subplans) every
    subplan a single task, all on one worker's shards, joined on the coordinator from their
    intermediate results (docs/design.md, "Positions follow trades")."""
    tasks = re.findall(r"Task Count: (\d+)", plan)
    if not tasks or set(tasks) != {"1"}:
        return False
    blocks = re.split(r"Node: ", plan)[1:]
    nodes = {block.split()[1] for block in blocks if SHARD.search(block.split("\n", 1)[-1])}
    return len(nodes) <= 1


def single_task_plans(statements: list[str], tenant) -> None:
    """EXPLAIN each statement as the app role in the tenant's context; each must run as one task."""
    problems = []
    with tenant_context(tenant), connection.cursor() as cursor:
        for statement in statements:
            # The app's own statement, as Django sent it (values already quoted by psycopg).
            cursor.execute(sql.SQL("EXPLAIN {}").format(sql.SQL(statement)).as_string(cursor.connection))  # type: ignore[arg-type]
            plan = "\n".join(row[0] for row in cursor.fetchall())
            if not single_node(plan):
                problems.append(f"{statement}\n{plan}")
    assert not problems, "statements that do not route to one shard:\n\n" + "\n\n".join(problems)


# Positions are read-only through the API (they follow trades): nobody writes them there.
@pytest.mark.parametrize("table", [table for table in ROUTES if table != "positions"])
def test_list_detail_create_update_delete_each_run_on_one_shard(table, client_a, user_a, fan_out_is_an_error):
    route = ROUTES[table]
    created: list = []
    create = statements_of(lambda: client_a.post(route, VALID_BODY[table], format="json"), created)
    row_id = created[0].json()["id"]
    calls = {
        "create": create,
        "list": statements_of(lambda: client_a.get(route)),
        "detail": statements_of(lambda: client_a.get(f"{route}{row_id}/")),
        "update": statements_of(lambda: client_a.patch(f"{route}{row_id}/", UPDATES[table], format="json")),
        "delete": statements_of(lambda: client_a.delete(f"{route}{row_id}/")),
    }
    # A trade's INSERT rides in a data-modifying CTE with its position's upsert (trading.positions).
    kinds = {
        action: {"INSERT" if s.startswith("WITH t AS (INSERT") else s.split()[0].upper() for s in statements}
        for action, statements in calls.items()
    }
    # The write itself is among what was checked, not only the middleware's lookups.
    assert "INSERT" in kinds["create"] and "UPDATE" in kinds["update"] and "DELETE" in kinds["delete"], kinds
    for statements in calls.values():
        single_task_plans(statements, user_a.tenant)


def test_users_list_detail_and_me_run_on_one_shard(client_a, user_a, fan_out_is_an_error):
    statements = [
        *statements_of(lambda: client_a.get("/api/users/")),
        *statements_of(lambda: client_a.get(f"/api/users/{user_a.pk}/")),
        *statements_of(lambda: client_a.get("/api/users/me/")),
    ]
    single_task_plans(statements, user_a.tenant)


def test_login_and_refresh_run_on_one_shard(client, user_a, fan_out_is_an_error):
    login = {"tenant": user_a.tenant.slug, "username": user_a.username, "password": PASSWORD}
    with CaptureQueriesContext(connection) as captured:
        tokens = client.post("/api/auth/token/", login, content_type="application/json")
    assert tokens.status_code == 200, tokens.content
    refresh = statements_of(
        lambda: client.post(
            "/api/auth/token/refresh/", {"refresh": tokens.json()["refresh"]}, content_type="application/json"
        )
    )
    logins = [q["sql"] for q in captured.captured_queries if not NOT_A_QUERY.match(q["sql"])]
    single_task_plans([*logins, *refresh], user_a.tenant)


def test_order_status_change_locks_one_row_on_one_shard(client_a, user_a, fan_out_is_an_error):
    """PATCH of an order runs SELECT ... FOR UPDATE (the status rules); Citus
    refuses FOR UPDATE without the tenant filter, so this also proves it has one."""
    order = FACTORY_BY_TABLE["orders"](user=user_a)
    statements = statements_of(
        lambda: client_a.patch(f"/api/orders/{order.pk}/", {"status": "cancelled"}, format="json")
    )
    assert any("FOR UPDATE" in s for s in statements), statements
    single_task_plans(statements, user_a.tenant)
