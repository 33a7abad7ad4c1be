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
# the cluster owner, for what the application role may not do (the peers' suites swap their
# fixtures with it; the import tests create the schema each peer writes its tables in)
export CTXSTORE_ADMIN_DSN="host=$datadir port=$port user=postgres dbname=clients"
# pytest's last line counts every test once: "N passed, M skipped, F failed ..."
count() { grep -Eo "[0-9]+ $1" "$reports/pytest.log" | tail -n1 | grep -Eo '[0-9]+' || echo 0; }
status=0
"$venv/bin/python" -m pytest -q -p no:cacheprovider -o console_output_style=classic \
  --junitxml="$reports/junit.xml" tests 2>&1 | tee "$reports/pytest.log" || status=$?
own_passed=$(count passed) own_skipped=$(count skipped) own_failed=$(( $(count failed) + $(count 'errors?') ))

# The official Postgres backends' own test files, fixtures swapped (tests/peer_suites): their
# source distributions at the pinned versions, fetched once into tmp/peer-sdists.
sdists="$root/tmp/peer-sdists"
mkdir -p "$sdists"
peers=()
for pin in $(grep -E '^(langgraph-checkpoint-postgres|langchain-postgres)==' "$root/clients/python/requirements-test.txt"); do
  dir="$sdists/$(echo "${pin%%==*}" | tr - _)-${pin##*==}"
  if ! [ -d "$dir/tests" ]; then
    "$venv/bin/pip" download -q --disable-pip-version-check --no-deps --no-binary :all: "$pin" -d "$sdists"
    tar -xzf "$sdists/$(basename "$dir").tar.gz" -C "$sdists"
  fi
  peers+=("$dir")
done
peer_status=0
(cd "$root/tests/peer_suites" && "$venv/bin/python" run.py "$reports/peer-suites" "${peers[@]}") \
  > "$reports/peer-suites.log" 2>&1 || peer_status=$?
grep -E '^(PEER|  failed)' "$reports/peer-suites.log" || tail -n 30 "$reports/peer-suites.log"
line=$(grep -E '^PEER TOTAL' "$reports/peer-suites.log" || echo "PEER TOTAL: 0 passed, 1 failed, 0 skipped, 0 excluded")
num() { echo "$line" | grep -Eo "[0-9]+ $1" | grep -Eo '[0-9]+'; }
# one result line for the tier: each test counted once, the peers' excluded ones as skipped
result "$(( own_passed + $(num passed) ))" "$(( own_skipped + $(num skipped) + $(num excluded) ))" \
  "$(( own_failed + $(num failed) ))" \
  "pytest tests: the adapters' own, langchain-tests suites, checkpoint conformance, the Agents SDK session; plus the peers' own test files, fixtures swapped: $(num passed) of $(echo "$line" | grep -Eo 'of [0-9]+' | grep -Eo '[0-9]+')"
if [ "$status" != 0 ] || [ "$peer_status" != 0 ]; then
  echo "---- server log ($server)"; tail -n 30 "$datadir/server.log" || true
  exit 1
fi
