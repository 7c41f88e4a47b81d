"""`manage.py createsuperuser`: a superuser of the platform tenant, the only tenant whose
users may be staff (tenants.services). Interactive, or `--noinput` with
DJANGO_SUPERUSER_USERNAME / _EMAIL / _PASSWORD, as Django users expect; the
platform tenant is created when it does not exist yet (in the same transaction as
the account, so a refusal leaves neither). Runs as the owner. /admin/ also asks
for a second factor, so the command ends by naming the enrollment command
(`enroll_staff_otp`, platform_ops: tenants does not import it).
Exit 0 on success, 2 on any refusal (a taken username, a blank or invalid
field), with Django's own messages."""

from django.conf import settings
from django.contrib.auth.management.commands.createsuperuser import Command as DjangoCreateSuperuserCommand
from django.db import transaction

from tenants import services
from tenants.constants import OWNER_DATABASE
from tenants.management.base import RefusalsExit2


class Command(RefusalsExit2, DjangoCreateSuperuserCommand):
    help = (
        f"Create a superuser in the platform tenant '{settings.PLATFORM_TENANT_SLUG}' (usernames are unique per "
        "tenant). Exit status: 0 created, 2 refused (the message says why)."
    )

    def add_arguments(self, parser):
        super().add_arguments(parser)
        parser.set_defaults(database=OWNER_DATABASE)

    def handle(self, *args, **options):
        # Django's command creates the account through User.all_tenants.create_superuser, which
        # makes it in the platform tenant: the service makes that tenant first, if it is missing.
        with transaction.atomic(using=options["database"]):
            services.platform_tenant(options["database"])
            super().handle(*args, **options)
        username = getattr(self, "_accepted_username", None) or "<username>"
        self.stdout.write(
            f"/admin/ asks for a second factor: enroll this account with "
            f"`manage.py enroll_staff_otp {username}` before its first login (docs/admin.md)."
        )

    def _validate_username(self, username, verbose_field_name, database):
        # Django checks uniqueness across the whole table; ours is per tenant.
        if username and services.users_named(username, tenant_slug=settings.PLATFORM_TENANT_SLUG, using=database):
            return f"Error: the platform tenant already has a user '{username}'."
        error = super()._validate_username(username, verbose_field_name, database)  # type: ignore[misc]  # not in django-stubs
        if error is None:
            # Every path (prompt, --username, DJANGO_SUPERUSER_USERNAME) validates the name it creates.
            self._accepted_username = username
        return error
