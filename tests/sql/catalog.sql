-- The context catalog: contexts by resource (the user or agent they belong to), filtered,
-- ordered and paged in one call with the count of all matches; renamed, moved and re-tagged.
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS ctxstore;
RESET client_min_messages;
\pset footer off
\set VERBOSITY default
-- a tenant of its own, as an application role (row-level security applies): the lists below
-- see only these contexts
SET client_min_messages = warning;
DROP ROLE IF EXISTS catalog_app;
RESET client_min_messages;
CREATE ROLE catalog_app;
SELECT ctx.grant_access('catalog_app');
SET ROLE catalog_app;
SET ctxstore.tenant = 'catalog';

SELECT ctx.create_context('billing question', '{"topic": "billing", "priority": 2}', resource => 'user-1') AS b \gset
SELECT ctx.create_context('api keys', '{"topic": "security", "priority": 1}', resource => 'user-1') AS k \gset
SELECT ctx.create_context('a long chat', '{"topic": "billing"}', resource => 'user-1') AS l \gset
SELECT ctx.create_context('someone else', '{"topic": "billing"}', resource => 'user-2') AS o \gset
SELECT ctx.create_context('no owner') AS n \gset
SELECT count(*) FROM ctx.append_many(:'l', '[{"role": "user", "content": "one"}, {"role": "assistant", "content": "two"}, {"role": "user", "content": "three"}]');
SELECT ctx.append(:'b', 'user', 'my invoice is wrong');
-- the newest activity first (b was appended to last), the count of all matches on every row
SELECT name, resource, message_count, total_count FROM ctx.list_contexts('user-1');
-- pages: two rows, then the rest; each page still says 3
SELECT name, total_count FROM ctx.list_contexts('user-1', max_rows => 2);
SELECT name, total_count FROM ctx.list_contexts('user-1', max_rows => 2, skip => 2);
SELECT count(*) AS past_the_end FROM ctx.list_contexts('user-1', skip => 3);
-- every context of the tenant (no resource), by name
SELECT name, resource FROM ctx.list_contexts(order_by => 'name', descending => false);
-- the filter language of memories: metadata paths and the columns
SELECT name FROM ctx.list_contexts('user-1', '{"topic": "billing"}', order_by => 'name', descending => false);
SELECT name FROM ctx.list_contexts(filter => '{"topic": "billing", "priority": {"$gte": 2}}');
SELECT name FROM ctx.list_contexts(filter => '{"message_count": {"$gte": 3}}');
SELECT name FROM ctx.list_contexts(filter => '{"name": {"$like": "%chat%"}}');
SELECT name FROM ctx.list_contexts(filter => '{"$or": [{"resource": "user-2"}, {"topic": "security"}]}', order_by => 'name', descending => false);
SELECT name, message_count FROM ctx.list_contexts('user-1', order_by => 'message_count');
SELECT name FROM ctx.list_contexts(order_by => 'created_at', descending => false);

-- update_context: rename, merge into the metadata (null removes a key), move; NULL leaves a
-- field as it is; the row comes back as it now is
SELECT name, resource, metadata FROM ctx.update_context(:'k', name => 'API keys (rotated)',
                                                       metadata_patch => '{"priority": null, "status": "closed"}');
SELECT name, resource, metadata FROM ctx.update_context(:'k', resource => 'user-2');
SELECT name, resource FROM ctx.list_contexts('user-2', order_by => 'name', descending => false);
SELECT updated_at > created_at AS touched FROM ctx.update_context(:'n');
-- another tenant sees none of them, and cannot update them
SET ctxstore.tenant = 'someone-else';
SELECT count(*) AS other_tenant_sees FROM ctx.list_contexts();
\set VERBOSITY sqlstate
SELECT * FROM ctx.update_context(:'k', name => 'taken over');
\set VERBOSITY default
SET ctxstore.tenant = 'catalog';
SELECT name FROM ctx.contexts WHERE id = :'k';
-- (a superuser or BYPASSRLS role reaches every tenant's context by id, as with every function)

-- bad input: a specific SQLSTATE and a hint, nothing changed
SELECT * FROM ctx.list_contexts(order_by => 'updated_at; DROP TABLE ctx.contexts');
\echo :SQLSTATE
SELECT * FROM ctx.list_contexts('');
\echo :SQLSTATE
SELECT * FROM ctx.list_contexts(max_rows => -1);
\echo :SQLSTATE
SELECT * FROM ctx.list_contexts(filter => '{"priority": {"$near": 1}}');
\echo :SQLSTATE
SELECT * FROM ctx.list_contexts(descending => NULL);
\echo :SQLSTATE
SELECT * FROM ctx.update_context('00000000-0000-0000-0000-000000000000', name => 'x');
\echo :SQLSTATE
SELECT * FROM ctx.update_context(:'b', metadata_patch => '[1, 2]');
\echo :SQLSTATE
SELECT * FROM ctx.update_context(:'b', resource => '');
\echo :SQLSTATE
SELECT * FROM ctx.update_context(NULL, name => 'x');
\echo :SQLSTATE
SELECT ctx.create_context('bad', resource => repeat('x', 1025));
\echo :SQLSTATE
SELECT name, resource, metadata FROM ctx.contexts WHERE id = :'b';

SELECT sum(ctx.delete_context(id)) AS deleted FROM ctx.contexts WHERE tenant = 'catalog';
RESET ctxstore.tenant;
RESET ROLE;
DROP OWNED BY catalog_app;
DROP ROLE catalog_app;
