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

# The suite is chosen by a marker, not a list of files: every test marked
# `citus` (tests/conftest.py gives it to everything under tests/trading,
# tests/jobs and tests/citus: every API write, every job, the cluster's own
# tests; other modules opt in with pytestmark). Arguments replace the
# selection (scripts/test-citus.sh tests/tenants/test_live_server.py -x).
echo "== pytest on the Citus cluster"
if [ "$#" -gt 0 ]; then
  python -m pytest -p no:cacheprovider "$@"
else
  python -m pytest -p no:cacheprovider -m "citus and not drill" tests
fi
