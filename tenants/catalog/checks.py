"""System check: refuse to run with a runtime connection that can get past RLS.

Tagged `database`, so `manage.py migrate` and `manage.py check --database
default` run it (start-up does not pay for it). Errors when the `default`
connection's role is a superuser, has BYPASSRLS, owns a tenant table, or is
a member of rls_bypass_role while RLS_ENABLED is true (an emergency bypass
must come with RLS_ENABLED=false; see docs/runbook.md).

A second check compares the app role's privileges with the exact set of
tenants.catalog.privileges and names every extra (and missing) one: an Error under
`check --database default` (make setup, make test), a Warning while
`migrate` runs it (only the owner alias then), so the migration that takes
the extra privileges back is never blocked by them.
"""

from django.conf import settings
from django.core.checks import Error, Tags, Warning, register
from django.db import DatabaseError, connections

from tenants.catalog.privileges import privilege_problems
from tenants.constants import BYPASS_ROLE
from tenants.database.bypass import rls_bypass
from tenants.registry import tenant_tables

# A table's owner is held by FORCE, but owning it means being able to turn RLS off.
OWNED_SQL = """
SELECT ARRAY(SELECT c.relname::text FROM pg_class c
              WHERE c.relname = ANY(%(tables)s) AND c.relkind = 'r'
                AND c.relnamespace = current_schema()::regnamespace
                AND pg_has_role(current_user, c.relowner, 'USAGE'))
"""


def runtime_role_problems(alias: str = "default") -> list[str]:
    with connections[alias].cursor() as cursor:
        bypass = rls_bypass(cursor)
        assert bypass is not None  # the connection's own role
        cursor.execute(OWNED_SQL, {"tables": list(tenant_tables())})
        (owned,) = cursor.fetchone()
    name = bypass.role
    problems = []
    if bypass.superuser:
        problems.append(f"role {name} is a superuser")
    if bypass.bypassrls:
        problems.append(f"role {name} has BYPASSRLS")
    if owned:
        problems.append(f"role {name} owns tenant tables {', '.join(sorted(owned))}")
    if bypass.in_bypass_role and settings.RLS_ENABLED:
        problems.append(f"role {name} is a member of {BYPASS_ROLE} while RLS_ENABLED is true")
    return problems


@register(Tags.database)
def check_runtime_role_cannot_bypass_rls(app_configs=None, databases=None, **kwargs):
    # migrate runs database checks for the owner alias only; the runtime role
    # is what matters, so inspect "default" whenever any database is checked.
    if not databases:
        return []
    try:
        problems = runtime_role_problems("default")
    except DatabaseError as exc:
        return [Warning(f"Could not inspect the runtime database role: {exc}", id="tenants.W001")]
    return [
        Error(
            f"The runtime connection (DATABASE_URL) can get past row-level security: {problem}.",
            hint="Point DATABASE_URL at alphapulse_app (NOSUPERUSER NOBYPASSRLS, owns nothing), "
            "or, during an emergency bypass, set RLS_ENABLED=false.",
            id="tenants.E001",
        )
        for problem in problems
    ]


@register(Tags.database)
def check_app_role_privileges(app_configs=None, databases=None, **kwargs):
    if not databases:
        return []
    try:
        problems = privilege_problems(connections["default"])
    except DatabaseError as exc:
        return [Warning(f"Could not read the app role's privileges: {exc}", id="tenants.W002")]
    level = Error if "default" in databases else Warning
    return [
        level(
            f"The app role's privileges differ from the least-privilege set: {problem}.",
            hint="Run `manage.py migrate` as the owner and `make db-up` (role settings); "
            "tenants/catalog/privileges.py states the whole set.",
            id="tenants.E002" if level is Error else "tenants.W003",
        )
        for problem in problems
    ]
