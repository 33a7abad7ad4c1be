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

-- nothing above changed the context
SELECT seq, role, length(content) FROM ctx.messages(:'c');
SELECT last_seq FROM ctx.contexts WHERE id = :'c';
