"""US-002 step 3: every existing user joins the default tenant, in committed batches."""

from django.db import migrations

from tenants.operations import BackfillTenant


class Migration(migrations.Migration):
    atomic = False
    dependencies = [("tenants", "0005_us002_users_tenant_index")]

    operations = [BackfillTenant("users")]
