"""The append-only audit trail. Depends only on the migration that sets the
app role's default privileges (tenants 0001), so rolling tenants back to any
us00x phase never drops the trail; the operation revokes those privileges again."""

from django.db import migrations, models

from platform_ops.operations import CreateAuditTable


class Migration(migrations.Migration):
    initial = True
    dependencies = [("tenants", "0001_legacy_users")]

    operations = [
        CreateAuditTable(),
        migrations.CreateModel(
            name="AuditEntry",
            fields=[
                ("id", models.BigAutoField(primary_key=True, serialize=False)),
                ("at", models.DateTimeField()),
                ("actor", models.TextField()),
                ("source", models.TextField()),
                ("action", models.TextField()),
                ("tenant_id", models.UUIDField(null=True)),
                ("tenant_slug", models.TextField()),
                ("reason", models.TextField()),
                (
                    "result",
                    models.TextField(
                        choices=[("ok", "ok"), ("started", "started"), ("refused", "refused"), ("failed", "failed")]
                    ),
                ),
                ("detail", models.JSONField()),
            ],
            options={
                "verbose_name": "audit entry",
                "verbose_name_plural": "audit trail",
                "db_table": "platform_audit",
                "ordering": ["-at", "-id"],
                "managed": False,
            },
        ),
    ]
