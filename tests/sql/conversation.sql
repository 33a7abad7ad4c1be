-- Conversation core: contexts, appends, buffer and windows, token counting.
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS ctxstore;
RESET client_min_messages;
\pset footer off

SELECT ctx.create_context('t1', '{"user": "u1"}') AS c \gset
SELECT name, metadata, encoding, last_seq FROM ctx.contexts WHERE id = :'c';

-- seqs are 1, 2, 3 ... per context
SELECT ctx.append(:'c', 'system', 'You are terse.');
SELECT ctx.append(:'c', 'user', 'The quick brown fox jumps over the lazy dog.', '{"lang": "en"}');
SELECT ctx.append(:'c', 'assistant', '');
SELECT ctx.append_many(:'c', '[{"role": "tool", "content": "{\"temp\": 21}", "metadata": {"tool": "weather"}},
                               {"role": "assistant", "content": "It is 21 °C."},
                               {"role": "user", "content": "thanks"}]');
-- an empty batch appends nothing
SELECT count(*) FROM ctx.append_many(:'c', '[]');

-- buffer memory, chronological, with token counts stored at append
SELECT seq, role, content, metadata, tokens FROM ctx.messages(:'c');
SELECT seq, role FROM ctx.messages(:'c', since_seq => 4);
SELECT seq, role FROM ctx.messages(:'c', since_seq => 1, max_rows => 2);
SELECT count(*) FROM ctx.messages(:'c', max_rows => 0);
SELECT count(*) FROM ctx.messages(:'c', since_seq => 99);

-- last-n window
SELECT seq, role FROM ctx.window(:'c', 2);
SELECT seq FROM ctx.window(:'c', 100);
SELECT count(*) FROM ctx.window(:'c', 0);

-- token window: newest messages whose counts fit, contiguous, chronological
SELECT seq, tokens FROM ctx.token_window(:'c', 10);
SELECT seq, tokens FROM ctx.token_window(:'c', 1);
SELECT sum(tokens) <= 25 AS fits, count(*) FROM ctx.token_window(:'c', 25);
SELECT count(*) FROM ctx.token_window(:'c', 0);
SELECT count(*) FROM ctx.token_window(:'c', 100000);

-- a long thread: the window is the newest suffix within the budget
SELECT ctx.create_context('long') AS l \gset
SELECT count(*) FROM ctx.append_many(:'l',
  (SELECT jsonb_agg(jsonb_build_object('role', CASE WHEN i % 2 = 0 THEN 'user' ELSE 'assistant' END,
                                       'content', repeat('word ', i % 17 + 1)))
     FROM generate_series(1, 3000) i));
SELECT min(seq), max(seq), count(*), sum(tokens) <= 4000 AS fits FROM ctx.token_window(:'l', 4000);
-- the next older message would not have fitted
WITH w AS (SELECT min(seq) AS first, sum(tokens) AS used FROM ctx.token_window(:'l', 4000))
SELECT w.used + m.tokens > 4000 AS next_would_overflow
  FROM w, ctx.messages(:'l', since_seq => w.first - 2, max_rows => 1) m;
SELECT min(seq), max(seq), count(*) FROM ctx.window(:'l', 50);

-- token counting: o200k_base by default, cl100k_base on request or by setting
SELECT ctx.count_tokens('The quick brown fox jumps over the lazy dog.');
SELECT ctx.count_tokens('The quick brown fox jumps over the lazy dog.', 'cl100k_base');
SELECT ctx.count_tokens('Ünïcödé — 你好，世界 🌍', 'o200k_base') AS o200k,
       ctx.count_tokens('Ünïcödé — 你好，世界 🌍', 'cl100k_base') AS cl100k;
SELECT ctx.count_tokens(NULL) IS NULL AS null_in_null_out;
SET ctxstore.tokenizer = 'cl100k_base';
SELECT ctx.count_tokens('Ünïcödé — 你好，世界 🌍');
-- a context keeps the encoding it was created with
SELECT ctx.create_context('cl') AS cl \gset
SELECT encoding FROM ctx.contexts WHERE id = :'cl';
SELECT ctx.append(:'cl', 'user', 'Ünïcödé — 你好，世界 🌍');
RESET ctxstore.tokenizer;
SELECT ctx.append(:'cl', 'user', 'Ünïcödé — 你好，世界 🌍');
SELECT seq, tokens FROM ctx.messages(:'cl');

-- contexts are independent
SELECT count(*) FROM ctx.messages(:'cl');
SELECT last_seq FROM ctx.contexts WHERE id = :'c';
