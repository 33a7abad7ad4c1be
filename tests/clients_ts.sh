#!/usr/bin/env bash
# The TypeScript client (clients/typescript, Mastra's vector store on ctxstore) against an
# installed build:   clients_ts.sh pg15|pg18
# Type-checks the package, then runs its vitest suites: filter translation, and the vector
# adapter against @mastra/pg's PgVector on the same server (PG 18, with pgvector) and a
# brute-force reference (both servers; PG 15 through ctxstore's exact path), as an
# application role under row-level security.
source "$(dirname "$0")/lib.sh"
server=$1
pg_config=$(pg_config_for "$server")
reports="$root/tmp/clients-ts-$server"
"$root/scripts/node.sh" check || exit 1

rm -rf "$reports"
mkdir -p "$reports"
throwaway_cluster "$server" clients-ts-db $((57200 + ${server#pg})) \
  "ctxstore.master_key=fixture:000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f"
psql -d postgres -c "CREATE DATABASE clients" -c "CREATE ROLE ctxstore_app LOGIN"
vector=0
if [ -f "$("$pg_config" --sharedir)/extension/vector.control" ]; then
  psql -d clients -c "CREATE EXTENSION vector"
  vector=1
fi
psql -d clients -c "CREATE EXTENSION ctxstore" -c "SELECT ctx.grant_access('ctxstore_app')" >/dev/null

cd "$root/clients/typescript"
# the lockfile pins every package (npm ci installs exactly it); reinstalled when it changes
if ! cmp -s package-lock.json node_modules/.package-lock.json 2>/dev/null; then
  npm ci --ignore-scripts --no-audit --no-fund --loglevel=error
fi
export CTXSTORE_PG_HOST="$datadir" CTXSTORE_PG_PORT="$port" CTXSTORE_PG_DATABASE=clients \
  CTXSTORE_PG_APP_USER=ctxstore_app CTXSTORE_PG_ADMIN_USER=postgres CTXSTORE_PG_VECTOR=$vector NO_COLOR=1
status=0
# (built, not only checked: the concurrency test's worker processes import dist/)
npx tsc -p tsconfig.json 2>&1 | tee "$reports/tsc.log" || status=$?
export CTXSTORE_TS_REPORTS="$reports"
npx vitest run --reporter=default --reporter=junit --outputFile.junit="$reports/junit.xml" 2>&1 \
  | tee "$reports/vitest.log" || status=$?
# vitest's summary line: "Tests  N passed | M skipped (T)" (failed first when any)
tests=$(grep -E '^ +Tests ' "$reports/vitest.log" | tail -n1)
files=$(grep -E '^ +Test Files ' "$reports/vitest.log" | tail -n1)
num() { echo "$1" | grep -Eo "[0-9]+ $2" | grep -Eo '[0-9]+' || echo 0; }
# a file that fails to load runs none of its tests: it counts as a failure of its own
failed=$(( $(num "$tests" failed) + $(num "$files" failed) ))
[ "$status" = 0 ] || [ "$failed" -gt 0 ] || failed=1
result "$(num "$tests" passed)" "$(num "$tests" skipped)" "$failed" "vitest: filter translation; the vector adapter vs @mastra/pg's PgVector and a brute-force reference; the memory storage vs @mastra/pg's MemoryPG, call by call and under Memory"
if [ "$status" != 0 ]; then
  echo "---- server log ($server)"; tail -n 30 "$datadir/server.log" || true
  exit 1
fi
