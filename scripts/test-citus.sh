#!/usr/bin/env bash
# make test-citus: the isolation and API suites against the Citus cluster of
# scripts/citus.sh (already up), as the app role. tests/conftest.py builds the
# test database on every node through scripts/citus.sh createdb, migrates it
# as the owner and refuses to run unless the tables are really distributed.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PWD/.venv/bin:$PATH"
export ENV_FILE=.env.citus TEST_ON_CITUS=1
export TEST_DB_NAME="${CITUS_TEST_DB_NAME:-test_alphapulse_citus}"

suites=(
  tests/tenants/test_rls_policies.py
  tests/trading/test_api_isolation.py
  tests/tenants/test_tenant_middleware.py
  tests/tenants/test_live_server.py
  tests/trading/test_openapi_fuzz.py
)
# Citus-only tests (the distributed layout, routing, the cluster's bugs).
[ -d tests/citus ] && suites+=(tests/citus)

echo "== pytest on the Citus cluster"
# Arguments replace the default suites (scripts/test-citus.sh tests/tenants/test_live_server.py -x).
if [ "$#" -gt 0 ]; then suites=("$@"); fi
python -m pytest -p no:cacheprovider "${suites[@]}"
