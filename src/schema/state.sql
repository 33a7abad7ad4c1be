-- Key-value state by namespace and key: versioned JSON documents, patched atomically, with TTLs.
-- Working memory of a context lives here too, in namespace {ctx,working_memory} keyed by context id.

CREATE TABLE ctx.state (
    namespace   text[] NOT NULL CHECK (cardinality(namespace) BETWEEN 1 AND 32),
    ns_key      text COLLATE "C" NOT NULL,  -- sort key of the namespace (see ctx.memories)
    key         text NOT NULL CHECK (key <> ''),
    value       jsonb NOT NULL,
    -- 1 on the first write, +1 on every write; 0 only inside the transaction a patch creates it in
    version     bigint NOT NULL CHECK (version >= 0),
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now(),
    expires_at  timestamptz,
    PRIMARY KEY (ns_key, key)
) WITH (fillfactor = 80);
CREATE INDEX state_value_idx ON ctx.state USING gin (value jsonb_path_ops);
CREATE INDEX state_expiry_idx ON ctx.state (expires_at) WHERE expires_at IS NOT NULL;

SELECT pg_catalog.pg_extension_config_dump('ctx.state', '');
