"""The app role keeps exactly what the API needs (docs/security.md, section 3: least privilege).

Until here it could write `tenants` (DELETE cascaded past RLS), read and
write Django's sessions, admin log, auth and content-type tables, create temp
tables that shadow tenant tables, and would get read-write on any table the
owner created later. From here: SELECT on `tenants`, read-write on the seven
tenant tables, nothing else (tenants.catalog.privileges states the whole set).

Runs after every app's tables exist, so none is left with the old grants.
The tables are this migration's own frozen copy; a tenant table created
later grants itself with GrantTenantTablePrivileges.
"""

from django.db import migrations

from tenants.catalog.privilege_operations import RestrictAppRolePrivileges


class Migration(migrations.Migration):
    dependencies = [
        ("tenants", "0009_default_manager_all_tenants"),
        ("trading", "0006_default_manager_all_tenants"),
        ("admin", "0003_logentry_add_action_flag_choices"),
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
        ("sessions", "0001_initial"),
    ]

    operations = [
        RestrictAppRolePrivileges(
            read_only_tables=["tenants"],
            tenant_tables=[
                "users",
                "trades",
                "positions",
                "orders",
                "portfolio_snapshots",
                "risk_metrics",
                "agent_signals",
            ],
        ),
    ]
