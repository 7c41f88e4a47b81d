"""Django's PostgreSQL backend, except that nobody waits for a read-only transaction's COMMIT.

A transaction opened READ ONLY (every GET, HEAD and OPTIONS of the API:
tenants.database.tenant_setting.open_tenant_transaction) has written nothing
that could be lost: its COMMIT only ends it. Waiting for the COMMIT's answer
still costs the request a round trip to PostgreSQL before its response can
go out (0.3-0.4 ms on the bench machine, docs/benchmarks/README.md). So
when tenants.context.tenant_transaction ends such a transaction, it asks for
`commit_without_waiting()`: the COMMIT is sent and flushed at once, and its
answer is read later, at the connection's next use or when the request has
finished (`read_commit_answers`, on Django's request_finished, after the
response went out).

PostgreSQL ends the transaction as soon as the COMMIT arrives, whether or
not anybody reads the answer: the connection never sits idle in a
transaction (no snapshot kept, no lock held against a migration). If the
answer turns out to be an error (the server went away), nothing written is
lost, the answer already given stays true, and the connection is closed so
the next request starts on a new one.

A transaction that may have written is committed as always, and waited
for: its COMMIT failing is the client's 503 (tenants.http.middleware).
Nor is a COMMIT left unanswered when on_commit hooks are waiting for it.
"""

from __future__ import annotations

import logging
from typing import Any

from django.core.signals import request_finished
from django.db import DatabaseError, connections
from django.db.backends.postgresql import base
from psycopg import errors, generators, pq

logger = logging.getLogger(__name__)

COMMIT = b"COMMIT"


class DatabaseWrapper(base.DatabaseWrapper):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.next_commit_unawaited = False
        self.commit_unanswered = False

    def commit_without_waiting(self) -> None:
        """The transaction being ended wrote nothing: its COMMIT need not be waited for."""
        self.next_commit_unawaited = True

    def read_commit_answer(self) -> None:
        """Read the answer of a COMMIT sent without waiting, if one is outstanding; raise its error."""
        if not self.commit_unanswered:
            return
        self.commit_unanswered = False
        raw = self.connection
        if raw is None or raw.closed:
            return
        with self.wrap_database_errors:
            for result in raw.wait(generators.fetch_many(raw.pgconn)):
                if result.status == pq.ExecStatus.FATAL_ERROR:
                    raise errors.error_from_result(result, encoding=raw.pgconn._encoding)

    def _commit(self) -> None:
        unawaited, self.next_commit_unawaited = self.next_commit_unawaited, False
        if unawaited and self.connection is not None and not self.run_on_commit and not self.pool:  # type: ignore[attr-defined]
            raw = self.connection
            with self.wrap_database_errors:
                raw.pgconn.send_query(COMMIT)
                raw.wait(generators.send(raw.pgconn))
            self.commit_unanswered = True
            return
        self.read_commit_answer()
        super()._commit()  # type: ignore[misc]

    def _rollback(self) -> None:
        self.next_commit_unawaited = False
        self.read_commit_answer()
        super()._rollback()  # type: ignore[misc]

    def _set_autocommit(self, autocommit: bool) -> None:
        # Right after a COMMIT sent without waiting, Django turns autocommit
        # back on; psycopg is already in autocommit there (the transaction was
        # opened with our own BEGIN), and asking it again would make it wait.
        if self.commit_unanswered and autocommit and self.connection.autocommit:
            return
        self.read_commit_answer()
        super()._set_autocommit(autocommit)  # type: ignore[misc]

    def create_cursor(self, name: str | None = None) -> Any:
        self.read_commit_answer()
        return super().create_cursor(name)

    def is_usable(self) -> bool:
        try:
            self.read_commit_answer()
        except DatabaseError:
            return False
        return super().is_usable()

    def _close(self) -> None:
        try:
            self.read_commit_answer()  # a pool takes back only an idle connection
        except DatabaseError:
            pass
        super()._close()  # type: ignore[misc]


def read_commit_answers(**kwargs: Any) -> None:
    """At the end of a request (after its response went out): read every COMMIT left unanswered.

    An error there loses nothing (the transaction was read-only); the connection is closed."""
    for connection in connections.all(initialized_only=True):
        if not isinstance(connection, DatabaseWrapper) or not connection.commit_unanswered:
            continue
        try:
            connection.read_commit_answer()
        except DatabaseError as exc:
            logger.warning("read-only COMMIT failed after the response; closing the connection: %s", exc)
            connection.close()


request_finished.connect(read_commit_answers, dispatch_uid="tenants.database.read_commit_answers")
