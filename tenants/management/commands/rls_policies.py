"""Rollback scenario 2 without touching least privilege: `rls_policies off|on|status [--reason TEXT]`.

`migrate tenants 0007_us002_users_tenant_not_null` used to be scenario 2. It
also unapplied 0010_app_role_least_privilege (it depends on us004), and during
the rollback the app role could read live staff sessions from django_session
and write `tenants` again (issue 20). `rls_policies off` undoes only US-004:
for every tenant table, the reverse of the EnableTenantRLS operation the
applied migrations hold (policies dropped, RLS not forced, disabled), in one
transaction; no grant changes, no migration is unapplied. `rls_policies on`
runs that same operation forwards again, so the catalog is exactly what the
migrations wrote (`rls_check` passes). Both are audited. While off, `rls_check`
fails on purpose (RLS is off on every tenant table): that is the rollback.
On Citus the coordinator propagates the DDL to every shard.
Exit status: 0 done (or already so), 2 refused (us004 is not applied here).
"""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError
from django.db import connections, transaction
from psycopg import sql

from tenants import platform_audit as audit
from tenants.catalog.drift import read_table_security, rls_operations_applied
from tenants.constants import OWNER_DATABASE
from tenants.registry import tenant_tables


def rls_state(alias: str = OWNER_DATABASE) -> dict[str, bool]:
    """{table: RLS enabled} for every tenant table."""
    with connections[alias].cursor() as cursor:
        return {table: read_table_security(cursor, table).enabled for table in tenant_tables()}


class Command(BaseCommand):
    help = (
        "Rollback scenario 2: drop the tenant policies and turn RLS off (off), put them back exactly as the "
        "migrations wrote them (on), or show the state (status). The app role's privileges never change. "
        "Exit status: 0 done, 2 refused."
    )

    def add_arguments(self, parser):
        parser.add_argument("state", choices=["on", "off", "status"])
        parser.add_argument("--reason", default="", help="why (kept in the audit trail), e.g. an incident id")

    def handle(self, *args, state: str, reason: str, **options):
        current = rls_state()
        if state == "status":
            for table, enabled in current.items():
                self.stdout.write(f"{table:<20} RLS {'on' if enabled else 'OFF'}")
            return
        operations = rls_operations_applied(OWNER_DATABASE)
        missing = [table for table in tenant_tables() if table not in operations]
        if missing:
            raise CommandError(
                f"US-004 is not applied to {', '.join(missing)}: nothing to turn {state} (manage.py migrate first).",
                returncode=2,
            )
        wanted = state == "on"
        tables = [table for table, enabled in current.items() if enabled != wanted]
        if not tables:
            self.stdout.write(f"RLS is already {state} on every tenant table.")
            return
        connection = connections[OWNER_DATABASE]
        with transaction.atomic(using=OWNER_DATABASE), connection.cursor() as cursor:
            for table in tables:
                operation = operations[table]
                for statement in operation.statements() if wanted else operation.reverse_statements():
                    text = (
                        statement.as_string(cursor.connection) if isinstance(statement, sql.Composable) else statement
                    )
                    cursor.execute(text)
            audit.record(f"rls_policies.{state}", reason=reason, detail={"tables": tables})
        if wanted:
            self.stdout.write(
                self.style.SUCCESS(f"RLS and policies back on {len(tables)} table(s): {', '.join(tables)}.")
            )
        else:
            self.stdout.write(
                self.style.WARNING(
                    f"RLS OFF on {', '.join(tables)}: isolation rests on the application (RLS_ENABLED=false). "
                    "The app role's privileges are unchanged. Undo with: manage.py rls_policies on"
                )
            )
