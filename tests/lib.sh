# The shared preamble of the test drivers (tests/*.sh): sourced, never run.
# Gives: $root, scripts/env.sh's settings, as_pg, fail, at_exit, throwaway_cluster (which sets
# $server $bindir $datadir $port), psql (as postgres on that cluster), and result, the one line
# scripts/test.sh counts a tier by.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
source "$root/scripts/env.sh"

as_pg() { sudo -u postgres "$@"; }
fail() { echo "FAILED: $*" >&2; exit 1; }
bindir_of() { "$(pg_config_for "$1")" --bindir; }

# at_exit 'COMMAND': run when the script exits, newest first; $status holds the script's exit
# status. Each driver's cleanup goes here, so no driver sets its own EXIT trap.
_exit_hooks=()
at_exit() { _exit_hooks=("$1" "${_exit_hooks[@]}"); }
_run_exit_hooks() {
  status=$?
  cd "$root"   # (a hook may remove the directory the driver works in)
  local hook
  for hook in "${_exit_hooks[@]}"; do eval "$hook" || true; done
  exit "$status"
}
trap _run_exit_hooks EXIT

# throwaway_cluster SERVER NAME PORT [setting=value ...]: a fresh cluster in tmp/NAME-SERVER
# (removed first), stopped at exit and deleted when the script passed (a failed one stays to be
# looked into).
throwaway_cluster() {
  server=$1 datadir="$root/tmp/$2-$1" port=$3
  shift 3
  bindir=$(bindir_of "$server")
  "$root/scripts/cluster.sh" stop "$server" "$datadir"
  rm -rf "$datadir"
  at_exit '"$root/scripts/cluster.sh" finish "$server" "$datadir" "$status"'
  "$root/scripts/cluster.sh" start "$server" "$datadir" "$port" "$@"
}

psql() { as_pg "$bindir/psql" -X -q -v ON_ERROR_STOP=1 -h "$datadir" -p "$port" -U postgres "$@"; }

# A scratch directory every user can write (the server runs as postgres), removed at exit
# when the script passed (a failed one's stays, with what the driver kept there).
scratch_dir() {
  work=$(mktemp -d)
  chmod 777 "$work"
  at_exit '[ "$status" != 0 ] && echo "kept for inspection: $work" >&2 || rm -rf "$work"'
}

# result PASSED SKIPPED FAILED WHAT: how many tests the tier ran, in its own unit (WHAT says
# which), e.g. `result 18 0 0 "pg_regress files"`. scripts/test.sh reads the last such line.
result() { echo "result: $1 passed, $2 skipped, $3 failed ($4)"; }
