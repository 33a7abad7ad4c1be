-- The checkpoint store of graph agents: threads as contexts, checkpoints with parents and
-- metadata, channel values stored once per version, pending writes, list filters, copy (a
-- fork), prune, delete by run; sealed in encrypted threads; tenancy and audit.
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS ctxstore;
RESET client_min_messages;
\pset footer off
SET ctxstore.master_key = 'k1:000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f';

-- a thread is a context, created on first use, found again by its id
SELECT ctx.thread_context('t1') = ctx.thread_context('t1') AS same_context;
SELECT ctx.thread_context('never', create_missing => false) IS NULL AS missing;
SELECT name FROM ctx.contexts WHERE id = ctx.thread_context('t1');

SELECT ctx.checkpoint_put('t1', '', '{"v": 1, "id": "0001", "channel_versions": {"a": "1", "b": "1"}}',
                          '{"source": "input", "step": -1, "run_id": "r1"}', NULL,
                          '{a,b}', '{1,1}', '{json,json}', ARRAY['"a1"'::bytea, '"b1"'::bytea]);
-- step 0 changes only a: b's value is not written again
SELECT ctx.checkpoint_put('t1', '', '{"v": 1, "id": "0002", "channel_versions": {"a": "2", "b": "1"}}',
                          '{"source": "loop", "step": 0, "run_id": "r1"}', '0001',
                          '{a}', '{2}', '{json}', ARRAY['"a2"'::bytea]);
SELECT ctx.checkpoint_put('t1', 'child:1', '{"v": 1, "id": "0003", "channel_versions": {}}',
                          '{"source": "loop", "step": 1, "run_id": "r2"}');
SELECT count(*) AS stored_values FROM ctx.checkpoint_blobs WHERE context_id = ctx.thread_context('t1');
SELECT ctx.checkpoint_put_writes('t1', '', '0002', 'task-1', '{0,1}', '{a,b}', '{json,json}',
                                 ARRAY['"w0"'::bytea, '"w1"'::bytea]);
-- a second put of the same writes changes nothing; overwrite (special writes) replaces
SELECT ctx.checkpoint_put_writes('t1', '', '0002', 'task-1', '{0}', '{a}', '{json}', ARRAY['"again"'::bytea]);
SELECT ctx.checkpoint_put_writes('t1', '', '0002', 'task-1', '{-1}', '{__error__}', '{json}', ARRAY['"e1"'::bytea]);
SELECT ctx.checkpoint_put_writes('t1', '', '0002', 'task-1', '{-1}', '{__error__}', '{json}', ARRAY['"e2"'::bytea],
                                 overwrite => true);

-- the latest checkpoint of a namespace, with its values at their versions and its writes
SELECT checkpoint_id, parent_checkpoint_id, metadata, channels, types,
       (SELECT array_agg(convert_from(b, 'UTF8')) FROM unnest(blobs) b) AS values,
       write_task_ids, write_channels,
       (SELECT array_agg(convert_from(b, 'UTF8')) FROM unnest(write_blobs) b) AS writes
  FROM ctx.checkpoint_get('t1');
SELECT checkpoint_id, (SELECT array_agg(convert_from(b, 'UTF8')) FROM unnest(blobs) b) AS values
  FROM ctx.checkpoint_get('t1', '', '0001');
SELECT count(*) AS none FROM ctx.checkpoint_get('t1', '', 'nope');
-- list: newest first, across namespaces unless one is given; metadata filter, before, limit
SELECT checkpoint_ns, checkpoint_id FROM ctx.checkpoint_list('t1');
SELECT checkpoint_id FROM ctx.checkpoint_list('t1', checkpoint_ns => '');
SELECT checkpoint_id FROM ctx.checkpoint_list('t1', filter => '{"source": "loop", "run_id": "r1"}');
SELECT checkpoint_id FROM ctx.checkpoint_list('t1', before => '0003', max_rows => 1);
SELECT thread_id, checkpoint_id FROM ctx.checkpoint_list(max_rows => 2);

-- copy: the target thread is a fork of the source's context, with copies of the checkpoints
SELECT ctx.append(ctx.thread_context('t1'), 'user', 'a message of t1') AS seq;
SELECT ctx.checkpoint_copy_thread('t1', 't2') AS copied;
SELECT c.parent_id = ctx.thread_context('t1') AS is_fork, c.name FROM ctx.contexts c WHERE c.id = ctx.thread_context('t2');
SELECT content FROM ctx.messages(ctx.thread_context('t2'));
SELECT checkpoint_ns, checkpoint_id, cardinality(write_blobs) AS writes FROM ctx.checkpoint_list('t2');

-- prune keeps the latest of each namespace and drops what no checkpoint refers to any more
SELECT ctx.checkpoint_prune('{t2}') AS pruned;
SELECT checkpoint_ns, checkpoint_id FROM ctx.checkpoint_list('t2');
SELECT count(*) AS values_left FROM ctx.checkpoint_blobs WHERE context_id = ctx.thread_context('t2');
-- delete by run, in every thread; then a thread's whole store
SELECT ctx.checkpoint_delete_runs('{r2}') AS deleted;
SELECT thread_id, checkpoint_ns, checkpoint_id FROM ctx.checkpoint_list() ORDER BY 1, 2, 3;
SELECT ctx.checkpoint_delete_thread('t1') AS deleted;
SELECT count(*) AS left_in_t1 FROM ctx.checkpoint_list('t1');
SELECT (SELECT count(*) FROM ctx.checkpoint_writes w WHERE w.context_id = ctx.thread_context('t1'))
     + (SELECT count(*) FROM ctx.checkpoint_blobs b WHERE b.context_id = ctx.thread_context('t1')) AS garbage;
-- the thread's context and messages stay
SELECT count(*) AS messages FROM ctx.messages(ctx.thread_context('t1'));
SELECT ctx.checkpoint_collect_garbage(ARRAY[ctx.thread_context('t2')]) AS collected;

-- encrypted threads: values, writes and metadata are sealed with the thread's data key
SELECT ctx.thread_context('secret', encrypted => true) IS NOT NULL AS created;
SELECT ctx.checkpoint_put('secret', '', '{"v": 1, "id": "0001", "channel_versions": {"a": "1"}}',
                          '{"user": "ada@example.com"}', NULL, '{a}', '{1}', '{json}', ARRAY['"launch codes"'::bytea]);
SELECT ctx.checkpoint_put_writes('secret', '', '0001', 'task-1', '{0}', '{a}', '{json}', ARRAY['"more codes"'::bytea]);
SELECT c.metadata, c.metadata_enc IS NOT NULL AS sealed FROM ctx.checkpoints c WHERE c.context_id = ctx.thread_context('secret');
SELECT position('codes' IN encode(blob, 'escape')) AS plaintext_at FROM ctx.checkpoint_blobs WHERE context_id = ctx.thread_context('secret')
UNION ALL
SELECT position('codes' IN encode(blob, 'escape')) FROM ctx.checkpoint_writes WHERE context_id = ctx.thread_context('secret');
SELECT metadata, convert_from(blobs[1], 'UTF8') AS value, convert_from(write_blobs[1], 'UTF8') AS write
  FROM ctx.checkpoint_get('secret');
-- the metadata filter sees decrypted metadata
SELECT checkpoint_id FROM ctx.checkpoint_list('secret', filter => '{"user": "ada@example.com"}');
-- a copy is an encrypted fork, re-sealed with its own key
SELECT ctx.checkpoint_copy_thread('secret', 'secret-copy') AS copied;
SELECT convert_from(blobs[1], 'UTF8') AS value FROM ctx.checkpoint_get('secret-copy');
-- ... and cannot go into an unencrypted thread
SELECT ctx.thread_context('plain') IS NOT NULL AS created;
\set VERBOSITY sqlstate
SELECT ctx.checkpoint_copy_thread('secret', 'plain');
\set VERBOSITY default
-- ctx.context_seal / ctx.context_unseal: ciphertext opens only with the same context and binding
SELECT convert_from(ctx.context_unseal(ctx.thread_context('secret'),
           ctx.context_seal(ctx.thread_context('secret'), 'app data', 'row 7'), 'row 7'), 'UTF8') AS opened;
\set VERBOSITY sqlstate
SELECT ctx.context_unseal(ctx.thread_context('secret'),
           ctx.context_seal(ctx.thread_context('secret'), 'app data', 'row 7'), 'row 8');
SELECT ctx.context_seal(ctx.thread_context('plain'), 'app data');
SELECT ctx.context_seal('00000000-0000-0000-0000-000000000000', 'app data');
\set VERBOSITY default
SELECT ctx.context_seal(ctx.thread_context('secret'), NULL) IS NULL AS null_in_null_out;
-- shredding a thread destroys its key and deletes its context, checkpoints included
SELECT ctx.shred(ctx.thread_context('secret-copy')) > 0 AS shredded;
SELECT count(*) FROM ctx.checkpoint_list('secret-copy');

-- tenancy: another tenant's application role sees none of these threads
CREATE ROLE checkpoint_app;
SELECT ctx.grant_access('checkpoint_app');
SET ROLE checkpoint_app;
SET ctxstore.tenant = 'other';
SELECT count(*) AS visible FROM ctx.checkpoint_list();
SELECT ctx.thread_context('t1', create_missing => false) IS NULL AS not_found;
SELECT ctx.checkpoint_put('t1', '', '{"v": 1, "id": "0001"}') AS own_t1;
SELECT thread_id, checkpoint_id FROM ctx.checkpoint_list();
RESET ctxstore.tenant;
RESET ROLE;
SELECT tenant, thread_id FROM ctx.threads WHERE thread_id = 't1' ORDER BY 1;

-- every change is audited
SELECT table_name, operation, count(*) FROM ctx.audit_log
 WHERE table_name IN ('threads', 'checkpoints', 'checkpoint_blobs', 'checkpoint_writes')
 GROUP BY 1, 2 ORDER BY 1, 2;

-- bad input (SQLSTATE after each)
\set SHOW_CONTEXT never
SELECT ctx.thread_context(NULL);
\echo :SQLSTATE
SELECT ctx.thread_context('');
\echo :SQLSTATE
SELECT ctx.checkpoint_put('t3', '', NULL);
\echo :SQLSTATE
SELECT ctx.checkpoint_put('t3', '', '{"v": 1}');
\echo :SQLSTATE
SELECT ctx.checkpoint_put('t3', '', '{"id": "1", "channel_values": {"a": 1}}');
\echo :SQLSTATE
SELECT ctx.checkpoint_put('t3', '', '{"id": "1"}', '[]');
\echo :SQLSTATE
SELECT ctx.checkpoint_put('t3', '', '{"id": "1"}', '{}', NULL, '{a,b}', '{1}', '{json}', ARRAY[NULL::bytea]);
\echo :SQLSTATE
SELECT ctx.checkpoint_put_writes('t3', '', '1', 'task', '{0}', '{a}', '{json}', ARRAY[NULL::bytea]);
\echo :SQLSTATE
SELECT ctx.checkpoint_put_writes('t3', '', '1', 'task', '{0,0}', '{a,b}', '{json,json}', ARRAY['"x"'::bytea, '"y"'::bytea]);
\echo :SQLSTATE
SELECT ctx.checkpoint_prune('{t1}', -1);
\echo :SQLSTATE
SELECT ctx.checkpoint_prune(NULL);
\echo :SQLSTATE
SELECT ctx.checkpoint_copy_thread('nope', 't9');
\echo :SQLSTATE
SELECT ctx.checkpoint_copy_thread('t1', 't1');
\echo :SQLSTATE
SELECT ctx.checkpoint_delete_runs(NULL);
\echo :SQLSTATE
SELECT ctx.checkpoint_collect_garbage(NULL);
\echo :SQLSTATE
SELECT count(*) FROM ctx.checkpoint_list('t1', max_rows => -1);
\echo :SQLSTATE
SELECT count(*) AS no_thread_no_rows FROM ctx.checkpoint_get(NULL);
SELECT count(*) AS unknown_thread_no_rows FROM ctx.checkpoint_get('never-seen');
