"""Operators' commands fail in one line with a documented exit code, never a traceback:
file-system errors, prompts with no terminal, passwords kept out of `ps`; and every command's
--help states its exit codes (docs/runbook.md, "Exit codes")."""

from __future__ import annotations

import re
import subprocess
import sys
from io import StringIO

import pytest
from django.core.management import CommandError, call_command, get_commands, load_command_class
from django.db import connections

from platform_ops.models import AuditEntry
from tenants.models import Tenant, User
from tests.support.factories import TenantFactory
from tests.support.scratch import ROOT, db_env

pytestmark = pytest.mark.django_db(databases=["default", "owner"])

PROJECT_APPS = ("tenants", "trading", "jobs", "platform_ops")


def run(*args: str) -> str:
    out = StringIO()
    call_command(*args, stdout=out, stderr=StringIO())
    return out.getvalue().strip()


def manage_without_terminal(*args: str, **env: str) -> subprocess.CompletedProcess:
    """manage.py as cron or CI runs it: stdin is not a terminal (and empty)."""
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=db_env(connections["owner"].settings_dict["NAME"], **env),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=120,
    )


def assert_one_line_refusal(result: subprocess.CompletedProcess, message: str) -> None:
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("CommandError: "), result.stderr
    assert message in lines[0]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["export_tenant", "acme", "--output", "/sys/x"], "/sys/x.partial: Operation not permitted"),
        (["export_tenant", "acme", "--output", "/etc/hostname/x"], "Not a directory"),
        (["backup_database", "--file", "/etc/hostname/x.dump"], "/etc/hostname"),
        (["query_stats", "snapshot", "/proc/x.json"], "/proc/x.json"),
    ],
)
def test_a_file_system_error_is_one_line_and_exit_2(args, message):
    TenantFactory(slug="acme")
    with pytest.raises(CommandError, match=re.escape(message)) as refused:
        run(*args)
    assert refused.value.returncode == 2


def test_a_failed_export_is_in_the_audit_trail():
    tenant = TenantFactory(slug="acme")
    with pytest.raises(CommandError):
        run("export_tenant", "acme", "--output", "/sys/x", "--reason", "offboarding")
    (entry,) = AuditEntry.objects.using("owner").filter(action="tenant.export", tenant_id=tenant.pk)
    assert entry.result == "failed"
    assert "Operation not permitted" in entry.detail["error"]


def test_a_file_system_error_from_manage_py_prints_no_traceback():
    TenantFactory(slug="acme")
    result = manage_without_terminal("export_tenant", "acme", "--output", "/sys/x")
    assert_one_line_refusal(result, "/sys/x.partial: Operation not permitted")


@pytest.mark.parametrize(
    "args",
    [["offboard_tenant", "acme", "--no-export", "--reason", "test"], ["rls_bypass", "on"]],
)
def test_a_confirmation_with_no_terminal_is_refused_and_changes_nothing(args):
    TenantFactory(slug="acme")
    result = manage_without_terminal(*args)
    assert_one_line_refusal(result, "no terminal to confirm on: pass --yes")
    assert Tenant.objects.using("owner").get(slug="acme").status == "active"
    assert run("rls_bypass", "status").endswith("off (rls: enforced)")


class Lines(StringIO):
    def isatty(self) -> bool:
        return False


def test_create_tenant_user_reads_the_password_from_stdin():
    tenant = TenantFactory(slug="acme")
    sys_stdin = sys.stdin
    try:
        sys.stdin = Lines("from-stdin-secret\n")
        run("create_tenant_user", "acme", "zed", "--password-stdin")
    finally:
        sys.stdin = sys_stdin
    user = User.all_tenants.using("owner").get(tenant=tenant, username="zed")
    assert user.check_password("from-stdin-secret")


def test_create_tenant_user_reads_the_password_from_the_environment(monkeypatch):
    tenant = TenantFactory(slug="acme")
    monkeypatch.setenv("TENANT_USER_PASSWORD", "from-env-secret")
    run("create_tenant_user", "acme", "zed")
    assert User.all_tenants.using("owner").get(tenant=tenant, username="zed").check_password("from-env-secret")


def test_create_tenant_user_with_no_password_and_no_terminal_is_refused():
    TenantFactory(slug="acme")
    result = manage_without_terminal("create_tenant_user", "acme", "zed")
    assert_one_line_refusal(result, "no password: pass --password-stdin, set TENANT_USER_PASSWORD")


def test_create_tenant_user_still_takes_password_on_the_command_line():
    tenant = TenantFactory(slug="acme")
    run("create_tenant_user", "acme", "zed", "--password", "long-enough-pw")
    assert User.all_tenants.using("owner").get(tenant=tenant, username="zed").check_password("long-enough-pw")


def test_list_tenants_lists_every_tenant_and_explains_default_and_platform():
    TenantFactory(slug="acme")
    out = run("list_tenants")
    lines = {line.split()[0]: line for line in out.splitlines()[1:]}
    assert {"acme", "default"} <= set(lines)
    assert "legacy rows" in lines["default"]


def project_commands() -> list[tuple[str, str]]:
    return sorted((name, app) for name, app in get_commands().items() if app in PROJECT_APPS)


@pytest.mark.parametrize(("name", "app"), project_commands())
def test_every_command_states_its_exit_codes_in_help(name, app):
    command = load_command_class(app, name)
    text = command.create_parser("manage.py", name).format_help()
    flat = " ".join(text.split())
    found = re.search(r"Exit status: (.*?)(?:\.|$)", flat)
    assert found, f"{name} --help does not state its exit codes"
    codes = {int(code) for code in re.findall(r"(?:^|, )([0-9]) ", found.group(1))}
    assert 0 in codes and codes <= {0, 1, 2}, f"{name}: {found.group(1)}"


def test_the_runbook_has_the_one_exit_code_table():
    runbook = (ROOT / "docs" / "runbook.md").read_text()
    section = runbook.split("## Exit codes", 1)[1]
    for code in ("| 0 |", "| 1 |", "| 2 |"):
        assert code in section
