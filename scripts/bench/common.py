"""What the benchmark scripts share: paths, the two roles' URLs for any database
of the local cluster, manage.py runs against such a database, percentiles."""

from __future__ import annotations

import math
import os
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import environ
import psycopg

import devdb

ROOT = devdb.ROOT
OUT = ROOT / "bench" / "out"
DOCS = ROOT / "docs" / "benchmarks"
PYTHON = str(ROOT / ".venv" / "bin" / "python") if (ROOT / ".venv" / "bin" / "python").exists() else sys.executable
PROTECTED = devdb.PROTECTED

# Real environment variables win over .env, as in alphapulse/settings.py.
environ.Env.read_env(ROOT / ".env", overwrite=False)


def _base(var: str) -> str:
    value = os.environ.get(var)
    if not value:
        raise SystemExit(f"{var} is not set and .env has none: run 'make setup' first")
    return value.rsplit("/", 1)[0]


def app_url(dbname: str) -> str:
    """The app role (DATABASE_URL) on database `dbname`."""
    return f"{_base('DATABASE_URL')}/{dbname}"


def owner_url(dbname: str) -> str:
    """The owner role (MIGRATION_DATABASE_URL) on database `dbname`."""
    return f"{_base('MIGRATION_DATABASE_URL')}/{dbname}"


def check_own_database(dbname: str) -> None:
    """Refuse any database that may hold someone's data: the configured ones, and any with real tenants."""
    configured = {os.environ.get(var, "").rsplit("/", 1)[-1] for var in ("DATABASE_URL", "MIGRATION_DATABASE_URL")}
    if dbname in PROTECTED | configured or dbname.startswith("test_") or _holds_real_tenants(dbname):
        raise SystemExit(f"refusing to use database '{dbname}': the benchmarks only touch databases of their own")


def _holds_real_tenants(dbname: str) -> bool:
    if not database_exists(dbname):
        return False
    with psycopg.connect(owner_url(dbname), autocommit=True) as conn:
        return devdb.holds_real_tenants(conn)


def db_env(dbname: str, **extra: str) -> dict[str, str]:
    return devdb.db_env(app_url(dbname), owner_url(dbname), **extra)


def manage(dbname: str, *args: str, check: bool = True, **env: str) -> subprocess.CompletedProcess:
    result = devdb.manage(PYTHON, db_env(dbname, **env), *args)
    if check and result.returncode != 0:
        raise SystemExit(f"manage.py {' '.join(args)} failed ({result.returncode}):\n{result.stdout}\n{result.stderr}")
    return result


def recreate_database(dbname: str) -> None:
    check_own_database(dbname)
    with psycopg.connect(owner_url("postgres"), autocommit=True) as admin:
        devdb.drop_database(admin, dbname)
        devdb.create_database(admin, dbname)


def drop_database(dbname: str) -> None:
    check_own_database(dbname)
    with psycopg.connect(owner_url("postgres"), autocommit=True) as admin:
        devdb.drop_database(admin, dbname)


def database_exists(dbname: str) -> bool:
    with psycopg.connect(owner_url("postgres"), autocommit=True) as admin:
        return admin.execute("SELECT 1 FROM pg_database WHERE datname = %s", [dbname]).fetchone() is not None


def percentile(values: Sequence[float], q: float) -> float:
    """Linear interpolation between closest ranks (numpy's default), q in [0, 100]."""
    if not values:
        return math.nan
    data = sorted(values)
    pos = (len(data) - 1) * q / 100
    low, high = math.floor(pos), math.ceil(pos)
    return data[low] + (data[high] - data[low]) * (pos - low)


def median(values: Sequence[float]) -> float:
    return percentile(values, 50)


def say(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


def load_average() -> str:
    """The 1, 5 and 15 minute load averages ("?" where /proc does not say)."""
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "?"


def machine() -> dict[str, str]:
    """What the figures were measured on."""
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem_gib = "?"
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                mem_gib = f"{int(line.split()[1]) / 1024 / 1024:.0f}"
    except OSError:
        pass
    return {"cores": str(os.cpu_count()), "cpu": cpu, "memory_gib": mem_gib, "python": sys.version.split()[0]}
