"""The distributed layout, on a Citus coordinator only (a no-op on PostgreSQL).

`tenants` becomes a reference table; `users` and the six domain tables are
distributed by tenant_id and colocated with `users`, so each tenant's rows
of every table sit on one worker and a request routes there. In one
transaction: the foreign keys come off, primary keys become (tenant_id, id),
the tables are distributed (rows, forced RLS, policies and grants are
copied onto every shard), and the keys go back between colocated shards.
`django_admin_log.user_id` keeps no key: a coordinator table cannot
reference a distributed one. Reverse (`migrate tenants 0010`): local tables
again, keys as before. See tenants/catalog/distribution_operations.py.
"""

from django.db import migrations

from tenants.catalog.distribution_operations import (
    AddForeignKeyOnCitus,
    DistributeTenantTable,
    DropForeignKeyOnCitus,
    MakeReferenceTable,
)

DOMAIN_TABLES = ("trades", "positions", "orders", "portfolio_snapshots", "risk_metrics", "agent_signals")
TENANT_TABLES = ("users", *DOMAIN_TABLES)


def tenant_key(table):
    return dict(
        table=table,
        name=f"fk_{table}_tenant",
        columns=["tenant_id"],
        references="tenants",
        referenced_columns=["id"],
        on_delete_cascade=True,
    )


def user_key(table):
    return dict(
        table=table,
        name=f"fk_{table}_tenant_user",
        columns=["tenant_id", "user_id"],
        references="users",
        referenced_columns=["tenant_id", "id"],
    )


ADMIN_LOG_USER_KEY = dict(
    table="django_admin_log",
    name="django_admin_log_user_id_c564eba6_fk_users_id",  # Django's generated name
    columns=["user_id"],
    references="users",
    referenced_columns=["id"],
    deferrable=True,
)


class Migration(migrations.Migration):
    dependencies = [
        ("tenants", "0011_inline_tenant_policies"),
        ("platform_ops", "0001_platform_audit"),
        # Last: every tenant table, key and policy exists before it is distributed.
        ("trading", "0007_snapshot_natural_key"),
        ("admin", "0003_logentry_add_action_flag_choices"),
    ]

    operations = [
        # 1. Keys off: no local table may reference a table being distributed.
        DropForeignKeyOnCitus(**ADMIN_LOG_USER_KEY),
        *(DropForeignKeyOnCitus(**user_key(table)) for table in DOMAIN_TABLES),
        *(DropForeignKeyOnCitus(**tenant_key(table)) for table in TENANT_TABLES),
        # 2. Distribute (primary keys become (tenant_id, id) on the way).
        MakeReferenceTable("tenants"),
        DistributeTenantTable("users"),
        DistributeTenantTable("trades", colocate_with="users"),
        DistributeTenantTable("positions", colocate_with="users"),
        DistributeTenantTable("orders", colocate_with="users"),
        DistributeTenantTable("portfolio_snapshots", colocate_with="users"),
        DistributeTenantTable("risk_metrics", colocate_with="users"),
        DistributeTenantTable("agent_signals", colocate_with="users"),
        # 3. Keys back, each checked on the worker that holds both ends.
        *(AddForeignKeyOnCitus(**tenant_key(table)) for table in TENANT_TABLES),
        *(AddForeignKeyOnCitus(**user_key(table)) for table in DOMAIN_TABLES),
    ]
