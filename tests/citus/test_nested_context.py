"""A nested tenant_context on the cluster: the nested block and the statement
after it each see exactly one tenant, its own.

The probe (tests/citus/nested_probe.py) runs in a real `manage.py shell` on
a committed, migrated scratch database, so the outer tenant_context is a
top-level transaction as in a request and the nested one a savepoint. Its
two tenants live on different workers, and "sees" is a
`SELECT tenant_id, count(*) FROM trades GROUP BY tenant_id` sent to every
shard, where only RLS picks the rows.

Why it matters: Citus 13.2 forgets a `SET LOCAL` made inside a savepoint when
the savepoint is released, for the worker connections it opens afterwards,
while PostgreSQL keeps it. Without tenants.context's restore-before-release,
the statement after the nested block saw two tenants at once; the second test
keeps that proof (and fails the day Citus fixes it, when the restore could go).
"""

from __future__ import annotations

import json

import pytest

from tests.support.scratch import manage, scratch_database

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def migrated_db():
    with scratch_database("alphapulse_nested") as name:
        manage(name, "migrate")
        yield name


def probe(dbname: str, **env: str) -> dict:
    result = manage(dbname, "shell", "-c", "import tests.citus.nested_probe", **env)
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_nested_block_and_the_statement_after_it_each_see_only_their_tenant(migrated_db):
    seen = probe(migrated_db)
    outer, inner = seen["outer"], seen["inner"]
    for scenario in ("routed_inside", "fan_out_inside"):
        assert seen[scenario] == {"inside": [inner], "after": [outer]}, (scenario, seen)


def test_without_the_restore_before_release_citus_shows_two_tenants_in_one_statement(migrated_db):
    seen = probe(migrated_db, NESTED_PROBE_SKIP_RESTORE="1")
    outer, inner = seen["outer"], seen["inner"]
    # The statement after a nested block that sent one routed statement:
    # the worker connection opened inside kept the inner tenant, the one
    # opened after got the outer one -- one result, two tenants' rows.
    assert sorted(seen["routed_inside"]["after"]) == sorted([outer, inner]), seen
    # Where the nested block had already opened every connection, all agree on
    # the inner tenant, which is PostgreSQL's own rule without the restore.
    assert seen["fan_out_inside"]["after"] == [inner], seen
