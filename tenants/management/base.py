"""Shared bits of the management commands: the owner connection, lookups with
errors that say what to do, confirmation prompts, and the exit codes.

Exit codes, the same for the same outcome in every command (docs/runbook.md,
"Exit codes"; each command's --help repeats its own):
0 done (or nothing to do); 1 a finding (a check ran and found something, an
operator answered "no" at a prompt); 2 refused: bad arguments, unknown
tenant, a file that cannot be read or written, a failed tool, no terminal to
confirm on. A refusal changes nothing and is one line on stderr
(`CommandError: ...`), never a traceback.
"""

from __future__ import annotations

import getpass
import os
import sys
from typing import Any

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError
from django.db import DEFAULT_DB_ALIAS

from tenants import services
from tenants.constants import OWNER_DATABASE
from tenants.models import Tenant

EXIT_OK = 0
EXIT_FINDING = 1
EXIT_REFUSED = 2

NO_TERMINAL = "no terminal to confirm on: pass --yes"


def tenant_by_slug(slug: str) -> Tenant:
    """tenants.services.tenant_by_slug as a command error (exit 2) on an unknown slug."""
    try:
        return services.tenant_by_slug(slug)
    except services.TenantNotFound as exc:
        raise CommandError(str(exc), returncode=EXIT_REFUSED) from exc


def refused(what: str, exc: ValidationError) -> CommandError:
    """A service's refusal as a command error (exit 2), its messages kept word for word."""
    return CommandError(f"{what}: {'; '.join(exc.messages)}", returncode=EXIT_REFUSED)


def file_error(exc: OSError) -> CommandError:
    """A file-system failure as one line (exit 2): which path, and why."""
    where = f"{exc.filename}: " if exc.filename else ""
    hint = ""
    if isinstance(exc, (FileExistsError, NotADirectoryError)):
        hint = " (a file stands where the path needs a directory)"
    return CommandError(f"{where}{exc.strerror or exc}{hint}", returncode=EXIT_REFUSED)


def _interactive() -> bool:
    stdin = sys.stdin
    return stdin is not None and not stdin.closed and stdin.isatty()


def ask(prompt: str) -> str:
    """The operator's answer at a terminal; under cron, CI or a pipe there is nobody to ask:
    refused (exit 2) with what to do, never an EOFError."""
    if not _interactive():
        raise CommandError(NO_TERMINAL, returncode=EXIT_REFUSED)
    try:
        return input(prompt)
    except EOFError:
        raise CommandError(NO_TERMINAL, returncode=EXIT_REFUSED) from None


def secret_from(*, given: str | None, env_var: str, from_stdin: bool, prompt: str) -> str:
    """A secret from the first place that has one: the argument (visible in `ps` and shell
    history: kept for compatibility), stdin (`--password-stdin`), an environment variable,
    else a prompt at a terminal (asked twice)."""
    if given:
        return given
    if from_stdin:
        line = sys.stdin.readline().rstrip("\r\n")
        if not line:
            raise CommandError("--password-stdin: nothing on stdin.", returncode=EXIT_REFUSED)
        return line
    if os.environ.get(env_var):
        return os.environ[env_var]
    if not _interactive():
        raise CommandError(
            f"no password: pass --password-stdin, set {env_var}, or run at a terminal to be asked.",
            returncode=EXIT_REFUSED,
        )
    first = getpass.getpass(prompt)
    if first != getpass.getpass("Again: "):
        raise CommandError("The two passwords differ: nothing changed.", returncode=EXIT_REFUSED)
    return first


class OperatorCommand(BaseCommand):
    """A command for operators: a file-system error is one line and exit 2, not a traceback.
    Its `help` ends with "Exit status: ..." (tests/tenants/test_command_errors.py holds that)."""

    def create_parser(self, prog_name: str, subcommand: str, **kwargs: Any):
        parser = super().create_parser(prog_name, subcommand, **kwargs)
        parser.epilog = "Exit codes of every command: docs/runbook.md, 'Exit codes'."
        return parser

    def execute(self, *args: Any, **options: Any):
        try:
            return super().execute(*args, **options)
        except OSError as exc:
            raise file_error(exc) from exc


class RefusalsExit2:
    """For Django's own commands that we extend: their CommandErrors (exit 1 upstream) are
    refusals, so exit 2 like ours."""

    def execute(self, *args: Any, **options: Any):
        try:
            return super().execute(*args, **options)  # type: ignore[misc]
        except CommandError as exc:
            if exc.returncode == EXIT_FINDING:
                raise CommandError(str(exc), returncode=EXIT_REFUSED) from exc
            raise


class OnOwnerConnection:
    """A Django data command (dumpdata, loaddata) on the owner alias by default, as `migrate` is.

    On the app role's connection the router keeps every model away (the app role owns
    nothing and reads a tenant's rows only inside that tenant's context), so the command
    there did nothing and said so as a success. Naming `--database default` is refused.
    """

    command_name = ""

    def add_arguments(self, parser):
        super().add_arguments(parser)  # type: ignore[misc]
        parser.set_defaults(database=OWNER_DATABASE)

    def handle(self, *args, **options):
        if options.get("database") == DEFAULT_DB_ALIAS:
            raise CommandError(
                f"{self.command_name} on the app role's connection ('default') would see no rows: it owns no "
                "table and reads a tenant's rows only inside that tenant's context (RLS). Use the owner "
                "connection (the default: drop --database, or pass --database owner).",
                returncode=EXIT_REFUSED,
            )
        return super().handle(*args, **options)  # type: ignore[misc]
