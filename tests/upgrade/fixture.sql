-- A workload touching every store, written with the API of the oldest supported release. The
-- upgrade and dump/restore tests load it, then compare snapshot.sql before and after.
\set ON_ERROR_STOP 1
SET client_min_messages = warning;

-- a plain thread: all roles, compacted, with a retention policy and processor settings
SELECT ctx.create_context('plain', '{"user": "u1"}') AS plain \gset
SELECT count(*) FROM ctx.append_many(:'plain', (
  SELECT jsonb_agg(jsonb_build_object(
           'role', (ARRAY['system', 'user', 'assistant', 'tool'])[CASE WHEN i = 1 THEN 1 ELSE 2 + i % 3 END],
           'content', 'message ' || i || ' about trains to Lyon',
           'metadata', jsonb_build_object('i', i) || CASE WHEN i % 3 = 2 THEN jsonb_build_object('tool_call_id', 'call_' || i) ELSE '{}' END))
    FROM generate_series(1, 24) i));
SELECT ctx.compact(:'plain', 'the first sixteen messages, summarised', keep_last => 8);
SELECT ctx.set_retention(:'plain', max_messages => 20, compact_older_than => '30 days');
SELECT ctx.configure_context_processors(:'plain', '{"truncate": 500, "dedup": true}');
SELECT ctx.update_working_memory(:'plain', '{"goal": "book a train", "steps": [1, 2]}');

-- a fork in the middle, with its own messages and working memory
SELECT ctx.fork(:'plain', 20) AS fork \gset
UPDATE ctx.contexts SET name = 'fork' WHERE id = :'fork';
SELECT ctx.append(:'fork', 'user', 'a different question on the fork');
SELECT ctx.update_working_memory(:'fork', '{"goal": "book a plane"}');

-- an encrypted thread (needs ctxstore.master_key)
SELECT ctx.create_context('secret', encrypted => true) AS secret \gset
SELECT count(*) FROM ctx.append_many(:'secret', '[{"role": "user", "content": "my card is 4111 1111 1111 1111"},
  {"role": "assistant", "content": "I will not store it in clear"}, {"role": "user", "content": "thanks, secret marker"}]');
SELECT ctx.compact(:'secret', 'an encrypted summary', keep_last => 1);

-- memories: vectors, text, versions, metadata, an encrypted namespace
SELECT count(ctx.remember(ARRAY['fixture', 'facts'], 'fact number ' || i || CASE WHEN i % 2 = 0 THEN ' about trains' ELSE ' about planes' END,
                          ARRAY[sin(i), cos(i), (i % 5)::real / 5]::real[],
                          jsonb_build_object('n', i, 'kind', CASE WHEN i % 2 = 0 THEN 'train' ELSE 'plane' END),
                          importance => ((i % 10)::real / 10)::real))
  FROM generate_series(1, 30) i;
SELECT ctx.update_memory(id, content => content || ', revised') IS NOT NULL
  FROM ctx.memories WHERE namespace = '{fixture,facts}' AND content LIKE 'fact number 7 %' AND valid_to IS NULL;
SELECT ctx.encrypt_namespace('{fixture,private}');
SELECT ctx.remember('{fixture,private}', 'the user''s passport number is X123, secret marker') IS NOT NULL;

-- state: a schema, typed values, patches, versions
SELECT ctx.register_schema('profile', 1, '{"type": "object", "properties": {"name": {"type": "string"}}, "required": ["name"]}');
SELECT ctx.put('{fixture,users}', 'u1', '{"name": "Ada"}', schema => 'profile');
SELECT ctx.patch('{fixture,users}', 'u1', '{"city": "Lyon"}');
SELECT ctx.put('{fixture,users}', 'u2', '{"name": "Grace", "langs": ["en", "fr"]}');
SELECT ctx.put('{fixture,settings}', 'theme', '"dark"');

-- tenancy: role bindings (one role name needs quoting) and namespace processor settings,
-- which apply to every tenant's namespace of that name before 0.2.0 and to each one's after
DO $$ BEGIN CREATE ROLE "Fixture-App"; EXCEPTION WHEN duplicate_object THEN NULL; END $$;
DO $$ BEGIN CREATE ROLE fixture_app; EXCEPTION WHEN duplicate_object THEN NULL; END $$;
SELECT ctx.grant_access('"Fixture-App"'), ctx.grant_access('fixture_app');
SELECT ctx.bind_role_to_tenant('"Fixture-App"', 'fixture-quoted');
SELECT ctx.bind_role_to_tenant('fixture_app', 'fixture-plain');
SELECT ctx.configure_namespace_processors('{fixture,pii}', '{"redact_pii": true}');
SELECT ctx.disable_processor('dedup');
SET ctxstore.tenant = 'fixture-plain';
SELECT ctx.put('{fixture,pii}', 'contact', '{"email": "ada@example.com"}');
RESET ctxstore.tenant;

SELECT ctx.seal_audit() >= 0;
