"""Bulk inserts that a Citus coordinator accepts on tables under row-level security.

Django 5.2 writes `bulk_create()` of several rows on PostgreSQL as
`INSERT ... SELECT * FROM UNNEST(...)`. A Citus coordinator runs an
INSERT ... SELECT into a distributed table by pulling the rows through
itself and COPYing them into the shards, and COPY is refused on any table
under row-level security, for every role (the owner too, because of FORCE):
"COPY FROM not supported with row-level security". A multi-row
`INSERT ... VALUES` is split by shard and routed; on PostgreSQL it is the
same insert. `bulk_insert` makes Django write that form: Django keeps VALUES
whenever a row holds a query expression, so each primary key goes in as
`Value(pk)` and is put back on the object afterwards (also on failure).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TypeVar

from django.db import models
from django.db.models import Value

_M = TypeVar("_M", bound=models.Model)


def bulk_insert(queryset: models.QuerySet[_M], objs: Iterable[_M], batch_size: int = 1000) -> list[_M]:
    """`queryset.bulk_create(objs)` as multi-row INSERT ... VALUES. The objects need
    their primary keys (a uuid4 default sets them at construction)."""
    objs = list(objs)
    pk = queryset.model._meta.pk
    assert pk is not None
    keys = [obj.pk for obj in objs]
    if any(key is None for key in keys):
        raise ValueError(f"bulk_insert needs every {queryset.model.__name__}'s primary key set before the insert")
    try:
        for obj, key in zip(objs, keys, strict=True):
            setattr(obj, pk.attname, Value(key, output_field=pk))
        queryset.bulk_create(objs, batch_size=batch_size)
    finally:
        for obj, key in zip(objs, keys, strict=True):
            setattr(obj, pk.attname, key)
    return objs
