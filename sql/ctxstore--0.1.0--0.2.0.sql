-- ctxstore 0.1.0 -> 0.2.0
\echo Use "ALTER EXTENSION ctxstore UPDATE TO '0.2.0'" to load this file. \quit

-- pg_dump keeps the role bindings of tenants (they are data).
SELECT pg_catalog.pg_extension_config_dump('ctx.tenant_roles', '');

-- The audit chain's head row is now written by the first seal, so that restoring a dump into a
-- new install does not collide with an install-time row (existing rows stay as they are).
-- Chains every committed, unsealed audit row after the head, in id order. Concurrent callers
-- wait for each other; returns how many rows were sealed.
CREATE OR REPLACE FUNCTION ctx.seal_audit() RETURNS bigint
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $body$
DECLARE
    seq bigint;
    head bytea;
    r ctx.audit_log;
    sealed bigint := 0;
BEGIN
    SELECT last_seq, last_hash INTO seq, head FROM ctx.audit_chain FOR UPDATE;
    IF NOT FOUND THEN
        INSERT INTO ctx.audit_chain VALUES (true, 0, sha256('ctxstore audit log'::bytea)) ON CONFLICT DO NOTHING;
        SELECT last_seq, last_hash INTO seq, head FROM ctx.audit_chain FOR UPDATE;
    END IF;
    FOR r IN SELECT * FROM ctx.audit_log WHERE chain_seq IS NULL ORDER BY id LOOP
        seq := seq + 1;
        r.row_hash := ctx.audit_row_hash(r);
        head := sha256(head || r.row_hash);
        UPDATE ctx.audit_log SET row_hash = r.row_hash, chain_seq = seq, chain_hash = head WHERE id = r.id;
        sealed := sealed + 1;
    END LOOP;
    UPDATE ctx.audit_chain SET last_seq = seq, last_hash = head;
    RETURN sealed;
END
$body$;

-- Every C function, re-pointed at this version's library (scripts/upgrade_functions.py).
CREATE OR REPLACE FUNCTION "append"(
	"context_id" uuid,
	"role" TEXT,
	"content" TEXT,
	"metadata" jsonb DEFAULT '{}'
) RETURNS bigint
VOLATILE PARALLEL UNSAFE
LANGUAGE c
AS 'ctxstore-0.2.0', 'append_wrapper';

CREATE OR REPLACE FUNCTION "append_many"(
	"context_id" uuid,
	"messages" jsonb
) RETURNS SETOF bigint
VOLATILE PARALLEL UNSAFE
LANGUAGE c
AS 'ctxstore-0.2.0', 'append_many_wrapper';

CREATE OR REPLACE FUNCTION "build_context"(
	"context_id" uuid,
	"max_tokens" INT,
	"query_embedding" real[] DEFAULT NULL,
	"query_text" TEXT DEFAULT NULL,
	"options" jsonb DEFAULT '{}'
) RETURNS TABLE (
	"position" INT,
	"section" TEXT,
	"role" TEXT,
	"content" TEXT,
	"tokens" INT,
	"source" jsonb
)
VOLATILE PARALLEL UNSAFE
LANGUAGE c
AS 'ctxstore-0.2.0', 'build_context_wrapper';

CREATE OR REPLACE FUNCTION "build_context_json"(
	"context_id" uuid,
	"max_tokens" INT,
	"query_embedding" real[] DEFAULT NULL,
	"query_text" TEXT DEFAULT NULL,
	"options" jsonb DEFAULT '{}'
) RETURNS jsonb
VOLATILE PARALLEL UNSAFE
LANGUAGE c
AS 'ctxstore-0.2.0', 'build_context_json_wrapper';

CREATE OR REPLACE FUNCTION "compact"(
	"context_id" uuid,
	"summary" TEXT,
	"keep_last" INT DEFAULT 0
) RETURNS bigint
VOLATILE PARALLEL UNSAFE
LANGUAGE c
AS 'ctxstore-0.2.0', 'compact_wrapper';

CREATE OR REPLACE FUNCTION "configure_context_processors"(
	"context_id" uuid,
	"config" jsonb
) RETURNS jsonb
VOLATILE PARALLEL UNSAFE
LANGUAGE c
AS 'ctxstore-0.2.0', 'configure_context_processors_wrapper';

CREATE OR REPLACE FUNCTION "configure_namespace_processors"(
	"namespace" TEXT[],
	"config" jsonb
) RETURNS jsonb
VOLATILE PARALLEL UNSAFE
LANGUAGE c
AS 'ctxstore-0.2.0', 'configure_namespace_processors_wrapper';

CREATE OR REPLACE FUNCTION "count_tokens"(
	"content" TEXT,
	"encoding" TEXT DEFAULT NULL
) RETURNS INT
STABLE PARALLEL SAFE
LANGUAGE c
AS 'ctxstore-0.2.0', 'count_tokens_wrapper';

CREATE OR REPLACE FUNCTION "create_context"(
	"name" TEXT DEFAULT NULL,
	"metadata" jsonb DEFAULT '{}',
	"metadata_schema" TEXT DEFAULT NULL,
	"processors" jsonb DEFAULT '{}',
	"encrypted" bool DEFAULT NULL
) RETURNS uuid
VOLATILE PARALLEL UNSAFE
LANGUAGE c
AS 'ctxstore-0.2.0', 'create_context_wrapper';

CREATE OR REPLACE FUNCTION "create_vector_index"(
	"dims" INT,
	"metric" TEXT DEFAULT 'cosine'
) RETURNS TEXT
VOLATILE PARALLEL UNSAFE
LANGUAGE c
AS 'ctxstore-0.2.0', 'create_vector_index_wrapper';

CREATE OR REPLACE FUNCTION "delete_context"(
	"context_id" uuid,
	"cascade" bool DEFAULT false,
	"forget_memories" bool DEFAULT false
) RETURNS bigint
VOLATILE PARALLEL UNSAFE
LANGUAGE c
AS 'ctxstore-0.2.0', 'delete_context_wrapper';

CREATE OR REPLACE FUNCTION "delete_key"(
	"namespace" TEXT[],
	"key" TEXT
) RETURNS bool
VOLATILE PARALLEL UNSAFE
LANGUAGE c
AS 'ctxstore-0.2.0', 'delete_key_wrapper';

CREATE OR REPLACE FUNCTION "disable_processor"(
	"name" TEXT
) RETURNS void
VOLATILE PARALLEL UNSAFE
LANGUAGE c
AS 'ctxstore-0.2.0', 'disable_processor_wrapper';

CREATE OR REPLACE FUNCTION "embedding_similarity"(
	"a" real[],
	"b" real[],
	"metric" TEXT DEFAULT 'cosine'
) RETURNS real
IMMUTABLE STRICT PARALLEL SAFE
LANGUAGE c
AS 'ctxstore-0.2.0', 'embedding_similarity_wrapper';

CREATE OR REPLACE FUNCTION "enable_processor"(
	"name" TEXT
) RETURNS void
VOLATILE PARALLEL UNSAFE
LANGUAGE c
AS 'ctxstore-0.2.0', 'enable_processor_wrapper';

CREATE OR REPLACE FUNCTION "encrypt_namespace"(
	"namespace" TEXT[]
) RETURNS void
VOLATILE PARALLEL UNSAFE
LANGUAGE c
AS 'ctxstore-0.2.0', 'encrypt_namespace_wrapper';

CREATE OR REPLACE FUNCTION "forget"(
	"id" uuid
) RETURNS bool
VOLATILE PARALLEL UNSAFE 
LANGUAGE c
AS 'ctxstore-0.2.0', 'forget_id_wrapper';

CREATE OR REPLACE FUNCTION "forget"(
	"namespace" TEXT[],
	"filter" jsonb DEFAULT '{}'
) RETURNS bigint
VOLATILE PARALLEL UNSAFE 
LANGUAGE c
AS 'ctxstore-0.2.0', 'forget_matching_wrapper';

CREATE OR REPLACE FUNCTION "fork"(
	"context_id" uuid,
	"at_seq" bigint DEFAULT NULL
) RETURNS uuid
VOLATILE PARALLEL UNSAFE
LANGUAGE c
AS 'ctxstore-0.2.0', 'fork_wrapper';

CREATE OR REPLACE FUNCTION "get"(
	"namespace" TEXT[],
	"key" TEXT
) RETURNS jsonb
STABLE PARALLEL SAFE
LANGUAGE c
AS 'ctxstore-0.2.0', 'get_wrapper';

CREATE OR REPLACE FUNCTION "history"(
	"context_id" uuid
) RETURNS TABLE (
	"seq" bigint,
	"role" TEXT,
	"content" TEXT,
	"metadata" jsonb,
	"tokens" INT,
	"created_at" timestamp with time zone,
	"archived" bool,
	"trace_id" TEXT
)
STABLE PARALLEL SAFE
LANGUAGE c
AS 'ctxstore-0.2.0', 'history_wrapper';

CREATE OR REPLACE FUNCTION "key_cache_stats"() RETURNS TABLE (
	"hits" bigint,
	"misses" bigint,
	"entries" INT
)
STRICT VOLATILE PARALLEL UNSAFE
LANGUAGE c
AS 'ctxstore-0.2.0', 'key_cache_stats_wrapper';

CREATE OR REPLACE FUNCTION "list_namespaces"(
	"prefix" TEXT[] DEFAULT '{}',
	"max_depth" INT DEFAULT NULL
) RETURNS SETOF TEXT[]
STABLE PARALLEL SAFE
LANGUAGE c
AS 'ctxstore-0.2.0', 'list_namespaces_wrapper';

CREATE OR REPLACE FUNCTION "lz4_compress"(
	"content" TEXT
) RETURNS bytea
IMMUTABLE STRICT PARALLEL SAFE
LANGUAGE c
AS 'ctxstore-0.2.0', 'lz4_compress_wrapper';

CREATE OR REPLACE FUNCTION "lz4_decompress"(
	"block" bytea
) RETURNS TEXT
IMMUTABLE STRICT PARALLEL SAFE
LANGUAGE c
AS 'ctxstore-0.2.0', 'lz4_decompress_wrapper';

CREATE OR REPLACE FUNCTION "messages"(
	"context_id" uuid,
	"since_seq" bigint DEFAULT 0,
	"max_rows" INT DEFAULT NULL
) RETURNS TABLE (
	"seq" bigint,
	"role" TEXT,
	"content" TEXT,
	"metadata" jsonb,
	"tokens" INT,
	"created_at" timestamp with time zone
)
STABLE PARALLEL SAFE
LANGUAGE c
AS 'ctxstore-0.2.0', 'messages_wrapper';

CREATE OR REPLACE FUNCTION "metric_samples"() RETURNS TABLE (
	"name" TEXT,
	"labels" jsonb,
	"value" double precision
)
STRICT VOLATILE PARALLEL SAFE
LANGUAGE c
AS 'ctxstore-0.2.0', 'metric_samples_wrapper';

CREATE OR REPLACE FUNCTION "metrics_prometheus"() RETURNS TEXT
STRICT VOLATILE PARALLEL SAFE
LANGUAGE c
AS 'ctxstore-0.2.0', 'metrics_prometheus_wrapper';

CREATE OR REPLACE FUNCTION "migrate_state"(
	"name" TEXT
) RETURNS bigint
VOLATILE PARALLEL UNSAFE
LANGUAGE c
AS 'ctxstore-0.2.0', 'migrate_state_wrapper';

CREATE OR REPLACE FUNCTION "patch"(
	"namespace" TEXT[],
	"key" TEXT,
	"patch" jsonb
) RETURNS jsonb
VOLATILE PARALLEL UNSAFE
LANGUAGE c
AS 'ctxstore-0.2.0', 'patch_wrapper';

CREATE OR REPLACE FUNCTION "processor_config"(
	"context_id" uuid
) RETURNS jsonb
STABLE PARALLEL SAFE
LANGUAGE c
AS 'ctxstore-0.2.0', 'processor_config_wrapper';

CREATE OR REPLACE FUNCTION "put"(
	"namespace" TEXT[],
	"key" TEXT,
	"value" jsonb,
	"schema" TEXT DEFAULT NULL,
	"ttl" interval DEFAULT NULL,
	"expected_version" bigint DEFAULT NULL
) RETURNS bigint
VOLATILE PARALLEL UNSAFE
LANGUAGE c
AS 'ctxstore-0.2.0', 'put_wrapper';

CREATE OR REPLACE FUNCTION "recall"(
	"namespace" TEXT[],
	"query_embedding" real[] DEFAULT NULL,
	"query_text" TEXT DEFAULT NULL,
	"k" INT DEFAULT 10,
	"filter" jsonb DEFAULT '{}',
	"weights" jsonb DEFAULT NULL,
	"as_of" timestamp with time zone DEFAULT NULL,
	"include_descendants" bool DEFAULT true
) RETURNS TABLE (
	"id" uuid,
	"namespace" TEXT[],
	"content" TEXT,
	"metadata" jsonb,
	"importance" real,
	"similarity" real,
	"text_rank" real,
	"score" real,
	"created_at" timestamp with time zone
)
VOLATILE PARALLEL UNSAFE
LANGUAGE c
AS 'ctxstore-0.2.0', 'recall_wrapper';

CREATE OR REPLACE FUNCTION "register_processor"(
	"name" TEXT,
	"stage" TEXT,
	"r#fn" regprocedure,
	"priority" INT DEFAULT 100,
	"scope" jsonb DEFAULT '{}'
) RETURNS void
VOLATILE PARALLEL UNSAFE
LANGUAGE c
AS 'ctxstore-0.2.0', 'register_processor_wrapper';

CREATE OR REPLACE FUNCTION "register_schema"(
	"name" TEXT,
	"version" INT,
	"json_schema" jsonb
) RETURNS void
VOLATILE PARALLEL UNSAFE
LANGUAGE c
AS 'ctxstore-0.2.0', 'register_schema_wrapper';

CREATE OR REPLACE FUNCTION "remember"(
	"namespace" TEXT[],
	"content" TEXT,
	"embedding" real[] DEFAULT NULL,
	"metadata" jsonb DEFAULT '{}',
	"importance" real DEFAULT 0.5,
	"ttl" interval DEFAULT NULL,
	"dedup_threshold" real DEFAULT NULL,
	"source_context" uuid DEFAULT NULL,
	"source_seq" bigint DEFAULT NULL,
	"schema" TEXT DEFAULT NULL
) RETURNS uuid
VOLATILE PARALLEL UNSAFE
LANGUAGE c
AS 'ctxstore-0.2.0', 'remember_wrapper';

CREATE OR REPLACE FUNCTION "reset_metrics"() RETURNS void
STRICT VOLATILE PARALLEL UNSAFE
LANGUAGE c
AS 'ctxstore-0.2.0', 'reset_metrics_wrapper';

CREATE OR REPLACE FUNCTION "rotate_master_key"(
	"new_key_id" TEXT
) RETURNS bigint
VOLATILE PARALLEL UNSAFE
LANGUAGE c
AS 'ctxstore-0.2.0', 'rotate_master_key_wrapper';

CREATE OR REPLACE FUNCTION "search_state"(
	"namespace_prefix" TEXT[],
	"filter" jsonb DEFAULT '{}',
	"max_rows" INT DEFAULT 100,
	"skip" INT DEFAULT 0
) RETURNS TABLE (
	"namespace" TEXT[],
	"key" TEXT,
	"value" jsonb,
	"version" bigint,
	"updated_at" timestamp with time zone
)
STABLE PARALLEL SAFE
LANGUAGE c
AS 'ctxstore-0.2.0', 'search_state_wrapper';

CREATE OR REPLACE FUNCTION "shred"(
	"context_id" uuid,
	"cascade" bool DEFAULT false
) RETURNS bigint
VOLATILE PARALLEL UNSAFE
LANGUAGE c
AS 'ctxstore-0.2.0', 'shred_wrapper';

CREATE OR REPLACE FUNCTION "shred_namespace"(
	"namespace" TEXT[]
) RETURNS bigint
VOLATILE PARALLEL UNSAFE
LANGUAGE c
AS 'ctxstore-0.2.0', 'shred_namespace_wrapper';

CREATE OR REPLACE FUNCTION "sweep"(
	"max_rows" INT DEFAULT 10000
) RETURNS bigint
VOLATILE PARALLEL UNSAFE
LANGUAGE c
AS 'ctxstore-0.2.0', 'sweep_wrapper';

CREATE OR REPLACE FUNCTION "token_window"(
	"context_id" uuid,
	"max_tokens" INT
) RETURNS TABLE (
	"seq" bigint,
	"role" TEXT,
	"content" TEXT,
	"metadata" jsonb,
	"tokens" INT,
	"created_at" timestamp with time zone
)
STABLE PARALLEL RESTRICTED
LANGUAGE c
AS 'ctxstore-0.2.0', 'token_window_wrapper';

CREATE OR REPLACE FUNCTION "unregister_processor"(
	"name" TEXT
) RETURNS void
VOLATILE PARALLEL UNSAFE
LANGUAGE c
AS 'ctxstore-0.2.0', 'unregister_processor_wrapper';

CREATE OR REPLACE FUNCTION "update_memory"(
	"id" uuid,
	"content" TEXT DEFAULT NULL,
	"embedding" real[] DEFAULT NULL,
	"metadata" jsonb DEFAULT NULL,
	"importance" real DEFAULT NULL
) RETURNS uuid
VOLATILE PARALLEL UNSAFE
LANGUAGE c
AS 'ctxstore-0.2.0', 'update_memory_wrapper';

CREATE OR REPLACE FUNCTION "update_working_memory"(
	"context_id" uuid,
	"patch" jsonb
) RETURNS jsonb
VOLATILE PARALLEL UNSAFE
LANGUAGE c
AS 'ctxstore-0.2.0', 'update_working_memory_wrapper';

CREATE OR REPLACE FUNCTION "validate"(
	"name" TEXT,
	"value" jsonb,
	"version" INT DEFAULT NULL
) RETURNS bool
STABLE PARALLEL SAFE
LANGUAGE c
AS 'ctxstore-0.2.0', 'validate_wrapper';

CREATE OR REPLACE FUNCTION "window"(
	"context_id" uuid,
	"last_n" INT
) RETURNS TABLE (
	"seq" bigint,
	"role" TEXT,
	"content" TEXT,
	"metadata" jsonb,
	"tokens" INT,
	"created_at" timestamp with time zone
)
STABLE PARALLEL RESTRICTED
LANGUAGE c
AS 'ctxstore-0.2.0', 'window_wrapper';

CREATE OR REPLACE FUNCTION "working_memory"(
	"context_id" uuid
) RETURNS jsonb
STABLE PARALLEL SAFE
LANGUAGE c
AS 'ctxstore-0.2.0', 'working_memory_wrapper';

CREATE OR REPLACE FUNCTION "audit_trigger"() RETURNS trigger LANGUAGE c AS 'ctxstore-0.2.0', 'audit_trigger_wrapper';

-- Attributes the schema sets after creating functions (CREATE OR REPLACE reset them).
ALTER FUNCTION ctx.audit_trigger() SECURITY DEFINER SET search_path = pg_catalog, pg_temp;
