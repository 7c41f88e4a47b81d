# Shared by scripts/db.sh (one PostgreSQL) and scripts/citus.sh (every Citus
# node): the env file with its random local secrets, and the cluster-level
# roles and database, so both deployments hold the same roles with the same
# rules. Needs from the caller: say, die, psql_super, ENV_FILE, PGPORT,
# DB_NAME, APP_ROLE, OWNER_ROLE, BYPASS_ROLE.

# As root, PostgreSQL must run as the OS user postgres.
as_pg() {
  if [ "$(id -u)" -eq 0 ]; then
    id postgres >/dev/null 2>&1 || useradd --system --home-dir /var/lib/postgresql --shell /bin/bash postgres
    runuser -u postgres -- "$@"
  else
    "$@"
  fi
}

superuser() { if [ "$(id -u)" -eq 0 ]; then echo postgres; else id -un; fi; }

random_secret() { python3 -c 'import secrets; print(secrets.token_urlsafe(32))'; }

write_env() {
  [ -f "$ENV_FILE" ] && return 0
  say "writing .env with random local secrets"
  local app_pw owner_pw
  app_pw=$(random_secret | tr -d '_-' | cut -c1-32)
  owner_pw=$(random_secret | tr -d '_-' | cut -c1-32)
  umask 077
  cat >"$ENV_FILE" <<ENV
# Written by scripts/db.sh (make setup). Local secrets only; real environment variables win.
SECRET_KEY=$(random_secret)$(random_secret)
JWT_SIGNING_KEY=$(random_secret)
DEBUG=false
ALLOWED_HOSTS=127.0.0.1,localhost
RLS_ENABLED=true
PGPORT=$PGPORT
APP_DB_PASSWORD=$app_pw
OWNER_DB_PASSWORD=$owner_pw
DATABASE_URL=postgres://$APP_ROLE:$app_pw@127.0.0.1:$PGPORT/$DB_NAME
MIGRATION_DATABASE_URL=postgres://$OWNER_ROLE:$owner_pw@127.0.0.1:$PGPORT/$DB_NAME
ADMIN_USERNAME=admin
ADMIN_PASSWORD=$(random_secret | cut -c1-20)
METRICS_TOKEN=$(random_secret)
ENV
}

# .env files written before /metrics existed get a token too.
ensure_metrics_token() {
  grep -q '^METRICS_TOKEN=' "$ENV_FILE" || echo "METRICS_TOKEN=$(random_secret)" >>"$ENV_FILE"
}

env_value() { grep -E "^$1=" "$ENV_FILE" | tail -n 1 | cut -d= -f2-; }

create_roles_and_database() {
  local app_pw owner_pw
  app_pw=$(env_value APP_DB_PASSWORD)
  owner_pw=$(env_value OWNER_DB_PASSWORD)
  [ -n "$app_pw" ] && [ -n "$owner_pw" ] || die ".env lacks APP_DB_PASSWORD/OWNER_DB_PASSWORD; delete .env and rerun"
  # format() with %I/%L quotes identifiers and literals server-side.
  psql_super -d postgres -v app_pw="$app_pw" -v owner_pw="$owner_pw" <<SQL
SELECT format('CREATE ROLE %I NOLOGIN', '$BYPASS_ROLE')
 WHERE NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '$BYPASS_ROLE') \gexec
SELECT format('CREATE ROLE %I LOGIN', '$OWNER_ROLE')
 WHERE NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '$OWNER_ROLE') \gexec
SELECT format('CREATE ROLE %I LOGIN', '$APP_ROLE')
 WHERE NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '$APP_ROLE') \gexec
SELECT format('ALTER ROLE %I LOGIN NOSUPERUSER NOBYPASSRLS CREATEDB NOCREATEROLE PASSWORD %L', '$OWNER_ROLE', :'owner_pw') \gexec
SELECT format('ALTER ROLE %I LOGIN NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE PASSWORD %L', '$APP_ROLE', :'app_pw') \gexec
-- The owner holds the bypass (and may hand it out in an emergency, section 6).
GRANT $BYPASS_ROLE TO $OWNER_ROLE WITH ADMIN OPTION;
-- The app role's guard rails: a runaway query or an abandoned transaction
-- ends with an error instead of holding a worker and locks.
ALTER ROLE $APP_ROLE SET statement_timeout = '15s';
ALTER ROLE $APP_ROLE SET lock_timeout = '5s';
ALTER ROLE $APP_ROLE SET idle_in_transaction_session_timeout = '60s';
-- Django's own time zone: it then sends no session-level SET TIME ZONE on
-- connect, so the app keeps no session state (safe behind PgBouncer's
-- transaction pooling, tests/drills/test_pgbouncer.py).
ALTER ROLE $APP_ROLE SET timezone = 'UTC';
-- pg_temp last: a temp table can never shadow a tenant table for an
-- unqualified name (tenants/catalog/privileges.py holds the app role's whole set).
ALTER ROLE $APP_ROLE SET search_path = public, pg_temp;
-- SET LOCAL app.current_tenant_id takes no parameters, so its text names the
-- tenant: keep utility statements of the app role out of pg_stat_statements
-- (tests/tenants/test_statement_visibility.py).
ALTER ROLE $APP_ROLE SET pg_stat_statements.track_utility = off;
-- The owner reads every role's statements in pg_stat_statements (query_stats);
-- the app role reads none (they would show other tenants' queries).
GRANT pg_read_all_stats TO $OWNER_ROLE;
SELECT format('CREATE DATABASE %I OWNER %I', '$DB_NAME', '$OWNER_ROLE')
 WHERE NOT EXISTS (SELECT 1 FROM pg_database WHERE datname = '$DB_NAME') \gexec
SQL
  # Every database created later (test databases too) gets pg_stat_statements.
  psql_super -d template1 -c "CREATE EXTENSION IF NOT EXISTS pg_stat_statements"
  psql_super -d "$DB_NAME" -c "CREATE EXTENSION IF NOT EXISTS pg_stat_statements"
  local db
  for db in template1 "$DB_NAME"; do psql_super -d "$db" <<<"$(close_statistics_sql)"; done
}

# The app role reads neither pg_stat_statements nor pg_stat_activity: both
# show the statements of every session of the role, i.e. of every tenant (on
# a Citus worker, the coordinator's fragment queries with every value
# inlined). Privileges on these catalog objects are per database and Citus
# does not propagate them: run this in every database of every node
# (scripts/citus.sh does, for workers added later too).
close_statistics_sql() {
  cat <<SQL
REVOKE ALL ON pg_stat_statements, pg_stat_statements_info FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION pg_stat_statements(boolean), pg_stat_statements_info() FROM PUBLIC;
GRANT SELECT ON pg_stat_statements, pg_stat_statements_info TO $OWNER_ROLE;
GRANT EXECUTE ON FUNCTION pg_stat_statements(boolean), pg_stat_statements_info() TO $OWNER_ROLE;
REVOKE SELECT ON pg_catalog.pg_stat_activity FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION pg_catalog.pg_stat_get_activity(integer), pg_catalog.pg_stat_get_backend_activity(integer) FROM PUBLIC;
GRANT SELECT ON pg_catalog.pg_stat_activity TO $OWNER_ROLE;
GRANT EXECUTE ON FUNCTION pg_catalog.pg_stat_get_activity(integer), pg_catalog.pg_stat_get_backend_activity(integer) TO $OWNER_ROLE;
SQL
}

