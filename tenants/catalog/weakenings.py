"""What can move rows between tenants, or widen what a session sees, besides the policies.

Policy drift (tenants.catalog.drift) compares each tenant table's policies with
the migrations. Each of these got past it and was proven to leak (issue 20):

- a trigger on a tenant table: a SECURITY DEFINER function runs as its owner,
  so a trigger on `trades` copied A's new trades into B past RLS;
- a rule on a tenant table (`CREATE RULE ... ON INSERT TO orders DO ALSO
  INSERT INTO trades ...`): the rule's actions run with the table owner's
  rights;
- `ALTER DATABASE ... SET app.current_tenant_id` (or `ALTER ROLE ... SET`, or
  the server's configuration): every session with no tenant saw that tenant
  instead of nothing;
- on Citus, a policy changed on one shard directly on a worker: the
  coordinator's catalog still said the right thing.
(Objects in a schema the app role can reach are the privilege check's,
tenants.catalog.privileges, which no longer trusts a schema by its name.)

`weakening_findings()` names each one found (the table or shard, the trigger or
rule, the role or database the setting is attached to, the worker) and is part
of `rls_check` and of the deploy check through tenants.catalog.drift. The
project itself defines no trigger and no rule on a tenant table; PostgreSQL's
and Citus's internal triggers (foreign keys, Citus's truncate trigger) are not
"ours" and are skipped (`tgisinternal`).

Runs on the owner connection, and on every Citus worker through
tenants.catalog.nodes; reads catalogs only. Fails loudly: a node that cannot be
read raises, it is never "no weakening".
"""

from __future__ import annotations

from typing import Any

import psycopg
from django.db import connections

from tenants.catalog.nodes import each_node
from tenants.catalog.verification import Finding
from tenants.constants import OWNER_DATABASE, TENANT_SETTING
from tenants.registry import tenant_tables

# Every tenant table, and on a Citus worker every shard of one present there:
# (logical table, relation name as it appears here).
_RELATIONS_SQL = """
SELECT c.relname::text, c.relname::text FROM pg_class c
WHERE c.relnamespace = 'public'::regnamespace AND c.relkind IN ('r', 'p') AND c.relname = ANY(%(tables)s)
"""
_SHARD_RELATIONS_SQL = """
SELECT s.logicalrelid::regclass::text, c.relname::text
FROM pg_dist_shard s JOIN pg_class c ON c.oid = to_regclass(shard_name(s.logicalrelid, s.shardid))
WHERE s.logicalrelid::regclass::text = ANY(%(tables)s)
"""
_TRIGGERS_SQL = """
SELECT c.relname::text, t.tgname::text, t.tgfoid::regprocedure::text
FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid
WHERE NOT t.tgisinternal AND c.relnamespace = 'public'::regnamespace AND c.relname = ANY(%(relations)s)
ORDER BY 1, 2
"""
_RULES_SQL = """
SELECT c.relname::text, r.rulename::text, pg_get_ruledef(r.oid)
FROM pg_rewrite r JOIN pg_class c ON c.oid = r.ev_class
WHERE c.relnamespace = 'public'::regnamespace AND c.relname = ANY(%(relations)s) AND r.rulename <> '_RETURN'
ORDER BY 1, 2
"""
_TABLE_STATE_SQL = """
SELECT c.relname::text, c.relrowsecurity, c.relforcerowsecurity
FROM pg_class c WHERE c.relnamespace = 'public'::regnamespace AND c.relname = ANY(%(relations)s)
"""
_POLICIES_SQL = """
SELECT tablename::text, policyname::text, permissive, roles::text[], cmd, qual, with_check
FROM pg_policies WHERE schemaname = 'public' AND tablename = ANY(%(relations)s)
"""
# ALTER DATABASE / ALTER ROLE ... SET of the tenant variable, for this database or all.
_TENANT_SETTING_SQL = """
SELECT coalesce(r.rolname::text, ''), coalesce(d.datname::text, ''), s.setting
FROM pg_db_role_setting x
LEFT JOIN pg_roles r ON r.oid = x.setrole
LEFT JOIN pg_database d ON d.oid = x.setdatabase
CROSS JOIN LATERAL unnest(x.setconfig) AS s(setting)
WHERE split_part(s.setting, '=', 1) = %(setting)s
  AND x.setdatabase IN (0, (SELECT oid FROM pg_database WHERE datname = current_database()))
"""


def _has_citus(connection: Any) -> bool:
    with connection.cursor() as cursor:
        cursor.execute("SELECT EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'citus')")
        return bool(cursor.fetchone()[0])


def _rows(connection: Any, query: str, params: dict[str, Any]) -> list[tuple]:
    with connection.cursor() as cursor:
        cursor.execute(query, params)
        return list(cursor.fetchall())


def _relations(connection: Any, shards: bool) -> dict[str, str]:
    """{relation here: its logical tenant table}."""
    tables = list(tenant_tables())
    found = {name: table for table, name in _rows(connection, _RELATIONS_SQL, {"tables": tables})}
    if shards:
        found |= {name: table for table, name in _rows(connection, _SHARD_RELATIONS_SQL, {"tables": tables})}
    return found


def _policies(connection: Any, relations: list[str]) -> dict[str, set[tuple]]:
    policies: dict[str, set[tuple]] = {name: set() for name in relations}
    for relation, name, permissive, roles, cmd, qual, check in _rows(
        connection, _POLICIES_SQL, {"relations": relations}
    ):
        policies[relation].add((name, permissive, tuple(sorted(roles)), cmd, qual, check))
    return policies


def _triggers_and_rules(connection: Any, relations: list[str], where: str) -> list[Finding]:
    findings = []
    for relation, trigger, function in _rows(connection, _TRIGGERS_SQL, {"relations": relations}):
        findings.append(
            Finding(
                relation,
                "no trigger on a tenant table",
                False,
                f"trigger {trigger} on {relation}{where} runs {function} (it can write any tenant's rows)",
            )
        )
    for relation, rule, definition in _rows(connection, _RULES_SQL, {"relations": relations}):
        findings.append(
            Finding(
                relation,
                "no rule on a tenant table",
                False,
                f"rule {rule} on {relation}{where}: {' '.join(definition.split())}",
            )
        )
    return findings


def _shard_drift(node: Any, label: str, coordinator_policies: dict[str, set[tuple]]) -> list[Finding]:
    """Each shard on this worker against its logical table on the coordinator."""
    relations = _relations(node, shards=True)
    names = sorted(relations)
    states = {name: (enabled, forced) for name, enabled, forced in _rows(node, _TABLE_STATE_SQL, {"relations": names})}
    findings = []
    for relation, policies in sorted(_policies(node, names).items()):
        table = relations[relation]
        if relation == table:
            continue  # the shell table: the coordinator's copy is what drift compares
        enabled, forced = states.get(relation, (False, False))
        if not (enabled and forced):
            findings.append(
                Finding(
                    relation, "shard has forced RLS", False, f"shard {relation} of {table} on {label}: RLS not forced"
                )
            )
        want = coordinator_policies.get(table, set())
        for policy in sorted(policies - want):
            findings.append(
                Finding(
                    relation,
                    "shard policies match the coordinator",
                    False,
                    f"shard {relation} of {table} on {label}: policy {policy[0]} differs or is extra: "
                    f"{policy[3]} TO {', '.join(policy[2])} USING {policy[4]} WITH CHECK {policy[5]}",
                )
            )
        for policy in sorted(want - policies):
            if policy[0] not in {p[0] for p in policies}:
                findings.append(
                    Finding(
                        relation,
                        "shard policies match the coordinator",
                        False,
                        f"shard {relation} of {table} on {label}: policy {policy[0]} is missing",
                    )
                )
    findings += _triggers_and_rules(node, names, f" on {label}")
    return findings


def tenant_setting_findings(alias: str = OWNER_DATABASE) -> list[Finding]:
    """Database- and role-level values of the tenant variable, and a session's default value."""
    findings = []
    for role, database, setting in _rows(connections[alias], _TENANT_SETTING_SQL, {"setting": TENANT_SETTING}):
        target = " ".join(
            part for part in (f"role {role}" if role else "", f"database {database}" if database else "") if part
        )
        findings.append(
            Finding(
                TENANT_SETTING,
                "no default tenant for a session",
                False,
                f"ALTER {'ROLE' if role else 'DATABASE'} ... SET {setting} ({target}): "
                "a session with no tenant sees that tenant instead of nothing",
            )
        )
    # Whatever set it (postgresql.conf, ALTER SYSTEM, a role or database setting
    # the catalog query above missed): a fresh app-role session must start empty.
    with connections["default"].cursor() as cursor:
        cursor.execute("SELECT current_setting(%s, true)", [TENANT_SETTING])
        (value,) = cursor.fetchone()
    if value:
        findings.append(
            Finding(
                TENANT_SETTING,
                "no default tenant for a session",
                False,
                f"a new app-role session starts with {TENANT_SETTING} = {value!r} (server or role configuration)",
            )
        )
    return findings


def weakening_findings(alias: str = OWNER_DATABASE) -> list[Finding]:
    connection = connections[alias]
    relations = sorted(_relations(connection, shards=False))
    findings = _triggers_and_rules(connection, relations, "")
    findings += tenant_setting_findings(alias)
    if _has_citus(connection):
        coordinator_policies = _policies(connection, relations)
        for label, node in each_node(alias):
            if not label.startswith("worker"):
                continue
            try:
                findings += _shard_drift(node, label, coordinator_policies)
            except psycopg.errors.LockNotAvailable:
                # A transaction holds DDL locks on shards there: not provably clean, so a failure.
                findings.append(
                    Finding(label, "every shard readable", False, f"shards on {label} are locked by DDL; run again")
                )
    if not findings:
        findings.append(Finding("tenant tables", "no trigger, rule, default tenant or shard drift", True))
    return findings
