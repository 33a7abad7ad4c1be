#!/usr/bin/env bash
# Every ctx.* function, type, view and table of the installed extension has an entry in
# docs/reference/ (tests/reference_coverage.sh, from the catalog):   reference.sh pg15|pg18
source "$(dirname "$0")/lib.sh"
throwaway_cluster "$1" reference $((56500 + ${1#pg}))
scratch_dir
psql -d postgres -c "CREATE DATABASE ctxstore_reference"
psql -d ctxstore_reference -c "CREATE EXTENSION ctxstore"
covered=0
"$root/tests/reference_coverage.sh" sudo -u postgres "$bindir/psql" -h "$datadir" -p "$port" -U postgres \
  -d ctxstore_reference | tee "$work/coverage.log" || covered=$?
read -r total missing < <(sed -n 's/^reference coverage: \([0-9]*\) objects, \([0-9]*\) missing$/\1 \2/p' "$work/coverage.log")
result $((total - missing)) 0 "$missing" "catalog objects with a reference entry"
exit "$covered"
