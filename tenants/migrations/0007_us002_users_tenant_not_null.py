"""US-002 step 4: users.tenant_id NOT NULL; usernames unique per tenant, not globally.

A global unique index would tell tenant A which usernames exist in tenant B.
(tenant_id, id) becomes the target of the domain tables' composite keys.
"""

from django.contrib.auth.validators import UnicodeUsernameValidator
from django.db import migrations, models

from tenants.operations import (
    AddUniqueConstraintConcurrently,
    LockSafeRunSQL,
    SetTenantNotNull,
)


class Migration(migrations.Migration):
    atomic = False
    dependencies = [("tenants", "0006_us002_users_tenant_backfill")]

    operations = [
        SetTenantNotNull("users"),
        AddUniqueConstraintConcurrently(
            "user",
            "users",
            "users_tenant_username_uniq",
            ["tenant_id", "username"],
            ["tenant", "username"],
        ),
        AddUniqueConstraintConcurrently(
            "user",
            "users",
            "users_tenant_id_id_uniq",
            ["tenant_id", "id"],
            ["tenant", "id"],
        ),
        LockSafeRunSQL(
            "ALTER TABLE users DROP CONSTRAINT IF EXISTS users_username_key",
            "ALTER TABLE users ADD CONSTRAINT users_username_key UNIQUE (username)",
            state_operations=[
                migrations.AlterField(
                    "user",
                    "username",
                    models.CharField(
                        max_length=150,
                        validators=[UnicodeUsernameValidator()],
                    ),
                ),
            ],
        ),
    ]
