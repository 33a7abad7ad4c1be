-- Long-term memory: remember, recall (vector / text / hybrid / filter-only), filters, dedup,
-- supersede + as-of, TTL, forget, namespaces. Exact search (no pgvector needed).
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS ctxstore;
RESET client_min_messages;
\pset footer off

SELECT ctx.remember('{user,1,facts}', 'Alice prefers tea over coffee', '{1,0,0}', '{"topic": "drinks", "tags": ["food", "prefs"], "score": 7}', 0.9) IS NOT NULL AS stored;
SELECT ctx.remember('{user,1,facts}', 'Alice lives in Lyon, France', '{0,1,0}', '{"topic": "home", "tags": ["geo"], "score": 3}', 0.6) IS NOT NULL;
SELECT ctx.remember('{user,1,facts}', 'Alice is allergic to peanuts', '{0.9,0.1,0}', '{"topic": "health", "tags": ["food"], "score": 9, "meta": {"source": "chat"}}', 1.0) IS NOT NULL;
SELECT ctx.remember('{user,1,episodes}', 'Alice booked a train to Paris', '{0,0.8,0.2}', '{"topic": "travel", "score": 5}') IS NOT NULL;
SELECT ctx.remember('{user,2,facts}', 'Bob prefers coffee', '{1,0,0}', '{"topic": "drinks"}') IS NOT NULL;
SELECT ctx.remember('{user,1,notes}', 'No embedding for this one about tea ceremonies', metadata => '{"topic": "drinks"}') IS NOT NULL;

-- vector-only: cosine similarity, with the default recency and importance weights (0.2 each):
-- the peanuts memory (0.994, importance 1.0) outranks the tea one (1.000, importance 0.9)
SELECT content, round(similarity::numeric, 3) AS sim, text_rank
  FROM ctx.recall('{user,1}', query_embedding => '{1,0,0}', k => 3);
-- text-only: full-text rank
SELECT content, similarity, round(text_rank::numeric, 3) > 0 AS ranked
  FROM ctx.recall('{user,1}', query_text => 'tea', k => 5);
-- hybrid: text can lift a memory the vector alone ranks lower. By similarity to {0.5,1,0}
-- Lyon (0.894) and Paris (0.868) lead and the peanuts memory is third (0.543); its text rank
-- (ts_rank_cd 0.1, scored 0.1 / 1.1 = 0.091) at weight 5 adds 0.455 and puts it first. Recency
-- and importance are weighted 0 so that only the text weight differs between the two calls.
SELECT content, round(similarity::numeric, 3) AS sim, round(text_rank::numeric, 3) AS text_rank,
       round(score::numeric, 3) AS score
  FROM ctx.recall('{user,1}', '{0.5,1,0}', 'peanuts', k => 3,
                  weights => '{"similarity": 1, "text": 5, "recency": 0, "importance": 0}');
SELECT content, round(similarity::numeric, 3) AS sim, round(text_rank::numeric, 3) AS text_rank,
       round(score::numeric, 3) AS score
  FROM ctx.recall('{user,1}', '{0.5,1,0}', 'peanuts', k => 3,
                  weights => '{"similarity": 1, "text": 0, "recency": 0, "importance": 0}');
-- filter-only: newest first
SELECT content FROM ctx.recall('{user,1}', k => 3);
-- exact namespace only
SELECT content FROM ctx.recall('{user,1}', k => 10, include_descendants => false);
SELECT content FROM ctx.recall('{user,1,facts}', k => 10, include_descendants => false);
SELECT count(*) FROM ctx.recall('{}', k => 100);
-- scores: similarity·1 + recency·0.2 + importance·0.2 (text 0 without a query text)
SELECT content, round(score::numeric, 3) AS score, importance
  FROM ctx.recall('{user,1,facts}', '{1,0,0}', k => 1);
SELECT content, round(score::numeric, 3) AS score
  FROM ctx.recall('{user,1,facts}', '{1,0,0}', k => 1, weights => '{"recency": 0, "importance": 0}');

-- the filter language, on metadata and built-in columns
SELECT string_agg(content, ' | ' ORDER BY content) AS matches, f
  FROM (VALUES ('{"topic": "drinks"}'),
               ('{"topic": {"$ne": "drinks"}}'),
               ('{"score": {"$gt": 5}}'),
               ('{"score": {"$gte": 5, "$lt": 9}}'),
               ('{"score": {"$lte": 3}}'),
               ('{"topic": {"$in": ["home", "health"]}}'),
               ('{"topic": {"$nin": ["home", "health"]}}'),
               ('{"tags": {"$contains": "food"}}'),
               ('{"tags": {"$contains": ["food", "prefs"]}}'),
               ('{"meta.source": "chat"}'),
               ('{"meta": {"$exists": true}}'),
               ('{"tags": {"$exists": false}}'),
               ('{"content": {"$like": "Alice %"}}'),
               ('{"content": {"$ilike": "%TEA%"}}'),
               ('{"importance": {"$gte": 0.9}}'),
               ('{"importance": {"$lte": 0.9}}'),
               ('{"importance": 0.9}'),
               ('{"importance": {"$in": [0.9, 0.1]}}'),
               ('{"$or": [{"topic": "home"}, {"score": 9}]}'),
               ('{"$and": [{"tags": {"$contains": "food"}}, {"$not": {"topic": "drinks"}}]}'),
               ('{"namespace": {"$contains": "episodes"}}')) AS t(f)
  CROSS JOIN LATERAL ctx.recall('{user}', k => 100, filter => f::jsonb) r
 GROUP BY f ORDER BY f;
-- injection attempts are just values or unknown paths
SELECT count(*) FROM ctx.recall('{user}', k => 100, filter => '{"topic": "x''); DELETE FROM ctx.memories; --"}');
SELECT count(*) FROM ctx.recall('{user}', k => 100, filter => '{"a'') OR true; --": 1}');
SELECT count(*) FROM ctx.memories;

-- recall records accesses only when asked to (ctxstore.track_memory_access), and never in a
-- read-only transaction: by default a recall only reads
SELECT access_count AS untracked FROM ctx.memories WHERE content = 'Alice is allergic to peanuts';
SET ctxstore.track_memory_access = on;
SELECT count(*) FROM ctx.recall('{user,1}', '{0.9,0.1,0}', k => 1);
SELECT access_count AS tracked, last_accessed_at > created_at AS touched
  FROM ctx.memories WHERE content = 'Alice is allergic to peanuts';
BEGIN READ ONLY;
SELECT count(*) FROM ctx.recall('{user,1}', '{0.9,0.1,0}', k => 1);
SELECT count(*) FROM ctx.recall('{user,1}', query_text => 'peanuts');
SELECT pg_current_xact_id_if_assigned() IS NULL AS no_transaction_id;
COMMIT;
SELECT access_count AS tracked_not_in_read_only FROM ctx.memories WHERE content = 'Alice is allergic to peanuts';
RESET ctxstore.track_memory_access;

-- dedup: a near-duplicate updates the existing memory instead of adding one
SELECT ctx.remember('{user,1,facts}', 'Alice prefers tea to coffee', '{0.999,0.01,0}', '{"confirmed": true}', 0.5,
                    dedup_threshold => 0.99) AS dedup_id \gset
SELECT count(*) AS current_memories FROM ctx.memories WHERE namespace = '{user,1,facts}' AND valid_to IS NULL;
SELECT content, metadata, importance FROM ctx.memories WHERE id = :'dedup_id' AND valid_to IS NULL;
-- below the threshold: a new memory
SELECT ctx.remember('{user,1,facts}', 'Alice enjoys green tea', '{0.7,0.7,0}', dedup_threshold => 0.99) = :'dedup_id' AS deduplicated;
-- without an embedding, dedup matches identical content
SELECT ctx.remember('{user,1,notes}', 'No embedding for this one about tea ceremonies', dedup_threshold => 0.9)
     = (SELECT id FROM ctx.memories WHERE namespace = '{user,1,notes}') AS same_note;

-- supersede + as-of: the old version stays readable as of when it was valid
SELECT id AS lyon FROM ctx.memories WHERE content = 'Alice lives in Lyon, France' \gset
SELECT clock_timestamp() AS before_move \gset
SELECT ctx.update_memory(:'lyon', content => 'Alice lives in Berlin, Germany', metadata => '{"topic": "home", "moved": true}') = :'lyon' AS same_id;
SELECT content, metadata FROM ctx.recall('{user,1,facts}', k => 10, filter => '{"topic": "home"}');
SELECT content, metadata FROM ctx.recall('{user,1,facts}', k => 10, filter => '{"topic": "home"}', as_of => :'before_move');
SELECT version, content, valid_to IS NULL AS current FROM ctx.memories WHERE id = :'lyon' ORDER BY version;
SELECT content FROM ctx.recall('{user,1,facts}', query_text => 'Lyon', k => 10, as_of => :'before_move');
SELECT count(*) FROM ctx.recall('{user,1,facts}', query_text => 'Lyon', k => 10);
-- importance and embedding updates
SELECT ctx.update_memory(:'lyon', importance => 0.1, embedding => '{0,0.5,0.5}') IS NOT NULL;
SELECT importance, embedding, content FROM ctx.memories WHERE id = :'lyon' AND valid_to IS NULL;

-- TTL: expired memories are never returned
SELECT ctx.remember('{user,1,scratch}', 'short-lived', '{1,0,0}', ttl => '1 millisecond') IS NOT NULL;
SELECT ctx.remember('{user,1,scratch}', 'long-lived', '{1,0,0}', ttl => '1 day') IS NOT NULL;
SELECT pg_sleep(0.05);
SELECT content FROM ctx.recall('{user,1,scratch}', '{1,0,0}');
SELECT content FROM ctx.recall('{user,1,scratch}');
SELECT content FROM ctx.recall('{user,1,scratch}', query_text => 'lived');

-- namespaces
SELECT ctx.list_namespaces();
SELECT ctx.list_namespaces('{user,1}');
SELECT ctx.list_namespaces(max_depth => 2);
SELECT ctx.list_namespaces('{nobody}');

-- forget: one memory (all its versions), or by namespace and filter
SELECT ctx.forget(:'lyon'::uuid);
SELECT ctx.forget(:'lyon'::uuid);
SELECT count(*) FROM ctx.memories WHERE id = :'lyon';
SELECT ctx.forget('{user,1}', '{"topic": "drinks"}');
SELECT ctx.forget('{user,2}'::text[]);
SELECT string_agg(content, ' | ' ORDER BY content) FROM ctx.recall('{}', k => 100);

-- memories sourced from a context outlive it unless asked
SELECT ctx.create_context('source') AS src \gset
SELECT ctx.remember('{user,3}', 'from the chat', source_context => :'src', source_seq => 1) AS m1 \gset
SELECT ctx.delete_context(:'src');
SELECT source_context IS NULL AS detached FROM ctx.memories WHERE id = :'m1';
SELECT ctx.create_context('source 2') AS src2 \gset
SELECT ctx.remember('{user,3}', 'also from a chat', source_context => :'src2') IS NOT NULL;
SELECT ctx.delete_context(:'src2', forget_memories => true);
SELECT content FROM ctx.recall('{user,3}');

-- bad input: specific SQLSTATEs, nothing stored
SELECT ctx.remember('{}', 'x');
\echo :SQLSTATE
SELECT ctx.remember('{a,""}', 'x');
\echo :SQLSTATE
SELECT ctx.remember(NULL, 'x');
\echo :SQLSTATE
SELECT ctx.remember('{a}', NULL);
\echo :SQLSTATE
SELECT ctx.remember('{a}', 'x', '{}');
\echo :SQLSTATE
SELECT ctx.remember('{a}', 'x', '{1,NaN}');
\echo :SQLSTATE
SELECT ctx.remember('{a}', 'x', '{1,Infinity}');
\echo :SQLSTATE
SELECT ctx.remember('{a}', 'x', '{1,NULL}');
\echo :SQLSTATE
SELECT ctx.remember('{user,1,facts}', 'x', '{1,0}');
\echo :SQLSTATE
SELECT ctx.remember('{a}', 'x', importance => 1.5);
\echo :SQLSTATE
SELECT ctx.remember('{a}', 'x', ttl => '-1 day');
\echo :SQLSTATE
SELECT ctx.remember('{a}', 'x', dedup_threshold => 0);
\echo :SQLSTATE
SELECT ctx.remember('{a}', 'x', metadata => '[]');
\echo :SQLSTATE
SELECT * FROM ctx.recall('{user}', '{1,0}');
\echo :SQLSTATE
SELECT * FROM ctx.recall('{user}', k => -1);
\echo :SQLSTATE
SELECT * FROM ctx.recall('{user}', filter => '{"score": {"$gt": true}}');
\echo :SQLSTATE
SELECT * FROM ctx.recall('{user}', filter => '{"$or": [{"a": 1}, {"b": {"$regex": "x"}}]}');
\echo :SQLSTATE
SELECT * FROM ctx.recall('{user}', filter => '[1]');
\echo :SQLSTATE
SELECT * FROM ctx.recall('{user}', weights => '{"similarity": -1}');
\echo :SQLSTATE
SELECT * FROM ctx.recall('{user}', weights => '{"half_life": "soon"}');
\echo :SQLSTATE
SELECT * FROM ctx.recall('{}', include_descendants => false);
\echo :SQLSTATE
SELECT ctx.update_memory('00000000-0000-0000-0000-000000000000', content => 'x');
\echo :SQLSTATE
SELECT ctx.update_memory(NULL);
\echo :SQLSTATE
SELECT ctx.list_namespaces(max_depth => 0);
\echo :SQLSTATE
SELECT ctx.create_vector_index(0);
\echo :SQLSTATE
SELECT ctx.create_vector_index(3, 'hamming');
\echo :SQLSTATE
SELECT ctx.create_vector_index(3);
\echo :SQLSTATE
SELECT count(*) FROM ctx.recall('{}', k => 0);

-- ctx.embedding_similarity: recall's scoring, callable from SQL
SELECT ctx.embedding_similarity('{1,0,0}', '{0.6,0.8,0}') AS cosine,
       ctx.embedding_similarity('{1,0,0}', '{1,0,0}', 'l2') AS l2_same,
       ctx.embedding_similarity('{0,0}', '{3,4}', 'l2') AS l2,
       ctx.embedding_similarity('{1,2}', '{3,4}', 'inner_product') AS ip,
       ctx.embedding_similarity('{1,2}', '{3,4,5}') AS other_dims,
       ctx.embedding_similarity('[1,2]', '{3,4}'::real[]) AS mixed_forms,
       ctx.embedding_similarity(NULL, '{1}') AS null_arg;
-- an embedding has no NULL elements and at least one dimension
SELECT ctx.embedding_similarity('{1,NULL}'::real[], '{3,4}');
\echo :SQLSTATE
SELECT ctx.embedding_similarity('{}', '{}');
\echo :SQLSTATE
SELECT ctx.embedding_similarity('{1}', '{1}', 'hamming');
\echo :SQLSTATE

-- recall under a metric of the caller's choice, with the embeddings on request
SELECT ctx.remember('{metrics}', 'x', '{1,0}') IS NOT NULL AS x, ctx.remember('{metrics}', 'y', '{3,4}') IS NOT NULL AS y;
SELECT content, round(similarity::numeric, 4) AS similarity, embedding
  FROM ctx.recall('{metrics}', '{1,0}', include_embedding => true) ORDER BY content;
SELECT content, round(similarity::numeric, 4) AS l2_similarity, embedding IS NULL AS no_embedding
  FROM ctx.recall('{metrics}', '{1,0}', metric => 'l2') ORDER BY content;
SELECT content FROM ctx.recall('{metrics}', '{1,0}', metric => 'inner_product', k => 1);  -- 3 beats 1
SELECT content FROM ctx.recall('{metrics}', '{1,0}', metric => 'cosine', k => 1);         -- 1 beats 0.6
SELECT ctx.embedding_similarity('{0.3,0.7,0.1}', '{0.3,0.7,0.1}') AS itself;               -- exactly 1
SELECT count(*) FROM ctx.recall('{metrics}', '{1,0}', metric => 'hamming');
\echo :SQLSTATE

-- $between and $not over a list
SELECT ctx.remember('{ranged}', 'r' || n, metadata => jsonb_build_object('n', n)) IS NOT NULL
  FROM generate_series(1, 5) n;
SELECT string_agg(content, ',' ORDER BY content) FROM ctx.recall('{ranged}', filter => '{"n": {"$between": [2, 4]}}');
SELECT string_agg(content, ',' ORDER BY content) FROM ctx.recall('{ranged}', filter => '{"$not": [{"n": {"$gte": 2}}, {"n": {"$lte": 4}}]}');
SELECT count(*) FROM ctx.recall('{ranged}', filter => '{"n": {"$between": [2]}}');
\echo :SQLSTATE
SELECT count(*) FROM ctx.recall('{ranged}', filter => '{"$not": []}');
\echo :SQLSTATE

-- Mastra's operators: $all, $size, $elemMatch, $regex (bounded), $nor
SELECT ctx.remember('{arrays}', content, metadata => m::jsonb) IS NOT NULL
  FROM (VALUES ('a1', '{"tags": ["x", "y", "z"], "items": [{"sku": "s1", "qty": 5}, {"sku": "s2", "qty": 1}], "scores": [81, 95], "name": "Alpha"}'),
               ('a2', '{"tags": ["x"], "items": [{"sku": "s1", "qty": 1}], "scores": [70], "name": "beta"}'),
               ('a3', '{"tags": "x", "name": "Gamma"}')) AS t(content, m);
SELECT string_agg(content, ',' ORDER BY content) AS all_x_y FROM ctx.recall('{arrays}', filter => '{"tags": {"$all": ["x", "y"]}}');
SELECT string_agg(content, ',' ORDER BY content) AS all_none FROM ctx.recall('{arrays}', filter => '{"tags": {"$all": []}}');
SELECT string_agg(content, ',' ORDER BY content) AS size_1 FROM ctx.recall('{arrays}', filter => '{"tags": {"$size": 1}}');
SELECT string_agg(content, ',' ORDER BY content) AS s1_qty_over_2 FROM ctx.recall('{arrays}', filter => '{"items": {"$elemMatch": {"sku": "s1", "qty": {"$gt": 2}}}}');
SELECT string_agg(content, ',' ORDER BY content) AS score_in_80s FROM ctx.recall('{arrays}', filter => '{"scores": {"$elemMatch": {"$gte": 80, "$lt": 90}}}');
SELECT string_agg(content, ',' ORDER BY content) AS elem_of_non_array FROM ctx.recall('{arrays}', filter => '{"name": {"$elemMatch": {"$eq": "Alpha"}}}');
SELECT string_agg(content, ',' ORDER BY content) AS name_regex FROM ctx.recall('{arrays}', filter => '{"name": {"$regex": "^[ab]", "$options": "i"}}');
SELECT string_agg(content, ',' ORDER BY content) AS name_regex_cased FROM ctx.recall('{arrays}', filter => '{"name": {"$regex": "^[ab]"}}');
SELECT string_agg(content, ',' ORDER BY content) AS nor FROM ctx.recall('{arrays}', filter => '{"$nor": [{"name": "Alpha"}, {"tags": {"$size": 1}}]}');
SELECT count(*) FROM ctx.recall('{arrays}', filter => '{"name": {"$regex": "(a)\\1"}}');
\echo :SQLSTATE
SELECT count(*) FROM ctx.recall('{arrays}', filter => '{"name": {"$options": "i"}}');
\echo :SQLSTATE
SELECT count(*) FROM ctx.recall('{arrays}', filter => '{"tags": {"$size": -1}}');
\echo :SQLSTATE
SELECT string_agg(content, ',' ORDER BY content) AS not_size_1 FROM ctx.recall('{arrays}', filter => '{"tags": {"$not": {"$size": 1}}}');

-- ctx.remember_many: one namespace, many memories, ids in input order; each one as
-- ctx.remember would store it (embedding, metadata, importance, source, TTL, schema)
SELECT ctx.create_context('many-source') AS many_ctx \gset
SELECT position, id IS NOT NULL AS stored FROM ctx.remember_many('{many}', jsonb_build_array(
    '{"content": "first", "embedding": [1, 0, 0], "metadata": {"k": 1}, "importance": 0.9}'::jsonb,
    jsonb_build_object('content', 'second', 'embedding', '[0, 1, 0]'::jsonb, 'source_context', :'many_ctx', 'source_seq', 7),
    '{"content": "third"}'::jsonb), ttl => '1 day');
SELECT content, embedding, metadata, importance, source_context = :'many_ctx' AS from_ctx, source_seq,
       expires_at BETWEEN now() + interval '23 hours' AND now() + interval '25 hours' AS ttl_set
  FROM ctx.memories WHERE namespace = '{many}' ORDER BY content;
-- the ids returned are the rows stored, in input order
CREATE TEMP TABLE many_ids AS
  SELECT * FROM ctx.remember_many('{many}', '[{"content": "x1"}, {"content": "x2"}, {"content": "x3"}]');
SELECT string_agg(m.content, ',' ORDER BY r.position) AS in_order
  FROM many_ids r JOIN ctx.memories m ON m.id = r.id;
SELECT content FROM ctx.recall('{many}', '{0,1,0}', k => 1);
-- an empty array stores nothing
SELECT count(*) FROM ctx.remember_many('{many}', '[]');
-- bad elements name their position; nothing of the call is stored
SELECT count(*) AS before_bad FROM ctx.memories WHERE namespace = '{many}';
SELECT * FROM ctx.remember_many('{many}', '[{"content": "ok"}, {"content": "bad", "importance": 2}]');
\echo :SQLSTATE
SELECT * FROM ctx.remember_many('{many}', '[{"content": "ok"}, {"embedding": [1, 0, 0]}]');
\echo :SQLSTATE
SELECT * FROM ctx.remember_many('{many}', '[{"content": "a", "embedding": [1, 0]}]');
\echo :SQLSTATE
SELECT * FROM ctx.remember_many('{many}', '[{"content": "a", "embedding": [1, 0, 0]}, {"content": "b", "embedding": [1, 0]}]');
\echo :SQLSTATE
SELECT * FROM ctx.remember_many('{many}', '[{"content": "a", "embedding": [1, "x", 0]}]');
\echo :SQLSTATE
SELECT * FROM ctx.remember_many('{many}', '[{"content": "a", "colour": "red"}]');
\echo :SQLSTATE
SELECT * FROM ctx.remember_many('{many}', '[{"content": "a", "importance": null}]');
\echo :SQLSTATE
SELECT * FROM ctx.remember_many('{many}', '[{"content": "a", "source_context": "7-0ce2daa-5a32-4635-a913-e8dd47ea6dbd"}]');
\echo :SQLSTATE
SELECT * FROM ctx.remember_many('{many}', '[{"content": "a", "source_context": "not-a-uuid"}]');
\echo :SQLSTATE
SELECT * FROM ctx.remember_many('{many}', '{"content": "a"}');
\echo :SQLSTATE
SELECT * FROM ctx.remember_many('{many}', NULL);
\echo :SQLSTATE
-- embeddings sent apart (ctx.embedding[]): one per element, never two for one element, one
-- dimension, a one-dimensional array
SELECT * FROM ctx.remember_many('{many}', '[{"content": "a"}]', embeddings => ARRAY['[1,0,0]'::ctx.embedding, '[0,1,0]']);
\echo :SQLSTATE
SELECT * FROM ctx.remember_many('{many}', '[{"content": "a"}, {"content": "b"}]', embeddings => '{}');
\echo :SQLSTATE
SELECT * FROM ctx.remember_many('{many}', '[{"content": "a", "embedding": [1, 0, 0]}]', embeddings => ARRAY['[1,0,0]'::ctx.embedding]);
\echo :SQLSTATE
SELECT * FROM ctx.remember_many('{many}', '[{"content": "a"}, {"content": "b", "embedding": [1, 0]}]', embeddings => ARRAY['[1,0,0]'::ctx.embedding, NULL]);
\echo :SQLSTATE
SELECT * FROM ctx.remember_many('{many}', '[{"content": "a"}]', embeddings => ARRAY['[1,0]'::ctx.embedding]);
\echo :SQLSTATE
SELECT * FROM ctx.remember_many('{many}', '[{"content": "a"}, {"content": "b"}]', embeddings => ARRAY[ARRAY['[1,0,0]'::ctx.embedding], ARRAY['[0,1,0]'::ctx.embedding]]);
\echo :SQLSTATE
SELECT * FROM ctx.remember_many('{many}', '[{"content": "a"}]', embeddings => '[0:0]={"[1,0,0]"}'::ctx.embedding[]);
\echo :SQLSTATE
SELECT count(*) AS after_bad FROM ctx.memories WHERE namespace = '{many}';
-- the binary embeddings are stored as the JSON ones are: element n - 1 takes embeddings[n], a
-- NULL element leaves the JSON's embedding (or none)
SELECT position, id IS NOT NULL AS stored FROM ctx.remember_many('{many,binary}', '[
    {"content": "b1"}, {"content": "b2", "embedding": [0.25, -1.5, 3]}, {"content": "b3"}, {"content": "b4"}]',
    embeddings => ARRAY['[1,0,0]'::ctx.embedding, NULL, '[0.5,0.5,-2e-3]', NULL]);
SELECT content, embedding FROM ctx.memories WHERE namespace = '{many,binary}' ORDER BY content;
SELECT content FROM ctx.recall('{many,binary}', '{0.5,0.5,0}', k => 1);
