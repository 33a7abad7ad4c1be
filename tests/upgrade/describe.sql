-- The extension's schema, as objects and definitions: an upgraded database must describe
-- exactly like a fresh install.
\pset footer off
\pset format unaligned
SELECT 'member: ' || pg_describe_object(classid, objid, objsubid)
  FROM pg_depend WHERE deptype = 'e' AND refclassid = 'pg_extension'::regclass
   AND refobjid = (SELECT oid FROM pg_extension WHERE extname = 'ctxstore') ORDER BY 1;
SELECT format('column: %s.%s %s %s default %s', table_name, column_name, data_type,
              CASE is_nullable WHEN 'NO' THEN 'not null' ELSE 'null' END, coalesce(column_default, '-'))
  FROM information_schema.columns WHERE table_schema = 'ctx' ORDER BY table_name, column_name;
SELECT format('constraint: %s %s %s', conrelid::regclass, conname, pg_get_constraintdef(oid))
  FROM pg_constraint WHERE connamespace = 'ctx'::regnamespace ORDER BY 1;
SELECT 'index: ' || pg_get_indexdef(indexrelid) FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
 WHERE c.relnamespace = 'ctx'::regnamespace ORDER BY 1;
SELECT format('policy: %s.%s %s %s using %s check %s', schemaname, tablename, policyname, cmd, qual, with_check)
  FROM pg_policies WHERE schemaname = 'ctx' ORDER BY 1;
SELECT format('rls: %s %s %s', oid::regclass, relrowsecurity, relforcerowsecurity)
  FROM pg_class WHERE relnamespace = 'ctx'::regnamespace AND relkind = 'r' ORDER BY 1;
SELECT 'trigger: ' || pg_get_triggerdef(t.oid) FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid
 WHERE c.relnamespace = 'ctx'::regnamespace AND NOT t.tgisinternal ORDER BY 1;
SELECT 'function: ' || pg_get_functiondef(p.oid) FROM pg_proc p
 WHERE p.pronamespace = 'ctx'::regnamespace ORDER BY p.proname, pg_get_function_identity_arguments(p.oid);
SELECT format('acl: %s %s', p.oid::regprocedure, p.proacl) FROM pg_proc p
 WHERE p.pronamespace = 'ctx'::regnamespace ORDER BY 1;
SELECT format('acl: %s %s', c.oid::regclass, c.relacl) FROM pg_class c
 WHERE c.relnamespace = 'ctx'::regnamespace ORDER BY 1;
SELECT 'view: ' || c.oid::regclass || ' ' || pg_get_viewdef(c.oid) FROM pg_class c
 WHERE c.relnamespace = 'ctx'::regnamespace AND c.relkind = 'v' ORDER BY 1;
SELECT format('config dump: %s %s', c::regclass, cond) FROM pg_extension e,
       unnest(e.extconfig, e.extcondition) AS x(c, cond) WHERE e.extname = 'ctxstore' ORDER BY 1;
