"""Drill: three tenants' jobs interleaved on real workers while the API is under load.

gunicorn (2 workers x 2 threads) serves 6 client threads of acme, globex and
initech reading and writing trades; two Celery worker processes (2 pool
children each) take portfolio_snapshot and then risk_metrics jobs sent in an
interleaved, shuffled order. Afterwards every result row is checked, as the
owner, past RLS: it belongs to the tenant of its user, and its values are
what the tenant's own inputs give (recomputed independently in SQL for
snapshots; from the tenant's own snapshot rows for risk metrics).
"""

from __future__ import annotations

import random
import threading
from decimal import Decimal

import pytest

from jobs.risk import daily_values, metrics_from_values
from jobs.tasks import portfolio_snapshot, risk_metrics
from tenants.context import tenant_context
from tests.support.drills import FAST, demo_server_on, report
from tests.support.load import run_load
from tests.support.scratch import connect, gunicorn
from tests.support.workers import session_queue, start_worker  # noqa: F401  (fixture, worker processes)

pytestmark = [pytest.mark.drill, pytest.mark.django_db]

SLUGS = ["acme", "globex", "initech"]
ROUNDS = 8
EXPECTED_POSITIONS_VALUE = """
SELECT s.tenant_id::text, s.user_id::text, s.positions_value, u.tenant_id::text,
       (SELECT round(coalesce(sum(p.quantity * coalesce(
                  (SELECT t.price FROM trades t
                    WHERE t.tenant_id = p.tenant_id AND t.symbol = p.symbol AND t.executed_at <= s.taken_at
                    ORDER BY t.executed_at DESC, t.created_at DESC LIMIT 1),
                  p.average_price)), 0), 2)
          FROM positions p WHERE p.tenant_id = s.tenant_id AND p.user_id = s.user_id)
  FROM portfolio_snapshots s JOIN users u ON u.id = s.user_id
 WHERE s.taken_at = ANY(%s)
"""


def test_interleaved_tenant_jobs_under_api_load_write_only_their_own_tenants_rows(demo_database):
    workers = [start_worker(demo_database, concurrency=2, name=f"drill{i}") for i in range(2)]
    try:
        with connect("owner", demo_database) as owner, gunicorn(demo_database, workers=2, threads=2, **FAST) as base:
            demo = demo_server_on(base, owner)
            load_result: dict = {}
            load = threading.Thread(
                target=lambda: load_result.update(result=run_load(base, demo.clients(6), seconds=25))
            )
            load.start()
            rng = random.Random(14)
            moments = [f"2026-11-{d:02d}T21:30:00+00:00" for d in range(1, ROUNDS + 1)]
            sent = []
            for as_of in moments:
                for slug in rng.sample(SLUGS, len(SLUGS)):
                    with tenant_context(demo.tenant_ids[slug]):
                        sent.append((slug, portfolio_snapshot.delay(as_of)))
            snapshot_outcomes = [(slug, r.get(timeout=120)) for slug, r in sent]
            risk_sent = []
            for slug in rng.sample(SLUGS, len(SLUGS)):
                with tenant_context(demo.tenant_ids[slug]):
                    risk_sent.append((slug, risk_metrics.delay(moments[-1], 30)))
            risk_outcomes = [(slug, r.get(timeout=120)) for slug, r in risk_sent]
            load.join(timeout=120)
            result = load_result["result"]

            rows = owner.execute(EXPECTED_POSITIONS_VALUE, [moments]).fetchall()
            metrics = owner.execute(
                "SELECT m.tenant_id::text, u.tenant_id::text, m.user_id::text, m.metric, m.value "
                "FROM risk_metrics m JOIN users u ON u.id = m.user_id WHERE m.as_of = %s",
                [moments[-1]],
            ).fetchall()
            history = owner.execute(
                "SELECT tenant_id::text, user_id::text, taken_at, total_value FROM portfolio_snapshots "
                "WHERE taken_at > %s::timestamptz - interval '30 days' AND taken_at <= %s",
                [moments[-1], moments[-1]],
            ).fetchall()
            users = dict(owner.execute("SELECT id::text, tenant_id::text FROM users").fetchall())
    finally:
        for worker in workers:
            worker.stop()

    # Every job ran as the tenant that sent it.
    assert all(o["tenant_id"] == demo.tenant_ids[slug] for slug, o in snapshot_outcomes + risk_outcomes)
    # Snapshots: one per user of each tenant per moment, in the user's tenant, valued from its own rows.
    demo_users = {u for u, t in users.items() if t in {demo.tenant_ids[s] for s in SLUGS}}
    assert len(rows) == ROUNDS * len(demo_users)
    wrong_tenant = [r for r in rows if r[0] != r[3]]
    wrong_value = [r for r in rows if r[2] != r[4]]
    assert wrong_tenant == [] and wrong_value == []
    # Risk metrics: each row in its user's tenant, equal to the figure from that tenant's own history.
    by_user: dict[str, list] = {}
    for tenant_id, user_id, taken_at, total in history:
        assert users[user_id] == tenant_id
        by_user.setdefault(user_id, []).append((taken_at, total))
    expected = {u: metrics_from_values(daily_values(h)) for u, h in by_user.items()}
    assert metrics, "the demo history should give every user risk metrics"
    for metric_tenant, user_tenant, user_id, metric, value in metrics:
        assert metric_tenant == user_tenant
        assert value == Decimal(repr(expected[user_id][metric])).quantize(Decimal("0.00000001"))
    # The API load itself: no leak, no 5xx.
    assert result.leaks() == [] and result.server_errors() == []
    report(
        "tenant jobs interleaved under API load",
        jobs=f"{len(sent)} snapshot + {len(risk_sent)} risk jobs on 2 worker processes",
        snapshot_rows_checked=len(rows),
        risk_rows_checked=len(metrics),
        api=result.summary(),
    )
