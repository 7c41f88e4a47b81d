from collections.abc import Iterator

from django.apps import AppConfig


def position_drift() -> Iterator[str]:
    """tenant_integrity's question to this app: which positions differ from their trades."""
    from django.db import connection

    from tenants.context import tenant_context
    from tenants.models import Tenant
    from trading import rebuild

    for tenant in Tenant.objects.order_by("slug"):
        with tenant_context(tenant), connection.cursor() as cursor:
            for diff in rebuild.differences(cursor, tenant.pk):
                yield f"position drift: {tenant.slug}: {diff.describe()} (fix: manage.py rebuild_positions)"


class TradingConfig(AppConfig):
    name = "trading"
    # Read by `tenant_integrity` (tenants never imports this app): each yields one line per finding.
    tenant_integrity_checks = (position_drift,)
