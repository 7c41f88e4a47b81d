"""Tenant slugs are lower case: `HOOLI` beside `hooli` is a look-alike in the staff UI.

First the slugs that differ only in case are looked for: if any exist, the
migration stops and names them (which one keeps the name is an operator's
decision, not a migration's: rename or offboard one, then migrate again).
Otherwise every slug is lowered and a CHECK constraint keeps it so, whatever
way a row comes in (tenants.models.normalize_slug does it in the code).
Reverse: the constraint goes; the slugs stay lower case (nothing to undo).
"""

from django.core.management.base import CommandError
from django.db import migrations, models
from django.db.models.functions import Lower

FIND_CLASHES = (
    "SELECT lower(slug), array_agg(slug ORDER BY slug) FROM tenants GROUP BY lower(slug) HAVING count(*) > 1 ORDER BY 1"
)


class SlugClash(CommandError):
    """Two or more tenants whose slugs differ only in case: `migrate` stops with one line, exit 2."""

    def __init__(self, message: str) -> None:
        super().__init__(message, returncode=2)


def slug_clashes(cursor) -> list[list[str]]:
    """Every group of slugs that are one slug once lower-cased."""
    cursor.execute(FIND_CLASHES)
    return [list(slugs) for _, slugs in cursor.fetchall()]


def lower_slugs(apps, schema_editor) -> None:
    with schema_editor.connection.cursor() as cursor:
        clashes = slug_clashes(cursor)
        if clashes:
            named = "; ".join(", ".join(repr(slug) for slug in group) for group in clashes)
            raise SlugClash(
                f"Tenant slugs that differ only in case: {named}. Rename one of each group "
                "in the admin, or offboard it, then migrate again."
            )
        cursor.execute("UPDATE tenants SET slug = lower(slug) WHERE slug <> lower(slug)")


class Migration(migrations.Migration):
    dependencies = [("tenants", "0014_i22_audit_events")]

    operations = [
        migrations.RunPython(lower_slugs, migrations.RunPython.noop),
        migrations.AddConstraint(
            model_name="tenant",
            constraint=models.CheckConstraint(condition=models.Q(slug=Lower("slug")), name="tenants_slug_lower_case"),
        ),
    ]
