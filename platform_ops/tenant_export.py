"""One tenant's data as a directory a customer can read, and back into a database.

An export is a directory:
    manifest.json      format, tenant, export time, schema version (the applied
                       migrations of the apps holding tenant tables), and per
                       file: table, columns, row count, SHA-256
    README.txt         what the files are, in plain words
    tenants.ndjson     the tenant's own row
    users.ndjson, ...  one JSON object per row, per tenant table, in foreign-key
                       order (tenants.registry: parents first)
Values are JSON strings/numbers as the database holds them: UUIDs and decimals
as strings (no float rounding), times in ISO 8601 with microseconds and offset.

Export reads every table in one REPEATABLE READ, READ ONLY transaction on the
owner connection (one consistent snapshot under live writes), writes into
`<PATH>.partial` and renames it only when complete: a directory at PATH is
always a whole export.

Import refuses, before writing anything: a directory that is not an export, a
file whose checksum or row count differs from the manifest, a schema version
other than the target's, a tenant (id or slug) that already exists. Then it
inserts every row with multi-row INSERT ... VALUES (COPY is refused under RLS
on Citus) in one transaction, ids preserved, re-counts each table, and commits
only if every count matches: all or nothing.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any, BinaryIO

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import IntegrityError, connections, models, transaction
from psycopg import sql
from psycopg.types.json import Jsonb

from tenants.constants import OWNER_DATABASE
from tenants.models import Tenant, User, normalize_slug
from tenants.registry import tenant_models, tenant_rows, tenant_rows_count_sql

FORMAT = "alphapulse-tenant-export"
FORMAT_VERSION = 1
MANIFEST = "manifest.json"
INSERT_BATCH = 1000
ITER_CHUNK = 2000

Progress = Callable[[str, int], None]


class ExportError(Exception):
    """The export cannot be written, read or imported; the message says why and what to do."""


def _encode(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()  # full microseconds (DjangoJSONEncoder would cut them)
    if isinstance(value, (date, uuid.UUID, Decimal)):
        return str(value)
    raise TypeError(f"cannot export a {type(value).__name__}")


def encode_row(row: dict[str, Any]) -> bytes:
    return (json.dumps(row, default=_encode, sort_keys=True, ensure_ascii=False) + "\n").encode()


def exported_models() -> list[type[models.Model]]:
    """The tenant row first, then every tenant table in insert order."""
    return [Tenant, *tenant_models()]


def columns_of(model: type[models.Model]) -> list[models.Field]:
    return list(model._meta.concrete_fields)


def schema_version(alias: str = OWNER_DATABASE) -> dict[str, list[str]]:
    """Applied migrations of every app that holds an exported table."""
    app_labels = sorted({m._meta.app_label for m in exported_models()})
    with connections[alias].cursor() as cursor:
        cursor.execute("SELECT app, name FROM django_migrations WHERE app = ANY(%s) ORDER BY app, name", [app_labels])
        version: dict[str, list[str]] = {label: [] for label in app_labels}
        for app, name in cursor.fetchall():
            version[app].append(name)
    return version


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


@dataclass
class Manifest:
    data: dict[str, Any]
    path: Path

    @property
    def tenant_id(self) -> uuid.UUID:
        return uuid.UUID(self.data["tenant"]["id"])

    @property
    def slug(self) -> str:
        # An export of an older database may spell it in capitals: one spelling here.
        return normalize_slug(str(self.data["tenant"]["slug"]))

    @property
    def files(self) -> list[dict[str, Any]]:
        return list(self.data["files"])

    def rows(self) -> dict[str, int]:
        return {f["table"]: int(f["rows"]) for f in self.files}

    def sha256(self) -> str:
        return sha256_of(self.path / MANIFEST)


README = """AlphaPulse tenant export
========================

This directory holds every row of one AlphaPulse tenant ({slug}), exported at {at}.

- manifest.json lists the files, the columns of each, their row counts and SHA-256
  checksums (check one with: sha256sum users.ndjson), and the schema version.
- Each <table>.ndjson file has one JSON object per line, one line per row.
  Identifiers and decimal numbers are strings (exact, no rounding); times are
  ISO 8601 with their UTC offset.
- users.ndjson holds password hashes, never passwords.
"""


def private_file(path: Path) -> BinaryIO:
    """A new file only its owner can read (0600 from creation: never readable for a moment)."""
    return os.fdopen(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "wb")


def export_tenant(
    tenant: Tenant, output: Path, *, alias: str = OWNER_DATABASE, progress: Progress | None = None
) -> Manifest:
    output = Path(output)
    if output.exists():
        raise ExportError(f"{output} already exists: choose a new path (an export is never written over another).")
    partial = output.with_name(output.name + ".partial")
    if partial.exists():
        shutil.rmtree(partial)  # what an interrupted export left behind
    # users.ndjson holds password hashes: the export is the operator's alone
    # (0700 directory, 0600 files, like .env), whatever the process umask.
    partial.mkdir(parents=True, mode=0o700)
    partial.chmod(0o700)
    connection = connections[alias]
    files = []
    with transaction.atomic(using=alias):
        with connection.cursor() as cursor:
            if not connection.savepoint_ids:
                # First statement of the transaction: one snapshot for every table.
                cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            cursor.execute("SELECT clock_timestamp()")
            exported_at = cursor.fetchone()[0]
        version = schema_version(alias)
        for model in exported_models():
            table = model._meta.db_table
            fields = columns_of(model)
            rows = tenant_rows(model, tenant.pk, using=alias).order_by("pk")
            digest, count = hashlib.sha256(), 0
            with private_file(partial / f"{table}.ndjson") as handle:
                for row in rows.values(*[f.attname for f in fields]).iterator(chunk_size=ITER_CHUNK):
                    line = encode_row({f.column: row[f.attname] for f in fields})
                    handle.write(line)
                    digest.update(line)
                    count += 1
                    if progress and count % ITER_CHUNK == 0:
                        progress(table, count)
            if progress:
                progress(table, count)
            files.append(
                {
                    "table": table,
                    "file": f"{table}.ndjson",
                    "rows": count,
                    "sha256": digest.hexdigest(),
                    "columns": [f.column for f in fields],
                }
            )
    manifest = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "tenant": {
            "id": str(tenant.pk),
            "slug": tenant.slug,
            "name": tenant.name,
            "subscription_tier": tenant.subscription_tier,
        },
        "exported_at": exported_at.isoformat(),
        "schema_version": version,
        "files": files,
    }
    with private_file(partial / MANIFEST) as handle:
        handle.write((json.dumps(manifest, indent=2, sort_keys=True) + "\n").encode())
    with private_file(partial / "README.txt") as handle:
        handle.write(README.format(slug=tenant.slug, at=exported_at.isoformat()).encode())
    partial.rename(output)
    return Manifest(manifest, output)


def read_manifest(path: Path) -> Manifest:
    path = Path(path)
    try:
        data = json.loads((path / MANIFEST).read_text())
    except FileNotFoundError as exc:
        raise ExportError(f"{path} is not an AlphaPulse tenant export: no {MANIFEST}.") from exc
    except (OSError, ValueError) as exc:
        raise ExportError(f"{path}/{MANIFEST} is not readable JSON: {exc}") from exc
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise ExportError(f"{path} is not an AlphaPulse tenant export ({MANIFEST} has no format '{FORMAT}').")
    if data.get("format_version") != FORMAT_VERSION:
        raise ExportError(f"Export format version {data.get('format_version')} is not {FORMAT_VERSION}.")
    try:
        manifest = Manifest(data, path)
        manifest.tenant_id  # noqa: B018  (validates the id)
        for entry in manifest.files:
            if Path(entry["file"]).name != entry["file"] or not entry["file"].endswith(".ndjson"):
                raise ExportError(f"Manifest names a file outside the export: {entry['file']!r}.")
            int(entry["rows"]), str(entry["sha256"]), list(entry["columns"])
    except (KeyError, TypeError, ValueError) as exc:
        raise ExportError(f"{path}/{MANIFEST} is incomplete or malformed: {exc!r}") from exc
    return manifest


def verify_export(path: Path) -> Manifest:
    """The manifest, once every file's checksum and row count match it; ExportError otherwise."""
    manifest = read_manifest(path)
    for entry in manifest.files:
        file = manifest.path / entry["file"]
        if not file.is_file():
            raise ExportError(f"{file} is missing: the export is incomplete.")
        digest, lines = hashlib.sha256(), 0
        with file.open("rb") as handle:
            for line in handle:
                digest.update(line)
                lines += 1
        if digest.hexdigest() != entry["sha256"]:
            raise ExportError(f"{file}: checksum mismatch (the file changed after the export). Export again.")
        if lines != int(entry["rows"]):
            raise ExportError(f"{file}: {lines} rows, the manifest says {entry['rows']}.")
    return manifest


def _schema_differences(exported: dict[str, list[str]], target: dict[str, list[str]]) -> list[str]:
    differences = []
    for app in sorted(exported.keys() | target.keys()):
        have, want = set(target.get(app, [])), set(exported.get(app, []))
        differences += [f"{app}.{name} applied here, not in the export" for name in sorted(have - want)]
        differences += [f"{app}.{name} in the export, not applied here" for name in sorted(want - have)]
    return differences


def _rows(file: Path) -> Iterator[dict[str, Any]]:
    with file.open("rb") as handle:
        for number, line in enumerate(handle, 1):
            try:
                row = json.loads(line)
            except ValueError as exc:
                raise ExportError(f"{file}:{number}: not JSON ({exc}).") from exc
            if not isinstance(row, dict):
                raise ExportError(f"{file}:{number}: not a JSON object.")
            yield row


def _insert(cursor, table: str, fields: list[models.Field], batch: list[list[Any]]) -> None:
    row = sql.SQL("({})").format(sql.SQL(", ").join(sql.Placeholder() * len(fields)))
    statement = sql.SQL("INSERT INTO {} ({}) VALUES {}").format(
        sql.Identifier(table),
        sql.SQL(", ").join(sql.Identifier(f.column) for f in fields),
        sql.SQL(", ").join([row] * len(batch)),
    )
    cursor.execute(statement.as_string(cursor.connection), [value for values in batch for value in values])


def import_tenant(path: Path, *, alias: str = OWNER_DATABASE, progress: Progress | None = None) -> Manifest:
    manifest = verify_export(path)
    differences = _schema_differences(manifest.data["schema_version"], schema_version(alias))
    if differences:
        raise ExportError("Schema version mismatch: " + "; ".join(differences) + ". Migrate the target first.")
    by_table = {m._meta.db_table: m for m in exported_models()}
    listed = [entry["table"] for entry in manifest.files]
    if sorted(listed) != sorted(by_table):
        raise ExportError(f"The export's tables {sorted(listed)} are not this database's {sorted(by_table)}.")
    existing = Tenant.objects.using(alias).filter(pk=manifest.tenant_id) | Tenant.objects.using(alias).filter(
        slug=manifest.slug
    )
    if existing.exists():
        raise ExportError(
            f"Tenant '{manifest.slug}' ({manifest.tenant_id}) already exists here (same id or slug): "
            "import refuses to merge into an existing tenant."
        )
    order = [m._meta.db_table for m in exported_models()]
    entries = sorted(manifest.files, key=lambda e: order.index(e["table"]))
    try:
        _load(manifest, entries, by_table, alias, progress)
    except IntegrityError as exc:
        # A row id (or another key) that a row of this database already holds,
        # another tenant's included: the transaction rolled back, nothing written.
        raise ExportError(
            f"The export's rows conflict with rows already here: {str(exc).splitlines()[0]}. Nothing was imported."
        ) from exc
    return manifest


def _db_value(field: models.Field, value: Any) -> Any:
    """JSON columns go in as jsonb (psycopg adapts no dict by itself); the export holds them as JSON text."""
    if not isinstance(field, models.JSONField) or value is None:
        return value
    return Jsonb(json.loads(value) if isinstance(value, str) else value)


def _check_identity(manifest: Manifest, model: type[models.Model], fields: list, values: list, where: str) -> None:
    """The tenant row is the manifest's tenant; a customer tenant brings no staff (tenants.rules)."""
    columns = [f.column for f in fields]
    if model is Tenant:
        tenant_id, slug = values[columns.index("id")], values[columns.index("slug")]
        if tenant_id != manifest.tenant_id or normalize_slug(str(slug)) != manifest.slug:
            raise ExportError(
                f"{where}: the tenant is '{slug}' ({tenant_id}), the manifest says '{manifest.slug}' "
                f"({manifest.tenant_id})."
            )
    elif model is User and manifest.slug != settings.PLATFORM_TENANT_SLUG:
        if values[columns.index("is_staff")] or values[columns.index("is_superuser")]:
            raise ExportError(
                f"{where}: user '{values[columns.index('username')]}' is staff or superuser; "
                f"only the platform tenant '{settings.PLATFORM_TENANT_SLUG}' has staff."
            )


def _load(manifest: Manifest, entries: list, by_table: dict, alias: str, progress: Progress | None) -> None:
    with transaction.atomic(using=alias), connections[alias].cursor() as cursor:
        for entry in entries:
            model = by_table[entry["table"]]
            fields = columns_of(model)
            if entry["columns"] != [f.column for f in fields]:
                raise ExportError(f"{entry['file']}: columns {entry['columns']} differ from this database's.")
            tenant_column = None if model is Tenant else [f.column for f in fields].index("tenant_id")
            batch: list[list[Any]] = []
            count = 0
            for row in _rows(manifest.path / entry["file"]):
                try:
                    values = [_db_value(f, f.to_python(row[f.column])) for f in fields]
                except (KeyError, TypeError, ValueError, ValidationError) as exc:
                    raise ExportError(f"{entry['file']} row {count + 1}: bad or missing value ({exc})") from exc
                if tenant_column is not None and values[tenant_column] != manifest.tenant_id:
                    raise ExportError(f"{entry['file']} row {count + 1} belongs to another tenant.")
                _check_identity(manifest, model, fields, values, f"{entry['file']} row {count + 1}")
                if model is Tenant:
                    values[[f.name for f in fields].index("slug")] = manifest.slug
                batch.append(values)
                count += 1
                if len(batch) == INSERT_BATCH:
                    _insert(cursor, entry["table"], fields, batch)
                    batch = []
                    if progress:
                        progress(entry["table"], count)
            if batch:
                _insert(cursor, entry["table"], fields, batch)
            if progress:
                progress(entry["table"], count)
        for entry in entries:
            cursor.execute(tenant_rows_count_sql(entry["table"]).as_string(cursor.connection), [manifest.tenant_id])
            (loaded,) = cursor.fetchone()
            if loaded != int(entry["rows"]):
                raise ExportError(f"{entry['table']}: {loaded} rows loaded, the manifest says {entry['rows']}.")
