"""Rollback scenario 2 keeps least privilege (issue 20 item 11).

`migrate tenants 0007` also unapplied 0010_app_role_least_privilege: during the
rollback the app role could read live staff sessions and write `tenants`.
`rls_policies off` drops only the policies and RLS; the app role's whole
privilege set is the same before, during and after, and `rls_policies on`
puts back exactly what the migrations wrote (`rls_check` passes again).
"""

from __future__ import annotations

import pytest

from tenants.catalog.privileges import actual_privileges
from tests.support.scratch import connect, manage, scratch_database

pytestmark = [pytest.mark.slow, pytest.mark.citus]


def privileges(dbname: str) -> set:
    with connect("owner", dbname) as owner:
        return actual_privileges(owner)


def rls_enabled(dbname: str) -> set[bool]:
    with connect("owner", dbname) as owner:
        rows = owner.execute(
            "SELECT relrowsecurity FROM pg_class WHERE relname IN ('trades', 'users', 'orders') "
            "AND relnamespace = 'public'::regnamespace"
        ).fetchall()
    return {enabled for (enabled,) in rows}


def app_reads_sessions(dbname: str) -> str:
    with connect("default", dbname) as app:
        try:
            app.execute("SELECT count(*) FROM django_session").fetchone()
        except Exception as exc:
            return str(exc)
    return "read"


def test_rolling_back_rls_leaves_the_app_roles_privileges_as_they_are(django_db_blocker):
    with django_db_blocker.unblock(), scratch_database("alphapulse_rollback") as db:
        manage(db, "migrate")
        before = privileges(db)
        manage(db, "rls_policies", "off", "--reason", "test rollback")
        assert rls_enabled(db) == {False}
        assert privileges(db) == before
        assert "permission denied for table django_session" in app_reads_sessions(db)
        assert manage(db, "rls_check", check=False).returncode == 1  # RLS is off: that is the rollback
        manage(db, "rls_policies", "on", "--reason", "test rollback over")
        assert rls_enabled(db) == {True}
        assert privileges(db) == before
        assert manage(db, "rls_check", check=False).returncode == 0
        entries = manage(db, "audit_log", "--action", "rls_policies").stdout
        assert "rls_policies.off" in entries and "rls_policies.on" in entries
