"""Prototype and measurement: a tenant context that injected SQL cannot forge.

Today any SQL running as the app role can `SET LOCAL app.current_tenant_id =
'<B>'` and read tenant B. The prototype: the application also sets
`app.tenant_signature = HMAC-SHA256(key, tenant | backend pid | transaction
start)`, with a key only the application and a verifier role hold, and the
policy accepts the tenant only through `verified_tenant_id()`, a STABLE
SECURITY DEFINER function owned by the verifier, which reads the key from a
table nobody else may read. Binding the signature to the backend and to
`transaction_timestamp()` makes a signature seen elsewhere (pg_stat_activity
shows other sessions' SET LOCAL literals) useless in any other transaction;
the price is one more round trip per transaction to learn them.

Runs on a scratch database of the local cluster (never the app's): two
copies of one table (TRADES rows in TENANTS tenants, indexed like trades),
one under today's policy shape (the inline NULLIF expression, the form Citus
accepts), one under the verified policy; then, as the app role, interleaved
rounds of list, detail and create transactions, and a forced sequential scan
(the shape where a policy is evaluated per row). Prints p50 per shape and
the ratio verified / plain of adjacent rounds.

    PYTHONPATH=scripts .venv/bin/python -m bench.tenant_signature [--rounds 15] [--per-round 200]
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import os
import secrets
import statistics
import sys
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "alphapulse.settings")

import django  # noqa: E402

django.setup()

from psycopg import errors, sql  # noqa: E402

from tenants.catalog.servers import Server  # noqa: E402
from tenants.constants import APP_ROLE  # noqa: E402

DB = "alphapulse_signature_proto"
TENANTS = 100
TRADES = 400_000
KEY = secrets.token_bytes(32)

SCHEMA = """
CREATE EXTENSION IF NOT EXISTS pgcrypto;
CREATE TABLE signing_key (key bytea NOT NULL);
REVOKE ALL ON signing_key FROM PUBLIC;
CREATE FUNCTION verified_tenant_id() RETURNS uuid
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    tenant text := NULLIF(current_setting('app.current_tenant_id', true), '');
    signature text := current_setting('app.tenant_signature', true);
    message text;
BEGIN
    IF tenant IS NULL OR signature IS NULL THEN
        RETURN NULL;
    END IF;
    message := tenant || '|' || pg_backend_pid() || '|' || extract(epoch FROM transaction_timestamp())::numeric;
    IF encode(hmac(convert_to(message, 'UTF8'), (SELECT key FROM signing_key), 'sha256'), 'hex') = signature THEN
        RETURN tenant::uuid;
    END IF;
    RETURN NULL;
END $$;
REVOKE ALL ON FUNCTION verified_tenant_id() FROM PUBLIC;
"""

TABLE = """
CREATE TABLE {t} (
    id uuid PRIMARY KEY, tenant_id uuid NOT NULL, symbol text NOT NULL, side text NOT NULL,
    quantity numeric NOT NULL, price numeric NOT NULL, created_at timestamptz NOT NULL
);
CREATE INDEX ON {t} (tenant_id, created_at DESC);
ALTER TABLE {t} ENABLE ROW LEVEL SECURITY;
ALTER TABLE {t} FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation_policy ON {t} USING (tenant_id = {expr}) WITH CHECK (tenant_id = {expr});
"""
PLAIN = sql.SQL("NULLIF(current_setting('app.current_tenant_id', true), '')::uuid")
VERIFIED = sql.SQL("verified_tenant_id()")


def build(owner_server: Server) -> tuple[list[uuid.UUID], dict[uuid.UUID, uuid.UUID]]:
    with owner_server.connect("postgres", autocommit=True) as admin:
        admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(DB)))
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(DB)))
    tenants = [uuid.uuid4() for _ in range(TENANTS)]
    with owner_server.connect(DB, autocommit=True) as owner:
        owner.execute(SCHEMA)
        owner.execute("INSERT INTO signing_key VALUES (%s)", [KEY])
        owner.execute(sql.SQL("GRANT EXECUTE ON FUNCTION verified_tenant_id() TO {}").format(sql.Identifier(APP_ROLE)))
        for name, expr in (("trades_plain", PLAIN), ("trades_verified", VERIFIED)):
            t = sql.Identifier(name)
            owner.execute(sql.SQL(TABLE).format(t=t, expr=expr))
            owner.execute(sql.SQL("GRANT SELECT, INSERT ON {} TO {}").format(t, sql.Identifier(APP_ROLE)))
        owner.execute("SET row_security = off")  # the owner, below FORCE: the bulk load must not be filtered
        owner.execute("ALTER TABLE trades_plain NO FORCE ROW LEVEL SECURITY")
        owner.execute("ALTER TABLE trades_verified NO FORCE ROW LEVEL SECURITY")
        owner.execute(
            "INSERT INTO trades_plain SELECT gen_random_uuid(), (%s::uuid[])[1 + (i %% %s)], 'AAPL', "
            "CASE WHEN i %% 2 = 0 THEN 'buy' ELSE 'sell' END, 1 + i %% 100, 10 + i %% 500, "
            "now() - make_interval(secs => i) FROM generate_series(1, %s) i",
            [tenants, TENANTS, TRADES],
        )
        owner.execute("INSERT INTO trades_verified SELECT * FROM trades_plain")  # the same rows, the same ids
        row_of = dict(owner.execute("SELECT DISTINCT ON (tenant_id) tenant_id, id FROM trades_plain").fetchall())
        owner.execute("ALTER TABLE trades_plain FORCE ROW LEVEL SECURITY")
        owner.execute("ALTER TABLE trades_verified FORCE ROW LEVEL SECURITY")
        owner.execute("VACUUM ANALYZE trades_plain")
        owner.execute("VACUUM ANALYZE trades_verified")
    return tenants, row_of


def signature(tenant: uuid.UUID, pid: int, started: str) -> str:
    return hmac.new(KEY, f"{tenant}|{pid}|{started}".encode(), hashlib.sha256).hexdigest()


SHAPES = {
    "list": "SELECT * FROM {t} ORDER BY created_at DESC LIMIT 50",
    "detail": "SELECT * FROM {t} WHERE id = %(id)s",
    "create": "INSERT INTO {t} VALUES (gen_random_uuid(), %(tenant)s, 'MSFT', 'buy', 1, 2, now())",
    "seqscan": "SELECT count(*) FROM {t} WHERE price > 400",
}


def transaction(conn, table: str, shape: str, tenant: uuid.UUID, row_id: uuid.UUID, verified: bool) -> float:
    t = sql.Identifier(table)
    started = time.perf_counter()
    with conn.transaction():
        if shape == "seqscan":
            conn.execute("SET LOCAL enable_indexscan = off")
            conn.execute("SET LOCAL enable_bitmapscan = off")
        if verified:
            # The extra round trip: what the signature is bound to.
            pid, xact_start = conn.execute(
                "SELECT pg_backend_pid(), extract(epoch FROM transaction_timestamp())::numeric::text"
            ).fetchone()
        conn.execute(sql.SQL("SET LOCAL app.current_tenant_id = {}").format(sql.Literal(str(tenant))))
        if verified:
            conn.execute(
                sql.SQL("SET LOCAL app.tenant_signature = {}").format(sql.Literal(signature(tenant, pid, xact_start)))
            )
        cursor = conn.execute(sql.SQL(SHAPES[shape]).format(t=t), {"id": row_id, "tenant": tenant})
        if cursor.description:
            cursor.fetchall()
    return (time.perf_counter() - started) * 1000


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--per-round", type=int, default=200)
    args = parser.parse_args()
    owner_server, app_server = Server.of("owner"), Server.of("default")
    print(f"building {DB}: {TRADES} rows x 2 tables, {TENANTS} tenants ...", flush=True)
    tenants, row_of = build(owner_server)
    samples: dict[tuple[str, bool], list[float]] = {}
    ratios: dict[str, list[float]] = {s: [] for s in SHAPES}
    with app_server.connect(DB, autocommit=True) as app:
        correctness(app, tenants)
        for round_number in range(args.rounds):
            for shape in SHAPES:
                per = args.per_round if shape != "seqscan" else 3  # ~6 s each verified
                round_p50 = {}
                # Alternate which variant goes first, so drift does not favour one.
                for verified in (False, True) if round_number % 2 == 0 else (True, False):
                    table = "trades_verified" if verified else "trades_plain"
                    times = []
                    for i in range(per):
                        tenant = tenants[i % TENANTS]
                        times.append(transaction(app, table, shape, tenant, row_of[tenant], verified))
                    samples.setdefault((shape, verified), []).extend(times)
                    round_p50[verified] = statistics.median(times)
                ratios[shape].append(round_p50[True] / round_p50[False])
    print(f"\n{'shape':<9} {'plain p50 ms':>13} {'verified p50 ms':>16} {'ratio (median of rounds)':>25}")
    for shape in SHAPES:
        plain, verified = statistics.median(samples[(shape, False)]), statistics.median(samples[(shape, True)])
        spread = sorted(ratios[shape])
        print(
            f"{shape:<9} {plain:>13.3f} {verified:>16.3f} {statistics.median(spread):>12.3f} "
            f"(range {spread[0]:.3f}-{spread[-1]:.3f})"
        )
    with owner_server.connect("postgres", autocommit=True) as admin:
        admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(DB)))


def correctness(app, tenants: list[uuid.UUID]) -> None:
    """The properties that matter before any timing: forged, replayed and unsigned contexts see nothing."""
    a, b = tenants[0], tenants[1]
    with app.transaction():
        pid, xact = app.execute(
            "SELECT pg_backend_pid(), extract(epoch FROM transaction_timestamp())::numeric::text"
        ).fetchone()
        app.execute(sql.SQL("SET LOCAL app.current_tenant_id = {}").format(sql.Literal(str(a))))
        app.execute(sql.SQL("SET LOCAL app.tenant_signature = {}").format(sql.Literal(signature(a, pid, xact))))
        own = app.execute("SELECT count(*) FROM trades_verified").fetchone()[0]
        replay_sig = signature(a, pid, xact)
        # Injected SQL in A's transaction switches the tenant but cannot sign it.
        app.execute(sql.SQL("SET LOCAL app.current_tenant_id = {}").format(sql.Literal(str(b))))
        forged = app.execute("SELECT count(*) FROM trades_verified").fetchone()[0]
    with app.transaction():  # a later transaction replays A's signature
        app.execute(sql.SQL("SET LOCAL app.current_tenant_id = {}").format(sql.Literal(str(a))))
        app.execute(sql.SQL("SET LOCAL app.tenant_signature = {}").format(sql.Literal(replay_sig)))
        replayed = app.execute("SELECT count(*) FROM trades_verified").fetchone()[0]
    with app.transaction():
        app.execute(sql.SQL("SET LOCAL app.current_tenant_id = {}").format(sql.Literal(str(b))))
        unsigned = app.execute("SELECT count(*) FROM trades_verified").fetchone()[0]
    key = None
    try:
        with app.transaction():
            key = app.execute("SELECT key FROM signing_key").fetchone()
    except errors.InsufficientPrivilege as exc:  # the expected outcome
        key = f"refused: {exc.__class__.__name__}"
    print(
        f"correctness: own tenant {own} rows; forged tenant {forged}; replayed signature {replayed}; "
        f"unsigned {unsigned}; app role reads the key: {key}"
    )
    assert own == TRADES // TENANTS and forged == replayed == unsigned == 0 and str(key).startswith("refused")


if __name__ == "__main__":
    main()
