"""Job counters reach the API's /metrics: a real worker and a real gunicorn share one
PROMETHEUS_MULTIPROC_DIR, as under `make run`, and a scrape of the API counts the worker's jobs."""

from __future__ import annotations

import time

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from alphapulse.celery import app as celery_app
from jobs.metrics import outcome_of
from jobs.tasks import portfolio_snapshot
from jobs.tenant_tasks import TenantHeaderInvalid
from tenants.context import NoTenantContext, tenant_context
from tests.jobs.probes import probe_tenant
from tests.support.scratch import FAST_HASHER, gunicorn

pytestmark = [pytest.mark.slow, pytest.mark.django_db]

TOKEN = "metrics-token-for-job-tests"
WAIT = 60


def job_samples(base: str) -> dict[tuple[str, str, str], float]:
    response = httpx.get(f"{base}/metrics", headers={"Authorization": f"Bearer {TOKEN}"}, timeout=10)
    assert response.status_code == 200
    return {
        (sample.name, sample.labels.get("task", ""), sample.labels.get("outcome", "")): sample.value
        for family in text_string_to_metric_families(response.text)
        if family.name.startswith("alphapulse_job")
        for sample in family.samples
    }


@pytest.mark.parametrize(
    ("state", "retval", "outcome"),
    [
        ("SUCCESS", {"snapshots": 2}, "succeeded"),
        ("SUCCESS", {"skipped": "tenant x is suspended", "tenant_id": "x"}, "skipped"),
        ("FAILURE", NoTenantContext(), "refused"),
        ("FAILURE", TenantHeaderInvalid("its signature does not match"), "refused"),
        ("FAILURE", ValueError("boom"), "failed"),
        ("RETRY", None, "retried"),
    ],
)
def test_each_end_of_a_task_has_its_outcome(state, retval, outcome):
    assert outcome_of(state, retval) == outcome


def test_the_apis_metrics_count_the_workers_jobs_by_task_and_outcome(jobs_db, worker_factory, tmp_path):
    shared = {"PROMETHEUS_MULTIPROC_DIR": str(tmp_path)}
    acme, initech = jobs_db.tenant_ids["acme"], jobs_db.tenant_ids["initech"]
    worker_factory(name="metrics", **shared)  # stopped by the fixture
    with gunicorn(jobs_db.name, METRICS_TOKEN=TOKEN, REQUEST_LOG="false", **FAST_HASHER, **shared) as base:
        before = job_samples(base)
        with tenant_context(acme):
            for _ in range(3):
                probe_tenant.delay().get(timeout=WAIT)
        jobs_db.set_status("initech", "suspended")
        try:
            with tenant_context(initech):
                portfolio_snapshot.delay("2026-11-28T10:00:00+00:00").get(timeout=WAIT)
        finally:
            jobs_db.set_status("initech", "active")
        with pytest.raises(Exception, match="No tenant context"):
            celery_app.send_task("tests.probe_tenant").get(timeout=WAIT)

        expected = {
            ("alphapulse_jobs_total", "tests.probe_tenant", "succeeded"): 3,
            ("alphapulse_jobs_total", "jobs.portfolio_snapshot", "skipped"): 1,
            ("alphapulse_jobs_total", "tests.probe_tenant", "refused"): 1,
            ("alphapulse_job_duration_seconds_count", "tests.probe_tenant", ""): 4,
        }
        # task_postrun fires just after the result is stored: give the last one a moment.
        deadline = time.monotonic() + 15
        while True:
            after = job_samples(base)
            deltas = {key: after.get(key, 0) - before.get(key, 0) for key in expected}
            if deltas == expected or time.monotonic() > deadline:
                break
            time.sleep(0.2)
    assert deltas == expected
    labels = {value for key in after for value in key[1:]}
    assert not labels & set(jobs_db.tenant_ids.values()), "a tenant id became a label"
