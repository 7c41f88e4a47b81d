"""What the Citus run of the suite checks before any test runs: the tables
really are distributed (a suite that silently ran on coordinator-local tables
would test a plain PostgreSQL and prove nothing about the cluster)."""

from __future__ import annotations

from tenants.registry import tenant_tables


def layout_problems(cursor) -> list[str]:
    """Empty when `tenants` is a reference table and every tenant table is
    distributed by tenant_id, all in one colocation group, with shards on
    more than one worker."""
    cursor.execute("SELECT table_name::text, citus_table_type, distribution_column, colocation_id FROM citus_tables")
    tables = {name: (kind, column, group) for name, kind, column, group in cursor.fetchall()}
    problems = []
    if tables.get("tenants", ("",))[0] != "reference":
        problems.append(f"tenants is not a reference table: {tables.get('tenants')}")
    for name in tenant_tables():
        kind, column, _ = tables.get(name, ("local", None, None))
        if (kind, column) != ("distributed", "tenant_id"):
            problems.append(f"{name} is not distributed by tenant_id: {kind}, {column}")
    groups = {tables[name][2] for name in tenant_tables() if name in tables}
    if len(groups) > 1:
        problems.append(f"the tenant tables are not colocated: groups {sorted(groups)}")
    cursor.execute(
        "SELECT count(DISTINCT nodeport) FROM pg_dist_shard JOIN pg_dist_placement USING (shardid)"
        " JOIN pg_dist_node USING (groupid) WHERE logicalrelid = 'trades'::regclass"
    )
    (workers,) = cursor.fetchone()
    if workers < 2:
        problems.append(f"the trades shards sit on {workers} node(s), not spread over the workers")
    return problems
