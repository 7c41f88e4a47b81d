"""`manage.py query_stats snapshot FILE` / `manage.py query_stats compare FILE`.

Before/after evidence for a deploy, a migration or a benchmark, from
pg_stat_statements (loaded by scripts/db.sh through shared_preload_libraries
and created in template1, so every database of the local cluster has it).

- `snapshot FILE` saves, per normalized query of the current database: calls,
  mean, max and total execution time (ms), and rows, as JSON.
- `compare FILE` takes a fresh snapshot and prints, for every query that ran
  since FILE: calls in between, mean before, mean in between, change, max.
  Flags `SLOW` when max > --max-ms (500), `REGRESSED` when the mean in
  between is more than --slower-pct (25 %) above the mean before (only with
  at least --min-calls calls in between, so one cold call cannot flag).
  `--fail-on-flag` exits 1 when anything is flagged.

Runs on the `owner` connection by default: the app role may not read
pg_stat_statements at all (it would show every tenant's statements), while
the owner holds pg_read_all_stats (scripts/db.sh) and sees the API's queries.
Without pg_read_all_stats other roles' entries are counted as hidden.
max is kept since the entry was created or last reset, so it can predate FILE.
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path

from django.core.management.base import CommandError
from django.db import DatabaseError, connections

from tenants.management.base import OperatorCommand

EXTENSION_SQL = "SELECT extversion FROM pg_extension WHERE extname = 'pg_stat_statements'"
STATEMENTS_SQL = (
    "SELECT s.userid::regrole::text, s.queryid, s.toplevel, s.query, s.calls, s.total_exec_time, "
    "s.mean_exec_time, s.max_exec_time, s.rows "
    "FROM pg_stat_statements s WHERE s.dbid = (SELECT oid FROM pg_database WHERE datname = current_database())"
)
HEADER = f"{'calls':>9} {'mean before ms':>15} {'mean after ms':>14} {'change':>8} {'max ms':>10}  {'flags':<18} query"


@dataclass
class QueryStat:
    key: str
    role: str
    query: str
    calls: int
    total_ms: float
    mean_ms: float
    max_ms: float
    rows: int


@dataclass
class Change:
    stat: QueryStat
    calls: int
    mean_before: float | None
    mean_after: float
    flags: list[str]

    @property
    def change_pct(self) -> float | None:
        if not self.mean_before:
            return None
        return (self.mean_after / self.mean_before - 1) * 100


def compare_stats(
    before: dict[str, QueryStat],
    after: dict[str, QueryStat],
    *,
    max_ms: float = 500.0,
    slower_pct: float = 25.0,
    min_calls: int = 10,
) -> list[Change]:
    """Every query with calls since `before`, flagged; the most time spent in between first."""
    changes = []
    for key, now in after.items():
        then = before.get(key)
        calls = now.calls - (then.calls if then else 0)
        if calls <= 0:
            continue
        total = now.total_ms - (then.total_ms if then else 0.0)
        mean_after = total / calls
        mean_before = then.mean_ms if then and then.calls else None
        flags = []
        if now.max_ms > max_ms:
            flags.append("SLOW")
        if mean_before and calls >= min_calls and mean_after > mean_before * (1 + slower_pct / 100):
            flags.append("REGRESSED")
        changes.append(Change(now, calls, mean_before, mean_after, flags))
    changes.sort(key=lambda c: c.calls * c.mean_after, reverse=True)
    return changes


def one_line(query: str, width: int) -> str:
    """The query on one line; a long one keeps its head and its tail (WHERE, ORDER BY, LIMIT tell queries apart)."""
    text = re.sub(r"\s+", " ", query).strip()
    if len(text) <= width:
        return text
    head = max(10, width // 3)
    return f"{text[:head]} ... {text[-(width - head - 5) :]}"


class Command(OperatorCommand):
    help = (
        "Save pg_stat_statements to FILE (snapshot), or compare the current figures with FILE (compare). "
        "Exit status: 0 done, 1 queries flagged (with --fail-on-flag), 2 bad arguments or an unreadable FILE."
    )

    def add_arguments(self, parser):
        parser.add_argument("action", choices=["snapshot", "compare"])
        parser.add_argument("file", type=Path)
        parser.add_argument("--database", default="owner", help="connection alias (default: the owner role)")
        parser.add_argument("--max-ms", type=float, default=500.0, help="flag SLOW above this max (ms)")
        parser.add_argument("--slower-pct", type=float, default=25.0, help="flag REGRESSED above this mean increase")
        parser.add_argument("--min-calls", type=int, default=10, help="calls in between needed to flag REGRESSED")
        parser.add_argument("--width", type=int, default=110, help="characters of query text shown")
        parser.add_argument("--fail-on-flag", action="store_true", help="exit 1 when a query is flagged")

    def handle(self, *args, action: str, file: Path, database: str, **options):
        if database not in connections:
            raise CommandError(f"Unknown database alias '{database}' (use default or owner).", returncode=2)
        if action == "snapshot":
            self._snapshot(file, database)
        else:
            self._compare(file, database, options)

    # -- reading pg_stat_statements ------------------------------------------------

    def _read(self, database: str) -> tuple[dict, dict[str, QueryStat]]:
        connection = connections[database]
        try:
            with connection.cursor() as cursor:
                cursor.execute(EXTENSION_SQL)
                row = cursor.fetchone()
                cursor.execute("SELECT current_database(), current_user, current_setting('server_version')")
                dbname, role, version = cursor.fetchone()
                if row is None:
                    raise CommandError(
                        f"pg_stat_statements is not installed in database '{dbname}'. As the owner run "
                        "'CREATE EXTENSION pg_stat_statements;' there (scripts/db.sh creates it in template1, "
                        "so databases created afterwards have it).",
                        returncode=2,
                    )
                cursor.execute(STATEMENTS_SQL)
                rows = cursor.fetchall()
        except DatabaseError as exc:
            raise CommandError(
                f"Cannot read pg_stat_statements: {exc}. It needs shared_preload_libraries = 'pg_stat_statements' "
                "in postgresql.conf (scripts/db.sh sets it) and a server restart.",
                returncode=2,
            ) from exc
        stats: dict[str, QueryStat] = {}
        hidden = 0
        for who, queryid, toplevel, query, calls, total, mean, high, nrows in rows:
            if queryid is None:
                hidden += 1
                continue
            key = f"{who}:{queryid}:{'top' if toplevel else 'nested'}"
            stats[key] = QueryStat(key, who, query, calls, total, mean, high, nrows)
        meta = {
            "taken_at": datetime.now(UTC).isoformat(),
            "database": dbname,
            "role": role,
            "server_version": version,
            "extension_version": row[0],
            "hidden_entries": hidden,
        }
        return meta, stats

    def _snapshot(self, file: Path, database: str) -> None:
        meta, stats = self._read(database)
        file.parent.mkdir(parents=True, exist_ok=True)
        file.write_text(json.dumps({**meta, "queries": [asdict(s) for s in stats.values()]}, indent=1))
        self.stdout.write(
            f"saved {len(stats)} queries of database {meta['database']} (as {meta['role']}) to {file}"
            + (f"; {meta['hidden_entries']} entries of other roles hidden" if meta["hidden_entries"] else "")
        )

    def _load(self, file: Path) -> tuple[dict, dict[str, QueryStat]]:
        if not file.is_file():
            raise CommandError(
                f"No snapshot at {file}: take one first with 'manage.py query_stats snapshot {file}'.",
                returncode=2,
            )
        try:
            document = json.loads(file.read_text())
            stats = {q["key"]: QueryStat(**q) for q in document["queries"]}
        except (ValueError, KeyError, TypeError) as exc:
            raise CommandError(f"{file} is not a query_stats snapshot: {exc}", returncode=2) from exc
        return document, stats

    def _compare(self, file: Path, database: str, options: dict) -> None:
        then_meta, before = self._load(file)
        meta, after = self._read(database)
        if then_meta.get("database") != meta["database"]:
            self.stderr.write(f"note: {file} was taken on database {then_meta.get('database')}, not {meta['database']}")
        changes = compare_stats(
            before,
            after,
            max_ms=options["max_ms"],
            slower_pct=options["slower_pct"],
            min_calls=options["min_calls"],
        )
        self.stdout.write(
            f"pg_stat_statements on {meta['database']} as {meta['role']}: {then_meta.get('taken_at')} -> "
            f"{meta['taken_at']}; {len(changes)} queries ran in between "
            f"(SLOW: max > {options['max_ms']:g} ms; REGRESSED: mean > +{options['slower_pct']:g} %)"
        )
        self.stdout.write(HEADER)
        for c in changes:
            before_text = f"{c.mean_before:.3f}" if c.mean_before is not None else "new"
            pct = c.change_pct
            change_text = f"{pct:+.0f}%" if pct is not None else "-"
            self.stdout.write(
                f"{c.calls:>9} {before_text:>15} {c.mean_after:>14.3f} {change_text:>8} {c.stat.max_ms:>10.2f}  "
                f"{','.join(c.flags) or '-':<18} {one_line(c.stat.query, options['width'])}"
            )
        flagged = [c for c in changes if c.flags]
        summary = f"{len(flagged)} flagged" if flagged else "nothing flagged"
        self.stdout.write(summary)
        if flagged and options["fail_on_flag"]:
            raise CommandError(f"{len(flagged)} queries flagged (SLOW or REGRESSED)", returncode=1)
