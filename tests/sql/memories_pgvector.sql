-- Recall through pgvector's HNSW index (PG 18 + pgvector only): same top-k as the exact path,
-- and recall@10 >= 0.95 against brute force with a 1 %-selective filter over 20k memories, for
-- each metric; every block checks, by the recall counters, which path the recalls took.
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS ctxstore;
RESET client_min_messages;
CREATE EXTENSION IF NOT EXISTS vector;
\pset footer off

-- The search path each recall took: ctxstore_recalls_total{path=hnsw|exact} (per session here,
-- as the regression cluster does not preload ctxstore), as deltas since the previous call.
-- A recall counts as hnsw only when the index answered it; a fallback to the exact scan
-- counts as exact.
CREATE FUNCTION pg_temp.recall_paths(OUT hnsw int, OUT exact int) LANGUAGE plpgsql AS $$
DECLARE h float8; e float8;
BEGIN
  SELECT sum(value) FILTER (WHERE labels ->> 'path' = 'hnsw'), sum(value) FILTER (WHERE labels ->> 'path' = 'exact')
    INTO STRICT h, e FROM ctx.metrics WHERE name = 'ctxstore_recalls_total';
  hnsw := h - coalesce(current_setting('regress.hnsw_seen', true)::float8, 0);
  exact := e - coalesce(current_setting('regress.exact_seen', true)::float8, 0);
  PERFORM set_config('regress.hnsw_seen', h::text, false), set_config('regress.exact_seen', e::text, false);
END $$;
-- (the first read of the metrics notes that they count this session only)
SET client_min_messages = warning;
SELECT hnsw AS hnsw_before, exact AS exact_before FROM pg_temp.recall_paths() \gset
RESET client_min_messages;

-- 20,000 random 32-d memories in one namespace, 100 buckets (a filter on one bucket is 1 %)
SELECT setseed(0.42);
SELECT count(ctx.remember('{bench}', 'memory ' || i,
                          (SELECT array_agg((random() - 0.5)::real) FROM generate_series(1, 32) WHERE i > 0),
                          jsonb_build_object('bucket', i % 100)))
  FROM generate_series(1, 20000) i;
-- pgvector installed, no index registered (so none of its casts): the exact path scores with
-- ctxstore's own function, whatever casts exist
SET client_min_messages = warning;
DROP CAST IF EXISTS (ctx.embedding AS vector);
RESET client_min_messages;
SELECT count(*) AS exact_without_index
  FROM ctx.recall('{bench}', (SELECT array_agg(0.1::real) FROM generate_series(1, 32)), k => 3);
SELECT * FROM pg_temp.recall_paths();
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
SELECT * FROM pg_temp.recall_paths();
-- the exact path returns exactly the brute-force top 10
SET ctxstore.exact_recall_max_candidates = 1000000;
SELECT bool_and(r.ids = t.ids) AS exact_matches_brute_force
  FROM truth t JOIN queries q USING (q),
       LATERAL (SELECT array_agg(id ORDER BY similarity DESC) AS ids
                  FROM ctx.recall('{bench}', q.v, k => 10, filter => '{"bucket": 7}',
                                  weights => '{"recency": 0, "importance": 0}')) r;
SELECT * FROM pg_temp.recall_paths();
-- unfiltered: index and exact paths agree on the top 10 for most queries
SET ctxstore.exact_recall_max_candidates = 0;
CREATE TEMP TABLE via_index AS
  SELECT q.q, (SELECT array_agg(id ORDER BY similarity DESC) FROM ctx.recall('{bench}', q.v, k => 10,
               weights => '{"recency": 0, "importance": 0}')) AS ids FROM queries q;
SELECT * FROM pg_temp.recall_paths();
SET ctxstore.exact_recall_max_candidates = 1000000;
CREATE TEMP TABLE via_exact AS
  SELECT q.q, (SELECT array_agg(id ORDER BY similarity DESC) FROM ctx.recall('{bench}', q.v, k => 10,
               weights => '{"recency": 0, "importance": 0}')) AS ids FROM queries q;
SELECT * FROM pg_temp.recall_paths();
SELECT round(avg((SELECT count(*) FROM unnest(i.ids) x WHERE x = ANY(e.ids))) / 10, 2) >= 0.95 AS paths_agree
  FROM via_index i JOIN via_exact e USING (q);
-- by default (-1) the planner's estimate is weighed against the index's size: the whole
-- namespace (20,000) goes through the index, one bucket (200; the graph walk would visit some
-- 40 · 20,000 / 200 tuples to find 40 of them) is scanned exactly
RESET ctxstore.exact_recall_max_candidates;
SELECT count(*) FROM ctx.recall('{bench}', (SELECT v FROM queries WHERE q = 1), k => 10);
SELECT * FROM pg_temp.recall_paths();
SELECT count(*) FROM ctx.recall('{bench}', (SELECT v FROM queries WHERE q = 1), k => 10, filter => '{"bucket": 7}');
SELECT * FROM pg_temp.recall_paths();
-- a recall is a read: both paths run in a read-only transaction, the first with a scope this
-- session has not estimated yet (the estimate is planned there too)
BEGIN READ ONLY;
SELECT count(*) FROM ctx.recall('{bench}', (SELECT v FROM queries WHERE q = 2), k => 10, include_descendants => false);
SELECT count(*) FROM ctx.recall('{bench}', (SELECT v FROM queries WHERE q = 2), k => 10, filter => '{"bucket": 9}');
SELECT pg_current_xact_id_if_assigned() IS NULL AS no_transaction_id;
COMMIT;
SELECT * FROM pg_temp.recall_paths();
-- as_of reads past versions, which the index (current rows only) does not hold: exact
SET ctxstore.exact_recall_max_candidates = 0;
SELECT count(*) FROM ctx.recall('{bench}', (SELECT v FROM queries WHERE q = 1), k => 10, as_of => now());
SELECT * FROM pg_temp.recall_paths();
-- no index for the query's dimension: exact, whatever the threshold
SELECT count(ctx.remember('{bench8}', 'small ' || i,
                          (SELECT array_agg((random() - 0.5)::real) FROM generate_series(1, 8) WHERE i > 0)))
  FROM generate_series(1, 100) i;
SELECT count(*) FROM ctx.recall('{bench8}', '{1,0,0,0,0,0,0,0}', k => 5);
SELECT * FROM pg_temp.recall_paths();
SELECT ctx.forget('{bench8}'::text[]);
RESET ctxstore.exact_recall_max_candidates;

-- forget leaves no orphan: the index path never returns a forgotten memory. Twenty memories of
-- bucket 7, each the query, are found by the index (each is its own nearest neighbour) ...
CREATE TEMP TABLE doomed AS
  SELECT id, embedding FROM ctx.memories WHERE metadata @> '{"bucket": 7}' ORDER BY content LIMIT 20;
SET ctxstore.exact_recall_max_candidates = 0;
SELECT count(*) AS found_themselves
  FROM doomed d, LATERAL ctx.recall('{bench}', d.embedding, k => 1, weights => '{"recency": 0, "importance": 0}') r
 WHERE r.id = d.id;
SELECT * FROM pg_temp.recall_paths();
-- ... and, forgotten, by none of the same index-path recalls
SELECT ctx.forget('{bench}', '{"bucket": 7}');
SELECT count(*) AS orphans
  FROM doomed d, LATERAL ctx.recall('{bench}', d.embedding, k => 10, weights => '{"recency": 0, "importance": 0}') r
 WHERE r.id IN (SELECT id FROM doomed);
SELECT * FROM pg_temp.recall_paths();
-- filtered to the forgotten bucket, the index finds nothing: the exact scan runs, finds nothing
SELECT count(*) FROM queries q, LATERAL ctx.recall('{bench}', q.v, k => 10, filter => '{"bucket": 7}') r;
SELECT * FROM pg_temp.recall_paths();
SELECT count(*) FROM ctx.memories WHERE metadata @> '{"bucket": 7}';
RESET ctxstore.exact_recall_max_candidates;

-- A different metric rebuilds the index, and the index's metric is the recall's metric on both
-- paths: what is searched (pgvector's operator) and what is scored (similarity). Bucket 8 now.
-- l2: similarity = 1 / (1 + euclidean distance)
SELECT ctx.create_vector_index(32, 'l2');
SELECT metric FROM ctx.vector_indexes WHERE dims = 32;
SELECT indexdef LIKE '%USING hnsw%vector_l2_ops%' AS hnsw_l2 FROM pg_indexes WHERE indexname = 'memories_hnsw_32';
CREATE TEMP TABLE truth_l2 AS
  SELECT q.q, (SELECT array_agg(id ORDER BY d) FROM (
      SELECT m.id, (m.embedding::vector(32)) <-> (q.v::vector(32)) AS d FROM ctx.memories m
       WHERE m.metadata @> '{"bucket": 8}' AND m.valid_to IS NULL ORDER BY d LIMIT 10) t) AS ids
    FROM queries q;
SET ctxstore.exact_recall_max_candidates = 0;
CREATE TEMP TABLE l2_index AS
  SELECT q.q, r.id, r.similarity FROM queries q,
         LATERAL ctx.recall('{bench}', q.v, k => 10, filter => '{"bucket": 8}', weights => '{"recency": 0, "importance": 0}') r;
SELECT * FROM pg_temp.recall_paths();
SELECT round(count(*) FILTER (WHERE r.id = ANY(t.ids)) / 200.0, 2) >= 0.95 AS hnsw_l2_recall_at_10_ok,
       bool_and(abs(r.similarity - 1 / (1 + (m.embedding::vector(32) <-> q.v::vector(32)))) < 1e-5) AS scored_l2
  FROM l2_index r JOIN truth_l2 t USING (q) JOIN queries q USING (q) JOIN ctx.memories m ON m.id = r.id;
SET ctxstore.exact_recall_max_candidates = 1000000;
SELECT bool_and(r.ids = t.ids) AS exact_l2_matches_brute_force
  FROM truth_l2 t JOIN queries q USING (q),
       LATERAL (SELECT array_agg(id ORDER BY similarity DESC) AS ids
                  FROM ctx.recall('{bench}', q.v, k => 10, filter => '{"bucket": 8}',
                                  weights => '{"recency": 0, "importance": 0}')) r;
SELECT * FROM pg_temp.recall_paths();
-- the registry lists an l2 index the database lacks (as after pg_restore, which never dumps
-- indexes on an extension's tables): recall scans exactly, still under the registered metric
DROP INDEX ctx.memories_hnsw_32;
SET ctxstore.exact_recall_max_candidates = 0;
CREATE TEMP TABLE orphan_l2 AS
  SELECT q.q, r.id, r.similarity FROM queries q,
         LATERAL ctx.recall('{bench}', q.v, k => 10, filter => '{"bucket": 8}', weights => '{"recency": 0, "importance": 0}') r;
SELECT * FROM pg_temp.recall_paths();
SELECT bool_and(abs(r.similarity - 1 / (1 + (m.embedding::vector(32) <-> q.v::vector(32)))) < 1e-5) AS orphaned_registry_scores_l2,
       bool_and(r.id = ANY(t.ids)) AS orphaned_registry_ranks_l2
  FROM orphan_l2 r JOIN truth_l2 t USING (q) JOIN queries q USING (q) JOIN ctx.memories m ON m.id = r.id;
SET ctxstore.exact_recall_max_candidates = 1000000;
-- inner_product: similarity = the dot product
SELECT ctx.create_vector_index(32, 'inner_product');
SELECT metric FROM ctx.vector_indexes WHERE dims = 32;
SELECT indexdef LIKE '%USING hnsw%vector_ip_ops%' AS hnsw_ip FROM pg_indexes WHERE indexname = 'memories_hnsw_32';
CREATE TEMP TABLE truth_ip AS
  SELECT q.q, (SELECT array_agg(id ORDER BY d) FROM (
      SELECT m.id, (m.embedding::vector(32)) <#> (q.v::vector(32)) AS d FROM ctx.memories m
       WHERE m.metadata @> '{"bucket": 8}' AND m.valid_to IS NULL ORDER BY d LIMIT 10) t) AS ids
    FROM queries q;
SET ctxstore.exact_recall_max_candidates = 0;
CREATE TEMP TABLE ip_index AS
  SELECT q.q, r.id, r.similarity FROM queries q,
         LATERAL ctx.recall('{bench}', q.v, k => 10, filter => '{"bucket": 8}', weights => '{"recency": 0, "importance": 0}') r;
SELECT * FROM pg_temp.recall_paths();
SELECT round(count(*) FILTER (WHERE r.id = ANY(t.ids)) / 200.0, 2) >= 0.95 AS hnsw_ip_recall_at_10_ok,
       bool_and(abs(r.similarity + (m.embedding::vector(32) <#> q.v::vector(32))) < 1e-5) AS scored_ip
  FROM ip_index r JOIN truth_ip t USING (q) JOIN queries q USING (q) JOIN ctx.memories m ON m.id = r.id;
SET ctxstore.exact_recall_max_candidates = 1000000;
SELECT bool_and(r.ids = t.ids) AS exact_ip_matches_brute_force
  FROM truth_ip t JOIN queries q USING (q),
       LATERAL (SELECT array_agg(id ORDER BY similarity DESC) AS ids
                  FROM ctx.recall('{bench}', q.v, k => 10, filter => '{"bucket": 8}',
                                  weights => '{"recency": 0, "importance": 0}')) r;
SELECT * FROM pg_temp.recall_paths();
RESET ctxstore.exact_recall_max_candidates;
-- (the metrics rank this data differently: a recall that searched or scored by another metric
-- than the index's would not match the brute force above)
SELECT count(*) FILTER (WHERE t.ids <> l.ids) AS l2_differs_from_cosine,
       count(*) FILTER (WHERE i.ids <> l.ids) AS ip_differs_from_l2
  FROM truth_l2 l JOIN truth_ip i USING (q) JOIN queries q USING (q),
       LATERAL (SELECT array_agg(id ORDER BY d) AS ids FROM (
                  SELECT m.id, (m.embedding::vector(32)) <=> (q.v::vector(32)) AS d FROM ctx.memories m
                   WHERE m.metadata @> '{"bucket": 8}' AND m.valid_to IS NULL ORDER BY d LIMIT 10) c) t;
SELECT ctx.create_vector_index(4000);
\echo :SQLSTATE

-- A filter every candidate matches, read by an application role: under row-level security the
-- planner guesses a handful of rows for a metadata condition (where the exact scan would be
-- cheaper than the graph walk); the recall counts the candidates, as far as it matters, and
-- takes the index
SELECT count(ctx.remember('{chat}', 'turn ' || i,
                          (SELECT array_agg((random() - 0.5)::real) FROM generate_series(1, 32) WHERE i > 0),
                          '{"source": "chat"}'))
  FROM generate_series(1, 3000) i;
DROP ROLE IF EXISTS regress_recall_app;
CREATE ROLE regress_recall_app;
SELECT ctx.grant_access('regress_recall_app');
CREATE FUNCTION pg_temp.planned_rows(sql text) RETURNS float8 LANGUAGE plpgsql AS $$
DECLARE plan json;
BEGIN
  EXECUTE 'EXPLAIN (FORMAT JSON) ' || sql INTO plan;
  RETURN (plan -> 0 -> 'Plan' ->> 'Plan Rows')::float8;
END $$;
SELECT v AS q1 FROM queries WHERE q = 1 \gset
SELECT * FROM pg_temp.recall_paths();
SET ROLE regress_recall_app;
SELECT pg_temp.planned_rows('SELECT 1 FROM ctx.memories m WHERE m.namespace = ''{chat}'' AND m.valid_to IS NULL AND m.metadata @> ''{"source": "chat"}''') < 100 AS planner_guesses_few;
SELECT count(*) FROM ctx.recall('{chat}', :'q1'::real[], k => 10, filter => '{"source": "chat"}');
RESET ROLE;
DROP OWNED BY regress_recall_app;
DROP ROLE regress_recall_app;
SELECT * FROM pg_temp.recall_paths();

-- Ranked by similarity alone, the index walk reads its winners' rows in the same statement (no
-- second lookup by key): each column must be the stored row's, as the exact path (which looks
-- the winners up by key) returns it, the embedding the stored one, the similarity the metric's;
-- an encrypted namespace's memories come back opened. The index path is forced (threshold 0).
SELECT ctx.create_vector_index(32, 'cosine');
SET ctxstore.master_key = 'k1:000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f';
SELECT ctx.encrypt_namespace('{sealed}');
SELECT count(ctx.remember('{sealed}', 'secret ' || i,
                          (SELECT array_agg((random() - 0.5)::real) FROM generate_series(1, 32) WHERE i > 0),
                          jsonb_build_object('n', i)))
  FROM generate_series(1, 300) i;
ANALYZE ctx.memories;
SET ctxstore.exact_recall_max_candidates = 0;
CREATE TEMP TABLE walked AS
  SELECT q.q, r.* FROM queries q,
         LATERAL ctx.recall('{chat}', q.v, k => 5, include_embedding => true,
                            weights => '{"similarity": 1, "text": 0, "recency": 0, "importance": 0}') r;
CREATE TEMP TABLE walked_sealed AS
  SELECT q.q, r.* FROM queries q,
         LATERAL ctx.recall('{sealed}', q.v, k => 5,
                            weights => '{"similarity": 1, "text": 0, "recency": 0, "importance": 0}') r;
SELECT * FROM pg_temp.recall_paths();
SET ctxstore.exact_recall_max_candidates = 1000000;
CREATE TEMP TABLE looked_up AS
  SELECT q.q, r.* FROM queries q,
         LATERAL ctx.recall('{chat}', q.v, k => 5, include_embedding => true,
                            weights => '{"similarity": 1, "text": 0, "recency": 0, "importance": 0}') r;
SELECT * FROM pg_temp.recall_paths();
RESET ctxstore.exact_recall_max_candidates;
-- (the graph is approximate: most winners, not all, are the exact path's too; pgvector draws
-- its levels at random, so counts are compared, not printed)
SELECT count(*) AS walked_rows,
       count(*) FILTER (WHERE (w.namespace, w.content, w.metadata, w.importance, w.similarity, w.text_rank,
                               w.score, w.created_at, w.embedding)
                          IS NOT DISTINCT FROM (l.namespace, l.content, l.metadata, l.importance, l.similarity,
                                                l.text_rank, l.score, l.created_at, l.embedding))
         = count(l.id) AS rows_found_both_ways_equal,
       count(l.id) >= 90 AS mostly_found_both_ways,
       bool_and(w.embedding = m.embedding::real[] AND w.content = m.content) AS stored_values,
       bool_and(abs(w.similarity - (1 - (m.embedding::vector(32) <=> q.v::vector(32)))) < 1e-5) AS scored_cosine
  FROM walked w JOIN queries q USING (q) JOIN ctx.memories m ON m.id = w.id AND m.valid_to IS NULL
  LEFT JOIN looked_up l ON l.q = w.q AND l.id = w.id;
SELECT count(*) AS sealed_rows,
       bool_and(w.content = 'secret ' || (w.metadata ->> 'n')) AS opened,
       bool_and(m.content IS NULL AND m.content_enc IS NOT NULL) AS stored_sealed,
       bool_and(w.embedding IS NULL) AS no_embedding_unasked
  FROM walked_sealed w JOIN ctx.memories m ON m.id = w.id AND m.valid_to IS NULL;
