-- Every bad input gets a specific SQLSTATE and a hint, and changes nothing.
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS ctxstore;
RESET client_min_messages;
\pset footer off
\set VERBOSITY default

SELECT ctx.create_context('errors') AS c \gset
SELECT ctx.append(:'c', 'user', 'the only message');

-- unknown context (42704)
SELECT ctx.append('00000000-0000-0000-0000-000000000000', 'user', 'x');
\echo :SQLSTATE
SELECT ctx.append_many('00000000-0000-0000-0000-000000000000', '[{"role": "user", "content": "x"}]');
\echo :SQLSTATE
SELECT ctx.append_many('00000000-0000-0000-0000-000000000000', '[]');
\echo :SQLSTATE
SELECT * FROM ctx.messages('00000000-0000-0000-0000-000000000000');
\echo :SQLSTATE
SELECT * FROM ctx.window('00000000-0000-0000-0000-000000000000', 1);
\echo :SQLSTATE
SELECT * FROM ctx.token_window('00000000-0000-0000-0000-000000000000', 1);
\echo :SQLSTATE
SELECT * FROM ctx.history('00000000-0000-0000-0000-000000000000');
\echo :SQLSTATE
SELECT ctx.compact('00000000-0000-0000-0000-000000000000', 's');
\echo :SQLSTATE
SELECT ctx.fork('00000000-0000-0000-0000-000000000000');
\echo :SQLSTATE
SELECT ctx.delete_context('00000000-0000-0000-0000-000000000000');
\echo :SQLSTATE

-- unknown role (22023); summary is reserved for ctx.compact
SELECT ctx.append(:'c', 'bot', 'x');
\echo :SQLSTATE
SELECT ctx.append(:'c', 'summary', 'x');
\echo :SQLSTATE

-- NULL arguments (22004)
SELECT ctx.append(:'c', 'user', NULL);
\echo :SQLSTATE
SELECT ctx.append(:'c', NULL, 'x');
\echo :SQLSTATE
SELECT ctx.append(NULL, 'user', 'x');
\echo :SQLSTATE
SELECT ctx.append_many(:'c', NULL);
\echo :SQLSTATE
SELECT * FROM ctx.window(:'c', NULL);
\echo :SQLSTATE
SELECT ctx.compact(:'c', NULL);
\echo :SQLSTATE

-- negative limits (22023)
SELECT * FROM ctx.window(:'c', -1);
\echo :SQLSTATE
SELECT * FROM ctx.token_window(:'c', -5);
\echo :SQLSTATE
SELECT * FROM ctx.messages(:'c', max_rows => -1);
\echo :SQLSTATE
SELECT * FROM ctx.messages(:'c', since_seq => -1);
\echo :SQLSTATE
SELECT ctx.compact(:'c', 's', keep_last => -1);
\echo :SQLSTATE

-- malformed metadata and messages JSON (22023 / 22004), nothing appended
SELECT ctx.append(:'c', 'user', 'x', '[1, 2]');
\echo :SQLSTATE
SELECT ctx.create_context('bad', '"just a string"');
\echo :SQLSTATE
SELECT ctx.append_many(:'c', '{"role": "user", "content": "x"}');
\echo :SQLSTATE
SELECT ctx.append_many(:'c', '[{"role": "user", "content": "ok"}, {"role": "user"}]');
\echo :SQLSTATE
SELECT ctx.append_many(:'c', '[{"role": "user", "content": "ok"}, {"role": "robot", "content": "x"}]');
\echo :SQLSTATE
SELECT ctx.append_many(:'c', '[{"role": "user", "content": ["x"]}]');
\echo :SQLSTATE
SELECT ctx.append_many(:'c', '[{"role": "user", "content": "x", "extra": 1}]');
\echo :SQLSTATE
SELECT ctx.append_many(:'c', '["x"]');
\echo :SQLSTATE

-- content above ctxstore.max_message_bytes (54000); only superusers may change the limit
SET ctxstore.max_message_bytes = '1kB';
SELECT ctx.append(:'c', 'user', repeat('x', 1025));
\echo :SQLSTATE
SELECT ctx.append_many(:'c', jsonb_build_array(jsonb_build_object('role', 'user', 'content', repeat('y', 2000))));
\echo :SQLSTATE
SELECT ctx.compact(:'c', repeat('s', 2000));
\echo :SQLSTATE
SELECT ctx.append(:'c', 'user', repeat('x', 1024)) AS exactly_at_limit;
RESET ctxstore.max_message_bytes;
CREATE ROLE ctx_regress_user;
SET ROLE ctx_regress_user;
SET ctxstore.max_message_bytes = '10MB';
\echo :SQLSTATE
RESET ROLE;
DROP ROLE ctx_regress_user;

-- bad fork points, bad encodings, nothing to compact
SELECT ctx.fork(:'c', 99);
\echo :SQLSTATE
SELECT ctx.fork(:'c', -1);
\echo :SQLSTATE
SELECT ctx.count_tokens('x', 'gpt2');
\echo :SQLSTATE
SET ctxstore.tokenizer = 'gpt2';
\echo :SQLSTATE
SELECT ctx.compact(:'c', 's', keep_last => 5);
\echo :SQLSTATE
SELECT ctx.compact(ctx.create_context('empty'), 's');
\echo :SQLSTATE
SET ctxstore.no_such_setting = 1;
\echo :SQLSTATE

-- A direct write that breaks a row rule of ctx.messages or ctx.contexts is 23514, naming the
-- constraint and the rule, never the row's values; each rule alone, each kept case passes.
CREATE FUNCTION pg_temp.outcome(statement text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE detail text;
BEGIN
    EXECUTE statement;
    RETURN 'ok';
EXCEPTION WHEN OTHERS THEN
    GET STACKED DIAGNOSTICS detail = PG_EXCEPTION_DETAIL;
    RETURN SQLSTATE || ': ' || SQLERRM || coalesce(' / ' || detail, '');
END $$;
SELECT ctx.create_context('rules') AS r \gset
SELECT ctx.append(:'r', 'user', 'kept') AS kept_seq;
SELECT s AS statement, pg_temp.outcome(format(s, :'r')) AS outcome FROM unnest(ARRAY[
    $s$INSERT INTO ctx.messages (context_id, seq, role, content, tokens) VALUES (%L, 0, 'user', 'x', 1)$s$,
    $s$INSERT INTO ctx.messages (context_id, seq, role, content, tokens) VALUES (%L, 9, 'summary', 'x', 1)$s$,
    $s$INSERT INTO ctx.messages (context_id, seq, role, content, tokens) VALUES (%L, 9, 'user', NULL, 1)$s$,
    $s$INSERT INTO ctx.messages (context_id, seq, role, content, content_lz4, tokens) VALUES (%L, 9, 'user', 'x', '\x00', 1)$s$,
    $s$INSERT INTO ctx.messages (context_id, seq, role, content, tokens) VALUES (%L, 9, 'user', 'x', -1)$s$,
    $s$INSERT INTO ctx.messages (context_id, seq, role, content, tokens, metadata) VALUES (%L, 9, 'user', 'x', 1, '[1]')$s$,
    $s$INSERT INTO ctx.messages (context_id, seq, role, content, tokens, message_id) VALUES (%L, 9, 'user', 'x', 1, '')$s$,
    $s$INSERT INTO ctx.messages (context_id, seq, role, content, tokens, message_id) VALUES (%L, 9, 'user', 'x', 1, repeat('i', 257))$s$,
    $s$UPDATE ctx.messages SET revision = 0 WHERE context_id = %L$s$,
    $s$UPDATE ctx.messages SET deleted = true, content = NULL WHERE context_id = %L$s$,
    $s$UPDATE ctx.messages SET deleted = true WHERE context_id = %L$s$,
    $s$UPDATE ctx.messages SET deleted = true, content = NULL, tokens = 0, metadata_enc = '\x00' WHERE context_id = %L$s$,
    $s$UPDATE ctx.messages SET metadata = '"text"' WHERE context_id = %L$s$,
    $s$UPDATE ctx.messages SET role = 'User' WHERE context_id = %L$s$,
    $s$INSERT INTO ctx.messages (context_id, seq, role, content, tokens, message_id) VALUES (%L, 9, 'tool', 'x', 0, repeat('i', 256))$s$,
    $s$UPDATE ctx.contexts SET resource = '' WHERE id = %L$s$,
    $s$UPDATE ctx.contexts SET resource = repeat('r', 1025) WHERE id = %L$s$,
    $s$UPDATE ctx.contexts SET metadata = '[]' WHERE id = %L$s$,
    $s$UPDATE ctx.contexts SET processors = '1' WHERE id = %L$s$,
    $s$UPDATE ctx.contexts SET encoding = 'p50k_base' WHERE id = %L$s$,
    $s$UPDATE ctx.contexts SET last_seq = -1 WHERE id = %L$s$,
    $s$UPDATE ctx.contexts SET retain_max_age = interval '1 month -30 days' WHERE id = %L$s$,
    $s$UPDATE ctx.contexts SET retain_max_age = interval '1000 years 1 microsecond' WHERE id = %L$s$,
    $s$UPDATE ctx.contexts SET retain_max_messages = 0 WHERE id = %L$s$,
    $s$UPDATE ctx.contexts SET compact_older_than = interval '-1 day' WHERE id = %L$s$,
    -- (the rule reads a document's first bytes: compressed and out-of-line documents too)
    $s$UPDATE ctx.contexts SET metadata = (SELECT jsonb_agg(md5(g::text)) FROM generate_series(1, 5000) g) WHERE id = %L$s$,
    $s$UPDATE ctx.contexts SET metadata = jsonb_build_object('big', repeat('x', 100000)) WHERE id = %L$s$,
    $s$UPDATE ctx.contexts SET metadata = (SELECT jsonb_object_agg(g, md5(g::text)) FROM generate_series(1, 5000) g) WHERE id = %L$s$,
    $s$UPDATE ctx.contexts SET ancestors = ARRAY[id], bounds = '{}' WHERE id = %L$s$,
    $s$UPDATE ctx.contexts SET parent_id = id WHERE id = %L$s$,
    $s$UPDATE ctx.contexts SET retain_max_age = interval '1000 years', compact_older_than = interval '1 day', retain_max_messages = 1, resource = repeat('r', 1024) WHERE id = %L$s$
]) s;
-- (the last statement of each table kept every rule; nothing else changed)
SELECT seq, role, content, tokens FROM ctx.messages WHERE context_id = :'r' ORDER BY seq;
SELECT resource IS NOT NULL AS resource_set, retain_max_messages, last_seq, pg_column_size(metadata) > 2000 AS big_metadata
  FROM ctx.contexts WHERE id = :'r';

-- nothing above changed the context
SELECT seq, role, length(content) FROM ctx.messages(:'c');
SELECT last_seq FROM ctx.contexts WHERE id = :'c';
