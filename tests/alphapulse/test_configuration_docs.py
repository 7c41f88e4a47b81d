"""docs/configuration.md has one row for every environment variable alphapulse/settings.py
reads, so a new variable cannot go undocumented. The reads are found in the settings' syntax
tree: `env(...)`, `env.<cast>(...)`, `os.environ...(...)` and `_database(...)` called with a
literal name."""

from __future__ import annotations

import ast
import re

from tests.support.scratch import ROOT

SETTINGS = ROOT / "alphapulse" / "settings.py"
DOCS = ROOT / "docs" / "configuration.md"


def _root_name(node: ast.expr) -> ast.expr:
    while isinstance(node, ast.Attribute):
        node = node.value
    return node


def variables_read_by_settings() -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(SETTINGS.read_text())):
        if not (isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.Constant)):
            continue
        name = node.args[0].value
        if not isinstance(name, str):
            continue
        called = ast.unparse(node.func)
        root = _root_name(node.func)
        if (
            (isinstance(root, ast.Name) and root.id == "env")
            or called.startswith("os.environ")
            or called == "_database"
        ):
            found.add(name)
    return found


def documented_variables() -> set[str]:
    rows = [line for line in DOCS.read_text().splitlines() if line.startswith("| `")]
    return {name for row in rows for name in re.findall(r"`([A-Z][A-Z0-9_]+)`", row.split("|")[1])}


def test_the_parser_finds_the_settings_reads():
    found = variables_read_by_settings()
    assert {"SECRET_KEY", "DATABASE_URL", "MIGRATION_DATABASE_URL", "REDIS_URL", "ENV_FILE"} <= found


def test_every_variable_the_settings_read_is_documented():
    missing = variables_read_by_settings() - documented_variables()
    assert not missing, f"add a row (variable | default | meaning) to docs/configuration.md for: {sorted(missing)}"


def test_the_settings_table_has_a_default_and_a_meaning_for_each():
    settings_table = DOCS.read_text().split("## Settings", 1)[1].split("\n## ", 1)[0]
    for row in (line for line in settings_table.splitlines() if line.startswith("| `")):
        cells = [cell.strip() for cell in row.strip("|").split("|")]
        assert len(cells) == 3 and all(cells), row
