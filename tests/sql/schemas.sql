-- Schema registry: typed state validated against JSON Schemas, versioned, migrated on read and
-- in bulk along registered migration chains.
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS ctxstore;
RESET client_min_messages;
\pset footer off
\set SHOW_CONTEXT never

SELECT ctx.register_schema('profile', 1, '{
  "type": "object", "required": ["name"],
  "properties": {"name": {"type": "string"}, "age": {"type": "integer", "minimum": 0}}
}');
-- registering the same definition again is a no-op; another definition is refused
SELECT ctx.register_schema('profile', 1, '{
  "type": "object", "required": ["name"],
  "properties": {"name": {"type": "string"}, "age": {"type": "integer", "minimum": 0}}
}');
SELECT ctx.register_schema('profile', 1, '{"type": "object"}');
\echo :SQLSTATE

SELECT ctx.validate('profile', '{"name": "Ada", "age": 36}');
SELECT ctx.validate('profile', '{"name": "Ada", "age": -1}');
SELECT ctx.validate('profile', '{"age": 3}', version => 1);

-- typed writes are validated and stamped with the latest version
SELECT ctx.put('{crm}', 'ada', '{"name": "Ada Lovelace", "age": 36}', schema => 'profile');
SELECT ctx.put('{crm}', 'bob', '{"name": "Bob", "age": 41}', schema => 'profile');
SELECT ctx.put('{crm}', 'bad', '{"name": "Bad", "age": -3}', schema => 'profile');
\echo :SQLSTATE
SELECT ctx.put('{crm}', 'bad', '{"name": 7}', schema => 'profile');
\echo :SQLSTATE
SELECT ctx.put('{crm}', 'bad', '{}', schema => 'no_such_schema');
\echo :SQLSTATE
SELECT key, schema_name, schema_version FROM ctx.state WHERE namespace = '{crm}' ORDER BY key;

-- version 2 splits the name; version 3 nests the age; two migrations chain 1 -> 2 -> 3
SELECT ctx.register_schema('profile', 2, '{
  "type": "object", "required": ["first", "last"],
  "properties": {"first": {"type": "string"}, "last": {"type": "string"}, "age": {"type": "integer"}}
}');
SELECT ctx.register_schema('profile', 3, '{
  "type": "object", "required": ["first", "last", "facts"],
  "properties": {"first": {"type": "string"}, "last": {"type": "string"},
                 "facts": {"type": "object", "properties": {"age": {"type": "integer"}}}}
}');
CREATE FUNCTION profile_v1_to_v2(v jsonb) RETURNS jsonb LANGUAGE sql IMMUTABLE AS $$
  SELECT (v - 'name') || jsonb_build_object('first', split_part(v->>'name', ' ', 1),
                                            'last', coalesce(nullif(split_part(v->>'name', ' ', 2), ''), '?'))
$$;
CREATE FUNCTION profile_v2_to_v3(v jsonb) RETURNS jsonb LANGUAGE sql IMMUTABLE AS $$
  SELECT (v - 'age') || jsonb_build_object('facts', jsonb_strip_nulls(jsonb_build_object('age', v->'age')))
$$;
SELECT ctx.register_migration('profile', 1, 2, 'profile_v1_to_v2(jsonb)');
SELECT ctx.register_migration('profile', 2, 3, 'profile_v2_to_v3(jsonb)');

-- reads migrate along the chain; the stored rows are untouched
SELECT ctx.get('{crm}', 'ada');
SELECT key, value FROM ctx.search_state('{crm}');
SELECT key, schema_version, value FROM ctx.state WHERE namespace = '{crm}' ORDER BY key;
-- a patch applies to the migrated document, which must still match
SELECT ctx.patch('{crm}', 'bob', '{"facts": {"city": "Lyon"}}');
SELECT ctx.patch('{crm}', 'bob', '{"first": 42}');
\echo :SQLSTATE
SELECT key, schema_version FROM ctx.state WHERE namespace = '{crm}' ORDER BY key;
-- new writes must match version 3
SELECT ctx.put('{crm}', 'cy', '{"name": "Cy"}', schema => 'profile');
\echo :SQLSTATE
SELECT ctx.put('{crm}', 'cy', '{"first": "Cy", "last": "Young", "facts": {}}', schema => 'profile');

-- bulk migration upgrades the stored values (all or nothing)
SELECT ctx.migrate_state('profile');
SELECT key, schema_version, value FROM ctx.state WHERE namespace = '{crm}' ORDER BY key;
SELECT ctx.migrate_state('profile');

-- registry errors
SELECT ctx.register_schema('broken', 1, '{"type": "no-such-type"}');
\echo :SQLSTATE
SELECT ctx.register_schema('profile', 0, '{}');
\echo :SQLSTATE
SELECT ctx.register_schema('', 1, '{}');
\echo :SQLSTATE
SELECT ctx.validate('nope', '{}');
\echo :SQLSTATE
SELECT ctx.validate('profile', '{}', version => 9);
\echo :SQLSTATE
SELECT ctx.register_migration('profile', 3, 2, 'profile_v1_to_v2(jsonb)');
\echo :SQLSTATE
SELECT ctx.register_migration('profile', 3, 4, 'profile_v1_to_v2(jsonb)');
\echo :SQLSTATE
SELECT ctx.register_migration('profile', 1, 2, 'lower(text)');
\echo :SQLSTATE
SELECT ctx.register_migration('profile', 1, 2, NULL);
\echo :SQLSTATE
SELECT ctx.migrate_state('nope');
\echo :SQLSTATE

-- typed message metadata: a context created with a metadata schema validates every append
SELECT ctx.register_schema('msg_meta', 1, '{"type": "object", "properties": {"model": {"type": "string"}, "latency_ms": {"type": "number"}}, "additionalProperties": false}');
SELECT ctx.create_context('typed', metadata_schema => 'msg_meta') AS t \gset
SELECT ctx.append(:'t', 'assistant', 'hello', '{"model": "gpt-4o", "latency_ms": 120}');
SELECT ctx.append(:'t', 'assistant', 'hello', '{"model": 4}');
\echo :SQLSTATE
SELECT ctx.append_many(:'t', '[{"role": "user", "content": "a"}, {"role": "user", "content": "b", "metadata": {"mood": "happy"}}]');
\echo :SQLSTATE
SELECT ctx.fork(:'t') AS tf \gset
SELECT ctx.append(:'tf', 'user', 'x', '{"unknown": true}');
\echo :SQLSTATE
SELECT count(*) FROM ctx.messages(:'t');
SELECT ctx.create_context('typed?', metadata_schema => 'no_such_schema');
\echo :SQLSTATE

-- typed memory metadata: validated on remember and on update_memory
SELECT ctx.register_schema('fact', 1, '{"type": "object", "required": ["topic"], "properties": {"topic": {"type": "string"}}}');
SELECT ctx.remember('{typed}', 'Likes tea', metadata => '{"topic": "drinks"}', schema => 'fact') AS fm \gset
SELECT schema_name, schema_version FROM ctx.memories WHERE id = :'fm';
SELECT ctx.remember('{typed}', 'No topic', metadata => '{"kind": "x"}', schema => 'fact');
\echo :SQLSTATE
SELECT ctx.update_memory(:'fm', metadata => '{"topic": 5}');
\echo :SQLSTATE
SELECT ctx.update_memory(:'fm', metadata => '{"topic": "beverages"}') IS NOT NULL AS updated;
SELECT metadata, schema_name, schema_version FROM ctx.memories WHERE id = :'fm' AND valid_to IS NULL;
