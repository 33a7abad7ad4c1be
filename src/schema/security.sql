-- Security: data keys of encrypted contexts and namespaces, tenant isolation with row-level
-- security, and a tamper-evident audit log.

-- Data keys, only ever stored wrapped by a master key that lives outside the database.
-- A shredded key keeps its row (wrapped = NULL) so reads can say what happened.
CREATE TABLE ctx.data_keys (
    tenant        text NOT NULL DEFAULT ctx.current_tenant(),
    scope         text NOT NULL,  -- 'context:<uuid>', 'namespace:<namespace key>', 'cache' or 'hashing'
    namespace     text[],         -- the labels of a namespace scope, for reading
    master_key_id text,
    wrapped       bytea,
    created_at    timestamptz NOT NULL DEFAULT now(),
    rotated_at    timestamptz,
    shredded_at   timestamptz,
    PRIMARY KEY (tenant, scope),
    -- (keys are wrapped bound to tenant U+001F scope: a tenant name without it keeps that unique)
    CHECK (strpos(tenant, chr(31)) = 0),
    CHECK ((wrapped IS NULL) = (shredded_at IS NOT NULL)),
    CHECK ((wrapped IS NULL) = (master_key_id IS NULL))
);
SELECT pg_catalog.pg_extension_config_dump('ctx.data_keys', '');

-- Tenant isolation: every data table holds its tenant, and row-level security limits reads
-- and writes to the session's. Table owners and roles with BYPASSRLS are not limited. (The
-- policies call ctx.current_tenant() without a subquery: a table distributed by tenant refuses
-- a policy with one, and the function is native and keeps its answer until the bindings change.)
DO $$
DECLARE t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['contexts', 'messages', 'message_revisions', 'summaries', 'memories', 'state', 'data_keys',
                             'namespace_processors'] LOOP
        EXECUTE format('ALTER TABLE ctx.%I ENABLE ROW LEVEL SECURITY', t);
        EXECUTE format($p$CREATE POLICY tenant_isolation ON ctx.%I
                          USING (tenant = ctx.current_tenant())
                          WITH CHECK (tenant = ctx.current_tenant())$p$, t);
    END LOOP;
END $$;

GRANT SELECT ON ctx.tenant_roles TO PUBLIC;

CREATE FUNCTION ctx.bind_role_to_tenant(role regrole, tenant text) RETURNS void
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

-- The audit log: one row per inserted, updated or deleted row of a ctxstore table. Never the
-- content: the changed column names and the row's identity. Each tenant's rows are chained by
-- SHA-256 when sealed (ctx.seal_audit, ctx.verify_audit): an edit, deletion or reordering of a
-- sealed row breaks its tenant's chain. Keys lead with the tenant (a tenant's log and chain can
-- live on one node of a cluster distributed by tenant).
CREATE TABLE ctx.audit_log (
    id            bigint NOT NULL,
    at            timestamptz NOT NULL,
    tenant        text NOT NULL,
    actor         text NOT NULL,   -- the effective role (SET ROLE) or the session user
    session_role  text NOT NULL,
    application   text,
    table_name    text NOT NULL,
    operation     text NOT NULL CHECK (operation IN ('INSERT', 'UPDATE', 'DELETE')),
    row_key       jsonb NOT NULL,
    columns       text[] NOT NULL,
    xid           xid8 NOT NULL,
    trace_id      text,
    row_hash      bytea,           -- set when sealed
    chain_seq     bigint,          -- the row's place in its tenant's chain
    chain_hash    bytea,
    PRIMARY KEY (tenant, id)
);
-- partial: unsealed rows (chain_seq NULL) cost no entry here when written
CREATE UNIQUE INDEX audit_log_chain_idx ON ctx.audit_log (tenant, chain_seq) WHERE chain_seq IS NOT NULL;
CREATE SEQUENCE ctx.audit_log_id_seq OWNED BY ctx.audit_log.id;
CREATE INDEX audit_log_unsealed_idx ON ctx.audit_log (tenant, id) WHERE chain_seq IS NULL;
CREATE INDEX audit_log_table_idx ON ctx.audit_log (table_name, at);
ALTER TABLE ctx.audit_log ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON ctx.audit_log FOR SELECT USING (tenant = ctx.current_tenant());
SELECT pg_catalog.pg_extension_config_dump('ctx.audit_log', '');
SELECT pg_catalog.pg_extension_config_dump('ctx.audit_log_id_seq', '');

-- The head of each tenant's chain: where its next sealed row continues from. Written by the
-- tenant's first seal (a restored dump brings its own; an install has none to collide).
CREATE TABLE ctx.audit_chain (
    tenant     text PRIMARY KEY,
    last_seq   bigint NOT NULL,
    last_hash  bytea NOT NULL
);
SELECT pg_catalog.pg_extension_config_dump('ctx.audit_chain', '');

-- The canonical hash of an audit row's content (everything but the chain columns).
CREATE FUNCTION ctx.audit_row_hash(r ctx.audit_log) RETURNS bytea
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT sha256(convert_to(jsonb_build_array(
        r.id, extract(epoch FROM r.at), r.tenant, r.actor, r.session_role, r.application, r.table_name, r.operation,
        r.row_key, r.columns, r.xid::text, r.trace_id)::text, 'UTF8'))
$$;


-- Audited tables and the columns that identify their rows.
CREATE TABLE ctx.audited_tables (
    table_name  text PRIMARY KEY,
    key_columns text[] NOT NULL,
    enabled     boolean NOT NULL DEFAULT true  -- switched by ctx.set_audit (itself audited)
);
INSERT INTO ctx.audited_tables VALUES
    ('contexts', '{id}'), ('messages', '{context_id,seq}'), ('message_revisions', '{context_id,seq,revision}'),
    ('summaries', '{context_id,version}'),
    ('memories', '{id,version}'), ('state', '{tenant,namespace,key}'), ('data_keys', '{tenant,scope}'),
    ('schemas', '{name,version}'), ('schema_migrations', '{name,from_version}'),
    ('processor_registry', '{tenant,name}'), ('namespace_processors', '{tenant,namespace}'),
    ('vector_indexes', '{dims}'), ('tenant_roles', '{role}'), ('audited_tables', '{table_name}');

-- (the triggers themselves are created last, with the Rust trigger function: lib.rs)

-- Switches auditing of one table off or on (administrators).
CREATE FUNCTION ctx.set_audit(table_name text, enabled boolean) RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $body$
BEGIN
    IF set_audit.table_name IS NULL OR set_audit.enabled IS NULL THEN
        RAISE EXCEPTION 'table_name and enabled must not be NULL' USING ERRCODE = '22004';
    END IF;
    IF NOT EXISTS (SELECT 1 FROM ctx.audited_tables a WHERE a.table_name = set_audit.table_name) THEN
        RAISE EXCEPTION 'ctx.% is not an audited table', set_audit.table_name USING ERRCODE = '42P01',
            HINT = 'SELECT table_name FROM ctx.audited_tables lists them';
    END IF;
    -- recorded (the audited_tables row changes) before the trigger is switched
    UPDATE ctx.audited_tables a SET enabled = set_audit.enabled WHERE a.table_name = set_audit.table_name;
    EXECUTE format('ALTER TABLE ctx.%I %s TRIGGER audit', set_audit.table_name,
                   CASE WHEN set_audit.enabled THEN 'ENABLE' ELSE 'DISABLE' END);
END
$body$;

-- Chains every committed, unsealed audit row after its tenant's head, in id order, tenant by
-- tenant. Concurrent callers wait for each other (per tenant); returns how many rows were sealed.
CREATE FUNCTION ctx.seal_audit() RETURNS bigint
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
CREATE FUNCTION ctx.verify_audit() RETURNS TABLE(ok boolean, checked bigint, first_bad_id bigint)
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

-- Privileges: the log is written only by the trigger; administrators' functions are not
-- for everyone.
REVOKE ALL ON ctx.audit_log, ctx.audit_chain FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION ctx.set_audit(text, boolean), ctx.seal_audit(), ctx.verify_audit(),
    ctx.verify_audit(text), ctx.bind_role_to_tenant(regrole, text) FROM PUBLIC;

-- Grants what an application role (or, with admin, an administrator) needs.
CREATE FUNCTION ctx.grant_access(role regrole, admin boolean DEFAULT false) RETURNS void
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
REVOKE EXECUTE ON FUNCTION ctx.grant_access(regrole, boolean) FROM PUBLIC;
