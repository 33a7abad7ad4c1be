-- The attack matrix: two tenants whose application roles have names that need quoting, one of
-- them hostile. Tables, columns and functions are enumerated from the catalog, so a new table,
-- sealed column or function is attacked (or named here) without editing a list.
-- (a database of its own: the audit log and stores of the other tests stay as they count them)
CREATE DATABASE ctxstore_attacks;
\c ctxstore_attacks
SET client_min_messages = warning;
CREATE EXTENSION ctxstore;
RESET client_min_messages;
\pset footer off
SET ctxstore.master_key = 'k1:000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f';
CREATE FUNCTION pg_temp.try(statement text) RETURNS text LANGUAGE plpgsql AS $$
BEGIN
    EXECUTE statement;
    RETURN 'ok';
EXCEPTION WHEN OTHERS THEN
    RETURN SQLSTATE || ': ' || regexp_replace(SQLERRM,
        '[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}', '<id>', 'g');
END $$;
-- acme's rows in every table with a tenant column, as one hash (owner's view, no RLS)
CREATE FUNCTION pg_temp.fingerprint(tenant_name text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE t text; h text; acc text := '';
BEGIN
    FOR t IN SELECT c.relname FROM pg_class c JOIN pg_attribute a ON a.attrelid = c.oid
              WHERE c.relnamespace = 'ctx'::regnamespace AND c.relkind = 'r' AND a.attname = 'tenant'
                AND NOT a.attisdropped ORDER BY 1 LOOP
        EXECUTE format('SELECT md5(coalesce(string_agg(r::text, %L ORDER BY r::text), %L)) FROM ctx.%I r WHERE r.tenant = $1',
                       chr(10), '', t) INTO h USING tenant_name;
        acc := acc || t || '=' || h || ';';
    END LOOP;
    RETURN md5(acc);
END $$;

-- Roles whose names need quoting: mixed case, '-', '.', a space, non-ASCII.
SET client_min_messages = warning;
DROP ROLE IF EXISTS "Acme-App", "Globex.App", "globex app", "Ünïcode Äpp", "MixedCase";
RESET client_min_messages;
CREATE ROLE "Acme-App";
CREATE ROLE "Globex.App";
CREATE ROLE "globex app";
CREATE ROLE "Ünïcode Äpp";
CREATE ROLE "MixedCase";
SELECT ctx.grant_access(r::regrole) FROM unnest(ARRAY['"Acme-App"', '"Globex.App"', '"globex app"',
                                                      '"Ünïcode Äpp"', '"MixedCase"']) r;
SELECT ctx.grant_access('"Acme-App"', admin => true);
SELECT ctx.bind_role_to_tenant('"Acme-App"', 'acme');
SELECT ctx.bind_role_to_tenant(r::regrole, 'globex')
  FROM unnest(ARRAY['"Globex.App"', '"globex app"', '"Ünïcode Äpp"', '"MixedCase"']) r;
SELECT role, tenant FROM ctx.tenant_roles ORDER BY tenant, role::text;
-- a tenant name holding U+001F is refused (key bindings are separated by it)
SELECT pg_temp.try(format('SELECT ctx.bind_role_to_tenant(%L, %L)', '"MixedCase"', 'a' || chr(31) || 'b'));

-- acme's data, written by its bound role: every store, encrypted and plain
SET ROLE "Acme-App";
SET ctxstore.tenant = 'globex';  -- ignored: the role is bound
SELECT ctx.current_tenant();
SELECT ctx.create_context('acme chat', '{"memory_namespace": ["users", "u1"]}') AS a \gset
SELECT ctx.create_context('acme vault', encrypted => true) AS av \gset
SELECT ctx.append(:'a', 'user', 'acme-secret plan');
SELECT ctx.append(:'av', 'user', 'acme-secret sealed plan');
SELECT ctx.compact(:'a', 'acme-secret summary', keep_last => 0);
SELECT ctx.remember('{users,u1}', 'acme-secret memory', '{1,0,0}') AS am \gset
SELECT ctx.put('{users,u1}', 'profile', '{"name": "acme-secret user"}');
SELECT ctx.update_working_memory(:'a', '{"note": "acme-secret wm"}');
SELECT ctx.checkpoint_put('acme-thread', '', '{"id": "0001", "channel_versions": {"c": "1"}}',
                          '{"run_id": "acme-run"}', NULL, '{c}', '{1}', '{json}', ARRAY['"acme-secret blob"'::bytea]);
SELECT ctx.cache_store('acme prompt', 'model', '["acme-secret answer"]');
SELECT ctx.configure_namespace_processors('{users}', '{"redact_pii": true}');
RESET ROLE;
RESET ctxstore.tenant;
SELECT pg_temp.fingerprint('acme') AS acme_before \gset

-- 1. A bound role never changes its tenant, whatever its name: the setting is ignored.
SET ROLE "Globex.App";
SET ctxstore.tenant = 'acme';
SELECT ctx.current_tenant(), (SELECT count(*) FROM ctx.messages) AS messages_seen;
-- nor the setting a Citus worker takes a bound role's tenant from: superuser-only
SELECT pg_temp.try($q$SET ctxstore.bound_tenant = 'acme'$q$) AS set_bound_tenant;
RESET ROLE;
RESET ctxstore.tenant;
SET ROLE "Ünïcode Äpp";
SET ctxstore.tenant = 'acme';
SELECT ctx.current_tenant(), (SELECT count(*) FROM ctx.contexts) AS contexts_seen;
RESET ROLE;
RESET ctxstore.tenant;
-- renamed, the role keeps its binding; a new role under a dropped one's name has none
ALTER ROLE "MixedCase" RENAME TO "Renamed Case";
SET ROLE "Renamed Case";
SET ctxstore.tenant = 'acme';
SELECT ctx.current_tenant() AS renamed_role_tenant;
RESET ROLE;
RESET ctxstore.tenant;
DROP OWNED BY "Renamed Case";
DROP ROLE "Renamed Case";
CREATE ROLE "MixedCase";
SELECT ctx.grant_access('"MixedCase"');
SET ROLE "MixedCase";
SET ctxstore.tenant = 'newcomer';
SELECT ctx.current_tenant() AS recreated_role_tenant;
RESET ROLE;
RESET ctxstore.tenant;
-- the next binding clears bindings of dropped roles
SELECT count(*) AS bindings_before FROM ctx.tenant_roles;
SELECT ctx.bind_role_to_tenant('"MixedCase"', NULL);
SELECT count(*) AS bindings_after FROM ctx.tenant_roles;
SET ROLE "globex app";
SELECT ctx.current_tenant() AS space_in_name_bound;
RESET ROLE;
RESET ctxstore.tenant;

-- 2. Keys lead with the tenant: globex can store a row under acme's memory id (its own key
-- space), which neither reveals acme's row nor blocks acme's next version.
SET ROLE "Globex.App";
INSERT INTO ctx.memories (id, version, namespace, ns_key, content, valid_to)
VALUES (:'am', 1, '{x}', 'x', 'squat 1', now()), (:'am', 2, '{x}', 'x', 'squat 2', now());
RESET ROLE;
RESET ctxstore.tenant;
SET ROLE "Acme-App";
SELECT ctx.update_memory(:'am', content => 'acme-secret memory v2') = :'am' AS acme_updates;
SELECT version, content FROM ctx.memories WHERE id = :'am' ORDER BY version;
RESET ROLE;
RESET ctxstore.tenant;
DELETE FROM ctx.memories WHERE tenant = 'globex';
-- The same for a context, its thread and its checkpoint keys: globex writes directly under
-- acme's context id (no unique violation, which would confirm the id), and acme's context,
-- thread and checkpoints read and change as before.
SET ROLE "Globex.App";
SELECT pg_temp.try(format($q$INSERT INTO ctx.contexts (id, name, encoding) VALUES (%L, 'squat', 'o200k_base')$q$, :'a')) AS squat_context;
SELECT pg_temp.try(format($q$INSERT INTO ctx.threads (thread_id, context_id) VALUES ('squat-thread', %L)$q$, :'a')) AS squat_thread;
SELECT pg_temp.try(format($q$INSERT INTO ctx.checkpoints (context_id, checkpoint_ns, checkpoint_id, checkpoint)
                              SELECT %L, '', '0001', '{}'$q$, :'a')) AS squat_checkpoint;
SELECT pg_temp.try(format($q$INSERT INTO ctx.checkpoint_blobs (context_id, channel, version, type, blob)
                              VALUES (%L, 'c', '1', 'json', '"squat"')$q$, :'a')) AS squat_blob;
SELECT name FROM ctx.contexts WHERE id = :'a';
RESET ROLE;
RESET ctxstore.tenant;
SET ROLE "Acme-App";
SELECT ctx.append(:'a', 'user', 'acme-secret plan 2') AS acme_appends;
SELECT content FROM ctx.messages(:'a') ORDER BY seq;
SELECT checkpoint_id, convert_from(blobs[1], 'UTF8') AS blob FROM ctx.checkpoint_get('acme-thread');
SELECT ctx.checkpoint_put('acme-thread', '', '{"id": "0001", "channel_versions": {"c": "1"}}',
                          '{"run_id": "acme-run"}', NULL, '{c}', '{1}', '{json}', ARRAY['"acme-secret blob"'::bytea]);
SELECT name, count(*) FROM ctx.contexts WHERE id = :'a' GROUP BY name;
RESET ROLE;
RESET ctxstore.tenant;
-- a superuser acts within its ctxstore.tenant: as globex it deletes globex's squat only
SET ctxstore.tenant = 'globex';
SELECT ctx.delete_context(:'a');
RESET ctxstore.tenant;
SELECT tenant, name FROM ctx.contexts WHERE id = :'a' ORDER BY 1;
SELECT count(*) AS globex_rows_left FROM ctx.checkpoints WHERE tenant = 'globex';
-- in another tenant, a superuser does not find acme's context, and is told whose it is
SELECT set_config('attacks.acme_context', :'a', false) IS NOT NULL AS noted;
SET ctxstore.tenant = 'globex';
DO $$
DECLARE hint text;
BEGIN
    PERFORM * FROM ctx.window(current_setting('attacks.acme_context')::uuid, 5);
EXCEPTION WHEN undefined_object THEN
    GET STACKED DIAGNOSTICS hint = PG_EXCEPTION_HINT;
    RAISE NOTICE '%: %', SQLSTATE, hint;
END $$;
RESET ctxstore.tenant;
SELECT pg_temp.fingerprint('acme') AS acme_before \gset
-- every unique key of a table with a tenant column, from the catalog, leads with the tenant,
-- except tenant_roles' (the binding itself, one row per role: a global registry)
SELECT c.relname AS table_name, i.relname AS key, a.attname AS first_column
  FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid JOIN pg_class c ON c.oid = x.indrelid
  JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum = x.indkey[0]
 WHERE x.indisunique AND c.relnamespace = 'ctx'::regnamespace
   AND EXISTS (SELECT 1 FROM pg_attribute t WHERE t.attrelid = c.oid AND t.attname = 'tenant' AND NOT t.attisdropped)
   AND a.attname <> 'tenant'
 ORDER BY 1, 2;
SELECT count(*) AS tenant_leading_keys
  FROM pg_index x JOIN pg_class c ON c.oid = x.indrelid
  JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum = x.indkey[0]
 WHERE x.indisunique AND c.relnamespace = 'ctx'::regnamespace AND a.attname = 'tenant';
-- every foreign key between two tables with a tenant column leads with the tenant on both
-- sides, and no foreign key sets anything NULL or to a default (a table distributed by tenant
-- can have neither): the violations (none), then how many keys were checked
CREATE TEMP VIEW tenant_foreign_keys AS
SELECT f.conrelid::regclass AS table_name, f.conname AS key,
       (SELECT attname FROM pg_attribute WHERE attrelid = f.conrelid AND attnum = f.conkey[1]) AS first_column,
       (SELECT attname FROM pg_attribute WHERE attrelid = f.confrelid AND attnum = f.confkey[1]) AS first_referenced,
       EXISTS (SELECT 1 FROM pg_attribute t WHERE t.attrelid = f.confrelid AND t.attname = 'tenant' AND NOT t.attisdropped)
           AS references_tenant_table,
       f.confdeltype AS on_delete, f.confupdtype AS on_update
  FROM pg_constraint f
 WHERE f.contype = 'f' AND f.connamespace = 'ctx'::regnamespace
   AND EXISTS (SELECT 1 FROM pg_attribute t WHERE t.attrelid = f.conrelid AND t.attname = 'tenant' AND NOT t.attisdropped);
SELECT table_name, key, first_column, first_referenced, on_delete, on_update FROM tenant_foreign_keys
 WHERE (references_tenant_table AND (first_column <> 'tenant' OR first_referenced <> 'tenant'))
    OR on_delete IN ('n', 'd') OR on_update IN ('n', 'd')
 ORDER BY 1, 2;
SELECT count(*) AS foreign_keys_checked, count(*) FILTER (WHERE references_tenant_table) AS between_tenant_tables
  FROM tenant_foreign_keys;
-- no policy holds a subquery (a table distributed by tenant refuses one), and every table with a
-- tenant column has row-level security, but for two: audit_chain (no privilege on it for
-- anyone; the owner's audit functions read it) and tenant_roles (the bindings, read by
-- ctx.current_tenant() as every role); then the policies checked
SELECT c.relname AS table_name, p.polname AS policy
  FROM pg_policy p JOIN pg_class c ON c.oid = p.polrelid
 WHERE c.relnamespace = 'ctx'::regnamespace
   AND (strpos(p.polqual::text, '{SUBLINK') > 0 OR strpos(coalesce(p.polwithcheck::text, ''), '{SUBLINK') > 0)
UNION ALL
SELECT c.relname, '(row-level security off)' FROM pg_class c
 WHERE c.relnamespace = 'ctx'::regnamespace AND c.relkind = 'r' AND NOT c.relrowsecurity
   AND EXISTS (SELECT 1 FROM pg_attribute t WHERE t.attrelid = c.oid AND t.attname = 'tenant' AND NOT t.attisdropped)
 ORDER BY 1, 2;
SELECT count(*) AS policies_checked FROM pg_policy p JOIN pg_class c ON c.oid = p.polrelid
 WHERE c.relnamespace = 'ctx'::regnamespace;
-- the tables without a tenant column: the global registries (reference tables in a cluster)
SELECT c.relname AS global_table FROM pg_class c
 WHERE c.relnamespace = 'ctx'::regnamespace AND c.relkind IN ('r', 'p')
   AND NOT EXISTS (SELECT 1 FROM pg_attribute t WHERE t.attrelid = c.oid AND t.attname = 'tenant' AND NOT t.attisdropped)
 ORDER BY 1;
-- how ctx.distribute would place each table on a Citus cluster, from the catalog: every
-- table whose primary key leads with a NOT NULL tenant by tenant (contexts first, the
-- colocation anchor), the global tables and the two registries with a nullable or
-- non-leading tenant (processor_registry, tenant_roles) as reference tables; a table comes
-- after those its foreign keys reference
SELECT * FROM ctx.distribution_plan();
SELECT count(*) AS tables_unplaced FROM pg_class c
 WHERE c.relnamespace = 'ctx'::regnamespace AND c.relkind IN ('r', 'p')
   AND c.relname NOT IN (SELECT table_name FROM ctx.distribution_plan());
SELECT count(*) AS foreign_keys_ordered,
       count(*) FILTER (WHERE a.rank <= b.rank OR (a.placement = 'reference' AND b.placement <> 'reference'))
           AS out_of_order
  FROM pg_constraint f
  JOIN ctx.distribution_plan() a ON format('ctx.%s', a.table_name) = f.conrelid::regclass::text
  JOIN ctx.distribution_plan() b ON format('ctx.%s', b.table_name) = f.confrelid::regclass::text
 WHERE f.contype = 'f' AND f.connamespace = 'ctx'::regnamespace AND f.conrelid <> f.confrelid;
-- without Citus there is nothing to distribute: 55000 and the way to get there
DO $$
DECLARE hint text;
BEGIN
    PERFORM * FROM ctx.distribute();
EXCEPTION WHEN object_not_in_prerequisite_state THEN
    GET STACKED DIAGNOSTICS hint = PG_EXCEPTION_HINT;
    RAISE NOTICE '%: %: %', SQLSTATE, SQLERRM, hint;
END $$;

-- 3. Every function a bound role may execute, called as globex with acme's ids, names and
-- keys: none returns acme's data, none changes acme's rows. Arguments come from each
-- function's signature; uuids are acme's context, then acme's memory.
CREATE FUNCTION pg_temp.arg(t regtype, id uuid) RETURNS text LANGUAGE sql AS $$
    SELECT CASE t
        WHEN 'uuid'::regtype THEN quote_literal(id) || '::uuid'
        WHEN 'uuid[]'::regtype THEN 'ARRAY[' || quote_literal(id) || ']::uuid[]'
        WHEN 'text'::regtype THEN quote_literal('acme-thread') || '::text'
        WHEN 'text[]'::regtype THEN quote_literal('{users,u1}') || '::text[]'
        WHEN 'jsonb'::regtype THEN quote_literal('{}') || '::jsonb'
        WHEN 'json'::regtype THEN quote_literal('{}') || '::json'
        WHEN 'integer'::regtype THEN '1'
        WHEN 'integer[]'::regtype THEN quote_literal('{0}') || '::integer[]'
        WHEN 'bigint'::regtype THEN '1::bigint'
        WHEN 'bigint[]'::regtype THEN quote_literal('{1}') || '::bigint[]'
        WHEN 'boolean'::regtype THEN 'true'
        WHEN 'real'::regtype THEN '0.5::real'
        WHEN 'double precision'::regtype THEN '0.5::float8'
        WHEN 'real[]'::regtype THEN quote_literal('{1,0,0}') || '::real[]'
        WHEN 'double precision[]'::regtype THEN quote_literal('{1,0,0}') || '::float8[]'
        WHEN 'ctx.embedding'::regtype THEN quote_literal('[1,0,0]') || '::ctx.embedding'
        WHEN 'ctx.embedding[]'::regtype THEN 'ARRAY[' || quote_literal('[1,0,0]') || '::ctx.embedding]'
        -- (the embedding type's I/O functions)
        WHEN 'cstring'::regtype THEN quote_literal('[1,0,0]') || '::cstring'
        WHEN 'cstring[]'::regtype THEN quote_literal('{3}') || '::cstring[]'
        WHEN 'bytea'::regtype THEN quote_literal('\x00') || '::bytea'
        WHEN 'bytea[]'::regtype THEN 'ARRAY[' || quote_literal('\x00') || '::bytea]'
        WHEN 'interval'::regtype THEN quote_literal('1 hour') || '::interval'
        WHEN 'timestamp with time zone'::regtype THEN 'now()'
        WHEN 'regrole'::regtype THEN quote_literal('"Acme-App"') || '::regrole'
        WHEN 'regprocedure'::regtype THEN quote_literal('ctx.current_tenant()') || '::regprocedure'
        WHEN 'regclass'::regtype THEN quote_literal('ctx.messages') || '::regclass'
        -- (a schema or column name: ctxstore's own schema, whose tables hold the victim's rows)
        WHEN 'name'::regtype THEN quote_literal('ctx') || '::name'
        WHEN 'name[]'::regtype THEN quote_literal('{content,metadata}') || '::name[]'
        WHEN 'oid'::regtype THEN quote_literal('ctx.messages') || '::regclass::oid'
        ELSE NULL END
$$;
CREATE TEMPORARY TABLE calls AS
SELECT p.oid::regprocedure AS fn, v.which,
       format('SELECT string_agg(r::text, %L) FROM %s(%s) AS r', chr(10), p.oid::regproc,
              (SELECT string_agg(pg_temp.arg(t::regtype, v.id), ', ' ORDER BY n)
                 FROM unnest(p.proargtypes::oid[]) WITH ORDINALITY AS a(t, n))) AS statement,
       (SELECT bool_and(pg_temp.arg(t::regtype, v.id) IS NOT NULL) FROM unnest(p.proargtypes::oid[]) t) AS callable
  FROM pg_proc p
 CROSS JOIN (VALUES ('context', :'a'::uuid), ('memory', :'am'::uuid)) AS v(which, id)
 WHERE p.pronamespace = 'ctx'::regnamespace AND p.prokind = 'f'
   AND p.prorettype <> 'trigger'::regtype
   AND has_function_privilege('Globex.App', p.oid, 'EXECUTE');
GRANT SELECT ON calls TO "Globex.App";
-- every argument type of a callable function is covered (a new type shows up here); internal
-- (ctx.embedding_recv's buffer) cannot be passed from SQL at all
SELECT DISTINCT t::regtype AS uncovered_argument_type
  FROM calls c JOIN pg_proc p ON p.oid = c.fn, unnest(p.proargtypes::oid[]) t
 WHERE pg_temp.arg(t::regtype, gen_random_uuid()) IS NULL AND t <> 'internal'::regtype ORDER BY 1;
CREATE TEMPORARY TABLE outcomes (fn regprocedure, which text, outcome text);
GRANT INSERT ON outcomes TO "Globex.App";
SET ROLE "Globex.App";
SET ctxstore.tenant = 'acme';
DO $$
DECLARE c record; result text;
BEGIN
    FOR c IN SELECT * FROM calls WHERE callable ORDER BY fn::text, which LOOP
        BEGIN
            EXECUTE c.statement INTO result;
            INSERT INTO outcomes VALUES (c.fn, c.which, coalesce(result, ''));
        EXCEPTION WHEN OTHERS THEN
            INSERT INTO outcomes VALUES (c.fn, c.which, 'error ' || SQLSTATE || ': ' || SQLERRM);
        END;
    END LOOP;
END $$;
RESET ROLE;
RESET ctxstore.tenant;
SELECT count(DISTINCT fn) AS functions_attacked, count(*) FILTER (WHERE outcome LIKE '%acme-secret%') AS leaks,
       count(*) FILTER (WHERE outcome LIKE 'error XX000%') AS internal_errors
  FROM outcomes;
SELECT fn, which, outcome FROM outcomes WHERE outcome LIKE '%acme-secret%' OR outcome LIKE 'error XX000%';
-- what the calls answered, by kind (SQLSTATE, or ok): garbage in gets a specific error
SELECT CASE WHEN outcome LIKE 'error %' THEN substr(outcome, 7, 5) ELSE 'ok' END AS outcome, count(*)
  FROM outcomes GROUP BY 1 ORDER BY 1;
SELECT pg_temp.fingerprint('acme') = :'acme_before' AS acme_unchanged;

-- 4. Every sealed column swapped with another row's fails to open (XX001) instead of reading
-- as the other row's plaintext.
SET ROLE "Acme-App";
SELECT ctx.append(:'av', 'user', 'second sealed message', '{"k": 2}', message_id => 'sealed-2');
-- two edits: revisions 1 and 2 of the message move to ctx.message_revisions, sealed as written
SELECT ctx.update_message(:'av', 'sealed-2', 'second sealed message, edited', '{"k": 3}');
SELECT ctx.update_message(:'av', 'sealed-2', 'second sealed message, edited twice');
SELECT ctx.compact(:'av', 'sealed summary one', keep_last => 1);
SELECT ctx.compact(:'av', 'sealed summary two', keep_last => 0);
SELECT ctx.encrypt_namespace('{vault}');
SELECT ctx.remember('{vault}', 'sealed memory one', metadata => '{"n": 1}') AS sm1 \gset
SELECT ctx.remember('{vault}', 'sealed memory two', metadata => '{"n": 2}') AS sm2 \gset
SELECT ctx.put('{vault}', 'k1', '"one"'), ctx.put('{vault}', 'k2', '"two"');
SELECT ctx.thread_context('sealed-thread', encrypted => true) IS NOT NULL AS sealed_thread;
SELECT ctx.checkpoint_put('sealed-thread', '', '{"id": "0001", "channel_versions": {"a": "b\u001f1", "a\u001fb": "1"}}',
                          '{"run_id": "run-one"}', NULL, ARRAY['a', 'a' || chr(31) || 'b'], ARRAY['b' || chr(31) || '1', '1'],
                          '{json,json}', ARRAY['"first"'::bytea, '"second"'::bytea]);
SELECT ctx.checkpoint_put('sealed-thread', '', '{"id": "0002", "channel_versions": {}}', '{"run_id": "run-two"}');
SELECT ctx.checkpoint_put_writes('sealed-thread', '', '0001', 't', '{0,1}', '{x,y}', '{json,json}',
                                 ARRAY['"w0"'::bytea, '"w1"'::bytea]);
RESET ROLE;
RESET ctxstore.tenant;
SELECT ctx.encrypt_cache();  -- (the superuser's tenant '': its cache is empty)
SELECT ctx.cache_store('p1', 'm', '["answer one"]'), ctx.cache_store('p2', 'm', '["answer two"]');
-- a column swap, then the read that must refuse it (rolled back after each)
CREATE FUNCTION pg_temp.swap(tbl text, col text, a_row text, b_row text, read text) RETURNS text
LANGUAGE plpgsql AS $$
DECLARE outcome text;
BEGIN
    EXECUTE format('UPDATE ctx.%I SET %I = (SELECT %I FROM ctx.%I WHERE %s) WHERE %s', tbl, col, col, tbl, b_row, a_row);
    outcome := pg_temp.try(read);
    RAISE EXCEPTION 'rollback' USING DETAIL = outcome;
EXCEPTION WHEN raise_exception THEN
    GET STACKED DIAGNOSTICS outcome = PG_EXCEPTION_DETAIL;
    RETURN outcome;
END $$;
CREATE TEMPORARY TABLE swaps AS SELECT * FROM (VALUES
    ('messages', 'content_enc', format('context_id = %L AND seq = 1', :'av'), format('context_id = %L AND seq = 2', :'av'),
     format('SELECT ctx.history(%L)', :'av')),
    ('messages', 'metadata_enc', format('context_id = %L AND seq = 1', :'av'), format('context_id = %L AND seq = 2', :'av'),
     format('SELECT ctx.history(%L)', :'av')),
    ('message_revisions', 'content_enc', format('context_id = %L AND seq = 2 AND revision = 1', :'av'),
     format('context_id = %L AND seq = 2 AND revision = 2', :'av'), format('SELECT ctx.history(%L)', :'av')),
    ('message_revisions', 'metadata_enc', format('context_id = %L AND seq = 2 AND revision = 1', :'av'),
     format('context_id = %L AND seq = 2 AND revision = 2', :'av'), format('SELECT ctx.history(%L)', :'av')),
    ('summaries', 'content_enc', format('context_id = %L AND version = 2', :'av'), format('context_id = %L AND version = 1', :'av'),
     format('SELECT ctx.build_context(%L, 100)', :'av')),
    ('memories', 'content_enc', format('id = %L', :'sm1'), format('id = %L', :'sm2'), 'SELECT ctx.recall(''{vault}'')'),
    ('memories', 'metadata_enc', format('id = %L', :'sm1'), format('id = %L', :'sm2'), 'SELECT ctx.recall(''{vault}'')'),
    ('state', 'value_enc', 'key = ''k1''', 'key = ''k2''', 'SELECT ctx.get(''{vault}'', ''k1'')'),
    ('checkpoints', 'metadata_enc', 'checkpoint_id = ''0001''', 'checkpoint_id = ''0002''',
     'SELECT ctx.checkpoint_list(''sealed-thread'')'),
    ('checkpoint_blobs', 'blob', 'channel = ''a''', 'channel = ''a' || chr(31) || 'b''',
     'SELECT ctx.checkpoint_get(''sealed-thread'', '''', ''0001'')'),
    ('checkpoint_writes', 'blob', 'idx = 0', 'idx = 1', 'SELECT ctx.checkpoint_get(''sealed-thread'', '''', ''0001'')'),
    ('llm_cache', 'value_enc', format('key = %L', ctx.cache_key('p1', 'm')), format('key = %L', ctx.cache_key('p2', 'm')),
     'SELECT ctx.cache_lookup(''p1'', ''m'')'),
    ('data_keys', 'wrapped', '', '', '(below, in a new backend)')
  ) AS t(tbl, col, a_row, b_row, read);
-- every bytea column of a table with a tenant column (from the catalog) is swapped, or is not
-- ciphertext
SELECT c.table_name || '.' || c.column_name AS bytea_column, s.tbl IS NOT NULL AS swapped
  FROM information_schema.columns c LEFT JOIN swaps s ON s.tbl = c.table_name AND s.col = c.column_name
 WHERE c.table_schema = 'ctx' AND c.data_type = 'bytea'
   AND c.table_name IN (SELECT table_name FROM information_schema.columns WHERE table_schema = 'ctx' AND column_name = 'tenant')
 ORDER BY 1;
SET ctxstore.tenant = 'acme';
SELECT tbl || '.' || col AS swapped, pg_temp.swap(tbl, col, a_row, b_row, read) AS outcome
  FROM swaps WHERE tbl NOT IN ('llm_cache', 'data_keys') ORDER BY 1;
-- an earlier revision's ciphertext put back in place of the current one (and the revision
-- number with it) does not open: each revision's ciphertext names its revision
BEGIN;
UPDATE ctx.messages SET content_enc = r.content_enc, metadata_enc = r.metadata_enc
  FROM ctx.message_revisions r
 WHERE messages.context_id = :'av' AND messages.seq = 2 AND r.context_id = :'av' AND r.seq = 2 AND r.revision = 2;
SELECT pg_temp.try(format('SELECT ctx.get_messages(%L, ''{sealed-2}'')', :'av')) AS stale_ciphertext;
ROLLBACK;
BEGIN;
UPDATE ctx.messages SET content_enc = r.content_enc, metadata_enc = r.metadata_enc, revision = 2
  FROM ctx.message_revisions r
 WHERE messages.context_id = :'av' AND messages.seq = 2 AND r.context_id = :'av' AND r.seq = 2 AND r.revision = 2;
-- (a role with UPDATE on the table can roll a message back to a revision it had, as it could
-- delete it: what the audit log is for)
SELECT content AS rolled_back FROM ctx.get_messages(:'av', '{sealed-2}');
SELECT operation, columns FROM ctx.audit_log WHERE table_name = 'messages' ORDER BY id DESC LIMIT 1;
ROLLBACK;
RESET ctxstore.tenant;
SELECT tbl || '.' || col AS swapped, pg_temp.swap(tbl, col, a_row, b_row, read) AS outcome
  FROM swaps WHERE tbl = 'llm_cache';
-- the unswapped values still read
SELECT ctx.cache_lookup('p1', 'm') AS p1, ctx.cache_lookup('p2', 'm') AS p2;

-- 5. Nothing of an encrypted thread's metadata is in the clear: its run ids are keyed hashes,
-- still found by ctx.checkpoint_delete_runs; a plain thread's stay readable.
SET ctxstore.tenant = 'acme';
SELECT checkpoint_id, run_id LIKE 'hmac:%' AS hashed, position('run' IN run_id) = 0 AS unreadable
  FROM ctx.checkpoints WHERE context_id = ctx.thread_context('sealed-thread', create_missing => false) ORDER BY 1;
SELECT run_id FROM ctx.checkpoints WHERE context_id = ctx.thread_context('acme-thread', create_missing => false);
SELECT ctx.checkpoint_delete_runs('{run-one,acme-run}') AS deleted;
SELECT checkpoint_id FROM ctx.checkpoint_list('sealed-thread');
RESET ctxstore.tenant;

SET ctxstore.tenant = 'no-keys';
SET ctxstore.master_key = '';
SELECT ctx.checkpoint_put('plain-thread', '', '{"id": "1", "channel_versions": {}}', '{"run_id": "r"}');
SELECT ctx.checkpoint_delete_runs('{r}') AS deleted_without_a_master_key;
SET ctxstore.master_key = 'k1:000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f';
RESET ctxstore.tenant;

-- 6. The LLM cache is audited (store, a direct UPDATE, clear) and sealed once encrypted.
SELECT count(*) AS audit_rows FROM ctx.audit_log WHERE table_name = 'llm_cache' \gset
SELECT ctx.cache_store('p3', 'm', '["answer three"]');
SELECT value, position('answer' IN value_enc) = 0 AS unreadable FROM ctx.llm_cache WHERE key = ctx.cache_key('p3', 'm');
UPDATE ctx.llm_cache SET expires_at = now() WHERE key = ctx.cache_key('p3', 'm');
SELECT ctx.cache_clear('m') AS cleared;
SELECT operation, columns FROM ctx.audit_log WHERE table_name = 'llm_cache' ORDER BY id OFFSET :audit_rows;
SELECT pg_temp.try('SELECT ctx.encrypt_cache()');
SET ctxstore.tenant = 'acme';
SELECT pg_temp.try('SELECT ctx.encrypt_cache()');  -- acme's cache holds an entry
SELECT value FROM ctx.llm_cache WHERE tenant = 'acme';
RESET ctxstore.tenant;

-- 7. Changing expires_at is audited, unless it is ctx.touch restarting a TTL from now.
SET ctxstore.tenant = 'acme';
SELECT ctx.put('{ttl}', 'k', '"v"', ttl => '1 hour');
SELECT ctx.remember('{ttl}', 'expiring') AS em \gset
SELECT count(*) AS audit_rows FROM ctx.audit_log \gset
SELECT ctx.touch('{ttl}', '{k}') AS touched;
SELECT count(*) - :audit_rows AS audit_rows_of_a_touch FROM ctx.audit_log;
UPDATE ctx.state SET expires_at = now() WHERE key = 'k' AND namespace = '{ttl}';         -- hide at once
UPDATE ctx.state SET expires_at = now() + interval '1 year' WHERE key = 'k' AND namespace = '{ttl}';  -- revive
UPDATE ctx.memories SET expires_at = now() WHERE id = :'em';
-- a ttl made negative, then a "restart" from it: hides the value, and is logged
UPDATE ctx.state SET ttl = interval '-1 year' WHERE key = 'k' AND namespace = '{ttl}';
UPDATE ctx.state SET expires_at = now() + ttl WHERE key = 'k' AND namespace = '{ttl}';
SELECT table_name, operation, columns FROM ctx.audit_log ORDER BY id OFFSET :audit_rows;
RESET ctxstore.tenant;

-- 8. Namespace processor settings are per tenant: acme's redact_pii on {users} is not globex's,
-- and globex's settings cannot switch redaction off for acme.
SELECT ctx.grant_access('"Globex.App"', admin => true);
SET ROLE "Globex.App";
SELECT ctx.configure_namespace_processors('{users}', '{"redact_secrets": false}');
SELECT ctx.put('{users,u9}', 'contact', '{"email": "globex@example.com", "key": "sk-live-abcdefghijklmnopqrstuvwx"}');
SELECT ctx.get('{users,u9}', 'contact');
SELECT tenant, namespace, config FROM ctx.namespace_processors ORDER BY tenant;
RESET ROLE;
RESET ctxstore.tenant;
SET ROLE "Acme-App";
SELECT ctx.put('{users,u9}', 'contact', '{"email": "acme@example.com", "key": "sk-live-abcdefghijklmnopqrstuvwx"}');
SELECT ctx.get('{users,u9}', 'contact');
RESET ROLE;
RESET ctxstore.tenant;
-- user processors and built-in switches are per tenant too: globex's write processor never
-- sees acme's plaintext, and globex switching redaction off leaves acme's on
CREATE FUNCTION public.globex_spy(item jsonb) RETURNS jsonb LANGUAGE sql IMMUTABLE
    AS $$ SELECT jsonb_set(item, '{content}', to_jsonb(coalesce(item->>'content', '') || ' [seen by globex]')) $$;
SET ROLE "Globex.App";
SELECT ctx.register_processor('spy', 'write', 'public.globex_spy(jsonb)');
SELECT ctx.disable_processor('redact_secrets');
SELECT pg_temp.try('SELECT ctx.register_processor(''spy_all'', ''write'', ''public.globex_spy(jsonb)'', all_tenants => true)');
SELECT pg_temp.try('SELECT ctx.disable_processor(''normalize'', all_tenants => true)');
SELECT name, kind, enabled, tenant FROM ctx.processors WHERE name IN ('spy', 'redact_secrets') ORDER BY name;
SELECT ctx.create_context('globex chat') AS g \gset
SELECT ctx.append(:'g', 'user', 'globex key sk-live-abcdefghijklmnopqrstuvwx');
SELECT content FROM ctx.messages(:'g');
RESET ROLE;
RESET ctxstore.tenant;
SET ROLE "Acme-App";
SELECT name, kind, enabled, tenant FROM ctx.processors WHERE name IN ('spy', 'redact_secrets') ORDER BY name;
SELECT pg_temp.try('SELECT ctx.unregister_processor(''spy'')');
SELECT ctx.append(:'a', 'user', 'acme key sk-live-abcdefghijklmnopqrstuvwx');
SELECT content FROM ctx.messages(:'a') ORDER BY seq DESC LIMIT 1;
RESET ROLE;
RESET ctxstore.tenant;
-- a processor for every tenant is a superuser's (or BYPASSRLS role's) registration
SELECT ctx.register_processor('spy_all', 'write', 'public.globex_spy(jsonb)', priority => 5, all_tenants => true);
SET ROLE "Acme-App";
SELECT ctx.append(:'a', 'user', 'acme again');
SELECT content FROM ctx.messages(:'a') ORDER BY seq DESC LIMIT 1;
SELECT pg_temp.try('SELECT ctx.disable_processor(''spy_all'')');
RESET ROLE;
RESET ctxstore.tenant;
-- nor with a row of its own written directly: a processor of every tenant keeps acting
SET ROLE "Acme-App";
INSERT INTO ctx.processor_registry (name, stage, priority, enabled) VALUES ('spy_all', 'write', 5, false);
SELECT ctx.append(:'a', 'user', 'acme once more');
SELECT content FROM ctx.messages(:'a') ORDER BY seq DESC LIMIT 1;
-- a row naming a function of another signature is refused at use, never called
RESET ROLE;
CREATE SCHEMA acme_code AUTHORIZATION "Acme-App";
SET ROLE "Acme-App";
CREATE FUNCTION acme_code.tag(item jsonb) RETURNS jsonb LANGUAGE sql IMMUTABLE AS 'SELECT item';
SELECT ctx.register_processor('acme_tag', 'write', 'acme_code.tag(jsonb)', priority => 6);
UPDATE ctx.processor_registry SET fn = 'pg_catalog.abs(integer)'::regprocedure WHERE name = 'acme_tag';
SELECT pg_temp.try(format('SELECT ctx.append(%L, ''user'', ''x'')', :'a'));
UPDATE ctx.processor_registry SET fn = 'acme_code.tag(jsonb)'::regprocedure WHERE name = 'acme_tag';
RESET ROLE;
RESET ctxstore.tenant;
-- a tenant's processor whose function a tenant's role owns never runs as a role that bypasses
-- row-level security
SET ctxstore.tenant = 'acme';
SELECT pg_temp.try(format('SELECT ctx.append(%L, ''user'', ''maintenance'')', :'a'));
RESET ctxstore.tenant;
SELECT ctx.unregister_processor('spy_all', all_tenants => true);
-- the registries shared by every tenant are not a tenant administrator's: schemas and their
-- migrations (which run on every tenant's reads), the audit switch
SELECT ctx.register_schema('profile', 1, '{"type": "object"}');
SET ROLE "Globex.App";
SELECT attack, pg_temp.try(attack) AS outcome FROM (VALUES
    ('SELECT ctx.register_schema(''profile'', 2, ''{"type": "object"}'')'),
    ('SELECT ctx.register_migration(''profile'', 1, 2, ''public.globex_spy(jsonb)'')'),
    ('INSERT INTO ctx.schemas (name, version, json_schema) VALUES (''profile'', 9, ''{}'')'),
    ('DO $d$ BEGIN UPDATE ctx.schemas SET json_schema = ''false''; IF FOUND THEN RAISE ''changed a shared schema''; END IF; END $d$'),
    ('SELECT ctx.set_audit(''messages'', false)')
  ) AS t(attack);
RESET ROLE;
RESET ctxstore.tenant;
-- metrics are server-wide: not for application roles; administrators and pg_monitor read them
SET client_min_messages = warning;
SET ROLE "Ünïcode Äpp";
SELECT pg_temp.try('SELECT count(*) FROM ctx.metrics');
SELECT pg_temp.try('SELECT ctx.metrics_prometheus()');
SELECT pg_temp.try('SELECT count(*) FROM ctx.metric_samples()');
RESET ROLE;
RESET ctxstore.tenant;
SET ROLE "Globex.App";
SELECT pg_temp.try('SELECT count(*) FROM ctx.metrics');
RESET ROLE;
RESET ctxstore.tenant;
GRANT pg_monitor TO "globex app";
SET ROLE "globex app";
SELECT pg_temp.try('SELECT count(*) FROM ctx.metric_samples()');
RESET ROLE;
RESET ctxstore.tenant;
RESET client_min_messages;

-- A wrapped data key moved to another scope's row does not unwrap (a new backend: data keys
-- are cached per backend once unwrapped).
SELECT id AS av FROM ctx.contexts WHERE tenant = 'acme' AND name = 'acme vault' \gset
\c
SET ctxstore.master_key = 'k1:000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f';
SET ctxstore.tenant = 'acme';
BEGIN;
UPDATE ctx.data_keys SET wrapped = (SELECT wrapped FROM ctx.data_keys WHERE tenant = 'acme' AND scope = 'namespace:vault' || chr(31))
 WHERE tenant = 'acme' AND scope = 'context:' || :'av';
SAVEPOINT read;
SELECT count(*) FROM ctx.history(:'av');
ROLLBACK TO read;
ROLLBACK;
SELECT count(*) AS readable_again FROM ctx.history(:'av');
RESET ctxstore.tenant;

-- clean up: the roles are the cluster's
\c ctxstore_regress
DROP DATABASE ctxstore_attacks;
DROP ROLE "Acme-App", "Globex.App", "globex app", "Ünïcode Äpp", "MixedCase";
