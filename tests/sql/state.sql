-- Key-value state: versioned JSON documents, optimistic concurrency, merge patch, TTL, search,
-- and working memory bound to a context (inherited by forks).
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS ctxstore;
RESET client_min_messages;
\pset footer off

SELECT ctx.put('{app,users}', 'u1', '{"name": "Ada", "tier": "gold", "langs": ["en", "fr"]}');
SELECT ctx.put('{app,users}', 'u2', '{"name": "Bob", "tier": "silver", "age": 41}');
SELECT ctx.put('{app,users,archived}', 'u3', '{"name": "Cy", "tier": "gold"}');
SELECT ctx.put('{app,plans}', 'p1', '[1, 2, 3]');
SELECT ctx.get('{app,users}', 'u1');
SELECT ctx.get('{app,users}', 'nobody') IS NULL AS absent;
-- every write bumps the version
SELECT ctx.put('{app,users}', 'u1', '{"name": "Ada", "tier": "platinum", "langs": ["en", "fr"]}');

-- optimistic concurrency: expected_version must match (0 = create only)
SELECT ctx.put('{app,users}', 'u1', '{"name": "Ada L."}', expected_version => 2);
SELECT ctx.put('{app,users}', 'u1', '{"name": "stale"}', expected_version => 2);
\echo :SQLSTATE
SELECT ctx.put('{app,users}', 'u4', '{"name": "Dee", "langs": ["fr"]}', expected_version => 0);
SELECT ctx.put('{app,users}', 'u4', '{"name": "again"}', expected_version => 0);
\echo :SQLSTATE
SELECT ctx.put('{app,users}', 'u9', '{}', expected_version => 7);
\echo :SQLSTATE
SELECT ctx.get('{app,users}', 'u1'), ctx.get('{app,users}', 'u4');

-- RFC 7396 merge patch: objects merge, null removes, arrays replace; absent keys start from {}
SELECT ctx.patch('{app,users}', 'u2', '{"age": 42, "tier": null, "prefs": {"theme": "dark"}}');
SELECT ctx.patch('{app,users}', 'u2', '{"prefs": {"lang": "fr"}}');
SELECT ctx.patch('{app,users}', 'new', '{"created": true}');
SELECT version FROM ctx.search_state('{app,users}', '{"created": true}');
SELECT ctx.patch('{app,plans}', 'p1', '{"steps": 3}');

-- search: prefix (descendants included), the shared filter language, paging
SELECT namespace, key, version FROM ctx.search_state('{app}');
SELECT key FROM ctx.search_state('{app,users}', '{"tier": "gold"}');
SELECT key FROM ctx.search_state('{app}', '{"langs": {"$contains": "fr"}}');
SELECT key FROM ctx.search_state('{app}', '{"$or": [{"age": {"$gte": 40}}, {"name": {"$like": "C%"}}]}');
SELECT key FROM ctx.search_state('{app}', '{"key": {"$in": ["u1", "u3"]}, "version": {"$gte": 2}}');
SELECT key FROM ctx.search_state('{app}', max_rows => 2, skip => 1);
SELECT count(*) FROM ctx.search_state('{}', '{"namespace": {"$contains": "app"}}');

-- TTL: expired values are gone for every reader, and can be recreated
SELECT ctx.put('{app,sessions}', 's1', '{"token": "x"}', ttl => '1 millisecond');
SELECT ctx.put('{app,sessions}', 's2', '{"token": "y"}', ttl => '1 hour');
SELECT pg_sleep(0.05);
SELECT ctx.get('{app,sessions}', 's1') IS NULL AS expired;
SELECT key FROM ctx.search_state('{app,sessions}');
SELECT ctx.put('{app,sessions}', 's1', '{"token": "z"}', expected_version => 0) > 0 AS recreated;
SELECT ctx.patch('{app,sessions}', 's2', '{"renewed": true}');

-- touch restarts the ttl a value was put with (each statement is its own transaction: now()
-- moves on); values without a ttl, expired or absent stay as they are, versions do not move
SELECT ctx.put('{app,touch}', 'live', '{}', ttl => '1 hour');
SELECT ctx.put('{app,touch}', 'forever', '{}');
SELECT ctx.put('{app,touch}', 'gone', '{}', ttl => '1 millisecond');
SELECT expires_at AS live_expiry FROM ctx.search_state('{app,touch}', '{"key": "live"}') \gset
SELECT pg_sleep(0.05);
SELECT count(*) AS audit_rows FROM ctx.audit_log \gset
SELECT ctx.touch('{app,touch}', '{live,forever,gone,absent}');
SELECT count(*) - :audit_rows AS audit_rows_of_a_touch FROM ctx.audit_log;
SELECT key, version, expires_at > :'live_expiry' AS restarted, expires_at - now() < '1 hour' AS within_ttl
  FROM ctx.search_state('{app,touch}');
-- in a read-only transaction (and on a standby) a touch is skipped, not an error; reads take no
-- transaction id (a standby has none to give); a write is refused with 25006 before any work
BEGIN READ ONLY;
SELECT ctx.touch('{app,touch}', '{live}') AS touched_read_only, ctx.get('{app,touch}', 'live') AS read;
SELECT pg_current_xact_id_if_assigned() IS NULL AS no_transaction_id;
SAVEPOINT s;
SELECT ctx.put('{app,touch}', 'live', '{}');
ROLLBACK TO s;
SELECT pg_current_xact_id_if_assigned() IS NULL AS still_no_transaction_id;
COMMIT;
SELECT ctx.patch('{app,touch}', 'live', '{"seen": true}');
SELECT ctx.touch('{app,touch}', '{live}') AS patched_value_keeps_its_ttl;
SELECT ctx.put('{app,touch}', 'live', '{}');
SELECT ctx.touch('{app,touch}', '{live}') AS a_put_without_ttl_clears_it;

-- delete
SELECT ctx.delete_key('{app,users}', 'u4');
SELECT ctx.delete_key('{app,users}', 'u4');
SELECT ctx.get('{app,users}', 'u4') IS NULL AS deleted;

-- working memory: a document per context, patched atomically, inherited by forks as of the fork
SELECT ctx.create_context('wm') AS c \gset
SELECT ctx.working_memory(:'c');
SELECT ctx.update_working_memory(:'c', '{"user": {"name": "Ada"}, "task": "book a train"}');
SELECT ctx.update_working_memory(:'c', '{"task": null, "plan": ["search", "book"]}');
SELECT ctx.fork(:'c') AS f \gset
SELECT ctx.update_working_memory(:'c', '{"user": {"city": "Lyon"}}');
SELECT ctx.working_memory(:'f');
SELECT ctx.working_memory(:'c');
SELECT ctx.delete_context(:'c', cascade => true);
SELECT count(*) FROM ctx.state WHERE namespace = '{ctx,working_memory}' AND key IN (:'c', :'f');

-- bad input
SELECT ctx.put('{}', 'k', '{}');
\echo :SQLSTATE
SELECT ctx.put('{a}', '', '{}');
\echo :SQLSTATE
SELECT ctx.put('{a}', NULL, '{}');
\echo :SQLSTATE
SELECT ctx.put('{a}', 'k', NULL);
\echo :SQLSTATE
SELECT ctx.put('{a}', 'k', '{}', ttl => '0 seconds');
\echo :SQLSTATE
SELECT ctx.put('{a}', 'k', '{}', expected_version => -1);
\echo :SQLSTATE
SELECT ctx.patch('{a}', 'k', NULL);
\echo :SQLSTATE
SELECT ctx.touch('{a}', NULL);
\echo :SQLSTATE
SELECT ctx.touch('{a}', '{k,NULL}');
\echo :SQLSTATE
SELECT ctx.touch('{}', '{k}');
\echo :SQLSTATE
SELECT * FROM ctx.search_state('{app}', '{"age": {"$gt": [1]}}');
\echo :SQLSTATE
SELECT * FROM ctx.search_state('{app}', max_rows => -1);
\echo :SQLSTATE
SELECT ctx.working_memory('00000000-0000-0000-0000-000000000000');
\echo :SQLSTATE
SELECT ctx.update_working_memory('00000000-0000-0000-0000-000000000000', '{}');
\echo :SQLSTATE
SELECT count(*) FROM ctx.state WHERE namespace = '{a}';

-- search_state: only the namespace's own values, and when each was created and expires
SELECT ctx.put('{scoped}', 'k', '{"n": 1}', ttl => '1 hour');
SELECT ctx.put('{scoped,child}', 'k', '{"n": 2}');
SELECT namespace, key, created_at <= updated_at AS ordered, expires_at > now() AS expires
  FROM ctx.search_state('{scoped}', include_descendants => false);
SELECT namespace, expires_at IS NULL AS no_ttl FROM ctx.search_state('{scoped}');
SELECT * FROM ctx.search_state('{}', include_descendants => false);

-- include_expired: values past their TTL that the sweep has not deleted yet, on request only
SELECT ctx.put('{expiry}', 'gone', '{"v": 1}', ttl => '1 millisecond');
SELECT ctx.put('{expiry}', 'live', '{"v": 2}', ttl => '1 hour');
SELECT pg_sleep(0.01);
SELECT key FROM ctx.search_state('{expiry}') ORDER BY key;
SELECT key, expires_at < now() AS expired FROM ctx.search_state('{expiry}', include_expired => true) ORDER BY key;
SELECT ctx.get('{expiry}', 'gone') AS still_hidden_from_get;
SELECT ctx.sweep() > 0 AS swept;
SELECT key FROM ctx.search_state('{expiry}', include_expired => true) ORDER BY key;
SELECT * FROM ctx.search_state('{expiry}', include_expired => NULL);
\echo :SQLSTATE

-- labels may hold tab and line breaks: 'alice' and E'alice\n' are different namespaces
SELECT ctx.put(ARRAY['users', 'alice'], 'k', '1'), ctx.put(ARRAY['users', E'alice\n'], 'k', '2');
SELECT namespace = ARRAY['users', E'alice\n'] AS with_newline, value
  FROM ctx.search_state('{users}') ORDER BY value;
SELECT value FROM ctx.search_state(ARRAY['users', 'alice']);
SELECT ctx.put(ARRAY['users', E'bell\u0007'], 'k', '1');
\echo :SQLSTATE
