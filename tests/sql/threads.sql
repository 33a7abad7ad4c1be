-- Threads by id (ctx.save_thread, ctx.get_thread, ctx.list_threads) and messages by id alone
-- (ctx.locate_messages): what Mastra's storage contract addresses.
SET client_min_messages = warning;
SET ctxstore.tenant = 'threads-a';

-- created when missing, with the caller's timestamps; NULL keeps a field
SELECT ctx.save_thread('t-1', 'First', 'user-1', '{"topic": "billing", "n": 1}',
                       '2026-01-01 00:00:00+00', '2026-01-02 00:00:00+00') IS NOT NULL AS created;
SELECT thread_id, title, resource, metadata, created_at, updated_at FROM ctx.get_thread('t-1');
SELECT ctx.save_thread('t-1', title => 'First, renamed', updated_at => '2026-01-03 00:00:00+00')
       = ctx.thread_context('t-1', create_missing => false) AS same_context;
SELECT title, resource, metadata, created_at, updated_at FROM ctx.get_thread('t-1');
-- metadata replaces the whole (no merge); updated_at defaults to now()
SELECT ctx.save_thread('t-1', metadata => '{"topic": "sales"}') IS NOT NULL AS saved;
SELECT metadata, updated_at > '2026-01-03 00:00:00+00' AS updated_now FROM ctx.get_thread('t-1');
SELECT count(*) AS missing FROM ctx.get_thread('no-such-thread');

-- a list: by resource, metadata containment, either order, paged, with the total before paging
SELECT ctx.save_thread('t-' || i, 'thread ' || i, CASE WHEN i % 2 = 0 THEN 'user-2' ELSE 'user-3' END,
                       jsonb_build_object('i', i, 'tags', jsonb_build_object('even', i % 2 = 0)),
                       '2026-02-01 00:00:00+00'::timestamptz + i * interval '1 hour',
                       '2026-03-01 00:00:00+00'::timestamptz - i * interval '1 hour') IS NOT NULL AS saved
  FROM generate_series(2, 7) i;
SELECT thread_id, total_count FROM ctx.list_threads('user-2');
SELECT thread_id, total_count FROM ctx.list_threads(order_by => 'created_at', descending => false, max_rows => 3);
SELECT thread_id, total_count FROM ctx.list_threads(order_by => 'created_at', descending => false, max_rows => 3, skip => 3);
SELECT thread_id FROM ctx.list_threads(order_by => 'updated_at', descending => true, max_rows => 2);
SELECT thread_id, total_count FROM ctx.list_threads(metadata_contains => '{"tags": {"even": false}}');
SELECT thread_id, total_count FROM ctx.list_threads('user-3', '{"i": 5}');
SELECT count(*) AS past_the_end FROM ctx.list_threads(skip => 100);
-- equal timestamps: ties by thread id, in the list's direction
SELECT ctx.save_thread(id, created_at => '2026-04-01 00:00:00+00') IS NOT NULL FROM unnest('{tie-b,tie-a,tie-c}'::text[]) id;
SELECT thread_id FROM ctx.list_threads(metadata_contains => '{}', order_by => 'created_at', max_rows => 3);
SELECT thread_id FROM ctx.list_threads(order_by => 'created_at', descending => false, max_rows => 3, skip => 7);
-- a context without a thread is not listed
SELECT ctx.create_context('plain', resource => 'user-2') IS NOT NULL AS plain_context;
SELECT count(*) AS threads_of_user_2 FROM ctx.list_threads('user-2');

-- bad input
SELECT ctx.save_thread('t-1', metadata => '[1]');
SELECT ctx.save_thread('t-1', resource => '');
SELECT ctx.save_thread('t-1', created_at => 'infinity');
SELECT ctx.save_thread('');
SELECT ctx.save_thread(NULL);
SELECT * FROM ctx.list_threads(order_by => 'title');
SELECT * FROM ctx.list_threads(max_rows => -1);
SELECT * FROM ctx.list_threads(descending => NULL);
SELECT * FROM ctx.list_threads(metadata_contains => '"x"');

-- frameworks keep apart: a thread id is one framework's ('' for the id-mapping adapters)
SELECT ctx.save_thread('mastra-1', 'Mastra thread', 'user-9', framework => 'mastra') IS NOT NULL AS saved;
SELECT thread_id, title FROM ctx.get_thread('mastra-1', 'mastra');
SELECT count(*) AS other_framework FROM ctx.get_thread('t-1', 'mastra');
SELECT count(*) AS any_framework FROM ctx.get_thread('mastra-1');
SELECT thread_id, total_count FROM ctx.list_threads(framework => 'mastra');
SELECT ctx.save_thread('t-1', 'taken', framework => 'mastra');
SELECT ctx.save_thread('mastra-1', 'taken');
SELECT ctx.save_thread('mastra-1', framework => NULL);
-- create_missing => false never creates
SELECT ctx.save_thread('never-made', 'x', create_missing => false);
SELECT count(*) AS still_missing FROM ctx.get_thread('never-made');
SELECT ctx.save_thread('mastra-1', 'Mastra thread, renamed', framework => 'mastra', create_missing => false) IS NOT NULL AS updated;
SELECT title FROM ctx.get_thread('mastra-1');

-- messages by id alone: the context (and thread) that holds each live one
SELECT ctx.thread_context('t-2') AS t2 \gset
SELECT ctx.thread_context('t-3') AS t3 \gset
SELECT count(*) FROM ctx.save_messages(:'t2', '[{"message_id": "m-1", "role": "user", "content": "one"},
                                                {"message_id": "m-2", "role": "assistant", "content": "two"}]');
SELECT count(*) FROM ctx.save_messages(:'t3', '[{"message_id": "m-3", "role": "user", "content": "three"}]');
SELECT ctx.create_context('no thread') AS plain \gset
SELECT ctx.append(:'plain', 'user', 'four', message_id => 'm-4');
-- (with the context's resource: the thread's, which the Mastra adapter's reads return)
SELECT message_id, context_id = :'t2' AS in_t2, context_id = :'t3' AS in_t3, context_id = :'plain' AS in_plain, thread_id,
       resource IS NOT DISTINCT FROM (SELECT resource FROM ctx.get_thread(thread_id)) AS threads_resource, resource
  FROM ctx.locate_messages('{m-1,m-2,m-3,m-4,m-unknown}');
-- a deleted message is not located; a fork's inherited message is located in its owner only
SELECT ctx.delete_messages(:'t2', '{m-2}');
SELECT ctx.fork(:'t3') AS f \gset
SELECT message_id, context_id = :'t3' AS in_owner FROM ctx.locate_messages('{m-2,m-3}');
-- the same id in two contexts: both are located
SELECT ctx.append(:'f', 'user', 'again', message_id => 'm-1') > 0 AS appended;
SELECT message_id, context_id = :'t2' AS in_t2, context_id = :'f' AS in_fork, thread_id FROM ctx.locate_messages('{m-1}')
 ORDER BY in_t2 DESC;
-- of one framework's threads only
SELECT ctx.save_messages(ctx.thread_context('mastra-1'), '[{"message_id": "m-1", "role": "user", "content": "mastra"}]') IS NOT NULL;
SELECT message_id, thread_id, resource FROM ctx.locate_messages('{m-1}', 'mastra');
SELECT count(*) AS of_id_mappers FROM ctx.locate_messages('{m-1}', '');
SELECT * FROM ctx.locate_messages(NULL);
SELECT * FROM ctx.locate_messages('{m-1,NULL}');
SELECT count(*) AS none FROM ctx.locate_messages('{}');

-- a thread's page by its id (ctx.thread_page): ctx.list_messages's rows of the thread's context,
-- with the context, the resource and (with_total) ctx.count_messages's total
SELECT count(*) FROM ctx.save_messages(:'t2', '[{"message_id": "m-5", "role": "user", "content": "five", "metadata": {"k": 5}},
                                                {"message_id": "m-6", "role": "assistant", "content": "six"}]');
SELECT context_id = :'t2' AS of_t2, resource, total, seq, message_id, revision, role, content, metadata, tokens,
       written_at IS NOT NULL AS written, archived, trace_id IS NULL AS untraced
  FROM ctx.thread_page('t-2', order_by => 'created_at', descending => true, with_total => true);
-- the same rows, columns and order as ctx.list_messages, both orders, either direction, paged
SELECT o.order_by, o.descending, p.skip, count(*) AS rows,
       bool_and(t IS NOT DISTINCT FROM l) AS same
  FROM (VALUES ('seq', false), ('seq', true), ('created_at', false), ('created_at', true)) AS o(order_by, descending),
       (VALUES (0), (1), (2)) AS p(skip),
       LATERAL (SELECT row_number() OVER () AS n, t.seq, t.message_id, t.revision, t.role, t.content, t.metadata,
                       t.tokens, t.created_at, t.written_at, t.archived, t.trace_id
                  FROM ctx.thread_page('t-2', NULL, NULL, NULL, o.order_by, o.descending, 2, p.skip) t) t
  FULL JOIN LATERAL (SELECT row_number() OVER () AS n, l.seq, l.message_id, l.revision, l.role, l.content, l.metadata,
                            l.tokens, l.created_at, l.written_at, l.archived, l.trace_id
                       FROM ctx.list_messages(:'t2', NULL, NULL, o.order_by, o.descending, 2, p.skip) l) l ON l.n = t.n
 GROUP BY 1, 2, 3 ORDER BY 1, 2, 3;
-- the total is ctx.count_messages's, over the same time range; without with_total it is NULL
SELECT count(*) AS rows, min(total) = ctx.count_messages(:'t2', now() - interval '1 hour', now() + interval '1 hour') AS counted
  FROM ctx.thread_page('t-2', created_from => now() - interval '1 hour', created_to => now() + interval '1 hour',
                       max_rows => 1, with_total => true);
SELECT count(*) AS rows, count(total) AS totals FROM ctx.thread_page('t-2');
-- an empty page is one row: the thread's context, resource and total, no message
SELECT context_id = :'t2' AS of_t2, resource, total, seq, message_id, content
  FROM ctx.thread_page('t-2', skip => 100, with_total => true);
-- no row for a missing thread, nor for one another framework holds
SELECT count(*) AS missing FROM ctx.thread_page('no-such-thread');
SELECT count(*) AS other_framework FROM ctx.thread_page('t-2', 'mastra');
SELECT resource, message_id, content FROM ctx.thread_page('mastra-1', 'mastra');
-- a thread whose context is a fork: its inherited messages too, as ctx.list_messages lists them
INSERT INTO ctx.threads (thread_id, context_id) VALUES ('t-fork', :'f');
SELECT message_id, content, context_id = :'f' AS of_fork FROM ctx.thread_page('t-fork') ORDER BY seq;
SELECT count(*) AS same FROM ctx.thread_page('t-fork') t JOIN ctx.list_messages(:'f') l USING (seq, message_id, content);
-- read through the primary keys (ctxstore.direct_reads, on by default) or through SQL: the same
-- rows, for each thread above, a framework that holds it or not, and a missing one
CREATE FUNCTION pg_temp.both_pages(t text, f text) RETURNS boolean LANGUAGE plpgsql AS $$
DECLARE direct text[]; plain text[];
BEGIN
    PERFORM set_config('ctxstore.direct_reads', 'on', true);
    direct := ARRAY(SELECT p::text FROM ctx.thread_page(t, f, order_by => 'created_at', with_total => true) p);
    PERFORM set_config('ctxstore.direct_reads', 'off', true);
    plain := ARRAY(SELECT p::text FROM ctx.thread_page(t, f, order_by => 'created_at', with_total => true) p);
    PERFORM set_config('ctxstore.direct_reads', 'on', true);
    RETURN direct IS NOT DISTINCT FROM plain;
END $$;
SELECT t, f, pg_temp.both_pages(t, f) AS same
  FROM unnest('{t-1,t-2,t-fork,mastra-1,no-such-thread}'::text[]) AS t, unnest(ARRAY[NULL, '', 'mastra']) AS f
 ORDER BY 1, 2 NULLS FIRST;
-- bad arguments
SELECT * FROM ctx.thread_page(NULL);
\echo :SQLSTATE
SELECT * FROM ctx.thread_page('t-2', order_by => 'title');
\echo :SQLSTATE
SELECT * FROM ctx.thread_page('t-2', max_rows => -1);
\echo :SQLSTATE
SELECT * FROM ctx.thread_page('t-2', skip => NULL);
\echo :SQLSTATE
SELECT * FROM ctx.thread_page('t-2', with_total => NULL);
\echo :SQLSTATE

-- tenancy: another tenant's application role sees none of it
CREATE ROLE threads_app;
SELECT ctx.grant_access('threads_app');
SET ROLE threads_app;
SET ctxstore.tenant = 'threads-b';
SELECT count(*) AS listed FROM ctx.list_threads();
SELECT count(*) AS got FROM ctx.get_thread('t-1');
SELECT count(*) AS located FROM ctx.locate_messages('{m-1,m-3}');
SELECT count(*) AS paged FROM ctx.thread_page('t-2');
-- its own thread of the same id is its own
SELECT ctx.save_thread('t-1', 'B''s own', 'user-1') IS NOT NULL AS saved;
SELECT title FROM ctx.get_thread('t-1');
SELECT resource, total, content FROM ctx.thread_page('t-1', with_total => true);
RESET ROLE;
SET ctxstore.tenant = 'threads-a';
SELECT title FROM ctx.get_thread('t-1');
-- row-level security as SQL applies it: reads straight from the indexes go through SQL when the
-- policies are not exactly ctxstore's (an administrator's added policy applies), and with
-- row_security off a role the policies apply to is refused, as SQL refuses it
SET ROLE threads_app;
SET ctxstore.tenant = 'threads-b';
SELECT ctx.thread_context('rls') AS rls \gset
SELECT ctx.append(:'rls', 'system', 'hidden by the policy') > 0 AS system, ctx.append(:'rls', 'user', 'shown') > 0 AS user_;
SELECT count(*) AS listed, ctx.count_messages(:'rls') AS counted, (SELECT count(*) FROM ctx.token_window(:'rls', 1000)) AS windowed
  FROM ctx.list_messages(:'rls');
RESET ROLE;
CREATE POLICY hide_system ON ctx.messages AS RESTRICTIVE FOR SELECT USING (role <> 'system');
SET ROLE threads_app;
SELECT count(*) AS listed, ctx.count_messages(:'rls') AS counted, (SELECT count(*) FROM ctx.token_window(:'rls', 1000)) AS windowed,
       (SELECT string_agg(content, ',') FROM ctx.thread_page('rls')) AS paged
  FROM ctx.list_messages(:'rls');
RESET ROLE;
DROP POLICY hide_system ON ctx.messages;
SET ROLE threads_app;
SET row_security = off;
SELECT count(*) FROM ctx.list_messages(:'rls');
SELECT ctx.count_messages(:'rls');
RESET row_security;
RESET ROLE;
RESET ctxstore.tenant;
DELETE FROM ctx.contexts WHERE tenant IN ('threads-a', 'threads-b');
DROP OWNED BY threads_app;
DROP ROLE threads_app;
