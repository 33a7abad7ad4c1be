#!/usr/bin/env bash
# pg_dump / pg_restore round trip:   dump_restore.sh pg15|pg18   (after scripts/install.sh)
# Loads tests/upgrade/fixture.sql into a database, dumps it (custom format), restores it into a
# new database, and checks that every API read (tests/upgrade/snapshot.sql) is identical, that
# the audit chain still verifies, and that the restored database keeps working (appends after the
# restore get the next seq, new audit rows do not collide with restored ones).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
source "$root/scripts/env.sh"
server=$1
bindir=$("$(pg_config_for "$server")" --bindir)
datadir="$root/tmp/dump-$server"
port=$((58100 + ${server#pg}))
work=$(mktemp -d); chmod 777 "$work"
fail() { echo "FAILED: $*" >&2; exit 1; }
cleanup() { local status=$?; "$root/scripts/cluster.sh" finish "$server" "$datadir" "$status"; rm -rf "$work"; }
trap cleanup EXIT
rm -rf "$datadir"
"$root/scripts/cluster.sh" start "$server" "$datadir" "$port" \
  "ctxstore.master_key=fixture:000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f"
as_pg() { sudo -u postgres "$@"; }
psql() { as_pg "$bindir/psql" -X -q -v ON_ERROR_STOP=1 -h "$datadir" -p "$port" -U postgres "$@"; }

psql -d postgres -c "CREATE DATABASE source" -c "CREATE DATABASE restored"
psql -d source -c "CREATE EXTENSION ctxstore"
psql -d source -f "$root/tests/upgrade/fixture.sql" >/dev/null
# (0.2.0 objects, beyond the release fixture: an encrypted thread's checkpoint, a cache entry)
psql -d source >/dev/null <<'SQL'
SELECT ctx.thread_context('dump-thread', encrypted => true);
SELECT ctx.checkpoint_put('dump-thread', '', '{"v": 1, "id": "0001", "channel_versions": {"a": "1"}}',
                          '{"step": 0}', NULL, '{a}', '{1}', '{json}', ARRAY['"a sealed value"'::bytea]);
SELECT ctx.checkpoint_put_writes('dump-thread', '', '0001', 'task-1', '{0}', '{b}', '{json}', ARRAY['"a write"'::bytea]);
SELECT ctx.cache_store('a prompt', 'a model', '[{"text": "cached"}]');
SQL
snapshot() {
  psql -d "$1" -f "$root/tests/upgrade/snapshot.sql"
  psql -d "$1" -tA -c "SELECT thread_id, checkpoint_id, metadata, channels, blobs, write_blobs FROM ctx.checkpoint_list('dump-thread')" \
       -c "SELECT ctx.cache_lookup('a prompt', 'a model')"
}
snapshot source > "$work/source.txt"
grep -q 'a sealed value' <(psql -d source -tA -c "SELECT convert_from(blobs[1], 'UTF8') FROM ctx.checkpoint_list('dump-thread')") \
  || fail "the checkpoint fixture did not read back"
# (pg_dump warns that contexts references itself, forks to parents: harmless in a full dump)
as_pg "$bindir/pg_dump" -h "$datadir" -p "$port" -U postgres -Fc -f "$work/source.dump" source 2> "$work/dump.err" \
  || { cat "$work/dump.err" >&2; fail "pg_dump"; }
# The documented restore: rows load as they were dumped, with triggers off (the audit log's, and
# foreign key checks, which the dump's table order cannot always satisfy).
as_pg env PGOPTIONS="-c session_replication_role=replica" \
  "$bindir/pg_restore" -h "$datadir" -p "$port" -U postgres -d restored "$work/source.dump" \
  2> "$work/restore.err" || { cat "$work/restore.err" >&2; fail "pg_restore"; }
snapshot restored > "$work/restored.txt"
if ! diff -u "$work/source.txt" "$work/restored.txt" >&2; then
  fail "API reads differ after pg_dump / pg_restore (- source, + restored)"
fi
# still writable: next seqs, fresh audit ids, a verifiable chain
after=$(psql -d restored -tA <<'SQL'
SELECT ctx.append(id, 'user', 'after the restore') FROM ctx.contexts WHERE name = 'plain';
SELECT ctx.remember('{fixture,facts}', 'a fact after the restore') IS NOT NULL;
SELECT ok FROM ctx.verify_audit();
SQL
)
expected_seq=$(psql -d source -tAc "SELECT last_seq + 1 FROM ctx.contexts WHERE name = 'plain'")
[ "$(echo "$after" | tr '\n' ' ')" = "$expected_seq t t " ] || fail "restored database: got '$after' (expected seq $expected_seq, t, t)"
echo "dump/restore ($server): $(wc -l < "$work/source.txt") snapshot lines identical after pg_dump -Fc / pg_restore; appends, memories and the audit chain keep working"
