-- Processors: write-path redaction and normalisation, read-path filters, user processors.
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS ctxstore;
RESET client_min_messages;
\pset footer off

-- the built-ins, in stage and priority order
SELECT name, stage, kind, priority, enabled FROM ctx.processors WHERE kind = 'builtin';

-- Secrets are redacted on write by default, with typed placeholders and counts in metadata.
SELECT ctx.create_context('redaction') AS c \gset
SELECT ctx.append(:'c', 'user', 'my card is 4111 1111 1111 1111, key sk-proj-abcdefghijklmnopqrstuvwxyz0123, mail ada@example.com') AS s1;
SELECT ctx.append(:'c', 'user', 'order 4111 1111 1111 1112 and invoice 1234567890123452 on 2026-11-25, v1.2.3, 10.0.0.12') AS s2;
SELECT ctx.append(:'c', 'assistant', 'ok', '{"tool_calls": [{"function": {"arguments": "{\"password\": \"hunter2hunter2\"}"}}]}') AS s3;
-- near-misses stay; cards next to other digits and credentials in env-style or URL form do not
SELECT ctx.append(:'c', 'user', 'qty 2 4111 1111 1111 1111 123, DB_PASSWORD=s3cr3t!, postgres://app:pa55word@db/x, run pwd') AS s3b;
SELECT content, metadata->'redacted' AS redacted FROM ctx.messages(:'c', since_seq => 3);
SELECT seq, content, metadata FROM ctx.messages(:'c');
-- nothing of the original is stored anywhere
SELECT count(*) AS leaked FROM ctx.messages m
 WHERE m.context_id = :'c' AND (m.content LIKE '%4111 1111 1111 1111%' OR m.content LIKE '%sk-proj%'
                                OR m.metadata::text LIKE '%hunter2%');

-- Personal data when enabled for the context; a list picks the kinds.
SELECT ctx.configure_context_processors(:'c', '{"redact_pii": ["email"]}') ->> 'redact_pii' AS pii;
SELECT ctx.append(:'c', 'user', 'write to ada@example.com or call +44 20 7946 0958') AS s4;
SELECT ctx.configure_context_processors(:'c', '{"redact_pii": true}') ->> 'redact_pii' AS pii;
SELECT ctx.append(:'c', 'user', 'call (555) 123-4567; not a phone: 123-45-6789, 2026-11-25') AS s5;
SELECT seq, content, metadata->'redacted' AS redacted FROM ctx.messages(:'c', since_seq => 4);
-- forks inherit the configuration; append_many goes through the same pipeline
SELECT ctx.fork(:'c') AS f \gset
SELECT ctx.append_many(:'f', '[{"role": "user", "content": "bob@example.org"}, {"role": "user", "content": "plain"}]');
SELECT seq, content FROM ctx.messages(:'f', since_seq => 6);
-- a context created with processors switched off stores the text as given
SELECT ctx.create_context('raw', processors => '{"redact_secrets": false, "normalize": false}') AS raw \gset
SELECT ctx.append(:'raw', 'user', E'card 4111111111111111\r\nend');
SELECT content = E'card 4111111111111111\r\nend' AS verbatim FROM ctx.messages(:'raw');

-- Normalisation: CRLF to LF, control characters out, NFC.
SELECT ctx.create_context('norm') AS n \gset
SELECT ctx.append(:'n', 'user', E'line one\r\nline two\u0007 cafe\u0301');
SELECT content = E'line one\nline two caf\u00e9' AS normalized FROM ctx.messages(:'n');
-- size_limit rejects, never truncates, a write
SELECT ctx.configure_context_processors(:'n', '{"size_limit": 5}') ->> 'size_limit' AS size_limit;
SELECT ctx.append(:'n', 'user', 'this message is certainly longer than five tokens');
SELECT ctx.append(:'n', 'user', 'short');
SELECT count(*) FROM ctx.messages(:'n');

-- Memories and state: namespace configuration; longer prefixes override shorter ones.
SELECT ctx.configure_namespace_processors('{crm}', '{"redact_pii": true}');
SELECT ctx.configure_namespace_processors('{crm,internal}', '{"redact_pii": false}');
SELECT ctx.remember('{crm,ada}', 'Ada: ada@example.com, card 5555555555554444', metadata => '{"phone": "+1 415 555 2671"}') AS m \gset
SELECT content, metadata FROM ctx.memories WHERE id = :'m';
SELECT ctx.remember('{crm,internal}', 'ops contact ops@example.com') AS mi \gset
SELECT content FROM ctx.memories WHERE id = :'mi';
SELECT ctx.update_memory(:'m', content => 'Ada moved; new mail ada@new.example') IS NOT NULL AS updated;
SELECT content, metadata->'redacted' AS redacted FROM ctx.memories WHERE id = :'m' AND valid_to IS NULL;
SELECT ctx.put('{crm,ada}', 'profile', '{"email": "ada@example.com", "notes": ["token ghp_abcdefghijklmnopqrstuvwxyz0123456789"], "db": {"DB_PASSWORD": "x1"}}');
SELECT ctx.get('{crm,ada}', 'profile');
SELECT ctx.patch('{crm,ada}', 'profile', '{"backup": "ada@backup.example"}');
SELECT redacted FROM ctx.state WHERE namespace = '{crm,ada}' AND key = 'profile';
-- a read-stage key cannot be set for a namespace
SELECT ctx.configure_namespace_processors('{crm}', '{"truncate": 10}');
-- '{}' removes the setting
SELECT ctx.configure_namespace_processors('{crm,internal}', '{}');
SELECT namespace, config FROM ctx.namespace_processors ORDER BY namespace;

-- Read processors: configured per context, or per build_context call.
SELECT ctx.create_context('reads') AS r \gset
SELECT count(*) FROM ctx.append_many(:'r', '[
  {"role": "system", "content": "Be brief."},
  {"role": "user", "content": "What is the weather in Lyon?"},
  {"role": "assistant", "content": "", "metadata": {"tool_calls": [{"id": "c1", "type": "function", "function": {"name": "weather", "arguments": "{}"}}]}},
  {"role": "tool", "content": "{\"temp\": 7, \"sky\": \"rain\"}", "metadata": {"tool_call_id": "c1"}},
  {"role": "assistant", "content": "It is 7 degrees and raining in Lyon, so bring an umbrella and a warm coat for the evening."},
  {"role": "user", "content": "thanks"},
  {"role": "user", "content": "thanks"}
]');
SELECT seq, role, tokens FROM ctx.window(:'r', 10);
SELECT ctx.configure_context_processors(:'r', '{"drop_tool_messages": true, "dedup": true}') - 'redact_pii' AS config;
SELECT seq, role, left(content, 30) AS content FROM ctx.window(:'r', 10);
-- last_n counts the messages that survive the processors
SELECT seq, role FROM ctx.window(:'r', 2);
SELECT ctx.configure_context_processors(:'r', '{"truncate": 8, "drop_roles": ["system"]}') ->> 'truncate' AS truncate;
SELECT seq, role, content, tokens, tokens = ctx.count_tokens(content) AS exact, metadata->'truncated_from_tokens' AS was
  FROM ctx.token_window(:'r', 1000) WHERE role = 'assistant';
-- token_limit caps the messages a window returns, newest first
SELECT ctx.configure_context_processors(:'r', '{"token_limit": 12}') ->> 'token_limit' AS token_limit;
SELECT seq, tokens FROM ctx.token_window(:'r', 1000);
SELECT sum(tokens) <= 12 AS capped FROM ctx.token_window(:'r', 1000);
-- the summary heads a window only when nothing is left out between it and the window
SELECT ctx.create_context('summarized') AS sm \gset
SELECT count(*) FROM ctx.append_many(:'sm', (SELECT jsonb_agg(jsonb_build_object('role', 'user', 'content', 'message number ' || i)) FROM generate_series(1, 6) i));
SELECT ctx.compact(:'sm', 'They counted to three.', keep_last => 3) AS summary_seq;
SELECT ctx.configure_context_processors(:'sm', '{"dedup": true}') ->> 'dedup' AS dedup;
SELECT seq, role, content FROM ctx.window(:'sm', 10);
SELECT ctx.configure_context_processors(:'sm', '{"token_limit": 8}') ->> 'token_limit' AS token_limit;
SELECT seq, role, content FROM ctx.window(:'sm', 10);
-- ctx.messages and ctx.history are the raw log: no read processors
SELECT count(*) AS raw_rows FROM ctx.messages(:'r');
SELECT ctx.configure_context_processors(:'r', NULL) = ctx.processor_config(:'r') AS reset;
-- per call, in build_context; the budget holds and counts stay exact through every mix
SELECT position, section, role, left(content, 40) AS content
  FROM ctx.build_context(:'r', 200, options => '{"processors": {"drop_tool_messages": true, "dedup": true}}');
SELECT bool_and(used <= b) AS within_budget, bool_and(exact) AS exact
  FROM generate_series(4, 120, 3) b,
       (VALUES ('{}'::jsonb), ('{"drop_tool_messages": true}'), ('{"truncate": 6}'),
               ('{"dedup": true, "token_limit": 20}'), ('{"drop_roles": ["user"], "truncate": 3}')) p(procs),
       LATERAL (SELECT coalesce(sum(tokens), 0) AS used,
                       coalesce(bool_and(tokens = ctx.count_tokens(content)), true) AS exact
                  FROM ctx.build_context(:'r', b, options => jsonb_build_object('processors', p.procs))) x;
SELECT jsonb_array_length(ctx.build_context_json(:'r', 200, options => '{"processors": {"drop_tool_messages": true}}')) AS messages;
-- an assistant message with text and tool calls keeps its text; its calls go with their results
SELECT ctx.append(:'r', 'assistant', 'Let me check the forecast.', '{"tool_calls": [{"id": "c2", "type": "function", "function": {"name": "weather", "arguments": "{}"}}]}') AS s;
SELECT m->>'role' AS role, m->>'content' AS content, m ? 'tool_calls' AS has_calls
  FROM jsonb_array_elements(ctx.build_context_json(:'r', 200, options => '{"processors": {"drop_tool_messages": true}}')) m;
SELECT count(*) FILTER (WHERE m ? 'tool_calls') AS with_calls
  FROM jsonb_array_elements(ctx.build_context_json(:'r', 200)) m;
-- write-stage keys are not per-call options
SELECT ctx.build_context(:'r', 100, options => '{"processors": {"redact_pii": true}}');

-- User processors: jsonb -> jsonb, NULL drops; priority order; scopes.
CREATE FUNCTION mask_order_ids(item jsonb) RETURNS jsonb LANGUAGE sql AS $$
  SELECT jsonb_set(item, '{content}', to_jsonb(regexp_replace(item->>'content', 'ORD-[0-9]+', 'ORD-****', 'g')))
$$;
CREATE FUNCTION drop_heartbeats(item jsonb) RETURNS jsonb LANGUAGE sql AS $$
  SELECT CASE WHEN item->>'content' = 'ping' THEN NULL ELSE item END
$$;
CREATE FUNCTION tag_first(item jsonb) RETURNS jsonb LANGUAGE sql AS $$
  SELECT jsonb_set(item, '{metadata,order}', coalesce(item->'metadata'->'order', '[]') || '"first"')
$$;
CREATE FUNCTION tag_second(item jsonb) RETURNS jsonb LANGUAGE sql AS $$
  SELECT jsonb_set(item, '{metadata,order}', coalesce(item->'metadata'->'order', '[]') || '"second"')
$$;
CREATE FUNCTION shout(item jsonb) RETURNS jsonb LANGUAGE sql IMMUTABLE AS $$
  SELECT jsonb_set(item, '{content}', to_jsonb(upper(item->>'content')))
$$;
CREATE FUNCTION strict_guard(item jsonb) RETURNS jsonb LANGUAGE plpgsql AS $$
BEGIN
  IF item->>'content' LIKE '%forbidden%' THEN
    RAISE EXCEPTION 'forbidden content' USING ERRCODE = '22P02', HINT = 'rephrase';
  END IF;
  RETURN item;
END $$;
CREATE FUNCTION not_a_processor(x int) RETURNS int LANGUAGE sql AS 'SELECT x';

SELECT ctx.create_context('users', '{"app": "support"}') AS u \gset
SELECT ctx.register_processor('mask_order_ids', 'write', function => 'mask_order_ids(jsonb)', scope => '{"kinds": ["message"]}');
SELECT ctx.register_processor('drop_heartbeats', 'write', 'drop_heartbeats(jsonb)', 5);
SELECT ctx.register_processor('tag_second', 'write', 'tag_second(jsonb)', 200);
SELECT ctx.register_processor('tag_first', 'write', 'tag_first(jsonb)', 150);
SELECT ctx.register_processor('shout', 'read', 'shout(jsonb)', scope => jsonb_build_object('context_id', :'u'));
SELECT ctx.register_processor('strict_guard', 'write', 'strict_guard(jsonb)', scope => '{"metadata": {"app": "support"}}');
SELECT name, stage, kind, function, priority, scope - 'context_id' AS scope FROM ctx.processors WHERE kind = 'user';

SELECT ctx.append(:'u', 'user', 'where is ORD-12345?') AS seq;
SELECT ctx.append(:'u', 'user', 'ping') IS NULL AS dropped;
SELECT ctx.append_many(:'u', '[{"role": "user", "content": "ping"}, {"role": "user", "content": "and ORD-9?"}]');
SELECT seq, content, metadata FROM ctx.messages(:'u');
-- read processors see stored rows; the raw log keeps them as written
SELECT seq, content FROM ctx.window(:'u', 5);
SELECT content FROM ctx.build_context(:'u', 100) ORDER BY position;
-- scoped by context: another context is not shouted at, and not guarded (metadata scope)
SELECT ctx.append(:'c', 'user', 'forbidden words ORD-1');
SELECT content FROM ctx.window(:'c', 1);
-- a failing processor aborts the call, names itself, and keeps its SQLSTATE and hint; nothing is written
SELECT ctx.append(:'u', 'user', 'forbidden words');
\set VERBOSITY sqlstate
SELECT ctx.append(:'u', 'user', 'forbidden words');
\set VERBOSITY default
SELECT count(*) FROM ctx.messages(:'u');
-- a disabled processor is skipped; enabled again it runs
SELECT ctx.disable_processor('drop_heartbeats');
SELECT ctx.append(:'u', 'user', 'ping') IS NOT NULL AS stored;
SELECT ctx.enable_processor('drop_heartbeats');
SELECT ctx.append(:'u', 'user', 'ping') IS NULL AS dropped;
-- memories and state go through write processors too (kinds scope); NULL drops
SELECT ctx.remember('{crm,ada}', 'ping') IS NULL AS memory_dropped;
SELECT ctx.put('{crm,ada}', 'beat', '{"content": "ping"}') AS state_version;
-- a built-in can be switched off for every context of the caller's tenant: in a context that
-- redacts (the default), the same secrets are redacted before and stored as given after; another
-- tenant's context keeps redacting, unless switched off for every tenant (superuser)
SET ctxstore.tenant = 'processors_other';
SELECT ctx.create_context('other tenant') AS o \gset
SELECT ctx.append(:'o', 'user', 'before: card 4111 1111 1111 1111, key sk-proj-abcdefghijklmnopqrstuvwxyz0123') AS s;
RESET ctxstore.tenant;
SELECT ctx.append(:'c', 'user', 'before: card 4111 1111 1111 1111, key sk-proj-abcdefghijklmnopqrstuvwxyz0123') AS s;
SELECT ctx.disable_processor('redact_secrets');
SELECT ctx.append(:'c', 'user', 'after: card 4111 1111 1111 1111, key sk-proj-abcdefghijklmnopqrstuvwxyz0123') AS s;
SELECT seq, content, metadata->'redacted' AS redacted FROM ctx.messages(:'c', since_seq => 7);
SELECT ctx.processor_config(:'c') ->> 'redact_secrets' AS redact_secrets;
SET ctxstore.tenant = 'processors_other';
SELECT ctx.append(:'o', 'user', 'after: card 4111 1111 1111 1111, key sk-proj-abcdefghijklmnopqrstuvwxyz0123') AS s;
RESET ctxstore.tenant;
SELECT ctx.disable_processor('redact_secrets', all_tenants => true);
SET ctxstore.tenant = 'processors_other';
SELECT ctx.append(:'o', 'user', 'all tenants: card 4111 1111 1111 1111, key sk-proj-abcdefghijklmnopqrstuvwxyz0123') AS s;
SELECT seq, content, metadata->'redacted' AS redacted FROM ctx.messages(:'o');
RESET ctxstore.tenant;
SELECT ctx.enable_processor('redact_secrets', all_tenants => true);
SELECT ctx.enable_processor('redact_secrets');
-- on again: redacted again
SELECT ctx.append(:'c', 'user', 'again: card 4111 1111 1111 1111') AS s;
SELECT content FROM ctx.messages(:'c', since_seq => 9);
SET ctxstore.tenant = 'processors_other';
SELECT ctx.append(:'o', 'user', 'again: card 4111 1111 1111 1111') AS s;
SELECT content FROM ctx.messages(:'o', since_seq => 3);
SELECT ctx.delete_context(:'o');
RESET ctxstore.tenant;

-- Errors
SELECT ctx.register_processor('shout', 'read', 'shout(jsonb)');
SELECT ctx.register_processor('bad_sig', 'write', 'not_a_processor(int)');
SELECT ctx.register_processor('volatile_read', 'read', 'tag_first(jsonb)');
SELECT ctx.register_processor('bad_stage', 'rewrite', 'shout(jsonb)');
SELECT ctx.register_processor('Bad Name', 'write', 'shout(jsonb)');
SELECT ctx.register_processor('bad_scope', 'write', 'shout(jsonb)', scope => '{"tenant": 1}');
SELECT ctx.register_processor('bad_priority', 'write', 'shout(jsonb)', -1);
SELECT ctx.register_processor('no_fn', 'write', 'no_such_function(jsonb)');
SELECT ctx.disable_processor('nope');
SELECT ctx.unregister_processor('redact_secrets');
SELECT ctx.configure_context_processors(:'u', '{"truncate": 0}');
SELECT ctx.configure_context_processors(:'u', '{"redact_pii": ["ssn"]}');
SELECT ctx.configure_context_processors('00000000-0000-0000-0000-000000000000', '{}');
SELECT ctx.create_context('bad', processors => '{"bogus": true}');
-- a processor that returns a malformed document
CREATE FUNCTION broken(item jsonb) RETURNS jsonb LANGUAGE sql AS $$ SELECT '[1]'::jsonb $$;
SELECT ctx.register_processor('broken', 'write', 'broken(jsonb)', scope => jsonb_build_object('context_id', :'n'));
SELECT ctx.append(:'n', 'user', 'hello');
SELECT ctx.unregister_processor('broken');
-- a processor whose function was dropped
DROP FUNCTION shout(jsonb);
SELECT count(*) FROM ctx.window(:'u', 3);
SELECT ctx.unregister_processor('shout');
SELECT count(*) FROM ctx.window(:'u', 3);

-- clean up what other tests count
SELECT ctx.unregister_processor(name) FROM ctx.processors WHERE kind = 'user' ORDER BY name;
SELECT ctx.configure_namespace_processors('{crm}', NULL);
SELECT ctx.forget('{crm}'::text[]);
SELECT ctx.delete_key('{crm,ada}', 'profile'), ctx.delete_key('{crm,ada}', 'beat');
SELECT ctx.delete_context(id, cascade => true) FROM ctx.contexts
 WHERE name IN ('redaction', 'raw', 'norm', 'reads', 'users', 'summarized') AND parent_id IS NULL ORDER BY name;
