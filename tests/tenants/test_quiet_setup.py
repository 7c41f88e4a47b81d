"""Quiet where nothing is wrong, loud where something is: no warning about tables that the
first `migrate` is about to create, no deploy warnings for a loopback-only server with the
secret key set-up generates, and every deploy warning for a public host without HTTPS."""

from __future__ import annotations

import re
import subprocess

import pytest

from tests.support.scratch import ROOT, db_env, manage, scratch_database

LONG_KEY = "k" * 20 + "0123456789abcdefghijklmnopqrstuvwxyz-_ABCDEFGHIJ"  # what set-up now generates: >= 50


@pytest.fixture(scope="module")
def empty_database(django_db_setup, django_db_blocker):
    with django_db_blocker.unblock(), scratch_database("alphapulse_quiet") as name:
        yield name


def test_checks_on_a_database_not_migrated_yet_say_nothing_about_missing_tables(empty_database):
    result = manage(empty_database, "check", "--database", "owner", check=False)
    output = result.stdout + result.stderr
    assert "W002" not in output and "does not exist" not in output, output


def deploy_check(dbname: str, **env: str) -> str:
    result = manage(dbname, "check", "--deploy", **{"SECRET_KEY": LONG_KEY, **env}, check=False)
    return result.stdout + result.stderr


def test_check_deploy_is_quiet_for_a_loopback_server(empty_database):
    output = deploy_check(empty_database, ALLOWED_HOSTS="127.0.0.1,localhost")
    assert "security.W" not in output, output


def test_check_deploy_is_loud_for_a_public_host_without_https(empty_database):
    output = deploy_check(empty_database, ALLOWED_HOSTS="api.example.com")
    for warning in ("security.W004", "security.W008", "security.W012", "security.W016"):
        assert warning in output


def test_https_answers_the_public_hosts_warnings(empty_database):
    """What remains (HSTS for subdomains, preload) is the operator's decision for the domain."""
    output = deploy_check(empty_database, ALLOWED_HOSTS="api.example.com", HTTPS="true")
    for warning in ("security.W004", "security.W008", "security.W009", "security.W012", "security.W016"):
        assert warning not in output, output


def test_set_up_generates_a_secret_key_check_deploy_accepts():
    script = (ROOT / "scripts" / "db-common.sh").read_text()
    (expression,) = re.findall(r"^SECRET_KEY=(.+)$", script, re.M)
    generated = subprocess.run(
        ["bash", "-c", f". scripts/db-common.sh && echo {expression}"], cwd=ROOT, capture_output=True, text=True
    ).stdout.strip()
    assert len(generated) >= 50 and len(set(generated)) >= 5


def test_db_up_prints_no_notice():
    """db-up on a running server re-runs its idempotent SQL: no 'NOTICE: ... already exists'."""
    result = subprocess.run(["scripts/db.sh", "up"], cwd=ROOT, capture_output=True, text=True, env=db_env("x"))
    assert result.returncode == 0, result.stderr
    assert "NOTICE" not in result.stdout + result.stderr
