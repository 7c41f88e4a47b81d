"""`set_tenant_status <slug> active|suspended`: the middleware reads the status on every request,
so a suspension refuses the tenant's very next call (403). Exit 2 on an unknown slug or status,
or for the platform tenant (its users are the staff; tenants.services holds that rule)."""

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand

from tenants import services
from tenants.management.base import refused, tenant_by_slug


class Command(BaseCommand):
    help = (
        "Suspend or reactivate a tenant. Suspension takes effect on the tenant's next API request (403). "
        "Exit status: 0 done, 2 refused (unknown tenant or status, the platform tenant)."
    )

    def add_arguments(self, parser):
        parser.add_argument("slug")
        parser.add_argument("status", help="active or suspended")

    def handle(self, *args, slug: str, status: str, **options):
        tenant = tenant_by_slug(slug)
        try:
            services.tenant_set_status(tenant, status)  # recorded in the audit trail by the service
        except ValidationError as exc:
            raise refused("Refused", exc) from exc
        self.stdout.write(f"Tenant '{slug}' is now {status}.")
