"""State only (no SQL): `all_tenants`, an unscoped manager, is the default manager
Django and libraries use internally; code uses the tenant-scoped `objects`."""

import django.db.models.manager
from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [
        ("trading", "0005_us003_tenant_not_null"),
    ]

    operations = [
        migrations.AlterModelManagers(
            name="agentsignal",
            managers=[
                ("all_tenants", django.db.models.manager.Manager()),
            ],
        ),
        migrations.AlterModelManagers(
            name="order",
            managers=[
                ("all_tenants", django.db.models.manager.Manager()),
            ],
        ),
        migrations.AlterModelManagers(
            name="portfoliosnapshot",
            managers=[
                ("all_tenants", django.db.models.manager.Manager()),
            ],
        ),
        migrations.AlterModelManagers(
            name="position",
            managers=[
                ("all_tenants", django.db.models.manager.Manager()),
            ],
        ),
        migrations.AlterModelManagers(
            name="riskmetric",
            managers=[
                ("all_tenants", django.db.models.manager.Manager()),
            ],
        ),
        migrations.AlterModelManagers(
            name="trade",
            managers=[
                ("all_tenants", django.db.models.manager.Manager()),
            ],
        ),
    ]
