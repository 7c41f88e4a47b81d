"""The database, not the writer, sets each audit entry's time and id.

`at` had a default and `id` was GENERATED ALWAYS, but plain DML could still
choose both (`INSERT ... (at) VALUES ('2020-01-01')`, `OVERRIDING SYSTEM
VALUE`): the owner could back-date an entry or fill a gap in the ids. A
BEFORE INSERT trigger overwrites both with the clock and the sequence, so
whatever the INSERT says, an entry is stamped when and in the order it was
written. (The owner owns the table and could drop the trigger: the residual
risk docs/runbook.md, "Audit trail", already names.)
"""

from django.db import migrations

FUNCTION = "platform_audit_stamp"

FORWARD = (
    f"""CREATE FUNCTION {FUNCTION}() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    NEW.at := clock_timestamp();
    NEW.id := nextval(pg_get_serial_sequence('platform_audit', 'id'));
    RETURN NEW;
END $$""",
    f"REVOKE EXECUTE ON FUNCTION {FUNCTION}() FROM PUBLIC",
    # The owner gave up TRIGGER on its own table (0001): back for this one statement.
    "GRANT TRIGGER ON platform_audit TO CURRENT_USER",
    f"CREATE TRIGGER platform_audit_stamp BEFORE INSERT ON platform_audit FOR EACH ROW EXECUTE FUNCTION {FUNCTION}()",
    "REVOKE TRIGGER ON platform_audit FROM CURRENT_USER",
)
BACKWARD = (
    "DROP TRIGGER IF EXISTS platform_audit_stamp ON platform_audit",
    f"DROP FUNCTION IF EXISTS {FUNCTION}()",
)


class Migration(migrations.Migration):
    dependencies = [("platform_ops", "0001_platform_audit")]

    operations = [migrations.RunSQL(sql=FORWARD, reverse_sql=BACKWARD)]
