"""Scenario-1 emergency rollback: let the app role past RLS, or stop it, without a deploy.

`rls_bypass on` grants rls_bypass_role to the app role; PostgreSQL applies the
membership to the next query of every open connection, and /health reports
"bypassed". Isolation then rests on the tenant-scoped ORM. `rls_bypass off`
revokes it. Runs as the owner role, which holds rls_bypass_role WITH ADMIN
OPTION. See docs/runbook.md.
"""

from collections.abc import Iterator
from contextlib import contextmanager

from django.core.management.base import BaseCommand, CommandError
from django.db import connections
from django.db.backends.base.base import BaseDatabaseWrapper
from psycopg import sql

from tenants import platform_audit as audit
from tenants.constants import APP_ROLE, BYPASS_ROLE, OWNER_DATABASE
from tenants.database.bypass import rls_bypass


@contextmanager
def _own_owner_connection() -> Iterator[BaseDatabaseWrapper]:
    """A fresh autocommit owner connection: a role grant is cluster-wide and must
    take effect at once, never wait on (or roll back with) another transaction."""
    connection = connections.create_connection(OWNER_DATABASE)
    try:
        yield connection
    finally:
        connection.close()


def app_role_bypasses() -> bool:
    with _own_owner_connection() as connection, connection.cursor() as cursor:
        role = rls_bypass(cursor, APP_ROLE)
        return role is not None and role.in_bypass_role


def set_app_role_bypass(enabled: bool) -> None:
    template = "GRANT {} TO {}" if enabled else "REVOKE {} FROM {}"
    statement = sql.SQL(template).format(sql.Identifier(BYPASS_ROLE), sql.Identifier(APP_ROLE))
    with _own_owner_connection() as connection, connection.cursor() as cursor:
        cursor.execute(statement.as_string(cursor.connection))


class Command(BaseCommand):
    help = (
        "Emergency: let the app role past row-level security (on), stop it (off), or show the state (status). "
        "Exit status: 0 done, 1 aborted at the confirmation prompt."
    )

    def add_arguments(self, parser):
        parser.add_argument("state", choices=["on", "off", "status"])
        parser.add_argument("--yes", action="store_true", help="do not ask for confirmation")
        parser.add_argument("--reason", default="", help="why (kept in the audit trail), e.g. an incident id")

    def handle(self, *args, state: str, yes: bool, reason: str, **options):
        current = app_role_bypasses()
        if state == "status":
            self.stdout.write(
                f"RLS bypass for {APP_ROLE}: {'ON (rls: bypassed)' if current else 'off (rls: enforced)'}"
            )
            return
        wanted = state == "on"
        if wanted == current:
            self.stdout.write(f"RLS bypass for {APP_ROLE} is already {state}.")
            return
        if wanted and not yes:
            answer = input(
                f"Grant {BYPASS_ROLE} to {APP_ROLE}? Every API request will get past row-level security and "
                "isolation will rest on the application alone. Type 'yes' to continue: "
            )
            if answer.strip().lower() != "yes":
                audit.record("rls_bypass.on", result="refused", reason=reason, detail={"why": "not confirmed"})
                raise CommandError("Aborted: nothing changed.", returncode=1)
        set_app_role_bypass(wanted)
        audit.record(f"rls_bypass.{state}", reason=reason, detail={"role": APP_ROLE, "granted": BYPASS_ROLE})
        if wanted:
            self.stdout.write(
                self.style.WARNING(
                    f"RLS bypass ON: {APP_ROLE} now holds {BYPASS_ROLE}. Set RLS_ENABLED=false before any restart; "
                    "undo with: manage.py rls_bypass off"
                )
            )
        else:
            self.stdout.write(self.style.SUCCESS(f"RLS bypass off: {APP_ROLE} no longer holds {BYPASS_ROLE}."))
