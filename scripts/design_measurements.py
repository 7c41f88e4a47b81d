"""Reproduce the facts docs/design.md rests on, on a throw-away database.

    .venv/bin/python scripts/design_measurements.py [--rows 200000]

Creates `alphapulse_design_<random>` as the owner role, runs each experiment
as the app role (no superuser, no BYPASSRLS), prints what happened, and
drops the database. Timings are medians of interleaved runs in this one
process: compare them with each other, not with another machine.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
import uuid
from pathlib import Path

import django

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "alphapulse.settings")
django.setup()

import psycopg  # noqa: E402
from psycopg import sql  # noqa: E402

from tenants.catalog.servers import Server  # noqa: E402
from tenants.constants import APP_ROLE, BYPASS_ROLE, TENANT_SETTING  # noqa: E402

TENANT = sql.SQL("NULLIF(current_setting({}, true), '')::uuid").format(sql.Literal(TENANT_SETTING))
A, B = uuid.UUID(int=1), uuid.UUID(int=2)


def as_tenant(conn: psycopg.Connection, tenant: uuid.UUID) -> None:
    conn.execute(
        sql.SQL("SET LOCAL {} = {}").format(sql.Identifier(*TENANT_SETTING.split(".")), sql.Literal(str(tenant)))
    )


def say(title: str, result: object) -> None:
    print(f"- {title}: {result}")


def empty_after_local(app: psycopg.Connection) -> None:
    with app.transaction():
        as_tenant(app, A)
    value = app.execute("SELECT current_setting(%s, true)", [TENANT_SETTING]).fetchone()[0]
    say("after a SET LOCAL's transaction ends, current_setting(..., true) reads", repr(value))
    try:
        with app.transaction():
            app.execute("SELECT count(*) FROM bare_cast")
        say("policy with a bare ::uuid cast, next query", "no error")
    except psycopg.Error as exc:
        say("policy with a bare ::uuid cast, next query", f"{type(exc).__name__}: {exc.diag.message_primary}")
    with app.transaction():
        count = app.execute("SELECT count(*) FROM tenant_rows").fetchone()[0]
    say("policy with NULLIF(...)::uuid, next query", f"{count} rows, no error")


def session_vs_local(app: psycopg.Connection) -> None:
    setting = sql.Identifier(*TENANT_SETTING.split("."))
    app.execute("SELECT set_config(%s, %s, false)", [TENANT_SETTING, str(A)])  # request 1, session-level
    leaked = app.execute("SELECT count(*) FROM parent").fetchone()[0]  # request 2, no tenant of its own
    say("session-level setting, next request on the same connection sees", f"{leaked} of tenant A's rows")
    app.execute(sql.SQL("RESET {}").format(setting))
    with app.transaction():
        as_tenant(app, A)  # request 1, transaction-local
    kept = app.execute("SELECT count(*) FROM parent").fetchone()[0]
    say("SET LOCAL, next request on the same connection sees", f"{kept} rows")


def fk_past_rls(app: psycopg.Connection) -> None:
    for table in ("child_plain_fk", "child_composite_fk"):
        try:
            with app.transaction():
                as_tenant(app, A)
                visible = app.execute("SELECT count(*) FROM parent WHERE id = %s", [B]).fetchone()[0]
                app.execute(
                    sql.SQL("INSERT INTO {} (tenant_id, parent_id) VALUES (%s, %s)").format(sql.Identifier(table)),
                    [A, B],
                )
            say(f"tenant A inserts into {table} pointing at B's row (A sees {visible} such rows)", "ACCEPTED")
        except psycopg.Error as exc:
            say(f"tenant A inserts into {table} pointing at B's row", f"refused: {exc.diag.message_primary}")


def old_code_under_rls(app: psycopg.Connection) -> None:
    with app.transaction():
        count = app.execute("SELECT count(*) FROM tenant_rows").fetchone()[0]
    say("tenant-unaware code (no setting) reads", f"{count} rows, no error")
    try:
        with app.transaction():
            app.execute("INSERT INTO tenant_rows (tenant_id, created_at) VALUES (%s, now())", [A])
        say("tenant-unaware code inserts", "accepted")
    except psycopg.Error as exc:
        say("tenant-unaware code inserts", f"refused: {exc.diag.message_primary}")


def timed(app: psycopg.Connection, table: str) -> float:
    query = sql.SQL("SELECT * FROM {} ORDER BY created_at DESC LIMIT 50").format(sql.Identifier(table))
    with app.transaction():
        as_tenant(app, A)
        started = time.perf_counter()
        app.execute(query).fetchall()
        return (time.perf_counter() - started) * 1000


def policy_shape(app: psycopg.Connection, rounds: int) -> None:
    samples: dict[str, list[float]] = {"tenant_rows": [], "or_bypass_rows": []}
    for _ in range(rounds):  # interleaved, so drift hits both alike
        for table, runs in samples.items():
            runs.append(timed(app, table))
    separate, with_or = (statistics.median(samples[t]) for t in ("tenant_rows", "or_bypass_rows"))
    say("50-row page, separate bypass policy, median", f"{separate:.2f} ms")
    say(
        "50-row page, bypass as an OR inside the tenant policy, median", f"{with_or:.2f} ms ({with_or / separate:.0f}x)"
    )
    with app.transaction():
        as_tenant(app, A)
        for table in samples:
            plan = app.execute(
                sql.SQL("EXPLAIN SELECT * FROM {} ORDER BY created_at DESC LIMIT 50").format(sql.Identifier(table))
            ).fetchall()
            say(f"plan for {table}", " / ".join(line[0].strip() for line in plan[:3]))


SCHEMA = [
    "CREATE TABLE tenant_rows (id bigserial PRIMARY KEY, tenant_id uuid NOT NULL, created_at timestamptz NOT NULL)",
    "CREATE TABLE or_bypass_rows (LIKE tenant_rows INCLUDING ALL)",
    "CREATE TABLE bare_cast (tenant_id uuid NOT NULL)",
    "CREATE TABLE parent (tenant_id uuid NOT NULL, id uuid PRIMARY KEY, UNIQUE (tenant_id, id))",
    "CREATE TABLE child_plain_fk (tenant_id uuid NOT NULL, parent_id uuid REFERENCES parent (id))",
    "CREATE TABLE child_composite_fk (tenant_id uuid NOT NULL, parent_id uuid, "
    "FOREIGN KEY (tenant_id, parent_id) REFERENCES parent (tenant_id, id))",
]


def build(owner: psycopg.Connection, rows: int) -> None:
    for statement in SCHEMA:
        owner.execute(statement)
    owner.execute(
        "INSERT INTO tenant_rows (tenant_id, created_at) SELECT ('00000000-0000-0000-0000-' || "
        "lpad((1 + n %% 100)::text, 12, '0'))::uuid, now() - n * interval '1 second' FROM generate_series(1, %s) n",
        [rows],
    )
    owner.execute("INSERT INTO or_bypass_rows SELECT * FROM tenant_rows")
    owner.execute("INSERT INTO parent VALUES (%s, %s), (%s, %s)", [A, A, B, B])
    app, bypass = sql.Identifier(APP_ROLE), sql.Identifier(BYPASS_ROLE)
    for table in ("tenant_rows", "or_bypass_rows", "bare_cast", "parent", "child_plain_fk", "child_composite_fk"):
        t = sql.Identifier(table)
        owner.execute(sql.SQL("ALTER TABLE {} ENABLE ROW LEVEL SECURITY").format(t))
        owner.execute(sql.SQL("GRANT SELECT, INSERT ON {} TO {}").format(t, app))
    owner.execute(sql.SQL("GRANT USAGE ON ALL SEQUENCES IN SCHEMA public TO {}").format(app))
    owner.execute("CREATE INDEX ON tenant_rows (tenant_id, created_at DESC)")
    owner.execute("CREATE INDEX ON or_bypass_rows (tenant_id, created_at DESC)")
    for table in ("tenant_rows", "parent", "child_plain_fk", "child_composite_fk"):
        owner.execute(
            sql.SQL("CREATE POLICY p ON {} USING (tenant_id = {}) WITH CHECK (tenant_id = {})").format(
                sql.Identifier(table), TENANT, TENANT
            )
        )
        owner.execute(sql.SQL("CREATE POLICY b ON {} TO {} USING (true)").format(sql.Identifier(table), bypass))
    owner.execute(
        sql.SQL("CREATE POLICY p ON or_bypass_rows USING (tenant_id = {} OR pg_has_role({}, 'member'))").format(
            TENANT, sql.Literal(BYPASS_ROLE)
        )
    )
    owner.execute(
        sql.SQL("CREATE POLICY p ON bare_cast USING (tenant_id = current_setting({}, true)::uuid)").format(
            sql.Literal(TENANT_SETTING)
        )
    )
    owner.execute("ANALYZE")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--rounds", type=int, default=30)
    options = parser.parse_args()
    owner_server, app_server = Server.of("owner"), Server.of("default")
    name = f"alphapulse_design_{uuid.uuid4().hex[:8]}"
    with owner_server.connect("postgres", autocommit=True) as admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        with owner_server.connect(name, autocommit=True) as owner:
            build(owner, options.rows)
        with app_server.connect(name, autocommit=True) as app:
            print(f"PostgreSQL {app.info.server_version}, {options.rows:,} rows in 100 tenants, as {APP_ROLE}")
            session_vs_local(app)
            empty_after_local(app)
            fk_past_rls(app)
            old_code_under_rls(app)
            policy_shape(app, options.rounds)
    finally:
        with owner_server.connect("postgres", autocommit=True) as admin:
            admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


if __name__ == "__main__":
    main()
