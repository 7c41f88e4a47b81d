"""`create_tenant <slug> --name NAME --tier TIER`: prints the new id. Exit 2 on a duplicate slug,
an unknown tier or an invalid name, with a message saying so; runs as the owner."""

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from platform_ops import audit
from tenants.management.base import OWNER
from tenants.models import Tenant


class Command(BaseCommand):
    help = "Create a tenant (a customer firm) and print its id."

    def add_arguments(self, parser):
        parser.add_argument("slug", help="URL-safe unique name, used at login (e.g. acme)")
        parser.add_argument("--name", required=True, help="display name, e.g. 'Acme Capital'")
        parser.add_argument("--tier", default=Tenant.Tier.PRO, help=f"one of {', '.join(Tenant.Tier.values)}")

    def handle(self, *args, slug: str, name: str, tier: str, **options):
        if tier not in Tenant.Tier.values:
            raise CommandError(f"Unknown tier '{tier}': choose one of {', '.join(Tenant.Tier.values)}.", returncode=2)
        if Tenant.objects.using(OWNER).filter(slug=slug).exists():
            raise CommandError(f"A tenant with slug '{slug}' already exists.", returncode=2)
        tenant = Tenant(slug=slug, name=name, subscription_tier=tier)
        try:
            tenant.full_clean(validate_unique=False)
        except ValidationError as exc:
            raise CommandError(f"Invalid tenant: {exc.message_dict}", returncode=2) from exc
        tenant.save(using=OWNER)
        audit.record("tenant.create", tenant=tenant, detail={"name": name, "tier": tier})
        self.stdout.write(str(tenant.id))
