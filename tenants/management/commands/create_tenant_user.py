"""`create_tenant_user <slug> <username> --password PW [--staff|--superuser]`: a user inside one tenant,
written inside that tenant's context. Exit 2 on an unknown slug, a taken username, a weak password,
or staff rights asked for outside the platform tenant (tenants.services holds that rule)."""

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand

from tenants import services
from tenants.management.base import refused, tenant_by_slug


class Command(BaseCommand):
    help = (
        "Create a user inside a tenant (usernames are unique per tenant) and print its id. "
        "Exit status: 0 created, 2 refused (unknown tenant, taken username, weak password, staff outside "
        "the platform tenant)."
    )

    def add_arguments(self, parser):
        parser.add_argument("slug", help="the tenant's slug")
        parser.add_argument("username")
        parser.add_argument("--password", required=True)
        parser.add_argument("--email", default="")
        parser.add_argument("--staff", action="store_true", help="may log in to /admin/ (platform tenant only)")
        parser.add_argument(
            "--superuser", action="store_true", help="staff who also manage staff accounts (platform tenant only)"
        )

    def handle(
        self, *args, slug: str, username: str, password: str, email: str, staff: bool, superuser: bool, **options
    ):
        tenant = tenant_by_slug(slug)
        try:
            user = services.user_create(
                tenant=tenant, username=username, password=password, email=email, is_staff=staff, is_superuser=superuser
            )
        except ValidationError as exc:
            raise refused("Invalid user", exc) from exc
        self.stdout.write(str(user.id))
