"""`create_tenant_user <slug> <username> --password PW [--staff]`: a user inside one tenant,
written inside that tenant's context. Exit 2 on an unknown slug, a taken username or a weak password."""

from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

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

    def handle(self, *args, slug: str, username: str, password: str, email: str, staff: bool, **options):
        tenant = tenant_by_slug(slug)
        user = User(tenant=tenant, username=username, email=email, is_staff=staff, is_superuser=staff)
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
        self.stdout.write(str(user.id))
