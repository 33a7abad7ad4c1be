-- The LLM response cache (LangChain's BaseCache contract): a model's answer to a prompt, by
-- the hash of prompt and model string, per tenant, with an optional time to live. Audited like
-- every table; after ctx.encrypt_cache() a tenant's answers are stored sealed (value_enc), and
-- only the model string, the key hash and the timestamps stay in the clear.

CREATE TABLE ctx.llm_cache (
    tenant      text NOT NULL DEFAULT ctx.current_tenant(),
    -- sha256 of the prompt's length, the prompt and the model string (ctx.cache_key)
    key         bytea NOT NULL CHECK (octet_length(key) = 32),
    llm_string  text NOT NULL,
    value       jsonb NOT NULL,  -- JSON null when sealed (then in value_enc)
    value_enc   bytea,
    created_at  timestamptz NOT NULL DEFAULT now(),
    expires_at  timestamptz,
    PRIMARY KEY (tenant, key)
);
CREATE INDEX llm_cache_expiry_idx ON ctx.llm_cache (expires_at) WHERE expires_at IS NOT NULL;
SELECT pg_catalog.pg_extension_config_dump('ctx.llm_cache', '');
ALTER TABLE ctx.llm_cache ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON ctx.llm_cache
    USING (tenant = ctx.current_tenant()) WITH CHECK (tenant = ctx.current_tenant());
INSERT INTO ctx.audited_tables VALUES ('llm_cache', '{tenant,key}');

-- (the prompt's length first: no two (prompt, model) pairs concatenate to the same bytes)
CREATE FUNCTION ctx.cache_key(prompt text, llm_string text) RETURNS bytea
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $$
    SELECT pg_catalog.sha256(pg_catalog.int8send(pg_catalog.octet_length(prompt)::bigint)
                             || pg_catalog.convert_to(prompt, 'UTF8') || pg_catalog.convert_to(llm_string, 'UTF8'))
$$;

CREATE FUNCTION ctx.cache_lookup(prompt text, llm_string text) RETURNS jsonb
LANGUAGE plpgsql STABLE PARALLEL SAFE AS $body$
#variable_conflict use_column
DECLARE
    caller_tenant text := ctx.current_tenant();
BEGIN
    RETURN (
        SELECT CASE WHEN c.value_enc IS NULL THEN c.value ELSE ctx.cache_unseal(c.key, c.value_enc)::jsonb END
          FROM ctx.llm_cache c
         WHERE c.tenant = caller_tenant AND c.key = ctx.cache_key(cache_lookup.prompt, cache_lookup.llm_string)
           AND (c.expires_at IS NULL OR c.expires_at > pg_catalog.statement_timestamp()));
END
$body$;

CREATE FUNCTION ctx.cache_store(prompt text, llm_string text, value jsonb, ttl interval DEFAULT NULL) RETURNS void
LANGUAGE plpgsql AS $body$
DECLARE
    k bytea;
    sealed bytea;
BEGIN
    IF cache_store.prompt IS NULL OR cache_store.llm_string IS NULL OR cache_store.value IS NULL THEN
        RAISE EXCEPTION 'prompt, llm_string and value must not be NULL' USING ERRCODE = '22004',
            HINT = 'ctx.cache_clear removes entries';
    END IF;
    IF cache_store.ttl IS NOT NULL AND cache_store.ttl <= interval '0' THEN
        RAISE EXCEPTION 'ttl must be positive, not %', cache_store.ttl USING ERRCODE = '22023',
            HINT = 'NULL keeps the entry until ctx.cache_clear';
    END IF;
    k := ctx.cache_key(cache_store.prompt, cache_store.llm_string);
    sealed := ctx.cache_seal(k, cache_store.value::text);
    INSERT INTO ctx.llm_cache AS c (key, llm_string, value, value_enc, expires_at)
    VALUES (k, cache_store.llm_string, CASE WHEN sealed IS NULL THEN cache_store.value ELSE 'null' END, sealed,
            pg_catalog.statement_timestamp() + cache_store.ttl)
    ON CONFLICT ON CONSTRAINT llm_cache_pkey DO UPDATE
       SET llm_string = excluded.llm_string, value = excluded.value, value_enc = excluded.value_enc,
           created_at = excluded.created_at, expires_at = excluded.expires_at;
END
$body$;

CREATE FUNCTION ctx.cache_clear(llm_string text DEFAULT NULL, expired_only boolean DEFAULT false) RETURNS bigint
LANGUAGE plpgsql AS $body$
#variable_conflict use_column
DECLARE
    caller_tenant text := ctx.current_tenant();
    removed bigint;
BEGIN
    WITH gone AS (
        DELETE FROM ctx.llm_cache c
         WHERE c.tenant = caller_tenant
           AND (cache_clear.llm_string IS NULL OR c.llm_string = cache_clear.llm_string)
           AND (NOT coalesce(cache_clear.expired_only, false) OR c.expires_at <= pg_catalog.statement_timestamp())
        RETURNING 1)
    SELECT count(*) INTO removed FROM gone;
    RETURN removed;
END
$body$;
