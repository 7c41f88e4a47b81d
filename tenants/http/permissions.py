"""The API check of who may do what: DRF permission classes reading tenants.access.

`RoleAccess` is in DEFAULT_PERMISSION_CLASSES, after IsAuthenticated, so
every API view is under it unless it says otherwise (login, refresh and the
schema are public and say so). It finds the request's rule from the view's
`access_resource` and the request's action (tenants.access.action_for, or
the view's own `access_action(request)` where one route holds several
actions) and refuses, with a 403 that says what the role may not do:

- a view without `access_resource`, or an action without a rule (fails
  closed: a new endpoint without a rule is refused, and the matrix test
  fails for it);
- a role whose reach for the action is none;
- on a row (has_object_permission): a row that is not the principal's own
  where the role reaches only its own, or an order that is no longer new
  where it reaches only its own new ones;
- a request through an API key (`request.api_key`, with `.scopes`) whose key
  lacks the rule's scope, or for an action no key may do.

Each refusal carries a reason code (`role_forbidden`, `not_own`, `not_new`,
`scope_missing`, `no_rule`) for logs and metrics. Nothing has been written
when it is raised: permissions run before the view's work, and the
middleware rolls the transaction back on any 4xx.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.urls import Resolver404, resolve
from rest_framework.exceptions import PermissionDenied
from rest_framework.permissions import BasePermission
from rest_framework.request import Request

from tenants.access import SAFE_METHODS, Reach, Rule, action_for, rule_for
from tenants.roles import Role


def request_action(request: Request, view: Any) -> str:
    """The access action of this request on this view."""
    chooser = getattr(view, "access_action", None)
    if chooser is not None:
        chosen = chooser(request)
        if chosen is not None:
            return chosen
    return action_for(request.method or "GET", getattr(view, "action", None))


def request_rule(request: Request, view: Any) -> tuple[str | None, str, Rule]:
    """(resource, action, rule) of the request, or a 403 when there is no rule."""
    resource = getattr(view, "access_resource", None)
    action = request_action(request, view)
    rule = rule_for(resource, action)
    if rule is None:
        raise PermissionDenied(
            f"No access rule allows '{action}' on {resource or 'this route'}: it is refused for every role.",
            code="no_rule",
        )
    return resource, action, rule


def role_of(request: Request) -> str:
    return getattr(request.user, "role", "") or ""


def _label(role: str) -> str:
    """'an admin', 'a trader', 'a viewer'."""
    name = role if role in Role.values else f"user with role '{role}'"
    return ("an " if name[0] in "aeiou" else "a ") + name


def _cap(text: str) -> str:
    return text[:1].upper() + text[1:]


def _who_may(rule: Rule) -> str:
    roles = sorted(rule.roles(), key=Role.values.index)
    if not roles:
        return "nobody may"
    return " and ".join(f"{r}s" for r in roles) + " only"


class RoleAccess(BasePermission):
    """The role (and, through an API key, the scope) the access table asks for."""

    def has_permission(self, request: Request, view: Any) -> bool:
        if not hasattr(view, (request.method or "").lower()):
            return True  # a method the route does not offer: DRF answers 405, for every role alike
        resource, action, rule = request_rule(request, view)
        role = role_of(request)
        if rule.reach(role) is Reach.NONE:
            raise PermissionDenied(
                f"{_cap(_label(role))} may not {rule.what} ({_who_may(rule)}).",
                code="role_forbidden",
            )
        api_key = getattr(request, "api_key", None)
        if api_key is not None:
            if rule.scope is None:
                raise PermissionDenied(f"An API key may not {rule.what}: sign in as a person.", code="scope_missing")
            if rule.scope not in set(getattr(api_key, "scopes", ()) or ()):
                raise PermissionDenied(
                    f"This API key may not {rule.what}: it lacks the scope '{rule.scope}'.", code="scope_missing"
                )
        return True

    def has_object_permission(self, request: Request, view: Any, obj: Any) -> bool:
        _, _, rule = request_rule(request, view)
        role = role_of(request)
        reach = rule.reach(role)
        if reach is Reach.ANY:
            return True
        own = getattr(obj, "user_id", None) == getattr(request.user, "pk", None)
        if not own:
            raise PermissionDenied(f"{_cap(_label(role))} may {rule.what} only for their own rows.", code="not_own")
        if reach is Reach.OWN_NEW and getattr(obj, "status", "new") != "new":
            raise PermissionDenied(
                f"{_cap(_label(role))} may {rule.what} only while they are new; this one is {obj.status}.",
                code="not_new",
            )
        return reach in (Reach.OWN, Reach.OWN_NEW)


def reach_of(request: Request, view: Any) -> Reach:
    """How far the request's role reaches for its action (for lists of own rows only)."""
    _, _, rule = request_rule(request, view)
    return rule.reach(role_of(request))


# -- the database as the second guard ------------------------------------------------


@dataclass(frozen=True)
class WriteGuard:
    """What the request's opening round trip tells PostgreSQL before the view runs.

    `read_only`: no principal may write through this request (a safe method,
    a route nobody may write through, an unknown route): BEGIN READ ONLY.
    `writers`: the roles that may write through it, when not every role may;
    the transaction turns read-only unless the user's role is among them
    (tenants.http.middleware.READ_ONLY_GUARD_SQL). Neither: no guard.
    """

    read_only: bool
    writers: frozenset[str] | None = None


def write_guard(method: str, path: str) -> WriteGuard:
    """The guard for a request, from its route and method alone (the role comes from the database).

    Coarser than RoleAccess on purpose: it knows the route's action but not
    the body or the row, so it takes the rule of the method's action (an
    order PATCH is `change`, whose roles include `execute`'s; the matrix test
    holds that every finer action's roles are within its method's).
    """
    method = method.upper()
    if method in SAFE_METHODS:
        return WriteGuard(read_only=True)
    try:
        match = resolve(path)
    except Resolver404:
        return WriteGuard(read_only=True)
    view_class = getattr(match.func, "cls", None)
    actions = getattr(match.func, "actions", None) or {}
    resource = getattr(view_class, "access_resource", None)
    rule = rule_for(resource, action_for(method, actions.get(method.lower())))
    writers = rule.roles() if rule is not None else frozenset()
    if not writers:
        return WriteGuard(read_only=True)
    if writers == frozenset(Role.values):
        return WriteGuard(read_only=False)
    return WriteGuard(read_only=False, writers=writers)
