#!/usr/bin/env bash
# Builds ctxstore and installs it into a supported server:  install.sh pg15|pg18 [--release]
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
source "$root/scripts/env.sh"
server=$1; shift
cd "$root"
cargo pgrx install --pg-config "$(pg_config_for "$server")" --no-default-features --features "$server" "$@" >/dev/null
