#!/usr/bin/env bash
# Encryption at rest, checked on disk: a unique marker written to an encrypted context (short
# and TOASTed messages, metadata, summary, working memory) and to an encrypted namespace
# (memory, state), an encrypted checkpoint thread and an encrypted LLM cache must appear in no data file — heap, TOAST or WAL — after a CHECKPOINT. The
# same kind of marker in an unencrypted context must be found, which proves the scan works.
#   plaintext_scan.sh BINDIR SOCKETDIR PORT DATADIR
set -euo pipefail
bindir=$1 host=$2 port=$3 datadir=$4
psql() { sudo -u postgres "$bindir/psql" -X -q -v ON_ERROR_STOP=1 -h "$host" -p "$port" -U postgres "$@"; }

secret="ctxstore-secret-$(date +%s%N)"
plain="ctxstore-plain-$(date +%s%N)"
psql -d postgres -c "CREATE DATABASE ctxstore_scan"
psql -d ctxstore_scan -v secret="$secret" -v plain="$plain" >/dev/null <<'SQL'
CREATE EXTENSION ctxstore;
SET ctxstore.master_key = 'scan:5f4dcc3b5aa765d61d8327deb882cf995f4dcc3b5aa765d61d8327deb882cf99';
-- large values go to TOAST: hex digests compress poorly, so the value really is stored out of line
SELECT string_agg(md5(i::text), '') AS filler FROM generate_series(1, 400) i \gset
SELECT ctx.create_context('secret', encrypted => true) AS s \gset
SELECT ctx.append(:'s', 'user', 'short ' || :'secret', jsonb_build_object('note', :'secret'));
SELECT ctx.append(:'s', 'user', :'secret' || :'filler');
SELECT ctx.append(:'s', 'assistant', 'ok');
SELECT ctx.compact(:'s', 'summary ' || :'secret', keep_last => 1);
SELECT ctx.update_working_memory(:'s', jsonb_build_object('k', :'secret'));
SELECT ctx.encrypt_namespace('{scan}');
SELECT ctx.remember('{scan,u}', 'memory ' || :'secret', metadata => jsonb_build_object('m', :'secret'));
SELECT ctx.put('{scan,u}', 'k', jsonb_build_object('v', :'secret'));
-- the checkpoint store of an encrypted thread (metadata and its run id, values, writes) and an
-- encrypted LLM cache
SELECT ctx.thread_context('scan-thread', encrypted => true) IS NOT NULL;
SELECT ctx.checkpoint_put('scan-thread', '', '{"id": "1", "channel_versions": {"c": "1"}}',
                          jsonb_build_object('run_id', 'run ' || :'secret', 'note', :'secret'), NULL,
                          '{c}', '{1}', '{json}', ARRAY[convert_to('value ' || :'secret', 'UTF8')]);
SELECT ctx.checkpoint_put_writes('scan-thread', '', '1', 't', '{0}', '{c}', '{json}',
                                 ARRAY[convert_to('write ' || :'secret', 'UTF8')]);
SELECT ctx.encrypt_cache();
SELECT ctx.cache_store('prompt', 'model', to_jsonb('answer ' || :'secret'));
SELECT ctx.create_context('plain') AS p \gset
SELECT ctx.append(:'p', 'user', 'short ' || :'plain');
SELECT ctx.append(:'p', 'user', :'plain' || :'filler');
-- everything must read back before we look at the disk
DO $$ BEGIN
  IF (SELECT count(*) FROM ctx.messages m WHERE m.context_id IN (SELECT id FROM ctx.contexts WHERE name = 'secret')) <> 3 THEN
    RAISE EXCEPTION 'encrypted rows missing';
  END IF;
END $$;
CHECKPOINT;
SQL
# -a: binary files as text; count the files that hold each marker
found_secret=$(grep -a -r -l -F "$secret" "$datadir/base" "$datadir/pg_wal" 2>/dev/null | wc -l || true)
found_plain=$(grep -a -r -l -F "$plain" "$datadir/base" "$datadir/pg_wal" 2>/dev/null | wc -l || true)
echo "plaintext scan: encrypted marker in $found_secret files, unencrypted marker in $found_plain files"
if [ "$found_plain" -eq 0 ]; then
  echo "plaintext scan: the unencrypted marker was not found: the scan does not work" >&2
  exit 1
fi
if [ "$found_secret" -ne 0 ]; then
  echo "plaintext scan: encrypted content found on disk:" >&2
  grep -a -r -l -F "$secret" "$datadir/base" "$datadir/pg_wal" >&2 || true
  exit 1
fi
