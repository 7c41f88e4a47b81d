"""`create_tenant_user <slug> <username> --password PW [--role admin|trader|viewer] [--staff|--superuser]`:
a user inside one tenant, written inside that tenant's context (default role: trader). Exit 2 on an
unknown slug, a taken username, a weak password, an unknown role, staff rights asked for outside the
platform tenant (tenants.services holds these rules), or no seat left in the tenant's tier."""

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from tenants import services
from tenants.management.base import refused, tenant_by_slug
from tenants.roles import Role


class Command(BaseCommand):
    help = (
        "Create a user inside a tenant (usernames are unique per tenant) and print its id. "
        "Exit status: 0 created, 2 refused (unknown tenant, taken username, weak password, unknown role, staff "
        "outside the platform tenant, no seat left)."
    )

    def add_arguments(self, parser):
        parser.add_argument("slug", help="the tenant's slug")
        parser.add_argument("username")
        parser.add_argument("--password", required=True)
        parser.add_argument("--email", default="")
        parser.add_argument(
            "--role",
            default=Role.TRADER,
            help=f"what the user may do in the tenant: {', '.join(Role.values)} (default trader)",
        )
        parser.add_argument("--staff", action="store_true", help="may log in to /admin/ (platform tenant only)")
        parser.add_argument(
            "--superuser", action="store_true", help="staff who also manage staff accounts (platform tenant only)"
        )

    def handle(
        self,
        *args,
        slug: str,
        username: str,
        password: str,
        email: str,
        role: str,
        staff: bool,
        superuser: bool,
        **options,
    ):
        tenant = tenant_by_slug(slug)
        try:
            user = services.user_create(
                tenant=tenant,
                username=username,
                password=password,
                email=email,
                role=role,
                is_staff=staff,
                is_superuser=superuser,
            )
        except ValidationError as exc:
            raise refused("Invalid user", exc) from exc
        except services.TenantConflict as exc:
            raise CommandError(f"Refused: {exc}", returncode=2) from exc
        self.stdout.write(str(user.id))
