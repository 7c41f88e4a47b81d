"""Django's "You have N unapplied migration(s)" notice, read as the owner role.

`runserver`, `createsuperuser` and `changepassword` call
`BaseCommand.check_migrations()`, which reads django_migrations on the
`default` connection. Here that is the app role, which holds no privilege on
django_migrations (tenants.catalog.privileges), so the three commands stopped with
"permission denied". `tenants` comes first in INSTALLED_APPS, so its own
createsuperuser and changepassword do win over django.contrib.auth's, but they
subclass Django's and inherit the call, and runserver is staticfiles'. Rather
than override every command that calls it (and every one that will), `install()`
(TenantsConfig.ready) points the one method at the owner connection, which owns
the migration history. Same notice, same text.
"""

from __future__ import annotations

from django.core.exceptions import ImproperlyConfigured
from django.core.management.base import BaseCommand
from django.db import connections

from tenants.constants import OWNER_DATABASE


def check_migrations_as_owner(self: BaseCommand) -> None:
    from django.db.migrations.executor import MigrationExecutor

    try:
        executor = MigrationExecutor(connections[OWNER_DATABASE])
    except ImproperlyConfigured:
        return
    plan = executor.migration_plan(executor.loader.graph.leaf_nodes())
    if plan:
        apps_waiting = ", ".join(sorted({migration.app_label for migration, _ in plan}))
        self.stdout.write(
            self.style.NOTICE(
                f"\nYou have {len(plan)} unapplied migration(s). Your project may not work properly until "
                f"you apply the migrations for app(s): {apps_waiting}."
            )
        )
        self.stdout.write(self.style.NOTICE("Run 'python manage.py migrate' to apply them."))


def install() -> None:
    BaseCommand.check_migrations = check_migrations_as_owner  # type: ignore[method-assign]
