#!/usr/bin/env bash
# Crash test:   crash.sh pg15|pg18   (after scripts/install.sh)
# Four clients append to one context (fsync on); the postmaster is killed with SIGKILL mid-run
# and restarted (crash recovery). Every append a client saw committed must be present exactly
# once, seqs must stay gap-free and unique, appends must work again, and the audit chain must
# verify.
source "$(dirname "$0")/lib.sh"
durable=("fsync=on" "synchronous_commit=on")
throwaway_cluster "$1" crash $((58200 + ${1#pg})) "${durable[@]}"
start() { "$root/scripts/cluster.sh" start "$server" "$datadir" "$port" "${durable[@]}"; }
psql() { as_pg "$bindir/psql" -X -q -v ON_ERROR_STOP=1 -h "$datadir" -p "$port" -U postgres -d postgres "$@"; }
scratch_dir
fail() { tail -n 20 "$datadir/server.log" >&2; echo "FAILED: $*" >&2; exit 1; }

id=$(psql -tA -c "CREATE EXTENSION ctxstore" -c "SELECT ctx.create_context('crash')" | tail -n1)
clients=4
for c in $(seq "$clients"); do
  # one session per client: each result row printed is an append the server acknowledged
  for i in $(seq 20000); do echo "SELECT ctx.append('$id', 'user', 'client $c message $i') AS seq;"; done > "$work/client$c.sql"
  sudo -u postgres "$bindir/psql" -X -q -At -h "$datadir" -p "$port" -U postgres -d postgres \
    -v ON_ERROR_STOP=1 -f "$work/client$c.sql" > "$work/acked$c.txt" 2>/dev/null &
done
sleep 4
pid=$(sudo -u postgres head -n1 "$datadir/postmaster.pid")
children=$(pgrep -P "$pid" | tr '\n' ' ')
kill -9 "$pid"
wait || true   # the clients end with a lost connection
# The killed postmaster may linger as a zombie where nothing reaps orphans (containers): its
# lock file then looks alive to pg_ctl. Once it is dead or a zombie, the lock file is stale.
for _ in $(seq 50); do
  state=$(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null || echo gone)
  [ "$state" = Z ] || [ "$state" = gone ] && break
  sleep 0.1
done
# the lock file is the interlock against a second server on this data directory: removed only
# once every process of the killed one has exited (orphaned backends notice the postmaster's
# death at once)
for _ in $(seq 100); do
  alive=0
  for c in $children; do [ -d "/proc/$c" ] && [ "$(awk '{print $3}' "/proc/$c/stat" 2>/dev/null)" != Z ] && alive=1; done
  [ "$alive" = 0 ] && break
  sleep 0.1
done
[ "$alive" = 0 ] || fail "processes of the killed server are still running: $children"
rm -f "$datadir/postmaster.pid" "$datadir/.s.PGSQL.$port" "$datadir/.s.PGSQL.$port.lock"
# orphaned backends notice the postmaster's death and exit; until then the old shared memory
# is in use and the server refuses to start
started=
for _ in $(seq 30); do
  if start 2>/dev/null; then started=1; break; fi
  sleep 0.5
done
[ -n "$started" ] || fail "the server did not restart after the crash"
grep -q "database system was interrupted\|was not properly shut down" "$datadir/server.log" \
  || fail "the server did not go through crash recovery"

acked=$(cat "$work"/acked*.txt | grep -c . || true)
[ "$acked" -gt 0 ] || fail "no append was acknowledged before the kill"
# the acknowledged seqs, one per line, against what the context holds
# (comm compares lexically sorted lines)
cat "$work"/acked*.txt | grep -E '^[0-9]+$' | LC_ALL=C sort > "$work/acked.txt"
psql -tA -c "SELECT seq FROM ctx.messages m WHERE m.context_id = '$id'" | LC_ALL=C sort > "$work/stored.txt"
missing=$(comm -23 "$work/acked.txt" "$work/stored.txt" | wc -l)
duplicates=$(sort "$work/stored.txt" | uniq -d | wc -l)
read -r rows first last last_seq <<<"$(psql -tA -F ' ' -c "SELECT count(*), min(seq), max(seq), (SELECT last_seq FROM ctx.contexts WHERE id = '$id') FROM ctx.messages m WHERE m.context_id = '$id'")"
[ "$missing" -eq 0 ] || fail "$missing acknowledged appends are missing after the crash"
[ "$duplicates" -eq 0 ] || fail "$duplicates seqs stored twice"
[ "$first" -eq 1 ] && [ "$last" -eq "$rows" ] && [ "$last_seq" -eq "$rows" ] \
  || fail "seqs not gap-free after recovery: $rows rows, $first..$last, last_seq $last_seq"
# each acknowledged (client, message) is stored once with the seq the client was given
for c in $(seq "$clients"); do
  n=$(grep -cE '^[0-9]+$' "$work/acked$c.txt" || true)
  [ "$n" -eq 0 ] && continue
  stored=$(psql -tA -c "SELECT count(*) FROM ctx.messages m WHERE m.context_id = '$id' AND m.content LIKE 'client $c message %'
                          AND split_part(m.content, ' ', 4)::int <= $n")
  [ "$stored" -eq "$n" ] || fail "client $c: $n acknowledged, $stored stored"
done
next=$(psql -tA -c "SELECT ctx.append('$id', 'user', 'after recovery')")
[ "$next" -eq $((rows + 1)) ] || fail "the first append after recovery got seq $next, expected $((rows + 1))"
ok=$(psql -tA -c "SELECT ok FROM ctx.verify_audit()")
[ "$ok" = t ] || fail "the audit chain does not verify after the crash"
echo "crash ($server): SIGKILL during $clients clients' appends; $acked acknowledged appends all present once," \
     "$rows messages gap-free after recovery; audit chain verifies"
result 1 0 0 "crash and recovery run"
