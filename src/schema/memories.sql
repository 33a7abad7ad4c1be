-- Long-term memory: facts, preferences and episodes in namespaces, with optional embeddings,
-- full-text search, importance, TTL and versions valid over time (for as-of queries).

CREATE TABLE ctx.memories (
    id               uuid NOT NULL,
    tenant           text NOT NULL DEFAULT ctx.current_tenant(),
    version          integer NOT NULL DEFAULT 1 CHECK (version > 0),
    namespace        text[] NOT NULL CHECK (cardinality(namespace) BETWEEN 1 AND 32),
    -- sort key of the namespace (labels joined by U+001F): prefix scans are btree ranges
    ns_key           text COLLATE "C" NOT NULL,
    -- content and metadata are ciphertext (content_enc, metadata_enc) in encrypted namespaces;
    -- metadata is then {} and the full-text vector empty
    content          text,
    content_enc      bytea,
    metadata_enc     bytea,
    -- pgvector's layout: an HNSW index reads it through a cast without a function
    embedding        ctx.embedding,
    metadata         jsonb NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(metadata) = 'object'),
    importance       real NOT NULL DEFAULT 0.5 CHECK (importance >= 0 AND importance <= 1),
    -- where the memory came from; the memory outlives its context unless asked otherwise
    source_context   uuid,
    source_seq       bigint,
    created_at       timestamptz NOT NULL DEFAULT now(),
    last_accessed_at timestamptz NOT NULL DEFAULT now(),
    access_count     bigint NOT NULL DEFAULT 0,
    expires_at       timestamptz,
    -- this version is the memory's content during [valid_from, valid_to); NULL valid_to = current
    valid_from       timestamptz NOT NULL DEFAULT now(),
    valid_to         timestamptz,
        fts              tsvector GENERATED ALWAYS AS (to_tsvector('english'::regconfig, coalesce(content, ''))) STORED,
    -- the registered schema the metadata was validated against, if any
    schema_name      text,
    schema_version   integer,
    -- the W3C trace id of the request that wrote this version (ctxstore.traceparent), if any
    trace_id         text DEFAULT ctx.current_trace_id(),
    -- every key leads with the tenant: no tenant's row can collide with another's
    PRIMARY KEY (tenant, id, version),
    CHECK (num_nonnulls(content, content_enc) = 1),
    -- (no action: ctx.delete_context sets source_context NULL, or forgets the memories)
    FOREIGN KEY (tenant, source_context) REFERENCES ctx.contexts (tenant, id),
    CHECK (valid_to IS NULL OR valid_to >= valid_from)
) WITH (fillfactor = 70);  -- room for HOT updates of access counts: recall never rewrites the vector index

CREATE UNIQUE INDEX memories_current_idx ON ctx.memories (tenant, id) WHERE valid_to IS NULL;
CREATE INDEX memories_ns_idx ON ctx.memories (ns_key, created_at);
CREATE INDEX memories_fts_idx ON ctx.memories USING gin (fts);
CREATE INDEX memories_metadata_idx ON ctx.memories USING gin (metadata jsonb_path_ops);
CREATE INDEX memories_source_idx ON ctx.memories (source_context) WHERE source_context IS NOT NULL;
CREATE INDEX memories_expiry_idx ON ctx.memories (expires_at) WHERE expires_at IS NOT NULL;

-- HNSW indexes made by ctx.create_vector_index, one per embedding dimension.
CREATE TABLE ctx.vector_indexes (
    dims        integer PRIMARY KEY CHECK (dims BETWEEN 1 AND 2000),
    metric      text NOT NULL CHECK (metric IN ('cosine', 'l2', 'inner_product')),
    index_name  text NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now()
);

SELECT pg_catalog.pg_extension_config_dump('ctx.memories', '');
SELECT pg_catalog.pg_extension_config_dump('ctx.vector_indexes', '');
