"""Another tenant's values never show in the statistics views.

All tenants share the app role, and a role sees the text of its own sessions'
statements in pg_stat_activity and pg_stat_statements. The app role can no
longer read either view (tests/tenants/test_privileges.py); this is the layer
beneath that: even a reader that sees every session (the owner, which holds
pg_read_all_stats) finds no tenant's values there. With Django's default
client-side binding the values were part of that text (tenant B's INSERT,
symbol included, showed to a session of tenant A). The app connection binds
server-side (OPTIONS server_side_binding): the text holds $1, $2 ... and the
values travel apart. `SET LOCAL` cannot take parameters and names the tenant;
pg_stat_statements does not record it for the app role (track_utility off,
scripts/db.sh), and in pg_stat_activity it is followed in the same round trip
by the lookups.
"""

from __future__ import annotations

import uuid

import pytest
from django.db import connection, connections

from tenants.context import tenant_context
from trading.models import Trade

pytestmark = pytest.mark.django_db(databases=["default", "owner"])


@pytest.fixture
def other_session():
    """A session that reads every role's statements (the owner, pg_read_all_stats)."""
    session = connections.create_connection("owner")
    session.settings_dict["NAME"] = connection.settings_dict["NAME"]
    yield session
    session.close()


def test_another_sessions_statements_show_placeholders_not_values(user_a, user_b, other_session):
    secret = f"LEAK{uuid.uuid4().hex[:10].upper()}"
    with tenant_context(user_b.tenant):
        Trade.objects.create(user=user_b, symbol=secret, side="buy", quantity="7.25", price="99.5")
        b_pid = connection.connection.info.backend_pid
        # B's transaction is still open: its last statement is the INSERT.
        with other_session.cursor() as cursor:
            cursor.execute("SELECT state, query FROM pg_stat_activity WHERE pid = %s", [b_pid])
            state, activity = cursor.fetchone()
            cursor.execute("SELECT query FROM pg_stat_statements")
            statements = [row[0] for row in cursor.fetchall()]

    assert state == "idle in transaction"
    assert activity.startswith('INSERT INTO "trades"'), activity
    assert "$1" in activity
    for value in (secret, "7.25", "99.5", str(user_b.tenant_id), str(user_b.pk)):
        assert value not in activity, f"{value} shows in another session's pg_stat_activity: {activity}"
    assert any('INSERT INTO "trades"' in s for s in statements), "pg_stat_statements recorded nothing"
    for value in (secret, str(user_b.tenant_id), str(user_a.tenant_id)):
        leaked = [s for s in statements if value in s]
        assert not leaked, f"{value} shows in pg_stat_statements: {leaked[:3]}"
