#!/usr/bin/env bash
# README command 2 (`make test`): every test tier on PostgreSQL 15 and 18.
#   1. unit tests of the pure kernels (plain cargo test, no Postgres)
#   2. #[pg_test] tests inside Postgres (cargo pgrx test, run as postgres)
#   3. pg_regress SQL tests + the concurrency test against an installed build
# Pass servers to restrict:  scripts/test.sh pg18
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
source "$root/scripts/env.sh"
servers=("$@")
[ ${#servers[@]} -gt 0 ] || servers=(pg15 pg18)
cd "$root"

"$root/scripts/setup.sh"

echo "==> tier 1: unit tests (no Postgres)"
cargo test --lib -- core:: 2>&1 | grep -E '^(test result|failures|---- |thread )' || true
cargo test --lib -- core:: >/dev/null 2>&1 || { cargo test --lib -- core::; exit 1; }

for server in "${servers[@]}"; do
  echo "==> tier 2: #[pg_test] on $server"
  pgdata="$root/tmp/pgtest-$server"
  mkdir -p "$pgdata" && chown postgres:postgres "$pgdata"
  cargo pgrx test "$server" --runas postgres --pgdata "$pgdata"

  echo "==> tier 3: SQL regression + concurrency on $server"
  "$root/scripts/regress.sh" "$server"
done
echo "==> all tests passed on: ${servers[*]}"
