#!/usr/bin/env bash
# Encryption at rest, checked on disk: a unique marker written to an encrypted context (short
# and TOASTed messages, metadata, summary, working memory) and to an encrypted namespace
# (memory, state), an encrypted checkpoint thread and an encrypted LLM cache must appear in no
# data file (heap, TOAST or WAL) after a CHECKPOINT. The positive controls prove the scan can
# see each place: an unencrypted short message's marker must be found in the messages heap file
# and in the WAL, and an unencrypted TOASTed message's marker in the messages' TOAST file.
#   plaintext_scan.sh pg15|pg18   (after scripts/install.sh)
source "$(dirname "$0")/lib.sh"
throwaway_cluster "$1" plaintext-scan $((56400 + ${1#pg}))

secret="ctxstore-secret-$(date +%s%N)"
plain="ctxstore-plain-$(date +%s%N)"
toasted="ctxstore-toasted-$(date +%s%N)"
psql -d postgres -c "CREATE DATABASE ctxstore_scan"
psql -d ctxstore_scan -v secret="$secret" -v plain="$plain" -v toasted="$toasted" >/dev/null <<'SQL'
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
SELECT ctx.append(:'p', 'user', :'toasted' || :'filler');
-- everything must read back before we look at the disk
DO $$ BEGIN
  IF (SELECT count(*) FROM ctx.messages m WHERE m.context_id IN (SELECT id FROM ctx.contexts WHERE name = 'secret')) <> 3 THEN
    RAISE EXCEPTION 'encrypted rows missing';
  END IF;
END $$;
CHECKPOINT;
SQL
# -a: binary files as text; where each marker is
files_with() { as_pg grep -a -r -l -F "$1" "${@:2}" 2>/dev/null || true; }
relfile() { echo "$datadir/$(psql -d ctxstore_scan -tA -c "SELECT pg_relation_filepath($1)")"; }
heap=$(relfile "'ctx.messages'::regclass")
toast=$(relfile "(SELECT reltoastrelid FROM pg_class WHERE oid = 'ctx.messages'::regclass)")
found_secret=$(files_with "$secret" "$datadir/base" "$datadir/pg_wal" | wc -l)
echo "plaintext scan: encrypted marker in $found_secret files"
files_with "$plain" "$heap" | grep -q . || fail "the unencrypted marker is not in the messages heap ($heap): the scan does not see heap pages"
files_with "$plain" "$datadir/pg_wal" | grep -q . || fail "the unencrypted marker is not in the WAL: the scan does not see WAL"
files_with "$toasted" "$toast" | grep -q . || fail "the TOASTed unencrypted marker is not in the TOAST file ($toast): the scan does not see TOAST"
if [ "$found_secret" -ne 0 ]; then
  echo "plaintext scan: encrypted content found on disk:" >&2
  files_with "$secret" "$datadir/base" "$datadir/pg_wal" >&2
  exit 1
fi
result 1 0 0 "scan of heap, TOAST and WAL; controls found in each"
