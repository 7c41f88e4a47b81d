"""Who may do what inside a tenant: the ONE access table.

Every API route names its resource (a viewset's `access_resource`, a string,
so this module never imports the apps that own the resources), and every
request maps to one action of it:

- `read`: GET, HEAD and OPTIONS, whatever the route;
- `create` (POST to a list), `change` (PUT, PATCH), `delete` (DELETE);
- an extra route's own name (`bulk`, `password`, `fills`), or a finer action
  a view picks from the request (an order PATCH that moves the order to
  partially_filled, filled or rejected is `execute`).

`ACCESS[resource][action]` is a Rule: how far each role reaches (nowhere, its
own rows while they are new, its own rows, every row of the tenant) and the
API-key scope the action needs. A request acting through an API key needs
both: its user's role must reach, and the key must hold the scope; a rule
without a scope is for people only. No rule, no access: a route or action
missing here is refused (403), and tests/tenants/test_access_matrix.py fails
for every route of the URL conf that lacks one.

Read by tenants.http.permissions.RoleAccess (the API check, 403 saying what
the role may not do) and by the request's opening round trip
(tenants.http.middleware), which opens the transaction READ ONLY whenever the
principal's role may not write through the route, so the database refuses a
write that slipped past the API check.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from tenants.roles import Role


class Reach(Enum):
    """How far a role's right goes; the values read as the docs' table does."""

    NONE = "no"
    OWN_NEW = "own, while new"  # rows whose `user` is the principal's user and whose `status` is new
    OWN = "own"  # rows whose `user` is the principal's user
    ANY = "yes"  # every row of the tenant


class Scope:
    """The scopes an API key may hold (CONTRACT section 9)."""

    READ = "read"
    ORDERS_WRITE = "orders:write"
    ORDERS_EXECUTE = "orders:execute"
    TRADES_WRITE = "trades:write"
    SIGNALS_WRITE = "signals:write"
    ALL = (READ, ORDERS_WRITE, ORDERS_EXECUTE, TRADES_WRITE, SIGNALS_WRITE)


READ, CREATE, CHANGE, DELETE = "read", "create", "change", "delete"

# An order moved to one of these has been executed: the market's doing,
# recorded by an admin (or a fill), never claimed by a trader.
EXECUTION_STATUSES = frozenset({"partially_filled", "filled", "rejected"})


@dataclass(frozen=True)
class Rule:
    """Who may do one action on one resource, and the API-key scope it needs."""

    what: str  # the action in words, for refusals and docs: "amend or delete trades"
    admin: Reach
    trader: Reach
    viewer: Reach
    scope: str | None  # None: no API key may do this, only a person

    def reach(self, role: str) -> Reach:
        """An unknown role reaches nothing (fails closed)."""
        by_role = {Role.ADMIN.value: self.admin, Role.TRADER.value: self.trader, Role.VIEWER.value: self.viewer}
        return by_role.get(str(role), Reach.NONE)

    def roles(self) -> frozenset[str]:
        """The roles this rule lets do the action at all (on some row)."""
        return frozenset(role for role in Role.values if self.reach(role) is not Reach.NONE)


N, OWN_NEW, OWN, ANY = Reach.NONE, Reach.OWN_NEW, Reach.OWN, Reach.ANY


def _read(resource: str, *, admin_only: bool = False) -> Rule:
    if admin_only:
        return Rule(f"read {resource}", ANY, N, N, Scope.READ)
    return Rule(f"read {resource}", ANY, ANY, ANY, Scope.READ)


def _written_by_jobs(resource: str) -> dict[str, Rule]:
    """Rows the background jobs compute: an admin may correct them, nobody types them in."""
    return {
        READ: _read(resource),
        CREATE: Rule(f"write {resource} (the jobs compute them)", ANY, N, N, None),
        CHANGE: Rule(f"change {resource} (the jobs compute them)", ANY, N, N, None),
        DELETE: Rule(f"delete {resource} (the jobs compute them)", ANY, N, N, None),
    }


ACCESS: dict[str, dict[str, Rule]] = {
    "trades": {
        READ: _read("trades"),
        CREATE: Rule("create trades", ANY, ANY, N, Scope.TRADES_WRITE),
        # Executed trades are the record: amended by an admin only, audited with before and after.
        CHANGE: Rule("amend trades", ANY, N, N, Scope.TRADES_WRITE),
        DELETE: Rule("delete trades", ANY, N, N, Scope.TRADES_WRITE),
    },
    "orders": {
        READ: _read("orders"),
        CREATE: Rule("create orders", ANY, ANY, N, Scope.ORDERS_WRITE),
        CHANGE: Rule("change orders (terms, cancel)", ANY, OWN_NEW, N, Scope.ORDERS_WRITE),
        DELETE: Rule("delete orders", ANY, OWN_NEW, N, Scope.ORDERS_WRITE),
        # A change whose new status is in EXECUTION_STATUSES (trading.views.OrderViewSet.access_action).
        "execute": Rule(
            "execute orders (move them to partially_filled, filled or rejected)", ANY, N, N, Scope.ORDERS_EXECUTE
        ),
        # POST /api/orders/<id>/fills/ (the ledger, CONTRACT section 10).
        "fills": Rule("fill orders", ANY, N, N, Scope.ORDERS_EXECUTE),
    },
    # Positions follow trades (CONTRACT section 10): nobody writes them through the API.
    "positions": {
        READ: _read("positions"),
        CREATE: Rule("create positions (they follow trades)", N, N, N, None),
        CHANGE: Rule("change positions (they follow trades)", N, N, N, None),
        DELETE: Rule("delete positions (they follow trades)", N, N, N, None),
    },
    "portfolio-snapshots": _written_by_jobs("portfolio snapshots"),
    "risk-metrics": _written_by_jobs("risk metrics"),
    "agent-signals": {
        READ: _read("agent signals"),
        CREATE: Rule("create agent signals", ANY, ANY, N, Scope.SIGNALS_WRITE),
        "bulk": Rule("create agent signals", ANY, ANY, N, Scope.SIGNALS_WRITE),
        CHANGE: Rule("change agent signals", ANY, OWN, N, Scope.SIGNALS_WRITE),
        DELETE: Rule("delete agent signals", ANY, OWN, N, Scope.SIGNALS_WRITE),
    },
    "users": {
        READ: _read("users"),
        CREATE: Rule("add users", ANY, N, N, None),
        CHANGE: Rule("change users (role, is_active, email)", ANY, N, N, None),
        # POST /api/users/me/password/: everyone, for themselves, in person.
        "password": Rule("change their own password", ANY, ANY, ANY, None),
    },
    "audit-events": {
        READ: _read("the tenant's audit log", admin_only=True),
    },
    # The tenant's API keys (sessions and keys, CONTRACT section 9): everyone
    # makes keys for themselves (a viewer's hold the read scope only: the
    # key service's rule); an admin lists and revokes every key.
    "api-keys": {
        READ: Rule("list API keys", ANY, OWN, OWN, Scope.READ),
        CREATE: Rule("create API keys", ANY, ANY, ANY, None),
        DELETE: Rule("revoke API keys", ANY, OWN, OWN, None),
    },
    # POST /api/auth/logout/ and logout-all/: everyone ends their own sessions, in person.
    "sessions": {
        CREATE: Rule("end their own sessions", ANY, ANY, ANY, None),
    },
}

# What each HTTP method is, unless the route is an extra action with a name of its own.
METHOD_ACTIONS = {
    "GET": READ,
    "HEAD": READ,
    "OPTIONS": READ,
    "POST": CREATE,
    "PUT": CHANGE,
    "PATCH": CHANGE,
    "DELETE": DELETE,
}
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
# DRF's viewset action names for the standard routes.
STANDARD_VIEW_ACTIONS = frozenset({"list", "retrieve", "create", "update", "partial_update", "destroy"})


def action_for(method: str, view_action: str | None) -> str:
    """The access action of a request: `read` for every safe method, an extra route's
    own name for its writes, else what the method means."""
    method = method.upper()
    if method in SAFE_METHODS:
        return READ
    if view_action and view_action not in STANDARD_VIEW_ACTIONS:
        return view_action
    return METHOD_ACTIONS.get(method, method.lower())


def rule_for(resource: str | None, action: str) -> Rule | None:
    """The rule, or None: no rule means no access."""
    if resource is None:
        return None
    return ACCESS.get(resource, {}).get(action)
