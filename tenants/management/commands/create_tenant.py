"""`create_tenant <slug> --name NAME --tier TIER`: prints the new id. Exit 2 on a duplicate slug,
an unknown tier or an invalid name, with a message saying so; runs as the owner."""

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand

from tenants import services
from tenants.management.base import refused
from tenants.models import Tenant


class Command(BaseCommand):
    help = (
        "Create a tenant (a customer firm) and print its id. "
        "Exit status: 0 created, 2 refused (duplicate slug, unknown tier, invalid name)."
    )

    def add_arguments(self, parser):
        parser.add_argument("slug", help="URL-safe unique name, used at login (e.g. acme)")
        parser.add_argument("--name", required=True, help="display name, e.g. 'Acme Capital'")
        parser.add_argument("--tier", default=Tenant.Tier.PRO, help=f"one of {', '.join(Tenant.Tier.values)}")

    def handle(self, *args, slug: str, name: str, tier: str, **options):
        try:
            tenant = services.tenant_create(slug=slug, name=name, tier=tier)  # recorded by the service
        except ValidationError as exc:
            raise refused("Invalid tenant", exc) from exc
        self.stdout.write(str(tenant.id))
