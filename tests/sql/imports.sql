-- The imports from the peers' tables (ctx.import_*), at the SQL level: the source checks, the
-- item builders, idempotency, revisions for repeated ids, all-or-nothing failure and the
-- tenant. (clients/python and clients/typescript populate each table with the peer's own
-- library and compare what the adapters read back with what the peer reads.)
SET client_min_messages = warning;
SET ctxstore.tenant = 'imports-a';

-- a langchain-postgres message table, as PostgresChatMessageHistory.create_tables makes it
CREATE TABLE message_store (id serial PRIMARY KEY, session_id uuid NOT NULL, message jsonb NOT NULL,
                            created_at timestamptz NOT NULL DEFAULT now());
INSERT INTO message_store (session_id, message, created_at) VALUES
  ('00000000-0000-4000-8000-000000000001', '{"type": "system", "data": {"content": "Be brief.", "type": "system"}}', '2026-01-01 10:00:00+00'),
  ('00000000-0000-4000-8000-000000000001', '{"type": "human", "data": {"content": "Hi", "id": "h1", "type": "human", "name": "ada"}}', '2026-01-01 10:00:01+00'),
  ('00000000-0000-4000-8000-000000000001', '{"type": "ai", "data": {"content": [{"type": "text", "text": "Hello"}], "id": "a1", "type": "ai", "tool_calls": []}}', '2026-01-01 10:00:02+00'),
  ('00000000-0000-4000-8000-000000000001', '{"type": "human", "data": {"content": "Hi, again", "id": "h1", "type": "human"}}', '2026-01-01 10:00:03+00'),
  ('00000000-0000-4000-8000-000000000002', '{"type": "chat", "data": {"content": "(note)", "role": "critic", "id": "c1", "type": "chat"}}', '2026-01-01 11:00:00+00'),
  ('00000000-0000-4000-8000-000000000002', '{"type": "tool", "data": {"content": "42", "tool_call_id": "call-1", "id": "t1", "type": "tool"}}', '2026-01-01 11:00:01+00');

-- each row as the LangChain adapter saves it: role, text (list content as JSON), the rest kept
SELECT id, ctx.langchain_chat_item(message, 'message_store', id, created_at) AS item FROM message_store ORDER BY id;

SELECT kind, imported, skipped, applied FROM ctx.import_langchain_chat('message_store', batch_size => 2);
-- a second run imports nothing; the repeated id h1 is one message with two revisions
SELECT kind, imported, skipped FROM ctx.import_langchain_chat('message_store');
SELECT t.thread_id, m.seq, m.message_id, m.revision, m.role, m.content, m.created_at
  FROM ctx.threads t, ctx.messages(t.context_id) m WHERE t.tenant = ctx.current_tenant() ORDER BY t.thread_id, m.seq;
SELECT message_id, revision, current, content FROM ctx.history(ctx.thread_context('00000000-0000-4000-8000-000000000001'))
 WHERE message_id = 'h1' ORDER BY revision;
-- every row the import wrote is in the audit log, as the tenant's
SELECT table_name, operation, count(*) FROM ctx.audit_log
 WHERE tenant = 'imports-a' AND table_name IN ('contexts', 'threads', 'messages', 'message_revisions')
 GROUP BY 1, 2 ORDER BY 1, 2;
-- rows the application adds afterwards come with the next run
INSERT INTO message_store (session_id, message) VALUES
  ('00000000-0000-4000-8000-000000000002', '{"type": "human", "data": {"content": "later", "type": "human"}}');
SELECT kind, imported, skipped FROM ctx.import_langchain_chat('message_store');

-- another tenant imports into its own threads: nothing of the first is read or changed
SET ctxstore.tenant = 'imports-b';
SELECT kind, imported, skipped, applied FROM ctx.import_langchain_chat('message_store', processors => '{"normalize": false}');
SELECT count(*) AS threads, bool_and(c.processors = '{"normalize": false}') AS configured
  FROM ctx.threads t JOIN ctx.contexts c ON c.tenant = t.tenant AND c.id = t.context_id WHERE t.tenant = ctx.current_tenant();
SET ctxstore.tenant = 'imports-a';
SELECT count(*) AS threads, bool_or(c.processors <> '{}') AS any_configured
  FROM ctx.threads t JOIN ctx.contexts c ON c.tenant = t.tenant AND c.id = t.context_id WHERE t.tenant = ctx.current_tenant();
-- a thread id another framework holds is refused, not written into
SET ctxstore.tenant = 'imports-d';
SELECT ctx.save_thread('00000000-0000-4000-8000-000000000002', resource => 'ada', framework => 'mastra') IS NOT NULL AS mastra_thread;
SELECT * FROM ctx.import_langchain_chat('message_store');

-- refusals: another table's shape (42P16, naming the columns), a bad row (22023, nothing kept)
CREATE TABLE not_a_store (id serial, session_id text, message jsonb);
\set VERBOSITY default
SELECT * FROM ctx.import_langchain_chat('not_a_store');
SELECT * FROM ctx.import_langchain_chat('message_store', batch_size => 0);
SET ctxstore.tenant = 'imports-c';
INSERT INTO message_store (session_id, message) VALUES ('00000000-0000-4000-8000-000000000003', '{"type": "human"}');
SELECT * FROM ctx.import_langchain_chat('message_store');
INSERT INTO message_store (session_id, message) VALUES ('00000000-0000-4000-8000-000000000004', '{"type": "robot", "data": {"content": "x"}}');
DELETE FROM message_store WHERE message = '{"type": "human"}';
SELECT * FROM ctx.import_langchain_chat('message_store');
SELECT count(*) AS nothing_imported FROM ctx.threads WHERE tenant = ctx.current_tenant();
-- a view is refused: its expressions would run as the importer
CREATE VIEW message_view AS SELECT * FROM message_store;
SELECT * FROM ctx.import_langchain_chat('message_view');
-- so is a look-alike type: a column of another schema's "jsonb"
CREATE SCHEMA evil;
CREATE DOMAIN evil.jsonb AS pg_catalog.jsonb;
CREATE TABLE evil_store (id serial, session_id uuid, message evil.jsonb, created_at timestamptz);
SELECT * FROM ctx.import_langchain_chat('evil_store');
-- and a time that is no message's
SELECT ctx.import_timestamp('infinity');
\set VERBOSITY terse

-- LangGraph: a schema without the saver's tables, and one at another migration
CREATE SCHEMA lg;
SELECT * FROM ctx.import_langgraph_checkpoints('lg');
CREATE TABLE lg.checkpoint_migrations (v integer PRIMARY KEY);
INSERT INTO lg.checkpoint_migrations SELECT generate_series(0, 4);
SELECT * FROM ctx.import_langgraph_checkpoints('lg');
SELECT * FROM ctx.import_langgraph_store('lg', root => '');

-- the helpers
SELECT ctx.langgraph_field_text('{"profile": {"bio": "from Lyon"}, "tags": ["a", "b"]}', 'profile.bio') AS field,
       ctx.langgraph_field_text('{"tags": ["a", "b"]}', 'tags.1') AS nth,
       ctx.langgraph_field_text('{"a": 1}', '$') AS whole;
SELECT ctx.import_try_jsonb('{"a": 1}') AS json, ctx.import_try_jsonb('plain words') AS not_json,
       ctx.mastra_metadata(NULL) AS none, ctx.mastra_metadata('"{\"plan\": \"gold\"}"') AS parsed,
       ctx.mastra_metadata('{"plan": "free"}') AS object;
SELECT ctx.mastra_message_item('m1', '{"format": 2, "parts": [{"type": "text", "text": "hi"}, {"type": "text", "text": "there"}]}',
                               'user', 'v2', 'ada', '2026-01-01 00:00:00+00') AS format2;
SELECT ctx.mastra_message_item('m2', 'not json', 'tool', 'text', NULL, '2026-01-01 00:00:00+00') AS plain_string;
SELECT ctx.import_timestamp('2026-01-01 12:00:00.5+02') AS utc;
SELECT ctx.import_type_name('timestamptz'::regtype) AS builtin, ctx.import_type_name('evil.jsonb'::regtype) AS other;
