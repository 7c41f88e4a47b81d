"""Roles on users: `admin`, `trader`, `viewer`, NOT NULL.

Every user that exists when this runs becomes `admin`, so nobody loses
access on upgrade (before roles every user could do everything). From then
on a new user is a `trader` unless told otherwise, also for rows inserted by
SQL that names no role (the column's database default). On PostgreSQL 11+
adding a column with a constant default rewrites nothing, and on Citus the
ALTER TABLE reaches every shard. Reverse (`migrate tenants 0012`): the column
and its check go.
"""

from django.db import migrations, models

ROLES = [("admin", "Admin"), ("trader", "Trader"), ("viewer", "Viewer")]


class Migration(migrations.Migration):
    dependencies = [("tenants", "0012_citus_distribute")]

    operations = [
        # The existing users: admin (Django fills the new column with this default, then drops it).
        migrations.AddField(
            model_name="user",
            name="role",
            field=models.CharField(choices=ROLES, default="admin", max_length=16),
            preserve_default=False,
        ),
        # Everyone after: trader, in Python and in the database.
        migrations.AlterField(
            model_name="user",
            name="role",
            field=models.CharField(choices=ROLES, default="trader", db_default="trader", max_length=16),
        ),
        migrations.AddConstraint(
            model_name="user",
            constraint=models.CheckConstraint(
                condition=models.Q(role__in=["admin", "trader", "viewer"]), name="users_role_valid"
            ),
        ),
    ]
