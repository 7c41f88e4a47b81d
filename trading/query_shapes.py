"""The querysets the API really runs, built through the viewsets themselves, for EXPLAIN.

Used by the plan-shape tests (tests/trading/test_query_plans.py) and the
benchmark's plans (scripts/bench/plans.py), so both look at the SQL of the
real code path: the viewset's tenant-scoped `get_queryset()`, its filter
backends reading the query string, and the cursor paginator's ordering and
page size (first page: LIMIT page_size + 1; detail: `.get()`'s LIMIT 21).

Call them inside `tenant_context(...)`: the tenant manager refuses to build a
queryset without one. Never build SQL strings from these for execution; use
`queryset.explain(...)`, which binds the parameters.
"""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet
from django.db.models.query import MAX_GET_RESULTS
from rest_framework.request import Request
from rest_framework.test import APIRequestFactory
from rest_framework.viewsets import GenericViewSet


def _view(viewset_class: type[GenericViewSet], action: str, params: dict[str, Any] | None = None) -> GenericViewSet:
    view = viewset_class(action=action, format_kwarg=None)
    view.request = Request(APIRequestFactory().get("/", params or {}))
    view.args, view.kwargs = (), {}
    return view


def list_queryset(viewset_class: type[GenericViewSet], params: dict[str, Any] | None = None) -> QuerySet:
    """The first page of `GET /<resource>/?<params>` as the list view runs it."""
    view = _view(viewset_class, "list", params)
    queryset = view.filter_queryset(view.get_queryset())
    paginator = view.paginator
    assert paginator is not None, f"{viewset_class.__name__} has no paginator"
    ordering = paginator.get_ordering(view.request, queryset, view)
    page_size = paginator.get_page_size(view.request)
    return queryset.order_by(*ordering)[: page_size + 1]


def detail_queryset(viewset_class: type[GenericViewSet], pk: Any) -> QuerySet:
    """`GET /<resource>/<pk>/` as get_object() runs it (filter backends, then .get())."""
    view = _view(viewset_class, "retrieve")
    queryset = view.filter_queryset(view.get_queryset())
    return queryset.filter(**{view.lookup_field: pk}).order_by()[:MAX_GET_RESULTS]
