"""US-002 step 1: users.tenant_id, nullable, with the default tenant as a temporary
default (old code keeps inserting users) and its foreign key NOT VALID."""

from django.db import migrations

from tenants.operations import AddTenantColumn


class Migration(migrations.Migration):
    atomic = False  # each statement in its own short, lock_timeout-guarded transaction
    dependencies = [("tenants", "0003_us001_default_tenant")]

    operations = [AddTenantColumn("user", "users")]
