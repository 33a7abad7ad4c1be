#!/usr/bin/env bash
# Power-failure test:   power_failure.sh pg15|pg18   (after scripts/install.sh)
# Like crash.sh, but the data directory lives on tests/lossyfs.py, a filesystem that keeps
# every write in memory until it is fsynced: four clients append (fsync on), then every server
# process is killed and everything not yet fsynced is thrown away, as a power cut empties a
# disk cache. After recovery every append a client saw committed must be present exactly once,
# seqs gap-free, the audit chain verifying. The control run acknowledges commits before their
# WAL is flushed (synchronous_commit=off, a WAL writer that waits 10 s): it must recover and
# have lost acknowledged appends, which shows the check sees a commit that was never synced.
source "$(dirname "$0")/lib.sh"
server=$1
bindir=$(bindir_of "$server")
port=$((58400 + ${server#pg}))
base="$root/tmp/power-failure-$server"
python="$VENV/bin/python"
if ! [ -c /dev/fuse ]; then
  echo "power failure ($server): SKIPPED: no /dev/fuse on this machine"
  result 0 1 0 "power-failure runs"
  exit 0
fi
lossyfs_pid=
unmount() {
  if mountpoint -q "$base/mnt" 2>/dev/null; then umount "$base/mnt" 2>/dev/null || umount -l "$base/mnt"; fi
  [ -z "$lossyfs_pid" ] || wait "$lossyfs_pid" 2>/dev/null || true
  lossyfs_pid=
}
stop_all() {  # every process of the cluster: each has the data directory as its working directory
  local p left mnt
  mnt=$(realpath -m "$base/mnt")
  for _ in $(seq 100); do
    left=0
    for p in /proc/[0-9]*; do
      if [ "$(readlink "$p/cwd" 2>/dev/null)" = "$mnt" ]; then kill -9 "${p#/proc/}" 2>/dev/null; left=1; fi
    done
    [ "$left" = 0 ] && return 0
    sleep 0.1
  done
  return 1
}
at_exit 'stop_all; unmount; [ "$status" != 0 ] || rm -rf "$base"'
psql() { as_pg "$bindir/psql" -X -q -v ON_ERROR_STOP=1 -h "$base/sock" -p "$port" -U postgres -d postgres "$@"; }
start() {  # SYNCHRONOUS_COMMIT: on, or off for the control
  as_pg "$bindir/pg_ctl" -D "$base/mnt" -l "$base/server.log" -w -t 120 \
    -o "-p $port -k $base/sock -c listen_addresses='' -c fsync=on -c synchronous_commit=$1 -c full_page_writes=on -c wal_writer_delay=10s -c wal_writer_flush_after=1GB" start >/dev/null
}

# run SYNCHRONOUS_COMMIT: one power failure; writes "acked stored missing lost_pages context" (or
# "unrecoverable") to $base/outcome
run() {
  local sync_commit=$1
  stop_all || fail "the previous server's processes would not die"; unmount
  rm -rf "$base"
  mkdir -p "$base/back" "$base/mnt" "$base/ctl" "$base/sock" "$base/work"
  chown postgres:postgres "$base" "$base/back" "$base/sock" "$base/work" && chmod 700 "$base/back"
  as_pg "$bindir/initdb" -D "$base/back" -U postgres -A trust -E UTF8 --locale=C --no-sync >/dev/null
  "$python" "$root/tests/lossyfs.py" "$base/back" "$base/mnt" "$base/ctl" > "$base/lossyfs.log" 2>&1 &
  lossyfs_pid=$!
  for _ in $(seq 100); do mountpoint -q "$base/mnt" && break; sleep 0.1; done
  mountpoint -q "$base/mnt" || fail "lossyfs did not mount: $(cat "$base/lossyfs.log")"
  start "$sync_commit" || fail "the server did not start on lossyfs: $(tail -n 20 "$base/server.log")"
  local id c clients=()
  id=$(psql -tA -c "CREATE EXTENSION ctxstore" -c "SELECT ctx.create_context('power')" | tail -n1)
  psql -c "CHECKPOINT"
  for c in 1 2 3 4; do
    for i in $(seq 20000); do echo "SELECT ctx.append('$id', 'user', 'client $c message $i') AS seq;"; done > "$base/work/client$c.sql"
    as_pg "$bindir/psql" -X -q -At -h "$base/sock" -p "$port" -U postgres -d postgres \
      -v ON_ERROR_STOP=1 -f "$base/work/client$c.sql" > "$base/work/acked$c.txt" 2>/dev/null &
    clients+=($!)
  done
  sleep 4
  stop_all || fail "the server's processes would not die"
  wait "${clients[@]}" 2>/dev/null || true   # the clients end with a lost connection
  touch "$base/ctl/power_failure"
  for _ in $(seq 100); do [ -e "$base/ctl/power_failure.done" ] && break; sleep 0.05; done
  [ -e "$base/ctl/power_failure.done" ] || fail "lossyfs did not simulate the power failure"
  local lost
  lost=$(grep -Eo '[0-9]+ unsynced pages lost' "$base/lossyfs.log" | tail -n1 | grep -Eo '^[0-9]+')
  # every process of the killed server is gone (a zombie postmaster, where nothing reaps
  # orphans, still looks alive to a lock file's PID check): its lock files are stale
  as_pg rm -f "$base/mnt/postmaster.pid" "$base/sock/.s.PGSQL.$port" "$base/sock/.s.PGSQL.$port.lock"
  if ! start "$sync_commit" 2>/dev/null; then echo "unrecoverable" > "$base/outcome"; return; fi
  # (comm compares lexically sorted lines)
  cat "$base"/work/acked*.txt | grep -E '^[0-9]+$' | LC_ALL=C sort > "$base/work/acked.txt"
  psql -tA -c "SELECT seq FROM ctx.messages m WHERE m.context_id = '$id'" | LC_ALL=C sort > "$base/work/stored.txt" \
    || { echo "unrecoverable" > "$base/outcome"; return; }
  echo "$(wc -l < "$base/work/acked.txt") $(wc -l < "$base/work/stored.txt")" \
       "$(comm -23 "$base/work/acked.txt" "$base/work/stored.txt" | wc -l) ${lost:-0} $id" > "$base/outcome"
}

run on
read -r acked stored missing lost id < "$base/outcome"
[ "$acked" != unrecoverable ] || fail "the server did not recover after the power failure: $(tail -n 20 "$base/server.log")"
[ "$acked" -gt 0 ] || fail "no append was acknowledged before the power failure"
[ "$lost" -gt 0 ] || fail "the power failure lost no unsynced page: the test exercised nothing"
[ "$missing" = 0 ] || fail "$missing acknowledged appends are missing after the power failure"
read -r rows first last last_seq dups <<<"$(psql -tA -F ' ' -c "SELECT count(*), min(seq), max(seq), (SELECT last_seq FROM ctx.contexts WHERE id = '$id'), count(*) - count(DISTINCT seq) FROM ctx.messages m WHERE m.context_id = '$id'")"
[ "$dups" = 0 ] && [ "$first" = 1 ] && [ "$last" = "$rows" ] && [ "$last_seq" = "$rows" ] \
  || fail "seqs not gap-free after recovery: $rows rows, $first..$last, last_seq $last_seq, $dups duplicates"
[ "$(psql -tA -c "SELECT ok FROM ctx.verify_audit()")" = t ] || fail "the audit chain does not verify after the power failure"
next=$(psql -tA -c "SELECT ctx.append('$id', 'user', 'after recovery')")
[ "$next" = $((rows + 1)) ] || fail "the first append after recovery got seq $next, expected $((rows + 1))"
echo "power failure ($server): $acked acknowledged appends all present after losing $lost unsynced pages;" \
     "$rows messages gap-free; audit chain verifies"

run off
read -r c_acked c_stored c_missing c_lost _ < "$base/outcome"
[ "$c_acked" != unrecoverable ] || fail "control (synchronous_commit=off): the server did not recover: $(tail -n 20 "$base/server.log")"
[ "$c_missing" -gt 0 ] || fail "control (synchronous_commit=off) lost no acknowledged append ($c_acked acknowledged, $c_lost pages lost): the harness does not see an unsynced commit"
echo "power failure ($server): control (commits acknowledged before their WAL is flushed): $c_missing of $c_acked acknowledged appends lost"
result 2 0 0 "power-failure runs: synchronous commits all survive; the asynchronous control loses some"
