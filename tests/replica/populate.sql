-- The replica tier's data, written on the primary (tests/replica.sh): plain and encrypted
-- contexts with edits, tombstones, a summary and a fork; memories with embeddings (an HNSW
-- index where pgvector exists); state with and without a ttl; working memory; threads;
-- checkpoints; the LLM cache; a registered schema; and a tenant-bound role's own data.
-- Every object is found again by name in reads.sql. The statements here touch no table
-- themselves (every table write is ctxstore's): the routing check runs this file too.
SET client_min_messages = warning;
CREATE EXTENSION ctxstore;
SELECT count(*) = 1 AS has_vector FROM pg_available_extensions WHERE name = 'vector' \gset
\if :has_vector
CREATE EXTENSION vector;
\endif
RESET client_min_messages;

CREATE FUNCTION public.replica_vec(seed int, dims int DEFAULT 32) RETURNS real[]
LANGUAGE sql IMMUTABLE AS $$ SELECT array_agg(sin(seed * 7.31 + j * 1.17)::real ORDER BY j) FROM generate_series(1, dims) j $$;

SELECT ctx.register_schema('profile', 1, '{"type": "object", "required": ["name"]}');

-- a plain context: messages, an edit, a tombstone, a summary, a fork
SELECT ctx.create_context('plain', '{"memory_namespace": ["user", "ada"], "topic": "trains"}', resource => 'ada') AS p \gset
SELECT count(*) FROM ctx.append_many(:'p', (SELECT jsonb_agg(jsonb_build_object(
    'role', CASE WHEN i % 2 = 1 THEN 'user' ELSE 'assistant' END,
    'content', 'plain message number ' || i || ' about the train to Lyon',
    'message_id', 'p-' || i,
    'metadata', jsonb_build_object('n', i)) ORDER BY i) FROM generate_series(1, 40) i));
SELECT ctx.update_message(:'p', 'p-3', content => 'plain message number 3, edited');
SELECT ctx.delete_messages(:'p', '{p-4}');
SELECT ctx.compact(:'p', 'Ada plans a train trip to Lyon.', keep_last => 30);
SELECT ctx.update_working_memory(:'p', '{"destination": "Lyon", "seat": "window"}') IS NOT NULL AS wm;
SELECT ctx.fork(:'p', 20) AS f \gset
SELECT ctx.update_context(:'f', name => 'plain fork');
SELECT ctx.append(:'f', 'user', 'only in the fork', message_id => 'f-1') IS NOT NULL AS appended;
SELECT ctx.configure_context_processors(:'p', '{"redact_pii": ["email"]}') IS NOT NULL AS processors;

-- an encrypted context: the same kinds of rows, sealed
SELECT ctx.create_context('sealed', '{"memory_namespace": ["vault"]}', encrypted => true) AS s \gset
SELECT count(*) FROM ctx.append_many(:'s', (SELECT jsonb_agg(jsonb_build_object(
    'role', 'user', 'content', 'sealed secret ' || i, 'message_id', 's-' || i,
    'metadata', jsonb_build_object('secret', i)) ORDER BY i) FROM generate_series(1, 12) i));
SELECT ctx.update_message(:'s', 's-2', content => 'sealed secret two, edited');
SELECT ctx.compact(:'s', 'Sealed summary.', keep_last => 8);
SELECT ctx.update_working_memory(:'s', '{"locker": 4477}') IS NOT NULL AS wm;

-- memories: text-only and with embeddings, one superseded, one encrypted namespace
SELECT ctx.remember(ARRAY['user', 'ada'], 'Ada fact number 1 likes tea', public.replica_vec(1),
                    '{"bucket": 1}', importance => 0.1) AS fact_one \gset
SELECT count(ctx.remember(ARRAY['user', 'ada'], 'Ada fact number ' || i || (CASE WHEN i % 3 = 0 THEN ' likes trains' ELSE ' likes tea' END),
                          public.replica_vec(i), jsonb_build_object('bucket', i % 5), importance => (i % 10) / 10.0))
  FROM generate_series(2, 300) i;
SELECT count(ctx.remember(ARRAY['user', 'ada', 'notes'], 'nested note ' || i)) FROM generate_series(1, 5) i;
SELECT ctx.update_memory(:'fact_one', content => 'Ada fact number 1 now likes coffee') IS NOT NULL AS updated;
SELECT ctx.encrypt_namespace('{vault}');
SELECT count(ctx.remember('{vault}', 'vault memory ' || i, public.replica_vec(1000 + i))) FROM generate_series(1, 20) i;
\if :has_vector
SELECT ctx.create_vector_index(32, 'cosine');
\endif

-- state: plain, with a ttl (a touch on the standby must not move it), under a schema
SELECT ctx.put('{app,settings}', 'theme', '{"dark": true}');
SELECT ctx.put('{app,settings}', 'lang', '"fr"', ttl => '1 day');
SELECT ctx.put('{app,people}', 'ada', '{"name": "Ada", "age": 36}', schema => 'profile');
SELECT ctx.patch('{app,people}', 'ada', '{"age": 37}');
SELECT ctx.put('{langgraph,docs}', 'd1', '{"text": "a document"}', ttl => '2 hours');

-- threads and checkpoints
SELECT ctx.save_thread('thread-1', 'First thread', 'ada', '{"topic": "billing"}',
                       '2026-01-01 00:00:00+00', '2026-01-02 00:00:00+00') IS NOT NULL AS thread;
SELECT count(*) AS thread_messages
  FROM ctx.save_messages((SELECT context_id FROM ctx.get_thread('thread-1')),
                         '[{"message_id": "t1-1", "role": "user", "content": "about my bill"},
                           {"message_id": "t1-2", "role": "assistant", "content": "here it is", "metadata": {"n": 2}}]');
SELECT ctx.checkpoint_put('graph-1', '', '{"v": 1, "id": "0001", "channel_versions": {"a": "1", "b": "1"}}',
                          '{"source": "input", "step": -1, "run_id": "r1"}', NULL,
                          '{a,b}', '{1,1}', '{json,json}', ARRAY['"a1"'::bytea, '"b1"'::bytea]);
SELECT ctx.checkpoint_put('graph-1', '', '{"v": 1, "id": "0002", "channel_versions": {"a": "2", "b": "1"}}',
                          '{"source": "loop", "step": 0, "run_id": "r1"}', '0001',
                          '{a}', '{2}', '{json}', ARRAY['"a2"'::bytea]);
SELECT ctx.checkpoint_put_writes('graph-1', '', '0002', 'task-1', '{0,1}', '{a,b}', '{json,json}',
                                 ARRAY['"w0"'::bytea, '"w1"'::bytea]);
SELECT ctx.thread_context('graph-sealed', encrypted => true) IS NOT NULL AS sealed_thread;
SELECT ctx.checkpoint_put('graph-sealed', '', '{"id": "0001", "channel_versions": {"x": "1"}}',
                          '{"run_id": "r9"}', NULL, '{x}', '{1}', '{json}', ARRAY['"sealed value"'::bytea]);

-- the LLM cache, one entry sealed
SELECT ctx.cache_store('what is the capital of France?', 'model-a', '["Paris"]');
SELECT ctx.cache_store('short-lived', 'model-a', '["gone soon"]', ttl => '1 hour');

-- a tenant-bound role with its own rows (RLS and ctx.current_tenant() on the standby)
CREATE ROLE replica_reader LOGIN;
SELECT ctx.grant_access('replica_reader');
SELECT ctx.bind_role_to_tenant('replica_reader', 'acme');
SET ROLE replica_reader;
SELECT ctx.create_context('acme plain') IS NOT NULL AS acme_context;
SELECT ctx.append(id, 'user', 'acme message ' || i, message_id => 'a-' || i) IS NOT NULL
  FROM ctx.list_contexts(), generate_series(1, 5) i WHERE name = 'acme plain';
SELECT count(ctx.remember('{acme}', 'acme memory ' || i, public.replica_vec(2000 + i))) FROM generate_series(1, 10) i;
SELECT ctx.put('{acme}', 'k', '"acme value"', ttl => '1 day');
RESET ROLE;

-- the audit chain sealed up to here (the standby verifies it without sealing)
SELECT ctx.seal_audit() > 0 AS sealed;
