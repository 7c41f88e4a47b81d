"""`manage.py changepassword <username> [--tenant SLUG]`: Django's prompt, for tenant users.

Usernames are unique per tenant, not globally: when the name exists in more
than one tenant the command refuses and lists them, so the operator names
one with `--tenant`; when it is unique, no tenant is needed. Runs as the
owner. Exit 0 changed, 2 no such user / ambiguous / unknown tenant, 1 after
three refused attempts (mismatch or a weak password)."""

import getpass

from django.contrib.auth.management.commands.changepassword import Command as DjangoChangePasswordCommand
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.core.management.base import CommandError

from tenants import services
from tenants.constants import OWNER_DATABASE
from tenants.models import User

MAX_TRIES = 3


class Command(DjangoChangePasswordCommand):
    help = (
        "Change a user's password. A username that exists in several tenants needs --tenant. "
        "Exit status: 0 changed, 1 aborted after 3 attempts, 2 no such user, ambiguous name or unknown tenant."
    )

    def add_arguments(self, parser):
        super().add_arguments(parser)
        parser.add_argument("--tenant", help="the user's tenant slug (required when the username is in several)")
        parser.set_defaults(database=OWNER_DATABASE)

    def find_user(self, username: str, tenant_slug: str | None, database: str) -> User:
        users = services.users_named(username, tenant_slug=tenant_slug, using=database)
        if not users:
            where = f" in tenant '{tenant_slug}'" if tenant_slug else ""
            raise CommandError(f"user '{username}' does not exist{where}", returncode=2)
        if len(users) > 1:
            slugs = ", ".join(user.tenant.slug for user in users)
            raise CommandError(
                f"user '{username}' exists in {len(users)} tenants ({slugs}): name one with --tenant <slug>",
                returncode=2,
            )
        return users[0]

    def handle(self, *args, **options):
        database = options["database"]
        username = options["username"] or getpass.getuser()
        user = self.find_user(username, options["tenant"], database)
        label = f"'{user}' of tenant '{user.tenant.slug}'"
        self.stdout.write(f"Changing password for user {label}")
        for _ in range(MAX_TRIES):
            p1 = self._get_pass()  # type: ignore[attr-defined]  # Django's prompt, not in django-stubs
            p2 = self._get_pass("Password (again): ")  # type: ignore[attr-defined]
            if p1 != p2:
                self.stdout.write("Passwords do not match. Please try again.")
                continue
            try:
                validate_password(p2, user)
            except ValidationError as err:
                self.stderr.write("\n".join(err.messages))
                continue
            services.user_set_password(user, p1, using=database)
            return f"Password changed successfully for user {label}"
        raise CommandError(f"Aborting password change for user {label} after {MAX_TRIES} attempts")
