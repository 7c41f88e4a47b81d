"""Every benchmark the docs name starts: `python -m bench.<name> --help` exits 0 with its usage.

The bench tools live under scripts/bench/, outside the test suite's imports, so nothing else
would notice one that breaks at import (bench.data read the models before django.setup() and
`make bench-data` died with ImproperlyConfigured).
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from tests.support.scratch import ROOT

ENTRY_POINTS = [
    "data", "threeway", "rehearse", "citus", "policy_shapes", "tenant_signature", "profile", "plans", "scale",
    "index_cost", "statement_cost",
]  # fmt: skip


@pytest.mark.parametrize("name", ENTRY_POINTS)
def test_the_bench_tool_starts(name):
    env = {**os.environ, "PYTHONPATH": str(ROOT / "scripts")}
    env.pop("DJANGO_SETTINGS_MODULE", None)  # as `make bench-data` runs it: the tool sets up Django itself
    result = subprocess.run(
        [sys.executable, "-m", f"bench.{name}", "--help"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert "usage:" in result.stdout
