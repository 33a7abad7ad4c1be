-- Forks: a new context that sees its parent's messages up to a seq, without copying them.
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS ctxstore;
RESET client_min_messages;
\pset footer off

SELECT ctx.create_context('root', '{"app": "demo"}') AS a \gset
SELECT count(*) FROM ctx.append_many(:'a',
  (SELECT jsonb_agg(jsonb_build_object('role', 'user', 'content', 'a' || i)) FROM generate_series(1, 10) i));

SELECT ctx.fork(:'a', 5) AS b \gset
SELECT name, metadata, last_seq FROM ctx.contexts WHERE id = :'b';
SELECT count(*) AS copied_rows FROM ctx.messages m WHERE m.context_id = :'b';
SELECT ctx.append(:'b', 'assistant', 'b6');
SELECT ctx.append(:'b', 'user', 'b7');
SELECT ctx.append(:'a', 'user', 'a11');
SELECT string_agg(content, ' ' ORDER BY seq) FROM ctx.messages(:'a');
SELECT string_agg(content, ' ' ORDER BY seq) FROM ctx.messages(:'b');

-- forks of forks
SELECT ctx.fork(:'b', 6) AS c \gset
SELECT ctx.append(:'c', 'user', 'c7');
SELECT ctx.fork(:'b', 3) AS d \gset
SELECT ctx.append(:'d', 'user', 'd4');
SELECT ctx.fork(:'c') AS e \gset
SELECT ctx.append(:'e', 'user', 'e8');
SELECT string_agg(content, ' ' ORDER BY seq) FROM ctx.messages(:'c');
SELECT string_agg(content, ' ' ORDER BY seq) FROM ctx.messages(:'d');
SELECT string_agg(content, ' ' ORDER BY seq) FROM ctx.messages(:'e');
SELECT string_agg(content, ' ' ORDER BY seq) FROM ctx.window(:'e', 4);
SELECT string_agg(content, ' ' ORDER BY seq) FROM ctx.token_window(:'e', 3);
SELECT string_agg(content, ' ' ORDER BY seq) FROM ctx.messages(:'e', since_seq => 4, max_rows => 3);
SELECT string_agg(content, ' ' ORDER BY seq) FROM ctx.history(:'e');
-- a fork at 0 sees nothing; an empty context can be forked
SELECT ctx.fork(:'a', 0) AS z \gset
SELECT count(*) FROM ctx.messages(:'z');
SELECT ctx.append(:'z', 'user', 'z1');

-- compaction in a fork: inherited rows stay the parent's, untouched
SELECT ctx.compact(:'e', 'E summary', keep_last => 2);
SELECT string_agg(content, ' ' ORDER BY seq) FROM ctx.messages(:'e');
SELECT string_agg(content, ' ' ORDER BY seq) FROM ctx.messages(:'c');
SELECT string_agg(content, ' ' ORDER BY seq) FROM ctx.messages(:'a');
SELECT count(*) FROM ctx.messages m WHERE m.content IS NULL AND m.context_id IN (:'a', :'b', :'c');

-- compaction of a parent: its forks still read the archived rows
SELECT ctx.compact(:'a', 'A summary', keep_last => 1);
SELECT string_agg(content, ' ' ORDER BY seq) FROM ctx.messages(:'a');
SELECT string_agg(content, ' ' ORDER BY seq) FROM ctx.messages(:'b');
SELECT string_agg(content, ' ' ORDER BY seq) FROM ctx.messages(:'d');

-- a fork inherits the summaries that cover only what it sees
SELECT ctx.fork(:'a', 11) AS f \gset
SELECT string_agg(content, ' ' ORDER BY seq) FROM ctx.messages(:'f');
SELECT ctx.fork(:'a', 7) AS g \gset
SELECT string_agg(content, ' ' ORDER BY seq) FROM ctx.messages(:'g');
SELECT ctx.append(:'f', 'user', 'f12');
SELECT string_agg(role || ':' || content, ' ' ORDER BY seq) FROM ctx.token_window(:'f', 100);

-- deleting: a context with forks is refused unless cascade
SELECT ctx.delete_context(:'b');
\echo :SQLSTATE
SELECT ctx.delete_context(:'d');
SELECT ctx.delete_context(:'b', cascade => true);
SELECT count(*) FROM ctx.contexts WHERE id IN (:'b', :'c', :'d', :'e');
SELECT count(*) FROM ctx.messages m WHERE m.context_id IN (:'b', :'c', :'d', :'e');
SELECT count(*) FROM ctx.summaries s WHERE s.context_id IN (:'b', :'c', :'d', :'e');
SELECT string_agg(content, ' ' ORDER BY seq) FROM ctx.messages(:'a');
SELECT ctx.delete_context(:'a', cascade => true);
SELECT count(*) FROM ctx.contexts WHERE name = 'root';
