"""State only (no SQL): `all_tenants`, an unscoped manager, is the default manager
Django and libraries use internally; code uses the tenant-scoped `objects`."""

import django.db.models.manager
from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [
        ("tenants", "0008_us004_enable_rls"),
    ]

    operations = [
        migrations.AlterModelManagers(
            name="user",
            managers=[
                ("all_tenants", django.db.models.manager.Manager()),
            ],
        ),
    ]
