-- Retention: per-context message policies and memory/state TTLs hide expired rows from every
-- read at once; ctx.sweep removes them in bounded batches and compresses old messages.
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS ctxstore;
RESET client_min_messages;
\pset footer off
\set VERBOSITY default

-- What earlier tests left expired goes first. In the suite's one database that is one row:
-- memories.sql's 'short-lived' memory (TTL 1 ms); no message, state or cache entry has expired.
-- (Run alone on a fresh database, there is nothing, and this reads 0 | 0.)
SELECT namespace, content FROM ctx.memories WHERE expires_at <= now();
SELECT ctx.sweep() AS swept_before, ctx.sweep() AS nothing_left;
SELECT ctx.create_context('retention') AS r \gset
SELECT count(*) FROM ctx.append_many(:'r', (SELECT jsonb_agg(jsonb_build_object('role', 'user', 'content', 'message ' || i)) FROM generate_series(1, 10) i));
-- the first three were written two days ago
UPDATE ctx.messages SET written_at = now() - interval '2 days' WHERE context_id = :'r' AND seq <= 3;
SELECT ctx.set_retention(:'r', max_age => '1 day', max_messages => 7);
-- seqs 1-3: too old; 1-3 also beyond the newest 7: every read starts at 4
SELECT string_agg(seq::text, ',') AS messages FROM ctx.messages(:'r');
SELECT string_agg(seq::text, ',') AS last_100 FROM ctx.window(:'r', 100);
SELECT string_agg(seq::text, ',') AS token_window FROM ctx.token_window(:'r', 100000);
SELECT string_agg(seq::text, ',') AS history FROM ctx.history(:'r');
SELECT jsonb_array_length(ctx.build_context_json(:'r', 100000)) AS assembled;
SELECT messages, expired, retain_max_age, retain_max_messages FROM ctx.context_stats WHERE context_id = :'r';
-- The reads of a context without ancestors apply each bound on its own (one-segment
-- statements): an age alone (ra: seqs 1-2 written too long ago) and a count alone (rc: the
-- newest 7 of 10). Pages by either order, counts with and without a time range, by id, and
-- windows by seq and by the caller's time.
SELECT ctx.create_context('retention by age') AS ra \gset
SELECT ctx.create_context('retention by count') AS rc \gset
SELECT count(*) AS saved FROM unnest(ARRAY[:'ra', :'rc']::uuid[]) AS c(id),
       ctx.save_messages(c.id, (SELECT jsonb_agg(jsonb_build_object('message_id', 'm' || i, 'role', 'user', 'content', 'message ' || i))
                                  FROM generate_series(1, 10) i));
UPDATE ctx.messages SET written_at = now() - interval '2 days' WHERE context_id = :'ra' AND seq <= 2;
SELECT ctx.set_retention(:'ra', max_age => '1 day'), ctx.set_retention(:'rc', max_messages => 7);
SELECT r.name, ctx.count_messages(r.id) AS counted,
       ctx.count_messages(r.id, now() - interval '1 day', now() + interval '1 day') AS counted_dated,
       (SELECT string_agg(seq::text, ',') FROM ctx.list_messages(r.id, order_by => 'created_at')) AS by_time,
       (SELECT string_agg(seq::text, ',') FROM ctx.list_messages(r.id, order_by => 'created_at', descending => true)) AS by_time_desc,
       (SELECT string_agg(seq::text, ',') FROM ctx.list_messages(r.id, descending => true)) AS by_seq_desc,
       (SELECT string_agg(message_id, ',') FROM ctx.get_messages(r.id, '{m2,m3,m4}')) AS by_id,
       (SELECT string_agg(seq::text, ',') FROM ctx.message_windows(r.id, '{m5}', '{3}', '{1}', 'created_at')) AS window_by_time,
       (SELECT string_agg(seq::text, ',') FROM ctx.message_windows(r.id, '{m5}', '{3}', '{1}')) AS window_by_seq
  FROM (VALUES ('age', :'ra'::uuid), ('count', :'rc'::uuid)) AS r(name, id);

-- a new message pushes the oldest out of the newest 7
SELECT ctx.append(:'r', 'user', 'message 11');
SELECT string_agg(seq::text, ',') AS messages FROM ctx.messages(:'r');
-- a fork reads its parent's messages under the parent's policy and its own; it never deletes them
SELECT ctx.fork(:'r') AS f \gset
SELECT ctx.append(:'f', 'user', 'fork ' || i) FROM generate_series(1, 3) i;
SELECT ctx.set_retention(:'f', max_messages => 13);
SELECT string_agg(seq::text, ',') AS fork_messages FROM ctx.messages(:'f');
SELECT ctx.set_retention(:'f', max_messages => 2);
SELECT string_agg(seq::text, ',') AS fork_messages FROM ctx.messages(:'f');
SELECT string_agg(seq::text, ',') AS fork_window FROM ctx.token_window(:'f', 100000);

-- a fork of the fork: the policies of every context in between apply to what it inherits
SELECT ctx.fork(:'f') AS g \gset
SELECT ctx.append(:'g', 'user', 'grandchild');
SELECT string_agg(seq::text, ',') AS grandchild_messages FROM ctx.messages(:'g');
SELECT ctx.set_retention(:'f');
SELECT string_agg(seq::text, ',') AS grandchild_messages FROM ctx.messages(:'g');
SELECT ctx.set_retention(:'f', max_messages => 2);

-- the sweep deletes what no read returns, in batches, and nothing else
SELECT ctx.sweep(2) AS first_batch, ctx.sweep() AS the_rest, ctx.sweep() AS nothing_left;
SELECT string_agg(seq::text, ',' ORDER BY seq) AS stored FROM ctx.messages m WHERE m.context_id = :'r';
SELECT string_agg(seq::text, ',' ORDER BY seq) AS stored_fork FROM ctx.messages m WHERE m.context_id = :'f';
SELECT count(*) AS audited_deletes FROM ctx.audit_log
 WHERE operation = 'DELETE' AND table_name = 'messages' AND row_key ->> 'context_id' IN (:'r', :'f');

-- compact_older_than: the sweep stores old messages lz4-compressed; they read the same
SELECT ctx.set_retention(:'r', compact_older_than => '1 hour');
UPDATE ctx.messages SET written_at = now() - interval '2 hours' WHERE context_id = :'r' AND seq <= 6;
SELECT ctx.sweep() AS compressed, ctx.sweep() AS nothing_left;
SELECT seq, content IS NULL AND content_lz4 IS NOT NULL AS compressed FROM ctx.messages m WHERE m.context_id = :'r' ORDER BY seq LIMIT 4;
SELECT seq, content FROM ctx.messages(:'r') LIMIT 2;
SELECT retain_max_age, retain_max_messages, compact_older_than FROM ctx.context_stats WHERE context_id = :'r';

-- bad policies: specific SQLSTATEs, nothing changed
SELECT ctx.set_retention(:'r', max_age => '-1 day');
SELECT ctx.set_retention(:'r', max_messages => 0);
SELECT ctx.set_retention(:'r', compact_older_than => '0 seconds');
SELECT ctx.set_retention(:'r', max_age => '100000 years');
SELECT ctx.set_retention('00000000-0000-0000-0000-000000000000', max_messages => 5);
SELECT ctx.set_retention(NULL);
SELECT compact_older_than FROM ctx.context_stats WHERE context_id = :'r';

-- a compacted context: the summary stays (it stands for what it covers), expired messages go
SELECT ctx.compact(:'r', 'summary of 5 to 9', keep_last => 2);
SELECT ctx.set_retention(:'r', max_messages => 1);
SELECT seq, role, content FROM ctx.token_window(:'r', 1000);
SELECT seq, role, content FROM ctx.window(:'r', 5);
SELECT ctx.delete_context(:'r', cascade => true);

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
