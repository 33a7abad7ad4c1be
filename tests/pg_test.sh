#!/usr/bin/env bash
# #[pg_test] tests inside Postgres (src/tests/: model-based conversation and processor tests,
# recall against brute force, catalog checks), run by cargo pgrx test as user postgres:
#   pg_test.sh pg15|pg18
# Only the pg_test functions run here (names `tests::…::pg_…`): the plain unit and property
# tests run once, in tests/unit.sh.
source "$(dirname "$0")/lib.sh"
server=$1
cd "$root"
scratch_dir
pgdata="$root/tmp/pgtest-$server"
mkdir -p "$pgdata" && chown postgres:postgres "$pgdata"
cargo pgrx test "$server" "::pg_" --runas postgres --pgdata "$pgdata" 2>&1 | tee "$work/pg_test.log"
line=$(grep -E '^test result' "$work/pg_test.log" | grep -Ev '^test result: ok\. 0 passed; 0 failed' || true)
[ "$(echo "$line" | grep -c .)" = 1 ] || fail "expected one test binary with pg_tests, got: $line"
num() { echo "$line" | grep -Eo "[0-9]+ $1" | grep -Eo '[0-9]+'; }
result "$(num passed)" "$(num ignored)" "$(num failed)" "pg_test functions"
