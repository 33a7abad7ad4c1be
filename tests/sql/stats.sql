-- Size views: per context and per namespace, limited to the caller's tenant. Every number is
-- compared with what this file wrote (counted from the texts and calls themselves), never with a
-- re-count of the tables the views read.
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS ctxstore;
RESET client_min_messages;
\pset footer off

-- message i is the word "cat" i times: i tokens, 1 + 2 + ... + 10 = 55 in all, 28 in the
-- first seven, 27 in the last three; the fork's own message is 2 tokens
SELECT array_agg(ctx.count_tokens(rtrim(repeat('cat ', i))) ORDER BY i) AS tokens_per_message,
       ctx.count_tokens('fork message') AS fork_message_tokens
  FROM generate_series(1, 10) i;
SELECT ctx.create_context('stats') AS s \gset
SELECT count(*) FROM ctx.append_many(:'s', (SELECT jsonb_agg(jsonb_build_object('role', 'user', 'content', rtrim(repeat('cat ', i))) ORDER BY i) FROM generate_series(1, 10) i));
-- the first seven are archived (stored compressed) under one summary
SELECT ctx.compact(:'s', 'the first seven', keep_last => 3);
SELECT ctx.fork(:'s') AS f \gset
SELECT ctx.append(:'f', 'user', 'fork message');
-- the parent: its 10 messages, 7 archived, 55 tokens; the fork: its own 1 message (2 tokens),
-- none archived, and the summary it inherits
SELECT name, parent_id IS NOT NULL AS is_fork, messages, archived, tokens,
       bytes > 0 AS has_bytes, summaries, last_activity IS NOT NULL AS active
  FROM ctx.context_stats st WHERE context_id IN (:'s', :'f') ORDER BY is_fork;

-- memories: 'one' (revised: 2 versions, 1 live) and 'two' (expired): 1 live, 1 expired, 3 versions;
-- state: k1 (written twice: still one row), k2, k3 (expired): 2 live, 1 expired, 3 rows
SELECT ctx.remember('{stats,a}', 'one') IS NOT NULL, ctx.remember('{stats,a}', 'two', ttl => '1 second') IS NOT NULL;
SELECT ctx.update_memory(id, content => 'one, revised') IS NOT NULL FROM ctx.memories WHERE namespace = '{stats,a}' AND content = 'one';
SELECT ctx.put('{stats,b}', 'k1', '{"v": 1}'), ctx.put('{stats,b}', 'k2', '{"v": 2}');
SELECT ctx.put('{stats,b}', 'k1', '{"v": 11}') AS k1_version, ctx.put('{stats,b}', 'k3', '{"v": 3}', ttl => '1 hour') AS k3_version;
UPDATE ctx.memories SET expires_at = now() - interval '1 minute' WHERE namespace = '{stats,a}' AND content = 'two';
UPDATE ctx.state SET expires_at = now() - interval '1 minute' WHERE namespace = '{stats,b}' AND key = 'k3';
SELECT store, namespace, live, expired, versions, bytes > 0 AS has_bytes
  FROM ctx.namespace_stats WHERE namespace[1] = 'stats' ORDER BY store, namespace;

-- clean up what other tests count
DELETE FROM ctx.memories WHERE namespace[1] = 'stats';
DELETE FROM ctx.state WHERE namespace = '{stats,b}' AND key = 'k3';
SELECT ctx.delete_key('{stats,b}', 'k1'), ctx.delete_key('{stats,b}', 'k2');
SELECT ctx.delete_context(:'s', cascade => true);
