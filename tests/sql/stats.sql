-- Size views: per context and per namespace, limited to the caller's tenant.
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS ctxstore;
RESET client_min_messages;
\pset footer off

SELECT ctx.create_context('stats') AS s \gset
SELECT count(*) FROM ctx.append_many(:'s', (SELECT jsonb_agg(jsonb_build_object('role', 'user', 'content', 'message ' || i)) FROM generate_series(1, 10) i));
SELECT ctx.compact(:'s', 'the first seven', keep_last => 3);
SELECT ctx.fork(:'s') AS f \gset
SELECT ctx.append(:'f', 'user', 'fork message');
SELECT name, parent_id IS NOT NULL AS is_fork, messages, archived, tokens = (SELECT sum(tokens) FROM ctx.messages WHERE context_id = st.context_id) AS tokens_ok,
       bytes > 0 AS has_bytes, summaries, last_activity IS NOT NULL AS active
  FROM ctx.context_stats st WHERE context_id IN (:'s', :'f') ORDER BY is_fork;

SELECT ctx.remember('{stats,a}', 'one') IS NOT NULL, ctx.remember('{stats,a}', 'two', ttl => '1 second') IS NOT NULL;
SELECT ctx.update_memory(id, content => 'one, revised') IS NOT NULL FROM ctx.memories WHERE namespace = '{stats,a}' AND content = 'one';
SELECT ctx.put('{stats,b}', 'k1', '{"v": 1}'), ctx.put('{stats,b}', 'k2', '{"v": 2}');
UPDATE ctx.memories SET expires_at = now() - interval '1 minute' WHERE namespace = '{stats,a}' AND content = 'two';
SELECT store, namespace, live, expired, versions, bytes > 0 AS has_bytes
  FROM ctx.namespace_stats WHERE namespace[1] = 'stats' ORDER BY store, namespace;

-- clean up what other tests count
DELETE FROM ctx.memories WHERE namespace[1] = 'stats';
SELECT ctx.delete_key('{stats,b}', 'k1'), ctx.delete_key('{stats,b}', 'k2');
SELECT ctx.delete_context(:'s', cascade => true);

-- Retention: expired memories and state are hidden at once and removed by ctx.sweep in batches.

SELECT count(*) FROM (SELECT ctx.remember('{sweep}', 'memory ' || i, ttl => '1 hour') FROM generate_series(1, 3) i) r;
SELECT count(*) FROM (SELECT ctx.put('{sweep}', 'k' || i, '{}', ttl => '1 hour') FROM generate_series(1, 3) i) p;
SELECT ctx.remember('{sweep}', 'keeps') IS NOT NULL AS kept;
UPDATE ctx.memories SET expires_at = now() - interval '1 second' WHERE namespace = '{sweep}' AND content <> 'keeps';
UPDATE ctx.state SET expires_at = now() - interval '1 second' WHERE namespace = '{sweep}';
SELECT count(*) AS recalled FROM ctx.recall('{sweep}', query_text => 'memory');
SELECT ctx.get('{sweep}', 'k1') AS expired_value;
SELECT ctx.sweep(4) AS first_batch, ctx.sweep(4) AS second_batch, ctx.sweep() AS nothing_left;
SELECT count(*) AS memories_left FROM ctx.memories WHERE namespace = '{sweep}';
SELECT count(*) AS audited_state_deletes FROM ctx.audit_log
 WHERE operation = 'DELETE' AND table_name = 'state' AND row_key -> 'namespace' = '["sweep"]';
SELECT ctx.sweep(0);
DELETE FROM ctx.memories WHERE namespace = '{sweep}';
