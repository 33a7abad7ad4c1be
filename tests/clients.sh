#!/usr/bin/env bash
# The Python adapters (clients/python) against an installed build:   clients.sh pg15|pg18
# langchain-tests standard suites, langgraph-checkpoint-conformance (its capability reports go
# to tmp/clients-<server>/), and the adapters' own tests, as an application role under
# row-level security: every test connects as a tenant of its own.
source "$(dirname "$0")/lib.sh"
server=$1
pg_config=$(pg_config_for "$server")
reports="$root/tmp/clients-$server"
# The adapters' test requirements, pinned, in their own venv.
venv="$root/.venv-clients"
ensure_venv "$venv" "$root/clients/python/requirements-test.txt"

rm -rf "$reports"
mkdir -p "$reports"
throwaway_cluster "$server" clients-db $((57100 + ${server#pg})) \
  "ctxstore.master_key=fixture:000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f"
psql -d postgres -c "CREATE DATABASE clients" -c "CREATE ROLE ctxstore_app LOGIN"
if [ -f "$("$pg_config" --sharedir)/extension/vector.control" ]; then
  psql -d clients -c "CREATE EXTENSION vector"
fi
psql -d clients -c "CREATE EXTENSION ctxstore" -c "SELECT ctx.grant_access('ctxstore_app')" >/dev/null

cd "$root/clients/python"
export CTXSTORE_TEST_DSN="host=$datadir port=$port user=ctxstore_app dbname=clients"
export CTXSTORE_REPORTS="$reports"
# pytest's last line counts every test once: "N passed, M skipped, F failed ..."
count() { grep -Eo "[0-9]+ $1" "$reports/pytest.log" | tail -n1 | grep -Eo '[0-9]+' || echo 0; }
status=0
"$venv/bin/python" -m pytest -q -p no:cacheprovider -o console_output_style=classic \
  --junitxml="$reports/junit.xml" tests 2>&1 | tee "$reports/pytest.log" || status=$?
failed=$(( $(count failed) + $(count 'errors?') ))
result "$(count passed)" "$(count skipped)" "$failed" "pytest tests: langchain-tests suites, checkpoint conformance, adapters"
if [ "$status" != 0 ]; then
  echo "---- server log ($server)"; tail -n 30 "$datadir/server.log" || true
  exit 1
fi
