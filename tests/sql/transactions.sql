-- Every call joins the caller's transaction: ROLLBACK undoes it, and seqs stay gap-free.
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS ctxstore;
RESET client_min_messages;
\pset footer off

SELECT ctx.create_context('tx') AS c \gset
SELECT ctx.append(:'c', 'user', 'kept 1');

BEGIN;
SELECT ctx.append(:'c', 'user', 'rolled back');
SELECT ctx.append_many(:'c', '[{"role": "assistant", "content": "rolled back too"}]');
SELECT ctx.compact(:'c', 'rolled back summary');
SELECT ctx.fork(:'c') AS f \gset
ROLLBACK;

SELECT seq, role, content FROM ctx.messages(:'c');
SELECT count(*) FROM ctx.contexts WHERE id = :'f';
SELECT count(*) FROM ctx.summaries WHERE context_id = :'c';
-- the rolled-back seqs are reused: no gap
SELECT ctx.append(:'c', 'assistant', 'kept 2');

-- a failing statement inside a batch leaves nothing behind
BEGIN;
SELECT ctx.append(:'c', 'user', 'in savepoint');
SAVEPOINT s;
SELECT ctx.append_many(:'c', '[{"role": "user", "content": "a"}, {"role": "nobody", "content": "b"}]');
ROLLBACK TO SAVEPOINT s;
SELECT ctx.append(:'c', 'user', 'after savepoint');
COMMIT;
SELECT seq, content FROM ctx.messages(:'c');

-- deletion rolls back too
BEGIN;
SELECT ctx.delete_context(:'c');
ROLLBACK;
SELECT count(*) FROM ctx.messages(:'c');

-- a created context is gone with its transaction
BEGIN;
SELECT ctx.create_context('ephemeral') AS e \gset
SELECT ctx.append(:'e', 'user', 'x');
ROLLBACK;
SELECT count(*) FROM ctx.contexts WHERE name = 'ephemeral';
