"""The import boundaries that keep `tenants/` in its rooms.

- `tenants` is the platform every app stands on, so it never imports the apps built on it
  (`trading`, `jobs`): adding a domain table or a job must not touch the tenancy code.
- The one exception is the audit trail: the operator surfaces (`tenants/admin.py` and the
  management commands) record what an operator did through `platform_ops`; nothing else in
  `tenants` may import `platform_ops`, so the models, the tenant setting and the request edge
  stay free of it.
- `tenants/database/` (the tenant setting, routers, bulk) and `tenants/catalog/` (RLS operations,
  checks, backups) run in migrations, management commands and Celery workers, where there is no
  request: they never import the HTTP edge (`tenants/http/`, DRF, simplejwt, drf-spectacular) or
  the admin.

Imports are read from the syntax tree, so an import inside a function counts as much as one at the
top of a module, and so do dotted paths written as strings (settings-style `import_string`).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]

APPS_BUILT_ON_TENANTS = ("trading", "jobs")
OPERATIONS_APP = ("platform_ops",)
OPERATOR_SURFACES = ("tenants/admin.py", "tenants/management/")
HTTP_EDGE = (
    "tenants.http",
    "tenants.admin",
    "rest_framework",
    "rest_framework_simplejwt",
    "drf_spectacular",
    "django.contrib.admin",
)

# (package whose modules are checked, module prefixes they must not import, paths exempted)
BOUNDARIES = [
    ("tenants", APPS_BUILT_ON_TENANTS, ()),
    ("tenants", OPERATIONS_APP, OPERATOR_SURFACES),
    ("tenants/database", HTTP_EDGE, ()),
    ("tenants/catalog", HTTP_EDGE, ()),
]


def imported_names(source: str, module: str) -> set[str]:
    """Every dotted module name `source` (the text of `module`) imports or names in a string."""
    names: set[str] = set()
    package = module.rsplit(".", 1)[0]
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative import: resolve against the module's own package
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            names.add(base)
            # `from tenants import http` imports the module tenants.http
            names.update(f"{base}.{alias.name}" for alias in node.names)
        elif isinstance(node, ast.Constant) and isinstance(node.value, str):
            if node.value.replace(".", "").replace("_", "").isalnum() and "." in node.value:
                names.add(node.value)
    return names


def crosses(name: str, forbidden: tuple[str, ...]) -> bool:
    return any(name == prefix or name.startswith(prefix + ".") for prefix in forbidden)


def offenders(package: str, forbidden: tuple[str, ...], exempt: tuple[str, ...] = ()) -> list[str]:
    found = []
    for path in sorted((REPO / package).rglob("*.py")):
        if str(path.relative_to(REPO)).startswith(exempt):
            continue
        module = ".".join(path.relative_to(REPO).with_suffix("").parts)
        for name in sorted(imported_names(path.read_text(), module)):
            if crosses(name, forbidden):
                found.append(f"{path.relative_to(REPO)} imports {name}")
    return found


@pytest.mark.parametrize(
    ("package", "forbidden", "exempt"),
    BOUNDARIES,
    ids=[f"{package}-never-imports-{forbidden[0]}" for package, forbidden, _ in BOUNDARIES],
)
def test_boundary_holds(package, forbidden, exempt):
    assert (REPO / package).is_dir(), f"{package} moved: update BOUNDARIES"
    for path in exempt:
        assert (REPO / path).exists(), f"{path} moved: update OPERATOR_SURFACES"
    assert offenders(package, forbidden, exempt) == []


def test_the_operator_surfaces_import_only_the_audit_trail_of_platform_ops():
    # tenants/admin.py also mounts the offboarding admin action; both are operator actions.
    allowed = ("platform_ops.audit", "platform_ops.admin_actions")
    reached = {line.split(" imports ")[1] for line in offenders("tenants", OPERATIONS_APP)}
    assert reached, "no operator surface records an audit entry any more: drop the exemption"
    assert {name for name in reached if name != "platform_ops" and not crosses(name, allowed)} == set()


@pytest.mark.parametrize(
    "source",
    [
        "import trading.models",
        "from trading.models import Trade",
        "def later():\n    from jobs import tasks",
        "IMPORTED_LATER = 'trading.services.create_order'",
    ],
)
def test_an_app_import_in_tenants_is_caught(source):
    names = imported_names(source, "tenants.models")
    assert any(crosses(name, APPS_BUILT_ON_TENANTS) for name in names)


@pytest.mark.parametrize(
    "source",
    [
        "from tenants.http.middleware import TenantMiddleware",
        "from tenants import http",
        "from tenants import admin",
        "from ..http import views",
        "from rest_framework.exceptions import ValidationError",
        "def later():\n    import rest_framework_simplejwt.tokens",
        "MIDDLEWARE = 'tenants.http.middleware.TenantMiddleware'",
    ],
)
def test_an_http_import_in_the_database_machinery_is_caught(source):
    names = imported_names(source, "tenants.catalog.checks")
    assert any(crosses(name, HTTP_EDGE) for name in names)


@pytest.mark.parametrize(
    "source",
    [
        "from tenants.database.tenant_setting import set_tenant",
        "from tenants import context",
        "from . import ddl",
        "from django.db import connection",
        "MESSAGE = 'see docs/design.md.'",
    ],
)
def test_imports_inside_the_boundary_are_allowed(source):
    names = imported_names(source, "tenants.catalog.checks")
    assert not any(crosses(name, HTTP_EDGE) or crosses(name, APPS_BUILT_ON_TENANTS) for name in names)
