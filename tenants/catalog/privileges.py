"""The app role's privileges: what it must hold, what it does hold, and the difference.

The one source of truth for the app role's least privilege (docs/security.md, section 3). The
expected set is stated here; the actual set is read from the catalog, for the
app role and everything it inherits (PUBLIC, roles it is a member of):

- tables, views, sequences and columns in every non-system schema,
- schemas (USAGE, and CREATE on *every* schema, system ones included),
- the current database (CONNECT, CREATE, TEMPORARY),
- functions in non-system schemas (EXECUTE),
- configuration parameters (GRANT SET / ALTER SYSTEM, PG15+),
- default privileges that name the role, objects it owns,
- its memberships, its role attributes and its `ALTER ROLE ... SET` settings.

Expected: SELECT on `tenants`; SELECT, INSERT, UPDATE, DELETE on every tenant
table (the models' TenantModel tables), SELECT and INSERT only on the
append-only ones (`audit_events`), SELECT, INSERT and UPDATE on those whose
rows end but stay (`user_sessions`, `api_keys`); USAGE on sequences those tables own
(none today: uuid keys); EXECUTE on the functions the tenant policies call
(a policy runs with the caller's rights); USAGE on schema public; CONNECT on
the database; LOGIN and INHERIT; the guard-rail settings and a search_path
that ends in pg_temp. Nothing else: Django's own tables (sessions, admin log,
auth, content types, migrations), pg_stat_statements, TEMP and CREATE
anywhere are all "extra".

`privilege_problems()` answers both ways ("extra: ..." and "missing: ...");
the system check (tenants.catalog.checks), `rls_check` and tests/tenants/
test_privileges.py use it. It only reads catalogs, so any connection works;
the subject is always the app role, named explicitly.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.conf import settings

from tenants.constants import APP_ROLE, BYPASS_ROLE
from tenants.registry import append_only_tables, never_deleted_tables, tenant_tables

# Schemas that belong to PostgreSQL or to Citus's own machinery: their objects
# carry the ACLs their makers gave them, and are not the project's. CREATE on
# them is still inspected. PostgreSQL's own two by name; Citus's only where the
# extension really made them (the schema is a member of citus or
# citus_columnar): skipping them by name alone let a schema anyone called
# `columnar` on a plain PostgreSQL hide a view granted to PUBLIC.
BUILTIN_SCHEMAS = ("pg_catalog", "information_schema")
EXTENSION_SCHEMAS = ("citus", "citus_internal", "columnar", "columnar_internal")

# Objects these extensions install outside their own schemas (Citus 13 puts the
# view `public.citus_tables`, readable by PUBLIC, in schema public) are the
# extension's, like its schemas: table sizes and names, no tenant's rows.
SYSTEM_EXTENSIONS = ("citus", "citus_columnar")
_NOT_SYSTEM_EXTENSION_MEMBER = """
  AND NOT EXISTS (SELECT 1 FROM pg_depend dep JOIN pg_extension ext ON ext.oid = dep.refobjid
                   WHERE dep.classid = '{catalog}'::regclass AND dep.objid = {oid} AND dep.deptype = 'e'
                     AND ext.extname = ANY(%(system_extensions)s::text[]))
"""

# `n` is a pg_namespace row: true for PostgreSQL's schemas and the extensions' own.
_SYSTEM_SCHEMA = """(n.nspname = ANY(%(builtin_schemas)s::text[])
  OR (n.nspname = ANY(%(extension_schemas)s::text[])
      AND EXISTS (SELECT 1 FROM pg_depend sd JOIN pg_extension se ON se.oid = sd.refobjid
                   WHERE sd.classid = 'pg_namespace'::regclass AND sd.objid = n.oid AND sd.deptype = 'e'
                     AND se.extname = ANY(%(system_extensions)s::text[]))))"""

TABLE_PRIVILEGES = ("SELECT", "INSERT", "UPDATE", "DELETE", "TRUNCATE", "REFERENCES", "TRIGGER")
SEQUENCE_PRIVILEGES = ("USAGE", "SELECT", "UPDATE")
READ_WRITE = ("SELECT", "INSERT", "UPDATE", "DELETE")
APPEND_ONLY = ("SELECT", "INSERT")  # a record of history: written once, never changed (audit_events)
NEVER_DELETED = ("SELECT", "INSERT", "UPDATE")  # rows that end but stay (user_sessions, api_keys)

# ALTER ROLE alphapulse_app SET ...: the guard rails scripts/db.sh sets. Values
# are checked for search_path only (pg_temp last: a temp table can then never
# shadow a tenant table for an unqualified name); the timeouts may be tuned.
PINNED_SEARCH_PATH = "public, pg_temp"
EXPECTED_ROLE_SETTINGS = (
    "statement_timeout",
    "lock_timeout",
    "idle_in_transaction_session_timeout",
    "TimeZone",
    "search_path",
    # Keeps the app role's SET LOCAL texts (they name the tenant) out of pg_stat_statements.
    "pg_stat_statements.track_utility",
)
# On a Citus coordinator the app role also carries the setting that forwards
# its SET LOCAL of the tenant to the workers.
CITUS_ROLE_SETTINGS = ("citus.propagate_set_commands",)
EXPECTED_ATTRIBUTES = ("LOGIN", "INHERIT")


@dataclass(frozen=True, order=True)
class Privilege:
    kind: str  # table, column, sequence, schema, database, function, parameter, ...
    target: str
    privilege: str

    def __str__(self) -> str:
        if self.kind == "member of":
            return f"member of {self.target} ({self.privilege})"
        if self.kind == "owns":
            return f"owns {self.target}"
        if self.kind == "role attribute":
            return f"role attribute {self.privilege}"
        return f"{self.privilege} on {self.kind} {self.target}"


# Every query takes %(role)s; "inherits" means granted to the role, to PUBLIC
# (grantee 0) or to a role it inherits from.
_RELATIONS_SQL = """
SELECT CASE WHEN c.relkind = 'S' THEN 'sequence' ELSE 'table' END,
       n.nspname || '.' || c.relname, p.priv
FROM pg_class c
JOIN pg_namespace n ON n.oid = c.relnamespace
CROSS JOIN LATERAL unnest(CASE WHEN c.relkind = 'S' THEN %(sequence_privileges)s::text[]
                               ELSE %(table_privileges)s::text[] END) AS p(priv)
WHERE c.relkind IN ('r', 'p', 'v', 'm', 'f', 'S')
  AND NOT {system}
  AND n.nspname NOT LIKE 'pg\\_toast%%' AND n.nspname NOT LIKE 'pg\\_temp\\_%%'
  AND CASE WHEN c.relkind = 'S' THEN has_sequence_privilege(%(role)s, c.oid, p.priv)
           ELSE has_table_privilege(%(role)s, c.oid, p.priv) END
""" + _NOT_SYSTEM_EXTENSION_MEMBER.format(catalog="pg_class", oid="c.oid")
_COLUMNS_SQL = """
SELECT 'column', n.nspname || '.' || c.relname || '.' || a.attname, acl.privilege_type
FROM pg_attribute a
JOIN pg_class c ON c.oid = a.attrelid
JOIN pg_namespace n ON n.oid = c.relnamespace
CROSS JOIN LATERAL aclexplode(a.attacl) acl
WHERE a.attacl IS NOT NULL AND NOT {system}
  AND (acl.grantee = 0 OR pg_has_role(%(role)s, acl.grantee, 'USAGE'))
""" + _NOT_SYSTEM_EXTENSION_MEMBER.format(catalog="pg_class", oid="c.oid")
_SCHEMAS_SQL = """
SELECT 'schema', n.nspname, p.priv
FROM pg_namespace n CROSS JOIN unnest(ARRAY['USAGE', 'CREATE']) AS p(priv)
WHERE n.nspname NOT LIKE 'pg\\_toast%%' AND n.nspname NOT LIKE 'pg\\_temp\\_%%'
  AND (p.priv = 'CREATE' OR NOT {system})
  AND has_schema_privilege(%(role)s, n.oid, p.priv)
"""
_DATABASE_SQL = """
SELECT 'database', '(current)', p.priv
FROM unnest(ARRAY['CONNECT', 'CREATE', 'TEMPORARY']) AS p(priv)
WHERE has_database_privilege(%(role)s, current_database(), p.priv)
"""
_FUNCTIONS_SQL = """
SELECT 'function', p.oid::regprocedure::text, 'EXECUTE'
FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
WHERE NOT {system}
  AND has_function_privilege(%(role)s, p.oid, 'EXECUTE')
""" + _NOT_SYSTEM_EXTENSION_MEMBER.format(catalog="pg_proc", oid="p.oid")
# PostgreSQL's views of other sessions, in pg_catalog (whose objects the
# queries above skip): PUBLIC may read them by default, and they show every
# session's statement with its values, every tenant's. scripts/db-common.sh
# closes them in every database of every node.
_OTHER_SESSIONS_SQL = """
SELECT 'table', 'pg_catalog.pg_stat_activity', 'SELECT'
WHERE has_table_privilege(%(role)s, 'pg_catalog.pg_stat_activity', 'SELECT')
UNION ALL
SELECT 'function', p.oid::regprocedure::text, 'EXECUTE'
FROM pg_proc p
WHERE p.oid IN ('pg_catalog.pg_stat_get_activity(integer)'::regprocedure,
                'pg_catalog.pg_stat_get_backend_activity(integer)'::regprocedure)
  AND has_function_privilege(%(role)s, p.oid, 'EXECUTE')
"""
_PARAMETERS_SQL = """
SELECT 'parameter', pa.parname, acl.privilege_type
FROM pg_parameter_acl pa CROSS JOIN LATERAL aclexplode(pa.paracl) acl
WHERE acl.grantee = 0 OR pg_has_role(%(role)s, acl.grantee, 'USAGE')
"""
_DEFAULT_PRIVILEGES_SQL = """
SELECT 'default privilege',
       pg_get_userbyid(d.defaclrole) || ' in ' || coalesce(d.defaclnamespace::regnamespace::text, 'all schemas')
       || ': ' || CASE d.defaclobjtype WHEN 'r' THEN 'tables' WHEN 'S' THEN 'sequences'
                  WHEN 'f' THEN 'functions' WHEN 'T' THEN 'types' ELSE 'schemas' END,
       acl.privilege_type
FROM pg_default_acl d CROSS JOIN LATERAL aclexplode(d.defaclacl) acl
WHERE acl.grantee = %(role)s::regrole
"""
_OWNED_SQL = """
SELECT 'owns', kind || ' ' || name, 'OWNER' FROM (
    SELECT 'relation' AS kind, oid::regclass::text AS name FROM pg_class WHERE relowner = %(role)s::regrole
    UNION ALL SELECT 'function', oid::regprocedure::text FROM pg_proc WHERE proowner = %(role)s::regrole
    UNION ALL SELECT 'schema', nspname FROM pg_namespace WHERE nspowner = %(role)s::regrole
    UNION ALL SELECT 'type', oid::regtype::text FROM pg_type WHERE typowner = %(role)s::regrole
    UNION ALL SELECT 'database', datname FROM pg_database WHERE datdba = %(role)s::regrole
    UNION ALL SELECT 'large object', oid::text FROM pg_largeobject_metadata WHERE lomowner = %(role)s::regrole
) owned
"""
_MEMBERSHIPS_SQL = """
SELECT 'member of', m.roleid::regrole::text, CASE WHEN m.admin_option THEN 'WITH ADMIN OPTION' ELSE 'MEMBER' END
FROM pg_auth_members m WHERE m.member = %(role)s::regrole
"""
_ATTRIBUTES_SQL = """
SELECT 'role attribute', '', a.name
FROM pg_roles r CROSS JOIN LATERAL (VALUES
    ('SUPERUSER', r.rolsuper), ('INHERIT', r.rolinherit), ('CREATEROLE', r.rolcreaterole),
    ('CREATEDB', r.rolcreatedb), ('LOGIN', r.rolcanlogin), ('REPLICATION', r.rolreplication),
    ('BYPASSRLS', r.rolbypassrls)) AS a(name, held)
WHERE r.rolname = %(role)s AND a.held
"""
_SETTINGS_SQL = """
SELECT 'role setting', split_part(s.setting, '=', 1), substr(s.setting, strpos(s.setting, '=') + 1)
FROM pg_db_role_setting d CROSS JOIN LATERAL unnest(d.setconfig) AS s(setting)
WHERE d.setrole = %(role)s::regrole
  AND d.setdatabase IN (0, (SELECT oid FROM pg_database WHERE datname = current_database()))
"""
_RELATIONS_SQL, _COLUMNS_SQL, _SCHEMAS_SQL, _FUNCTIONS_SQL = (
    query.replace("{system}", _SYSTEM_SCHEMA) for query in (_RELATIONS_SQL, _COLUMNS_SQL, _SCHEMAS_SQL, _FUNCTIONS_SQL)
)
PRIVILEGE_QUERIES = (
    _RELATIONS_SQL,
    _COLUMNS_SQL,
    _SCHEMAS_SQL,
    _DATABASE_SQL,
    _FUNCTIONS_SQL,
    _OTHER_SESSIONS_SQL,
    _PARAMETERS_SQL,
    _DEFAULT_PRIVILEGES_SQL,
    _OWNED_SQL,
    _MEMBERSHIPS_SQL,
    _ATTRIBUTES_SQL,
)

# The functions the tenant tables' policies call, and the sequences those
# tables own: the app role needs EXECUTE / USAGE on exactly these.
_POLICY_FUNCTIONS_SQL = """
SELECT DISTINCT d.refobjid::regprocedure::text
FROM pg_policy pol
JOIN pg_depend d ON d.classid = 'pg_policy'::regclass AND d.objid = pol.oid AND d.refclassid = 'pg_proc'::regclass
JOIN pg_proc p ON p.oid = d.refobjid JOIN pg_namespace n ON n.oid = p.pronamespace
WHERE pol.polrelid = ANY(%(tables)s::regclass[]) AND NOT {system}
"""
_POLICY_FUNCTIONS_SQL = _POLICY_FUNCTIONS_SQL.replace("{system}", _SYSTEM_SCHEMA)
_TENANT_SEQUENCES_SQL = """
SELECT DISTINCT n.nspname || '.' || s.relname
FROM pg_depend d
JOIN pg_class s ON s.oid = d.objid AND s.relkind = 'S'
JOIN pg_namespace n ON n.oid = s.relnamespace
WHERE d.classid = 'pg_class'::regclass AND d.refclassid = 'pg_class'::regclass
  AND d.refobjid = ANY(%(tables)s::regclass[]) AND d.deptype IN ('a', 'i')
"""


def _params(role: str) -> dict[str, Any]:
    return {
        "role": role,
        "builtin_schemas": list(BUILTIN_SCHEMAS),
        "extension_schemas": list(EXTENSION_SCHEMAS),
        "system_extensions": list(SYSTEM_EXTENSIONS),
        "table_privileges": list(TABLE_PRIVILEGES),
        "sequence_privileges": list(SEQUENCE_PRIVILEGES),
    }


def actual_privileges(connection: Any, role: str = APP_ROLE) -> set[Privilege]:
    """Everything `role` can do here, read from the catalog."""
    found: set[Privilege] = set()
    with connection.cursor() as cursor:
        for query in PRIVILEGE_QUERIES:
            cursor.execute(query, _params(role))
            found.update(Privilege(*row) for row in cursor.fetchall())
    return found


def actual_role_settings(connection: Any, role: str = APP_ROLE) -> dict[str, str]:
    with connection.cursor() as cursor:
        cursor.execute(_SETTINGS_SQL, _params(role))
        return {name: value for _, name, value in cursor.fetchall()}


def _has_citus(connection: Any) -> bool:
    with connection.cursor() as cursor:
        cursor.execute("SELECT EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'citus')")
        return bool(cursor.fetchone()[0])


def expected_privileges(connection: Any) -> set[Privilege]:
    """The whole set least privilege allows, in this database."""
    tables = sorted(tenant_tables())
    expected = {Privilege("table", "public.tenants", "SELECT")}
    expected |= {
        Privilege("table", f"public.{table}", p)
        for table in tables
        for p in (
            APPEND_ONLY
            if table in append_only_tables()
            else NEVER_DELETED
            if table in never_deleted_tables()
            else READ_WRITE
        )
    }
    expected |= {
        Privilege("schema", "public", "USAGE"),
        Privilege("database", "(current)", "CONNECT"),
        *(Privilege("role attribute", "", a) for a in EXPECTED_ATTRIBUTES),
    }
    if not settings.RLS_ENABLED:
        # The documented emergency rollback (`rls_bypass on` with RLS_ENABLED=false,
        # docs/runbook.md): tenants.catalog.checks.E001 and rls_check judge that membership.
        expected.add(Privilege("member of", BYPASS_ROLE, "MEMBER"))
    with connection.cursor() as cursor:
        params = {**_params(APP_ROLE), "tables": [f"public.{t}" for t in tables]}
        cursor.execute(_POLICY_FUNCTIONS_SQL, params)
        expected |= {Privilege("function", name, "EXECUTE") for (name,) in cursor.fetchall()}
        cursor.execute(_TENANT_SEQUENCES_SQL, params)
        expected |= {Privilege("sequence", name, "USAGE") for (name,) in cursor.fetchall()}
    return expected


# Citus shards of the tenant tables (and of the reference table `tenants`)
# present on this node: each carries the grants of its logical table.
_SHARDS_SQL = """
SELECT s.logicalrelid::regclass::text, shard_name(s.logicalrelid, s.shardid)
FROM pg_dist_shard s
WHERE s.logicalrelid::regclass::text = ANY(%(tables)s)
  -- present here and visible to this session's catalog reads (Citus hides shards
  -- from client sessions unless citus.override_table_visibility is off)
  AND EXISTS (SELECT 1 FROM pg_class c WHERE c.oid = to_regclass(shard_name(s.logicalrelid, s.shardid)))
"""


def _qualified(name: str) -> str:
    return name if "." in name else f"public.{name}"


def shard_privileges(connection: Any, expected: set[Privilege]) -> set[Privilege]:
    """The expected table privileges, repeated for every shard of that table on this node."""
    if not _has_citus(connection):
        return set()
    by_table: dict[str, set[str]] = {}
    for p in expected:
        if p.kind == "table":
            by_table.setdefault(p.target, set()).add(p.privilege)
    with connection.cursor() as cursor:
        cursor.execute(_SHARDS_SQL, {"tables": [t.removeprefix("public.") for t in by_table]})
        shards = cursor.fetchall()
    return {
        Privilege("table", _qualified(shard), privilege)
        for table, shard in shards
        for privilege in by_table.get(_qualified(table), ())
    }


def expected_role_settings(connection: Any) -> set[str]:
    names = set(EXPECTED_ROLE_SETTINGS)
    if _has_citus(connection):
        names |= set(CITUS_ROLE_SETTINGS)
    return names


def privilege_problems(connection: Any) -> list[str]:
    """Each difference between the app role's actual and expected rights, named.

    `connection`: a Django connection or a psycopg one (a Citus worker's,
    tenants.catalog.nodes), as any role that may read the catalogs."""
    actual, expected = actual_privileges(connection), expected_privileges(connection)
    expected |= shard_privileges(connection, expected)
    problems = [f"{APP_ROLE} holds extra privilege: {p}" for p in sorted(actual - expected)]
    problems += [f"{APP_ROLE} lacks privilege: {p}" for p in sorted(expected - actual)]
    role_settings = actual_role_settings(connection)
    allowed = expected_role_settings(connection)
    problems += [
        f"{APP_ROLE} has an unexpected role setting {name}={role_settings[name]}"
        for name in sorted(set(role_settings) - allowed)
    ]
    problems += [
        f"{APP_ROLE} lacks the role setting {name} (ALTER ROLE ... SET, scripts/db.sh)"
        for name in sorted(set(EXPECTED_ROLE_SETTINGS) - set(role_settings))
    ]
    search_path = role_settings.get("search_path")
    if search_path is not None and search_path.replace('"', "").replace(" ", "") != PINNED_SEARCH_PATH.replace(" ", ""):
        problems.append(f"{APP_ROLE}'s search_path is {search_path!r}, not {PINNED_SEARCH_PATH!r} (pg_temp last)")
    return problems


def privilege_problems_on_every_node(alias: str) -> list[str]:
    """privilege_problems() of this database on every node (Citus workers included), each named by node.

    Citus does not propagate every grant and revoke (pg_stat_activity and
    pg_stat_statements were open on the workers only), and a worker can be
    changed directly: the coordinator's catalog alone proves nothing about them."""
    from tenants.catalog.nodes import each_node

    problems = []
    for label, connection in each_node(alias):
        found = privilege_problems(connection)
        problems += [f"on {label}: {problem}" if label.startswith("worker") else problem for problem in found]
    return problems
