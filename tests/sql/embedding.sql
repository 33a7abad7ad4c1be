-- ctx.embedding: the type memories store embeddings in. Text and binary I/O, the type
-- modifier, the casts from and to arrays, and what it refuses (with pgvector's SQLSTATEs).
CREATE EXTENSION IF NOT EXISTS ctxstore;
\set VERBOSITY default

-- text: pgvector's form in and out; a real[] literal is read too
SELECT '[1,2.5,-3]'::ctx.embedding AS bracketed, '{0.5, 0.25}'::ctx.embedding AS braced,
       ' [ 1e-3 , +4 ] '::ctx.embedding AS spaced;
-- shortest decimals that read back to the same float4
SELECT '[0.1,0.3333333432674408,1e-7,3.4e38,-0]'::ctx.embedding AS shortest;
SELECT e::text::ctx.embedding::text = e::text AS text_round_trip
  FROM (SELECT array_agg(sin(i)::real)::ctx.embedding AS e FROM generate_series(1, 384) i) s;

-- the type modifier is the dimension
SELECT '[1,2,3]'::ctx.embedding(3) AS declared;
SELECT '[1,2]'::ctx.embedding(3);
\echo :SQLSTATE
CREATE TEMPORARY TABLE sized (e ctx.embedding(2));
INSERT INTO sized VALUES ('[1,2]'), ('{3,4}'::real[]);
INSERT INTO sized VALUES ('[1,2,3]');
\echo :SQLSTATE
SELECT format_type(atttypid, atttypmod) FROM pg_attribute WHERE attrelid = 'sized'::regclass AND attname = 'e';
SELECT 1::text::ctx.embedding(0);
\echo :SQLSTATE
CREATE TEMPORARY TABLE too_wide (e ctx.embedding(16001));
\echo :SQLSTATE
CREATE TEMPORARY TABLE two_mods (e ctx.embedding(2, 3));
\echo :SQLSTATE

-- casts: real[] and float8[] in, real[] out; functions that take real[] take embeddings
SELECT '{1,2}'::real[]::ctx.embedding AS from_real, '{1.5,2}'::float8[]::ctx.embedding AS from_double,
       '[1,2]'::ctx.embedding::real[] AS to_real, ctx.embedding_dims('[1,2,3]') AS dims;
SELECT ctx.embedding_similarity('[1,0]'::ctx.embedding, '{0.6,0.8}'::real[]) AS mixed;
SELECT '{1,NULL}'::real[]::ctx.embedding;
\echo :SQLSTATE
SELECT '{1e300}'::float8[]::ctx.embedding;
\echo :SQLSTATE
SELECT '{}'::real[]::ctx.embedding;
\echo :SQLSTATE
SELECT '{{1,2},{3,4}}'::real[]::ctx.embedding;
\echo :SQLSTATE
SELECT '{1,Infinity}'::float8[]::ctx.embedding;
\echo :SQLSTATE
SELECT '{1,NaN}'::real[]::ctx.embedding;
\echo :SQLSTATE

-- what the text form refuses
SELECT '1,2'::ctx.embedding;
\echo :SQLSTATE
SELECT '[1,2'::ctx.embedding;
\echo :SQLSTATE
SELECT '[1,,2]'::ctx.embedding;
\echo :SQLSTATE
SELECT '[1,2] junk'::ctx.embedding;
\echo :SQLSTATE
SELECT '[]'::ctx.embedding;
\echo :SQLSTATE
SELECT '[1,NaN]'::ctx.embedding;
\echo :SQLSTATE
SELECT '[1,-Infinity]'::ctx.embedding;
\echo :SQLSTATE
SELECT '[1e39]'::ctx.embedding;
\echo :SQLSTATE
SELECT ('[' || repeat('0,', 16000) || '0]')::ctx.embedding;
\echo :SQLSTATE
SELECT ctx.embedding_dims(('[' || repeat('0,', 15999) || '0]')::ctx.embedding) AS largest;

-- binary: send writes pgvector's form (dim int16, 0 int16, big-endian float4s), and COPY
-- BINARY reads it back bit for bit
SELECT ctx.embedding_send('[1,-2]') AS sent;
CREATE TEMPORARY TABLE original AS
SELECT i, array_agg(((random() - 0.5) * 10 ^ (random() * 20 - 10))::real)::ctx.embedding AS e
  FROM generate_series(1, 50) i, generate_series(1, 64) d GROUP BY i;
SELECT '/tmp/ctxstore_regress_embedding_' || pg_backend_pid() || '.bin' AS binary_file \gset
COPY original TO :'binary_file' (FORMAT binary);
CREATE TEMPORARY TABLE copied (i int, e ctx.embedding(64));
COPY copied FROM :'binary_file' (FORMAT binary);
SELECT count(*) AS rows, bool_and(ctx.embedding_send(o.e) = ctx.embedding_send(c.e)) AS bit_equal
  FROM original o JOIN copied c USING (i);
-- a binary value of the wrong dimension is refused on the way in
CREATE TEMPORARY TABLE narrow (i int, e ctx.embedding(3));
COPY narrow FROM :'binary_file' (FORMAT binary);
\echo :SQLSTATE

-- stored values are read in place: detoasted, compared, never converted
CREATE TEMPORARY TABLE stored (e ctx.embedding);
INSERT INTO stored SELECT array_agg(i::real)::ctx.embedding FROM generate_series(1, 3000) i;
SELECT pg_column_size(e) AS bytes, ctx.embedding_dims(e) AS dims,
       ctx.embedding_similarity(e, e) AS self_cosine FROM stored;
