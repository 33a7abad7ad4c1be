-- Key-value state by namespace and key: versioned JSON documents, patched atomically, with TTLs.
-- Working memory of a context lives here too, in namespace {ctx,working_memory} keyed by context id.

-- The schema registry: JSON Schemas by name and version, and migrations between versions.
CREATE TABLE ctx.schemas (
    name        text NOT NULL CHECK (name <> '' AND length(name) <= 128),
    version     integer NOT NULL CHECK (version > 0),
    json_schema jsonb NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (name, version)
);

CREATE TABLE ctx.schema_migrations (
    name         text NOT NULL,
    from_version integer NOT NULL,
    to_version   integer NOT NULL,
    fn           regprocedure NOT NULL,  -- a function jsonb -> jsonb
    created_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (name, from_version),
    FOREIGN KEY (name, from_version) REFERENCES ctx.schemas (name, version),
    FOREIGN KEY (name, to_version) REFERENCES ctx.schemas (name, version),
    CHECK (to_version > from_version)
);

CREATE FUNCTION ctx.register_migration(name text, from_version integer, to_version integer, fn regprocedure)
RETURNS void LANGUAGE plpgsql AS $body$
BEGIN
    IF register_migration.name IS NULL OR register_migration.from_version IS NULL
       OR register_migration.to_version IS NULL OR register_migration.fn IS NULL THEN
        RAISE EXCEPTION 'name, from_version, to_version and fn must not be NULL'
            USING ERRCODE = '22004', HINT = 'e.g. ctx.register_migration(''profile'', 1, 2, ''profile_v1_to_v2(jsonb)'')';
    END IF;
    IF NOT ctx.bypasses_rls() THEN
        RAISE EXCEPTION 'the schema registry is shared by every tenant: only a superuser or a role with BYPASSRLS changes it'
            USING ERRCODE = '42501', HINT = 'ask the database owner to register the migration';
    END IF;
    IF register_migration.to_version <= register_migration.from_version THEN
        RAISE EXCEPTION 'a migration must go to a later version (% -> %)',
            register_migration.from_version, register_migration.to_version
            USING ERRCODE = '22023', HINT = 'migrations only move values forward';
    END IF;
    IF NOT EXISTS (SELECT 1 FROM ctx.schemas s WHERE s.name = register_migration.name AND s.version = register_migration.from_version)
       OR NOT EXISTS (SELECT 1 FROM ctx.schemas s WHERE s.name = register_migration.name AND s.version = register_migration.to_version) THEN
        RAISE EXCEPTION 'schema "%" has no version % or %', register_migration.name,
            register_migration.from_version, register_migration.to_version
            USING ERRCODE = '42704', HINT = 'register both versions with ctx.register_schema first';
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_proc p
                    WHERE p.oid = register_migration.fn AND p.pronargs = 1
                      AND p.proargtypes[0] = 'jsonb'::regtype AND p.prorettype = 'jsonb'::regtype AND NOT p.proretset) THEN
        RAISE EXCEPTION 'migration function % must take one jsonb and return jsonb', register_migration.fn
            USING ERRCODE = '22023', HINT = 'CREATE FUNCTION f(v jsonb) RETURNS jsonb ...';
    END IF;
    INSERT INTO ctx.schema_migrations AS m (name, from_version, to_version, fn)
    VALUES (register_migration.name, register_migration.from_version, register_migration.to_version, register_migration.fn)
    ON CONFLICT ON CONSTRAINT schema_migrations_pkey
    DO UPDATE SET to_version = excluded.to_version, fn = excluded.fn, created_at = excluded.created_at;
END
$body$;

CREATE TABLE ctx.state (
    tenant      text NOT NULL DEFAULT ctx.current_tenant(),
    namespace   text[] NOT NULL CHECK (cardinality(namespace) BETWEEN 1 AND 32),
    ns_key      text COLLATE "C" NOT NULL,  -- sort key of the namespace (see ctx.memories)
    key         text NOT NULL CHECK (key <> ''),
    value       jsonb NOT NULL,  -- JSON null when the namespace is encrypted (then in value_enc)
    value_enc   bytea,
    -- 1 on the first write, +1 on every write; 0 only inside the transaction a patch creates it in
    version     bigint NOT NULL CHECK (version >= 0),
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now(),
    expires_at  timestamptz,
    -- the registered schema the value was validated against, if any
    schema_name    text,
    schema_version integer,
    -- how many secrets / personal data the write processors replaced, by kind ({"card": 1})
    redacted    jsonb,
    -- the time to live of the last put: ctx.touch restarts it from now
    ttl         interval,
    PRIMARY KEY (tenant, ns_key, key),
    FOREIGN KEY (schema_name, schema_version) REFERENCES ctx.schemas (name, version),
    CHECK ((schema_name IS NULL) = (schema_version IS NULL))
) WITH (fillfactor = 80);
CREATE INDEX state_value_idx ON ctx.state USING gin (value jsonb_path_ops);
CREATE INDEX state_expiry_idx ON ctx.state (expires_at) WHERE expires_at IS NOT NULL;

-- The registry is shared by every tenant: everyone reads it, only roles that bypass row-level
-- security write it.
ALTER TABLE ctx.schemas ENABLE ROW LEVEL SECURITY;
ALTER TABLE ctx.schema_migrations ENABLE ROW LEVEL SECURITY;
CREATE POLICY readable ON ctx.schemas FOR SELECT USING (true);
CREATE POLICY readable ON ctx.schema_migrations FOR SELECT USING (true);

SELECT pg_catalog.pg_extension_config_dump('ctx.schemas', '');
SELECT pg_catalog.pg_extension_config_dump('ctx.schema_migrations', '');
SELECT pg_catalog.pg_extension_config_dump('ctx.state', '');
