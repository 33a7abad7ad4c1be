-- ctx.embedding against pgvector's own functions: the same bytes, so the casts have no
-- function, pgvector reads a stored embedding as a vector, and the distances agree.
CREATE EXTENSION IF NOT EXISTS ctxstore;
\set VERBOSITY default
-- all in one transaction, rolled back at the end: the tests after this one run without pgvector
BEGIN;
CREATE EXTENSION vector;

-- the casts with arrays belong to the extension; those with vector come with the first
-- ctx.create_vector_index, binary (no function), and depend automatically on ctx.embedding
SELECT c.castsource::regtype, c.casttarget::regtype, c.castmethod, c.castcontext
  FROM pg_cast c WHERE 'ctx.embedding'::regtype IN (c.castsource, c.casttarget) ORDER BY 1::text, 2::text;
SELECT ctx.create_vector_index(48);
SELECT c.castsource::regtype, c.casttarget::regtype, c.castmethod, c.castcontext,
       (SELECT string_agg(d.deptype::text || ' ' || pg_describe_object(d.refclassid, d.refobjid, 0), ', ' ORDER BY 1)
          FROM pg_depend d WHERE d.classid = 'pg_cast'::regclass AND d.objid = c.oid) AS depends_on
  FROM pg_cast c WHERE 'ctx.embedding'::regtype IN (c.castsource, c.casttarget) AND c.castmethod = 'b'
 ORDER BY 1::text, 2::text;
-- the same physical representation (what a binary cast needs)
SELECT a.typlen = b.typlen AND a.typalign = b.typalign AND a.typbyval = b.typbyval AS same_layout
  FROM pg_type a, pg_type b WHERE a.oid = 'ctx.embedding'::regtype AND b.oid = 'vector'::regtype;

-- pgvector reads ctx.embedding's bytes, and ctx.embedding reads pgvector's
CREATE TEMPORARY TABLE pairs AS
SELECT i, e, e::vector AS v
  FROM (SELECT i, array_agg(((random() - 0.5) * 2)::real)::ctx.embedding AS e
          FROM generate_series(1, 200) i, generate_series(1, 48) d GROUP BY i) s;
SELECT count(*) AS pairs,
       bool_and(vector_dims(e::vector) = ctx.embedding_dims(e)) AS dims_agree,
       bool_and(ctx.embedding_send(e::vector::text::ctx.embedding) = ctx.embedding_send(e)) AS text_reads_back,
       bool_and(e::text::vector = v) AS pgvector_reads_our_text,
       bool_and(('[1,2]'::vector)::ctx.embedding::text = '[1,2]') AS back,
       bool_and(vector_send(v) = ctx.embedding_send(e)) AS same_binary
  FROM pairs;
-- the distances pgvector computes from the stored embedding equal ctx.embedding_similarity's
SELECT bool_and(abs((1 - (a.e <=> b.e)) - ctx.embedding_similarity(a.e, b.e, 'cosine')) < 1e-5) AS cosine,
       bool_and(abs(1 / (1 + (a.e <-> b.e)) - ctx.embedding_similarity(a.e, b.e, 'l2')) < 1e-5) AS l2,
       bool_and(abs(-(a.e <#> b.e) - ctx.embedding_similarity(a.e, b.e, 'inner_product')) < 1e-4) AS inner_product
  FROM pairs a JOIN pairs b ON b.i = a.i % 200 + 1;
-- a vector inserted into an embedding column (assignment cast) keeps its bytes
CREATE TEMPORARY TABLE landed (i int, e ctx.embedding(48));
INSERT INTO landed SELECT i, v FROM pairs;
SELECT count(*) AS landed, bool_and(ctx.embedding_send(l.e) = vector_send(p.v)) AS bit_equal
  FROM landed l JOIN pairs p USING (i);

-- the HNSW index reads the stored value through the binary cast and pgvector's dimension check
SELECT ctx.remember('{emb}', 'm' || i, e::real[]) IS NOT NULL AS stored FROM pairs WHERE i <= 3;
SELECT pg_get_indexdef('ctx.memories_hnsw_48'::regclass) ~ 'embedding\)::vector\(48\)' AS expression;
SET enable_seqscan = off;
EXPLAIN (COSTS OFF)
SELECT id FROM ctx.memories m
 WHERE ctx.embedding_dims(m.embedding) = 48 AND m.valid_to IS NULL
 ORDER BY (m.embedding::vector(48)) <=> ('[1' || repeat(',0', 47) || ']')::vector(48) LIMIT 3;
RESET enable_seqscan;

-- a cast dropped by hand while its index stays: the next ctx.create_vector_index makes it again
DROP CAST (ctx.embedding AS vector);
SELECT ctx.create_vector_index(48);
SELECT count(*) AS binary_casts FROM pg_cast
 WHERE 'ctx.embedding'::regtype IN (castsource, casttarget) AND castmethod = 'b';
-- making a cast takes a superuser; without one the call says so (42501), before any work
SAVEPOINT unprivileged;
DROP CAST (vector AS ctx.embedding);
CREATE ROLE embedding_owner;
GRANT USAGE ON SCHEMA ctx TO embedding_owner;
SET ROLE embedding_owner;
SELECT ctx.create_vector_index(48);
\echo :SQLSTATE
ROLLBACK TO unprivileged;

-- pgvector dropped: the casts and the index go, the memories stay; installed again, the next
-- ctx.create_vector_index makes the casts again
DROP TABLE pairs, landed;
-- (terse: the order in which the dependent objects are listed is the catalog's)
\set VERBOSITY terse
SAVEPOINT refused;
DROP EXTENSION vector;
\echo :SQLSTATE
ROLLBACK TO refused;
SET client_min_messages = warning;
DROP EXTENSION vector CASCADE;
RESET client_min_messages;
\set VERBOSITY default
SELECT count(*) AS memories_kept FROM ctx.memories WHERE namespace = '{emb}';
SELECT count(*) AS casts_left FROM pg_cast
 WHERE 'ctx.embedding'::regtype IN (castsource, casttarget) AND castmethod = 'b';
SELECT count(*) AS recalled_exactly FROM ctx.recall('{emb}', query_embedding => (SELECT embedding::real[] FROM ctx.memories WHERE content = 'm1'), k => 2);
CREATE EXTENSION vector;
SELECT ctx.create_vector_index(48);
SELECT count(*) AS casts FROM pg_cast
 WHERE 'ctx.embedding'::regtype IN (castsource, casttarget) AND castmethod = 'b';
-- DROP EXTENSION ctxstore takes its casts with it, and leaves pgvector
SAVEPOINT kept;
DROP EXTENSION ctxstore;
SELECT count(*) AS casts_left FROM pg_cast c JOIN pg_type t ON t.oid IN (c.castsource, c.casttarget)
 WHERE t.typname = 'embedding';
SELECT extname FROM pg_extension WHERE extname = 'vector';
ROLLBACK TO kept;
ROLLBACK;
