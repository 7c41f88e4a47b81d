"""Count the round trips a connection makes to PostgreSQL, from libpq's own protocol trace.

A round trip is the client sending and then waiting for the server's answer.
libpq's trace (`PQtrace`, exposed by psycopg as `pgconn.trace()`) writes every
protocol message in the order the client handles them, `F` for a message the
client sent and `B` for one it received. The client only waits when it has
sent something and reads the reply, so every run of `F` lines that follows a
`B` line (or opens the trace) is one round trip, whether it carried one
`Query`, one `Parse/Bind/Execute/Sync` group or a whole pipeline of them ended
by one `Sync`. Counting statements would call a pipeline of four statements
four trips; counting `Sync`s would miss simple-protocol `Query` messages; the
direction changes count what the network sees.
"""

from __future__ import annotations

import os
import re
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from django.db.backends.base.base import BaseDatabaseWrapper
from psycopg import pq


@dataclass
class RoundTrips:
    trips: list[list[str]] = field(default_factory=list)  # the messages the client sent, per trip

    @property
    def count(self) -> int:
        return len(self.trips)

    def statements(self) -> list[list[str]]:
        """What each trip carried: the SQL of its Query and Parse messages."""
        out = []
        for trip in self.trips:
            out.append([_sql_of(line) for line in trip if "\tQuery\t" in line or "\tParse\t" in line])
        return out


_QUERY = re.compile(r'\tQuery\t "(.*)"$')
_PARSE = re.compile(r'\tParse\t "[^"]*" "(.*)" \d+')


def _sql_of(line: str) -> str:
    # F <len> Query "SQL"  /  F <len> Parse "statement" "SQL" <n> <types>
    match = _QUERY.search(line) or _PARSE.search(line)
    return match.group(1)[:120] if match else line


def parse_trace(text: str) -> RoundTrips:
    result = RoundTrips()
    received_since_send = True
    for line in text.splitlines():
        direction = line.split("\t", 1)[0]
        if direction == "F":
            if received_since_send:
                result.trips.append([])
                received_since_send = False
            result.trips[-1].append(line)
        elif direction == "B":
            received_since_send = True
    return result


@contextmanager
def count_round_trips(connection: BaseDatabaseWrapper) -> Iterator[RoundTrips]:
    """Trace `connection` (opened first if needed) for the block; fills the result on exit.

    The block must not replace the connection (a reconnect would leave the trace behind):
    the count would then be short, so a test asserts `count > 0` as well.
    """
    connection.ensure_connection()
    pgconn = connection.connection.pgconn
    fd, path = tempfile.mkstemp(prefix="roundtrips-", suffix=".trace")
    result = RoundTrips()
    try:
        pgconn.trace(os.dup(fd))  # libpq owns (and keeps) the duplicate
        pgconn.set_trace_flags(pq.Trace.SUPPRESS_TIMESTAMPS | pq.Trace.REGRESS_MODE)
        try:
            yield result
        finally:
            pgconn.untrace()  # flushes libpq's stream
        with open(path) as trace:
            result.trips = parse_trace(trace.read()).trips
    finally:
        os.close(fd)
        os.unlink(path)
