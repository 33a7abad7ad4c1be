#!/usr/bin/env bash
# The Python adapters (clients/python) against an installed build:   clients.sh pg15|pg18
# langchain-tests standard suites, langgraph-checkpoint-conformance (its capability reports go
# to tmp/clients-<server>/), and the adapters' own tests, as an application role under
# row-level security: every test connects as a tenant of its own.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
source "$root/scripts/env.sh"
server=$1
pg_config=$(pg_config_for "$server")
bindir=$("$pg_config" --bindir)
datadir="$root/tmp/clients-db-$server"
reports="$root/tmp/clients-$server"
port=$((57100 + ${server#pg}))

# The adapters' test requirements, pinned, in their own venv.
venv="$root/.venv-clients"
ensure_venv "$venv" "$root/clients/python/requirements-test.txt"

cleanup() { local status=$?; "$root/scripts/cluster.sh" finish "$server" "$datadir" "$status"; }
trap cleanup EXIT
rm -rf "$datadir" "$reports"
mkdir -p "$reports"
"$root/scripts/cluster.sh" start "$server" "$datadir" "$port" \
  "ctxstore.master_key=fixture:000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f"
psql() { sudo -u postgres "$bindir/psql" -X -q -v ON_ERROR_STOP=1 -h "$datadir" -p "$port" -U postgres "$@"; }
psql -d postgres -c "CREATE DATABASE clients" -c "CREATE ROLE ctxstore_app LOGIN"
if [ -f "$("$pg_config" --sharedir)/extension/vector.control" ]; then
  psql -d clients -c "CREATE EXTENSION vector"
fi
psql -d clients -c "CREATE EXTENSION ctxstore" -c "SELECT ctx.grant_access('ctxstore_app')" >/dev/null

cd "$root/clients/python"
export CTXSTORE_TEST_DSN="host=$datadir port=$port user=ctxstore_app dbname=clients"
export CTXSTORE_REPORTS="$reports"
if ! "$venv/bin/python" -m pytest -q -p no:cacheprovider -o console_output_style=classic \
      --junitxml="$reports/junit.xml" tests 2>&1 | tee "$reports/pytest.log"; then
  echo "---- server log ($server)"; tail -n 30 "$datadir/server.log" || true
  exit 1
fi
grep -q " passed" "$reports/pytest.log" || exit 1
passed=$(grep -Eo '[0-9]+ passed' "$reports/pytest.log" | tail -n1 | grep -Eo '[0-9]+')
echo "client tests: $passed passed ($server: langchain-tests suites, checkpoint conformance, adapters)"
