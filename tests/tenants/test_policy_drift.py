"""Policy drift (tenants.catalog.drift): hand edits to the live catalog are named, and a
catalog the migrations wrote reports nothing. The alterations run on the owner
connection inside the test's transaction (rolled back afterwards); the
end-to-end test commits them in a scratch database and runs `rls_check`."""

from __future__ import annotations

import pytest
from django.core.checks import run_checks
from django.db import connections

from tenants.catalog.drift import _extra_checks, drift_findings, policy_drift, register_drift_check
from tenants.catalog.verification import Finding
from tests.support.scratch import connect, manage, scratch_database

pytestmark = [
    pytest.mark.django_db(databases=["default", "owner"]),
    pytest.mark.citus,
]  # also on the cluster (make test-citus)


def owner_sql(statement: str) -> None:
    with connections["owner"].cursor() as cursor:
        cursor.execute(statement)


def drifted() -> dict[str, list[str]]:
    return {table: diffs for table, diffs in policy_drift().items() if diffs}


def test_the_migrated_catalog_has_no_drift():
    assert drifted() == {}
    assert all(f.ok for f in drift_findings())


def test_an_altered_policy_expression_is_named():
    owner_sql("ALTER POLICY tenant_isolation_policy ON trades USING (true)")
    found = drifted()
    assert list(found) == ["trades"]
    assert any("policy tenant_isolation_policy USING 'true'" in d for d in found["trades"]), found


def test_an_extra_permissive_policy_is_named():
    owner_sql("CREATE POLICY sneaky ON orders FOR SELECT TO PUBLIC USING (true)")
    found = drifted()
    assert list(found) == ["orders"]
    assert found["orders"] == ["policy sneaky is not in the migrations: PERMISSIVE FOR SELECT TO public USING true"]


def test_dropping_force_is_named():
    owner_sql("ALTER TABLE users NO FORCE ROW LEVEL SECURITY")
    assert drifted() == {"users": ["FORCE ROW LEVEL SECURITY is off, the migrations say on"]}


def test_a_dropped_policy_and_changed_roles_are_named():
    owner_sql("DROP POLICY tenant_insert_policy ON positions")
    owner_sql("ALTER POLICY tenant_bypass_policy ON positions TO alphapulse_app")
    found = drifted()["positions"]
    assert any(d.startswith("policy tenant_insert_policy is missing") for d in found), found
    assert any("policy tenant_bypass_policy roles ('alphapulse_app',)" in d for d in found), found


def test_the_probe_leaves_nothing_behind():
    policy_drift()
    with connections["owner"].cursor() as cursor:
        cursor.execute("SELECT count(*) FROM pg_class WHERE relname LIKE 'drift_probe_%'")
        assert cursor.fetchone()[0] == 0


def test_a_registered_drift_check_is_reported():
    @register_drift_check
    def always_fails() -> list[Finding]:
        return [Finding("alphapulse_app", "privileges match the migrations", False, "extra TRUNCATE on trades")]

    try:
        assert any(not f.ok and f.detail == "extra TRUNCATE on trades" for f in drift_findings())
    finally:
        _extra_checks.remove(always_fails)


def test_the_deploy_check_refuses_a_drifted_catalog():
    owner_sql("ALTER POLICY tenant_isolation_policy ON trades USING (true)")
    errors = run_checks(databases=["default"], include_deployment_checks=True)
    assert any(e.id == "tenants.E011" and "trades" in e.msg for e in errors), errors
    # Not a plain database check: migrate (which runs those) is never blocked by it.
    assert not [e for e in run_checks(databases=["default"]) if e.id == "tenants.E011"]


def test_rls_check_exits_1_and_names_each_alteration():
    with scratch_database("alphapulse_drift") as db:
        manage(db, "migrate")
        assert manage(db, "rls_check", check=False).returncode == 0
        with connect("owner", db) as conn:
            conn.execute("ALTER POLICY tenant_isolation_policy ON trades USING (true) WITH CHECK (true)")
            conn.execute("CREATE POLICY sneaky ON orders USING (true)")
            conn.execute("ALTER TABLE users NO FORCE ROW LEVEL SECURITY")
        result = manage(db, "rls_check", check=False)
        assert result.returncode == 1
        for expected in (
            "trades               policy drift  (policy tenant_isolation_policy USING 'true'",
            "orders               policy drift  (policy sneaky is not in the migrations",
            "users                policy drift  (FORCE ROW LEVEL SECURITY is off",
        ):
            assert expected in result.stdout, result.stdout
