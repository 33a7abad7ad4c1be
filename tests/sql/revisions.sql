-- Messages with identity: caller ids, edits as revisions, deletes as tombstones, purges, reads
-- by id; and how revisions meet forks, compaction, encryption, audit, processors, retention
-- and tenants. Nothing an edit or a delete replaces is lost: ctx.history shows it.
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS ctxstore;
RESET client_min_messages;
\pset footer off
\set VERBOSITY default
SET ctxstore.tenant = 'revisions';
-- a call's error as SQLSTATE, message and hint, context ids shown as <id> (they differ from
-- run to run)
CREATE FUNCTION pg_temp.try(statement text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE message text; hint text;
BEGIN
    EXECUTE statement;
    RETURN 'ok';
EXCEPTION WHEN OTHERS THEN
    GET STACKED DIAGNOSTICS message = MESSAGE_TEXT, hint = PG_EXCEPTION_HINT;
    RETURN regexp_replace(SQLSTATE || ': ' || message || ' (hint: ' || hint || ')',
                          '[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}', '<id>', 'g');
END $$;
-- generated ids differ from run to run: shown as <uuid>
CREATE FUNCTION pg_temp.mid(id text) RETURNS text LANGUAGE sql AS $$
    SELECT CASE WHEN id ~ '^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$' THEN '<uuid>' ELSE id END
$$;

-- 1. Ids: the caller's, or a generated uuid; a taken id is 23505 naming ctx.save_messages.
SELECT ctx.create_context('ids') AS c \gset
SELECT ctx.append(:'c', 'system', 'be brief', message_id => 'sys');
SELECT ctx.append(:'c', 'user', 'hello', message_id => 'm-1', created_at => '2026-01-31T12:00:00Z');
SELECT ctx.append(:'c', 'assistant', 'hi, how can I help?');
SELECT seq, message_id ~ '^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$' AS generated_uuid,
       revision, created_at = '2026-01-31T12:00:00Z' AS callers_time
  FROM ctx.messages(:'c');
SELECT ctx.append(:'c', 'user', 'again', message_id => 'm-1');
\echo :SQLSTATE
SELECT * FROM ctx.append_many(:'c', '[{"role": "user", "content": "a", "message_id": "m-2"}, {"role": "user", "content": "b", "message_id": "m-1"}]');
\echo :SQLSTATE
SELECT * FROM ctx.append_many(:'c', '[{"role": "user", "content": "a", "message_id": "x"}, {"role": "user", "content": "b"}, {"role": "user", "content": "c", "message_id": "x"}]');
\echo :SQLSTATE
SELECT * FROM ctx.append_many(:'c', '[{"role": "user", "content": "a", "created_at": "yesterday"}]');
\echo :SQLSTATE
SELECT ctx.append(:'c', 'user', 'a', message_id => '');
\echo :SQLSTATE
-- a failed call wrote nothing: still three messages, last seq 3
SELECT count(*) AS messages, max(seq) AS last_seq FROM ctx.messages(:'c');
SELECT * FROM ctx.append_many(:'c', '[{"role": "user", "content": "two", "message_id": "m-2", "created_at": "2026-01-31T12:01:00+01:00"}, {"role": "assistant", "content": "three", "message_id": "m-3"}]');

-- 2. Edits: a new revision in the same place; tokens recounted; NULL keeps what it was.
SELECT ctx.update_message(:'c', 'm-1', 'hello there, I have a question about my invoice') AS revision;
SELECT ctx.update_message(:'c', 'm-1', metadata => '{"edited": true}') AS revision;
SELECT ctx.update_message(:'c', 'm-2', role => 'assistant') AS revision;
SELECT seq, pg_temp.mid(message_id) AS message_id, revision, role, content, metadata, tokens FROM ctx.messages(:'c') WHERE message_id IN ('m-1', 'm-2');
SELECT ctx.update_message(:'c', 'nope', 'x');
\echo :SQLSTATE
SELECT ctx.update_message(:'c', 'm-1', role => 'summary');
\echo :SQLSTATE
SELECT ctx.update_message(:'c', NULL, 'x');
\echo :SQLSTATE

-- 3. Deletes: tombstones every read skips; the count of those that were live; an unknown id
-- fails the call and deletes nothing.
SELECT ctx.delete_messages(:'c', '{m-2,nope}');
\echo :SQLSTATE
SELECT ctx.delete_messages(:'c', '{m-2,NULL}');
\echo :SQLSTATE
SELECT ctx.delete_messages(:'c', '{m-2}') AS deleted;
SELECT ctx.delete_messages(:'c', '{m-2}') AS deleted_again;
SELECT seq, pg_temp.mid(message_id) AS message_id, content FROM ctx.messages(:'c');
SELECT seq, pg_temp.mid(message_id) AS message_id, content FROM ctx.window(:'c', 2);
-- the tombstone inside a token window costs nothing: the window reaches past it
SELECT seq, pg_temp.mid(message_id) AS message_id, tokens FROM ctx.token_window(:'c', 30);
-- ... and the context assembly leaves it out as well
SELECT section, content FROM ctx.build_context(:'c', 100) WHERE section IN ('system', 'messages');
SELECT ctx.update_message(:'c', 'm-2', 'x');
\echo :SQLSTATE
-- its id stays taken until it is purged
SELECT ctx.append(:'c', 'user', 'reuse', message_id => 'm-2');
\echo :SQLSTATE
-- the history keeps every revision: replaced ones (current false) and the tombstone
SELECT seq, pg_temp.mid(message_id) AS message_id, revision, role, content, deleted, current FROM ctx.history(:'c');

-- 4. Saves: new ids appended in order, existing ones revised, a deleted one written again;
-- all or nothing, validated whole first.
SELECT pg_temp.mid(message_id) AS message_id, seq, revision FROM ctx.save_messages(:'c', '[
  {"message_id": "m-3", "role": "assistant", "content": "three, revised"},
  {"message_id": "m-4", "role": "user", "content": "four"},
  {"message_id": "m-2", "role": "user", "content": "two, back"},
  {"role": "assistant", "content": "five"}]');
SELECT seq, pg_temp.mid(message_id) AS message_id, revision, content FROM ctx.messages(:'c') WHERE seq > 1;
SELECT * FROM ctx.save_messages(:'c', '[{"message_id": "m-4", "role": "user", "content": "four again"}, {"message_id": "m-6", "role": "robot", "content": "x"}]');
\echo :SQLSTATE
SELECT * FROM ctx.save_messages(:'c', '[{"message_id": "m-4", "role": "user", "content": "a"}, {"message_id": "m-4", "role": "user", "content": "b"}]');
\echo :SQLSTATE
SELECT content FROM ctx.get_messages(:'c', '{m-4}') AS unchanged;

-- 5. Reads by id: in seq order, unknown and deleted ids left out; the window around an id.
SELECT seq, pg_temp.mid(message_id) AS message_id, content FROM ctx.get_messages(:'c', '{m-4,m-1,nope,sys}');
SELECT ctx.delete_messages(:'c', '{m-3}') AS deleted;
SELECT seq, pg_temp.mid(message_id) AS message_id FROM ctx.messages_around(:'c', 'm-2', before => 1, after => 2);
SELECT seq, pg_temp.mid(message_id) AS message_id FROM ctx.messages_around(:'c', 'sys', before => 5);
SELECT seq, pg_temp.mid(message_id) AS message_id FROM ctx.messages_around(:'c', 'm-3');
\echo :SQLSTATE
SELECT seq, pg_temp.mid(message_id) AS message_id FROM ctx.messages_around(:'c', 'm-1', before => -1);
\echo :SQLSTATE
SELECT * FROM ctx.get_messages(:'c', NULL);
\echo :SQLSTATE
-- Windows around several ids at once: by seq, each id's window is ctx.messages_around's
-- (checked for every live id and window size here, tombstones and the system message among
-- them), merged with each message once
SELECT count(*) AS windows_checked,
       count(*) FILTER (WHERE ARRAY(SELECT seq FROM ctx.message_windows(:'c', ARRAY[i.message_id], ARRAY[b], ARRAY[a]))
                              IS DISTINCT FROM ARRAY(SELECT seq FROM ctx.messages_around(:'c', i.message_id, b, a))) AS differing
  FROM ctx.list_messages(:'c') i, generate_series(0, 3) b, generate_series(0, 3) a;
SELECT seq, pg_temp.mid(message_id) AS message_id FROM ctx.message_windows(:'c', '{m-4,sys,nope,m-3}', '{1,0,1,1}', '{1,1,1,1}');
SELECT * FROM ctx.message_windows(:'c', '{m-4,sys}', '{1}', '{1,1}');
\echo :SQLSTATE
SELECT * FROM ctx.message_windows(:'c', '{m-4}', '{NULL}', '{1}');
\echo :SQLSTATE
SELECT * FROM ctx.message_windows(:'c', '{m-4}', '{-1}', '{1}');
\echo :SQLSTATE
SELECT * FROM ctx.message_windows(:'c', '{m-4}', '{1}', '{1}', 'tokens');
\echo :SQLSTATE

-- Pages of messages by the caller's time or by seq, either way, with a created_at range (the
-- framework's listMessages), through an index.
SELECT ctx.create_context('timed') AS tm \gset
SELECT count(*) FROM ctx.append_many(:'tm', '[
  {"role": "user", "content": "third by time", "message_id": "t3", "created_at": "2026-01-03T00:00:00Z"},
  {"role": "user", "content": "first by time", "message_id": "t1", "created_at": "2026-01-01T00:00:00Z"},
  {"role": "user", "content": "second by time", "message_id": "t2", "created_at": "2026-01-02T00:00:00Z"},
  {"role": "user", "content": "fourth by time", "message_id": "t4", "created_at": "2026-01-04T00:00:00Z"}]');
SELECT ctx.delete_messages(:'tm', '{t4}') AS deleted;
SELECT seq, message_id FROM ctx.list_messages(:'tm');
SELECT seq, message_id FROM ctx.list_messages(:'tm', order_by => 'created_at');
SELECT seq, message_id FROM ctx.list_messages(:'tm', order_by => 'created_at', descending => true, max_rows => 2);
SELECT seq, message_id FROM ctx.list_messages(:'tm', order_by => 'created_at', max_rows => 2, skip => 2);
SELECT seq, message_id FROM ctx.list_messages(:'tm', created_from => '2026-01-02T00:00:00Z', created_to => '2026-01-03T00:00:00Z');
SELECT ctx.fork(:'tm') AS tmf \gset
SELECT ctx.update_message(:'tmf', 't1', 'first, edited in the fork') AS revision;
SELECT ctx.append(:'tmf', 'user', 'zeroth by time', message_id => 't0', created_at => '2025-12-31T00:00:00Z');
SELECT seq, message_id, content FROM ctx.list_messages(:'tmf', order_by => 'created_at');
-- ctx.count_messages counts what ctx.list_messages lists, without the content: equal to the
-- listed rows in the parent, the fork (its own rows override inherited ones), a range, and
-- under a retention policy that hides the oldest
SELECT c.id = :'tm' AS parent, r.from_, r.to_,
       ctx.count_messages(c.id, r.from_, r.to_) AS counted,
       (SELECT count(*) FROM ctx.list_messages(c.id, r.from_, r.to_, max_rows => 1000)) AS listed
  FROM (VALUES (:'tm'::uuid), (:'tmf'::uuid)) c(id),
       (VALUES (NULL::timestamptz, NULL::timestamptz), ('2026-01-02T00:00:00Z', NULL), (NULL, '2026-01-01T00:00:00Z'),
               ('2026-01-01T00:00:00Z', '2026-01-02T00:00:00Z')) r(from_, to_)
 ORDER BY 1 DESC, 2 NULLS FIRST, 3 NULLS FIRST;
SELECT ctx.set_retention(:'tmf', max_messages => 2);
SELECT ctx.count_messages(:'tmf') AS counted, (SELECT count(*) FROM ctx.list_messages(:'tmf')) AS listed;
-- ... and under an age bound, which hides rows by when they were written (older than two
-- seconds here: the fork's rows so far, not the three appended in this transaction, one then
-- deleted)
SELECT pg_sleep(3);
BEGIN;
SELECT count(*) FROM ctx.append_many(:'tmf', '[{"role": "user", "content": "new 1", "message_id": "n1"}, {"role": "user", "content": "new 2", "message_id": "n2"}, {"role": "user", "content": "new 3", "message_id": "n3"}]') AS appended;
SELECT ctx.delete_messages(:'tmf', '{n2}') AS deleted;
SELECT ctx.set_retention(:'tmf', max_age => '2 seconds');
SELECT ctx.count_messages(:'tmf') AS counted, (SELECT count(*) FROM ctx.list_messages(:'tmf')) AS listed;
COMMIT;
SELECT ctx.set_retention(:'tmf');
-- A context without ancestors or age bound counts straight from its indexes
-- (ctxstore.direct_reads, on by default): the same numbers as through SQL ("direct / SQL"),
-- with a delete's old row version left behind (a new version: the old entries stay until a
-- vacuum), after a vacuum (all-visible pages, read from the visibility map), with rows this
-- transaction wrote and ones a savepoint rolled back (a transaction that has written reads
-- through SQL, as its SQL reads take a new snapshot per statement), and under a count bound
CREATE FUNCTION pg_temp.both_counts(c uuid, f timestamptz DEFAULT NULL, t timestamptz DEFAULT NULL) RETURNS text
LANGUAGE plpgsql AS $$
DECLARE direct bigint; plain bigint;
BEGIN
    PERFORM set_config('ctxstore.direct_reads', 'on', true);
    direct := ctx.count_messages(c, f, t);
    PERFORM set_config('ctxstore.direct_reads', 'off', true);
    plain := ctx.count_messages(c, f, t);
    PERFORM set_config('ctxstore.direct_reads', 'on', true);
    RETURN direct || ' / ' || plain;
END $$;
SELECT ctx.create_context('counted') AS cn \gset
SELECT count(*) FROM ctx.save_messages(:'cn', (SELECT jsonb_agg(jsonb_build_object('message_id', 'c' || i,
                                                                  'role', CASE WHEN i % 10 = 0 THEN 'system' ELSE 'user' END,
                                                                  'content', 'counted ' || i,
                                                                  'created_at', '2026-01-01T00:00:00Z'::timestamptz + i * interval '1 hour'))
                                                 FROM generate_series(1, 300) i));
SELECT ctx.delete_messages(:'cn', ARRAY(SELECT 'c' || i FROM generate_series(1, 300, 7) i)) AS deleted;
SELECT ctx.update_message(:'cn', 'c2', 'counted 2, edited') AS revision;
CREATE TEMPORARY TABLE count_ranges (f timestamptz, t timestamptz);
INSERT INTO count_ranges VALUES (NULL, NULL), ('2026-01-03T00:00:00Z', NULL), (NULL, '2026-01-05T00:00:00Z'),
                                ('2026-01-02T00:00:00Z', '2026-01-04T00:00:00Z'), ('2027-01-01T00:00:00Z', NULL);
SELECT f, t, pg_temp.both_counts(:'cn', f, t) AS before_vacuum FROM count_ranges ORDER BY 1 NULLS FIRST, 2 NULLS FIRST;
VACUUM ctx.messages;
SELECT f, t, pg_temp.both_counts(:'cn', f, t) AS after_vacuum FROM count_ranges ORDER BY 1 NULLS FIRST, 2 NULLS FIRST;
BEGIN;
SELECT count(*) FROM ctx.append_many(:'cn', '[{"role": "user", "content": "new", "message_id": "new-1"},
                                              {"role": "user", "content": "new", "message_id": "new-2"},
                                              {"role": "user", "content": "new", "message_id": "new-3"}]') AS appended;
SELECT ctx.delete_messages(:'cn', '{new-1}') AS deleted;
SELECT pg_temp.both_counts(:'cn') AS in_the_transaction;
SAVEPOINT s;
SELECT count(*) FROM ctx.append_many(:'cn', '[{"role": "user", "content": "gone", "message_id": "gone-1"},
                                              {"role": "user", "content": "gone", "message_id": "gone-2"}]') AS appended;
SELECT pg_temp.both_counts(:'cn') AS before_the_rollback;
ROLLBACK TO SAVEPOINT s;
SELECT pg_temp.both_counts(:'cn') AS after_the_rollback;
COMMIT;
SELECT ctx.set_retention(:'cn', max_messages => 100);
SELECT f, t, pg_temp.both_counts(:'cn', f, t) AS newest_100 FROM count_ranges ORDER BY 1 NULLS FIRST, 2 NULLS FIRST;
SELECT ctx.count_messages(:'cn') AS counted, (SELECT count(*) FROM ctx.list_messages(:'cn', max_rows => 1000)) AS listed;
-- ... and pages and windows too: the rows of ctx.list_messages (both orders, either direction,
-- skipped into, over a time range), of ctx.message_windows by time around every live id and of
-- ctx.token_window and ctx.build_context (its system messages apart: 200 tokens more) for budgets from none to
-- all, whole, compared with direct reads on and off; under a count bound, with messages archived
-- by compaction (lz4 in place), under an age bound, and in an encrypted context
CREATE FUNCTION pg_temp.both_reads(c uuid) RETURNS TABLE (reads bigint, rows_read bigint, differing bigint)
LANGUAGE plpgsql AS $$
DECLARE o record; direct text[]; plain text[];
BEGIN
    reads := 0; rows_read := 0; differing := 0;
    FOR o IN SELECT * FROM (VALUES ('seq'), ('created_at')) a(order_by), (VALUES (false), (true)) b(descending),
                           (VALUES (0), (3)) s(skip),
                           (VALUES (NULL::timestamptz, NULL::timestamptz), ('2026-01-09T00:00:00Z', '2026-01-12T00:00:00Z')) r(f, t) LOOP
        PERFORM set_config('ctxstore.direct_reads', 'on', true);
        direct := ARRAY(SELECT l::text FROM ctx.list_messages(c, o.f, o.t, o.order_by, o.descending, 7, o.skip) l);
        PERFORM set_config('ctxstore.direct_reads', 'off', true);
        plain := ARRAY(SELECT l::text FROM ctx.list_messages(c, o.f, o.t, o.order_by, o.descending, 7, o.skip) l);
        reads := reads + 1; rows_read := rows_read + cardinality(direct);
        differing := differing + (direct IS DISTINCT FROM plain)::int;
    END LOOP;
    FOR o IN SELECT message_id FROM ctx.list_messages(c, max_rows => 1000) LOOP
        PERFORM set_config('ctxstore.direct_reads', 'on', true);
        direct := ARRAY(SELECT w::text FROM ctx.message_windows(c, ARRAY[o.message_id], '{2}', '{2}', 'created_at') w);
        PERFORM set_config('ctxstore.direct_reads', 'off', true);
        plain := ARRAY(SELECT w::text FROM ctx.message_windows(c, ARRAY[o.message_id], '{2}', '{2}', 'created_at') w);
        reads := reads + 1; rows_read := rows_read + cardinality(direct);
        differing := differing + (direct IS DISTINCT FROM plain)::int;
    END LOOP;
    FOR o IN SELECT * FROM unnest('{0,3,40,400,100000}'::int[]) AS b(budget) LOOP
        PERFORM set_config('ctxstore.direct_reads', 'on', true);
        direct := ARRAY(SELECT w::text FROM ctx.token_window(c, o.budget) w);
        PERFORM set_config('ctxstore.direct_reads', 'off', true);
        plain := ARRAY(SELECT w::text FROM ctx.token_window(c, o.budget) w);
        reads := reads + 1; rows_read := rows_read + cardinality(direct);
        differing := differing + (direct IS DISTINCT FROM plain)::int;
        PERFORM set_config('ctxstore.direct_reads', 'on', true);
        direct := ARRAY(SELECT b::text FROM ctx.build_context(c, o.budget + 200) b);
        PERFORM set_config('ctxstore.direct_reads', 'off', true);
        plain := ARRAY(SELECT b::text FROM ctx.build_context(c, o.budget + 200) b);
        reads := reads + 1; rows_read := rows_read + cardinality(direct);
        differing := differing + (direct IS DISTINCT FROM plain)::int;
    END LOOP;
    PERFORM set_config('ctxstore.direct_reads', 'on', true);
    RETURN NEXT;
END $$;
SELECT 'newest 100' AS bound, * FROM pg_temp.both_reads(:'cn');
SELECT ctx.set_retention(:'cn');
SELECT ctx.compact(:'cn', 'the first two hundred', keep_last => 100) IS NOT NULL AS compacted;
SELECT count(*) FILTER (WHERE content_lz4 IS NOT NULL) > 0 AS archived FROM ctx.messages WHERE context_id = :'cn';
SELECT 'compacted' AS bound, * FROM pg_temp.both_reads(:'cn');
UPDATE ctx.messages SET written_at = now() - interval '2 days' WHERE context_id = :'cn' AND seq <= 150;
SELECT ctx.set_retention(:'cn', max_age => '1 day');
SELECT 'written in the last day' AS bound, * FROM pg_temp.both_reads(:'cn');
SELECT ctx.delete_context(:'cn');
SET ctxstore.master_key = 'k1:000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f';
SELECT ctx.create_context('sealed pages', encrypted => true) AS sp \gset
SELECT count(*) FROM ctx.save_messages(:'sp', (SELECT jsonb_agg(jsonb_build_object('message_id', 's' || i, 'role', 'user',
                                                                  'content', 'sealed ' || i, 'metadata', jsonb_build_object('i', i),
                                                                  'created_at', '2026-01-01T00:00:00Z'::timestamptz + i * interval '4 hours'))
                                                 FROM generate_series(1, 80) i));
SELECT ctx.delete_messages(:'sp', '{s5,s50}') AS deleted;
SELECT ctx.update_message(:'sp', 's6', 'sealed 6, edited') AS revision;
SELECT 'encrypted' AS bound, * FROM pg_temp.both_reads(:'sp');
SELECT ctx.compact(:'sp', 'the first sixty, sealed', keep_last => 20) IS NOT NULL AS compacted;
SELECT 'encrypted, compacted' AS bound, * FROM pg_temp.both_reads(:'sp');
SELECT ctx.delete_context(:'sp');
RESET ctxstore.master_key;
SELECT ctx.count_messages(NULL);
\echo :SQLSTATE
-- windows by the caller's time: (created_at, seq) order, ties at a target's created_at on
-- either side of it by seq; deleted and unknown ids give none
SELECT seq, message_id FROM ctx.message_windows(:'tm', '{t3,t1,nope,t4}', '{1,0,5,1}', '{0,1,5,1}', 'created_at');
SELECT ctx.create_context('ties') AS ti \gset
SELECT count(*) FROM ctx.append_many(:'ti', '[
  {"role": "user", "content": "a", "message_id": "a", "created_at": "2026-01-01T00:00:00Z"},
  {"role": "user", "content": "b", "message_id": "b", "created_at": "2026-01-02T00:00:00Z"},
  {"role": "user", "content": "c", "message_id": "c", "created_at": "2026-01-02T00:00:00Z"},
  {"role": "user", "content": "d", "message_id": "d", "created_at": "2026-01-02T00:00:00Z"},
  {"role": "user", "content": "e", "message_id": "e", "created_at": "2026-01-03T00:00:00Z"}]');
SELECT seq, message_id FROM ctx.message_windows(:'ti', '{c}', '{1}', '{1}', 'created_at');
SELECT seq, message_id FROM ctx.message_windows(:'ti', '{b,d}', '{1,0}', '{0,1}', 'created_at');
SELECT seq, message_id FROM ctx.message_windows(:'tmf', '{t1,t0}', '{1,0}', '{1,0}', 'created_at');
-- ... each window is the slice of the (created_at, seq) order around its id: checked against
-- row_number over ctx.list_messages for every live id and size 0-3, ties and a fork among them
CREATE FUNCTION pg_temp.ranked(c uuid) RETURNS TABLE (seq bigint, message_id text, r bigint) LANGUAGE sql AS $$
  SELECT seq, message_id, row_number() OVER (ORDER BY created_at, seq) FROM ctx.list_messages(c, max_rows => 1000)
$$;
SELECT c.name, count(*) AS windows_checked,
       count(*) FILTER (WHERE ARRAY(SELECT seq FROM ctx.message_windows(c.id, ARRAY[t.message_id], ARRAY[b], ARRAY[a], 'created_at'))
                              IS DISTINCT FROM ARRAY(SELECT x.seq FROM pg_temp.ranked(c.id) x
                                                      WHERE x.r BETWEEN t.r - b AND t.r + a ORDER BY x.r)) AS differing
  FROM (VALUES ('fork', :'tmf'::uuid), ('ties', :'ti'::uuid)) c(name, id)
 CROSS JOIN LATERAL pg_temp.ranked(c.id) t, generate_series(0, 3) b, generate_series(0, 3) a
 GROUP BY c.name ORDER BY c.name;
SELECT ctx.count_messages('00000000-0000-0000-0000-000000000000');
\echo :SQLSTATE
SELECT * FROM ctx.list_messages(:'tm', order_by => 'tokens');
\echo :SQLSTATE
SELECT * FROM ctx.list_messages(:'tm', max_rows => -1);
\echo :SQLSTATE

-- 6. Forks: a fork's view is fixed at the fork; edits and deletes on either side stay apart.
SELECT ctx.create_context('parent') AS p \gset
SELECT count(*) FROM ctx.append_many(:'p', '[{"role": "user", "content": "p1", "message_id": "a"},
  {"role": "assistant", "content": "p2", "message_id": "b"}, {"role": "user", "content": "p3", "message_id": "c"}]');
SELECT ctx.update_message(:'p', 'a', 'p1, edited before the fork') AS revision;
SELECT ctx.fork(:'p') AS f \gset
-- edit and delete after the fork, in the parent: the fork still sees what it saw
SELECT ctx.update_message(:'p', 'b', 'p2, edited after the fork') AS revision;
SELECT ctx.delete_messages(:'p', '{c}') AS deleted;
SELECT ctx.fork(:'f') AS g \gset
-- ... and in the fork: the parent does not see it; the fork of the fork (taken before) does not either
SELECT ctx.update_message(:'f', 'a', 'p1, edited in the fork') AS revision;
SELECT ctx.delete_messages(:'f', '{b}') AS deleted;
SELECT ctx.append(:'f', 'assistant', 'f4', message_id => 'd');
-- the fork's history of a message it edited keeps the revisions it inherited
SELECT seq, message_id, revision, content, current FROM ctx.history(:'f') WHERE seq <= 2;
SELECT 'parent' AS view, seq, pg_temp.mid(message_id) AS message_id, revision, content FROM ctx.messages(:'p')
UNION ALL SELECT 'fork', seq, pg_temp.mid(message_id) AS message_id, revision, content FROM ctx.messages(:'f')
UNION ALL SELECT 'fork of fork', seq, pg_temp.mid(message_id) AS message_id, revision, content FROM ctx.messages(:'g')
ORDER BY 1, 2;
-- an id the fork inherits is taken in the fork, live or deleted
SELECT ctx.append(:'f', 'user', 'x', message_id => 'c');
\echo :SQLSTATE
SELECT ctx.append(:'g', 'user', 'x', message_id => 'b');
\echo :SQLSTATE
-- the fork may write its own message with an id its parent uses after the fork point
SELECT ctx.append(:'p', 'user', 'p4', message_id => 'e');
SELECT ctx.append(:'f', 'user', 'f5', message_id => 'e') AS own_e;
-- reads by id and around an id cross the fork's segments
SELECT seq, pg_temp.mid(message_id) AS message_id, content FROM ctx.get_messages(:'g', '{a,b,c}');
SELECT seq, pg_temp.mid(message_id) AS message_id, content FROM ctx.messages_around(:'f', 'a', after => 5);
-- a purge belongs to the message's owner (55000 where it is inherited); there it removes the
-- message from its forks too
SELECT ctx.fork(:'p') AS h \gset
SELECT pg_temp.try(format('SELECT ctx.purge_messages(%L, ''{b}'')', :'h')) AS purge_in_fork;
-- a fork's own revision of an inherited message purges to a bare tombstone: the parent's
-- message does not show through
SELECT ctx.purge_messages(:'f', '{a}') AS purged;
SELECT seq, pg_temp.mid(message_id) AS message_id, revision, content, deleted, current FROM ctx.history(:'f') WHERE seq = 1;
SELECT seq, pg_temp.mid(message_id) AS message_id, content FROM ctx.messages(:'f') WHERE seq = 1;
SELECT seq, pg_temp.mid(message_id) AS message_id, content FROM ctx.messages(:'p') WHERE seq = 1;
SELECT ctx.purge_messages(:'p', '{c}') AS purged;
-- a purged message is gone, its id with it: editing it is 42704
SELECT ctx.update_message(:'p', 'c', 'x');
\echo :SQLSTATE
SELECT 'fork' AS view, seq, pg_temp.mid(message_id) AS message_id, deleted, current FROM ctx.history(:'f') WHERE seq = 3
UNION ALL SELECT 'fork of fork', seq, pg_temp.mid(message_id) AS message_id, deleted, current FROM ctx.history(:'g') WHERE seq = 3;
SELECT count(*) AS rows_left FROM (
    SELECT 1 FROM ctx.messages WHERE message_id = 'c' AND context_id IN (:'p', :'f', :'g')
    UNION ALL SELECT 1 FROM ctx.message_revisions WHERE message_id = 'c' AND context_id IN (:'p', :'f', :'g')) x;
-- the fork of the fork kept its view through all of it, revisions included, except what was purged
SELECT seq, pg_temp.mid(message_id) AS message_id, revision, content, current FROM ctx.history(:'g');

-- 7. Compaction, then an edit of a covered message: windows read the summary as before; the
-- history has the new revision.
SELECT ctx.create_context('compacted') AS k \gset
SELECT count(*) FROM ctx.append_many(:'k', '[{"role": "user", "content": "k1", "message_id": "k1"},
  {"role": "assistant", "content": "k2", "message_id": "k2"}, {"role": "user", "content": "k3", "message_id": "k3"}]');
SELECT ctx.compact(:'k', 'the user said k1 and k2', keep_last => 1);
SELECT ctx.update_message(:'k', 'k1', 'k1, edited after compaction') AS revision;
SELECT seq, role, content FROM ctx.window(:'k', 10);
SELECT seq, pg_temp.mid(message_id) AS message_id, revision, content, archived, current FROM ctx.history(:'k') WHERE role <> 'summary';

-- 8. Write processors run on edits as on appends (redaction here), and on saves.
SELECT ctx.create_context('redacted', processors => '{"redact_pii": ["email"]}') AS r \gset
SELECT ctx.append(:'r', 'user', 'reach me later', message_id => 'r1');
SELECT ctx.update_message(:'r', 'r1', 'reach me at jane@example.com') AS revision;
SELECT * FROM ctx.save_messages(:'r', '[{"message_id": "r2", "role": "user", "content": "or john@example.com"}]');
SELECT message_id, content, metadata FROM ctx.messages(:'r');

-- 9. Encrypted contexts: each revision sealed, bound to its revision; the history opens them.
SET ctxstore.master_key = 'k1:000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f';
SELECT ctx.create_context('sealed', encrypted => true) AS s \gset
SELECT ctx.append(:'s', 'user', 'secret one', '{"n": 1}', message_id => 's1');
SELECT ctx.update_message(:'s', 's1', 'secret one, edited') AS revision;
SELECT ctx.fork(:'s') AS sf \gset
SELECT ctx.update_message(:'s', 's1', 'secret one, edited after the fork') AS revision;
SELECT ctx.delete_messages(:'s', '{s1}') AS deleted;
SELECT seq, revision, content, metadata, deleted, current FROM ctx.history(:'s');
SELECT seq, revision, content, deleted, current FROM ctx.history(:'sf');
SELECT count(*) AS plaintext_rows FROM (
    SELECT content FROM ctx.messages WHERE context_id IN (:'s', :'sf') AND content IS NOT NULL
    UNION ALL SELECT content FROM ctx.message_revisions WHERE context_id IN (:'s', :'sf') AND content IS NOT NULL) x;

-- 10. Audit: every revision, tombstone and purge leaves its rows.
SELECT table_name, operation, row_key ->> 'seq' AS seq, row_key ->> 'revision' AS revision
  FROM ctx.audit_log
 WHERE row_key ->> 'context_id' = :'s' AND table_name IN ('messages', 'message_revisions')
 ORDER BY id;
SELECT table_name, operation, count(*)
  FROM ctx.audit_log
 WHERE row_key ->> 'context_id' IN (:'p', :'f', :'g') AND table_name IN ('messages', 'message_revisions')
   AND operation = 'DELETE'
 GROUP BY 1, 2 ORDER BY 1, 2;

-- 11. Retention takes a message with its revisions; the stats count tombstones and revisions.
SELECT ctx.create_context('kept short') AS t \gset
SELECT count(*) FROM ctx.append_many(:'t', '[{"role": "user", "content": "t1", "message_id": "t1"},
  {"role": "user", "content": "t2", "message_id": "t2"}, {"role": "user", "content": "t3", "message_id": "t3"}]');
SELECT ctx.update_message(:'t', 't1', 't1, edited') AS revision;
SELECT ctx.delete_messages(:'t', '{t3}') AS deleted;
SELECT messages, deleted, revisions FROM ctx.context_stats WHERE context_id = :'t';
SELECT ctx.set_retention(:'t', max_messages => 1);
SELECT ctx.sweep(100) AS swept;
SELECT messages, deleted, revisions FROM ctx.context_stats WHERE context_id = :'t';
SELECT count(*) AS revisions_left FROM ctx.message_revisions WHERE context_id = :'t';

-- Retention counts a message's age from when its current revision was written (written_at),
-- not from the caller's created_at: an imported old message is not swept at once, an edit
-- restarts the clock; created_at must be finite.
SELECT ctx.create_context('aged') AS a \gset
SELECT ctx.append(:'a', 'user', 'imported from 2020', message_id => 'old', created_at => '2020-01-01T00:00:00Z');
SELECT ctx.set_retention(:'a', max_age => '1 day');
SELECT message_id, created_at < now() - interval '1 day' AS created_long_ago FROM ctx.messages(:'a');
SELECT ctx.append(:'a', 'user', 'never expires', created_at => 'infinity');
\echo :SQLSTATE
SELECT * FROM ctx.append_many(:'a', '[{"role": "user", "content": "x", "created_at": "2026-02-30T00:00:00Z"}]');
\echo :SQLSTATE

-- 12. Another tenant's ids are not there for it (as an application role: row-level security
-- applies; the superuser running this file bypasses it).
SET client_min_messages = warning;
DROP ROLE IF EXISTS revisions_app;
RESET client_min_messages;
CREATE ROLE revisions_app;
SELECT ctx.grant_access('revisions_app');
SET ROLE revisions_app;
SET ctxstore.tenant = 'someone-else';
SELECT fn, pg_temp.try(format(call, :'c')) AS outcome FROM (VALUES
    ('update_message', 'SELECT ctx.update_message(%L, ''m-1'', ''mine now'')'),
    ('delete_messages', 'SELECT ctx.delete_messages(%L, ''{m-1}'')'),
    ('purge_messages', 'SELECT ctx.purge_messages(%L, ''{m-1}'')'),
    ('save_messages', 'SELECT ctx.save_messages(%L, ''[{"message_id": "m-1", "role": "user", "content": "x"}]'')'),
    ('get_messages', 'SELECT ctx.get_messages(%L, ''{m-1}'')'),
    ('messages_around', 'SELECT ctx.messages_around(%L, ''m-1'')'),
    ('history', 'SELECT ctx.history(%L)')) AS t(fn, call);
-- nor can it write a row under the other tenant's context directly
INSERT INTO ctx.messages (context_id, seq, role, content, tokens, message_id) VALUES (:'c', 2, 'user', 'x', 1, 'm-1');
\echo :SQLSTATE
RESET ROLE;
SET ctxstore.tenant = 'revisions';
SELECT revision, content FROM ctx.get_messages(:'c', '{m-1}') AS untouched;

-- A backend keeps ctx.message's type OID until a type changes: the extension dropped and made
-- again in this transaction has a new one, which the next read finds (and, rolled back, the
-- old one again)
BEGIN;
SELECT count(*) AS read_before FROM ctx.get_messages(:'c', '{m-1}');
SAVEPOINT remade;
SET client_min_messages = warning;
DROP EXTENSION ctxstore CASCADE;
CREATE EXTENSION ctxstore;
RESET client_min_messages;
SELECT count(*) AS read_after_remake FROM ctx.list_messages(ctx.create_context('remade'));
ROLLBACK TO remade;
SELECT count(*) AS read_after_rollback FROM ctx.get_messages(:'c', '{m-1}');
ROLLBACK;
