#!/usr/bin/env bash
# Isolation tests: interleavings of concurrent sessions that matter (tests/isolation/specs),
# run by pg_isolation_regress against an existing cluster.
#   isolation.sh BINDIR SOCKETDIR PORT
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
source "$root/scripts/env.sh"
bindir=$1 host=$2 port=$3
# like pg_regress, Debian's driver works against any server version
isolation_regress="$("$PG15_CONFIG" --pkglibdir)/pgxs/src/test/isolation/pg_isolation_regress"
outdir=${CTXSTORE_ISOLATION_OUT:-$(mktemp -d)}; mkdir -p "$outdir"; chmod 777 "$outdir"
[ -n "${CTXSTORE_ISOLATION_OUT:-}" ] || trap 'rm -rf "$outdir"' EXIT
specs=()
for f in "$root"/tests/isolation/specs/*.spec; do specs+=("$(basename "$f" .spec)"); done
sudo -u postgres "$bindir/psql" -X -q -h "$host" -p "$port" -U postgres -d postgres -c "CREATE DATABASE ctxstore_isolation"
cd "$outdir"
if ! sudo -u postgres "$isolation_regress" --use-existing --host="$host" --port="$port" --user=postgres \
      --dbname=ctxstore_isolation --inputdir="$root/tests/isolation" --outputdir="$outdir" "${specs[@]}"; then
  echo "---- regression.diffs (isolation)"; cat "$outdir/regression.diffs" || true
  exit 1
fi
echo "isolation: ${#specs[@]} specs, $(grep -h '^permutation' "$root"/tests/isolation/specs/*.spec | wc -l) permutations passed"
