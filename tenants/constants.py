"""The one source for every name the tenancy machinery shares: the tenant setting,
the cluster roles, the default tenant and the policy names.

Migrations, checks, commands, scripts and tests import these; none spells a
role, a policy or the tenant setting on its own. Which tables are tenant
tables is not listed here: tenants.registry discovers them from the models.
"""

import uuid
from pathlib import Path

# The Django alias of the owner role's connection (MIGRATION_DATABASE_URL):
# migrations, platform commands, backups and the admin use it.
OWNER_DATABASE = "owner"

# The transaction-local setting every policy reads.
TENANT_SETTING = "app.current_tenant_id"


def _cluster_roles() -> dict[str, str]:
    """The role names of cluster_roles.env, the one file the shell scripts source as well."""
    lines = Path(__file__).with_name("cluster_roles.env").read_text().splitlines()
    pairs = (line.split("=", 1) for line in lines if line.strip() and not line.startswith("#"))
    return {name.strip(): value.strip() for name, value in pairs}


# Cluster roles (created by scripts/db.sh and scripts/citus.sh).
_ROLES = _cluster_roles()
APP_ROLE = _ROLES["APP_ROLE"]
OWNER_ROLE = _ROLES["OWNER_ROLE"]
BYPASS_ROLE = _ROLES["BYPASS_ROLE"]

# Legacy single-tenant rows all belong here (seed, US-001).
DEFAULT_TENANT_ID = uuid.UUID("00000000-0000-0000-0000-000000000001")
DEFAULT_TENANT_SLUG = "default"

# The policy names the seed's verification queries look for.
ISOLATION_POLICY = "tenant_isolation_policy"
INSERT_POLICY = "tenant_insert_policy"
BYPASS_POLICY = "tenant_bypass_policy"
POLICY_NAMES = (ISOLATION_POLICY, INSERT_POLICY, BYPASS_POLICY)
