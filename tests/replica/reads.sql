-- The read suite of the replica tier (tests/replica.sh): every read function and view, run on
-- the hot standby and on the primary in a read-only transaction; the two outputs must be equal.
-- The client's own statements here touch no table (every table read is ctxstore's): the routing
-- check (tests/tenant_routing.sh) runs it too.
-- Each "check:" line starts one check; every check must return rows (the driver refuses an
-- empty result, so an answer of nothing on both servers cannot pass).
SELECT id AS p FROM ctx.list_contexts() WHERE name = 'plain' \gset
SELECT id AS f FROM ctx.list_contexts() WHERE name = 'plain fork' \gset
SELECT id AS s FROM ctx.list_contexts() WHERE name = 'sealed' \gset

\echo check: messages
SELECT seq, role, content, message_id, metadata FROM ctx.messages(:'p') ORDER BY seq LIMIT 8;
\echo check: messages since a seq, bounded
SELECT seq, content FROM ctx.messages(:'p', since_seq => 35, max_rows => 3);
\echo check: window
SELECT seq, role, content FROM ctx.window(:'p', 5);
\echo check: token window
SELECT seq, tokens, content FROM ctx.token_window(:'p', 60);
\echo check: history with revisions and tombstones
SELECT seq, content, archived FROM ctx.history(:'p') WHERE seq BETWEEN 1 AND 6;
\echo check: messages by id
SELECT * FROM ctx.get_messages(:'p', '{p-3,p-4,p-5}');
\echo check: list_messages
SELECT * FROM ctx.list_messages(:'p', order_by => 'created_at', descending => true, max_rows => 4, skip => 2);
\echo check: count_messages
SELECT ctx.count_messages(:'p') AS plain, ctx.count_messages(:'f') AS fork, ctx.count_messages(:'s') AS sealed;
\echo check: messages_around
SELECT seq, content FROM ctx.messages_around(:'p', 'p-10', 2, 2);
\echo check: a fork reads through its parent
SELECT seq, content FROM ctx.window(:'f', 4);
\echo check: sealed messages, window, token window, history
SELECT seq, content, metadata FROM ctx.messages(:'s') ORDER BY seq;
SELECT seq, content FROM ctx.window(:'s', 3);
SELECT seq, content FROM ctx.token_window(:'s', 20);
SELECT seq, content, archived FROM ctx.history(:'s') WHERE seq <= 3;

\echo check: contexts and threads
SELECT name, metadata, resource FROM ctx.list_contexts() ORDER BY name;
SELECT thread_id, title, resource, metadata FROM ctx.list_threads();
SELECT thread_id, title, created_at, updated_at FROM ctx.get_thread('thread-1');
SELECT * FROM ctx.locate_messages('{p-3,s-2,f-1}') ORDER BY 1;
\echo check: a page of a thread by the thread id
SELECT resource, total, seq, message_id, role, content, metadata
  FROM ctx.thread_page('thread-1', order_by => 'created_at', descending => true, with_total => true);
SELECT resource, total, seq FROM ctx.thread_page('thread-1', skip => 10, with_total => true);

\echo check: recall by text
SELECT content, round(score::numeric, 6) AS score FROM ctx.recall('{user,ada}', query_text => 'trains', k => 5);
\echo check: recall by embedding, exact
SET ctxstore.exact_recall_max_candidates = 1000000;
SELECT content, round(similarity::numeric, 6) AS similarity
  FROM ctx.recall('{user,ada}', public.replica_vec(7), k => 5, filter => '{"bucket": 2}');
\echo check: recall by embedding, through the index where there is one
SET ctxstore.exact_recall_max_candidates = 0;
SELECT content, round(similarity::numeric, 6) AS similarity FROM ctx.recall('{user,ada}', public.replica_vec(7), k => 5);
RESET ctxstore.exact_recall_max_candidates;
\echo check: recall, hybrid, with descendants
SELECT content FROM ctx.recall('{user,ada}', public.replica_vec(11), 'note', k => 4, include_descendants => true);
\echo check: recall in an encrypted namespace
SELECT content, round(similarity::numeric, 6) AS similarity FROM ctx.recall('{vault}', public.replica_vec(1003), k => 3);
\echo check: recall as of the past
SELECT count(*) FROM ctx.recall('{user,ada}', query_text => 'coffee', as_of => now() - interval '1 hour');
SELECT content FROM ctx.recall('{user,ada}', query_text => 'coffee', k => 1);

\echo check: build_context
SELECT position, section, role, left(content, 60) AS content FROM ctx.build_context(:'p', 300) ORDER BY position;
\echo check: build_context with a query, and its JSON form, sealed
SELECT position, section FROM ctx.build_context(:'p', 400, public.replica_vec(3), 'trains') ORDER BY position;
SELECT jsonb_pretty(ctx.build_context_json(:'s', 200));

\echo check: state
SELECT ctx.get('{app,people}', 'ada') AS ada, ctx.get('{app,settings}', 'lang') AS lang;
SELECT namespace, key, value, version FROM ctx.search_state('{app}');
SELECT ctx.list_namespaces();
SELECT ctx.validate('profile', '{"name": "x"}') AS valid, ctx.validate('profile', '{}') AS invalid;
\echo check: a ttl touch is skipped in a read-only transaction (it restarts no ttl, and fails nothing)
SELECT ctx.touch('{app,settings}', '{lang}') AS touched, ctx.touch('{langgraph,docs}', '{d1}') AS touched_docs;
\echo check: working memory and processor configuration
SELECT ctx.working_memory(:'p') AS plain, ctx.working_memory(:'s') AS sealed;
SELECT ctx.processor_config(:'p');

\echo check: checkpoints
SELECT checkpoint_id, parent_checkpoint_id, metadata, channels,
       (SELECT array_agg(convert_from(b, 'UTF8')) FROM unnest(blobs) b) AS "values",
       write_task_ids, write_channels
  FROM ctx.checkpoint_get('graph-1');
SELECT checkpoint_id, metadata FROM ctx.checkpoint_list('graph-1');
SELECT checkpoint_id, (SELECT array_agg(convert_from(b, 'UTF8')) FROM unnest(blobs) b) AS "values"
  FROM ctx.checkpoint_get('graph-sealed');

\echo check: the LLM cache
SELECT ctx.cache_lookup('what is the capital of France?', 'model-a') AS hit,
       ctx.cache_lookup('never asked', 'model-a') IS NULL AS miss;

-- (the views query every row the caller may see: the routing check, tests/tenant_routing.sh,
-- runs this file without them)
\if :{?routing}
\else
\echo check: views and metrics (metrics are per server: only that they answer)
SELECT context_id = :'p' AS plain, messages, summaries FROM ctx.context_stats ORDER BY messages DESC LIMIT 3;
SELECT * FROM ctx.namespace_stats ORDER BY 1, 2, 3;
SELECT count(*) > 0 AS answered FROM ctx.processors;
SELECT count(*) > 0 AS answered FROM ctx.metrics;
SELECT ctx.metrics_prometheus() LIKE '%ctxstore_%' AS answered, count(*) > 0 AS samples FROM ctx.metric_samples();
SELECT count(*) >= 0 AS answered FROM ctx.key_cache_stats();
\endif
\echo check: the audit chain verifies
SELECT * FROM ctx.verify_audit();

\echo check: a tenant-bound role sees its own rows only
SET ROLE replica_reader;
SELECT ctx.current_tenant(), count(*) AS contexts FROM ctx.list_contexts();
SELECT seq, content FROM ctx.window((SELECT id FROM ctx.list_contexts() WHERE name = 'acme plain'), 3);
SELECT content, round(similarity::numeric, 6) AS similarity FROM ctx.recall('{acme}', public.replica_vec(2004), k => 2);
SELECT ctx.get('{acme}', 'k') AS acme, ctx.get('{app,people}', 'ada') IS NULL AS not_theirs;
RESET ROLE;
