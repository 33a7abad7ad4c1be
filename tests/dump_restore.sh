#!/usr/bin/env bash
# pg_dump / pg_restore round trip:   dump_restore.sh pg15|pg18   (after scripts/install.sh)
# Loads tests/upgrade/fixture.sql into a database, dumps it (custom format), restores it into a
# new database, and checks that every API read (tests/upgrade/snapshot.sql) is identical, that
# the audit chain still verifies, and that the restored database keeps working (appends after the
# restore get the next seq, new audit rows do not collide with restored ones).
source "$(dirname "$0")/lib.sh"
throwaway_cluster "$1" dump $((58100 + ${1#pg})) \
  "ctxstore.master_key=fixture:000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f"
scratch_dir

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
# Shredding, then rotating the master key and retiring the old one, makes a backup taken before
# the shred unreadable: the dump above still holds the shredded context's data key, wrapped by
# the old master key. (Control: while the old key is still configured, that backup does read,
# which is why the rotation is needed.)
fixture_key=fixture:000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f
rotated_key=rotated:f0e0d0c0b0a090807060504030201000f0e0d0c0b0a090807060504030201000
rotated=$(psql -d source -tA <<SQL
SELECT ctx.shred(id) FROM ctx.contexts WHERE name = 'secret';
SET ctxstore.master_key = '$rotated_key,$fixture_key';
SELECT ctx.rotate_master_key('rotated');
SQL
)
[ "$(echo "$rotated" | tail -n1)" -gt 0 ] || fail "rotate_master_key rewrapped nothing: $rotated"
# the live database reads its remaining encrypted data under the new key alone
psql -d source -tA -c "SET ctxstore.master_key = '$rotated_key'" \
  -c "SELECT count(*) FROM ctx.recall('{fixture,private}', k => 10)" >/dev/null \
  || fail "after the rotation, the encrypted namespace does not read under the new key alone"
psql -d postgres -c "CREATE DATABASE old_backup"
as_pg env PGOPTIONS="-c session_replication_role=replica" \
  "$bindir/pg_restore" -h "$datadir" -p "$port" -U postgres -d old_backup "$work/source.dump" \
  2> "$work/restore-old.err" || { cat "$work/restore-old.err" >&2; fail "pg_restore of the old backup"; }
read_secret() {
  psql -d old_backup -tA -c "SET ctxstore.master_key = '$1'" \
    -c "SELECT string_agg(content, ' | ') FROM ctx.contexts c, ctx.history(c.id) h WHERE c.name = 'secret'" 2>&1
}
control=$(read_secret "$fixture_key")
[[ $control == *"an encrypted summary"* ]] || fail "control: the old backup does not read with the old key: $control"
if retired=$(read_secret "$rotated_key"); then
  fail "the shredded context still reads from a pre-shred backup after the rotation: $retired"
fi
[[ $retired != *"an encrypted summary"* ]] || fail "plaintext of the shredded context in the error: $retired"
[[ $retired == *'master key "fixture" is not configured'* ]] \
  || fail "the old backup failed, but not because its master key is retired: $retired"
echo "dump/restore ($server): after shred + rotation a pre-shred backup refuses the shredded context: ${retired%%$'\n'*}"
echo "dump/restore ($server): $(wc -l < "$work/source.txt") snapshot lines identical after pg_dump -Fc / pg_restore; appends, memories and the audit chain keep working"
result 2 0 0 "checks: dump and restore round trip, pre-shred backup unreadable after rotation"
