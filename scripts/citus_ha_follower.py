"""Keeps the coordinator's pg_dist_node pointing at the primary that pg_auto_failover elected.

Run by scripts/citus-ha.sh (one process per protected worker group):
    citus_ha_follower.py --monitor URL --coordinator URL --formation NAME --node HOST:PORT
Every half second it asks the monitor for the formation's primary; when the coordinator's
pg_dist_node names another address for that worker, it runs citus_update_node (Citus then
syncs the change to the other nodes itself). Until that call the worker's tenants get 503s
even though the standby already accepts writes, so this is the one step a failover needs.
Errors (monitor or coordinator briefly unreachable) are logged and retried, never fatal.
"""

from __future__ import annotations

import argparse
import sys
import time
from datetime import UTC, datetime

import psycopg


def log(message: str) -> None:
    print(f"{datetime.now(UTC).isoformat(timespec='milliseconds')} {message}", flush=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--monitor", required=True)
    parser.add_argument("--coordinator", required=True)
    parser.add_argument("--formation", default="default")
    parser.add_argument("--node", required=True, help="the worker's address in pg_dist_node when this started")
    parser.add_argument("--interval", type=float, default=0.5)
    args = parser.parse_args()
    host, port = args.node.rsplit(":", 1)
    with psycopg.connect(args.coordinator, autocommit=True) as coordinator:
        row = coordinator.execute(
            "SELECT nodeid FROM pg_dist_node WHERE nodename = %s AND nodeport = %s", [host, int(port)]
        ).fetchone()
    if row is None:
        log(f"no worker {args.node} in pg_dist_node")
        return 2
    nodeid = row[0]
    log(f"following formation {args.formation} for pg_dist_node {nodeid} ({args.node})")
    while True:
        try:
            with psycopg.connect(args.monitor, autocommit=True, connect_timeout=2) as monitor:
                primary = monitor.execute(
                    "SELECT primary_host, primary_port FROM pgautofailover.get_primary(%s, 0)", [args.formation]
                ).fetchone()
            with psycopg.connect(args.coordinator, autocommit=True, connect_timeout=2) as coordinator:
                current = coordinator.execute(
                    "SELECT nodename, nodeport FROM pg_dist_node WHERE nodeid = %s", [nodeid]
                ).fetchone()
                if primary and current and tuple(current) != (primary[0], primary[1]):
                    started = time.monotonic()
                    coordinator.execute("SELECT citus_update_node(%s, %s, %s)", [nodeid, primary[0], primary[1]])
                    log(
                        f"citus_update_node({nodeid}) {current[0]}:{current[1]} -> {primary[0]}:{primary[1]} "
                        f"in {time.monotonic() - started:.3f} s"
                    )
        except psycopg.Error as exc:
            log(f"retrying: {str(exc).splitlines()[0]}")
        time.sleep(args.interval)


if __name__ == "__main__":
    sys.exit(main())
