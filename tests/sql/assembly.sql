-- Context assembly: one call builds the model's context within a token budget.
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS ctxstore;
RESET client_min_messages;
\pset footer off

SELECT ctx.create_context('turn', '{"memory_namespace": ["user", "ada"]}') AS c \gset
SELECT ctx.append(:'c', 'system', 'You are a travel assistant. Be brief.');
SELECT count(*) FROM ctx.append_many(:'c',
  (SELECT jsonb_agg(jsonb_build_object('role', CASE WHEN i % 2 = 1 THEN 'user' ELSE 'assistant' END,
                                       'content', format('turn %s: %s', i, repeat('travel plans ', 1 + i % 4))))
     FROM generate_series(1, 12) i));
SELECT ctx.append(:'c', 'assistant', '', '{"tool_calls": [{"id": "call_1", "type": "function", "function": {"name": "search_trains", "arguments": "{}"}}]}');
SELECT ctx.append(:'c', 'tool', '{"trains": 3}', '{"tool_call_id": "call_1"}');
SELECT ctx.update_working_memory(:'c', '{"destination": "Lyon", "date": "2026-12-01"}') IS NOT NULL AS wm;
SELECT ctx.remember('{user,ada}', 'Ada prefers window seats on trains', '{1,0,0}') IS NOT NULL AS m1;
SELECT ctx.remember('{user,ada}', 'Ada is vegetarian', '{0,1,0}') IS NOT NULL AS m2;
SELECT ctx.remember('{user,bob}', 'Bob hates trains', '{1,0,0}') IS NOT NULL AS m3;

-- sections in order: system, working memory, memories, (summary), newest messages that fit
SELECT position, section, role, tokens, left(content, 50) AS content, source - 'memory_id' - 'score' - 'working_memory' AS source
  FROM ctx.build_context(:'c', 200, '{1,0,0}', 'train seats');
-- the budget is never exceeded, whatever it is (from the system prompt's size up)
SELECT bool_and(used <= b) AS within_budget, bool_and(exact) AS tokens_are_exact, min(used), max(used)
  FROM generate_series(9, 400, 7) b,
       LATERAL (SELECT coalesce(sum(tokens), 0) AS used,
                       coalesce(bool_and(tokens = ctx.count_tokens(content)), true) AS exact
                  FROM ctx.build_context(:'c', b, '{1,0,0}', 'train seats')) x;
-- sections can be turned off or given another share; memories from explicit namespaces
SELECT section, count(*) FROM ctx.build_context(:'c', 400, '{1,0,0}',
       options => '{"working_memory": false, "memories": 1, "memory_namespaces": [["user"]]}')
 GROUP BY section ORDER BY min(position);
SELECT left(content, 45) FROM ctx.build_context(:'c', 400, '{1,0,0}',
       options => '{"memories": 1, "memory_namespaces": [["user"]], "working_memory": false}') WHERE section = 'memory';
-- assembling a context is a read: it runs in a read-only transaction, memories and all
BEGIN READ ONLY;
SELECT section, count(*) FROM ctx.build_context(:'c', 400, '{1,0,0}', 'train seats')
 GROUP BY section ORDER BY min(position);
SELECT pg_current_xact_id_if_assigned() IS NULL AS no_transaction_id;
COMMIT;
-- without a query, no memories are recalled
SELECT count(*) FROM ctx.build_context(:'c', 400) WHERE section = 'memory';

-- after compaction the summary comes before the recent messages; system messages stay pinned
SELECT ctx.compact(:'c', 'Ada is planning a train trip to Lyon.', keep_last => 4);
SELECT position, section, role, left(content, 60) AS content FROM ctx.build_context(:'c', 150, options => '{"working_memory": false}');
-- a fork assembles its own view
SELECT ctx.fork(:'c', 8) AS f \gset
SELECT ctx.append(:'f', 'user', 'Actually, let us fly instead.');
SELECT section, source->>'seq' AS seq, left(content, 40) AS content FROM ctx.build_context(:'f', 120, options => '{"working_memory": false}');

-- the OpenAI-style messages array, ready to send (tool calls keep their ids)
SELECT jsonb_pretty(ctx.build_context_json(:'c', 90, options => '{"working_memory": false, "summary": false}'));

-- bad input
SELECT * FROM ctx.build_context(:'c', 5);
\echo :SQLSTATE
SELECT * FROM ctx.build_context(:'c', -1);
\echo :SQLSTATE
SELECT * FROM ctx.build_context(:'c', NULL);
\echo :SQLSTATE
SELECT * FROM ctx.build_context('00000000-0000-0000-0000-000000000000', 100);
\echo :SQLSTATE
SELECT * FROM ctx.build_context(:'c', 100, options => '{"memory_share": 2}');
\echo :SQLSTATE
SELECT * FROM ctx.build_context(:'c', 100, options => '{"budget": 1}');
\echo :SQLSTATE
SELECT * FROM ctx.build_context(:'c', 100, '{1,NaN}');
\echo :SQLSTATE

-- leave nothing behind for the other tests
SELECT ctx.delete_context(:'c', cascade => true, forget_memories => true);
SELECT ctx.forget('{user,ada}'::text[]) + ctx.forget('{user,bob}'::text[]) AS forgotten;
