-- Data for benches/macro.sh: threads of 100 / 1k / 10k messages (ctxstore and a
-- langchain-postgres-shaped table), and 20k memories of 384 dims with 10 % / 1 % buckets.
CREATE EXTENSION IF NOT EXISTS ctxstore;
CREATE EXTENSION IF NOT EXISTS vector;
CREATE TABLE bench_history (id serial PRIMARY KEY, session int NOT NULL, content text NOT NULL, created_at timestamptz DEFAULT now());
CREATE INDEX ON bench_history (session);
SELECT setseed(0.7);
DO $$
DECLARE n int; c uuid;
BEGIN
  FOREACH n IN ARRAY ARRAY[100, 1000, 10000] LOOP
    c := ctx.create_context('thread-' || n);
    PERFORM ctx.append_many(c, (SELECT jsonb_agg(jsonb_build_object(
        'role', CASE WHEN i % 2 = 0 THEN 'user' ELSE 'assistant' END,
        'content', repeat('Agents remember what users said and answer with care. ', 1 + i % 7)))
      FROM generate_series(1, n) i));
    INSERT INTO bench_history (session, content)
      SELECT n, repeat('Agents remember what users said and answer with care. ', 1 + i % 7) FROM generate_series(1, n) i;
  END LOOP;
  PERFORM ctx.create_context('append-target');
  PERFORM ctx.create_context('append-encrypted', encrypted => true);
  c := ctx.create_context('encrypted-1000', encrypted => true);
  PERFORM ctx.append_many(c, (SELECT jsonb_agg(jsonb_build_object(
      'role', CASE WHEN i % 2 = 0 THEN 'user' ELSE 'assistant' END,
      'content', repeat('Agents remember what users said and answer with care. ', 1 + i % 7)))
    FROM generate_series(1, 1000) i));
  -- the 10k thread seen through read processors (a fork: same messages, its own configuration)
  c := ctx.fork((SELECT id FROM ctx.contexts WHERE name = 'thread-10000'));
  UPDATE ctx.contexts SET name = 'thread-10000-processed' WHERE id = c;
  PERFORM ctx.configure_context_processors(c, '{"drop_tool_messages": true, "dedup": true, "truncate": 40}');
END $$;
SELECT count(ctx.remember('{bench}', 'memory ' || i,
          (SELECT array_agg((random() - 0.5)::real) FROM generate_series(1, 384) WHERE i > 0),
          jsonb_build_object('b10', i % 10, 'b1', i % 100)))
  FROM generate_series(1, 20000) i;
SELECT ctx.create_vector_index(384);
VACUUM ANALYZE;
CHECKPOINT;
