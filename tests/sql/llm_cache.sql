-- The LLM response cache: by prompt and model string, per tenant, with a time to live.
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS ctxstore;
RESET client_min_messages;
\pset footer off

SELECT ctx.cache_lookup('What is 2+2?', 'model=fake-1;temperature=0') IS NULL AS miss;
SELECT ctx.cache_store('What is 2+2?', 'model=fake-1;temperature=0', '[{"text": "4"}]');
SELECT ctx.cache_lookup('What is 2+2?', 'model=fake-1;temperature=0') AS hit;
-- another model, another entry; a second store replaces
SELECT ctx.cache_lookup('What is 2+2?', 'model=fake-2;temperature=0') IS NULL AS other_model_misses;
SELECT ctx.cache_store('What is 2+2?', 'model=fake-1;temperature=0', '[{"text": "four"}]');
SELECT ctx.cache_lookup('What is 2+2?', 'model=fake-1;temperature=0') AS replaced;
-- the key is unambiguous: moving text between prompt and model string changes it
SELECT ctx.cache_key('ab', 'c') <> ctx.cache_key('a', 'bc') AS distinct_keys, octet_length(ctx.cache_key('', '')) AS key_bytes;
-- a time to live; expired entries are misses and cache_clear(expired_only) removes them
SELECT ctx.cache_store('weather?', 'model=fake-1', '[{"text": "sunny"}]', ttl => '1 hour');
SELECT ctx.cache_store('stale?', 'model=fake-1', '[{"text": "old"}]', ttl => '1 hour');
UPDATE ctx.llm_cache SET expires_at = now() - interval '1 second' WHERE llm_string = 'model=fake-1' AND value @> '[{"text": "old"}]';
SELECT ctx.cache_lookup('stale?', 'model=fake-1') IS NULL AS expired_misses;
SELECT ctx.cache_clear(expired_only => true) AS expired_removed;
SELECT ctx.cache_clear('model=fake-1') AS one_model_cleared;
SELECT ctx.cache_lookup('What is 2+2?', 'model=fake-1;temperature=0') IS NOT NULL AS other_model_kept;

-- tenancy: another tenant's role sees its own cache only
SELECT ctx.cache_store('shared prompt', 'm', '["owner"]');
CREATE ROLE cache_app;
SELECT ctx.grant_access('cache_app');
SET ROLE cache_app;
SET ctxstore.tenant = 'other';
SELECT ctx.cache_lookup('shared prompt', 'm') IS NULL AS isolated;
SELECT ctx.cache_store('shared prompt', 'm', '["other"]');
SELECT ctx.cache_lookup('shared prompt', 'm') AS own;
SELECT ctx.cache_clear() AS cleared_own;
RESET ctxstore.tenant;
RESET ROLE;
SELECT ctx.cache_lookup('shared prompt', 'm') AS still_there;
SELECT ctx.cache_clear() AS cleared;

-- bad input (SQLSTATE after each)
\set SHOW_CONTEXT never
SELECT ctx.cache_store(NULL, 'm', '[]');
\echo :SQLSTATE
SELECT ctx.cache_store('p', 'm', NULL);
\echo :SQLSTATE
SELECT ctx.cache_store('p', 'm', '[]', ttl => '0 seconds');
\echo :SQLSTATE
SELECT ctx.cache_lookup(NULL, 'm') IS NULL AS null_prompt_misses;

-- ctx.sweep deletes expired entries (reads already ignore them)
SELECT ctx.cache_store('short-lived', 'm', '["x"]', ttl => '1 hour');
UPDATE ctx.llm_cache SET expires_at = now() - interval '1 second' WHERE llm_string = 'm';
SELECT ctx.sweep() AS swept;
SELECT count(*) AS left FROM ctx.llm_cache WHERE llm_string = 'm';
SELECT value FROM ctx.metrics WHERE name = 'ctxstore_llm_cache_total' AND labels->>'event' = 'expired';
