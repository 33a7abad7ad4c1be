#!/usr/bin/env bash
# README command 2 (`make test`): every test tier on PostgreSQL 15 and 18.
#   1. unit tests of the pure kernels (plain cargo test, no Postgres)
#   2. #[pg_test] tests inside Postgres (cargo pgrx test, run as postgres)
#   3. pg_regress SQL tests + the concurrency test against an installed build
#   4. the Python adapters against LangChain's and LangGraph's published test suites
# Pass servers to restrict:  scripts/test.sh pg18
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
source "$root/scripts/env.sh"
servers=("$@")
[ ${#servers[@]} -gt 0 ] || servers=(pg15 pg18)
cd "$root"

"$root/scripts/setup.sh"

log="$root/tmp/test-run.log"
mkdir -p "$root/tmp" && : > "$log"
passed=0
# Runs a tier, shows its output, and adds the tests it reports as passed to the total.
tier() {
  local pattern=$1; shift
  { "$@" 2>&1; echo $? > "$root/tmp/tier.status"; } | tee -a "$log" | tee "$root/tmp/tier.log"
  local status
  status=$(cat "$root/tmp/tier.status")
  if [ "$status" -ne 0 ]; then
    echo "FAILED: $*" >&2
    echo "ctxstore: $passed passed, 1 failed"
    exit "$status"
  fi
  local n
  n=$({ grep -Eo "$pattern" "$root/tmp/tier.log" || true; } | { grep -Eo '[0-9]+' || true; } | awk '{ s += $1 } END { print s + 0 }')
  passed=$((passed + ${n:-0}))
}

echo "==> tier 1: unit tests (no Postgres)"
tier 'test result: ok\. [0-9]+ passed' cargo test --lib -- core::
echo "==> tier 1: property tests (proptest)"
tier 'test result: ok\. [0-9]+ passed' cargo test --test properties
echo "==> tier 1: libFuzzer targets, a bounded slice (scripts/fuzz.sh 60 for longer runs)"
tier 'fuzz targets: [0-9]+ passed' "$root/scripts/fuzz.sh" "${CTXSTORE_FUZZ_SECONDS:-10}"

for server in "${servers[@]}"; do
  echo "==> tier 2: #[pg_test] on $server"
  pgdata="$root/tmp/pgtest-$server"
  mkdir -p "$pgdata" && chown postgres:postgres "$pgdata"
  tier 'test result: ok\. [0-9]+ passed' cargo pgrx test "$server" --runas postgres --pgdata "$pgdata"

  echo "==> tier 3: SQL regression + concurrency on $server"
  tier 'sql tests: [0-9]+ passed' "$root/scripts/regress.sh" "$server"

  echo "==> tier 4: Python adapters (LangChain / LangGraph suites) on $server"
  tier 'client tests: [0-9]+ passed' "$root/tests/clients.sh" "$server"
done
echo "==> all tiers passed on: ${servers[*]}"
echo "ctxstore: $passed passed, 0 failed"
