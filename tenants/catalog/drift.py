"""Policy drift: does the live catalog still say exactly what the migrations wrote?

For every tenant table (tenants.registry) this compares the live
catalog (RLS enabled, RLS forced, and each policy's command, roles,
permissive/restrictive, USING and WITH CHECK) with what the applied
migrations' `EnableTenantRLS` operation generates. The expected side is not
written down here: inside a transaction that is always rolled back, a scratch
table of the same shape (`CREATE TABLE ... (LIKE <table>)`) receives the
operation's own statements, and pg_policies is read back for it. PostgreSQL
deparses both sides, so expressions match by construction whatever form the
operation uses, and any hand edit in production (ALTER POLICY, an extra
permissive policy, NO FORCE) shows up as a named difference.

Runs on the owner connection (it can create the scratch table; it never
commits anything). A table whose us004 migration is not applied (before the
rollout, or after `migrate tenants 0007`) is expected to have no RLS and no
policies. Other checks (the app role's privileges) plug in through
`register_drift_check` and are reported by `rls_check` alongside these.

Fails loudly: a catalog query that cannot run raises; it is never reported
as "no drift".
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass

from django.core.checks import Error, Tags, register
from django.db import DatabaseError, connections, transaction
from django.db.migrations.loader import MigrationLoader
from psycopg import sql

from tenants.catalog.distribution_operations import ReshapeTenantPolicies
from tenants.catalog.rls_operations import EnableTenantRLS
from tenants.catalog.verification import Finding
from tenants.constants import OWNER_DATABASE
from tenants.registry import tenant_tables

SCRATCH_PREFIX = "drift_probe_"

TABLE_STATE_SQL = """
SELECT c.relrowsecurity, c.relforcerowsecurity
FROM pg_class c WHERE c.relname = %s AND c.relnamespace = current_schema()::regnamespace AND c.relkind IN ('r', 'p')
"""
POLICIES_SQL = """
SELECT policyname, permissive, roles::text[], cmd, qual, with_check
FROM pg_policies WHERE schemaname = current_schema() AND tablename = %s
"""


@dataclass(frozen=True)
class Policy:
    name: str
    permissive: str
    roles: tuple[str, ...]
    command: str
    using: str | None
    with_check: str | None

    def describe(self) -> str:
        parts = [f"{self.permissive} FOR {self.command} TO {', '.join(self.roles)}"]
        if self.using is not None:
            parts.append(f"USING {self.using}")
        if self.with_check is not None:
            parts.append(f"WITH CHECK {self.with_check}")
        return " ".join(parts)


@dataclass(frozen=True)
class TableSecurity:
    exists: bool
    enabled: bool
    forced: bool
    policies: dict[str, Policy]


# Further drift checks (e.g. the app role's privileges), each returning Findings.
DriftCheck = Callable[[], list[Finding]]
_extra_checks: list[DriftCheck] = []


def register_drift_check(check: DriftCheck) -> DriftCheck:
    """Decorator: `rls_check` and the deploy check also run `check` and report its findings."""
    _extra_checks.append(check)
    return check


def read_table_security(cursor, table: str) -> TableSecurity:
    cursor.execute(TABLE_STATE_SQL, [table])
    row = cursor.fetchone()
    if row is None:
        return TableSecurity(False, False, False, {})
    cursor.execute(POLICIES_SQL, [table])
    policies = {
        name: Policy(name, permissive, tuple(sorted(roles)), cmd, qual, check)
        for name, permissive, roles, cmd, qual, check in cursor.fetchall()
    }
    return TableSecurity(True, bool(row[0]), bool(row[1]), policies)


def rls_operations_applied(alias: str = OWNER_DATABASE) -> dict[str, EnableTenantRLS]:
    """Per table, the last EnableTenantRLS among the applied migrations (none: RLS is not expected).

    A later ReshapeTenantPolicies (the policy-shape migration) stands for the
    EnableTenantRLS it leaves behind."""
    loader = MigrationLoader(connections[alias], ignore_no_migrations=True)
    plan: list[tuple[str, str]] = []
    for leaf in sorted(loader.graph.leaf_nodes()):
        plan += [node for node in loader.graph.forwards_plan(leaf) if node not in plan]
    found: dict[str, EnableTenantRLS] = {}
    for node in plan:
        if node in loader.applied_migrations:
            for operation in loader.graph.nodes[node].operations:
                if isinstance(operation, EnableTenantRLS):
                    found[operation.table] = operation
                elif isinstance(operation, ReshapeTenantPolicies):
                    found[operation.table] = operation.resulting_rls()
    return found


def expected_table_security(cursor, table: str, operation: EnableTenantRLS | None) -> TableSecurity:
    """What `operation` produces on a table shaped like `table`, measured on a scratch copy.

    The caller holds a transaction that is rolled back: the scratch table never exists for anyone else.
    """
    if operation is None:
        return TableSecurity(True, False, False, {})
    scratch = f"{SCRATCH_PREFIX}{table}"[:63]
    cursor.execute(
        sql.SQL("CREATE TABLE {} (LIKE {})")
        .format(sql.Identifier(scratch), sql.Identifier(table))
        .as_string(cursor.connection)
    )
    # The same operation (whatever its other arguments), aimed at the scratch table.
    probe = copy.copy(operation)
    probe.table = scratch
    for statement in probe.statements():
        cursor.execute(statement.as_string(cursor.connection) if isinstance(statement, sql.Composable) else statement)
    return read_table_security(cursor, scratch)


def compare(table: str, live: TableSecurity, expected: TableSecurity) -> list[str]:
    """Every difference between the live table and the expected one, in words."""
    if not live.exists:
        return [f"table {table} does not exist"]
    differences = []
    for label, have, want in (
        ("ROW LEVEL SECURITY", live.enabled, expected.enabled),
        ("FORCE ROW LEVEL SECURITY", live.forced, expected.forced),
    ):
        if have != want:
            differences.append(f"{label} is {'on' if have else 'off'}, the migrations say {'on' if want else 'off'}")
    for name in sorted(expected.policies.keys() - live.policies.keys()):
        differences.append(f"policy {name} is missing (expected {expected.policies[name].describe()})")
    for name in sorted(live.policies.keys() - expected.policies.keys()):
        differences.append(f"policy {name} is not in the migrations: {live.policies[name].describe()}")
    for name in sorted(live.policies.keys() & expected.policies.keys()):
        have_p, want_p = live.policies[name], expected.policies[name]
        for label, have_v, want_v in (
            ("is", have_p.permissive, want_p.permissive),
            ("command", have_p.command, want_p.command),
            ("roles", have_p.roles, want_p.roles),
            ("USING", have_p.using, want_p.using),
            ("WITH CHECK", have_p.with_check, want_p.with_check),
        ):
            if have_v != want_v:
                differences.append(f"policy {name} {label} {have_v!r}, the migrations say {want_v!r}")
    return differences


def policy_drift(alias: str = OWNER_DATABASE) -> dict[str, list[str]]:
    """{table: [difference, ...]} for every tenant table; empty lists where nothing drifted."""
    operations = rls_operations_applied(alias)
    connection = connections[alias]
    result: dict[str, list[str]] = {}
    with transaction.atomic(using=alias), connection.cursor() as cursor:
        # Never queue behind a migration's ACCESS EXCLUSIVE lock for long.
        cursor.execute("SELECT set_config('lock_timeout', '2s', true)")
        for table in tenant_tables():
            live = read_table_security(cursor, table)
            expected = expected_table_security(cursor, table, operations.get(table)) if live.exists else live
            result[table] = compare(table, live, expected)
        transaction.set_rollback(True, using=alias)
    return result


def drift_findings(alias: str = OWNER_DATABASE) -> list[Finding]:
    findings: list[Finding] = []
    for table, differences in policy_drift(alias).items():
        if not differences:
            findings.append(Finding(table, "RLS and policies match the migrations", True))
        findings += [Finding(table, "policy drift", False, difference) for difference in differences]
    # Triggers, rules, a default tenant, every shard on every worker (issue 20).
    from tenants.catalog.weakenings import weakening_findings

    findings += weakening_findings(alias)
    for check in _extra_checks:
        findings += check()
    return findings


@register(Tags.database, deploy=True)
def check_no_policy_drift(app_configs=None, databases=None, **kwargs):
    """`manage.py check --deploy --database default` (make setup / make run) refuses a drifted catalog."""
    if not databases:
        return []
    try:
        findings = drift_findings(OWNER_DATABASE)
    except DatabaseError as exc:
        return [Error(f"Could not compare the RLS catalog with the migrations: {exc}", id="tenants.E010")]
    return [
        Error(
            f"Row-level security drift on {finding.subject}: {finding.detail or finding.check}.",
            hint="Run `manage.py rls_check` for the full report; restore the policy with the migrations "
            "(docs/runbook.md, 'Policy drift').",
            id="tenants.E011",
        )
        for finding in findings
        if not finding.ok
    ]
