-- Compaction: a summary replaces older messages, the originals stay (lz4) in history.
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS ctxstore;
RESET client_min_messages;
\pset footer off

SELECT ctx.create_context('compaction') AS c \gset
SELECT count(*) FROM ctx.append_many(:'c',
  (SELECT jsonb_agg(jsonb_build_object('role', CASE WHEN i % 2 = 1 THEN 'user' ELSE 'assistant' END,
                                       'content', format('message %s: %s', i, repeat('blah ', 20))))
     FROM generate_series(1, 10) i));

SELECT ctx.compact(:'c', 'Summary one: ten messages of blah.', keep_last => 3) AS summary_seq;
-- active view: the summary (at the seq it covers through) then the kept messages
SELECT seq, role, left(content, 12) AS content, metadata FROM ctx.messages(:'c');
SELECT seq, role FROM ctx.window(:'c', 2);
SELECT seq, role FROM ctx.window(:'c', 4);
SELECT seq, role FROM ctx.window(:'c', 10);
-- the summary counts toward the token budget and comes first
SELECT seq, role, tokens FROM ctx.token_window(:'c', 1000);
SELECT seq, role FROM ctx.token_window(:'c', (SELECT ctx.count_tokens('Summary one: ten messages of blah.')));
-- the summary fits but the newest message does not: the window is the summary alone
SELECT seq, role FROM ctx.token_window(:'c', 30);
SELECT seq, role FROM ctx.messages(:'c', since_seq => 7);
SELECT seq, role FROM ctx.messages(:'c', since_seq => 8);

-- archived in place: compressed, never lost
SELECT count(*) FILTER (WHERE content IS NULL) AS archived, count(*) FILTER (WHERE content IS NOT NULL) AS active
  FROM ctx.messages m WHERE m.context_id = :'c';
SELECT seq, role, archived, left(content, 12) AS content FROM ctx.history(:'c');
SELECT bool_and(h.content = format('message %s: %s', h.seq, repeat('blah ', 20))) AS originals_intact
  FROM ctx.history(:'c') h WHERE h.role <> 'summary';

-- appends continue after the last seq; a second compaction supersedes the first summary
SELECT ctx.append(:'c', 'user', 'message 11');
SELECT ctx.compact(:'c', 'Summary two.', keep_last => 1);
SELECT seq, role, content FROM ctx.messages(:'c');
SELECT seq, role, archived, left(content, 12) AS content FROM ctx.history(:'c') WHERE seq >= 7;
SELECT version, through_seq, content, metadata FROM ctx.summaries WHERE context_id = :'c' ORDER BY version;

-- compacting everything leaves just the summary
SELECT ctx.compact(:'c', 'Summary three.');
SELECT seq, role, content FROM ctx.messages(:'c');
SELECT seq, role, content FROM ctx.token_window(:'c', 100);
SELECT count(*) FROM ctx.history(:'c');
-- a budget smaller than the summary skips it
SELECT count(*) FROM ctx.token_window(:'c', 1);

-- lz4 helpers
SELECT ctx.lz4_decompress(ctx.lz4_compress(repeat('abc', 1000))) = repeat('abc', 1000) AS round_trip;
SELECT length(ctx.lz4_compress(repeat('abc', 1000))) < 100 AS compresses;
SELECT ctx.lz4_decompress('\x0a000000ff'::bytea);
\echo :SQLSTATE
