#!/usr/bin/env bash
# SQL regression tests (tests/sql/*.sql vs tests/expected/*.out) with pg_regress against a
# freshly installed build on a throwaway cluster:   regress.sh pg15|pg18
# Tests named *_pgvector.sql run only where the vector extension is available (PG 18 here).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
source "$root/scripts/env.sh"
server=$1
pg_config=$(pg_config_for "$server")
bindir=$("$pg_config" --bindir)
# pg_regress is only a driver (psql + diff): Debian's works against any server, and the wheel's
# copy crashes in the dynamic loader.
pg_regress="$("$PG15_CONFIG" --pkglibdir)/pgxs/src/test/regress/pg_regress"
datadir="$root/tmp/regress-$server"
outdir="$root/tmp/regress-out-$server"
port=${CTXSTORE_REGRESS_PORT:-$((56000 + ${server#pg}))}

"$root/scripts/install.sh" "$server"
rm -rf "$datadir" "$outdir"
mkdir -p "$outdir" && chown postgres "$outdir"
trap 'status=$?; "$root/scripts/cluster.sh" finish "$server" "$datadir" "$status"; [ "$status" != 0 ] || rm -rf "$outdir"' EXIT
"$root/scripts/cluster.sh" start "$server" "$datadir" "$port"

tests=()
has_vector=$([ -f "$("$pg_config" --sharedir)/extension/vector.control" ] && echo 1 || echo 0)
for f in "$root"/tests/sql/*.sql; do
  name=$(basename "$f" .sql)
  if [[ $name == *_pgvector ]] && [ "$has_vector" = 0 ]; then continue; fi
  tests+=("$name")
done

sudo -u postgres "$bindir/psql" -X -q -h "$datadir" -p "$port" -U postgres -d postgres \
  -c "CREATE DATABASE ctxstore_regress"
cd "$outdir"
if ! sudo -u postgres "$pg_regress" --use-existing --bindir="$bindir" --host="$datadir" --port="$port" \
      --user=postgres --dbname=ctxstore_regress --inputdir="$root/tests" --outputdir="$outdir" "${tests[@]}"; then
  echo "---- regression.diffs ($server)"; cat "$outdir/regression.diffs" || true
  echo "---- server log ($server)"; tail -n 50 "$datadir/server.log" || true
  exit 1
fi
if ! "$root/tests/concurrency.sh" "$bindir" "$datadir" "$port"; then
  echo "---- server log ($server)"; tail -n 50 "$datadir/server.log" || true
  exit 1
fi
if ! "$root/tests/isolation.sh" "$bindir" "$datadir" "$port"; then
  echo "---- server log ($server)"; tail -n 50 "$datadir/server.log" || true
  exit 1
fi
if ! "$root/tests/fuzz_sql.sh" "$bindir" "$datadir" "$port"; then
  echo "---- server log ($server)"; tail -n 50 "$datadir/server.log" || true
  exit 1
fi
if ! "$root/tests/plaintext_scan.sh" "$bindir" "$datadir" "$port" "$datadir"; then
  echo "---- server log ($server)"; tail -n 50 "$datadir/server.log" || true
  exit 1
fi
"$root/tests/observability.sh" "$server"
"$root/tests/dump_restore.sh" "$server"
"$root/tests/crash.sh" "$server"
"$root/tests/upgrade.sh" "$server"
"$root/tests/package.sh" "$server"
echo "sql tests: $(( ${#tests[@]} + 9 )) passed ($server: ${#tests[@]} pg_regress files + concurrency + isolation + fuzz + plaintext scan + observability + dump/restore + crash + upgrade + package)"
