"""The import boundaries that keep the house one-way. No exceptions are declared.

- `tenants` is the platform every app stands on, so it never imports the apps built on it
  (`trading`, `jobs`, `platform_ops`): adding a domain table, a job or an operations tool must
  not touch the tenancy code. The platform audit recorder lives in tenants
  (`tenants/platform_audit.py`), so the tenant services record their own changes.
- `tenants/database/` (the tenant setting, routers, bulk) is the ground floor under the core:
  it never imports the core (models, context, services, registry) nor the catalog machinery
  above it (`tenants/catalog/`).
- `tenants/database/` and `tenants/catalog/` (RLS operations, checks, backups) run in
  migrations, management commands and Celery workers, where there is no request: they never
  import the HTTP edge (`tenants/http/`, DRF, simplejwt, drf-spectacular) or the admin.
- A model never imports a service: services stand on the models (service -> model ->
  full_clean()); the rules both need live in a rules module (`tenants/rules.py`).

Imports are read from the syntax tree, so an import inside a function counts as much as one at the
top of a module, and so do dotted paths written as strings (settings-style `import_string`).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]

APPS_BUILT_ON_TENANTS = ("trading", "jobs", "platform_ops")
CORE_AND_CATALOG = (
    "tenants.models",
    "tenants.context",
    "tenants.services",
    "tenants.registry",
    "tenants.rules",
    "tenants.platform_audit",
    "tenants.catalog",
)
SERVICES = tuple(f"{app}.services" for app in ("tenants", "trading", "jobs", "platform_ops"))
HTTP_EDGE = (
    "tenants.http",
    "tenants.admin",
    "rest_framework",
    "rest_framework_simplejwt",
    "drf_spectacular",
    "django.contrib.admin",
)

# (package or module file whose imports are checked, module prefixes they must not import)
BOUNDARIES = [
    ("tenants", APPS_BUILT_ON_TENANTS),
    ("tenants/database", CORE_AND_CATALOG),
    ("tenants/database", HTTP_EDGE),
    ("tenants/catalog", HTTP_EDGE),
    *((f"{app}/models.py", SERVICES) for app in ("tenants", "trading", "platform_ops")),
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


def offenders(package: str, forbidden: tuple[str, ...]) -> list[str]:
    found = []
    paths = [REPO / package] if package.endswith(".py") else sorted((REPO / package).rglob("*.py"))
    for path in paths:
        module = ".".join(path.relative_to(REPO).with_suffix("").parts)
        for name in sorted(imported_names(path.read_text(), module)):
            if crosses(name, forbidden):
                found.append(f"{path.relative_to(REPO)} imports {name}")
    return found


@pytest.mark.parametrize(
    ("package", "forbidden"),
    BOUNDARIES,
    ids=[f"{package}-never-imports-{forbidden[0]}" for package, forbidden in BOUNDARIES],
)
def test_boundary_holds(package, forbidden):
    assert (REPO / package).exists(), f"{package} moved: update BOUNDARIES"
    assert offenders(package, forbidden) == []


@pytest.mark.parametrize(
    "source",
    [
        "import trading.models",
        "from trading.models import Trade",
        "def later():\n    from jobs import tasks",
        "IMPORTED_LATER = 'trading.services.create_order'",
        "from platform_ops import audit",
        "def later():\n    from platform_ops.admin_actions import offboard",
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


@pytest.mark.parametrize(
    "source",
    [
        "from tenants import services",
        "def later():\n    from tenants import services",
        "from tenants.services import user_create",
        "from . import services",
    ],
)
def test_a_service_import_in_a_model_is_caught(source):
    names = imported_names(source, "tenants.models")
    assert any(crosses(name, SERVICES) for name in names)


@pytest.mark.parametrize(
    "source",
    [
        "from tenants.models import Tenant",
        "from tenants.catalog.privileges import privilege_problems",
        "from ..catalog import ddl",
        "def later():\n    from tenants.context import tenant_context",
    ],
)
def test_a_core_or_catalog_import_in_the_runtime_floor_is_caught(source):
    names = imported_names(source, "tenants.database.tenant_setting")
    assert any(crosses(name, CORE_AND_CATALOG) for name in names)
