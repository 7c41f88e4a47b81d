"""`set_tenant_status <slug> active|suspended`: the middleware reads the status on every request,
so a suspension refuses the tenant's very next call (403). Exit 2 on an unknown slug or status,
or for the platform tenant (its users are the staff)."""

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from platform_ops import audit
from tenants.management.base import OWNER, tenant_by_slug
from tenants.models import Tenant


class Command(BaseCommand):
    help = "Suspend or reactivate a tenant. Suspension takes effect on the tenant's next API request (403)."

    def add_arguments(self, parser):
        parser.add_argument("slug")
        parser.add_argument("status", help="active or suspended")

    def handle(self, *args, slug: str, status: str, **options):
        if status not in Tenant.Status.values:
            raise CommandError(f"Unknown status '{status}': choose active or suspended.", returncode=2)
        if slug == settings.PLATFORM_TENANT_SLUG and status == Tenant.Status.SUSPENDED:
            raise CommandError("The platform tenant cannot be suspended: its users are the staff.", returncode=2)
        tenant = tenant_by_slug(slug)
        Tenant.objects.using(OWNER).filter(pk=tenant.pk).update(status=status)
        audit.record("tenant.status", tenant=tenant, detail={"from": tenant.status, "to": status})
        self.stdout.write(f"Tenant '{slug}' is now {status}.")
