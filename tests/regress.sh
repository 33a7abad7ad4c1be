#!/usr/bin/env bash
# SQL regression tests: tests/sql/*.sql against tests/expected/*.out with pg_regress, on a
# throwaway cluster of an installed build:   regress.sh pg15|pg18   (after scripts/install.sh)
# Files named *_pgvector.sql need the vector extension: where it is missing they are skipped,
# and counted as skipped.
source "$(dirname "$0")/lib.sh"
server=$1
pg_config=$(pg_config_for "$server")
# pg_regress is only a driver (psql + diff): Debian's works against any server, and the wheel's
# copy crashes in the dynamic loader.
pg_regress="$("$PG15_CONFIG" --pkglibdir)/pgxs/src/test/regress/pg_regress"
outdir="$root/tmp/regress-out-$server"
throwaway_cluster "$server" regress "${CTXSTORE_REGRESS_PORT:-$((56000 + ${server#pg}))}"
rm -rf "$outdir" && mkdir -p "$outdir" && chown postgres "$outdir"
at_exit '[ "$status" != 0 ] || rm -rf "$outdir"'

tests=() skipped=()
has_vector=$([ -f "$("$pg_config" --sharedir)/extension/vector.control" ] && echo 1 || echo 0)
for f in "$root"/tests/sql/*.sql; do
  name=$(basename "$f" .sql)
  if [[ $name == *_pgvector ]] && [ "$has_vector" = 0 ]; then skipped+=("$name"); continue; fi
  tests+=("$name")
done
[ ${#skipped[@]} = 0 ] || echo "skipped (no pgvector on $server): ${skipped[*]}"

psql -d postgres -c "CREATE DATABASE ctxstore_regress"
cd "$outdir"
if ! as_pg "$pg_regress" --use-existing --bindir="$bindir" --host="$datadir" --port="$port" \
      --user=postgres --dbname=ctxstore_regress --inputdir="$root/tests" --outputdir="$outdir" "${tests[@]}" \
      | tee "$outdir/pg_regress.log"; then
  echo "---- regression.diffs ($server)"; cat "$outdir/regression.diffs" || true
  echo "---- server log ($server)"; tail -n 50 "$datadir/server.log" || true
  failed=$(grep -Ec '^(test .*\.\.\. (FAILED|failed|diff)|not ok)' "$outdir/pg_regress.log" || true)
  result $((${#tests[@]} - failed)) ${#skipped[@]} "$failed" "pg_regress files"
  exit 1
fi
result ${#tests[@]} ${#skipped[@]} 0 "pg_regress files"
