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
