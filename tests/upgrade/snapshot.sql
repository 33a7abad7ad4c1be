-- What the fixture reads back through the API (deterministic: no clock values). Compared
-- before and after an upgrade, and between a database and its pg_dump / pg_restore copy.
\set ON_ERROR_STOP 1
\pset footer off
\pset format unaligned
SET client_min_messages = warning;

SELECT c.name, h.seq, h.role, h.content, h.metadata, h.tokens, h.archived
  FROM ctx.contexts c, ctx.history(c.id) h ORDER BY c.name, h.seq, h.role;
SELECT c.name, w.seq, w.role, w.content, w.tokens FROM ctx.contexts c, ctx.token_window(c.id, 120) w ORDER BY 1, 2;
SELECT c.name, w.seq, w.content FROM ctx.contexts c, ctx.window(c.id, 3) w ORDER BY 1, 2;
SELECT c.name, ctx.working_memory(c.id) FROM ctx.contexts c ORDER BY 1;
SELECT ctx.build_context_json(c.id, 300, ARRAY[0.5, 0.5, 0.2]::real[], 'trains',
                              '{"memory_namespaces": [["fixture", "facts"]], "memories": 3}')
  FROM ctx.contexts c WHERE c.name = 'plain';
SELECT name, messages, archived, tokens, summaries FROM ctx.context_stats ORDER BY name;
SELECT content, metadata, round(score::numeric, 4) AS score
  FROM ctx.recall('{fixture,facts}', ARRAY[0.9, 0.1, 0.4]::real[], 'trains', k => 5);
SELECT content FROM ctx.recall('{fixture,facts}', query_text => 'revised', k => 3);
SELECT content FROM ctx.recall('{fixture,private}', query_text => 'passport', k => 3);
SELECT count(*) AS versions, count(*) FILTER (WHERE valid_to IS NULL) AS current FROM ctx.memories;
SELECT namespace, key, value, version FROM ctx.search_state('{fixture}') ORDER BY namespace, key;
SELECT ctx.get('{fixture,users}', 'u1');
SELECT name, kind, enabled FROM ctx.processors ORDER BY name;
SET ROLE fixture_app;
SELECT ctx.current_tenant() AS bound_tenant, ctx.get('{fixture,pii}', 'contact');
RESET ROLE;
SELECT ok, checked > 0 AS checked, first_bad_id FROM ctx.verify_audit();
-- (recall itself updates access counts: those updates are not compared)
SELECT table_name, operation, count(*) FROM ctx.audit_log
 WHERE operation <> 'UPDATE' OR table_name <> 'memories' GROUP BY 1, 2 ORDER BY 1, 2;
