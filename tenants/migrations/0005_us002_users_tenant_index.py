"""US-002 step 2: idx_users_tenant_id, built CONCURRENTLY (writes keep flowing)."""

from django.contrib.postgres.operations import AddIndexConcurrently
from django.db import migrations, models


class Migration(migrations.Migration):
    atomic = False
    dependencies = [("tenants", "0004_us002_users_tenant_column")]

    operations = [
        AddIndexConcurrently("user", models.Index(fields=["tenant"], name="idx_users_tenant_id")),
    ]
