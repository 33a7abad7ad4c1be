#!/usr/bin/env bash
# Concurrent appends from several sessions: pgbench clients append, batch-append and compact
# one context at once; afterwards its seqs must be exactly 1..N (no gap, no duplicate) and
# every appended message must be in its history. Then concurrent merge patches of one document
# (none lost) and sweeps during appends (exactly the expired messages go).
#   concurrency.sh pg15|pg18   (after scripts/install.sh)
source "$(dirname "$0")/lib.sh"
throwaway_cluster "$1" concurrency $((56100 + ${1#pg}))
scratch_dir
psql -d postgres -c "CREATE DATABASE ctxstore_concurrency"
id=$(psql -d ctxstore_concurrency -tA <<'SQL'
CREATE EXTENSION ctxstore;
-- compaction is legal only with enough active messages; skip it otherwise
CREATE FUNCTION try_compact(c uuid) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
  PERFORM ctx.compact(c, 'summary', keep_last => 5);
EXCEPTION WHEN object_not_in_prerequisite_state THEN NULL;
END $$;
SELECT ctx.create_context('concurrency');
SQL
)
id=$(echo "$id" | tail -n1)
echo "SELECT ctx.append('$id', 'user', 'one from ' || :client_id);" > "$work/append.sql"
echo "SELECT ctx.append_many('$id', '[{\"role\": \"user\", \"content\": \"a\"}, {\"role\": \"assistant\", \"content\": \"b\"}, {\"role\": \"tool\", \"content\": \"c\"}]');" > "$work/batch.sql"
echo "SELECT try_compact('$id');" > "$work/compact.sql"
echo "SELECT count(*) FROM ctx.token_window('$id', 200);" > "$work/read.sql"

clients=8 transactions=150
sudo -u postgres "$bindir/pgbench" -n -h "$datadir" -p "$port" -U postgres -c "$clients" -j 2 -t "$transactions" \
  -f "$work/append.sql@6" -f "$work/batch.sql@2" -f "$work/compact.sql@1" -f "$work/read.sql@1" \
  ctxstore_concurrency > "$work/pgbench.log" 2>&1 || { cat "$work/pgbench.log"; exit 1; }

# Concurrent merge patches of one document: every patch adds its own key, none may be lost.
psql -d ctxstore_concurrency -c "CREATE SEQUENCE patch_seq"
echo "SELECT ctx.patch('{concurrency}', 'doc', jsonb_build_object('k' || nextval('patch_seq'), :client_id));" > "$work/patch.sql"
sudo -u postgres "$bindir/pgbench" -n -h "$datadir" -p "$port" -U postgres -c "$clients" -j 2 -t 50 \
  -f "$work/patch.sql" ctxstore_concurrency > "$work/patch.log" 2>&1 || { cat "$work/patch.log"; exit 1; }
keys=$(psql -d ctxstore_concurrency -tA -c "SELECT count(*) FROM jsonb_object_keys(ctx.get('{concurrency}', 'doc'))")
version=$(psql -d ctxstore_concurrency -tA -c "SELECT version FROM ctx.search_state('{concurrency}')")
echo "concurrency: $clients clients x 50 patches of one document -> $keys keys, version $version"
if [ "$keys" -ne $((clients * 50)) ] || [ "$version" -ne $((clients * 50)) ]; then
  echo "FAILED: lost patches (expected $((clients * 50)) keys and version)" >&2
  exit 1
fi

counts=$(psql -d ctxstore_concurrency -tA -F ' ' <<SQL
WITH h AS (SELECT seq FROM ctx.history('$id') WHERE role <> 'summary')
SELECT count(*), count(DISTINCT seq), min(seq), max(seq),
       (SELECT last_seq FROM ctx.contexts WHERE id = '$id'),
       (SELECT count(*) FROM ctx.messages m WHERE m.context_id = '$id')
  FROM h;
SQL
)
read -r rows distinct first last last_seq stored <<<"$counts"
failed=$(grep -Eo 'number of failed transactions: [0-9]+' "$work/pgbench.log" | head -n1 | grep -Eo '[0-9]+$' || echo 0)
echo "concurrency: $clients clients x $transactions transactions -> $rows messages, seqs $first..$last, failed transactions: $failed"
if [ "$rows" -ne "$distinct" ] || [ "$first" -ne 1 ] || [ "$last" -ne "$rows" ] || [ "$last_seq" -ne "$rows" ] \
   || [ "$stored" -ne "$rows" ] || [ "$failed" -ne 0 ] || [ "$rows" -lt $((clients * transactions / 2)) ]; then
  echo "FAILED: expected gap-free unique seqs 1..N; got rows=$rows distinct=$distinct first=$first last=$last last_seq=$last_seq stored=$stored" >&2
  cat "$work/pgbench.log" >&2
  exit 1
fi

# Sweeps under concurrent appends: one context keeps its newest 40 messages, one drops messages
# older than an hour (100 back-dated ones to begin with), one has no policy. Sweeps run while
# clients append to all three; afterwards exactly the expired messages are gone.
ids=$(psql -d ctxstore_concurrency -tA <<'SQL'
SELECT ctx.create_context('newest 40') AS kept \gset
SELECT ctx.set_retention(:'kept', max_messages => 40);
SELECT ctx.create_context('one hour') AS aged \gset
SELECT count(*) FROM ctx.append_many(:'aged', (SELECT jsonb_agg(jsonb_build_object('role', 'user', 'content', 'old ' || i)) FROM generate_series(1, 100) i));
UPDATE ctx.messages SET written_at = now() - interval '2 hours' WHERE context_id = :'aged';
SELECT ctx.set_retention(:'aged', max_age => '1 hour');
SELECT ctx.create_context('no policy') AS plain \gset
SELECT :'kept', :'aged', :'plain';
SQL
)
read -r kept aged plain <<<"$(echo "$ids" | tail -n1 | tr '|' ' ')"
for c in kept aged plain; do
  echo "SELECT ctx.append('${!c}', 'user', 'from ' || :client_id);" > "$work/append_$c.sql"
done
echo "SELECT ctx.sweep(25);" > "$work/sweep.sql"
# readers, and a policy rewritten (unchanged) while sweeps run: it waits for them, never deadlocks
echo "SELECT count(*) FROM ctx.token_window('$kept', 1000); SELECT count(*) FROM ctx.window('$aged', 50);" > "$work/read_retained.sql"
echo "SELECT ctx.set_retention('$kept', max_messages => 40);" > "$work/policy.sql"
sudo -u postgres "$bindir/pgbench" -n -h "$datadir" -p "$port" -U postgres -c "$clients" -j 2 -t 100 \
  -f "$work/append_kept.sql@6" -f "$work/append_aged.sql@6" -f "$work/append_plain.sql@4" -f "$work/sweep.sql@4" \
  -f "$work/read_retained.sql@2" -f "$work/policy.sql@1" \
  ctxstore_concurrency > "$work/sweep.log" 2>&1 || { cat "$work/sweep.log"; exit 1; }
counts=$(psql -d ctxstore_concurrency -tA -F ' ' <<SQL
SELECT count(*) FILTER (WHERE m.context_id = '$kept' AND m.seq > c.last_seq - 40),
       (SELECT last_seq FROM ctx.contexts WHERE id = '$kept'),
       count(*) FILTER (WHERE m.context_id = '$aged' AND m.seq > 100),
       (SELECT last_seq FROM ctx.contexts WHERE id = '$aged'),
       count(*) FILTER (WHERE m.context_id = '$plain'),
       (SELECT last_seq FROM ctx.contexts WHERE id = '$plain')
  FROM ctx.messages m JOIN ctx.contexts c ON c.id = m.context_id;
SELECT sum(ctx.sweep(1000)) FROM generate_series(1, 3);
SELECT count(*) FILTER (WHERE context_id = '$kept'), count(*) FILTER (WHERE context_id = '$aged' AND seq <= 100)
  FROM ctx.messages;
SELECT count(*) FROM ctx.audit_log WHERE operation = 'DELETE' AND table_name = 'messages'
   AND row_key ->> 'context_id' IN ('$kept', '$aged');
SQL
)
read -r kept_recent kept_last aged_fresh aged_last plain_rows plain_last final_swept kept_left aged_old deletes <<<"$(echo $counts)"
failed=$(grep -Eo 'number of failed transactions: [0-9]+' "$work/sweep.log" | head -n1 | grep -Eo '[0-9]+$' || echo 0)
echo "concurrency: sweeps during appends -> newest-40 context: $kept_recent of 40 kept (last seq $kept_last);" \
     "1-hour context: $aged_fresh of $((aged_last - 100)) fresh kept; no-policy context: $plain_rows of $plain_last;" \
     "after a final sweep ($final_swept rows): $kept_left and $aged_old old; $deletes audited deletes"
if [ "$kept_recent" -ne 40 ] || [ "$aged_fresh" -ne $((aged_last - 100)) ] || [ "$plain_rows" -ne "$plain_last" ] \
   || [ "$kept_left" -ne 40 ] || [ "$aged_old" -ne 0 ] || [ "$deletes" -ne $((kept_last - 40 + 100)) ] \
   || [ "$failed" -ne 0 ] || [ "$kept_last" -lt 100 ]; then
  echo "FAILED: a sweep lost unexpired messages or left expired ones" >&2
  cat "$work/sweep.log" >&2
  exit 1
fi
result 3 0 0 "checks: gap-free concurrent appends, concurrent patches, sweeps during appends"
