"""A real Celery worker process, real Redis, a committed scratch database.

The worker connects as the app role (DATABASE_URL) and runs one pool child
(--concurrency=1), so consecutive tasks of different tenants share one
process and one PostgreSQL session: the place where a tenant would leak.
"""

from __future__ import annotations

import uuid

import pytest
from celery.signals import before_task_publish

from alphapulse.celery import app as celery_app
from jobs.tasks import fan_out, portfolio_snapshot, risk_metrics
from jobs.tenant_tasks import SENT_AT_HEADER, SIGNATURE_HEADER, TENANT_HEADER, message_signature
from tenants.constants import APP_ROLE
from tenants.context import NoTenantContext, tenant_context
from tests.jobs.probes import probe_platform, probe_tenant

pytestmark = [pytest.mark.slow, pytest.mark.django_db]

WAIT = 60


def test_a_task_runs_as_the_tenant_that_sent_it_on_the_app_role_under_rls(jobs_db, worker):
    acme = jobs_db.tenant_ids["acme"]
    with tenant_context(acme):
        seen = probe_tenant.delay().get(timeout=WAIT)
    assert seen["context"] == acme
    assert seen["setting"] == acme  # SET LOCAL in the worker's transaction
    assert seen["role"] == APP_ROLE
    assert seen["visible_tenants"] == [acme]  # RLS: even the unscoped manager sees acme only


def test_consecutive_tasks_of_different_tenants_on_one_process_never_carry_a_tenant_over(jobs_db, worker):
    order = ["acme", "globex", "initech", "globex", "acme", "initech"] * 3
    results = []
    for slug in order:
        with tenant_context(jobs_db.tenant_ids[slug]):
            results.append((slug, probe_tenant.delay()))
        # A platform task between them: it must see no tenant and no rows.
        results.append((None, probe_platform.delay()))
    seen = [(slug, result.get(timeout=WAIT)) for slug, result in results]
    assert len({s["pid"] for _, s in seen}) == 1, "expected one pool process for every task"
    for slug, s in seen:
        expected = None if slug is None else jobs_db.tenant_ids[slug]
        assert s["context"] == expected
        assert s["setting"] == expected
        assert s["visible_tenants"] == ([] if slug is None else [expected])


def test_sending_a_tenant_task_outside_any_tenant_context_fails_closed(jobs_db, worker):
    with pytest.raises(NoTenantContext):
        probe_tenant.delay()
    with pytest.raises(NoTenantContext):
        portfolio_snapshot.delay("2026-12-01T00:00:00+00:00")


def test_a_message_without_the_tenant_header_fails_in_the_worker(jobs_db, worker):
    """Sent past TenantTask (send_task): no header, no tenant, the task fails and touches nothing."""
    result = celery_app.send_task("tests.probe_tenant")
    # Results cross the wire as JSON: the worker's NoTenantContext comes back by its message.
    with pytest.raises(Exception, match="No tenant context"):
        result.get(timeout=WAIT)


def test_a_forged_or_edited_tenant_header_is_refused(jobs_db, worker):
    acme, globex = jobs_db.tenant_ids["acme"], jobs_db.tenant_ids["globex"]
    forged = celery_app.send_task("tests.probe_tenant", headers={TENANT_HEADER: globex})
    task_id = str(uuid.uuid4())
    sent_at = "2026-12-01T00:00:00+00:00"
    edited = celery_app.send_task(
        "tests.probe_tenant",
        task_id=task_id,
        # acme's valid signature, with globex put in the tenant header
        headers={
            TENANT_HEADER: globex,
            SENT_AT_HEADER: sent_at,
            SIGNATURE_HEADER: message_signature("tests.probe_tenant", task_id, 0, acme, [], {}, sent_at),
        },
    )
    for result in (forged, edited):
        with pytest.raises(Exception, match="Refusing the task message: its signature does not match"):
            result.get(timeout=WAIT)


# -- issue 20 item 5: the whole message is signed, consumed once --------------------


def genuine_message(send) -> dict:
    """The headers a genuine send put on the wire (captured as Celery publishes it)."""
    captured: dict = {}

    def capture(sender=None, headers=None, **kwargs):
        captured.update(headers or {})

    before_task_publish.connect(capture, weak=False)
    try:
        result = send()
    finally:
        before_task_publish.disconnect(capture)
    return {
        "result": result,
        "id": captured["id"],
        "headers": {k: captured[k] for k in captured if k.startswith("alphapulse_")},
    }


def test_a_genuine_message_resent_with_other_arguments_or_onto_another_task_is_refused(jobs_db, worker):
    acme = jobs_db.tenant_ids["acme"]
    with tenant_context(acme):
        genuine = genuine_message(lambda: portfolio_snapshot.delay("2026-11-20T06:00:00+00:00"))
    genuine["result"].get(timeout=WAIT)
    # The same id and headers each time; the previous result is forgotten first, so each
    # get() waits for this message's own outcome.
    for name, args, kwargs in (
        ("jobs.portfolio_snapshot", ["2026-01-01T06:00:00+00:00"], {}),
        ("jobs.risk_metrics", ["2026-11-20T06:00:00+00:00"], {"window_days": 3650}),
    ):
        genuine["result"].forget()
        tampered = celery_app.send_task(
            name, args=args, kwargs=kwargs, task_id=genuine["id"], headers=genuine["headers"]
        )
        with pytest.raises(Exception, match="Refusing the task message: its signature does not match"):
            tampered.get(timeout=WAIT)
    with jobs_db.owner() as owner:
        made = owner.execute("SELECT count(*) FROM portfolio_snapshots WHERE taken_at = '2026-01-01T06:00:00+00:00'")
        assert made.fetchone()[0] == 0
    assert risk_metrics.name == "jobs.risk_metrics"


def test_a_consumed_message_sent_again_is_refused(jobs_db, worker):
    with tenant_context(jobs_db.tenant_ids["globex"]):
        genuine = genuine_message(lambda: probe_tenant.delay())
    assert genuine["result"].get(timeout=WAIT)["context"] == jobs_db.tenant_ids["globex"]
    replay_id = genuine["id"]
    genuine["result"].forget()
    replay = celery_app.send_task("tests.probe_tenant", task_id=replay_id, headers=genuine["headers"])
    with pytest.raises(Exception, match=f"message {replay_id} \\(retry 0\\) already ran"):
        replay.get(timeout=WAIT)


def test_an_unsigned_fan_out_is_refused(jobs_db, worker):
    """A hand-pushed jobs.fan_out made every tenant write snapshots at a chosen date."""
    pushed = celery_app.send_task("jobs.fan_out", args=["portfolio_snapshot", "2020-01-01T00:00:00+00:00"])
    with pytest.raises(Exception, match="Refusing the task message"):
        pushed.get(timeout=WAIT)
    with jobs_db.owner() as owner:
        made = owner.execute("SELECT count(*) FROM portfolio_snapshots WHERE taken_at = '2020-01-01T00:00:00+00:00'")
        assert made.fetchone()[0] == 0


def test_a_tenant_in_the_arguments_is_no_tenant_at_all(jobs_db, worker):
    """Only the signed header names the tenant: a tenant_id argument is refused before the task runs."""
    with pytest.raises(Exception, match="No tenant context"):
        celery_app.send_task("tests.probe_tenant", kwargs={"tenant_id": jobs_db.tenant_ids["acme"]}).get(timeout=WAIT)


def test_a_suspended_tenants_task_is_skipped_with_a_logged_reason(jobs_db, worker):
    initech = jobs_db.tenant_ids["initech"]
    jobs_db.set_status("initech", "suspended")
    try:
        with tenant_context(initech):
            outcome = portfolio_snapshot.delay("2026-11-30T10:00:00+00:00").get(timeout=WAIT)
    finally:
        jobs_db.set_status("initech", "active")
    assert outcome == {"skipped": f"tenant {initech} is suspended", "tenant_id": initech}
    with jobs_db.owner() as owner:
        made = owner.execute("SELECT count(*) FROM portfolio_snapshots WHERE taken_at = '2026-11-30T10:00:00+00:00'")
        assert made.fetchone()[0] == 0
    assert f"tenant {initech} is suspended" in worker.log()


def snapshots_at(jobs_db, as_of: str) -> list[tuple[str, str, int]]:
    with jobs_db.owner() as owner:
        return owner.execute(
            "SELECT tenant_id::text, user_id::text, count(*)::int FROM portfolio_snapshots WHERE taken_at = %s "
            "GROUP BY 1, 2 ORDER BY 1, 2",
            [as_of],
        ).fetchall()


def test_the_beat_fan_out_sends_one_job_per_active_tenant_and_skips_suspended_ones(jobs_db, worker):
    as_of = "2026-11-29T06:00:00+00:00"
    jobs_db.set_status("globex", "suspended")
    try:
        sent = fan_out.delay("portfolio_snapshot", as_of).get(timeout=WAIT)  # what beat sends
        outcomes = {slug: celery_app.AsyncResult(task_id).get(timeout=WAIT) for slug, task_id in sent["sent"].items()}
    finally:
        jobs_db.set_status("globex", "active")
    assert sent["skipped"] == {"globex": "tenant 'globex' is suspended"}
    assert {"acme", "initech"} <= set(outcomes) and "globex" not in outcomes and "platform" not in outcomes
    assert "default" not in outcomes  # empty on a fresh install: no jobs
    assert "skipping tenant globex" in worker.log()
    rows = snapshots_at(jobs_db, as_of)
    # one snapshot per user of each active demo tenant, each in its own tenant; none for globex
    expected = sorted(
        (jobs_db.tenant_ids[slug], user, 1) for slug in ("acme", "initech") for user in jobs_db.user_ids[slug]
    )
    assert [r for r in rows if r[0] != jobs_db.tenant_ids.get("default")] == expected


def test_the_same_job_delivered_twice_writes_each_snapshot_once(jobs_db, worker):
    as_of = "2026-11-28T06:00:00+00:00"
    acme = jobs_db.tenant_ids["acme"]
    with tenant_context(acme):
        first, second = portfolio_snapshot.delay(as_of), portfolio_snapshot.delay(as_of)
    outcomes = [first.get(timeout=WAIT), second.get(timeout=WAIT)]
    assert sorted(o["created"] for o in outcomes) == [0, len(jobs_db.user_ids["acme"])]
    assert snapshots_at(jobs_db, as_of) == sorted((acme, u, 1) for u in jobs_db.user_ids["acme"])


# manage.py run_tenant_job: through the queue, to the worker above.


def run_tenant_job(jobs_db, *args: str):
    from tests.support.scratch import manage
    from tests.support.workers import WORKER_ENV

    return manage(jobs_db.name, "run_tenant_job", *args, check=False, **WORKER_ENV)


def test_run_tenant_job_for_one_tenant_waits_for_the_result(jobs_db, worker):
    as_of = "2026-11-26T06:00:00+00:00"
    done = run_tenant_job(jobs_db, "portfolio_snapshot", "--tenant", "acme", "--as-of", as_of)
    assert done.returncode == 0, done.stderr
    assert f"acme: created {len(jobs_db.user_ids['acme'])}," in done.stdout and "done for 1 tenant(s)" in done.stdout
    acme = jobs_db.tenant_ids["acme"]
    assert snapshots_at(jobs_db, as_of) == sorted((acme, u, 1) for u in jobs_db.user_ids["acme"])


def test_run_tenant_job_risk_metrics_for_all_from_each_tenants_own_history(jobs_db, worker):
    as_of = "2026-12-01T00:00:00+00:00"
    done = run_tenant_job(jobs_db, "risk_metrics", "--all", "--as-of", "2026-12-01T00:00:00")
    assert done.returncode == 0, done.stderr
    with jobs_db.owner() as owner:
        # Joined here, not in SQL: on Citus a join of two distributed tables must be on tenant_id,
        # which would make "in the user's own tenant" true by construction.
        user_tenant = dict(owner.execute("SELECT id, tenant_id::text FROM users").fetchall())
        metrics = owner.execute(
            "SELECT tenant_id::text, user_id, count(*) FROM risk_metrics WHERE as_of = %s GROUP BY 1, 2", [as_of]
        ).fetchall()
    counted: dict[tuple[str, str], int] = {}
    for metric_tenant, user_id, count in metrics:
        key = (metric_tenant, user_tenant[user_id])
        counted[key] = counted.get(key, 0) + count
    rows = [(metric, user, count) for (metric, user), count in counted.items()]
    # load_demo gave each demo user 60 days of history: 5 metrics per user, in the user's own tenant
    for slug in ("acme", "globex", "initech"):
        tid = jobs_db.tenant_ids[slug]
        assert (tid, tid, 5 * len(jobs_db.user_ids[slug])) in rows
    assert all(metric_tenant == user_tenant for metric_tenant, user_tenant, _ in rows)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ("nope", "--all"),
            "Unknown job 'nope': choose one of portfolio_snapshot, purge_idempotency_keys, risk_metrics.",
        ),
        (("risk_metrics", "--tenant", "nosuch"), "No tenant with slug 'nosuch'."),
        (("risk_metrics", "--tenant", "acme", "--as-of", "yesterday"), "is not an ISO date-time"),
    ],
)
def test_run_tenant_job_refuses_unknown_jobs_and_tenants_clearly(jobs_db, args, message):
    refused = run_tenant_job(jobs_db, *args)
    assert refused.returncode == 2  # refused, nothing sent (docs/runbook.md, "Exit codes")
    assert message in refused.stderr


def test_run_tenant_job_refuses_a_suspended_tenant(jobs_db, worker):
    jobs_db.set_status("globex", "suspended")
    try:
        refused = run_tenant_job(jobs_db, "portfolio_snapshot", "--tenant", "globex")
    finally:
        jobs_db.set_status("globex", "active")
    assert refused.returncode == 2 and "Tenant 'globex' is suspended" in refused.stderr


def test_run_tenant_job_exits_non_zero_naming_the_tenants_that_did_not_finish(jobs_db, worker):
    late = run_tenant_job(jobs_db, "risk_metrics", "--all", "--timeout", "0")
    assert late.returncode == 1
    assert "risk_metrics failed for" in late.stderr and "acme: not finished after 0 s" in late.stderr
