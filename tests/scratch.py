"""Scratch databases for tests that need committed data or real `manage.py`
runs (migrations, backups): created by the owner role, dropped afterwards."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg
import pytest
from django.conf import settings
from psycopg import sql

ROOT = Path(__file__).resolve().parents[1]


def url(alias: str, dbname: str) -> str:
    d = settings.DATABASES[alias]
    return f"postgres://{d['USER']}:{d['PASSWORD']}@{d['HOST']}:{d['PORT']}/{dbname}"


def connect(alias: str, dbname: str) -> psycopg.Connection:
    d = settings.DATABASES[alias]
    return psycopg.connect(
        host=d["HOST"], port=d["PORT"], user=d["USER"], password=d["PASSWORD"], dbname=dbname, autocommit=True
    )


def drop_database(name: str) -> None:
    with connect("owner", "postgres") as admin:
        admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


@contextmanager
def scratch_database(prefix: str = "alphapulse_scratch") -> Iterator[str]:
    name = f"{prefix}_{uuid.uuid4().hex[:8]}"
    with connect("owner", "postgres") as admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        yield name
    finally:
        drop_database(name)


def db_env(dbname: str, **extra: str) -> dict[str, str]:
    return {
        **os.environ,
        "DATABASE_URL": url("default", dbname),
        "MIGRATION_DATABASE_URL": url("owner", dbname),
        **extra,
    }


def manage(dbname: str, *args: str, check: bool = True, **env: str) -> subprocess.CompletedProcess:
    result = subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=db_env(dbname, **env),
        capture_output=True,
        text=True,
        timeout=300,
    )
    if check and result.returncode != 0:
        pytest.fail(f"manage.py {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}")
    return result


def script(path: str, check: bool = True, **env: str) -> subprocess.CompletedProcess:
    result = subprocess.run(
        ["bash", path], cwd=ROOT, env={**os.environ, **env}, capture_output=True, text=True, timeout=300
    )
    if check and result.returncode != 0:
        pytest.fail(f"{path} failed:\n{result.stdout}\n{result.stderr}")
    return result
