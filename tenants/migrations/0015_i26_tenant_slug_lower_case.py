"""Tenant slugs are lower case: `HOOLI` beside `hooli` is a look-alike in the staff UI.

First the slugs that differ only in case are looked for: if any exist, the
migration stops and names them (which one keeps the name is an operator's
decision, not a migration's: rename or offboard one, then migrate again).
Otherwise every slug is lowered and a CHECK constraint keeps it so, whatever
way a row comes in (tenants.models.normalize_slug does it in the code).
Reverse: the constraint goes; the slugs stay lower case (nothing to undo).
"""

from django.core.management.base import CommandError
from django.db import DatabaseError, migrations, models
from django.db.models.functions import Lower

CLASH_PREFIX = "Tenant slugs that differ only in case: "  # as LOWER_SLUGS raises it

# One statement, so that `sqlmigrate` prints it: stop naming every group of
# slugs that are one slug once lower-cased, or lower them all.
LOWER_SLUGS = """
DO $lower_slugs$
DECLARE
    clashes text;
BEGIN
    SELECT string_agg(grouped, '; ' ORDER BY lowered) INTO clashes
      FROM (SELECT lower(slug) AS lowered, string_agg(quote_literal(slug), ', ' ORDER BY slug) AS grouped
              FROM tenants GROUP BY lower(slug) HAVING count(*) > 1) AS groups;
    IF clashes IS NOT NULL THEN
        RAISE EXCEPTION 'Tenant slugs that differ only in case: %', clashes;
    END IF;
    UPDATE tenants SET slug = lower(slug) WHERE slug <> lower(slug);
END
$lower_slugs$;
"""


class SlugClash(CommandError):
    """Two or more tenants whose slugs differ only in case: `migrate` stops with one line, exit 2."""

    def __init__(self, message: str) -> None:
        super().__init__(message, returncode=2)


def clash_from(exc: DatabaseError) -> SlugClash | None:
    diag = getattr(exc.__cause__, "diag", None)
    message = getattr(diag, "message_primary", None) or ""
    if not message.startswith(CLASH_PREFIX):
        return None
    return SlugClash(f"{message}. Rename one of each group in the admin, or offboard it, then migrate again.")


def lower_slugs(apps, schema_editor) -> None:
    """What the migration runs, callable on its own (the tests make a clash and call it)."""
    try:
        with schema_editor.connection.cursor() as cursor:
            cursor.execute(LOWER_SLUGS)
    except DatabaseError as exc:
        raise (clash_from(exc) or exc) from None


class LowerSlugs(migrations.RunSQL):
    """LOWER_SLUGS, with its refusal as one line (SlugClash) instead of a database traceback."""

    def __init__(self) -> None:
        super().__init__(LOWER_SLUGS, migrations.RunSQL.noop)

    def database_forwards(self, app_label, schema_editor, from_state, to_state) -> None:
        try:
            super().database_forwards(app_label, schema_editor, from_state, to_state)
        except DatabaseError as exc:
            raise (clash_from(exc) or exc) from None

    def deconstruct(self):
        return (self.__class__.__qualname__, [], {})


class Migration(migrations.Migration):
    dependencies = [("tenants", "0014_i22_audit_events")]

    operations = [
        LowerSlugs(),
        migrations.AddConstraint(
            model_name="tenant",
            constraint=models.CheckConstraint(condition=models.Q(slug=Lower("slug")), name="tenants_slug_lower_case"),
        ),
    ]
