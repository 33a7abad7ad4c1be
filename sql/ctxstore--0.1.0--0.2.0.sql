-- ctxstore 0.1.0 -> 0.2.0
\echo Use "ALTER EXTENSION ctxstore UPDATE TO '0.2.0'" to load this file. \quit
-- Layout: hand-written changes, then the function section (regenerated with
-- scripts/upgrade_functions.py from the generated schema), then the statements that must run
-- with the new library (after the "(after the function section" line).

-- pg_dump keeps the role bindings of tenants (they are data).
SELECT pg_catalog.pg_extension_config_dump('ctx.tenant_roles', '');


-- The audit log becomes a chain per tenant, keyed (tenant, id): a tenant's rows and chain can
-- then live on one node of a cluster distributed by tenant. The global chain is verified
-- first (an upgrade must not re-seal rows that were tampered with); its sealed rows keep their
-- row hashes and are re-chained per tenant in their old order.
DO $$
DECLARE
    expected_seq bigint := 0;
    head bytea := sha256('ctxstore audit log'::bytea);
    r record;
    chain record;
BEGIN
    FOR r IN SELECT a.*, ctx.audit_row_hash(a) AS computed FROM ctx.audit_log a
              WHERE a.chain_seq IS NOT NULL ORDER BY a.chain_seq LOOP
        expected_seq := expected_seq + 1;
        head := sha256(head || r.computed);
        IF r.chain_seq IS DISTINCT FROM expected_seq OR r.row_hash IS DISTINCT FROM r.computed
           OR r.chain_hash IS DISTINCT FROM head THEN
            RAISE EXCEPTION 'the audit chain does not verify at audit row % (chain position %): the upgrade would re-seal it', r.id, expected_seq
                USING ERRCODE = 'XX001',
                HINT = 'Restore ctx.audit_log from a backup; or, knowingly, unseal the rows from that position on '
                       '(UPDATE ctx.audit_log SET row_hash = NULL, chain_seq = NULL, chain_hash = NULL WHERE chain_seq >= '
                       || expected_seq || ') and upgrade again.';
        END IF;
    END LOOP;
    SELECT last_seq, last_hash INTO chain FROM ctx.audit_chain;
    IF (NOT FOUND AND expected_seq > 0) OR chain.last_seq <> expected_seq OR chain.last_hash <> head THEN
        RAISE EXCEPTION 'the audit chain does not end at its head (rows were removed from its end, or the head was deleted): the upgrade would re-seal it'
            USING ERRCODE = 'XX001',
            HINT = 'Restore ctx.audit_log and ctx.audit_chain from a backup; or, knowingly, unseal every row '
                   '(UPDATE ctx.audit_log SET row_hash = NULL, chain_seq = NULL, chain_hash = NULL WHERE chain_seq IS NOT NULL; '
                   'DELETE FROM ctx.audit_chain) and upgrade again.';
    END IF;
END $$;
-- (the new key first: the re-chaining below updates each row through it)
DROP INDEX ctx.audit_log_chain_idx;
DROP INDEX ctx.audit_log_unsealed_idx;
ALTER TABLE ctx.audit_log DROP CONSTRAINT audit_log_pkey;
ALTER TABLE ctx.audit_log ADD CONSTRAINT audit_log_pkey PRIMARY KEY (tenant, id);
DO $$
DECLARE
    t text := NULL;
    seq bigint;
    head bytea;
    r record;
BEGIN
    FOR r IN SELECT a.tenant, a.id, a.row_hash FROM ctx.audit_log a
              WHERE a.chain_seq IS NOT NULL ORDER BY a.tenant, a.chain_seq LOOP
        IF t IS DISTINCT FROM r.tenant THEN
            t := r.tenant;
            seq := 0;
            head := sha256('ctxstore audit log'::bytea);
        END IF;
        seq := seq + 1;
        head := sha256(head || r.row_hash);
        UPDATE ctx.audit_log a SET chain_seq = seq, chain_hash = head WHERE a.tenant = r.tenant AND a.id = r.id;
    END LOOP;
END $$;
CREATE UNIQUE INDEX audit_log_chain_idx ON ctx.audit_log (tenant, chain_seq) WHERE chain_seq IS NOT NULL;
CREATE INDEX audit_log_unsealed_idx ON ctx.audit_log (tenant, id) WHERE chain_seq IS NULL;
ALTER EXTENSION ctxstore DROP TABLE ctx.audit_chain;
DROP TABLE ctx.audit_chain;
CREATE TABLE ctx.audit_chain (
    tenant     text PRIMARY KEY,
    last_seq   bigint NOT NULL,
    last_hash  bytea NOT NULL
);
SELECT pg_catalog.pg_extension_config_dump('ctx.audit_chain', '');
REVOKE ALL ON ctx.audit_chain FROM PUBLIC;
INSERT INTO ctx.audit_chain (tenant, last_seq, last_hash)
SELECT DISTINCT ON (a.tenant) a.tenant, a.chain_seq, a.chain_hash FROM ctx.audit_log a
 WHERE a.chain_seq IS NOT NULL ORDER BY a.tenant, a.chain_seq DESC;
-- Chains every committed, unsealed audit row after its tenant's head, in id order, tenant by
-- tenant. Concurrent callers wait for each other (per tenant); returns how many rows were sealed.
CREATE OR REPLACE FUNCTION ctx.seal_audit() RETURNS bigint
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $body$
DECLARE
    t text;
    seq bigint;
    head bytea;
    r ctx.audit_log;
    sealed bigint := 0;
    started bigint;
BEGIN
    FOR t IN SELECT DISTINCT a.tenant FROM ctx.audit_log a WHERE a.chain_seq IS NULL ORDER BY 1 LOOP
        INSERT INTO ctx.audit_chain AS c VALUES (t, 0, sha256('ctxstore audit log'::bytea)) ON CONFLICT DO NOTHING;
        GET DIAGNOSTICS started = ROW_COUNT;
        -- a new head for a tenant with sealed rows: its head was deleted. Never start it over
        -- (that would hide the deletion); the other tenants are still sealed.
        IF started > 0 AND EXISTS (SELECT 1 FROM ctx.audit_log a WHERE a.tenant = t AND a.chain_seq IS NOT NULL) THEN
            DELETE FROM ctx.audit_chain c WHERE c.tenant = t;
            RAISE WARNING 'the audit chain of tenant "%" has sealed rows but no head: it was deleted; its new rows stay unsealed', t
                USING HINT = 'Restore ctx.audit_chain from a backup; ctx.verify_audit reports the chain as broken until then.';
            CONTINUE;
        END IF;
        SELECT c.last_seq, c.last_hash INTO seq, head FROM ctx.audit_chain c WHERE c.tenant = t FOR UPDATE;
        FOR r IN SELECT * FROM ctx.audit_log a WHERE a.tenant = t AND a.chain_seq IS NULL ORDER BY a.id LOOP
            seq := seq + 1;
            r.row_hash := ctx.audit_row_hash(r);
            head := sha256(head || r.row_hash);
            UPDATE ctx.audit_log a SET row_hash = r.row_hash, chain_seq = seq, chain_hash = head
             WHERE a.tenant = t AND a.id = r.id;
            sealed := sealed + 1;
        END LOOP;
        UPDATE ctx.audit_chain c SET last_seq = seq, last_hash = head WHERE c.tenant = t;
    END LOOP;
    RETURN sealed;
END
$body$;

-- Seals (where it can write), then checks one tenant's chain: every row's hash and the chain
-- from the start to the tenant's head. first_bad_id is the first row that was altered,
-- reordered or follows a removed row; NULL with ok = false means rows were removed from the
-- end (or the head itself).
CREATE FUNCTION ctx.verify_audit(tenant text) RETURNS TABLE(ok boolean, checked bigint, first_bad_id bigint)
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $body$
DECLARE
    expected_seq bigint := 0;
    head bytea := sha256('ctxstore audit log'::bytea);
    r ctx.audit_log;
    n bigint := 0;
    chain record;
    stray bigint;
BEGIN
    IF verify_audit.tenant IS NULL THEN
        RAISE EXCEPTION 'tenant must not be NULL' USING ERRCODE = '22004',
            HINT = 'ctx.verify_audit() verifies every tenant''s chain';
    END IF;
    -- (a read-only transaction or a standby verifies what is sealed already: sealing writes)
    IF NOT current_setting('transaction_read_only')::boolean THEN
        PERFORM ctx.seal_audit();
    END IF;
    -- The head first, then the rows up to it: rows a concurrent seal chains after the head was
    -- read are left to the next verification (they are not yet part of the chain read here).
    SELECT c.last_seq, c.last_hash INTO chain FROM ctx.audit_chain c WHERE c.tenant = verify_audit.tenant;
    IF NOT FOUND THEN
        -- no head: fine for a tenant with nothing sealed, a deleted head otherwise
        RETURN QUERY SELECT NOT EXISTS (SELECT 1 FROM ctx.audit_log a
                                          WHERE a.tenant = verify_audit.tenant AND a.chain_seq IS NOT NULL),
                            0::bigint, NULL::bigint;
        RETURN;
    END IF;
    FOR r IN SELECT * FROM ctx.audit_log a
              WHERE a.tenant = verify_audit.tenant AND a.chain_seq IS NOT NULL AND a.chain_seq <= chain.last_seq
              ORDER BY a.chain_seq LOOP
        expected_seq := expected_seq + 1;
        head := sha256(head || ctx.audit_row_hash(r));
        IF r.chain_seq IS DISTINCT FROM expected_seq OR r.row_hash IS DISTINCT FROM ctx.audit_row_hash(r)
           OR r.chain_hash IS DISTINCT FROM head THEN
            RETURN QUERY SELECT false, n, r.id;
            RETURN;
        END IF;
        n := n + 1;
    END LOOP;
    IF chain.last_seq <> expected_seq OR chain.last_hash <> head THEN
        RETURN QUERY SELECT false, n, NULL::bigint;
        RETURN;
    END IF;
    -- a sealed row beyond the head as it is now (rows and head read in one snapshot: a seal
    -- commits both at once) was put there by hand
    SELECT a.id INTO stray FROM ctx.audit_log a
     WHERE a.tenant = verify_audit.tenant
       AND a.chain_seq > (SELECT c.last_seq FROM ctx.audit_chain c WHERE c.tenant = verify_audit.tenant)
     ORDER BY a.chain_seq LIMIT 1;
    IF FOUND THEN
        RETURN QUERY SELECT false, n, stray;
        RETURN;
    END IF;
    RETURN QUERY SELECT true, n, NULL::bigint;
END
$body$;

-- Every tenant's chain (those with a head or with rows): ok when all verify, checked the rows
-- checked in all, first_bad_id that of the first tenant (in name order) whose chain fails.
CREATE OR REPLACE FUNCTION ctx.verify_audit() RETURNS TABLE(ok boolean, checked bigint, first_bad_id bigint)
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $body$
DECLARE
    t text;
    v record;
    total bigint := 0;
BEGIN
    IF NOT current_setting('transaction_read_only')::boolean THEN
        PERFORM ctx.seal_audit();
    END IF;
    FOR t IN SELECT c.tenant FROM ctx.audit_chain c
             UNION SELECT DISTINCT a.tenant FROM ctx.audit_log a WHERE a.chain_seq IS NOT NULL
             ORDER BY 1 LOOP
        SELECT * INTO v FROM ctx.verify_audit(t);
        total := total + v.checked;
        IF NOT v.ok THEN
            RETURN QUERY SELECT false, total, v.first_bad_id;
            RETURN;
        END IF;
    END LOOP;
    RETURN QUERY SELECT true, total, NULL::bigint;
END
$body$;
REVOKE EXECUTE ON FUNCTION ctx.verify_audit(text) FROM PUBLIC;
-- whoever could verify the whole log can verify one tenant's chain
DO $$
DECLARE g record;
BEGIN
    FOR g IN SELECT a.grantee::regrole AS grantee FROM pg_catalog.pg_proc p, aclexplode(p.proacl) a
              WHERE p.oid = 'ctx.verify_audit()'::regprocedure AND a.privilege_type = 'EXECUTE'
                AND a.grantee <> p.proowner AND a.grantee <> 0 LOOP
        EXECUTE format('GRANT EXECUTE ON FUNCTION ctx.verify_audit(text) TO %s', g.grantee);
    END LOOP;
END $$;

-- A memory's source context: the foreign key takes no action (ctx.delete_context sets the
-- column NULL itself); a table distributed by tenant cannot have one that sets part of its key
-- NULL.
ALTER TABLE ctx.memories DROP CONSTRAINT memories_tenant_source_context_fkey,
    ADD CONSTRAINT memories_tenant_source_context_fkey FOREIGN KEY (tenant, source_context) REFERENCES ctx.contexts (tenant, id);


-- ctx.search_state: include_descendants, and created_at / expires_at in its rows (the function
-- section below creates the new signature).
DROP FUNCTION ctx.search_state(text[], jsonb, integer, integer);

-- The ttl a value was put with, which ctx.touch restarts (values written before the upgrade
-- have none: they expire as they were written to).
ALTER TABLE ctx.state ADD COLUMN ttl interval;

-- Application roles get the new tables too.
CREATE OR REPLACE FUNCTION ctx.grant_access(role regrole, admin boolean DEFAULT false) RETURNS void
LANGUAGE plpgsql AS $body$
BEGIN
    IF grant_access.role IS NULL THEN
        RAISE EXCEPTION 'role must not be NULL' USING ERRCODE = '22004';
    END IF;
    -- (on a Citus cluster the grants reach every shard: one after another, as Citus requires of
    -- DDL on reference tables after distributed ones in a transaction)
    IF EXISTS (SELECT FROM pg_catalog.pg_extension WHERE extname = 'citus') THEN
        PERFORM pg_catalog.set_config('citus.multi_shard_modify_mode', 'sequential', true);
    END IF;
    EXECUTE format('GRANT USAGE ON SCHEMA ctx TO %s', grant_access.role);
    EXECUTE format('GRANT SELECT, INSERT, UPDATE, DELETE ON ctx.contexts, ctx.messages, ctx.message_revisions, ctx.summaries,
                    ctx.memories, ctx.state, ctx.data_keys TO %s', grant_access.role);
    -- (created after this file; resolved when grant_access runs)
    EXECUTE format('GRANT SELECT, INSERT, UPDATE, DELETE ON ctx.threads, ctx.checkpoints, ctx.checkpoint_blobs,
                    ctx.checkpoint_writes, ctx.llm_cache TO %s', grant_access.role);
    EXECUTE format('GRANT SELECT ON ctx.schemas, ctx.schema_migrations, ctx.processor_registry, ctx.processors,
                    ctx.namespace_processors, ctx.vector_indexes, ctx.tenant_roles, ctx.audit_log,
                    ctx.audited_tables, ctx.context_stats, ctx.namespace_stats TO %s', grant_access.role);
    IF grant_access.admin THEN
        EXECUTE format('GRANT INSERT, UPDATE, DELETE ON ctx.schemas, ctx.schema_migrations,
                        ctx.processor_registry, ctx.namespace_processors TO %s', grant_access.role);
        -- (not ctx.set_audit: it switches auditing for every tenant, the owner's call)
        EXECUTE format('GRANT EXECUTE ON FUNCTION ctx.seal_audit(), ctx.verify_audit(), ctx.verify_audit(text) TO %s',
                       grant_access.role);
        -- (created after this file; resolved when grant_access runs)
        EXECUTE format('GRANT EXECUTE ON FUNCTION ctx.rotate_master_key(text), ctx.metric_samples(),
                        ctx.metrics_prometheus() TO %s', grant_access.role);
        EXECUTE format('GRANT SELECT ON ctx.metrics TO %s', grant_access.role);
    END IF;
END
$body$;

-- Whether the current role bypasses row-level security (a superuser, or BYPASSRLS): only such
-- a role changes what acts for every tenant (the schema registry, processors of every tenant).
CREATE FUNCTION ctx.bypasses_rls() RETURNS boolean
LANGUAGE sql STABLE PARALLEL SAFE SET search_path = pg_catalog, pg_temp AS $$
    SELECT coalesce((SELECT r.rolsuper OR r.rolbypassrls FROM pg_catalog.pg_roles r
                      WHERE r.oid OPERATOR(pg_catalog.=) pg_catalog.to_regrole(pg_catalog.quote_ident(current_user))),
                    false)
$$;

-- The schema registry is shared by every tenant: only roles that bypass row-level security
-- write it (0.1.0 let every administrator, tenant-bound ones too, change what other tenants'
-- values are validated against and migrated by).
ALTER TABLE ctx.schemas ENABLE ROW LEVEL SECURITY;
ALTER TABLE ctx.schema_migrations ENABLE ROW LEVEL SECURITY;
CREATE POLICY readable ON ctx.schemas FOR SELECT USING (true);
CREATE POLICY readable ON ctx.schema_migrations FOR SELECT USING (true);
CREATE OR REPLACE FUNCTION ctx.register_migration(name text, from_version integer, to_version integer, fn regprocedure)
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

-- ctx.set_audit switches auditing for every tenant: no longer an administrator's (roles granted
-- it under 0.1.0 lose it)
DO $$
DECLARE g record;
BEGIN
    FOR g IN SELECT DISTINCT a.grantee::regrole AS role
               FROM pg_catalog.pg_proc p, aclexplode(p.proacl) a
              WHERE p.oid = 'ctx.set_audit(text, boolean)'::regprocedure AND a.grantee <> p.proowner AND a.grantee <> 0 LOOP
        EXECUTE format('REVOKE EXECUTE ON FUNCTION ctx.set_audit(text, boolean) FROM %s', g.role);
    END LOOP;
END $$;

-- Tenant bindings by role OID (regrole), not by name: 0.1.0 stored the name as text and
-- compared it with current_user, so a binding of a role whose name needs quoting did nothing.
-- A binding is carried to the role its name matched exactly (what 0.1.0 enforced), else to the
-- role its text names as regrole input (what the caller meant); a binding of a role that no
-- longer exists is dropped, with a warning.
ALTER TABLE ctx.tenant_roles DISABLE TRIGGER audit;
ALTER TABLE ctx.tenant_roles ADD COLUMN role regrole;
UPDATE ctx.tenant_roles t
   SET role = coalesce((SELECT r.oid FROM pg_catalog.pg_roles r WHERE r.rolname = t.role_name),
                       pg_catalog.to_regrole(t.role_name::text))::regrole;
DO $$
DECLARE b record;
BEGIN
    FOR b IN SELECT role_name, tenant FROM ctx.tenant_roles WHERE role IS NULL LOOP
        RAISE WARNING 'ctxstore: dropping the binding of role "%" to tenant "%": no such role', b.role_name, b.tenant;
    END LOOP;
END $$;
DELETE FROM ctx.tenant_roles WHERE role IS NULL;
-- (two texts naming one role: the binding made last wins, as bind_role_to_tenant would have)
DELETE FROM ctx.tenant_roles t USING ctx.tenant_roles u
 WHERE t.role = u.role AND t.ctid < u.ctid;
ALTER TABLE ctx.tenant_roles DROP CONSTRAINT tenant_roles_pkey;
ALTER TABLE ctx.tenant_roles DROP COLUMN role_name;
ALTER TABLE ctx.tenant_roles ALTER COLUMN role SET NOT NULL;
ALTER TABLE ctx.tenant_roles ADD PRIMARY KEY (role);
ALTER TABLE ctx.tenant_roles DROP CONSTRAINT tenant_roles_tenant_check;
ALTER TABLE ctx.tenant_roles ADD CONSTRAINT tenant_roles_tenant_check CHECK (tenant <> '' AND strpos(tenant, chr(31)) = 0);
SELECT pg_catalog.pg_extension_config_dump('ctx.tenant_roles',
    'WHERE EXISTS (SELECT 1 FROM pg_catalog.pg_roles r WHERE r.oid OPERATOR(pg_catalog.=) role)');
ALTER TABLE ctx.audited_tables DISABLE TRIGGER audit;
UPDATE ctx.audited_tables SET key_columns = '{role}' WHERE table_name = 'tenant_roles';
UPDATE ctx.audited_tables SET key_columns = '{tenant,namespace}' WHERE table_name = 'namespace_processors';
UPDATE ctx.audited_tables SET key_columns = '{tenant,name}' WHERE table_name = 'processor_registry';
DO $$
BEGIN
    IF (SELECT enabled FROM ctx.audited_tables WHERE table_name = 'audited_tables') THEN
        ALTER TABLE ctx.audited_tables ENABLE TRIGGER audit;
    END IF;
END $$;

CREATE OR REPLACE FUNCTION ctx.current_tenant() RETURNS text
LANGUAGE sql STABLE PARALLEL SAFE SET search_path = pg_catalog, pg_temp AS $$
    SELECT coalesce(
        (SELECT tenant FROM ctx.tenant_roles
          WHERE role OPERATOR(pg_catalog.=) pg_catalog.to_regrole(pg_catalog.quote_ident(current_user))),
        (SELECT tenant FROM ctx.tenant_roles
          WHERE role OPERATOR(pg_catalog.=) pg_catalog.to_regrole(pg_catalog.quote_ident(session_user))),
        nullif(pg_catalog.current_setting('ctxstore.tenant', true), ''), '')
$$;

CREATE OR REPLACE FUNCTION ctx.bind_role_to_tenant(role regrole, tenant text) RETURNS void
LANGUAGE plpgsql AS $body$
BEGIN
    IF bind_role_to_tenant.role IS NULL THEN
        RAISE EXCEPTION 'role must not be NULL' USING ERRCODE = '22004';
    END IF;
    -- bindings of dropped roles go: their OIDs must never bind a role created later
    DELETE FROM ctx.tenant_roles t
     WHERE NOT EXISTS (SELECT 1 FROM pg_catalog.pg_roles r WHERE r.oid OPERATOR(pg_catalog.=) t.role);
    IF bind_role_to_tenant.tenant IS NULL THEN
        DELETE FROM ctx.tenant_roles t WHERE t.role OPERATOR(pg_catalog.=) bind_role_to_tenant.role;
    ELSIF bind_role_to_tenant.tenant = '' OR strpos(bind_role_to_tenant.tenant, chr(31)) > 0 THEN
        RAISE EXCEPTION 'a tenant name must not be empty or contain U+001F' USING ERRCODE = '22023',
            HINT = 'NULL removes the binding';
    ELSE
        INSERT INTO ctx.tenant_roles AS t (role, tenant)
        VALUES (bind_role_to_tenant.role, bind_role_to_tenant.tenant)
        ON CONFLICT ON CONSTRAINT tenant_roles_pkey DO UPDATE SET tenant = excluded.tenant;
    END IF;
    -- On a Citus cluster the binding is also the role's own setting, which Citus puts on every
    -- node: a worker cannot read it from the table (role OIDs differ between nodes).
    IF EXISTS (SELECT FROM pg_catalog.pg_extension WHERE extname = 'citus') THEN
        IF bind_role_to_tenant.tenant IS NULL THEN
            EXECUTE format('ALTER ROLE %s RESET ctxstore.bound_tenant', bind_role_to_tenant.role);
        ELSE
            EXECUTE format('ALTER ROLE %s SET ctxstore.bound_tenant = %L', bind_role_to_tenant.role,
                           bind_role_to_tenant.tenant);
        END IF;
    END IF;
END
$body$;

-- Memory keys lead with the tenant: another tenant's row can no longer take a memory's id.
ALTER TABLE ctx.memories DROP CONSTRAINT memories_pkey;
ALTER TABLE ctx.memories ADD PRIMARY KEY (tenant, id, version);
DROP INDEX ctx.memories_current_idx;
CREATE UNIQUE INDEX memories_current_idx ON ctx.memories (tenant, id) WHERE valid_to IS NULL;

-- Data keys are wrapped bound to tenant U+001F scope: no tenant name may hold U+001F.
ALTER TABLE ctx.data_keys ADD CONSTRAINT data_keys_tenant_check CHECK (strpos(tenant, chr(31)) = 0);

-- Namespace processor settings are per tenant. 0.1.0's settings applied to every tenant: each
-- is kept for every tenant that has data or a binding now (tenants created later start with
-- none).
ALTER TABLE ctx.namespace_processors DISABLE TRIGGER audit;
ALTER TABLE ctx.namespace_processors ADD COLUMN tenant text NOT NULL DEFAULT '';
ALTER TABLE ctx.namespace_processors DROP CONSTRAINT namespace_processors_pkey;
ALTER TABLE ctx.namespace_processors DROP CONSTRAINT namespace_processors_ns_key_key;
INSERT INTO ctx.namespace_processors (tenant, namespace, ns_key, config, updated_at)
SELECT t.tenant, n.namespace, n.ns_key, n.config, n.updated_at
  FROM ctx.namespace_processors n
 CROSS JOIN (SELECT tenant FROM ctx.contexts UNION SELECT tenant FROM ctx.memories
             UNION SELECT tenant FROM ctx.state UNION SELECT tenant FROM ctx.data_keys
             UNION SELECT tenant FROM ctx.tenant_roles) t
 WHERE t.tenant <> '';
ALTER TABLE ctx.namespace_processors ALTER COLUMN tenant SET DEFAULT ctx.current_tenant();
ALTER TABLE ctx.namespace_processors ALTER COLUMN namespace SET NOT NULL;
ALTER TABLE ctx.namespace_processors ADD PRIMARY KEY (tenant, ns_key);
ALTER TABLE ctx.namespace_processors ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON ctx.namespace_processors
    USING (tenant = ctx.current_tenant()) WITH CHECK (tenant = ctx.current_tenant());

-- User processors and built-in switches per tenant: 0.1.0's rows act for every tenant
-- (tenant NULL), as they did; the functions that change them gain all_tenants.
ALTER TABLE ctx.processor_registry DISABLE TRIGGER audit;
ALTER TABLE ctx.processor_registry ADD COLUMN tenant text;
ALTER TABLE ctx.processor_registry ALTER COLUMN tenant SET DEFAULT ctx.current_tenant();
ALTER TABLE ctx.processor_registry DROP CONSTRAINT processor_registry_pkey;
ALTER TABLE ctx.processor_registry ALTER COLUMN name SET NOT NULL;
ALTER TABLE ctx.processor_registry ADD CONSTRAINT processor_registry_tenant_name_key UNIQUE NULLS NOT DISTINCT (tenant, name);
ALTER TABLE ctx.processor_registry ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant_reads ON ctx.processor_registry FOR SELECT
    USING (tenant IS NULL OR tenant = ctx.current_tenant());
CREATE POLICY tenant_writes ON ctx.processor_registry
    USING (tenant = ctx.current_tenant()) WITH CHECK (tenant = ctx.current_tenant());
SELECT pg_catalog.pg_extension_config_dump('ctx.processor_registry', 'WHERE fn IS NOT NULL OR tenant IS NOT NULL');
-- The audit triggers of the tables whose key columns changed, remade from ctx.audited_tables as
-- a fresh install makes them (the migrations above ran with them off), each switched as it was.
DO $$
DECLARE t record;
BEGIN
    FOR t IN SELECT * FROM ctx.audited_tables
              WHERE table_name IN ('tenant_roles', 'namespace_processors', 'processor_registry') LOOP
        EXECUTE format('DROP TRIGGER audit ON ctx.%I', t.table_name);
        EXECUTE format('CREATE TRIGGER audit AFTER INSERT OR UPDATE OR DELETE ON ctx.%I
                        FOR EACH ROW EXECUTE FUNCTION ctx.audit_trigger(%L, %s)',
                       t.table_name, t.table_name,
                       (SELECT string_agg(quote_literal(c), ', ') FROM unnest(t.key_columns) c));
        IF NOT t.enabled THEN
            EXECUTE format('ALTER TABLE ctx.%I DISABLE TRIGGER audit', t.table_name);
        END IF;
    END LOOP;
END $$;
-- The processors acting for the caller's tenant (its own switches of built-ins first), with
-- the tenant each row belongs to (NULL: every tenant). security_invoker: the caller's
-- row-level security applies, so no filter pushed into the view sees other tenants' rows.
CREATE OR REPLACE VIEW ctx.processors WITH (security_invoker = true) AS
SELECT name, stage,
       CASE WHEN fn IS NULL THEN 'builtin' ELSE 'user' END AS kind,
       fn AS function, priority, scope, enabled, description, created_at, tenant
  FROM (SELECT DISTINCT ON (r.name) r.name, r.stage, r.fn, r.priority, r.scope, r.enabled, r.description,
               r.created_at, r.tenant
          FROM ctx.processor_registry r
         WHERE r.tenant IS NULL OR r.tenant = ctx.current_tenant()
         ORDER BY r.name, (r.tenant IS NULL AND r.fn IS NOT NULL) DESC, r.tenant NULLS LAST) p
 ORDER BY stage DESC, priority, name;

-- Contexts belong to a resource (the user or agent of the application), by which frameworks
-- list their threads (ctx.list_contexts, ctx.update_context, ctx.create_context(resource)).
ALTER TABLE ctx.contexts ADD COLUMN resource text CHECK (resource <> '' AND octet_length(resource) <= 1024);
CREATE INDEX contexts_resource_idx ON ctx.contexts (tenant, resource) WHERE resource IS NOT NULL;
DROP FUNCTION ctx.create_context(text, jsonb, text, jsonb, boolean);

DROP FUNCTION ctx.register_processor(text, text, regprocedure, integer, jsonb);
DROP FUNCTION ctx.disable_processor(text);
DROP FUNCTION ctx.enable_processor(text);
DROP FUNCTION ctx.unregister_processor(text);

-- Metrics are server-wide: administrators and pg_monitor members read them, no one else.
REVOKE EXECUTE ON FUNCTION ctx.metric_samples(), ctx.metrics_prometheus() FROM PUBLIC;
GRANT USAGE ON SCHEMA ctx TO pg_monitor;
GRANT EXECUTE ON FUNCTION ctx.metric_samples(), ctx.metrics_prometheus() TO pg_monitor;
GRANT SELECT ON ctx.metrics TO pg_monitor;

-- The checkpoint store and the LLM response cache, as src/schema/checkpoints.sql and
-- src/schema/llm_cache.sql create them (their audited_tables rows are added after the function
-- section). Their SQL functions call ctx.context_seal/unseal, ctx.keyed_hash and
-- ctx.cache_seal/unseal, which the function section below creates: bodies are checked when the
-- script has run.
SET LOCAL check_function_bodies = off;

-- The checkpoint store of graph-based agents (LangGraph's BaseCheckpointSaver contract): per
-- thread and namespace, checkpoints with parent pointers and metadata, channel values stored
-- once per (channel, version), and the pending writes of each task.
--
-- A thread is a context: its checkpoints live beside its messages and working memory, follow
-- its tenant, are sealed with its data key when it is encrypted, and go when it is deleted or
-- shredded. Thread ids are the application's own strings; ctx.threads maps them to contexts.

CREATE TABLE ctx.threads (
    tenant      text NOT NULL DEFAULT ctx.current_tenant(),
    thread_id   text NOT NULL CHECK (thread_id <> '' AND octet_length(thread_id) <= 1024),
    context_id  uuid NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    -- whose thread record this is: '' for the adapters that only map ids (LangGraph, LangChain,
    -- the Agents SDK), 'mastra' for Mastra's threads (ctx.save_thread)
    framework   text NOT NULL DEFAULT '',
    PRIMARY KEY (tenant, thread_id),
    UNIQUE (tenant, context_id),
    FOREIGN KEY (tenant, context_id) REFERENCES ctx.contexts (tenant, id) ON DELETE CASCADE
);

CREATE TABLE ctx.checkpoints (
    context_id    uuid NOT NULL,
    tenant        text NOT NULL DEFAULT ctx.current_tenant(),
    checkpoint_ns text NOT NULL DEFAULT '',
    -- LangGraph's ids are time-ordered (uuid6): byte order is creation order
    checkpoint_id text COLLATE "C" NOT NULL CHECK (checkpoint_id <> ''),
    parent_checkpoint_id text COLLATE "C",
    -- metadata.run_id, for ctx.checkpoint_delete_runs; in an encrypted context its keyed hash
    -- ('hmac:' || hex of ctx.keyed_hash('checkpoints.run_id', run_id)), never the value
    run_id        text,
    -- the checkpoint without its channel values (versions, versions seen, timestamps: no
    -- application data, so it stays readable for garbage collection of unreferenced values)
    checkpoint    jsonb NOT NULL CHECK (jsonb_typeof(checkpoint) = 'object'),
    -- {} in an encrypted context, where metadata_enc holds it
    metadata      jsonb NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(metadata) = 'object'),
    metadata_enc  bytea,
    created_at    timestamptz NOT NULL DEFAULT now(),
    trace_id      text DEFAULT ctx.current_trace_id(),
    PRIMARY KEY (tenant, context_id, checkpoint_ns, checkpoint_id),
    FOREIGN KEY (tenant, context_id) REFERENCES ctx.contexts (tenant, id) ON DELETE CASCADE
);
CREATE INDEX checkpoints_run_idx ON ctx.checkpoints (tenant, run_id) WHERE run_id IS NOT NULL;

-- What ctx.checkpoints.run_id holds for a run id: in an encrypted context, its keyed hash.
CREATE FUNCTION ctx.checkpoint_run_key(run_id text, encrypted boolean) RETURNS text
LANGUAGE sql VOLATILE AS $$
    SELECT CASE WHEN NOT encrypted OR run_id IS NULL THEN run_id
                ELSE 'hmac:' || pg_catalog.encode(ctx.keyed_hash('checkpoints.run_id', run_id), 'hex') END
$$;

-- A channel's value at a version, shared by every checkpoint that saw that version.
CREATE TABLE ctx.checkpoint_blobs (
    context_id    uuid NOT NULL,
    tenant        text NOT NULL DEFAULT ctx.current_tenant(),
    checkpoint_ns text NOT NULL DEFAULT '',
    channel       text NOT NULL,
    version       text NOT NULL,
    -- the client serializer's type tag ('empty': the channel had no value)
    type          text NOT NULL,
    blob          bytea,  -- lz4 + AES-256-GCM in an encrypted context
    PRIMARY KEY (tenant, context_id, checkpoint_ns, channel, version),
    FOREIGN KEY (tenant, context_id) REFERENCES ctx.contexts (tenant, id) ON DELETE CASCADE
);

CREATE TABLE ctx.checkpoint_writes (
    context_id    uuid NOT NULL,
    tenant        text NOT NULL DEFAULT ctx.current_tenant(),
    checkpoint_ns text NOT NULL DEFAULT '',
    checkpoint_id text COLLATE "C" NOT NULL,
    -- (code point order, as LangGraph sorts pending writes: task path, task id, idx)
    task_id       text COLLATE "C" NOT NULL,
    task_path     text COLLATE "C" NOT NULL DEFAULT '',
    idx           integer NOT NULL,
    channel       text NOT NULL,
    type          text NOT NULL,
    blob          bytea NOT NULL,  -- lz4 + AES-256-GCM in an encrypted context
    created_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant, context_id, checkpoint_ns, checkpoint_id, task_id, idx),
    FOREIGN KEY (tenant, context_id) REFERENCES ctx.contexts (tenant, id) ON DELETE CASCADE
);

SELECT pg_catalog.pg_extension_config_dump('ctx.threads', '');
SELECT pg_catalog.pg_extension_config_dump('ctx.checkpoints', '');
SELECT pg_catalog.pg_extension_config_dump('ctx.checkpoint_blobs', '');
SELECT pg_catalog.pg_extension_config_dump('ctx.checkpoint_writes', '');

DO $$
DECLARE t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['threads', 'checkpoints', 'checkpoint_blobs', 'checkpoint_writes'] LOOP
        EXECUTE format('ALTER TABLE ctx.%I ENABLE ROW LEVEL SECURITY', t);
        EXECUTE format($p$CREATE POLICY tenant_isolation ON ctx.%I
                          USING (tenant = ctx.current_tenant())
                          WITH CHECK (tenant = ctx.current_tenant())$p$, t);
    END LOOP;
END $$;


CREATE FUNCTION ctx.thread_context(thread_id text, create_missing boolean DEFAULT true,
                                   encrypted boolean DEFAULT NULL, processors jsonb DEFAULT NULL) RETURNS uuid
LANGUAGE plpgsql AS $body$
DECLARE
    found_id uuid;
    tenant_name text := ctx.current_tenant();
BEGIN
    IF thread_context.thread_id IS NULL THEN
        RAISE EXCEPTION 'thread_id must not be NULL' USING ERRCODE = '22004';
    END IF;
    IF thread_context.thread_id = '' OR octet_length(thread_context.thread_id) > 1024 THEN
        RAISE EXCEPTION 'a thread id must be 1 to 1,024 bytes long' USING ERRCODE = '22023',
            HINT = 'use the id your framework gives the conversation, e.g. LangGraph''s thread_id';
    END IF;
    SELECT t.context_id INTO found_id FROM ctx.threads t
     WHERE t.tenant = tenant_name AND t.thread_id = thread_context.thread_id;
    IF found_id IS NOT NULL OR NOT coalesce(create_missing, true) THEN
        RETURN found_id;
    END IF;
    -- two sessions creating the same thread: the second waits and finds the first's
    PERFORM pg_catalog.pg_advisory_xact_lock(pg_catalog.hashtextextended(
        'ctxstore.thread' || chr(31) || tenant_name || chr(31) || thread_context.thread_id, 0));
    SELECT t.context_id INTO found_id FROM ctx.threads t
     WHERE t.tenant = tenant_name AND t.thread_id = thread_context.thread_id;
    IF found_id IS NULL THEN
        found_id := ctx.create_context(name => thread_context.thread_id, encrypted => thread_context.encrypted,
                                       processors => coalesce(thread_context.processors, '{}'));
        INSERT INTO ctx.threads (thread_id, context_id) VALUES (thread_context.thread_id, found_id);
    END IF;
    RETURN found_id;
END
$body$;

-- A framework's thread record (Mastra's threads: a title, a resource, metadata and the caller's
-- timestamps) kept on its context: created when missing (unless create_missing is false: 42704),
-- else updated in place under the context's row lock. NULL keeps a field; metadata replaces the
-- context's whole; updated_at defaults to now(). framework names whose records these are: a
-- thread id another framework holds is refused (23505), so one adapter never reads, lists or
-- clears another's threads.
CREATE FUNCTION ctx.save_thread(thread_id text, title text DEFAULT NULL, resource text DEFAULT NULL,
                                metadata jsonb DEFAULT NULL, created_at timestamptz DEFAULT NULL,
                                updated_at timestamptz DEFAULT NULL, encrypted boolean DEFAULT NULL,
                                framework text DEFAULT '', create_missing boolean DEFAULT true)
RETURNS uuid
LANGUAGE plpgsql AS $body$
DECLARE
    caller_tenant text := ctx.current_tenant();
    -- (a value, not now() under coalesce in the UPDATE: Citus refuses that)
    stamp timestamptz := coalesce(save_thread.updated_at, now());
    cid uuid;
    holder text;
BEGIN
    IF save_thread.metadata IS NOT NULL AND jsonb_typeof(save_thread.metadata) <> 'object' THEN
        RAISE EXCEPTION 'metadata must be a JSON object, not %', jsonb_typeof(save_thread.metadata)
            USING ERRCODE = '22023', HINT = 'pass an object such as ''{"topic": "billing"}'', or NULL to keep the metadata';
    END IF;
    IF save_thread.resource = '' OR octet_length(save_thread.resource) > 1024 THEN
        RAISE EXCEPTION 'a resource must be 1 to 1,024 bytes long' USING ERRCODE = '22023',
            HINT = 'the user or agent the thread belongs to, e.g. Mastra''s resourceId';
    END IF;
    IF NOT isfinite(save_thread.created_at) OR NOT isfinite(save_thread.updated_at) THEN
        RAISE EXCEPTION 'created_at and updated_at must be finite timestamps' USING ERRCODE = '22007',
            HINT = 'pass the times the application gives, or NULL';
    END IF;
    IF save_thread.framework IS NULL OR save_thread.create_missing IS NULL THEN
        RAISE EXCEPTION 'framework and create_missing must not be NULL' USING ERRCODE = '22004',
            HINT = 'framework '''' is that of the adapters that only map thread ids (LangGraph, LangChain, the Agents SDK)';
    END IF;
    SELECT t.framework INTO holder FROM ctx.threads t
     WHERE t.tenant = caller_tenant AND t.thread_id = save_thread.thread_id;
    IF FOUND AND holder <> save_thread.framework THEN
        RAISE EXCEPTION 'thread id "%" is held by framework "%"', save_thread.thread_id, holder USING ERRCODE = '23505',
            HINT = 'one thread id is one framework''s: use another id for this one';
    END IF;
    IF NOT FOUND AND NOT save_thread.create_missing THEN
        RAISE EXCEPTION 'thread "%" does not exist', save_thread.thread_id USING ERRCODE = '42704',
            HINT = 'create_missing => true creates it';
    END IF;
    cid := ctx.thread_context(save_thread.thread_id, encrypted => save_thread.encrypted);
    IF holder IS NULL THEN
        UPDATE ctx.threads t SET framework = save_thread.framework
         WHERE t.tenant = caller_tenant AND t.thread_id = save_thread.thread_id;
    END IF;
    UPDATE ctx.contexts c
       SET name = coalesce(save_thread.title, c.name),
           resource = coalesce(save_thread.resource, c.resource),
           metadata = coalesce(save_thread.metadata, c.metadata),
           created_at = coalesce(save_thread.created_at, c.created_at),
           updated_at = stamp
     WHERE c.tenant = caller_tenant AND c.id = cid;
    IF NOT FOUND THEN  -- (deleted since the lookup)
        RAISE EXCEPTION 'thread "%" was deleted while it was saved', save_thread.thread_id USING ERRCODE = '40001',
            HINT = 'retry the transaction';
    END IF;
    RETURN cid;
END
$body$;

-- The rows of ctx.get_thread, in PL/pgSQL: the tenant is taken once and is a parameter of the
-- statement, which a cluster distributed by tenant routes to one node. (Its arguments are
-- renamed: PL/pgSQL refuses an argument named as a result column.)
CREATE FUNCTION ctx.get_thread_rows(p_thread_id text, p_framework text)
RETURNS TABLE(thread_id text, context_id uuid, title text, resource text, metadata jsonb,
              created_at timestamptz, updated_at timestamptz)
LANGUAGE plpgsql STABLE AS $body$
#variable_conflict use_column
DECLARE
    caller_tenant text := ctx.current_tenant();
BEGIN
    RETURN QUERY
        SELECT t.thread_id, c.id, c.name, c.resource, c.metadata, c.created_at, c.updated_at
          FROM ctx.threads t
          JOIN ctx.contexts c ON c.tenant = t.tenant AND c.id = t.context_id
         WHERE t.tenant = caller_tenant AND t.thread_id = p_thread_id
           AND (p_framework IS NULL OR t.framework = p_framework);
END
$body$;

-- A thread by its id, as ctx.list_threads returns it (no row when the tenant has no such thread,
-- or when framework is given and another one holds it).
CREATE FUNCTION ctx.get_thread(thread_id text, framework text DEFAULT NULL)
RETURNS TABLE(thread_id text, context_id uuid, title text, resource text, metadata jsonb,
              created_at timestamptz, updated_at timestamptz)
LANGUAGE sql STABLE AS $body$
    SELECT * FROM ctx.get_thread_rows(get_thread.thread_id, get_thread.framework)
$body$;

-- The arguments of ctx.list_threads: true, or an error that names the bad one.
CREATE FUNCTION ctx.check_thread_list(order_by text, descending boolean, max_rows integer, skip integer,
                                      metadata_contains jsonb) RETURNS boolean
LANGUAGE plpgsql IMMUTABLE AS $body$
BEGIN
    IF order_by IS NULL OR descending IS NULL OR max_rows IS NULL OR skip IS NULL THEN
        RAISE EXCEPTION 'order_by, descending, max_rows and skip must not be NULL' USING ERRCODE = '22004';
    END IF;
    IF order_by NOT IN ('created_at', 'updated_at') THEN
        RAISE EXCEPTION 'threads are ordered by created_at or updated_at, not "%"', order_by
            USING ERRCODE = '22023', HINT = 'order_by => ''updated_at'' lists the most recently active first';
    END IF;
    IF max_rows < 0 OR skip < 0 THEN
        RAISE EXCEPTION 'max_rows and skip must not be negative' USING ERRCODE = '22023', HINT = 'pass 0 or more';
    END IF;
    IF metadata_contains IS NOT NULL AND jsonb_typeof(metadata_contains) <> 'object' THEN
        RAISE EXCEPTION 'metadata_contains must be a JSON object' USING ERRCODE = '22023',
            HINT = 'e.g. ''{"topic": "billing"}'': threads whose metadata contains it';
    END IF;
    RETURN true;
END
$body$;

-- The rows of ctx.list_threads, in PL/pgSQL: the tenant is taken once and is a parameter of the
-- statement, which a cluster distributed by tenant routes to one node. (Its arguments are
-- renamed: PL/pgSQL refuses an argument named as a result column.)
CREATE FUNCTION ctx.list_threads_rows(p_resource text, p_metadata_contains jsonb, p_order_by text, p_descending boolean, p_max_rows integer, p_skip integer, p_framework text)
RETURNS TABLE(thread_id text, context_id uuid, title text, resource text, metadata jsonb,
              created_at timestamptz, updated_at timestamptz, total_count bigint)
LANGUAGE plpgsql STABLE AS $body$
#variable_conflict use_column
DECLARE
    caller_tenant text := ctx.current_tenant();
BEGIN
    -- (the arguments are checked once, before any row is read)
    PERFORM ctx.check_thread_list(p_order_by, p_descending, p_max_rows, p_skip, p_metadata_contains);
    RETURN QUERY
        SELECT t.thread_id, c.id, c.name, c.resource, c.metadata, c.created_at, c.updated_at, count(*) OVER ()
          FROM ctx.threads t
          JOIN ctx.contexts c ON c.tenant = t.tenant AND c.id = t.context_id
         WHERE t.tenant = caller_tenant
           AND (p_resource IS NULL OR c.resource = p_resource)
           AND (p_framework IS NULL OR t.framework = p_framework)
           AND c.metadata @> coalesce(p_metadata_contains, '{}')
         ORDER BY CASE WHEN NOT p_descending THEN
                       CASE p_order_by WHEN 'created_at' THEN c.created_at ELSE c.updated_at END END,
                  CASE WHEN p_descending THEN
                       CASE p_order_by WHEN 'created_at' THEN c.created_at ELSE c.updated_at END END DESC,
                  CASE WHEN NOT p_descending THEN t.thread_id END,
                  CASE WHEN p_descending THEN t.thread_id END DESC
         LIMIT p_max_rows OFFSET p_skip;
END
$body$;

-- The tenant's threads (of a resource, of a framework), whose metadata contains metadata_contains, ordered by
-- created_at or updated_at (ties by thread id, in the same direction) and paged; every row
-- carries the number of matches before paging.
CREATE FUNCTION ctx.list_threads(resource text DEFAULT NULL, metadata_contains jsonb DEFAULT '{}',
                                 order_by text DEFAULT 'created_at', descending boolean DEFAULT true,
                                 max_rows integer DEFAULT 100, skip integer DEFAULT 0, framework text DEFAULT NULL)
RETURNS TABLE(thread_id text, context_id uuid, title text, resource text, metadata jsonb,
              created_at timestamptz, updated_at timestamptz, total_count bigint)
LANGUAGE sql STABLE AS $body$
    SELECT * FROM ctx.list_threads_rows(list_threads.resource, list_threads.metadata_contains, list_threads.order_by, list_threads.descending, list_threads.max_rows, list_threads.skip, list_threads.framework)
$body$;

-- Where messages live, by id alone: for each live message with one of these ids, the context
-- that holds it (not the forks that inherit it), that context's thread id, if it has one, and its
-- resource. (Frameworks such as Mastra address a message by its id without its thread.)
CREATE FUNCTION ctx.locate_messages(message_ids text[], framework text DEFAULT NULL)
RETURNS TABLE(message_id text, context_id uuid, thread_id text, resource text)
LANGUAGE plpgsql STABLE SET plan_cache_mode = force_generic_plan AS $body$
DECLARE
    caller_tenant text := ctx.current_tenant();
BEGIN
    IF locate_messages.message_ids IS NULL OR array_position(locate_messages.message_ids, NULL) IS NOT NULL THEN
        RAISE EXCEPTION 'message_ids must not be NULL nor contain NULL' USING ERRCODE = '22004',
            HINT = 'pass the ids as a text[]';
    END IF;
    RETURN QUERY
    SELECT m.message_id, m.context_id, t.thread_id, c.resource
      FROM ctx.messages m
      JOIN ctx.contexts c ON c.tenant = caller_tenant AND c.id = m.context_id
      LEFT JOIN ctx.threads t ON t.tenant = caller_tenant AND t.context_id = m.context_id
     WHERE m.tenant = caller_tenant AND m.message_id = ANY (locate_messages.message_ids) AND NOT m.deleted
       -- (with a framework: only messages of its threads)
       AND (locate_messages.framework IS NULL OR t.framework = locate_messages.framework)
     ORDER BY m.message_id, m.context_id;
END
$body$;

-- Puts take this lock shared, garbage collection exclusive: a put that reuses a stored channel
-- value never sees it deleted under it.
CREATE FUNCTION ctx.checkpoint_put(thread_id text, checkpoint_ns text, checkpoint jsonb,
                                   metadata jsonb DEFAULT '{}', parent_checkpoint_id text DEFAULT NULL,
                                   channels text[] DEFAULT '{}', versions text[] DEFAULT '{}',
                                   types text[] DEFAULT '{}', blobs bytea[] DEFAULT '{}')
RETURNS text
LANGUAGE plpgsql AS $body$
DECLARE
    caller_tenant text := ctx.current_tenant();
    cid uuid;
    sealed boolean;
    new_id text := checkpoint_put.checkpoint->>'id';
    ns text := coalesce(checkpoint_put.checkpoint_ns, '');
    md jsonb := coalesce(checkpoint_put.metadata, '{}');
    run_key text;
    metadata_sealed bytea;
BEGIN
    IF checkpoint_put.checkpoint IS NULL THEN
        RAISE EXCEPTION 'checkpoint must not be NULL' USING ERRCODE = '22004';
    END IF;
    IF jsonb_typeof(checkpoint_put.checkpoint) <> 'object' OR jsonb_typeof(checkpoint_put.checkpoint->'id') IS DISTINCT FROM 'string'
       OR new_id = '' THEN
        RAISE EXCEPTION 'checkpoint must be a JSON object with a non-empty string "id"' USING ERRCODE = '22023';
    END IF;
    IF checkpoint_put.checkpoint ? 'channel_values' THEN
        RAISE EXCEPTION 'checkpoint must not carry channel_values' USING ERRCODE = '22023',
            HINT = 'pass each channel''s value in channels/versions/types/blobs; they are stored once per version';
    END IF;
    IF jsonb_typeof(md) <> 'object' THEN
        RAISE EXCEPTION 'metadata must be a JSON object' USING ERRCODE = '22023';
    END IF;
    IF cardinality(coalesce(checkpoint_put.channels, '{}')) <> cardinality(coalesce(checkpoint_put.versions, '{}'))
       OR cardinality(coalesce(checkpoint_put.channels, '{}')) <> cardinality(coalesce(checkpoint_put.types, '{}'))
       OR cardinality(coalesce(checkpoint_put.channels, '{}')) <> cardinality(coalesce(checkpoint_put.blobs, '{}')) THEN
        RAISE EXCEPTION 'channels, versions, types and blobs must have the same length' USING ERRCODE = '22023';
    END IF;
    IF array_position(checkpoint_put.channels, NULL) IS NOT NULL OR array_position(checkpoint_put.versions, NULL) IS NOT NULL
       OR array_position(checkpoint_put.types, NULL) IS NOT NULL THEN
        RAISE EXCEPTION 'channels, versions and types must not contain NULL' USING ERRCODE = '22004';
    END IF;
    cid := ctx.thread_context(checkpoint_put.thread_id);
    SELECT c.encrypted INTO sealed FROM ctx.contexts c WHERE c.tenant = caller_tenant AND c.id = cid;
    PERFORM pg_catalog.pg_advisory_xact_lock_shared(pg_catalog.hashtextextended('ctxstore.checkpoints' || chr(31) || cid::text || chr(31) || caller_tenant, 0));

    INSERT INTO ctx.checkpoint_blobs AS b (context_id, checkpoint_ns, channel, version, type, blob)
    SELECT cid, ns, v.channel, v.version, v.type,
           CASE WHEN sealed AND v.blob IS NOT NULL
                THEN ctx.context_seal(cid, v.blob, 'checkpoint_blobs', ns, v.channel, v.version)
                ELSE v.blob END
      FROM unnest(checkpoint_put.channels, checkpoint_put.versions, checkpoint_put.types, checkpoint_put.blobs)
           AS v(channel, version, type, blob)
    ON CONFLICT ON CONSTRAINT checkpoint_blobs_pkey DO NOTHING;

    -- (sealed before the INSERT, not under a CASE in its values: a distributed INSERT evaluates
    -- the functions of its values on the coordinator, every branch)
    run_key := ctx.checkpoint_run_key(md->>'run_id', sealed);
    IF sealed THEN
        metadata_sealed := ctx.context_seal(cid, convert_to(md::text, 'UTF8'), 'checkpoints.metadata', ns, new_id);
    END IF;
    INSERT INTO ctx.checkpoints AS c (context_id, checkpoint_ns, checkpoint_id, parent_checkpoint_id, run_id,
                                      checkpoint, metadata, metadata_enc)
    VALUES (cid, ns, new_id, checkpoint_put.parent_checkpoint_id, run_key, checkpoint_put.checkpoint,
            CASE WHEN sealed THEN '{}' ELSE md END, metadata_sealed)
    ON CONFLICT ON CONSTRAINT checkpoints_pkey DO UPDATE
       SET parent_checkpoint_id = excluded.parent_checkpoint_id, run_id = excluded.run_id,
           checkpoint = excluded.checkpoint, metadata = excluded.metadata, metadata_enc = excluded.metadata_enc,
           trace_id = excluded.trace_id;
    RETURN new_id;
END
$body$;

CREATE FUNCTION ctx.checkpoint_put_writes(thread_id text, checkpoint_ns text, checkpoint_id text, task_id text,
                                          idxs integer[], channels text[], types text[], blobs bytea[],
                                          task_path text DEFAULT '', overwrite boolean DEFAULT false)
RETURNS integer
LANGUAGE plpgsql AS $body$
DECLARE
    caller_tenant text := ctx.current_tenant();
    cid uuid;
    sealed boolean;
    ns text := coalesce(checkpoint_put_writes.checkpoint_ns, '');
    stored bytea[];
    written integer;
BEGIN
    IF checkpoint_put_writes.checkpoint_id IS NULL OR checkpoint_put_writes.task_id IS NULL
       OR checkpoint_put_writes.idxs IS NULL OR checkpoint_put_writes.channels IS NULL
       OR checkpoint_put_writes.types IS NULL OR checkpoint_put_writes.blobs IS NULL THEN
        RAISE EXCEPTION 'checkpoint_id, task_id, idxs, channels, types and blobs must not be NULL' USING ERRCODE = '22004';
    END IF;
    IF cardinality(checkpoint_put_writes.idxs) <> cardinality(checkpoint_put_writes.channels)
       OR cardinality(checkpoint_put_writes.idxs) <> cardinality(checkpoint_put_writes.types)
       OR cardinality(checkpoint_put_writes.idxs) <> cardinality(checkpoint_put_writes.blobs) THEN
        RAISE EXCEPTION 'idxs, channels, types and blobs must have the same length' USING ERRCODE = '22023';
    END IF;
    IF array_position(checkpoint_put_writes.idxs, NULL) IS NOT NULL OR array_position(checkpoint_put_writes.channels, NULL) IS NOT NULL
       OR array_position(checkpoint_put_writes.types, NULL) IS NOT NULL OR array_position(checkpoint_put_writes.blobs, NULL) IS NOT NULL THEN
        RAISE EXCEPTION 'idxs, channels, types and blobs must not contain NULL' USING ERRCODE = '22004';
    END IF;
    IF (SELECT count(DISTINCT i) FROM unnest(checkpoint_put_writes.idxs) i) < cardinality(checkpoint_put_writes.idxs) THEN
        RAISE EXCEPTION 'idxs must not repeat an index' USING ERRCODE = '21000',
            HINT = 'each write of a task has its own index';
    END IF;
    cid := ctx.thread_context(checkpoint_put_writes.thread_id);
    SELECT c.encrypted INTO sealed FROM ctx.contexts c WHERE c.tenant = caller_tenant AND c.id = cid;
    -- (garbage collection waits for these writes, as for a put)
    PERFORM pg_catalog.pg_advisory_xact_lock_shared(pg_catalog.hashtextextended('ctxstore.checkpoints' || chr(31) || cid::text || chr(31) || caller_tenant, 0));
    -- (sealed first, then one plain INSERT per conflict rule: a distributed INSERT evaluates
    -- neither a function under CASE nor a variable in DO UPDATE's WHERE as one server does)
    stored := checkpoint_put_writes.blobs;
    IF sealed THEN
        stored := ARRAY(SELECT ctx.context_seal(cid, v.blob, 'checkpoint_writes', ns, checkpoint_put_writes.checkpoint_id,
                                                checkpoint_put_writes.task_id, v.idx::text)
                          FROM unnest(checkpoint_put_writes.idxs, checkpoint_put_writes.blobs) WITH ORDINALITY AS v(idx, blob, ord)
                         ORDER BY v.ord);
    END IF;
    IF checkpoint_put_writes.overwrite THEN
        INSERT INTO ctx.checkpoint_writes AS w (context_id, tenant, checkpoint_ns, checkpoint_id, task_id, task_path, idx,
                                                channel, type, blob)
        SELECT cid, caller_tenant, ns, checkpoint_put_writes.checkpoint_id, checkpoint_put_writes.task_id,
               coalesce(checkpoint_put_writes.task_path, ''), v.idx, v.channel, v.type, v.blob
          FROM unnest(checkpoint_put_writes.idxs, checkpoint_put_writes.channels, checkpoint_put_writes.types, stored)
               AS v(idx, channel, type, blob)
        ON CONFLICT ON CONSTRAINT checkpoint_writes_pkey DO UPDATE
           SET channel = excluded.channel, type = excluded.type, blob = excluded.blob, task_path = excluded.task_path;
    ELSE
        INSERT INTO ctx.checkpoint_writes AS w (context_id, tenant, checkpoint_ns, checkpoint_id, task_id, task_path, idx,
                                                channel, type, blob)
        SELECT cid, caller_tenant, ns, checkpoint_put_writes.checkpoint_id, checkpoint_put_writes.task_id,
               coalesce(checkpoint_put_writes.task_path, ''), v.idx, v.channel, v.type, v.blob
          FROM unnest(checkpoint_put_writes.idxs, checkpoint_put_writes.channels, checkpoint_put_writes.types, stored)
               AS v(idx, channel, type, blob)
        ON CONFLICT ON CONSTRAINT checkpoint_writes_pkey DO NOTHING;
    END IF;
    GET DIAGNOSTICS written = ROW_COUNT;
    RETURN written;
END
$body$;

-- The values (at the versions the checkpoint saw) and the pending writes of one checkpoint,
-- decrypted, as ctx.checkpoint_get and ctx.checkpoint_list return them.
CREATE FUNCTION ctx.checkpoint_payload(context_id uuid, checkpoint_ns text, checkpoint_id text,
                                       channel_versions jsonb, encrypted boolean)
RETURNS TABLE(channels text[], types text[], blobs bytea[],
              write_task_ids text[], write_channels text[], write_types text[], write_blobs bytea[])
LANGUAGE plpgsql STABLE AS $body$
#variable_conflict use_column
DECLARE
    caller_tenant text := ctx.current_tenant();
BEGIN
    RETURN QUERY
        SELECT coalesce(b.channels, '{}'), coalesce(b.types, '{}'), coalesce(b.blobs, '{}'),
               coalesce(w.task_ids, '{}'), coalesce(w.channels, '{}'), coalesce(w.types, '{}'), coalesce(w.blobs, '{}')
          FROM (SELECT array_agg(v.channel ORDER BY v.channel) AS channels,
                       array_agg(bl.type ORDER BY v.channel) AS types,
                       array_agg(CASE WHEN checkpoint_payload.encrypted AND bl.blob IS NOT NULL
                                      THEN ctx.context_unseal(checkpoint_payload.context_id, bl.blob,
                                               'checkpoint_blobs', checkpoint_payload.checkpoint_ns, v.channel, v.version)
                                      ELSE bl.blob END ORDER BY v.channel) AS blobs
                  FROM jsonb_each_text(checkpoint_payload.channel_versions) AS v(channel, version)
                  -- (LIMIT 1 keeps this a probe of the primary key per channel, never a scan of the thread's values)
                 CROSS JOIN LATERAL (SELECT b1.type, b1.blob FROM ctx.checkpoint_blobs b1
                                      WHERE b1.tenant = caller_tenant AND b1.context_id = checkpoint_payload.context_id
                                        AND b1.checkpoint_ns = checkpoint_payload.checkpoint_ns
                                        AND b1.channel = v.channel AND b1.version = v.version LIMIT 1) bl) b,
               (SELECT array_agg(wr.task_id ORDER BY wr.task_path, wr.task_id, wr.idx) AS task_ids,
                       array_agg(wr.channel ORDER BY wr.task_path, wr.task_id, wr.idx) AS channels,
                       array_agg(wr.type ORDER BY wr.task_path, wr.task_id, wr.idx) AS types,
                       array_agg(CASE WHEN checkpoint_payload.encrypted
                                      THEN ctx.context_unseal(wr.context_id, wr.blob,
                                               'checkpoint_writes', wr.checkpoint_ns, wr.checkpoint_id,
                                                         wr.task_id, wr.idx::text)
                                      ELSE wr.blob END ORDER BY wr.task_path, wr.task_id, wr.idx) AS blobs
                  FROM ctx.checkpoint_writes wr
                 WHERE wr.tenant = caller_tenant AND wr.context_id = checkpoint_payload.context_id
                   AND wr.checkpoint_ns = checkpoint_payload.checkpoint_ns
                   AND wr.checkpoint_id = checkpoint_payload.checkpoint_id) w;
END
$body$;

-- The rows of ctx.checkpoint_list, in PL/pgSQL: the tenant is taken once and is a parameter of the
-- statement, which a cluster distributed by tenant routes to one node. (Its arguments are
-- renamed: PL/pgSQL refuses an argument named as a result column.)
CREATE FUNCTION ctx.checkpoint_list_rows(p_thread_id text, p_checkpoint_ns text, p_filter jsonb, p_before text, p_max_rows integer, p_checkpoint_id text)
RETURNS TABLE(thread_id text, checkpoint_ns text, checkpoint_id text, parent_checkpoint_id text,
              checkpoint jsonb, metadata jsonb, channels text[], types text[], blobs bytea[],
              write_task_ids text[], write_channels text[], write_types text[], write_blobs bytea[],
              created_at timestamptz)
LANGUAGE plpgsql STABLE AS $body$
#variable_conflict use_column
DECLARE
    caller_tenant text := ctx.current_tenant();
BEGIN
    RETURN QUERY
        SELECT c.thread_id, c.checkpoint_ns, c.checkpoint_id, c.parent_checkpoint_id, c.checkpoint,
               CASE WHEN c.metadata_enc IS NULL THEN c.metadata
                    ELSE convert_from(ctx.context_unseal(c.context_id, c.metadata_enc,
                             'checkpoints.metadata', c.checkpoint_ns, c.checkpoint_id), 'UTF8')::jsonb END,
               p.channels, p.types, p.blobs, p.write_task_ids, p.write_channels, p.write_types, p.write_blobs,
               c.created_at
          FROM (SELECT t.thread_id, x.encrypted, cp.context_id, cp.checkpoint_ns, cp.checkpoint_id,
                       cp.parent_checkpoint_id, cp.checkpoint, cp.metadata, cp.metadata_enc, cp.created_at
                  FROM ctx.checkpoints cp
                  JOIN ctx.threads t ON t.tenant = cp.tenant AND t.context_id = cp.context_id
                  JOIN ctx.contexts x ON x.tenant = cp.tenant AND x.id = cp.context_id
                 WHERE cp.tenant = caller_tenant
                   -- (one thread: its context id as a constant, so the newest come first off the index)
                   AND (p_thread_id IS NULL
                        OR cp.context_id = (SELECT t1.context_id FROM ctx.threads t1
                                             WHERE t1.tenant = caller_tenant AND t1.thread_id = p_thread_id))
                   AND (p_checkpoint_ns IS NULL OR cp.checkpoint_ns = p_checkpoint_ns)
                   AND (p_checkpoint_id IS NULL OR cp.checkpoint_id = p_checkpoint_id)
                   AND (p_before IS NULL OR cp.checkpoint_id < p_before)
                   AND (p_filter IS NULL
                        OR (CASE WHEN cp.metadata_enc IS NULL THEN cp.metadata
                                 ELSE convert_from(ctx.context_unseal(cp.context_id, cp.metadata_enc,
                                          'checkpoints.metadata', cp.checkpoint_ns, cp.checkpoint_id), 'UTF8')::jsonb
                            END) @> p_filter)
                 ORDER BY cp.checkpoint_id DESC, cp.checkpoint_ns
                 LIMIT p_max_rows) c
         CROSS JOIN LATERAL ctx.checkpoint_payload(c.context_id, c.checkpoint_ns, c.checkpoint_id,
                                                   c.checkpoint->'channel_versions', c.encrypted) p
         ORDER BY c.checkpoint_id DESC, c.checkpoint_ns;
END
$body$;

-- The checkpoints are chosen first (filter, order, limit), then only those are decrypted and
-- joined with their values and writes.
CREATE FUNCTION ctx.checkpoint_list(thread_id text DEFAULT NULL, checkpoint_ns text DEFAULT NULL,
                                    filter jsonb DEFAULT NULL, before text DEFAULT NULL,
                                    max_rows integer DEFAULT NULL, checkpoint_id text DEFAULT NULL)
RETURNS TABLE(thread_id text, checkpoint_ns text, checkpoint_id text, parent_checkpoint_id text,
              checkpoint jsonb, metadata jsonb, channels text[], types text[], blobs bytea[],
              write_task_ids text[], write_channels text[], write_types text[], write_blobs bytea[],
              created_at timestamptz)
LANGUAGE sql STABLE AS $body$
    SELECT * FROM ctx.checkpoint_list_rows(checkpoint_list.thread_id, checkpoint_list.checkpoint_ns, checkpoint_list.filter, checkpoint_list.before, checkpoint_list.max_rows, checkpoint_list.checkpoint_id)
$body$;

-- The rows of ctx.checkpoint_get, in PL/pgSQL: the tenant is taken once and is a parameter of the
-- statement, which a cluster distributed by tenant routes to one node. (Its arguments are
-- renamed: PL/pgSQL refuses an argument named as a result column.)
CREATE FUNCTION ctx.checkpoint_get_rows(p_thread_id text, p_checkpoint_ns text, p_checkpoint_id text)
RETURNS TABLE(thread_id text, checkpoint_ns text, checkpoint_id text, parent_checkpoint_id text,
              checkpoint jsonb, metadata jsonb, channels text[], types text[], blobs bytea[],
              write_task_ids text[], write_channels text[], write_types text[], write_blobs bytea[],
              created_at timestamptz)
LANGUAGE plpgsql STABLE AS $body$
#variable_conflict use_column
DECLARE
    caller_tenant text := ctx.current_tenant();
BEGIN
    RETURN QUERY
        SELECT t.thread_id, cp.checkpoint_ns, cp.checkpoint_id, cp.parent_checkpoint_id, cp.checkpoint,
               CASE WHEN cp.metadata_enc IS NULL THEN cp.metadata
                    ELSE convert_from(ctx.context_unseal(cp.context_id, cp.metadata_enc,
                             'checkpoints.metadata', cp.checkpoint_ns, cp.checkpoint_id), 'UTF8')::jsonb END,
               p.channels, p.types, p.blobs, p.write_task_ids, p.write_channels, p.write_types, p.write_blobs,
               cp.created_at
          FROM ctx.threads t
          JOIN ctx.contexts x ON x.tenant = caller_tenant AND x.id = t.context_id
         CROSS JOIN LATERAL (
               -- (one branch runs: "checkpoint_id IS NULL" is decided once per call, even in a generic plan)
               (SELECT * FROM ctx.checkpoints c
                 WHERE p_checkpoint_id IS NULL
                   AND c.tenant = caller_tenant AND c.context_id = t.context_id
                   AND c.checkpoint_ns = coalesce(p_checkpoint_ns, '')
                 ORDER BY c.checkpoint_id DESC LIMIT 1)
               UNION ALL
               (SELECT * FROM ctx.checkpoints c
                 WHERE c.tenant = caller_tenant AND c.context_id = t.context_id
                   AND c.checkpoint_ns = coalesce(p_checkpoint_ns, '')
                   AND c.checkpoint_id = p_checkpoint_id)) cp
         CROSS JOIN LATERAL ctx.checkpoint_payload(cp.context_id, cp.checkpoint_ns, cp.checkpoint_id,
                                                   cp.checkpoint->'channel_versions', x.encrypted) p
         WHERE t.tenant = caller_tenant AND t.thread_id = p_thread_id;
END
$body$;

-- One checkpoint by primary key (the latest of the namespace: the index's last entry), written
-- so that a prepared statement's generic plan stays a key lookup.
CREATE FUNCTION ctx.checkpoint_get(thread_id text, checkpoint_ns text DEFAULT '', checkpoint_id text DEFAULT NULL)
RETURNS TABLE(thread_id text, checkpoint_ns text, checkpoint_id text, parent_checkpoint_id text,
              checkpoint jsonb, metadata jsonb, channels text[], types text[], blobs bytea[],
              write_task_ids text[], write_channels text[], write_types text[], write_blobs bytea[],
              created_at timestamptz)
LANGUAGE sql STABLE AS $body$
    SELECT * FROM ctx.checkpoint_get_rows(checkpoint_get.thread_id, checkpoint_get.checkpoint_ns, checkpoint_get.checkpoint_id)
$body$;

-- Deletes the pending writes and channel values no checkpoint of these contexts refers to.
-- Its exclusive lock waits for puts in flight, whose checkpoints may reuse stored values.
CREATE FUNCTION ctx.checkpoint_collect_garbage(context_ids uuid[]) RETURNS bigint
LANGUAGE plpgsql AS $body$
DECLARE
    caller_tenant text := ctx.current_tenant();
    n bigint;
    total bigint := 0;
BEGIN
    IF checkpoint_collect_garbage.context_ids IS NULL THEN
        RAISE EXCEPTION 'context_ids must not be NULL' USING ERRCODE = '22004';
    END IF;
    PERFORM pg_catalog.pg_advisory_xact_lock(pg_catalog.hashtextextended('ctxstore.checkpoints' || chr(31) || id::text || chr(31) || caller_tenant, 0))
       FROM unnest(checkpoint_collect_garbage.context_ids) AS id ORDER BY id;
    DELETE FROM ctx.checkpoint_writes w
     WHERE w.context_id = ANY (checkpoint_collect_garbage.context_ids) AND w.tenant = caller_tenant
       AND NOT EXISTS (SELECT 1 FROM ctx.checkpoints c
                        WHERE c.tenant = w.tenant AND c.context_id = w.context_id AND c.checkpoint_ns = w.checkpoint_ns
                          AND c.checkpoint_id = w.checkpoint_id);
    GET DIAGNOSTICS n = ROW_COUNT;
    total := total + n;
    DELETE FROM ctx.checkpoint_blobs b
     WHERE b.context_id = ANY (checkpoint_collect_garbage.context_ids) AND b.tenant = caller_tenant
       AND NOT EXISTS (SELECT 1 FROM ctx.checkpoints c
                        WHERE c.tenant = b.tenant AND c.context_id = b.context_id AND c.checkpoint_ns = b.checkpoint_ns
                          AND c.checkpoint->'channel_versions'->>b.channel = b.version);
    GET DIAGNOSTICS n = ROW_COUNT;
    RETURN total + n;
END
$body$;

CREATE FUNCTION ctx.checkpoint_prune(thread_ids text[], keep_latest integer DEFAULT 1) RETURNS bigint
LANGUAGE plpgsql AS $body$
DECLARE
    caller_tenant text := ctx.current_tenant();
    cids uuid[];
    deleted bigint;
BEGIN
    IF checkpoint_prune.thread_ids IS NULL OR checkpoint_prune.keep_latest IS NULL THEN
        RAISE EXCEPTION 'thread_ids and keep_latest must not be NULL' USING ERRCODE = '22004';
    END IF;
    IF checkpoint_prune.keep_latest < 0 THEN
        RAISE EXCEPTION 'keep_latest must be 0 or more, not %', checkpoint_prune.keep_latest USING ERRCODE = '22023',
            HINT = '0 deletes every checkpoint of the threads; 1 keeps the latest of each namespace';
    END IF;
    SELECT coalesce(array_agg(t.context_id), '{}') INTO cids FROM ctx.threads t
     WHERE t.tenant = caller_tenant AND t.thread_id = ANY (checkpoint_prune.thread_ids);
    PERFORM pg_catalog.pg_advisory_xact_lock(pg_catalog.hashtextextended('ctxstore.checkpoints' || chr(31) || id::text || chr(31) || caller_tenant, 0))
       FROM unnest(cids) AS id ORDER BY id;
    DELETE FROM ctx.checkpoints c
     USING (SELECT r.context_id, r.checkpoint_ns, r.checkpoint_id,
                   row_number() OVER (PARTITION BY r.context_id, r.checkpoint_ns ORDER BY r.checkpoint_id DESC) AS rank
              FROM ctx.checkpoints r WHERE r.tenant = caller_tenant AND r.context_id = ANY (cids)) ranked
     WHERE c.tenant = caller_tenant AND c.context_id = ranked.context_id AND c.checkpoint_ns = ranked.checkpoint_ns
       AND c.checkpoint_id = ranked.checkpoint_id AND ranked.rank > checkpoint_prune.keep_latest;
    GET DIAGNOSTICS deleted = ROW_COUNT;
    PERFORM ctx.checkpoint_collect_garbage(cids);
    RETURN deleted;
END
$body$;

CREATE FUNCTION ctx.checkpoint_delete_thread(thread_id text) RETURNS bigint
LANGUAGE sql AS $body$
    SELECT ctx.checkpoint_prune(ARRAY[checkpoint_delete_thread.thread_id], keep_latest => 0)
$body$;

CREATE FUNCTION ctx.checkpoint_delete_runs(run_ids text[]) RETURNS bigint
LANGUAGE plpgsql AS $body$
DECLARE
    caller_tenant text := ctx.current_tenant();
    keys text[];
    cids uuid[];
    deleted bigint;
BEGIN
    IF checkpoint_delete_runs.run_ids IS NULL THEN
        RAISE EXCEPTION 'run_ids must not be NULL' USING ERRCODE = '22004';
    END IF;
    -- plain threads store the run id, encrypted ones its keyed hash (there are none before the
    -- tenant's hashing key exists: no key is made, and no master key needed, to look)
    keys := checkpoint_delete_runs.run_ids;
    IF EXISTS (SELECT 1 FROM ctx.data_keys d WHERE d.tenant = caller_tenant AND d.scope = 'hashing') THEN
        keys := keys || ARRAY(SELECT ctx.checkpoint_run_key(r, true)
                                FROM unnest(checkpoint_delete_runs.run_ids) r WHERE r IS NOT NULL);
    END IF;
    SELECT coalesce(array_agg(DISTINCT c.context_id), '{}') INTO cids FROM ctx.checkpoints c
     WHERE c.tenant = caller_tenant AND c.run_id = ANY (keys);
    PERFORM pg_catalog.pg_advisory_xact_lock(pg_catalog.hashtextextended('ctxstore.checkpoints' || chr(31) || id::text || chr(31) || caller_tenant, 0))
       FROM unnest(cids) AS id ORDER BY id;
    DELETE FROM ctx.checkpoints c
     WHERE c.tenant = caller_tenant AND c.context_id = ANY (cids) AND c.run_id = ANY (keys);
    GET DIAGNOSTICS deleted = ROW_COUNT;
    PERFORM ctx.checkpoint_collect_garbage(cids);
    RETURN deleted;
END
$body$;

-- The target thread, when new, is a fork of the source's context: it reads the source's
-- messages and working memory without copying them; checkpoints are copied (re-sealed with the
-- fork's own key when encrypted).
CREATE FUNCTION ctx.checkpoint_copy_thread(source_thread_id text, target_thread_id text) RETURNS bigint
LANGUAGE plpgsql AS $body$
DECLARE
    caller_tenant text := ctx.current_tenant();
    src uuid;
    dst uuid;
    src_sealed boolean;
    dst_sealed boolean;
    copied bigint;
BEGIN
    IF source_thread_id IS NULL OR target_thread_id IS NULL THEN
        RAISE EXCEPTION 'source_thread_id and target_thread_id must not be NULL' USING ERRCODE = '22004';
    END IF;
    IF source_thread_id = target_thread_id THEN
        RAISE EXCEPTION 'cannot copy thread "%" onto itself', source_thread_id USING ERRCODE = '22023';
    END IF;
    src := ctx.thread_context(source_thread_id, create_missing => false);
    IF src IS NULL THEN
        RAISE EXCEPTION 'thread "%" does not exist', source_thread_id USING ERRCODE = '42704',
            HINT = 'a thread exists once a checkpoint or message was stored in it';
    END IF;
    dst := ctx.thread_context(target_thread_id, create_missing => false);
    IF dst IS NULL THEN
        PERFORM pg_catalog.pg_advisory_xact_lock(pg_catalog.hashtextextended(
            'ctxstore.thread' || chr(31) || caller_tenant || chr(31) || target_thread_id, 0));
        dst := ctx.thread_context(target_thread_id, create_missing => false);
        IF dst IS NULL THEN
            dst := ctx.fork(src);
            UPDATE ctx.contexts SET name = target_thread_id WHERE tenant = caller_tenant AND id = dst;
            INSERT INTO ctx.threads (thread_id, context_id) VALUES (target_thread_id, dst);
        END IF;
    END IF;
    SELECT encrypted INTO src_sealed FROM ctx.contexts WHERE tenant = caller_tenant AND id = src;
    SELECT encrypted INTO dst_sealed FROM ctx.contexts WHERE tenant = caller_tenant AND id = dst;
    IF src_sealed AND NOT dst_sealed THEN
        RAISE EXCEPTION 'cannot copy encrypted thread "%" into unencrypted thread "%"', source_thread_id, target_thread_id
            USING ERRCODE = '55000', HINT = 'copy into a new thread id: it becomes an encrypted fork';
    END IF;
    -- the source exclusively (puts in flight finish first, later ones wait): its values,
    -- checkpoints and writes are read as one consistent state by the three statements below
    -- (both locks in context id order: two copies in opposite directions cannot deadlock; a
    -- transaction that put into the source before copying it waits for other such transactions)
    IF src < dst THEN
        PERFORM pg_catalog.pg_advisory_xact_lock(pg_catalog.hashtextextended('ctxstore.checkpoints' || chr(31) || src::text || chr(31) || caller_tenant, 0));
    END IF;
    PERFORM pg_catalog.pg_advisory_xact_lock_shared(pg_catalog.hashtextextended('ctxstore.checkpoints' || chr(31) || dst::text || chr(31) || caller_tenant, 0));
    IF src > dst THEN
        PERFORM pg_catalog.pg_advisory_xact_lock(pg_catalog.hashtextextended('ctxstore.checkpoints' || chr(31) || src::text || chr(31) || caller_tenant, 0));
    END IF;

    INSERT INTO ctx.checkpoint_blobs (context_id, checkpoint_ns, channel, version, type, blob)
    SELECT dst, b.checkpoint_ns, b.channel, b.version, b.type,
           CASE WHEN b.blob IS NULL OR NOT dst_sealed THEN plain.blob
                ELSE ctx.context_seal(dst, plain.blob, 'checkpoint_blobs', b.checkpoint_ns, b.channel, b.version) END
      FROM ctx.checkpoint_blobs b
     CROSS JOIN LATERAL (SELECT CASE WHEN src_sealed AND b.blob IS NOT NULL
                                     THEN ctx.context_unseal(src, b.blob, 'checkpoint_blobs', b.checkpoint_ns, b.channel, b.version)
                                     ELSE b.blob END AS blob) plain
     WHERE b.tenant = caller_tenant AND b.context_id = src
    ON CONFLICT ON CONSTRAINT checkpoint_blobs_pkey DO NOTHING;

    INSERT INTO ctx.checkpoints (context_id, checkpoint_ns, checkpoint_id, parent_checkpoint_id, run_id,
                                 checkpoint, metadata, metadata_enc, created_at)
    SELECT dst, c.checkpoint_ns, c.checkpoint_id, c.parent_checkpoint_id,
           -- (a plain source's run id is hashed into an encrypted target; a hash stays a hash)
           CASE WHEN dst_sealed AND NOT src_sealed THEN ctx.checkpoint_run_key(c.run_id, true) ELSE c.run_id END,
           c.checkpoint,
           CASE WHEN dst_sealed THEN '{}' ELSE plain.metadata END,
           CASE WHEN dst_sealed THEN ctx.context_seal(dst, convert_to(plain.metadata::text, 'UTF8'),
                                     'checkpoints.metadata', c.checkpoint_ns, c.checkpoint_id) END,
           c.created_at
      FROM ctx.checkpoints c
     CROSS JOIN LATERAL (SELECT CASE WHEN c.metadata_enc IS NULL THEN c.metadata
                                     ELSE convert_from(ctx.context_unseal(src, c.metadata_enc,
                                              'checkpoints.metadata', c.checkpoint_ns, c.checkpoint_id), 'UTF8')::jsonb
                                END AS metadata) plain
     WHERE c.tenant = caller_tenant AND c.context_id = src
    ON CONFLICT ON CONSTRAINT checkpoints_pkey DO NOTHING;
    GET DIAGNOSTICS copied = ROW_COUNT;

    INSERT INTO ctx.checkpoint_writes (context_id, checkpoint_ns, checkpoint_id, task_id, task_path, idx, channel, type, blob, created_at)
    SELECT dst, w.checkpoint_ns, w.checkpoint_id, w.task_id, w.task_path, w.idx, w.channel, w.type,
           CASE WHEN NOT dst_sealed THEN plain.blob
                ELSE ctx.context_seal(dst, plain.blob, 'checkpoint_writes', w.checkpoint_ns,
                                      w.checkpoint_id, w.task_id, w.idx::text) END,
           w.created_at
      FROM ctx.checkpoint_writes w
     CROSS JOIN LATERAL (SELECT CASE WHEN src_sealed
                                     THEN ctx.context_unseal(src, w.blob, 'checkpoint_writes', w.checkpoint_ns,
                                                             w.checkpoint_id, w.task_id, w.idx::text)
                                     ELSE w.blob END AS blob) plain
     WHERE w.tenant = caller_tenant AND w.context_id = src
    ON CONFLICT ON CONSTRAINT checkpoint_writes_pkey DO NOTHING;
    RETURN copied;
END
$body$;

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

-- Messages with identity: every message gets an id (existing ones a generated uuid) and
-- revision 1; edits and deletes write revisions (ctx.message_revisions); keys of messages and
-- summaries lead with the tenant (another tenant's insert could collide with a row and so
-- confirm that a context id exists). The new columns of existing rows are written with the
-- audit trigger off: they are no one's change.
CREATE TYPE ctx.message AS (
    context_id  uuid,
    seq         bigint,
    message_id  text,
    revision    integer,
    role        text,
    content     text,
    metadata    jsonb,
    tokens      integer,
    created_at  timestamptz,
    written_at  timestamptz,
    archived    boolean,
    deleted     boolean,
    current     boolean,
    trace_id    text
);
ALTER TABLE ctx.messages DISABLE TRIGGER audit;
ALTER TABLE ctx.messages
    ADD COLUMN message_id text NOT NULL DEFAULT gen_random_uuid()::text
        CHECK (message_id <> '' AND octet_length(message_id) <= 256),
    ADD COLUMN revision integer NOT NULL DEFAULT 1 CHECK (revision > 0),
    ADD COLUMN deleted boolean NOT NULL DEFAULT false,
    ADD COLUMN written_at timestamptz;
UPDATE ctx.messages SET written_at = created_at;
ALTER TABLE ctx.messages ALTER COLUMN written_at SET DEFAULT now(), ALTER COLUMN written_at SET NOT NULL;
DO $$
BEGIN
    IF (SELECT enabled FROM ctx.audited_tables WHERE table_name = 'messages') THEN
        ALTER TABLE ctx.messages ENABLE TRIGGER audit;
    END IF;
END $$;
ALTER TABLE ctx.messages DROP CONSTRAINT messages_check;
ALTER TABLE ctx.messages
    ADD CONSTRAINT messages_check CHECK (num_nonnulls(content, content_lz4, content_enc) = CASE WHEN deleted THEN 0 ELSE 1 END),
    ADD CONSTRAINT messages_check1 CHECK (NOT deleted OR (metadata_enc IS NULL AND tokens = 0));
ALTER TABLE ctx.messages DROP CONSTRAINT messages_pkey;
ALTER TABLE ctx.messages ADD PRIMARY KEY (tenant, context_id, seq);
DROP INDEX ctx.messages_system_idx;
CREATE INDEX messages_system_idx ON ctx.messages (tenant, context_id, seq) WHERE role = 'system';
CREATE UNIQUE INDEX messages_id_idx ON ctx.messages (tenant, message_id, context_id);
CREATE INDEX messages_created_idx ON ctx.messages (tenant, context_id, created_at, seq);
CREATE INDEX messages_deleted_idx ON ctx.messages (tenant, context_id, created_at, seq) WHERE deleted;
ALTER TABLE ctx.summaries DROP CONSTRAINT summaries_pkey;
ALTER TABLE ctx.summaries ADD PRIMARY KEY (tenant, context_id, version);

CREATE TABLE ctx.message_revisions (
    context_id  uuid NOT NULL,
    tenant      text NOT NULL DEFAULT ctx.current_tenant(),
    seq         bigint NOT NULL,
    revision    integer NOT NULL CHECK (revision > 0),
    message_id  text NOT NULL,
    deleted     boolean NOT NULL DEFAULT false,
    role        text NOT NULL CHECK (role IN ('system', 'user', 'assistant', 'tool')),
    content     text,
    content_lz4 bytea,
    content_enc bytea,
    metadata_enc bytea,
    metadata    jsonb NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(metadata) = 'object'),
    tokens      integer NOT NULL CHECK (tokens >= 0),
    created_at  timestamptz NOT NULL,
    written_at  timestamptz NOT NULL,
    trace_id    text,
    replaced_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant, context_id, seq, revision),
    FOREIGN KEY (tenant, context_id, seq) REFERENCES ctx.messages (tenant, context_id, seq) ON DELETE CASCADE,
    CHECK (num_nonnulls(content, content_lz4, content_enc) = CASE WHEN deleted THEN 0 ELSE 1 END)
);
SELECT pg_catalog.pg_extension_config_dump('ctx.message_revisions', '');
ALTER TABLE ctx.message_revisions ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON ctx.message_revisions
    USING (tenant = ctx.current_tenant()) WITH CHECK (tenant = ctx.current_tenant());

-- Live messages only; tombstones and revisions counted apart; ages by write time. (Replaced,
-- not dropped: the grants made under 0.1.0 stay.)
CREATE OR REPLACE VIEW ctx.context_stats WITH (security_invoker = true) AS
SELECT c.id AS context_id,
       c.tenant,
       c.name,
       c.parent_id,
       c.encrypted,
       -- live messages (tombstones are counted in deleted)
       m.messages,
       m.archived,
       -- hidden from every read by the retention policy, not yet swept
       m.expired,
       m.tokens,
       m.bytes,
       (SELECT count(*) FROM ctx.summaries s WHERE s.tenant = c.tenant AND s.context_id = c.id) AS summaries,
       greatest(c.updated_at, m.last_written) AS last_activity,
       c.retain_max_age,
       c.retain_max_messages,
       c.compact_older_than,
       m.deleted,
       -- earlier revisions of edited or deleted messages (ctx.history shows them)
       (SELECT count(*) FROM ctx.message_revisions r WHERE r.tenant = c.tenant AND r.context_id = c.id) AS revisions
  FROM ctx.contexts c
  -- (an aggregate per context, not a GROUP BY: the view depends on no key of ctx.contexts)
 CROSS JOIN LATERAL (
       SELECT count(*) FILTER (WHERE NOT x.deleted) AS messages,
              count(*) FILTER (WHERE x.content_lz4 IS NOT NULL) AS archived,
              count(*) FILTER (WHERE x.seq <= c.last_seq - c.retain_max_messages
                                  OR x.written_at < now() - c.retain_max_age) AS expired,
              coalesce(sum(x.tokens), 0)::bigint AS tokens,
              coalesce(sum(pg_column_size(x.*)), 0)::bigint AS bytes,
              max(x.written_at) AS last_written,
              count(*) FILTER (WHERE x.deleted) AS deleted
         FROM ctx.messages x
        WHERE x.tenant = c.tenant AND x.context_id = c.id) m;

-- A context's key leads with its tenant: ids are unique per tenant, so another tenant's row can
-- never collide with (or reveal) one. The foreign keys to it are re-created on the new key.
DO $$
DECLARE
    tables text[];
    names text[];
    defs text[];
BEGIN
    SELECT array_agg(f.conrelid::regclass::text ORDER BY f.oid), array_agg(f.conname::text ORDER BY f.oid),
           array_agg(pg_catalog.pg_get_constraintdef(f.oid) ORDER BY f.oid)
      INTO tables, names, defs
      FROM pg_catalog.pg_constraint f
     WHERE f.contype = 'f' AND f.confrelid = 'ctx.contexts'::regclass;
    -- a reference to the id alone (an application's own table) has no unique key to match after
    -- this: say which, before anything is changed
    IF EXISTS (SELECT 1 FROM pg_catalog.pg_constraint f
                WHERE f.contype = 'f' AND f.confrelid = 'ctx.contexts'::regclass
                  AND f.confkey <> ARRAY[(SELECT attnum FROM pg_catalog.pg_attribute
                                           WHERE attrelid = 'ctx.contexts'::regclass AND attname = 'tenant'),
                                         (SELECT attnum FROM pg_catalog.pg_attribute
                                           WHERE attrelid = 'ctx.contexts'::regclass AND attname = 'id')]) THEN
        RAISE EXCEPTION 'foreign keys reference ctx.contexts (id) alone: %',
              (SELECT string_agg(f.conrelid::regclass || '.' || f.conname, ', ')
                 FROM pg_catalog.pg_constraint f
                WHERE f.contype = 'f' AND f.confrelid = 'ctx.contexts'::regclass AND cardinality(f.confkey) = 1)
            USING ERRCODE = '55000',
                  HINT = 'context ids are unique per tenant from 0.2.0: make them reference ctx.contexts (tenant, id), then update';
    END IF;
    FOR i IN 1 .. coalesce(cardinality(tables), 0) LOOP
        EXECUTE format('ALTER TABLE %s DROP CONSTRAINT %I', tables[i], names[i]);
    END LOOP;
    ALTER TABLE ctx.contexts DROP CONSTRAINT contexts_pkey, DROP CONSTRAINT contexts_tenant_id_key;
    ALTER TABLE ctx.contexts ADD PRIMARY KEY (tenant, id);
    FOR i IN 1 .. coalesce(cardinality(tables), 0) LOOP
        EXECUTE format('ALTER TABLE %s ADD CONSTRAINT %I %s', tables[i], names[i], defs[i]);
    END LOOP;
END $$;
DROP INDEX ctx.contexts_parent_idx;
CREATE INDEX contexts_parent_idx ON ctx.contexts (tenant, parent_id) WHERE parent_id IS NOT NULL;

-- (a context is found within the caller's tenant)
CREATE OR REPLACE FUNCTION ctx.set_retention(
    context_id uuid,
    max_age interval DEFAULT NULL,
    max_messages integer DEFAULT NULL,
    compact_older_than interval DEFAULT NULL) RETURNS void
LANGUAGE plpgsql AS $body$
DECLARE
    caller_tenant text := ctx.current_tenant();
BEGIN
    IF set_retention.context_id IS NULL THEN
        RAISE EXCEPTION 'context_id must not be NULL'
            USING ERRCODE = '22004', HINT = 'pass the id ctx.create_context() returned';
    END IF;
    IF set_retention.max_age <= interval '0' OR set_retention.max_age > interval '1000 years' THEN
        RAISE EXCEPTION 'max_age must be a positive interval of at most 1000 years, got %', set_retention.max_age
            USING ERRCODE = '22023', HINT = 'e.g. interval ''30 days''; NULL keeps messages of any age';
    END IF;
    IF set_retention.max_messages < 1 THEN
        RAISE EXCEPTION 'max_messages must be at least 1, got %', set_retention.max_messages
            USING ERRCODE = '22023', HINT = 'NULL keeps any number of messages; ctx.delete_context removes them all';
    END IF;
    IF set_retention.compact_older_than <= interval '0' OR set_retention.compact_older_than > interval '1000 years' THEN
        RAISE EXCEPTION 'compact_older_than must be a positive interval of at most 1000 years, got %', set_retention.compact_older_than
            USING ERRCODE = '22023', HINT = 'e.g. interval ''1 day''; NULL leaves messages uncompressed';
    END IF;
    -- FOR UPDATE waits for sweeps working on this context (they hold KEY SHARE) and makes
    -- later ones skip it until this commits: no sweep deletes under a policy being replaced.
    -- Appends take a weaker lock and do not conflict with sweeps.
    PERFORM 1 FROM ctx.contexts c
     WHERE c.tenant = caller_tenant AND c.id = set_retention.context_id FOR UPDATE;
    UPDATE ctx.contexts c
       SET retain_max_age = set_retention.max_age,
           retain_max_messages = set_retention.max_messages,
           compact_older_than = set_retention.compact_older_than
     WHERE c.tenant = caller_tenant AND c.id = set_retention.context_id;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'context "%" does not exist', set_retention.context_id
            USING ERRCODE = '42704', HINT = 'create it with ctx.create_context(), or check the id (it may have been deleted)';
    END IF;
END
$body$;

-- The message reads return ctx.message rows; ctx.append takes a message id and a timestamp.
DROP FUNCTION ctx.messages(uuid, bigint, integer);
DROP FUNCTION ctx.window(uuid, integer);
DROP FUNCTION ctx.token_window(uuid, integer);
DROP FUNCTION ctx.history(uuid);
DROP FUNCTION ctx.append(uuid, text, text, jsonb);

-- ctx.recall takes a metric and returns the embedding on request.
DROP FUNCTION ctx.recall(text[], real[], text, integer, jsonb, jsonb, timestamptz, boolean);

-- ---- src/schema/imports.sql (new in 0.2.0, as a fresh install creates it) ----
-- Imports from the peers' own tables (docs/migrating.md): a database that ran langchain-postgres,
-- LangGraph's Postgres saver and store, or @mastra/pg moves into ctxstore in one call.
-- Each import runs in the caller's transaction and as the caller (row-level security applies),
-- reads its source through a cursor ordered by the source's key (one batch in memory at a time),
-- writes through the functions the adapters use (so the target's tenant, encryption and
-- processors apply and every row written is audited), and skips what is already there: running
-- it twice imports nothing twice. Each returns one row per kind: imported, skipped (already
-- present), and the settings it applied.

-- The name an import compares a column's type by: a built-in type's name without its modifier
-- ("timestamp with time zone", "jsonb"), pgvector's types by their name ("vector"), anything
-- else qualified by its schema, so that a look-alike type (a "text" of another schema, whose
-- casts would run its owner's code as the importer) never passes for a built-in one.
CREATE FUNCTION ctx.import_type_name(type_oid oid) RETURNS text
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $body$
    SELECT CASE WHEN t.typnamespace = 'pg_catalog'::regnamespace THEN format_type(t.oid, NULL)
                WHEN EXISTS (SELECT 1 FROM pg_depend d JOIN pg_extension x ON x.oid = d.refobjid
                              WHERE d.classid = 'pg_type'::regclass AND d.objid = t.oid AND d.deptype = 'e'
                                AND x.extname = 'vector')
                THEN t.typname::text
                ELSE format('%I.%I', t.typnamespace::regnamespace::text, t.typname) END
      FROM pg_type t WHERE t.oid = type_oid
$body$;

-- The source must be a table (not a view: a view's expressions would run as the importer)
-- without row-level security (nor its policies), with these columns of these types (expected:
-- {"column": ["type", ...]}, names as ctx.import_type_name gives them), else 42P16 naming
-- what differs and what the peer's version creates.
CREATE FUNCTION ctx.check_import_source(source regclass, expected jsonb, peer text) RETURNS void
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $body$
DECLARE
    wrong text;
BEGIN
    IF source IS NULL THEN
        RAISE EXCEPTION 'the source table must not be NULL' USING ERRCODE = '22004',
            HINT = format('pass the table %s writes, e.g. ''public.message_store''', peer);
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_class c WHERE c.oid = source AND c.relkind IN ('r', 'p') AND NOT c.relrowsecurity) THEN
        RAISE EXCEPTION '% is not a plain table', source USING ERRCODE = '42P16',
            DETAIL = 'an import reads tables only: not views, foreign tables, or tables with row-level security',
            HINT = format('import from the table %s wrote (a view or a policy would run its owner''s expressions as you)', peer);
    END IF;
    SELECT string_agg(format('%s (%s)', e.key,
                             coalesce(ctx.import_type_name(a.atttypid), 'missing')), ', ' ORDER BY e.key)
      INTO wrong
      FROM jsonb_each(expected) e
      LEFT JOIN pg_attribute a ON a.attrelid = source AND a.attname = e.key AND a.attnum > 0 AND NOT a.attisdropped
     WHERE a.attname IS NULL OR NOT (e.value ? ctx.import_type_name(a.atttypid));
    IF wrong IS NOT NULL THEN
        RAISE EXCEPTION '% is not a table of %', source, peer USING ERRCODE = '42P16',
            DETAIL = format('unexpected columns: %s', wrong),
            HINT = format('%s creates the columns %s', peer,
                          (SELECT string_agg(format('%s %s', key, value->>0), ', ') FROM jsonb_each(expected)));
    END IF;
END
$body$;

-- What an import applied, tallied over the contexts it wrote to: the tenant, how many of them
-- store their messages encrypted and how many in plain text, and each distinct processors
-- setting among them.
CREATE FUNCTION ctx.import_tally(tally jsonb, context_id uuid) RETURNS jsonb
LANGUAGE plpgsql STABLE AS $body$
#variable_conflict use_column
DECLARE
    caller_tenant text := ctx.current_tenant();
BEGIN
    RETURN (
        SELECT jsonb_build_object(
                   'tenant', c.tenant,
                   'encrypted_contexts', coalesce((tally->>'encrypted_contexts')::bigint, 0) + c.encrypted::int,
                   'plain_contexts', coalesce((tally->>'plain_contexts')::bigint, 0) + (NOT c.encrypted)::int,
                   'processors', CASE WHEN EXISTS (SELECT 1 FROM jsonb_array_elements(tally->'processors') p
                                                  WHERE p.value = c.processors)
                                      THEN tally->'processors'
                                      ELSE coalesce(tally->'processors', '[]') || jsonb_build_array(c.processors) END)
          FROM ctx.contexts c
         WHERE c.tenant = caller_tenant AND c.id = import_tally.context_id);
END
$body$;

-- Saves the messages of a batch that the context does not hold yet. Each item is as
-- ctx.save_messages takes it, with its message_id, plus "occurrence": the k-th row of the
-- source with that id in the thread is saved when the message has fewer than k revisions (the
-- first creates it; a repeat of the id, which the peer keeps as another row, becomes its next
-- revision, as the adapters save it). Returns how many it saved (a processor may drop one).
CREATE FUNCTION ctx.import_messages(context_id uuid, items jsonb) RETURNS bigint
LANGUAGE plpgsql AS $body$
DECLARE
    caller_tenant text := ctx.current_tenant();
    revisions jsonb;
    fresh jsonb;
    saved bigint;
BEGIN
    -- the batch's ids the context holds, with their revisions: one probe of the id index for the
    -- batch (EXECUTE: planned with this batch's ids, never a cached plan made when the thread
    -- was short, which scanned the thread once per item)
    EXECUTE 'SELECT jsonb_object_agg(m.message_id, m.revision) FROM ctx.messages m
              WHERE m.tenant = $3 AND m.message_id = ANY ($1) AND m.context_id = $2'
       INTO revisions
      USING ARRAY(SELECT e->>'message_id' FROM jsonb_array_elements(items) e), import_messages.context_id, caller_tenant;
    SELECT jsonb_agg(i.item - 'occurrence' ORDER BY i.n) INTO fresh
      FROM jsonb_array_elements(items) WITH ORDINALITY AS i(item, n)
     WHERE coalesce((revisions->>(i.item->>'message_id'))::integer, 0) < (i.item->>'occurrence')::integer;
    IF fresh IS NULL THEN
        RETURN 0;
    END IF;
    SELECT count(*) INTO saved FROM ctx.save_messages(import_messages.context_id, fresh);
    RETURN saved;
END
$body$;

-- A caller's timestamp as ctx.save_messages takes it (RFC 3339, UTC).
CREATE FUNCTION ctx.import_timestamp(at timestamptz) RETURNS text
LANGUAGE plpgsql IMMUTABLE AS $body$
BEGIN
    IF NOT isfinite(at) OR at < '0001-01-01 00:00:00+00' THEN
        RAISE EXCEPTION 'the time % cannot be a message''s', at USING ERRCODE = '22007',
            HINT = 'a message''s created_at is a finite time in the common era: fix the source row';
    END IF;
    RETURN to_char(at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"');
END
$body$;

-- One row of langchain-postgres's message table as the LangChain chat history adapter saves
-- the message (clients/python: chat_history.encode): its role, its text (list content as its
-- JSON), LangChain's type and fields in metadata.langchain, its id; a message without an id gets
-- one made of the source table's name and the row's id (never shown to LangChain: has_id is
-- false; so rename the table only after the last run).
CREATE FUNCTION ctx.langchain_chat_item(message jsonb, source text, row_id bigint, created_at timestamptz)
RETURNS jsonb
LANGUAGE plpgsql STABLE AS $body$
DECLARE
    kind text := message->>'type';
    data jsonb := message->'data';
    has_id boolean;
    role text;
BEGIN
    IF jsonb_typeof(message) IS DISTINCT FROM 'object' OR jsonb_typeof(data) IS DISTINCT FROM 'object'
       OR kind IS NULL OR NOT data ? 'content' THEN
        RAISE EXCEPTION 'row % of % is not a LangChain message', row_id, source USING ERRCODE = '22023',
            HINT = 'langchain-postgres stores message_to_dict(message): {"type": ..., "data": {"content": ..., ...}}';
    END IF;
    role := CASE kind
        WHEN 'human' THEN 'user' WHEN 'HumanMessageChunk' THEN 'user'
        WHEN 'ai' THEN 'assistant' WHEN 'AIMessageChunk' THEN 'assistant'
        WHEN 'system' THEN 'system' WHEN 'developer' THEN 'system' WHEN 'SystemMessageChunk' THEN 'system'
        WHEN 'tool' THEN 'tool' WHEN 'function' THEN 'tool'
        WHEN 'ToolMessageChunk' THEN 'tool' WHEN 'FunctionMessageChunk' THEN 'tool'
        WHEN 'chat' THEN coalesce(nullif(data->>'role', ''), 'user')
        WHEN 'ChatMessageChunk' THEN coalesce(nullif(data->>'role', ''), 'user')
    END;
    IF role IS NULL THEN
        RAISE EXCEPTION 'row % of % has the unknown message type "%"', row_id, source, kind USING ERRCODE = '22023',
            HINT = 'LangChain''s types are human, ai, system, developer, chat, tool, function and their chunks';
    END IF;
    IF role NOT IN ('user', 'assistant', 'system', 'tool') THEN
        role := 'user';
    END IF;
    has_id := coalesce(jsonb_typeof(data->'id') NOT IN ('null'), false);
    RETURN jsonb_build_object(
        'message_id', CASE WHEN has_id THEN data->>'id' ELSE format('langchain-postgres:%s:%s', source, row_id) END,
        'role', role,
        'content', CASE jsonb_typeof(data->'content') WHEN 'string' THEN data->>'content' ELSE (data->'content')::text END,
        'created_at', ctx.import_timestamp(created_at),
        'metadata', jsonb_build_object('langchain', jsonb_build_object(
            'type', kind,
            'data', data - 'content' - 'id',
            'content_is_json', jsonb_typeof(data->'content') <> 'string',
            'has_id', has_id)));
END
$body$;

-- The context of a thread id in the caller's tenant (NULL when there is none), refused (23505)
-- when another framework holds the id: an import never writes into another framework's thread.
CREATE FUNCTION ctx.import_thread_of(thread_id text, framework text) RETURNS uuid
LANGUAGE plpgsql STABLE AS $body$
DECLARE
    caller_tenant text := ctx.current_tenant();
    t record;
BEGIN
    SELECT th.context_id, th.framework INTO t FROM ctx.threads th
     WHERE th.tenant = caller_tenant AND th.thread_id = import_thread_of.thread_id;
    IF NOT FOUND THEN
        RETURN NULL;
    END IF;
    IF t.framework <> import_thread_of.framework THEN
        RAISE EXCEPTION 'thread id "%" is held by framework "%"', import_thread_of.thread_id, t.framework
            USING ERRCODE = '23505', HINT = 'import into another tenant, or delete that thread first';
    END IF;
    RETURN t.context_id;
END
$body$;

-- langchain-postgres 0.0.19's PostgresChatMessageHistory table: each session becomes the
-- thread of the same id (what CtxstoreChatMessageHistory(session_id) reads), its messages in
-- the table's order with their ids and created_at. encrypted and processors apply to the
-- threads it creates (as ctx.thread_context); threads that exist keep theirs.
CREATE FUNCTION ctx.import_langchain_chat(source regclass, encrypted boolean DEFAULT NULL,
                                          processors jsonb DEFAULT NULL, batch_size integer DEFAULT 1000)
RETURNS TABLE(kind text, imported bigint, skipped bigint, applied jsonb)
LANGUAGE plpgsql AS $body$
DECLARE
    caller_tenant text := ctx.current_tenant();
    peer constant text := 'langchain-postgres 0.0.19 (PostgresChatMessageHistory.create_tables)';
    r record;
    session uuid;
    cid uuid;
    -- (a plpgsql array grows in place; a jsonb array would be copied on every append)
    batch jsonb[] := '{}';
    batch_bytes bigint := 0;
    threads_new bigint := 0;
    threads_old bigint := 0;
    saved bigint := 0;
    seen bigint := 0;
    settings jsonb;
BEGIN
    PERFORM ctx.check_import_source(source,
        '{"id": ["integer", "bigint"], "session_id": ["uuid"], "message": ["jsonb"],
          "created_at": ["timestamp with time zone"]}', peer);
    IF batch_size IS NULL OR batch_size NOT BETWEEN 1 AND 100000 THEN
        RAISE EXCEPTION 'batch_size must be 1 to 100,000, got %', batch_size USING ERRCODE = '22023',
            HINT = 'the messages saved per call; 1,000 is a good size';
    END IF;
    -- occurrence: the how-many-th row with this message id in its session (see ctx.import_messages)
    FOR r IN EXECUTE format(
        'SELECT session_id, ctx.langchain_chat_item(message, %L, id, created_at) AS item,
                CASE WHEN message->''data''->>''id'' IS NULL THEN 1
                     ELSE row_number() OVER (PARTITION BY session_id, message->''data''->>''id'' ORDER BY id) END AS occurrence
           FROM %s ORDER BY session_id, id',
        (SELECT format('%s.%s', c.relnamespace::regnamespace, c.relname) FROM pg_class c WHERE c.oid = source), source) LOOP
        -- a batch holds one session's messages, and an id once (a repeat starts the next batch)
        -- (and at most 64 MB: a jsonb value holds 256 MB)
        IF session IS DISTINCT FROM r.session_id OR cardinality(batch) >= batch_size OR r.occurrence > 1
           OR batch_bytes + pg_column_size(r.item) > 67108864 THEN
            IF cardinality(batch) > 0 THEN
                saved := saved + ctx.import_messages(cid, to_jsonb(batch));
            END IF;
            batch := '{}';
            batch_bytes := 0;
        END IF;
        IF session IS DISTINCT FROM r.session_id THEN
            session := r.session_id;
            cid := ctx.import_thread_of(session::text, '');
            IF cid IS NULL THEN
                cid := ctx.thread_context(session::text, encrypted => import_langchain_chat.encrypted,
                                          processors => import_langchain_chat.processors);
                threads_new := threads_new + 1;
            ELSE
                threads_old := threads_old + 1;
            END IF;
            settings := ctx.import_tally(settings, cid);
        END IF;
        batch := batch || (r.item || jsonb_build_object('occurrence', r.occurrence));
        batch_bytes := batch_bytes + pg_column_size(r.item);
        seen := seen + 1;
    END LOOP;
    IF cardinality(batch) > 0 THEN
        saved := saved + ctx.import_messages(cid, to_jsonb(batch));
    END IF;
    settings := coalesce(settings, jsonb_build_object('tenant', caller_tenant));
    RETURN QUERY VALUES ('threads', threads_new, threads_old, settings),
                        ('messages', saved, seen - saved, settings);
END
$body$;

-- Whether a peer's migrations table says its schema is at the version the import reads
-- (else 55000: an older one must be migrated by the peer first, a newer one is not known).
CREATE FUNCTION ctx.check_import_migrations(migrations regclass, expected integer, peer text, setup text)
RETURNS void
LANGUAGE plpgsql AS $body$
DECLARE
    at integer;
BEGIN
    IF migrations IS NULL THEN
        RAISE EXCEPTION 'no migrations table of % found', peer USING ERRCODE = '42P01',
            HINT = format('pass the schema where %s created its tables', setup);
    END IF;
    EXECUTE format('SELECT max(v) FROM %s', migrations) INTO at;
    IF at IS DISTINCT FROM expected THEN
        RAISE EXCEPTION '% is at migration %, the import reads migration %', migrations, coalesce(at::text, 'none'), expected
            USING ERRCODE = '55000',
            HINT = CASE WHEN at IS NULL OR at < expected THEN format('run %s with %s first', setup, peer)
                        ELSE format('this ctxstore reads the tables of %s; a newer version''s are not known to it', peer) END;
    END IF;
END
$body$;

-- LangGraph's PostgresSaver tables (langgraph-checkpoint-postgres 3.2.0, in schema `source`):
-- each thread becomes the thread of the same id (what CtxstoreSaver reads), each checkpoint is
-- put as the adapter puts it (its values as blobs: the primitives the peer keeps inline in the
-- checkpoint become 'json' blobs at their versions, which LangGraph's serializer reads), and
-- each task's pending writes are put as they were. Checkpoints and writes already there are
-- skipped (writes the application added to the peer's tables since an earlier run are not).
CREATE FUNCTION ctx.import_langgraph_checkpoints(source name DEFAULT 'public', encrypted boolean DEFAULT NULL)
RETURNS TABLE(kind text, imported bigint, skipped bigint, applied jsonb)
LANGUAGE plpgsql AS $body$
DECLARE
    caller_tenant text := ctx.current_tenant();
    peer constant text := 'langgraph-checkpoint-postgres 3.2.0 (PostgresSaver)';
    r record;
    w record;
    thread text;
    cid uuid;
    values_ record;
    threads_new bigint := 0;
    threads_old bigint := 0;
    put bigint := 0;
    present bigint := 0;
    writes bigint := 0;
    writes_present bigint := 0;
    written integer;
    settings jsonb;
BEGIN
    PERFORM ctx.check_import_migrations(to_regclass(format('%I.checkpoint_migrations', source)), 9, peer,
                                        'PostgresSaver.setup()');
    PERFORM ctx.check_import_source(format('%I.checkpoints', source)::regclass,
        '{"thread_id": ["text"], "checkpoint_ns": ["text"], "checkpoint_id": ["text"],
          "parent_checkpoint_id": ["text"], "checkpoint": ["jsonb"], "metadata": ["jsonb"]}', peer);
    PERFORM ctx.check_import_source(format('%I.checkpoint_blobs', source)::regclass,
        '{"thread_id": ["text"], "checkpoint_ns": ["text"], "channel": ["text"], "version": ["text"],
          "type": ["text"], "blob": ["bytea"]}', peer);
    PERFORM ctx.check_import_source(format('%I.checkpoint_writes', source)::regclass,
        '{"thread_id": ["text"], "checkpoint_ns": ["text"], "checkpoint_id": ["text"], "task_id": ["text"],
          "idx": ["integer"], "channel": ["text"], "type": ["text"], "blob": ["bytea"], "task_path": ["text"]}', peer);
    FOR r IN EXECUTE format('SELECT thread_id, checkpoint_ns, checkpoint_id, parent_checkpoint_id, checkpoint, metadata
                               FROM %I.checkpoints ORDER BY thread_id, checkpoint_ns, checkpoint_id', source) LOOP
        IF thread IS DISTINCT FROM r.thread_id THEN
            thread := r.thread_id;
            cid := ctx.import_thread_of(thread, '');
            IF cid IS NULL THEN
                cid := ctx.thread_context(thread, encrypted => import_langgraph_checkpoints.encrypted);
                threads_new := threads_new + 1;
            ELSE
                threads_old := threads_old + 1;
            END IF;
            settings := ctx.import_tally(settings, cid);
        END IF;
        IF EXISTS (SELECT 1 FROM ctx.checkpoints c
                    WHERE c.tenant = caller_tenant AND c.context_id = cid
                      AND c.checkpoint_ns = r.checkpoint_ns AND c.checkpoint_id = r.checkpoint_id) THEN
            present := present + 1;
        ELSE
            -- each channel at the version this checkpoint saw: its blob row if there is one (the
            -- peer's own read prefers it too), else the inline value
            EXECUTE format($q$
                SELECT coalesce(array_agg(v.channel ORDER BY v.channel), '{}') AS channels,
                       coalesce(array_agg(v.version ORDER BY v.channel), '{}') AS versions,
                       coalesce(array_agg(coalesce(b.type, CASE WHEN i.value = 'null' THEN 'null' ELSE 'json' END)
                                          ORDER BY v.channel), '{}') AS types,
                       coalesce(array_agg(CASE WHEN b.type IS NOT NULL THEN b.blob
                                               WHEN i.value = 'null' THEN '\x'::bytea
                                               ELSE convert_to(i.value::text, 'UTF8') END ORDER BY v.channel), '{}') AS blobs
                  FROM jsonb_each_text($1->'channel_versions') AS v(channel, version)
                  LEFT JOIN %I.checkpoint_blobs b
                         ON b.thread_id = $2 AND b.checkpoint_ns = $3 AND b.channel = v.channel AND b.version = v.version
                  LEFT JOIN jsonb_each($1->'channel_values') AS i(channel, value) ON i.channel = v.channel
                 WHERE b.type IS NOT NULL OR i.value IS NOT NULL$q$, source)
              INTO values_ USING r.checkpoint, r.thread_id, r.checkpoint_ns;
            PERFORM ctx.checkpoint_put(r.thread_id, r.checkpoint_ns, r.checkpoint - 'channel_values', r.metadata,
                                       r.parent_checkpoint_id, values_.channels, values_.versions, values_.types,
                                       values_.blobs);
            put := put + 1;
        END IF;
        FOR w IN EXECUTE format('SELECT task_id, task_path, array_agg(idx ORDER BY idx) AS idxs,
                                        array_agg(channel ORDER BY idx) AS channels, array_agg(type ORDER BY idx) AS types,
                                        array_agg(blob ORDER BY idx) AS blobs
                                   FROM %I.checkpoint_writes
                                  WHERE thread_id = $1 AND checkpoint_ns = $2 AND checkpoint_id = $3
                                  GROUP BY task_id, task_path ORDER BY task_path, task_id', source)
          USING r.thread_id, r.checkpoint_ns, r.checkpoint_id LOOP
            IF array_position(w.types, NULL) IS NOT NULL THEN
                RAISE EXCEPTION 'a pending write of checkpoint % (thread %, task %) has no type', r.checkpoint_id, r.thread_id, w.task_id
                    USING ERRCODE = '22023', HINT = 'LangGraph cannot read such a write either: delete it from checkpoint_writes, or fix its type';
            END IF;
            written := ctx.checkpoint_put_writes(r.thread_id, r.checkpoint_ns, r.checkpoint_id, w.task_id, w.idxs,
                                                 w.channels, w.types, w.blobs, w.task_path);
            writes := writes + written;
            writes_present := writes_present + cardinality(w.idxs) - written;
        END LOOP;
    END LOOP;
    settings := coalesce(settings, jsonb_build_object('tenant', caller_tenant));
    RETURN QUERY VALUES ('threads', threads_new, threads_old, settings),
                        ('checkpoints', put, present, settings),
                        ('writes', writes, writes_present, settings);
END
$body$;

-- The text LangGraph embedded for an indexed field of a stored value (the field's path as
-- store_vectors names it: "$" for the whole value, "a.b" for a field, "a.b.0" for the first of
-- several texts). Only a simple path is followed; anything else is the value's JSON text.
-- (ctxstore keeps the text with the embedding for keyword search; LangGraph keeps no text.)
CREATE FUNCTION ctx.langgraph_field_text(value jsonb, field_name text) RETURNS text
LANGUAGE sql IMMUTABLE AS $body$
    SELECT coalesce(CASE WHEN field_name <> '$' THEN nullif(value #>> string_to_array(field_name, '.'), '') END,
                    CASE WHEN field_name <> '$' THEN nullif(value #>> string_to_array(regexp_replace(field_name, '\.\d+$', ''), '.'), '') END,
                    value::text)
$body$;

-- LangGraph's PostgresStore tables (langgraph-checkpoint-postgres 3.2.0, in schema `source`):
-- each item is put where CtxstoreStore(root => root) reads it (namespace root + the prefix's
-- labels), keeping its created_at, updated_at, expires_at and TTL (LangGraph keeps whole
-- minutes); each of its embeddings (store_vectors, when the store has an index) becomes a memory
-- as the adapter remembers it. Items already there are kept as they are, with their memories.
CREATE FUNCTION ctx.import_langgraph_store(source name DEFAULT 'public', root text DEFAULT 'langgraph')
RETURNS TABLE(kind text, imported bigint, skipped bigint, applied jsonb)
LANGUAGE plpgsql AS $body$
DECLARE
    caller_tenant text := ctx.current_tenant();
    peer constant text := 'langgraph-checkpoint-postgres 3.2.0 (PostgresStore)';
    has_vectors boolean;
    r record;
    v record;
    ns text[];
    items bigint := 0;
    items_present bigint := 0;
    vectors bigint := 0;
    vectors_present bigint := 0;
    sealed boolean;
    redacted boolean;
    sealed_items bigint := 0;
    redacted_items bigint := 0;
    settings jsonb;
BEGIN
    IF root IS NULL OR root = '' THEN
        RAISE EXCEPTION 'root must be a non-empty label' USING ERRCODE = '22023',
            HINT = 'the root CtxstoreStore is given (''langgraph'' by default)';
    END IF;
    PERFORM ctx.check_import_migrations(to_regclass(format('%I.store_migrations', source)), 3, peer, 'PostgresStore.setup()');
    PERFORM ctx.check_import_source(format('%I.store', source)::regclass,
        '{"prefix": ["text"], "key": ["text"], "value": ["jsonb"], "created_at": ["timestamp with time zone"],
          "updated_at": ["timestamp with time zone"], "expires_at": ["timestamp with time zone"], "ttl_minutes": ["integer"]}', peer);
    has_vectors := to_regclass(format('%I.store_vectors', source)) IS NOT NULL;
    IF has_vectors THEN
        PERFORM ctx.check_import_source(format('%I.store_vectors', source)::regclass,
            '{"prefix": ["text"], "key": ["text"], "field_name": ["text"], "embedding": ["vector", "halfvec"]}', peer);
    END IF;
    FOR r IN EXECUTE format('SELECT prefix, key, value, created_at, updated_at, expires_at, ttl_minutes
                               FROM %I.store ORDER BY prefix, key', source) LOOP
        ns := ARRAY[root] || string_to_array(r.prefix, '.');
        IF EXISTS (SELECT 1 FROM ctx.state s
                    WHERE s.tenant = caller_tenant AND s.ns_key = array_to_string(ns, chr(31)) || chr(31)
                      AND s.key = r.key AND s.version > 0) THEN
            items_present := items_present + 1;
            IF has_vectors THEN
                EXECUTE format('SELECT count(*) FROM %I.store_vectors WHERE prefix = $1 AND key = $2', source)
                   INTO v USING r.prefix, r.key;
                vectors_present := vectors_present + v.count;
            END IF;
            CONTINUE;
        END IF;
        PERFORM ctx.put(ns, r.key, r.value,
                        ttl => CASE WHEN r.ttl_minutes > 0 THEN make_interval(mins => r.ttl_minutes) END);
        UPDATE ctx.state s
           SET created_at = coalesce(r.created_at, s.created_at), updated_at = coalesce(r.updated_at, s.updated_at),
               expires_at = r.expires_at
         WHERE s.tenant = caller_tenant AND s.ns_key = array_to_string(ns, chr(31)) || chr(31) AND s.key = r.key
        RETURNING s.value_enc IS NOT NULL, s.redacted IS NOT NULL INTO sealed, redacted;
        items := items + 1;
        sealed_items := sealed_items + sealed::int;
        redacted_items := redacted_items + redacted::int;
        IF has_vectors THEN
            FOR v IN EXECUTE format('SELECT field_name, embedding::vector::real[] AS embedding FROM %I.store_vectors
                                      WHERE prefix = $1 AND key = $2 ORDER BY field_name', source)
              USING r.prefix, r.key LOOP
                PERFORM ctx.remember(ns, ctx.langgraph_field_text(r.value, v.field_name), v.embedding,
                                     jsonb_build_object('lg_key', r.key, 'value', r.value));
                vectors := vectors + 1;
            END LOOP;
        END IF;
    END LOOP;
    -- (a namespace's encryption and write processors apply to each put: say how many they changed)
    settings := jsonb_build_object('tenant', caller_tenant, 'root', root,
                                   'encrypted_items', sealed_items, 'redacted_items', redacted_items);
    RETURN QUERY VALUES ('items', items, items_present, settings),
                        ('embeddings', vectors, vectors_present, settings);
END
$body$;

-- Whether a plain namespace holds a current memory whose metadata has this id under id_key
-- (the adapters' document ids: _lc_id, _mastra_id), from the metadata index.
CREATE FUNCTION ctx.import_memory_exists(namespace text[], id_key text, id text) RETURNS boolean
LANGUAGE plpgsql STABLE AS $body$
#variable_conflict use_column
DECLARE
    caller_tenant text := ctx.current_tenant();
BEGIN
    RETURN (
        SELECT EXISTS (SELECT 1 FROM ctx.memories m
                        WHERE m.tenant = caller_tenant
                          AND m.ns_key = array_to_string(import_memory_exists.namespace, chr(31)) || chr(31)
                          AND m.valid_to IS NULL AND m.metadata @> jsonb_build_object(id_key, import_memory_exists.id)));
END
$body$;

-- Takes an import's turn on a namespace of the caller's tenant (an advisory lock to the end of
-- the transaction: two imports at once would each miss the other's documents), and says how
-- to tell which document ids (under id_key) it holds: NULL for a plain namespace (then
-- ctx.import_memory_exists asks the metadata index, id by id), else the ids as a set
-- ({"id": true}), read once, decrypted, through ctx.recall: a sealed namespace's metadata is
-- ciphertext, which the metadata index cannot see.
CREATE FUNCTION ctx.import_claim_namespace(namespace text[], id_key text) RETURNS jsonb
LANGUAGE plpgsql AS $body$
DECLARE
    caller_tenant text := ctx.current_tenant();
    namespace_key constant text := array_to_string(import_claim_namespace.namespace, chr(31)) || chr(31);
    n bigint;
    ids jsonb;
BEGIN
    PERFORM pg_advisory_xact_lock(hashtextextended('ctxstore.import' || chr(31) || caller_tenant || chr(31)
                                                   || array_to_string(import_claim_namespace.namespace, chr(31)), 0));
    IF NOT EXISTS (SELECT 1 FROM ctx.memories m
                    WHERE m.tenant = caller_tenant AND m.ns_key = namespace_key
                      AND m.metadata_enc IS NOT NULL) THEN
        RETURN NULL;
    END IF;
    SELECT count(*) INTO n FROM ctx.memories m
     WHERE m.tenant = caller_tenant AND m.valid_to IS NULL AND m.ns_key = namespace_key;
    SELECT coalesce(jsonb_object_agg(r.metadata->>id_key, true) FILTER (WHERE r.metadata ? id_key), '{}') INTO ids
      FROM ctx.recall(import_claim_namespace.namespace, k => greatest(n, 1)::integer, include_descendants => false) r;
    RETURN ids;
END
$body$;

-- The metric of the first pgvector index on a column (from its operator class), or NULL: the
-- only place a peer's database records the distance its application searches by.
CREATE FUNCTION ctx.import_index_metric(source regclass, column_name name) RETURNS text
LANGUAGE sql STABLE AS $body$
    SELECT CASE WHEN o.opcname LIKE '%cosine%' THEN 'cosine'
                WHEN o.opcname LIKE '%l2%' THEN 'l2'
                WHEN o.opcname LIKE '%ip%' THEN 'inner_product' END
      FROM pg_index i
      JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = i.indkey[0]
      JOIN pg_opclass o ON o.oid = i.indclass[0]
     WHERE i.indrelid = source AND a.attname = column_name
     ORDER BY i.indexrelid
     LIMIT 1
$body$;

-- langchain-postgres 0.0.19's PGVectorStore table (PGEngine.init_vectorstore_table; the column
-- names are its arguments, with its defaults): each row becomes a memory in `namespace` as
-- CtxstoreVectorStore(namespace) adds a document: its content, its embedding (same dimension,
-- float4 as stored), its metadata (the JSON column merged with every metadata column, the
-- columns winning, as PGVectorStore reads it) and its id as metadata._lc_id. metadata_columns
-- NULL: every column that is none of the others (nor the hybrid search tsvector). Documents
-- whose id the namespace holds are skipped.
CREATE FUNCTION ctx.import_langchain_vectors(source regclass, namespace text[] DEFAULT '{langchain,documents}',
                                             id_column name DEFAULT 'langchain_id', content_column name DEFAULT 'content',
                                             embedding_column name DEFAULT 'embedding',
                                             metadata_json_column name DEFAULT 'langchain_metadata',
                                             metadata_columns name[] DEFAULT NULL)
RETURNS TABLE(kind text, imported bigint, skipped bigint, applied jsonb)
LANGUAGE plpgsql AS $body$
DECLARE
    caller_tenant text := ctx.current_tenant();
    peer constant text := 'langchain-postgres 0.0.19 (PGVectorStore)';
    expected jsonb;
    has_json boolean;
    columns_ name[];
    metadata_sql text := '''{}''::jsonb';
    r record;
    n integer;
    imported_ bigint := 0;
    present bigint := 0;
    present_ids jsonb;
    missing text;
BEGIN
    IF namespace IS NULL OR cardinality(namespace) = 0 THEN
        RAISE EXCEPTION 'namespace must have at least one label' USING ERRCODE = '22023',
            HINT = 'the namespace CtxstoreVectorStore is given (''{langchain,documents}'' by default)';
    END IF;
    IF id_column IS NULL OR content_column IS NULL OR embedding_column IS NULL OR metadata_json_column IS NULL THEN
        RAISE EXCEPTION 'the column names must not be NULL' USING ERRCODE = '22004',
            HINT = 'leave an argument out for PGVectorStore''s default name (a table without a JSON metadata column is fine)';
    END IF;
    expected := jsonb_build_object(id_column, '["uuid", "text", "character varying", "integer", "bigint"]'::jsonb,
                                   content_column, '["text"]'::jsonb, embedding_column, '["vector"]'::jsonb);
    PERFORM ctx.check_import_source(source, expected, peer);
    has_json := EXISTS (SELECT 1 FROM pg_attribute a WHERE a.attrelid = source AND a.attname = metadata_json_column
                           AND a.attnum > 0 AND NOT a.attisdropped);
    IF has_json THEN
        PERFORM ctx.check_import_source(source, jsonb_build_object(metadata_json_column, '["json", "jsonb"]'::jsonb), peer);
        metadata_sql := format('coalesce(CASE WHEN json_typeof(%1$I::json) = ''object'' THEN %1$I::jsonb END, ''{}''::jsonb)',
                               metadata_json_column);
    END IF;
    IF metadata_columns IS NULL THEN
        SELECT coalesce(array_agg(a.attname ORDER BY a.attnum), '{}') INTO columns_
          FROM pg_attribute a
         WHERE a.attrelid = source AND a.attnum > 0 AND NOT a.attisdropped
           AND a.attname NOT IN (id_column, content_column, embedding_column, metadata_json_column)
           AND a.atttypid <> 'tsvector'::regtype;
    ELSE
        columns_ := metadata_columns;
        SELECT string_agg(coalesce(c, 'NULL'), ', ') INTO missing
          FROM unnest(columns_) c
         WHERE c IS NULL OR NOT EXISTS (SELECT 1 FROM pg_attribute a WHERE a.attrelid = source AND a.attname = c
                                           AND a.attnum > 0 AND NOT a.attisdropped);
        IF missing IS NOT NULL THEN
            RAISE EXCEPTION 'metadata_columns names columns % does not have', source USING ERRCODE = '42P16',
                DETAIL = format('missing: %s', missing),
                HINT = 'pass the metadata_columns PGVectorStore was created with, or NULL for every other column';
        END IF;
    END IF;
    -- (jsonb_build_object takes at most 50 pairs: one call per 50 columns)
    FOR n IN 0 .. ceil(cardinality(columns_) / 50.0)::integer - 1 LOOP
        metadata_sql := metadata_sql || ' || jsonb_build_object(' ||
            (SELECT string_agg(format('%L, %I', c, c), ', ') FROM unnest(columns_[n * 50 + 1 : n * 50 + 50]) c) || ')';
    END LOOP;
    present_ids := ctx.import_claim_namespace(import_langchain_vectors.namespace, '_lc_id');
    FOR r IN EXECUTE format('SELECT %I::text AS id, %I AS content, %I::real[] AS embedding, %s AS metadata
                               FROM %s ORDER BY %I', id_column, content_column, embedding_column, metadata_sql,
                            source, id_column) LOOP
        IF r.id IS NULL THEN
            RAISE EXCEPTION 'a row of % has a NULL %', source, id_column USING ERRCODE = '22004',
                HINT = 'every document needs its id: give it one, or delete the row';
        END IF;
        IF coalesce(present_ids ? r.id, ctx.import_memory_exists(import_langchain_vectors.namespace, '_lc_id', r.id)) THEN
            present := present + 1;
            CONTINUE;
        END IF;
        PERFORM ctx.remember(import_langchain_vectors.namespace, r.content, r.embedding, r.metadata || jsonb_build_object('_lc_id', r.id));
        imported_ := imported_ + 1;
    END LOOP;
    RETURN QUERY VALUES ('documents', imported_, present,
                         jsonb_build_object('tenant', caller_tenant, 'namespace', to_jsonb(namespace),
                                            'index_metric', ctx.import_index_metric(source, embedding_column)));
END
$body$;

-- A text as jsonb when it is JSON (as JavaScript's JSON.parse reads it), else NULL.
CREATE FUNCTION ctx.import_try_jsonb(text text) RETURNS jsonb
LANGUAGE plpgsql IMMUTABLE AS $body$
BEGIN
    RETURN text::jsonb;
EXCEPTION WHEN invalid_text_representation OR untranslatable_character THEN
    RETURN NULL;
END
$body$;

-- A metadata value as @mastra/pg reads it back: NULL is none ({} here: ctxstore keeps an
-- object), a JSON string (its generic insert stores objects as a string) is parsed.
CREATE FUNCTION ctx.mastra_metadata(value jsonb) RETURNS jsonb
LANGUAGE sql IMMUTABLE AS $body$
    SELECT CASE WHEN value IS NULL OR value = 'null' THEN '{}'::jsonb
                WHEN jsonb_typeof(value) = 'string' THEN coalesce(ctx.import_try_jsonb(value #>> '{}'), value)
                ELSE value END
$body$;

-- One row of @mastra/pg's mastra_messages as CtxstoreMemory saves the message (clients/
-- typescript: saveItem): its id and time, a ctxstore role, its text to count and search
-- (plainText), and what Mastra reads back in metadata.mastra: the role, the content as
-- @mastra/pg parses it (JSON when it is JSON, else the string), the type unless 'v2', the
-- resource id when the row has one.
CREATE FUNCTION ctx.mastra_message_item(id text, content text, role text, type text, resource_id text,
                                        created_at timestamptz)
RETURNS jsonb
LANGUAGE plpgsql STABLE AS $body$
DECLARE
    parsed jsonb := ctx.import_try_jsonb(content);
    kept jsonb;
    plain text;
BEGIN
    kept := jsonb_build_object('role', role, 'content', coalesce(parsed, to_jsonb(content)));
    IF coalesce(type, '') NOT IN ('', 'v2') THEN
        kept := kept || jsonb_build_object('type', type);
    END IF;
    IF resource_id IS NOT NULL THEN
        kept := kept || jsonb_build_object('resourceId', resource_id);
    END IF;
    -- (as plainText: a string is itself; an object its content, else its text parts, else its parts)
    plain := CASE jsonb_typeof(parsed)
        WHEN 'string' THEN parsed #>> '{}'
        WHEN 'object' THEN coalesce(
            nullif(CASE WHEN jsonb_typeof(parsed->'content') = 'string' THEN parsed->>'content' END, ''),
            (SELECT string_agg(p->>'text', E'\n' ORDER BY n) FROM jsonb_array_elements(
                    CASE WHEN jsonb_typeof(parsed->'parts') = 'array' THEN parsed->'parts' ELSE '[]' END)
                    WITH ORDINALITY AS e(p, n)
              WHERE p->>'type' = 'text' AND jsonb_typeof(p->'text') = 'string' AND p->>'text' <> ''),
            coalesce(parsed->'parts', '[]')::text)
        ELSE '[]' END;
    IF parsed IS NULL THEN
        plain := content;
    END IF;
    RETURN jsonb_build_object(
        'message_id', id,
        'role', CASE WHEN role IN ('system', 'assistant') THEN role ELSE 'user' END,
        'content', plain,
        'created_at', ctx.import_timestamp(created_at),
        'occurrence', 1,
        'metadata', jsonb_build_object('mastra', kept));
END
$body$;

-- Saves a batch of Mastra messages into a thread (ctx.import_messages), but not those whose id
-- another Mastra thread holds (one id is one message in Mastra): they are counted as conflicts.
CREATE FUNCTION ctx.import_mastra_messages(context_id uuid, items jsonb, OUT saved bigint, OUT conflicts bigint)
LANGUAGE plpgsql AS $body$
DECLARE
    elsewhere text[];
BEGIN
    SELECT coalesce(array_agg(l.message_id), '{}') INTO elsewhere
      FROM ctx.locate_messages(ARRAY(SELECT e->>'message_id' FROM jsonb_array_elements(items) e), 'mastra') l
     WHERE l.context_id <> import_mastra_messages.context_id;
    conflicts := cardinality(elsewhere);
    saved := ctx.import_messages(import_mastra_messages.context_id,
                                 (SELECT coalesce(jsonb_agg(x.e ORDER BY x.i), '[]') FROM jsonb_array_elements(items) WITH ORDINALITY AS x(e, i)
                                   WHERE NOT (x.e->>'message_id' = ANY (elsewhere))));
END
$body$;

-- @mastra/pg 1.27.1's tables (PostgresStore and PgVector, in schema `source`): each thread as
-- CtxstoreMemory saves it (framework 'mastra'; its title, resource, metadata and times), its
-- messages in Mastra's order (createdAt, then id) with their ids and times, each resource with
-- its working memory and metadata, and (vectors => true) each PgVector index of the schema as
-- CtxstoreVector creates it (its dimension, and its metric from the index's operator class, as
-- PgVector describes it) with the vectors of its 'default' namespace. Threads, messages,
-- resources, indexes and vectors already there are skipped. Not carried over (and counted):
-- messages whose thread is gone (orphaned: @mastra/pg's prune deletes threads apart from their
-- messages), messages whose id another Mastra thread holds (conflicts), vectors of other
-- PgVector namespaces and bit indexes (CtxstoreVector cannot address them).
CREATE FUNCTION ctx.import_mastra(source name DEFAULT 'public', encrypted boolean DEFAULT NULL,
                                  vectors boolean DEFAULT true, batch_size integer DEFAULT 1000)
RETURNS TABLE(kind text, imported bigint, skipped bigint, applied jsonb)
LANGUAGE plpgsql AS $body$
DECLARE
    caller_tenant text := ctx.current_tenant();
    peer constant text := '@mastra/pg 1.27.1 (PostgresStore)';
    has_z boolean;
    ts_created text;
    ts_updated text;
    t record;
    m record;
    v record;
    ix record;
    cid uuid;
    batch jsonb[];  -- (grows in place)
    batch_bytes bigint;
    wrote boolean;
    saved record;
    n bigint;
    threads_new bigint := 0;
    threads_old bigint := 0;
    messages_new bigint := 0;
    messages_seen bigint := 0;
    conflicts bigint := 0;
    orphaned bigint := 0;
    resources_new bigint := 0;
    resources_old bigint := 0;
    indexes_new bigint := 0;
    indexes_old bigint := 0;
    vectors_new bigint := 0;
    vectors_old bigint := 0;
    vectors_other bigint := 0;
    skipped_indexes text[] := '{}';
    ns text[];
    metric text;
    dims integer;
    registered jsonb;
    present_ids jsonb;
    settings jsonb;
BEGIN
    IF batch_size IS NULL OR batch_size NOT BETWEEN 1 AND 100000 THEN
        RAISE EXCEPTION 'batch_size must be 1 to 100,000, got %', batch_size USING ERRCODE = '22023',
            HINT = 'the messages saved per call; 1,000 is a good size';
    END IF;
    PERFORM ctx.check_import_source(format('%I.mastra_threads', source)::regclass,
        '{"id": ["text"], "resourceId": ["text"], "title": ["text"], "metadata": ["jsonb", "text"],
          "createdAt": ["timestamp without time zone"], "updatedAt": ["timestamp without time zone"]}', peer);
    PERFORM ctx.check_import_source(format('%I.mastra_messages', source)::regclass,
        '{"id": ["text"], "thread_id": ["text"], "content": ["text"], "role": ["text"], "type": ["text"],
          "createdAt": ["timestamp without time zone"], "resourceId": ["text"]}', peer);
    PERFORM ctx.check_import_source(format('%I.mastra_resources', source)::regclass,
        '{"id": ["text"], "workingMemory": ["text"], "metadata": ["jsonb", "text"],
          "createdAt": ["timestamp without time zone"], "updatedAt": ["timestamp without time zone"]}', peer);
    -- a time is its "<column>Z" twin (timestamptz, the instant Mastra reads) when the table has
    -- it, else the plain column (UTC wall clock)
    has_z := EXISTS (SELECT 1 FROM pg_attribute a WHERE a.attrelid = format('%I.mastra_messages', source)::regclass
                                                  AND a.attname = 'createdAtZ' AND NOT a.attisdropped);
    ts_created := CASE WHEN has_z THEN 'coalesce("createdAtZ", "createdAt" AT TIME ZONE ''UTC'')'
                       ELSE '("createdAt" AT TIME ZONE ''UTC'')' END;
    ts_updated := CASE WHEN has_z THEN 'coalesce("updatedAtZ", "updatedAt" AT TIME ZONE ''UTC'')'
                       ELSE '("updatedAt" AT TIME ZONE ''UTC'')' END;

    FOR t IN EXECUTE format('SELECT id, nullif("resourceId", '''') AS resource, title,
                                    ctx.mastra_metadata(metadata::jsonb) AS metadata,
                                    %s AS created_at, %s AS updated_at
                               FROM %I.mastra_threads ORDER BY id', ts_created, ts_updated, source) LOOP
        IF jsonb_typeof(t.metadata) <> 'object' THEN
            RAISE EXCEPTION 'thread "%" of %.mastra_threads has metadata that is not an object', t.id, source
                USING ERRCODE = '22023', HINT = 'Mastra''s thread metadata is an object: fix the row, or set it to NULL';
        END IF;
        cid := (SELECT g.context_id FROM ctx.get_thread(t.id, 'mastra') g);
        IF cid IS NOT NULL THEN
            threads_old := threads_old + 1;
        ELSE
            cid := ctx.save_thread(t.id, t.title, t.resource, t.metadata, t.created_at, t.updated_at,
                                   import_mastra.encrypted, framework => 'mastra');
            threads_new := threads_new + 1;
        END IF;
        settings := ctx.import_tally(settings, cid);
        wrote := false;
        batch := '{}';
        batch_bytes := 0;
        FOR m IN EXECUTE format('SELECT id, content, role, type, "resourceId" AS resource_id, %s AS created_at
                                   FROM %I.mastra_messages WHERE thread_id = $1 ORDER BY "createdAt", id',
                                ts_created, source) USING t.id LOOP
            batch := batch || ctx.mastra_message_item(m.id, m.content, m.role, m.type, m.resource_id, m.created_at);
            batch_bytes := batch_bytes + octet_length(m.content);
            messages_seen := messages_seen + 1;
            IF cardinality(batch) >= batch_size OR batch_bytes > 33554432 THEN  -- (a jsonb value holds 256 MB)
                SELECT * INTO saved FROM ctx.import_mastra_messages(cid, to_jsonb(batch));
                messages_new := messages_new + saved.saved;
                conflicts := conflicts + saved.conflicts;
                wrote := wrote OR saved.saved > 0;
                batch := '{}';
                batch_bytes := 0;
            END IF;
        END LOOP;
        IF cardinality(batch) > 0 THEN
            SELECT * INTO saved FROM ctx.import_mastra_messages(cid, to_jsonb(batch));
            messages_new := messages_new + saved.saved;
            conflicts := conflicts + saved.conflicts;
            wrote := wrote OR saved.saved > 0;
        END IF;
        IF wrote THEN  -- (saving messages made the thread's updated_at now: Mastra's is the thread's)
            PERFORM ctx.save_thread(t.id, updated_at => t.updated_at, framework => 'mastra', create_missing => false);
        END IF;
    END LOOP;
    EXECUTE format('SELECT count(*) FROM %1$I.mastra_messages m
                     WHERE NOT EXISTS (SELECT 1 FROM %1$I.mastra_threads t WHERE t.id = m.thread_id)', source) INTO orphaned;

    FOR t IN EXECUTE format('SELECT id, "workingMemory" AS working_memory,
                                    ctx.mastra_metadata(metadata::jsonb) AS metadata,
                                    %s AS created_at, %s AS updated_at
                               FROM %I.mastra_resources ORDER BY id', ts_created, ts_updated, source) LOOP
        IF jsonb_typeof(t.metadata) <> 'object' THEN
            RAISE EXCEPTION 'resource "%" of %.mastra_resources has metadata that is not an object', t.id, source
                USING ERRCODE = '22023', HINT = 'Mastra''s resource metadata is an object: fix the row, or set it to NULL';
        END IF;
        IF ctx.get('{mastra,resources}', t.id) IS NOT NULL THEN
            resources_old := resources_old + 1;
            CONTINUE;
        END IF;
        PERFORM ctx.put('{mastra,resources}', t.id,
                        jsonb_build_object('workingMemory', t.working_memory, 'metadata', t.metadata,
                                           'createdAt', to_char(t.created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'),
                                           'updatedAt', to_char(t.updated_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"')),
                        expected_version => 0);
        resources_new := resources_new + 1;
    END LOOP;

    IF vectors THEN
        -- PgVector's indexes: the tables with vector_id text, an embedding and jsonb metadata
        FOR ix IN SELECT c.oid::regclass AS tab, c.relname AS name, et.typname AS type, e.atttypmod AS dims,
                         EXISTS (SELECT 1 FROM pg_attribute a WHERE a.attrelid = c.oid AND a.attname = 'namespace'
                                    AND NOT a.attisdropped) AS has_namespace
                    FROM pg_class c
                    JOIN pg_namespace s ON s.oid = c.relnamespace AND s.nspname = source
                    JOIN pg_attribute i ON i.attrelid = c.oid AND i.attname = 'vector_id' AND i.atttypid = 'text'::regtype
                    JOIN pg_attribute md ON md.attrelid = c.oid AND md.attname = 'metadata' AND md.atttypid = 'jsonb'::regtype
                    JOIN pg_attribute e ON e.attrelid = c.oid AND e.attname = 'embedding'
                    JOIN pg_type et ON et.oid = e.atttypid AND et.typname IN ('vector', 'halfvec', 'bit', 'sparsevec')
                   WHERE c.relkind = 'r' AND c.relname ~ '^[a-zA-Z_][a-zA-Z0-9_]*$'
                   ORDER BY c.relname LOOP
            IF ix.type NOT IN ('vector', 'halfvec') THEN
                skipped_indexes := skipped_indexes || format('%s (%s)', ix.name, ix.type);
                CONTINUE;
            END IF;
            metric := CASE ctx.import_index_metric(ix.tab, 'embedding')
                          WHEN 'l2' THEN 'euclidean' WHEN 'inner_product' THEN 'dotproduct' ELSE 'cosine' END;
            dims := ix.dims;
            IF dims IS NULL OR dims <= 0 THEN
                EXECUTE format('SELECT vector_dims(embedding::vector) FROM %s LIMIT 1', ix.tab) INTO dims;
            END IF;
            registered := ctx.get('{mastra,vector_indexes}', ix.name);
            IF registered IS NULL THEN
                PERFORM ctx.put('{mastra,vector_indexes}', ix.name, jsonb_build_object('dimension', dims, 'metric', metric),
                                expected_version => 0);
                indexes_new := indexes_new + 1;
            ELSIF (registered->>'dimension')::integer IS DISTINCT FROM dims THEN
                RAISE EXCEPTION 'index "%" exists with dimension %, the table has %', ix.name,
                    registered->>'dimension', dims USING ERRCODE = '22023',
                    HINT = 'delete the index (CtxstoreVector.deleteIndex) or import into another tenant';
            ELSE
                indexes_old := indexes_old + 1;
            END IF;
            ns := ARRAY['mastra', 'vectors', ix.name];
            present_ids := ctx.import_claim_namespace(ns, '_mastra_id');
            IF ix.has_namespace THEN
                EXECUTE format('SELECT count(*) FROM %s WHERE namespace <> ''default''', ix.tab) INTO n;
                vectors_other := vectors_other + n;
            END IF;
            FOR v IN EXECUTE format('SELECT vector_id, embedding::vector::real[] AS embedding, coalesce(metadata, ''{}'') AS metadata
                                       FROM %s %s ORDER BY vector_id, id', ix.tab,
                                    CASE WHEN ix.has_namespace THEN 'WHERE namespace = ''default''' ELSE '' END) LOOP
                IF coalesce(present_ids ? v.vector_id, ctx.import_memory_exists(ns, '_mastra_id', v.vector_id)) THEN
                    vectors_old := vectors_old + 1;
                    CONTINUE;
                END IF;
                IF jsonb_typeof(v.metadata) <> 'object' OR v.metadata ? '_mastra_id' THEN
                    RAISE EXCEPTION 'vector "%" of index "%" has metadata CtxstoreVector cannot store', v.vector_id, ix.name
                        USING ERRCODE = '22023', HINT = 'metadata must be an object without the reserved key _mastra_id';
                END IF;
                PERFORM ctx.remember(ns, v.vector_id, v.embedding, v.metadata || jsonb_build_object('_mastra_id', v.vector_id));
                vectors_new := vectors_new + 1;
            END LOOP;
        END LOOP;
    END IF;

    settings := coalesce(settings, jsonb_build_object('tenant', caller_tenant));
    RETURN QUERY VALUES
        ('threads', threads_new, threads_old, settings),
        ('messages', messages_new, messages_seen - messages_new,
         settings || jsonb_build_object('conflicts', conflicts, 'orphaned', orphaned)),
        ('resources', resources_new, resources_old, jsonb_build_object('tenant', caller_tenant)),
        ('vector_indexes', indexes_new, indexes_old,
         jsonb_build_object('tenant', caller_tenant, 'not_imported', to_jsonb(skipped_indexes))),
        ('vectors', vectors_new, vectors_old + vectors_other,
         jsonb_build_object('tenant', caller_tenant, 'other_namespaces', vectors_other));
END
$body$;
-- ---- end of src/schema/imports.sql ----

-- ---- src/schema/scale_out.sql (new) ----
-- Distributing ctxstore across a Citus cluster by tenant (docs/scaling.md).

-- How each of the extension's tables is placed on a cluster, read from the catalog: a table
-- whose primary key leads with a NOT NULL tenant is distributed by tenant, all of them
-- colocated (a tenant's rows of every table on one node); every other table is global and
-- becomes a reference table (a copy on each node). `rank` orders them so that a table comes
-- after every table its foreign keys reference, reference tables first.
CREATE FUNCTION ctx.distribution_plan()
RETURNS TABLE (table_name text, placement text, rank integer)
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $$
    WITH RECURSIVE own AS (
        SELECT c.oid AS rel, c.relname::text AS name,
               EXISTS (SELECT FROM pg_index i
                         JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = i.indkey[0]
                        WHERE i.indrelid = c.oid AND i.indisprimary
                          AND a.attname = 'tenant' AND a.attnotnull) AS by_tenant
          FROM pg_class c
          JOIN pg_depend d ON d.classid = 'pg_class'::regclass AND d.objid = c.oid AND d.deptype = 'e'
          JOIN pg_extension e ON e.oid = d.refobjid AND e.extname = 'ctxstore'
         WHERE c.relkind = 'r' AND c.relnamespace = 'ctx'::regnamespace),
    -- depth in the foreign-key graph: referenced tables first
    depth (rel, d) AS (
        SELECT rel, 0 FROM own
        UNION ALL
        SELECT f.conrelid, depth.d + 1
          FROM depth JOIN pg_constraint f ON f.contype = 'f' AND f.confrelid = depth.rel
                                          AND f.conrelid <> depth.rel)
    SELECT own.name,
           CASE WHEN own.by_tenant THEN 'distributed by tenant' ELSE 'reference' END,
           (row_number() OVER (ORDER BY own.by_tenant, max(depth.d), own.name <> 'contexts', own.name))::integer
      FROM own JOIN depth USING (rel)
     GROUP BY own.rel, own.name, own.by_tenant
     ORDER BY 3
$$;

-- On a Citus coordinator: every tenant table distributed by tenant into `shard_count` shards,
-- colocated with ctx.contexts, and every global table made a reference table. Tables already
-- placed are left as they are, so calling it again after an upgrade places only new tables.
CREATE FUNCTION ctx.distribute(shard_count integer DEFAULT 32)
RETURNS TABLE (table_name text, placement text, done text)
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp
-- (Citus's notices for each table copied and truncated: the rows returned say what was done)
SET client_min_messages = warning AS $$
DECLARE
    t record;
    anchor regclass;
    audited regclass[];
    rebuilt text[] := '{}';
BEGIN
    IF NOT EXISTS (SELECT FROM pg_extension WHERE extname = 'citus') THEN
        RAISE EXCEPTION 'ctx.distribute needs the Citus extension in this database'
            USING ERRCODE = '55000',
                  HINT = 'Preload citus before ctxstore (shared_preload_libraries = ''citus,ctxstore-<version>''), '
                      || 'CREATE EXTENSION citus before ctxstore, add the workers, then call ctx.distribute() '
                      || 'on the coordinator. On one server there is nothing to distribute.';
    END IF;
    IF shard_count IS NULL OR shard_count NOT BETWEEN 1 AND 64000 THEN
        RAISE EXCEPTION 'shard_count must be between 1 and 64000, not %', coalesce(shard_count::text, 'NULL')
            USING ERRCODE = '22023', HINT = 'Citus recommends a few shards per core of the cluster; 32 is the default.';
    END IF;
    IF NOT (SELECT pg_catalog.citus_is_coordinator()) THEN
        RAISE EXCEPTION 'ctx.distribute runs on the Citus coordinator'
            USING ERRCODE = '55000', HINT = 'Connect to the coordinator and call it there.';
    END IF;
    -- A global table's changes are audited by the coordinator's copy of it (the audit trigger
    -- skips the workers' copies): the coordinator must hold copies of reference tables.
    IF NOT EXISTS (SELECT FROM pg_dist_node n WHERE n.groupid = 0) THEN
        RAISE EXCEPTION 'the coordinator is not in the cluster''s metadata'
            USING ERRCODE = '55000',
                  HINT = 'Run SELECT citus_set_coordinator_host(''<its host>'', <its port>) on it first: reference tables then keep a copy there.';
    END IF;
    -- ctxstore's tables carry triggers (audit, caches): Citus places them only when told to;
    -- their foreign keys to global tables must not turn those into Citus local tables first.
    PERFORM set_config('citus.enable_unsafe_triggers', 'on', true);
    -- (DDL on reference tables after distributed ones in one transaction: one after another)
    PERFORM set_config('citus.multi_shard_modify_mode', 'sequential', true);
    PERFORM set_config('citus.enable_local_reference_table_foreign_keys', 'off', true);
    -- The casts between ctx.embedding and pgvector's vector, which ctx.create_vector_index makes
    -- on the node it runs on, on every node: the shards' HNSW indexes are built through them.
    -- (As ctx.create_vector_index makes them: without a function, dropped with ctx.embedding.)
    IF EXISTS (SELECT FROM pg_extension WHERE extname = 'vector') THEN
        PERFORM FROM pg_catalog.run_command_on_workers(format($cmd$
            DO $do$
            DECLARE c record;
            BEGIN
                FOR c IN SELECT * FROM (VALUES ('ctx.embedding'::regtype, '%1$s.vector'::regtype, 'IMPLICIT'),
                                               ('%1$s.vector'::regtype, 'ctx.embedding'::regtype, 'ASSIGNMENT')) v(s, t, ctx)
                          WHERE NOT EXISTS (SELECT FROM pg_catalog.pg_cast k WHERE k.castsource = v.s AND k.casttarget = v.t) LOOP
                    EXECUTE format('CREATE CAST (%%s AS %%s) WITHOUT FUNCTION AS %%s', c.s, c.t, c.ctx);
                    UPDATE pg_catalog.pg_depend d SET deptype = 'a' FROM pg_catalog.pg_cast k
                     WHERE k.castsource = c.s AND k.casttarget = c.t
                       AND d.classid = 'pg_catalog.pg_cast'::regclass AND d.objid = k.oid
                       AND d.refclassid = 'pg_catalog.pg_type'::regclass AND d.refobjid = 'ctx.embedding'::regtype;
                END LOOP;
            END $do$ $cmd$, (SELECT quote_ident(n.nspname) FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace
                            WHERE e.extname = 'vector'))) r
         WHERE NOT r.success;
        IF FOUND THEN
            RAISE EXCEPTION 'ctx.distribute could not make the casts to pgvector''s vector on every worker'
                USING ERRCODE = '08006', HINT = 'Install pgvector on every node (CREATE EXTENSION vector reaches the workers), then call it again.';
        END IF;
    END IF;
    -- HNSW indexes made before distributing go, and come back through ctx.create_vector_index
    -- once memories is distributed: Citus puts the indexes of a table it distributes on its
    -- shards but not on the workers' copies of an extension's table, where a later DROP INDEX
    -- (a metric changed) would then fail.
    IF NOT EXISTS (SELECT FROM pg_dist_partition d WHERE d.logicalrelid = 'ctx.memories'::regclass) THEN
        FOR t IN SELECT v.index_name FROM ctx.vector_indexes v
                  WHERE EXISTS (SELECT FROM pg_class c
                                 WHERE c.relname = v.index_name AND c.relnamespace = 'ctx'::regnamespace) LOOP
            EXECUTE format('DROP INDEX ctx.%I', t.index_name);
            rebuilt := rebuilt || t.index_name::text;
        END LOOP;
    END IF;
    -- Moving rows into shards is not a change: the audit triggers stay off while rows move
    -- (the shards are made with them off), and come back on where they were on.
    SELECT array_agg(g.tgrelid) INTO audited FROM pg_trigger g
     WHERE g.tgname = 'audit' AND g.tgenabled <> 'D'
       AND g.tgrelid IN (SELECT format('ctx.%I', p.table_name)::regclass FROM ctx.distribution_plan() p)
       AND g.tgrelid NOT IN (SELECT d.logicalrelid FROM pg_dist_partition d);
    FOR t IN SELECT unnest(audited) AS rel LOOP
        EXECUTE format('ALTER TABLE %s DISABLE TRIGGER audit', t.rel);
    END LOOP;
    SELECT p.logicalrelid INTO anchor FROM pg_dist_partition p
     WHERE p.logicalrelid = 'ctx.contexts'::regclass;
    FOR t IN SELECT * FROM ctx.distribution_plan() ORDER BY rank LOOP
        table_name := t.table_name;
        placement := t.placement;
        IF EXISTS (SELECT FROM pg_dist_partition p
                    WHERE p.logicalrelid = format('ctx.%I', t.table_name)::regclass) THEN
            done := 'already placed';
        ELSIF t.placement = 'reference' THEN
            PERFORM pg_catalog.create_reference_table(format('ctx.%I', t.table_name)::regclass);
            done := 'made a reference table';
        ELSIF anchor IS NULL THEN
            PERFORM pg_catalog.create_distributed_table(format('ctx.%I', t.table_name)::regclass, 'tenant',
                                                        shard_count => shard_count);
            anchor := format('ctx.%I', t.table_name)::regclass;
            done := format('distributed into %s shards', shard_count);
        ELSE
            PERFORM pg_catalog.create_distributed_table(format('ctx.%I', t.table_name)::regclass, 'tenant',
                                                        colocate_with => anchor::text);
            done := format('distributed, colocated with %s', anchor);
        END IF;
        RETURN NEXT;
    END LOOP;
    FOR t IN SELECT unnest(audited) AS rel LOOP
        EXECUTE format('ALTER TABLE %s ENABLE TRIGGER audit', t.rel);
    END LOOP;
    PERFORM ctx.create_vector_index(v.dims, v.metric) FROM ctx.vector_indexes v
      WHERE v.index_name = ANY (rebuilt) ORDER BY v.dims;
    -- Functions whose statements keep one generic plan on one server plan per call here: Citus
    -- routes a statement with parameters to its shard only when planned with their values.
    FOR t IN SELECT p.oid::regprocedure AS fn FROM pg_proc p
              WHERE p.pronamespace = 'ctx'::regnamespace
                AND 'plan_cache_mode=force_generic_plan' = ANY (p.proconfig) LOOP
        EXECUTE format('ALTER FUNCTION %s SET plan_cache_mode = force_custom_plan', t.fn);
    END LOOP;
    -- A checkpoint's values are read by a function Citus pushes down with the checkpoint's row:
    -- its reads are of the same tenant's colocated shards, which Citus allows only when told.
    -- (on every node: it runs on the worker holding the row)
    PERFORM FROM pg_catalog.run_command_on_all_nodes(
        $cmd$ALTER FUNCTION ctx.checkpoint_payload(uuid, text, text, jsonb, boolean)
                 SET citus.allow_nested_distributed_execution = on$cmd$) r
      WHERE NOT r.success;
    IF FOUND THEN
        RAISE EXCEPTION 'ctx.distribute could not set up ctx.checkpoint_payload on every node'
            USING ERRCODE = '08006', HINT = 'Check that every node is reachable (citus_check_cluster_node_health()), then call it again.';
    END IF;
    -- Each binding also as the role's own setting, on every node (see ctx.bind_role_to_tenant).
    FOR t IN SELECT b.role, b.tenant FROM ctx.tenant_roles b
              WHERE EXISTS (SELECT FROM pg_roles r WHERE r.oid = b.role) LOOP
        EXECUTE format('ALTER ROLE %s SET ctxstore.bound_tenant = %L', t.role, t.tenant);
    END LOOP;
    -- The rows copied into the shards stay on the coordinator's disk, unseen, until truncated.
    FOR t IN SELECT p.table_name FROM ctx.distribution_plan() p ORDER BY p.rank DESC LOOP
        PERFORM pg_catalog.truncate_local_data_after_distributing_table(format('ctx.%I', t.table_name)::regclass);
    END LOOP;
    -- Audit ids come from each node's own sequence (the trigger runs where the row is): give
    -- every node its own range, as Citus does for a distributed table's bigserial, so a
    -- tenant's ids stay unique when its shard moves to another node.
    PERFORM FROM pg_catalog.run_command_on_all_nodes(
        $cmd$SELECT pg_catalog.setval('ctx.audit_log_id_seq',
                  greatest((SELECT last_value FROM ctx.audit_log_id_seq),
                           ((SELECT groupid FROM pg_catalog.pg_dist_local_group)::bigint << 48) + 1))$cmd$) r
      WHERE NOT r.success;
    IF FOUND THEN
        RAISE EXCEPTION 'ctx.distribute could not give every node its range of audit ids'
            USING ERRCODE = '08006', HINT = 'Check that every node is reachable (citus_check_cluster_node_health()), then call it again.';
    END IF;
END $$;
REVOKE EXECUTE ON FUNCTION ctx.distribute(integer) FROM PUBLIC;
-- ---- end of src/schema/scale_out.sql ----

-- Embeddings are stored as ctx.embedding, pgvector's vector layout (src/api/embedding.rs): the
-- shell type here, its I/O functions in the function section, the type, its casts and the
-- column's conversion after it.
CREATE TYPE ctx.embedding;

-- Policies compare with ctx.current_tenant() itself, no subquery (a table distributed by tenant
-- refuses a policy with one; the function is native and keeps its answer for the statement):
-- the policies of 0.1.0's tables, as a fresh install makes them.
DO $$
DECLARE p record;
BEGIN
    FOR p IN SELECT c.relname, pol.polname, pol.polcmd FROM pg_catalog.pg_policy pol
               JOIN pg_catalog.pg_class c ON c.oid = pol.polrelid
              WHERE c.relnamespace = 'ctx'::regnamespace AND pol.polname = 'tenant_isolation'
                AND pg_catalog.strpos(pol.polqual::text, '{SUBLINK') > 0 LOOP
        IF p.polcmd = 'r' THEN
            EXECUTE format('ALTER POLICY tenant_isolation ON ctx.%I USING (tenant = ctx.current_tenant())', p.relname);
        ELSE
            EXECUTE format('ALTER POLICY tenant_isolation ON ctx.%I USING (tenant = ctx.current_tenant())
                                WITH CHECK (tenant = ctx.current_tenant())', p.relname);
        END IF;
    END LOOP;
END $$;

-- Every C function, re-pointed at this version's library (scripts/upgrade_functions.py).
CREATE OR REPLACE FUNCTION "append"(
	"context_id" uuid,
	"role" TEXT,
	"content" TEXT,
	"metadata" jsonb DEFAULT '{}',
	"message_id" TEXT DEFAULT NULL,
	"created_at" timestamp with time zone DEFAULT NULL
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

CREATE OR REPLACE FUNCTION "cache_seal"(
	"key" bytea,
	"value" TEXT
) RETURNS bytea
VOLATILE PARALLEL UNSAFE
LANGUAGE c
AS 'ctxstore-0.2.0', 'cache_seal_wrapper';

CREATE OR REPLACE FUNCTION "cache_unseal"(
	"key" bytea,
	"sealed" bytea
) RETURNS TEXT
STABLE PARALLEL SAFE
LANGUAGE c
AS 'ctxstore-0.2.0', 'cache_unseal_wrapper';

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

CREATE OR REPLACE FUNCTION "context_seal"(
	"context_id" uuid,
	"data" bytea,
	"bound_to" VARIADIC TEXT[] DEFAULT '{}'
) RETURNS bytea
VOLATILE PARALLEL SAFE
LANGUAGE c
AS 'ctxstore-0.2.0', 'context_seal_wrapper';

CREATE OR REPLACE FUNCTION "context_unseal"(
	"context_id" uuid,
	"sealed" bytea,
	"bound_to" VARIADIC TEXT[] DEFAULT '{}'
) RETURNS bytea
STABLE PARALLEL SAFE
LANGUAGE c
AS 'ctxstore-0.2.0', 'context_unseal_wrapper';

CREATE OR REPLACE FUNCTION "count_messages"(
	"context_id" uuid,
	"created_from" timestamp with time zone DEFAULT NULL,
	"created_to" timestamp with time zone DEFAULT NULL
) RETURNS bigint
STABLE PARALLEL SAFE
LANGUAGE c
AS 'ctxstore-0.2.0', 'count_messages_wrapper';

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
	"encrypted" bool DEFAULT NULL,
	"resource" TEXT DEFAULT NULL
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

CREATE OR REPLACE FUNCTION "current_tenant"() RETURNS TEXT
STRICT STABLE PARALLEL SAFE
LANGUAGE c
AS 'ctxstore-0.2.0', 'current_tenant_wrapper';

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

CREATE OR REPLACE FUNCTION "delete_messages"(
	"context_id" uuid,
	"message_ids" TEXT[]
) RETURNS INT
VOLATILE PARALLEL UNSAFE
LANGUAGE c
AS 'ctxstore-0.2.0', 'delete_messages_wrapper';

CREATE OR REPLACE FUNCTION "disable_processor"(
	"name" TEXT,
	"all_tenants" bool DEFAULT false
) RETURNS void
VOLATILE PARALLEL UNSAFE
LANGUAGE c
AS 'ctxstore-0.2.0', 'disable_processor_wrapper';

CREATE OR REPLACE FUNCTION "embedding_in"(
	"input" cstring,
	"_type_oid" oid,
	"typmod" INT
) RETURNS ctx.embedding
IMMUTABLE STRICT PARALLEL SAFE 
LANGUAGE c
AS 'ctxstore-0.2.0', 'embedding_in_wrapper';

CREATE OR REPLACE FUNCTION "embedding_out"(
	"embedding" ctx.embedding
) RETURNS cstring
IMMUTABLE STRICT PARALLEL SAFE 
LANGUAGE c
AS 'ctxstore-0.2.0', 'embedding_out_wrapper';

CREATE OR REPLACE FUNCTION "embedding_recv"(
	"buffer" internal,
	"_type_oid" oid,
	"typmod" INT
) RETURNS ctx.embedding
IMMUTABLE STRICT PARALLEL SAFE 
LANGUAGE c
AS 'ctxstore-0.2.0', 'embedding_recv_wrapper';

CREATE OR REPLACE FUNCTION "embedding_send"(
	"embedding" ctx.embedding
) RETURNS bytea
IMMUTABLE STRICT PARALLEL SAFE 
LANGUAGE c
AS 'ctxstore-0.2.0', 'embedding_send_wrapper';

CREATE OR REPLACE FUNCTION "embedding_typmod_in"(
	"modifiers" cstring[]
) RETURNS INT
IMMUTABLE STRICT PARALLEL SAFE 
LANGUAGE c
AS 'ctxstore-0.2.0', 'embedding_typmod_in_wrapper';

CREATE OR REPLACE FUNCTION "embedding"(
	"embedding" ctx.embedding,
	"typmod" INT,
	"_explicit" bool
) RETURNS ctx.embedding
IMMUTABLE STRICT PARALLEL SAFE  
LANGUAGE c
AS 'ctxstore-0.2.0', 'embedding_with_typmod_wrapper';

CREATE OR REPLACE FUNCTION "embedding_to_array"(
	"embedding" ctx.embedding
) RETURNS real[]
IMMUTABLE STRICT PARALLEL SAFE 
LANGUAGE c
AS 'ctxstore-0.2.0', 'embedding_to_array_wrapper';

CREATE OR REPLACE FUNCTION "embedding_similarity"(
	"a" ctx.embedding,
	"b" ctx.embedding,
	"metric" TEXT DEFAULT 'cosine'
) RETURNS real
IMMUTABLE STRICT PARALLEL SAFE 
LANGUAGE c
AS 'ctxstore-0.2.0', 'embedding_similarity_wrapper';

CREATE OR REPLACE FUNCTION "embedding"(
	"values" real[],
	"typmod" INT,
	"_explicit" bool
) RETURNS ctx.embedding
IMMUTABLE STRICT PARALLEL SAFE  
LANGUAGE c
AS 'ctxstore-0.2.0', 'embedding_from_real_array_wrapper';

CREATE OR REPLACE FUNCTION "embedding_dims"(
	"embedding" ctx.embedding
) RETURNS INT
IMMUTABLE STRICT PARALLEL SAFE 
LANGUAGE c
AS 'ctxstore-0.2.0', 'embedding_dims_wrapper';

CREATE OR REPLACE FUNCTION "embedding"(
	"values" double precision[],
	"typmod" INT,
	"_explicit" bool
) RETURNS ctx.embedding
IMMUTABLE STRICT PARALLEL SAFE  
LANGUAGE c
AS 'ctxstore-0.2.0', 'embedding_from_double_array_wrapper';

CREATE OR REPLACE FUNCTION "enable_processor"(
	"name" TEXT,
	"all_tenants" bool DEFAULT false
) RETURNS void
VOLATILE PARALLEL UNSAFE
LANGUAGE c
AS 'ctxstore-0.2.0', 'enable_processor_wrapper';

CREATE OR REPLACE FUNCTION "encrypt_cache"() RETURNS void
STRICT VOLATILE PARALLEL UNSAFE
LANGUAGE c
AS 'ctxstore-0.2.0', 'encrypt_cache_wrapper';

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

CREATE OR REPLACE FUNCTION "get_messages"(
	"context_id" uuid,
	"message_ids" TEXT[]
) RETURNS SETOF ctx.message /* :: pgrx :: heap_tuple :: PgHeapTuple < '_, :: pgrx :: pgbox :: AllocatedByRust
> */
STABLE PARALLEL SAFE
LANGUAGE c
AS 'ctxstore-0.2.0', 'get_messages_wrapper';

CREATE OR REPLACE FUNCTION "history"(
	"context_id" uuid
) RETURNS SETOF ctx.message /* :: pgrx :: heap_tuple :: PgHeapTuple < '_, :: pgrx :: pgbox :: AllocatedByRust
> */
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

CREATE OR REPLACE FUNCTION "keyed_hash"(
	"parts" VARIADIC TEXT[]
) RETURNS bytea
STRICT VOLATILE PARALLEL UNSAFE
LANGUAGE c
AS 'ctxstore-0.2.0', 'keyed_hash_wrapper';

CREATE OR REPLACE FUNCTION "list_contexts"(
	"resource" TEXT DEFAULT NULL,
	"filter" jsonb DEFAULT '{}',
	"order_by" TEXT DEFAULT 'updated_at',
	"descending" bool DEFAULT true,
	"max_rows" INT DEFAULT 100,
	"skip" INT DEFAULT 0
) RETURNS TABLE (
	"id" uuid,
	"name" TEXT,
	"resource" TEXT,
	"metadata" jsonb,
	"created_at" timestamp with time zone,
	"updated_at" timestamp with time zone,
	"message_count" bigint,
	"total_count" bigint
)
STABLE PARALLEL SAFE
LANGUAGE c
AS 'ctxstore-0.2.0', 'list_contexts_wrapper';

CREATE OR REPLACE FUNCTION "list_messages"(
	"context_id" uuid,
	"created_from" timestamp with time zone DEFAULT NULL,
	"created_to" timestamp with time zone DEFAULT NULL,
	"order_by" TEXT DEFAULT 'seq',
	"descending" bool DEFAULT false,
	"max_rows" INT DEFAULT 100,
	"skip" INT DEFAULT 0
) RETURNS SETOF ctx.message /* :: pgrx :: heap_tuple :: PgHeapTuple < '_, :: pgrx :: pgbox :: AllocatedByRust
> */
STABLE PARALLEL SAFE
LANGUAGE c
AS 'ctxstore-0.2.0', 'list_messages_wrapper';

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
) RETURNS SETOF ctx.message /* :: pgrx :: heap_tuple :: PgHeapTuple < '_, :: pgrx :: pgbox :: AllocatedByRust
> */
STABLE PARALLEL SAFE
LANGUAGE c
AS 'ctxstore-0.2.0', 'messages_wrapper';

CREATE OR REPLACE FUNCTION "messages_around"(
	"context_id" uuid,
	"message_id" TEXT,
	"before" INT DEFAULT 0,
	"after" INT DEFAULT 0
) RETURNS SETOF ctx.message /* :: pgrx :: heap_tuple :: PgHeapTuple < '_, :: pgrx :: pgbox :: AllocatedByRust
> */
STABLE PARALLEL SAFE
LANGUAGE c
AS 'ctxstore-0.2.0', 'messages_around_wrapper';

CREATE OR REPLACE FUNCTION "message_windows"(
	"context_id" uuid,
	"message_ids" TEXT[],
	"before" INT[],
	"after" INT[],
	"order_by" TEXT DEFAULT 'seq'
) RETURNS SETOF ctx.message
STABLE PARALLEL SAFE
LANGUAGE c
AS 'ctxstore-0.2.0', 'message_windows_wrapper';

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

CREATE OR REPLACE FUNCTION "purge_messages"(
	"context_id" uuid,
	"message_ids" TEXT[]
) RETURNS INT
VOLATILE PARALLEL UNSAFE
LANGUAGE c
AS 'ctxstore-0.2.0', 'purge_messages_wrapper';

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
	"include_descendants" bool DEFAULT true,
	"metric" TEXT DEFAULT NULL,
	"include_embedding" bool DEFAULT false
) RETURNS TABLE (
	"id" uuid,
	"namespace" TEXT[],
	"content" TEXT,
	"metadata" jsonb,
	"importance" real,
	"similarity" real,
	"text_rank" real,
	"score" real,
	"created_at" timestamp with time zone,
	"embedding" real[]
)
VOLATILE PARALLEL UNSAFE
LANGUAGE c
AS 'ctxstore-0.2.0', 'recall_wrapper';

CREATE OR REPLACE FUNCTION "register_processor"(
	"name" TEXT,
	"stage" TEXT,
	"function" regprocedure,
	"priority" INT DEFAULT 100,
	"scope" jsonb DEFAULT '{}',
	"all_tenants" bool DEFAULT false
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

CREATE OR REPLACE FUNCTION "save_messages"(
	"context_id" uuid,
	"messages" jsonb
) RETURNS TABLE (
	"message_id" TEXT,
	"seq" bigint,
	"revision" INT
)
VOLATILE PARALLEL UNSAFE
LANGUAGE c
AS 'ctxstore-0.2.0', 'save_messages_wrapper';

CREATE OR REPLACE FUNCTION "search_state"(
	"namespace_prefix" TEXT[],
	"filter" jsonb DEFAULT '{}',
	"max_rows" INT DEFAULT 100,
	"skip" INT DEFAULT 0,
	"include_descendants" bool DEFAULT true,
	"include_expired" bool DEFAULT false,
	"order_by" TEXT DEFAULT 'key'
) RETURNS TABLE (
	"namespace" TEXT[],
	"key" TEXT,
	"value" jsonb,
	"version" bigint,
	"updated_at" timestamp with time zone,
	"created_at" timestamp with time zone,
	"expires_at" timestamp with time zone
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

CREATE OR REPLACE FUNCTION "thread_page"(
	"thread_id" TEXT,
	"framework" TEXT DEFAULT NULL,
	"created_from" timestamp with time zone DEFAULT NULL,
	"created_to" timestamp with time zone DEFAULT NULL,
	"order_by" TEXT DEFAULT 'seq',
	"descending" bool DEFAULT false,
	"max_rows" INT DEFAULT 100,
	"skip" INT DEFAULT 0,
	"with_total" bool DEFAULT false
) RETURNS TABLE (
	"context_id" uuid,
	"resource" TEXT,
	"total" bigint,
	"seq" bigint,
	"message_id" TEXT,
	"revision" INT,
	"role" TEXT,
	"content" TEXT,
	"metadata" jsonb,
	"tokens" INT,
	"created_at" timestamp with time zone,
	"written_at" timestamp with time zone,
	"archived" bool,
	"trace_id" TEXT
)
STABLE PARALLEL SAFE
LANGUAGE c
AS 'ctxstore-0.2.0', 'thread_page_wrapper';

CREATE OR REPLACE FUNCTION "token_window"(
	"context_id" uuid,
	"max_tokens" INT
) RETURNS SETOF ctx.message /* :: pgrx :: heap_tuple :: PgHeapTuple < '_, :: pgrx :: pgbox :: AllocatedByRust
> */
STABLE PARALLEL RESTRICTED
LANGUAGE c
AS 'ctxstore-0.2.0', 'token_window_wrapper';

CREATE OR REPLACE FUNCTION "touch"(
	"namespace" TEXT[],
	"keys" TEXT[]
) RETURNS bigint
VOLATILE PARALLEL UNSAFE
LANGUAGE c
AS 'ctxstore-0.2.0', 'touch_wrapper';

CREATE OR REPLACE FUNCTION "unregister_processor"(
	"name" TEXT,
	"all_tenants" bool DEFAULT false
) RETURNS void
VOLATILE PARALLEL UNSAFE
LANGUAGE c
AS 'ctxstore-0.2.0', 'unregister_processor_wrapper';

CREATE OR REPLACE FUNCTION "update_context"(
	"context_id" uuid,
	"name" TEXT DEFAULT NULL,
	"metadata_patch" jsonb DEFAULT NULL,
	"resource" TEXT DEFAULT NULL
) RETURNS TABLE (
	"id" uuid,
	"name" TEXT,
	"resource" TEXT,
	"metadata" jsonb,
	"created_at" timestamp with time zone,
	"updated_at" timestamp with time zone
)
VOLATILE PARALLEL UNSAFE
LANGUAGE c
AS 'ctxstore-0.2.0', 'update_context_wrapper';

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

CREATE OR REPLACE FUNCTION "update_message"(
	"context_id" uuid,
	"message_id" TEXT,
	"content" TEXT DEFAULT NULL,
	"metadata" jsonb DEFAULT NULL,
	"role" TEXT DEFAULT NULL
) RETURNS INT
VOLATILE PARALLEL UNSAFE
LANGUAGE c
AS 'ctxstore-0.2.0', 'update_message_wrapper';

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
) RETURNS SETOF ctx.message /* :: pgrx :: heap_tuple :: PgHeapTuple < '_, :: pgrx :: pgbox :: AllocatedByRust
> */
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

CREATE OR REPLACE FUNCTION "processor_registry_changed"() RETURNS trigger LANGUAGE c AS 'ctxstore-0.2.0', 'processor_registry_changed_wrapper';

CREATE OR REPLACE FUNCTION "tenant_roles_changed"() RETURNS trigger LANGUAGE c AS 'ctxstore-0.2.0', 'tenant_roles_changed_wrapper';

-- Attributes the schema sets after creating functions (CREATE OR REPLACE reset them).
ALTER FUNCTION ctx.list_messages(uuid, timestamptz, timestamptz, text, boolean, integer, integer) SET plan_cache_mode = force_generic_plan;
ALTER FUNCTION ctx.get_messages(uuid, text[]) SET plan_cache_mode = force_generic_plan;
ALTER FUNCTION ctx.messages_around(uuid, text, integer, integer) SET plan_cache_mode = force_generic_plan;
ALTER FUNCTION ctx.message_windows(uuid, text[], integer[], integer[], text) SET plan_cache_mode = force_generic_plan;
ALTER FUNCTION ctx.count_messages(uuid, timestamptz, timestamptz) SET plan_cache_mode = force_generic_plan;
ALTER FUNCTION ctx.thread_page(text, text, timestamptz, timestamptz, text, boolean, integer, integer, boolean) SET plan_cache_mode = force_generic_plan;
ALTER FUNCTION ctx.audit_trigger() SECURITY DEFINER SET search_path = pg_catalog, pg_temp;

-- (after the function section) ctx.current_tenant is native now (it keeps its answer until the
-- bindings change): a binding change counts at once here, and in other backends from their
-- next statement.
CREATE TRIGGER bindings_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON ctx.tenant_roles
    FOR EACH STATEMENT EXECUTE FUNCTION ctx.tenant_roles_changed();
-- (row by row too: logical replication's apply fires row triggers only; both fire always, in
-- replica mode as well — a change that sent no invalidation would leave kept answers stale)
CREATE TRIGGER binding_changed AFTER INSERT OR UPDATE OR DELETE ON ctx.tenant_roles
    FOR EACH ROW EXECUTE FUNCTION ctx.tenant_roles_changed();
ALTER TABLE ctx.tenant_roles ENABLE ALWAYS TRIGGER bindings_changed;
ALTER TABLE ctx.tenant_roles ENABLE ALWAYS TRIGGER binding_changed;

-- (after the function section) Any change of the processor registry, direct writes too, makes
-- every backend reload it.
CREATE TRIGGER registry_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON ctx.processor_registry
    FOR EACH STATEMENT EXECUTE FUNCTION ctx.processor_registry_changed();

-- (after the function section) The new tables are registered as a fresh install registers
-- them: unaudited (extension rows; the trigger remade below switches back as it was).
ALTER TABLE ctx.audited_tables DISABLE TRIGGER audit;
INSERT INTO ctx.audited_tables VALUES
    ('threads', '{tenant,thread_id}'), ('checkpoints', '{context_id,checkpoint_ns,checkpoint_id}'),
    ('checkpoint_blobs', '{context_id,checkpoint_ns,channel,version}'),
    ('checkpoint_writes', '{context_id,checkpoint_ns,checkpoint_id,task_id,idx}'), ('llm_cache', '{tenant,key}'),
    ('message_revisions', '{context_id,seq,revision}');

-- Every audit trigger remade as a fresh install makes it, each switched as it was, the new
-- tables' included: this version's library takes the table's logical name as the trigger's
-- first argument. (Nothing audited is written between the function section and here.)
DO $$
DECLARE t record;
BEGIN
    FOR t IN SELECT * FROM ctx.audited_tables LOOP
        EXECUTE format('DROP TRIGGER IF EXISTS audit ON ctx.%I', t.table_name);
        EXECUTE format('CREATE TRIGGER audit AFTER INSERT OR UPDATE OR DELETE ON ctx.%I
                        FOR EACH ROW EXECUTE FUNCTION ctx.audit_trigger(%L, %s)',
                       t.table_name, t.table_name,
                       (SELECT string_agg(quote_literal(c), ', ') FROM unnest(t.key_columns) c));
        IF NOT t.enabled THEN
            EXECUTE format('ALTER TABLE ctx.%I DISABLE TRIGGER audit', t.table_name);
        END IF;
    END LOOP;
END $$;

-- (after the function section: the type's I/O functions) ctx.embedding and its casts, as
-- src/api/embedding.rs creates them.
CREATE TYPE ctx.embedding (
    INPUT = ctx.embedding_in,
    OUTPUT = ctx.embedding_out,
    TYPMOD_IN = ctx.embedding_typmod_in,
    RECEIVE = ctx.embedding_recv,
    SEND = ctx.embedding_send,
    INTERNALLENGTH = VARIABLE,
    ALIGNMENT = int4,
    STORAGE = external
);
COMMENT ON TYPE ctx.embedding IS 'A memory''s embedding: float4 values in pgvector''s vector layout';
CREATE CAST (ctx.embedding AS ctx.embedding)
    WITH FUNCTION ctx.embedding(ctx.embedding, integer, boolean) AS IMPLICIT;
CREATE CAST (real[] AS ctx.embedding)
    WITH FUNCTION ctx.embedding(real[], integer, boolean) AS IMPLICIT;
CREATE CAST (double precision[] AS ctx.embedding)
    WITH FUNCTION ctx.embedding(double precision[], integer, boolean) AS ASSIGNMENT;
CREATE CAST (ctx.embedding AS real[])
    WITH FUNCTION ctx.embedding_to_array(ctx.embedding) AS IMPLICIT;

-- (after the type: its embeddings are binary ctx.embedding values)
CREATE FUNCTION ctx."remember_many"(
	"namespace" TEXT[],
	"memories" jsonb,
	"ttl" interval DEFAULT NULL,
	"schema" TEXT DEFAULT NULL,
	"embeddings" ctx.embedding[] DEFAULT NULL
) RETURNS TABLE (
	"position" INT,
	"id" uuid
)
VOLATILE PARALLEL UNSAFE
LANGUAGE c
AS 'ctxstore-0.2.0', 'remember_many_wrapper';

-- Stored embeddings become ctx.embedding. Every index over the real[] column goes first (the HNSW
-- indexes of ctx.create_vector_index are expressions that converted every row; an index of the
-- user's own is named in a warning), and so does its cardinality check. The registered indexes
-- come back through ctx.create_vector_index, which now indexes the stored bytes through a cast
-- without a function. The table is rewritten under its ACCESS EXCLUSIVE lock.
DO $$
DECLARE i record;
BEGIN
    FOR i IN SELECT DISTINCT c.relname, v.index_name IS NOT NULL AS registered
               FROM pg_catalog.pg_depend d
               JOIN pg_catalog.pg_class c ON c.oid = d.objid AND c.relkind = 'i'
               JOIN pg_catalog.pg_attribute a ON a.attrelid = d.refobjid AND a.attnum = d.refobjsubid
               LEFT JOIN ctx.vector_indexes v ON v.index_name = c.relname
              WHERE d.classid = 'pg_catalog.pg_class'::regclass AND d.refclassid = 'pg_catalog.pg_class'::regclass
                AND d.refobjid = 'ctx.memories'::regclass AND a.attname = 'embedding' LOOP
        IF NOT i.registered THEN
            RAISE WARNING 'dropping index ctx.% over ctx.memories.embedding', i.relname
                USING HINT = 'the column becomes ctx.embedding; create the index again over it (ctx.create_vector_index for HNSW)';
        END IF;
        EXECUTE format('DROP INDEX ctx.%I', i.relname);
    END LOOP;
    FOR i IN SELECT conname FROM pg_catalog.pg_constraint
              WHERE conrelid = 'ctx.memories'::regclass AND contype = 'c'
                AND pg_catalog.pg_get_constraintdef(oid) LIKE '%cardinality(embedding)%' LOOP
        EXECUTE format('ALTER TABLE ctx.memories DROP CONSTRAINT %I', i.conname);
    END LOOP;
END $$;
ALTER TABLE ctx.memories ALTER COLUMN embedding TYPE ctx.embedding USING embedding::ctx.embedding;
-- (without pgvector the registry keeps its rows: ctx.create_vector_index builds them once it is
-- installed, as after a restore)
SELECT ctx.create_vector_index(dims, metric) FROM ctx.vector_indexes
 WHERE EXISTS (SELECT 1 FROM pg_catalog.pg_extension WHERE extname = 'vector') ORDER BY dims;

-- Each row's rules in one CHECK constraint per table (Postgres parses every CHECK expression
-- again for each statement that writes a row): the functions, then the constraints swapped.
CREATE OR REPLACE FUNCTION "context_row_check"(
	"resource" TEXT,
	"metadata" jsonb,
	"processors" jsonb,
	"encoding" TEXT,
	"last_seq" bigint,
	"retain_max_age" interval,
	"retain_max_messages" INT,
	"compact_older_than" interval,
	"parent_set" bool,
	"ancestors" uuid[],
	"bounds" bigint[]
) RETURNS bool
IMMUTABLE PARALLEL SAFE
LANGUAGE c
AS 'ctxstore-0.2.0', 'context_row_check_wrapper';
CREATE OR REPLACE FUNCTION "message_row_check"(
	"seq" bigint,
	"message_id" TEXT,
	"revision" INT,
	"role" TEXT,
	"tokens" INT,
	"deleted" bool,
	"contents_set" INT,
	"metadata_enc_set" bool,
	"metadata" jsonb
) RETURNS bool
IMMUTABLE PARALLEL SAFE
LANGUAGE c
AS 'ctxstore-0.2.0', 'message_row_check_wrapper';
DO $$
DECLARE c record;
BEGIN
    FOR c IN SELECT conrelid::regclass AS rel, conname FROM pg_catalog.pg_constraint
              WHERE conrelid IN ('ctx.messages'::regclass, 'ctx.contexts'::regclass) AND contype = 'c' LOOP
        EXECUTE format('ALTER TABLE %s DROP CONSTRAINT %I', c.rel, c.conname);
    END LOOP;
END $$;
ALTER TABLE ctx.contexts ADD CONSTRAINT contexts_row_check CHECK (ctx.context_row_check(
    resource, metadata, processors, encoding, last_seq, retain_max_age, retain_max_messages,
    compact_older_than, parent_id IS NOT NULL, ancestors, bounds));
ALTER TABLE ctx.messages ADD CONSTRAINT messages_row_check CHECK (ctx.message_row_check(
    seq, message_id, revision, role, tokens, deleted,
    num_nonnulls(content, content_lz4, content_enc), metadata_enc IS NOT NULL, metadata));
