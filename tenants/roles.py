"""The three roles a user holds inside their tenant.

`users.role` (NOT NULL) is read in every request's opening round trip with
the rest of the user row (tenants.http.middleware), so a role change holds
from the user's next request. What each role may do is not here: it is the
access table, tenants.access.
"""

from django.db import models


class Role(models.TextChoices):
    ADMIN = "admin", "Admin"  # manages the tenant's users, executes orders, amends trades
    TRADER = "trader", "Trader"  # trades: creates orders, trades and signals; changes their own new orders
    VIEWER = "viewer", "Viewer"  # reads everything of the tenant, writes nothing (but their own password)
