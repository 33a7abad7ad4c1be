#!/usr/bin/env bash
# A throwaway cluster run as user postgres on a private port and socket directory.
#   cluster.sh start  pg15|pg18 DATADIR PORT [postgres -c options...]
#   cluster.sh stop   pg15|pg18 DATADIR
#   cluster.sh finish pg15|pg18 DATADIR STATUS   a test's exit: stop; remove the cluster if STATUS
#                                                is 0 (a failed test's cluster stays to look into)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
source "$root/scripts/env.sh"
action=$1 server=$2 datadir=$(realpath -m "$3")
bindir=$("$(pg_config_for "$server")" --bindir)
as_pg() { sudo -u postgres "$@"; }

case "$action" in
  start)
    port=$4; shift 4
    if ! [ -f "$datadir/PG_VERSION" ]; then
      mkdir -p "$datadir"
      chown postgres:postgres "$datadir"
      chmod 700 "$datadir"
      as_pg "$bindir/initdb" -D "$datadir" -U postgres -A trust -E UTF8 --locale=C --no-sync >/dev/null
    fi
    if as_pg "$bindir/pg_ctl" -D "$datadir" status >/dev/null 2>&1; then
      exit 0
    fi
    opts="-p $port -k $datadir -c listen_addresses='' -c fsync=off"
    for o in "$@"; do opts+=" -c $o"; done
    if ! as_pg "$bindir/pg_ctl" -D "$datadir" -l "$datadir/server.log" -w -t 60 -o "$opts" start >/dev/null; then
      echo "server failed to start; log:" >&2
      tail -n 40 "$datadir/server.log" >&2
      exit 1
    fi
    ;;
  stop)
    if [ -f "$datadir/postmaster.pid" ]; then
      as_pg "$bindir/pg_ctl" -D "$datadir" -m fast -w stop >/dev/null || true
    fi
    ;;
  finish)
    "$0" stop "$server" "$datadir"
    if [ "${4:-1}" = 0 ]; then rm -rf "$datadir"; fi
    ;;
  *) echo "usage: cluster.sh start|stop|finish pg15|pg18 DATADIR [PORT|STATUS]" >&2; exit 2 ;;
esac
