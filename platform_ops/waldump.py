"""The large committed DELETE/UPDATE/TRUNCATE transactions in `pg_waldump` output.

`scripts/pitr.sh find` (`make pitr-find`) fetches the archived WAL of a time
window from the pgBackRest repository, runs `pg_waldump` over it and pipes the
text here. This module only reads text (no Django, no database): it counts the
heap DELETE/UPDATE records per transaction and relation, folds subtransactions
into their top-level transaction (the commit record lists them), keeps the
transactions that committed inside the window and prints the biggest first.
The xid it prints is what `make pitr-restore BEFORE_XID=<xid>` takes: the copy
then stops just before that transaction's commit, losing nothing written before it.

A relation is named by its file (`rel <tablespace>/<database oid>/<filenode>`),
which the caller maps to table names from the live catalog: a table rewritten
since (VACUUM FULL, CLUSTER) shows under its old file number.
"""

from __future__ import annotations

import argparse
import re
import sys
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime

HEAP = re.compile(
    r"^rmgr: Heap2?\s+len .*?tx:\s+(?P<xid>\d+), lsn: \S+, prev \S+, desc: (?P<op>[A-Z_]+)\b(?P<rest>.*)$"
)
COMMIT = re.compile(
    r"^rmgr: Transaction\s+len .*?tx:\s+(?P<xid>\d+), lsn: \S+, prev \S+, desc: COMMIT "
    r"(?P<at>\d{4}-\d\d-\d\d \d\d:\d\d:\d\d(?:\.\d+)?) (?P<zone>[A-Za-z0-9+:-]+)(?P<rest>.*)$"
)
BLOCK = re.compile(r"blkref #0: rel \d+/(?P<db>\d+)/(?P<node>\d+)")
SUBXACTS = re.compile(r"subxacts: (?P<ids>[\d ]+)")
TRUNCATED = re.compile(r"relids (?P<ids>[\d ]+)")
KINDS = {"DELETE": "deleted", "UPDATE": "updated", "HOT_UPDATE": "updated", "TRUNCATE": "truncated"}


@dataclass
class Change:
    xid: int
    committed_at: datetime
    rows: dict[tuple[str, str], int] = field(default_factory=dict)  # (table, deleted|updated|truncated) -> rows

    @property
    def total(self) -> int:
        return sum(self.rows.values())


def parse(lines: Iterable[str], *, db_oid: str, relations: dict[str, str]) -> list[Change]:
    """Committed transactions with their row changes per (table, kind), in commit order."""
    pending: dict[int, dict[tuple[str, str], int]] = defaultdict(lambda: defaultdict(int))
    committed: list[Change] = []
    for line in lines:
        heap = HEAP.match(line)
        if heap:
            kind = KINDS.get(heap["op"])
            if kind is None:
                continue
            if kind == "truncated":
                ids = TRUNCATED.search(heap["rest"])
                for relid in ids["ids"].split() if ids else []:
                    pending[int(heap["xid"])][(relations.get(relid, f"relation {relid}"), kind)] += 1
                continue
            block = BLOCK.search(heap["rest"])
            if block is None or block["db"] != db_oid:
                continue
            table = relations.get(block["node"], f"filenode {block['node']}")
            pending[int(heap["xid"])][(table, kind)] += 1
            continue
        commit = COMMIT.match(line)
        if commit:
            xid = int(commit["xid"])
            rows = pending.pop(xid, {})
            subs = SUBXACTS.search(commit["rest"])
            for sub in subs["ids"].split() if subs else []:
                for key, count in pending.pop(int(sub), {}).items():
                    rows[key] = rows.get(key, 0) + count
            if rows:
                committed.append(Change(xid, _timestamp(commit["at"], commit["zone"]), dict(rows)))
    return committed


def _timestamp(text: str, zone: str) -> datetime:
    value = datetime.fromisoformat(text)
    if zone.upper() in ("UTC", "GMT"):
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)  # another zone name: the local zone of the machine that ran pg_waldump


def select(
    changes: list[Change],
    *,
    since: datetime,
    until: datetime | None = None,
    table: str = "",
    min_rows: int = 1,
) -> list[Change]:
    """In the window, touching `table` (if given), at least `min_rows` rows there; biggest first."""

    def rows_in(change: Change) -> int:
        return sum(n for (t, _), n in change.rows.items() if not table or t == table)

    chosen = [
        c
        for c in changes
        if c.committed_at >= since and (until is None or c.committed_at <= until) and rows_in(c) >= min_rows
    ]
    return sorted(chosen, key=lambda c: (-rows_in(c), c.committed_at))


def _aware(text: str) -> datetime:
    value = datetime.fromisoformat(text.replace(" UTC", "+00:00").replace("Z", "+00:00"))
    if value.tzinfo is None:
        raise argparse.ArgumentTypeError(f"{text!r} has no time zone")
    return value


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db-oid", required=True)
    parser.add_argument("--relations", default="", help="filenode:table,filenode:table,...")
    parser.add_argument("--since", required=True, type=_aware)
    parser.add_argument("--until", type=_aware)
    parser.add_argument("--table", default="")
    parser.add_argument("--min-rows", type=int, default=100)
    args = parser.parse_args(argv)
    relations = dict(pair.split(":", 1) for pair in args.relations.split(",") if ":" in pair)
    changes = select(
        parse(sys.stdin, db_oid=args.db_oid, relations=relations),
        since=args.since,
        until=args.until,
        table=args.table,
        min_rows=args.min_rows,
    )
    if not changes:
        print(
            f"No committed transaction changed {args.min_rows}+ rows{' of ' + args.table if args.table else ''} "
            "in that window."
        )
        return 0
    print(f"{'xid':>10}  {'committed at (UTC)':<26}  rows changed")
    for change in changes:
        what = ", ".join(f"{table} {kind} {n}" for (table, kind), n in sorted(change.rows.items()))
        print(f"{change.xid:>10}  {change.committed_at.strftime('%Y-%m-%d %H:%M:%S.%f'):<26}  {what}")
    first = changes[0]
    print(f"\nTo restore to just before transaction {first.xid}: make pitr-restore BEFORE_XID={first.xid}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
