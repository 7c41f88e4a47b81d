"""Other databases of the cluster, reached with a Django alias's role.

Backups, the benchmark loader and the tests' scratch databases all need "the
owner (or app) role, but on database X": one place builds those connections,
URLs and client-tool command lines from `settings.DATABASES`, so real
environment variables win over `.env` exactly as they do for Django itself.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

import psycopg
from django.conf import settings


class ToolError(Exception):
    """A PostgreSQL client tool that is missing or failed; the message says which and why."""


@dataclass(frozen=True)
class Server:
    host: str
    port: str
    user: str
    password: str

    @classmethod
    def of(cls, alias: str) -> Server:
        db = settings.DATABASES[alias]
        return cls(str(db["HOST"]), str(db["PORT"]), str(db["USER"]), str(db["PASSWORD"]))

    def connect(self, dbname: str, **kwargs) -> psycopg.Connection:
        return psycopg.connect(
            host=self.host, port=self.port, user=self.user, password=self.password, dbname=dbname, **kwargs
        )

    def url(self, dbname: str) -> str:
        return (
            f"postgres://{quote(self.user, safe='')}:{quote(self.password, safe='')}@{self.host}:{self.port}/{dbname}"
        )

    def run(self, tool: str, *args: str) -> subprocess.CompletedProcess:
        """Run pg_dump, pg_restore, ... as this role; ToolError with its stderr when it fails."""
        command = [pg_tool(tool), "-h", self.host, "-p", self.port, "-U", self.user, *args]
        result = subprocess.run(
            command, env={**os.environ, "PGPASSWORD": self.password}, capture_output=True, text=True
        )
        if result.returncode != 0:
            raise ToolError(f"{tool} failed (exit {result.returncode}):\n{result.stderr.strip()}")
        return result


def pg_tool(name: str) -> str:
    """The newest PostgreSQL's binary (Debian keeps them out of PATH)."""
    candidates = sorted(Path("/usr/lib/postgresql").glob(f"*/bin/{name}"), key=lambda p: int(p.parts[-3]))
    found = str(candidates[-1]) if candidates else shutil.which(name)
    if not found:
        raise ToolError(f"{name} not found: install PostgreSQL's client tools (apt-get install postgresql-client)")
    return found
