#!/usr/bin/env bash
# Concurrent appends from several sessions: pgbench clients append, batch-append and compact
# one context at once; afterwards its seqs must be exactly 1..N (no gap, no duplicate) and
# every appended message must be in its history.
#   concurrency.sh BINDIR SOCKETDIR PORT
set -euo pipefail
bindir=$1 host=$2 port=$3
work=$(mktemp -d)
chmod 755 "$work"
trap 'rm -rf "$work"' EXIT
psql() { sudo -u postgres "$bindir/psql" -X -q -v ON_ERROR_STOP=1 -h "$host" -p "$port" -U postgres "$@"; }

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
sudo -u postgres "$bindir/pgbench" -n -h "$host" -p "$port" -U postgres -c "$clients" -j 2 -t "$transactions" \
  -f "$work/append.sql@6" -f "$work/batch.sql@2" -f "$work/compact.sql@1" -f "$work/read.sql@1" \
  ctxstore_concurrency > "$work/pgbench.log" 2>&1 || { cat "$work/pgbench.log"; exit 1; }

# Concurrent merge patches of one document: every patch adds its own key, none may be lost.
psql -d ctxstore_concurrency -c "CREATE SEQUENCE patch_seq"
echo "SELECT ctx.patch('{concurrency}', 'doc', jsonb_build_object('k' || nextval('patch_seq'), :client_id));" > "$work/patch.sql"
sudo -u postgres "$bindir/pgbench" -n -h "$host" -p "$port" -U postgres -c "$clients" -j 2 -t 50 \
  -f "$work/patch.sql" ctxstore_concurrency > "$work/patch.log" 2>&1 || { cat "$work/patch.log"; exit 1; }
keys=$(psql -d ctxstore_concurrency -tA -c "SELECT count(*) FROM jsonb_object_keys(ctx.get('{concurrency}', 'doc'))")
version=$(psql -d ctxstore_concurrency -tA -c "SELECT version FROM ctx.search_state('{concurrency}')")
echo "concurrency: $clients clients x 50 patches of one document -> $keys keys, version $version"
if [ "$keys" -ne $((clients * 50)) ] || [ "$version" -ne $((clients * 50)) ]; then
  echo "FAILED: lost patches (expected $((clients * 50)) keys and version)" >&2
  exit 1
fi

result=$(psql -d ctxstore_concurrency -tA -F ' ' <<SQL
WITH h AS (SELECT seq FROM ctx.history('$id') WHERE role <> 'summary')
SELECT count(*), count(DISTINCT seq), min(seq), max(seq),
       (SELECT last_seq FROM ctx.contexts WHERE id = '$id'),
       (SELECT count(*) FROM ctx.messages m WHERE m.context_id = '$id')
  FROM h;
SQL
)
read -r rows distinct first last last_seq stored <<<"$result"
failed=$(grep -Eo 'number of failed transactions: [0-9]+' "$work/pgbench.log" | head -n1 | grep -Eo '[0-9]+$' || echo 0)
echo "concurrency: $clients clients x $transactions transactions -> $rows messages, seqs $first..$last, failed transactions: $failed"
if [ "$rows" -ne "$distinct" ] || [ "$first" -ne 1 ] || [ "$last" -ne "$rows" ] || [ "$last_seq" -ne "$rows" ] \
   || [ "$stored" -ne "$rows" ] || [ "$failed" -ne 0 ] || [ "$rows" -lt $((clients * transactions / 2)) ]; then
  echo "FAILED: expected gap-free unique seqs 1..N; got rows=$rows distinct=$distinct first=$first last=$last last_seq=$last_seq stored=$stored" >&2
  cat "$work/pgbench.log" >&2
  exit 1
fi
