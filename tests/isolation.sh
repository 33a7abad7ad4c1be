#!/usr/bin/env bash
# Isolation tests: interleavings of concurrent sessions that matter (tests/isolation/specs),
# run by pg_isolation_regress:   isolation.sh pg15|pg18   (after scripts/install.sh)
source "$(dirname "$0")/lib.sh"
# like pg_regress, Debian's driver works against any server version
isolation_regress="$("$PG15_CONFIG" --pkglibdir)/pgxs/src/test/isolation/pg_isolation_regress"
throwaway_cluster "$1" isolation $((56200 + ${1#pg}))
scratch_dir
specs=()
for f in "$root"/tests/isolation/specs/*.spec; do specs+=("$(basename "$f" .spec)"); done
psql -d postgres -c "CREATE DATABASE ctxstore_isolation"
cd "$work"
permutations=$(grep -h '^permutation' "$root"/tests/isolation/specs/*.spec | wc -l)
if ! as_pg "$isolation_regress" --use-existing --host="$datadir" --port="$port" --user=postgres \
      --dbname=ctxstore_isolation --inputdir="$root/tests/isolation" --outputdir="$work" "${specs[@]}" \
      2>&1 | tee "$work/isolation.log"; then
  echo "---- regression.diffs (isolation)"; cat "$work/regression.diffs" || true
  failed=$(grep -Ec '^(test .*\.\.\. (FAILED|failed|diff)|not ok)' "$work/isolation.log" || true)
  # (a failure the log does not name a spec for, e.g. a missing expected file, is still one)
  [ "$failed" -gt 0 ] || failed=1
  result $((${#specs[@]} - failed)) 0 "$failed" "isolation specs"
  exit 1
fi
result ${#specs[@]} 0 0 "isolation specs, $permutations permutations"
