-- Recall through pgvector's HNSW index (PG 18 + pgvector only): same top-k as the exact path,
-- and recall@10 >= 0.95 against brute force with a 1 %-selective filter over 20k memories.
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS ctxstore;
RESET client_min_messages;
CREATE EXTENSION IF NOT EXISTS vector;
\pset footer off

-- 20,000 random 32-d memories in one namespace, 100 buckets (a filter on one bucket is 1 %)
SELECT setseed(0.42);
SELECT count(ctx.remember('{bench}', 'memory ' || i,
                          (SELECT array_agg((random() - 0.5)::real) FROM generate_series(1, 32) WHERE i > 0),
                          jsonb_build_object('bucket', i % 100)))
  FROM generate_series(1, 20000) i;
SELECT ctx.create_vector_index(32);
SELECT ctx.create_vector_index(32, 'cosine');
-- the registry row without its index (as after pg_dump / pg_restore): creating it again rebuilds it
DROP INDEX ctx.memories_hnsw_32;
SELECT ctx.create_vector_index(dims, metric) FROM ctx.vector_indexes;
SELECT to_regclass('ctx.memories_hnsw_32') IS NOT NULL AS rebuilt;
SELECT indexdef LIKE '%USING hnsw%vector_cosine_ops%' AS hnsw FROM pg_indexes WHERE indexname = 'memories_hnsw_32';
ANALYZE ctx.memories;

CREATE TEMP TABLE queries AS
  SELECT q, (SELECT array_agg((random() - 0.5)::real) FROM generate_series(1, 32) WHERE q > 0) AS v
    FROM generate_series(1, 20) q;

-- brute force: exact cosine distance through pgvector with the index disabled
CREATE TEMP TABLE truth AS
  SELECT q.q, (SELECT array_agg(id ORDER BY d) FROM (
      SELECT m.id, (m.embedding::vector(32)) <=> (q.v::vector(32)) AS d FROM ctx.memories m
       WHERE m.metadata @> '{"bucket": 7}' AND m.valid_to IS NULL ORDER BY d LIMIT 10) t) AS ids
    FROM queries q;

-- the index path (threshold 0 forces it whatever the estimate)
SET ctxstore.exact_recall_max_candidates = 0;
SELECT round(avg(hits) / 10, 2) >= 0.95 AS hnsw_recall_at_10_ok
  FROM (SELECT (SELECT count(*) FROM ctx.recall('{bench}', q.v, k => 10, filter => '{"bucket": 7}',
                                               weights => '{"recency": 0, "importance": 0}') r
                 WHERE r.id = ANY(t.ids)) AS hits
          FROM queries q JOIN truth t USING (q)) s;
-- the exact path returns exactly the brute-force top 10
SET ctxstore.exact_recall_max_candidates = 1000000;
SELECT bool_and(r.ids = t.ids) AS exact_matches_brute_force
  FROM truth t JOIN queries q USING (q),
       LATERAL (SELECT array_agg(id ORDER BY similarity DESC) AS ids
                  FROM ctx.recall('{bench}', q.v, k => 10, filter => '{"bucket": 7}',
                                  weights => '{"recency": 0, "importance": 0}')) r;
-- unfiltered: index and exact paths agree on the top 10 for most queries
SET ctxstore.exact_recall_max_candidates = 0;
CREATE TEMP TABLE via_index AS
  SELECT q.q, (SELECT array_agg(id ORDER BY similarity DESC) FROM ctx.recall('{bench}', q.v, k => 10,
               weights => '{"recency": 0, "importance": 0}')) AS ids FROM queries q;
SET ctxstore.exact_recall_max_candidates = 1000000;
CREATE TEMP TABLE via_exact AS
  SELECT q.q, (SELECT array_agg(id ORDER BY similarity DESC) FROM ctx.recall('{bench}', q.v, k => 10,
               weights => '{"recency": 0, "importance": 0}')) AS ids FROM queries q;
SELECT round(avg((SELECT count(*) FROM unnest(i.ids) x WHERE x = ANY(e.ids))) / 10, 2) >= 0.95 AS paths_agree
  FROM via_index i JOIN via_exact e USING (q);
RESET ctxstore.exact_recall_max_candidates;

-- forget leaves no orphan: index scans never return a forgotten memory
SELECT ctx.forget('{bench}', '{"bucket": 7}');
SET ctxstore.exact_recall_max_candidates = 0;
SELECT count(*) FROM queries q, LATERAL ctx.recall('{bench}', q.v, k => 10, filter => '{"bucket": 7}') r;
SELECT count(*) FROM ctx.memories WHERE metadata @> '{"bucket": 7}';
RESET ctxstore.exact_recall_max_candidates;

-- a different metric rebuilds the index
SELECT ctx.create_vector_index(32, 'l2');
SELECT metric FROM ctx.vector_indexes WHERE dims = 32;
SELECT ctx.create_vector_index(4000);
\echo :SQLSTATE
