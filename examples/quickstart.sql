-- ctxstore quickstart: a conversation stored, windowed, compacted and forked, all in SQL.
\set ON_ERROR_STOP on
\pset footer off
CREATE EXTENSION IF NOT EXISTS ctxstore;

-- 1. A context (thread) and a few turns.
SELECT ctx.create_context('support chat', '{"user": "u42"}') AS thread \gset
SELECT ctx.append(:'thread', 'system', 'You are a concise support assistant.');
SELECT ctx.append_many(:'thread', '[
  {"role": "user",      "content": "My API key stopped working this morning."},
  {"role": "assistant", "content": "Keys expire after 90 days. Did you rotate it recently?"},
  {"role": "user",      "content": "No. How do I rotate it?"},
  {"role": "assistant", "content": "Settings → API keys → Rotate. The old key keeps working for 24 hours."},
  {"role": "user",      "content": "Done, thanks! Can I automate this?", "metadata": {"channel": "web"}}
]');

\echo '--- buffer memory: every message, with its stored token count'
SELECT seq, role, tokens, left(content, 60) AS content FROM ctx.messages(:'thread');

\echo '--- last-k window (k = 2)'
SELECT seq, role, left(content, 60) AS content FROM ctx.window(:'thread', 2);

\echo '--- token-budget window: newest messages within 40 tokens (o200k_base)'
SELECT seq, role, tokens, left(content, 60) AS content FROM ctx.token_window(:'thread', 40);

\echo '--- compaction: a summary replaces all but the last 2 messages'
SELECT ctx.compact(:'thread', 'User''s API key expired; assistant explained key rotation.', keep_last => 2) AS summary_seq;
SELECT seq, role, tokens, left(content, 60) AS content FROM ctx.messages(:'thread');

\echo '--- nothing was lost: history still has the originals (archived, lz4-compressed)'
SELECT seq, role, archived, left(content, 50) AS content FROM ctx.history(:'thread');

\echo '--- fork at seq 3 (no copy) and take the conversation elsewhere'
SELECT ctx.fork(:'thread', at_seq => 3) AS branch \gset
SELECT ctx.append(:'branch', 'user', 'Actually, I want to delete my account instead.');
SELECT seq, role, left(content, 60) AS content FROM ctx.messages(:'branch');

\echo '--- long-term memory: facts in a namespace, recalled by vector + text + recency + importance'
SELECT ctx.remember('{user,u42,facts}', 'Prefers answers as numbered steps', '{0.9,0.1,0.0}', '{"topic": "style"}', importance => 0.9) IS NOT NULL AS stored;
SELECT ctx.remember('{user,u42,facts}', 'Uses the Python SDK for key rotation', '{0.1,0.9,0.1}', '{"topic": "tooling", "tags": ["python"]}') IS NOT NULL AS stored;
SELECT ctx.remember('{user,u42,facts}', 'Works in the Europe/Paris time zone', '{0.2,0.2,0.9}', '{"topic": "profile"}') IS NOT NULL AS stored;
SELECT content, round(similarity::numeric, 2) AS similarity, round(score::numeric, 2) AS score
  FROM ctx.recall('{user,u42}', query_embedding => '{0.2,0.9,0.1}', query_text => 'rotate key SDK', k => 2);
SELECT content FROM ctx.recall('{user,u42}', filter => '{"tags": {"$contains": "python"}}');
