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
