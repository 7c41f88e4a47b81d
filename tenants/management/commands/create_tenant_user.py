"""`create_tenant_user <slug> <username> --password PW [--staff|--superuser]`: a user inside one tenant,
written inside that tenant's context. Exit 2 on an unknown slug, a taken username, a weak password,
or staff rights asked for outside the platform tenant."""

from django.conf import settings
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from platform_ops import audit
from tenants.context import tenant_context
from tenants.management.base import OWNER, tenant_by_slug
from tenants.models import User


class Command(BaseCommand):
    help = "Create a user inside a tenant (usernames are unique per tenant)."

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
        if (staff or superuser) and slug != settings.PLATFORM_TENANT_SLUG:
            raise CommandError(
                f"Only users of the platform tenant '{settings.PLATFORM_TENANT_SLUG}' can be staff; "
                f"'{slug}' is a customer tenant.",
                returncode=2,
            )
        user = User(tenant=tenant, username=username, email=email, is_staff=staff or superuser, is_superuser=superuser)
        try:
            # Uniqueness is checked below, inside the tenant, on the owner connection.
            user.full_clean(exclude=["password", "tenant"], validate_unique=False, validate_constraints=False)
            validate_password(password, user)
        except ValidationError as exc:
            raise CommandError(f"Invalid user: {'; '.join(exc.messages)}", returncode=2) from exc
        user.set_password(password)
        with tenant_context(tenant, using=OWNER):
            if User.objects.using(OWNER).filter(username=username).exists():
                raise CommandError(f"Tenant '{slug}' already has a user '{username}'.", returncode=2)
            user.save(using=OWNER)
            if user.is_staff or user.is_superuser:
                audit.record(
                    "user.staff",
                    tenant=tenant,
                    detail={"user": username, "is_staff": user.is_staff, "is_superuser": user.is_superuser},
                )
        self.stdout.write(str(user.id))
