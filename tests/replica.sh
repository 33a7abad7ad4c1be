#!/usr/bin/env bash
# Reads on a hot standby:   replica.sh pg15|pg18   (after scripts/install.sh)
# A primary and a `pg_basebackup -R` standby streaming from it over the primary's Unix socket,
# both preloading ctxstore with the same master key. The data (replica/populate.sql) is written
# on the primary; once the standby has replayed it, the read suite (replica/reads.sql) runs on
# the standby and on the primary in read-only transactions, and the outputs must be equal.
# Then the adapters' read paths (replica/adapters.py) on both, the same comparison; writes on the
# standby fail as a standby's must (25006); and a ttl touch, skipped on the standby, does restart
# the ttl on the primary.
source "$(dirname "$0")/lib.sh"
server=$1
version=$(sed -n 's/^version = "\(.*\)"/\1/p' "$root/Cargo.toml" | head -n1)
settings=("shared_preload_libraries=ctxstore-$version"
  "ctxstore.master_key=fixture:000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f")
scratch_dir
venv="$root/.venv-clients"   # the Python adapters' pinned requirements (tests/clients.sh's)
ensure_venv "$venv" "$root/clients/python/requirements-test.txt"

throwaway_cluster "$server" replica-primary $((57500 + ${server#pg})) "${settings[@]}"
primary_dir=$datadir primary_port=$port
standby_dir="$root/tmp/replica-standby-$server" standby_port=$((57600 + ${server#pg}))
"$root/scripts/cluster.sh" stop "$server" "$standby_dir"
rm -rf "$standby_dir"
mkdir -p "$standby_dir" && chown postgres:postgres "$standby_dir" && chmod 700 "$standby_dir"
at_exit '"$root/scripts/cluster.sh" finish "$server" "$standby_dir" "$status"'
as_pg "$bindir/pg_basebackup" -h "$primary_dir" -p "$primary_port" -U postgres -D "$standby_dir" -R -X stream -c fast 2>&1 | { grep -v "skipping special file" >&2 || true; }
"$root/scripts/cluster.sh" start "$server" "$standby_dir" "$standby_port" "${settings[@]}"

on_primary() { as_pg "$bindir/psql" -X -q -v ON_ERROR_STOP=1 -h "$primary_dir" -p "$primary_port" -U postgres -d postgres "$@"; }
on_standby() { as_pg "$bindir/psql" -X -q -v ON_ERROR_STOP=1 -h "$standby_dir" -p "$standby_port" -U postgres -d postgres "$@"; }
[ "$(on_standby -tA -c 'SELECT pg_is_in_recovery()')" = t ] || fail "the standby is not in recovery"

# Waits until the standby has replayed everything the primary has written so far.
caught_up() {
  local lsn
  lsn=$(on_primary -tA -c "SELECT pg_current_wal_lsn()")
  for _ in $(seq 300); do
    [ "$(on_standby -tA -c "SELECT pg_last_wal_replay_lsn() >= '$lsn'")" = t ] && return 0
    sleep 0.1
  done
  fail "the standby did not replay up to $lsn within 30 s"
}

on_primary -f "$root/tests/replica/populate.sql" >/dev/null
caught_up
checks=0

# 1. The read suite: the standby's answers equal the primary's (read-only there too).
on_standby -f "$root/tests/replica/reads.sql" > "$work/standby.out" 2>&1 || { cat "$work/standby.out" >&2; fail "the read suite failed on the standby"; }
on_primary -c "SET default_transaction_read_only = on" -f "$root/tests/replica/reads.sql" > "$work/primary.out" 2>&1 \
  || { cat "$work/primary.out" >&2; fail "the read suite failed on the primary in read-only transactions"; }
if ! diff -u "$work/primary.out" "$work/standby.out" > "$work/diff"; then
  cat "$work/diff" >&2
  fail "the standby answered differently from the primary"
fi
if grep -q '^(0 rows)$' "$work/standby.out"; then
  grep -n -B8 '^(0 rows)$' "$work/standby.out" >&2
  fail "a read returned nothing (every check must return rows)"
fi
suite_checks=$(grep -c '^check: ' "$work/standby.out")
[ "$suite_checks" -ge 20 ] || fail "the read suite ran $suite_checks checks"
checks=$((checks + suite_checks))
echo "replica ($server): $suite_checks read checks answered the same on the standby and the primary"

# The index path really ran on the standby where pgvector is installed.
if [ "$(on_standby -tA -c "SELECT count(*) FROM pg_extension WHERE extname = 'vector'")" = 1 ]; then
  hnsw=$(on_standby -tA -c "SELECT coalesce(sum(value), 0) FROM ctx.metric_samples() WHERE name = 'ctxstore_recalls_total' AND labels ->> 'path' = 'hnsw'")
  [ "$hnsw" -ge 1 ] || fail "no recall on the standby went through the HNSW index"
  checks=$((checks + 1))
fi

# 2. Writes on the standby fail as a standby's do (the suite above really read a standby).
for write in "SELECT ctx.create_context('x')" "SELECT ctx.append((SELECT id FROM ctx.contexts WHERE name = 'plain'), 'user', 'x')" \
             "SELECT ctx.put('{app}', 'k', '1')" "SELECT ctx.remember('{user}', 'x')"; do
  state=$(on_standby -tA -c "DO \$\$ BEGIN PERFORM ($write); EXCEPTION WHEN OTHERS THEN RAISE NOTICE '%', SQLSTATE; END \$\$" 2>&1 | sed -n 's/^NOTICE: *//p')
  [ "$state" = 25006 ] || fail "a write on the standby ($write) gave '$state', expected 25006"
  checks=$((checks + 1))
done

# 3. The ttl touch: skipped on the standby (above); on the primary it restarts the ttl.
before=$(on_primary -tA -c "SELECT expires_at FROM ctx.state WHERE key = 'lang'")
[ "$(on_primary -tA -c "SELECT ctx.touch('{app,settings}', '{lang}')")" = 1 ] || fail "a touch on the primary touched nothing"
after=$(on_primary -tA -c "SELECT expires_at FROM ctx.state WHERE key = 'lang'")
[ "$after" \> "$before" ] || fail "a touch on the primary did not restart the ttl ($before, then $after)"
checks=$((checks + 1))

# 4. The adapters' read paths, through the Python clients, as the tenant-bound role.
caught_up
dsn_primary="host=$primary_dir port=$primary_port user=replica_reader dbname=postgres"
dsn_standby="host=$standby_dir port=$standby_port user=replica_reader dbname=postgres"
adapter_checks=$(PYTHONPATH="$root/clients/python/src" "$venv/bin/python" "$root/tests/replica/adapters.py" "$dsn_primary" "$dsn_standby") \
  || fail "the adapters' reads on the standby"
echo "replica ($server): $adapter_checks adapter reads answered the same on the standby and the primary"
checks=$((checks + adapter_checks))

result "$checks" 0 0 "replica checks"
