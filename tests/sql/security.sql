-- Security: encryption at rest, rotation, crypto-shredding, tenant isolation, audit.
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS ctxstore;
RESET client_min_messages;
\pset footer off
-- runs a statement and shows its outcome with ids masked (they differ every run)
CREATE FUNCTION pg_temp.try(statement text) RETURNS text LANGUAGE plpgsql AS $$
BEGIN
    EXECUTE statement;
    RETURN 'ok';
EXCEPTION WHEN OTHERS THEN
    RETURN SQLSTATE || ': ' || regexp_replace(SQLERRM,
        '[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}', '<id>', 'g');
END $$;

-- Without a master key, encryption refuses to start and names the setting.
SELECT ctx.create_context('no key', encrypted => true);
SET ctxstore.master_key = 'k1:000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f';
-- it is not listed by SHOW ALL / pg_settings (and non-superusers cannot SHOW it, see below)
SELECT count(*) AS listed FROM pg_settings WHERE name = 'ctxstore.master_key';

-- Encrypted context: everything reads back; the table holds only ciphertext.
SELECT ctx.create_context('vault', '{"memory_namespace": ["vault", "ada"]}', encrypted => true) AS v \gset
SELECT ctx.append(:'v', 'system', 'You are discreet.');
SELECT ctx.append(:'v', 'user', 'my locker code is 4477', '{"topic": "locker"}');
SELECT ctx.append_many(:'v', '[{"role": "assistant", "content": "noted"}, {"role": "user", "content": "also the bike lock: 1234"}]');
SELECT seq, role, content, metadata, tokens = ctx.count_tokens(content) AS exact FROM ctx.messages(:'v');
SELECT count(*) FILTER (WHERE content IS NULL AND content_enc IS NOT NULL AND metadata = '{}' AND metadata_enc IS NOT NULL) AS sealed,
       count(*) FILTER (WHERE position('locker'::bytea IN content_enc) > 0) AS readable
  FROM ctx.messages WHERE context_id = :'v';
SELECT seq, content FROM ctx.window(:'v', 2);
SELECT seq, content FROM ctx.token_window(:'v', 12);
SELECT ctx.update_working_memory(:'v', '{"locker": 4477}');
SELECT value, value_enc IS NOT NULL AS sealed FROM ctx.state WHERE key = :'v';
SELECT section, content FROM ctx.build_context(:'v', 200) ORDER BY position;
-- compaction keeps the summary and the archived originals encrypted
SELECT ctx.compact(:'v', 'Ada shared two lock codes.', keep_last => 1);
SELECT content IS NULL AND content_enc IS NOT NULL AS summary_sealed FROM ctx.summaries WHERE context_id = :'v';
SELECT seq, role, content FROM ctx.messages(:'v');
SELECT seq, content, archived FROM ctx.history(:'v');
-- a fork reads its parent's ciphertext and its inherited summary, and writes with its own key
SELECT ctx.fork(:'v') AS vf \gset
SELECT ctx.append(:'vf', 'user', 'fork secret');
SELECT seq, content FROM ctx.messages(:'vf');
SELECT ctx.working_memory(:'vf');
SELECT count(*) AS data_keys FROM ctx.data_keys WHERE scope IN ('context:' || :'v', 'context:' || :'vf');

-- A ciphertext moved to another row, or altered, does not open: it errors, never garbage.
BEGIN;
UPDATE ctx.messages SET content_enc = (SELECT content_enc FROM ctx.messages WHERE context_id = :'v' AND seq = 2)
 WHERE context_id = :'v' AND seq = 4;
SELECT pg_temp.try(format('SELECT content FROM ctx.window(%L, 1)', :'v'));
ROLLBACK;
BEGIN;
UPDATE ctx.messages SET content_enc = set_byte(content_enc, 20, get_byte(content_enc, 20) # 1)
 WHERE context_id = :'v' AND seq = 4;
SELECT pg_temp.try(format('SELECT content FROM ctx.window(%L, 1)', :'v'));
ROLLBACK;
-- the role is bound too: a user message cannot be promoted to a system prompt
BEGIN;
UPDATE ctx.messages SET role = 'system' WHERE context_id = :'v' AND seq = 4;
SELECT pg_temp.try(format('SELECT ctx.build_context(%L, 100)', :'v'));
ROLLBACK;

-- Wrong master key under the same id: a clear error. A second key, then rotation: data intact.
SET ctxstore.master_key = 'k1:ff0102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f';
SELECT content FROM ctx.window(:'v', 1);
SET ctxstore.master_key = 'k2:a0a1a2a3a4a5a6a7a8a9aaabacadaeafb0b1b2b3b4b5b6b7b8b9babbbcbdbebf, k1:000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f';
SELECT ctx.rotate_master_key('k2') >= 2 AS rotated;
SELECT DISTINCT master_key_id FROM ctx.data_keys WHERE wrapped IS NOT NULL;
SET ctxstore.master_key = 'k2:a0a1a2a3a4a5a6a7a8a9aaabacadaeafb0b1b2b3b4b5b6b7b8b9babbbcbdbebf';
SELECT seq, content FROM ctx.messages(:'vf');
SELECT ctx.rotate_master_key('k9');
-- the keys can come from a file the server reads instead
COPY (SELECT '# ctxstore master keys' UNION ALL SELECT 'k2:a0a1a2a3a4a5a6a7a8a9aaabacadaeafb0b1b2b3b4b5b6b7b8b9babbbcbdbebf')
  TO '/tmp/ctxstore_regress_master.key';
SET ctxstore.master_key = '';
SET ctxstore.master_key_file = '/tmp/ctxstore_regress_master.key';
SELECT count(*) AS readable FROM ctx.messages(:'vf');
SET ctxstore.master_key_file = '/tmp/ctxstore_no_such.key';
SELECT count(*) FROM ctx.messages(:'vf');
RESET ctxstore.master_key_file;
SET ctxstore.master_key = 'k2:a0a1a2a3a4a5a6a7a8a9aaabacadaeafb0b1b2b3b4b5b6b7b8b9babbbcbdbebf';
SELECT hits > 0 AS cache_hits, misses > 0 AS cache_misses FROM ctx.key_cache_stats();

-- Encrypted namespaces: memories and state sealed, recall and reads decrypt.
SELECT ctx.encrypt_namespace('{vault}');
SELECT ctx.remember('{vault,ada}', 'Ada keeps a spare key under the mat', '{1,0,0}', '{"kind": "secret"}') AS m \gset
SELECT content IS NULL AND content_enc IS NOT NULL AND metadata = '{}' AS sealed FROM ctx.memories WHERE id = :'m';
SELECT content, metadata FROM ctx.recall('{vault}', '{1,0,0}', k => 1);
SELECT ctx.update_memory(:'m', content => 'Ada moved the spare key') IS NOT NULL AS updated;
SELECT content, metadata FROM ctx.recall('{vault}', '{1,0,0}', k => 1);
SELECT ctx.remember('{vault,ada}', 'a near duplicate', '{0.99,0.01,0}', '{"extra": 1}', dedup_threshold => 0.9) = :'m' AS deduplicated;
SELECT content, metadata FROM ctx.recall('{vault}', '{1,0,0}', k => 1);
-- a batch is sealed as each single memory is, and read back in the clear by recall
SELECT count(id) AS batch FROM ctx.remember_many('{vault,batch}',
  '[{"content": "batch secret one", "embedding": [0, 0, 1], "metadata": {"n": 1}}, {"content": "batch secret two", "metadata": {"n": 2}}]');
SELECT count(*) FILTER (WHERE content IS NULL AND content_enc IS NOT NULL AND metadata = '{}' AND metadata_enc IS NOT NULL) AS sealed,
       count(*) AS stored
  FROM ctx.memories WHERE namespace = '{vault,batch}';
SELECT content, metadata FROM ctx.recall('{vault,batch}', '{0,0,1}', k => 1);
SELECT ctx.put('{vault,ada}', 'pin', '{"pin": "9911"}');
SELECT ctx.patch('{vault,ada}', 'pin', '{"puk": "12345678"}');
SELECT ctx.get('{vault,ada}', 'pin');
SELECT value, value_enc IS NOT NULL AS sealed FROM ctx.state WHERE namespace = '{vault,ada}';
SELECT key, value FROM ctx.search_state('{vault}');
SELECT section, left(content, 40) AS content FROM ctx.build_context(:'v', 300, '{1,0,0}') WHERE section = 'memory';
SELECT ctx.encrypt_namespace('{vault,inner}');
SELECT ctx.remember('{plain}', 'in the clear') IS NOT NULL AS plain;
SELECT ctx.encrypt_namespace('{plain}');

-- Crypto-shredding: the key is destroyed, the rows deleted, reads say so.
SELECT pg_temp.try(format('SELECT ctx.shred(%L)', :'v'));
SELECT ctx.shred(:'v', cascade => true) AS contexts_shredded;
SELECT pg_temp.try(format('SELECT ctx.messages(%L)', :'v'));
SELECT pg_temp.try(format('SELECT ctx.append(%L, %L, %L)', :'vf', 'user', 'too late'));
SELECT count(*) AS rows_left FROM ctx.messages WHERE context_id IN (:'v', :'vf');
SELECT scope LIKE 'context:%' AS is_context, wrapped IS NULL AND shredded_at IS NOT NULL AS tombstone
  FROM ctx.data_keys WHERE scope IN ('context:' || :'v', 'context:' || :'vf');
SELECT ctx.create_context('plain ctx') AS p \gset
SELECT pg_temp.try(format('SELECT ctx.shred(%L)', :'p'));
SELECT ctx.shred_namespace('{vault}') AS rows_shredded;
SELECT ctx.get('{vault,ada}', 'pin');
SELECT ctx.remember('{vault,ada}', 'after shredding');
SELECT ctx.shred_namespace('{plain}');

-- Tenant isolation: two application roles, each limited to its tenant by row-level security.
SET client_min_messages = warning;
DROP ROLE IF EXISTS ctx_tenant_a;
DROP ROLE IF EXISTS ctx_tenant_b;
RESET client_min_messages;
CREATE FUNCTION pg_temp.noop_processor(item jsonb) RETURNS jsonb LANGUAGE sql STABLE AS 'SELECT item';
CREATE ROLE ctx_tenant_a;
CREATE ROLE ctx_tenant_b;
SELECT ctx.grant_access('ctx_tenant_a'), ctx.grant_access('ctx_tenant_b');
SET ROLE ctx_tenant_a;
SET ctxstore.tenant = 'acme';
SELECT ctx.create_context('acme chat', '{"memory_namespace": ["users", "u1"]}') AS a \gset
SELECT ctx.append(:'a', 'user', 'acme confidential plan');
SELECT ctx.remember('{users,u1}', 'acme memory', '{1,0,0}') AS am \gset
SELECT ctx.put('{users,u1}', 'profile', '{"name": "acme user"}');
SELECT ctx.update_working_memory(:'a', '{"step": 1}');
SELECT count(*) AS own_rows FROM ctx.messages(:'a');
RESET ROLE;
SET ROLE ctx_tenant_b;
SET ctxstore.tenant = 'globex';
DO $$ BEGIN PERFORM current_setting('ctxstore.master_key'); RAISE NOTICE 'master key readable';
EXCEPTION WHEN insufficient_privilege THEN RAISE NOTICE 'master key hidden (%)', SQLSTATE; END $$;
-- direct table access: nothing of acme
SELECT (SELECT count(*) FROM ctx.contexts) AS contexts, (SELECT count(*) FROM ctx.messages) AS messages,
       (SELECT count(*) FROM ctx.summaries) AS summaries, (SELECT count(*) FROM ctx.memories) AS memories,
       (SELECT count(*) FROM ctx.state) AS state, (SELECT count(*) FROM ctx.data_keys) AS keys,
       (SELECT count(*) FROM ctx.audit_log) AS audit, (SELECT count(*) FROM ctx.context_stats) AS context_stats,
       (SELECT count(*) FROM ctx.namespace_stats WHERE namespace <> '{users,u1}') AS namespace_stats;
UPDATE ctx.messages SET content = 'pwned' WHERE context_id = :'a';
DELETE FROM ctx.memories WHERE id = :'am';
INSERT INTO ctx.messages (context_id, tenant, seq, role, content, tokens) VALUES (:'a', 'acme', 99, 'user', 'x', 1);
INSERT INTO ctx.contexts (tenant, encoding) VALUES ('acme', 'o200k_base');
-- every function, with acme's ids (%1$L: a context, %2$L: a memory)
SELECT attack, pg_temp.try(format(attack, :'a', :'am')) AS outcome FROM (VALUES
    ('SELECT ctx.messages(%1$L)'), ('SELECT ctx.window(%1$L, 5)'), ('SELECT ctx.token_window(%1$L, 100)'),
    ('SELECT ctx.history(%1$L)'), ('SELECT ctx.build_context(%1$L, 100)'),
    ('SELECT ctx.build_context_json(%1$L, 100)'), ('SELECT ctx.append(%1$L, ''user'', ''injected'')'),
    ('SELECT ctx.append_many(%1$L, ''[{"role": "user", "content": "x"}]'')'), ('SELECT ctx.fork(%1$L)'),
    ('SELECT ctx.compact(%1$L, ''stolen summary'')'), ('SELECT ctx.delete_context(%1$L)'),
    ('SELECT ctx.shred(%1$L)'), ('SELECT ctx.working_memory(%1$L)'),
    ('SELECT ctx.update_working_memory(%1$L, ''{"step": 99}'')'),
    ('SELECT ctx.configure_context_processors(%1$L, ''{}'')'), ('SELECT ctx.processor_config(%1$L)'),
    ('SELECT ctx.update_memory(%2$L, content => ''overwritten'')'),
    ('DO $d$ BEGIN IF ctx.forget(%2$L::uuid) THEN RAISE ''forgot another tenant''''s memory''; END IF; END $d$'),
    ('INSERT INTO ctx.messages (context_id, seq, role, content, tokens) VALUES (%1$L, 2, ''user'', ''squat'', 1)'),
    ('INSERT INTO ctx.summaries (context_id, version, through_seq, content, tokens) VALUES (%1$L, 1, 1, ''x'', 1)'),
    ('INSERT INTO ctx.contexts (encoding, parent_id, ancestors, bounds) VALUES (''o200k_base'', %1$L, ARRAY[%1$L]::uuid[], ''{1}'')'),
    ('SELECT ctx.remember(''{users,u1}'', ''x'', source_context => %1$L)')
  ) AS t(attack);
SELECT count(*) AS recalled FROM ctx.recall('{users}', '{1,0,0}', 'acme');
SELECT ctx.get('{users,u1}', 'profile') AS profile;
SELECT count(*) AS found FROM ctx.search_state('{users}');
SELECT count(*) AS namespaces FROM ctx.list_namespaces();
-- the same namespace and key are globex's own, separate values
SELECT ctx.put('{users,u1}', 'profile', '{"name": "globex user"}') AS version;
-- and an encrypted namespace of the same name has its own key, even on this pooled session
SELECT ctx.encrypt_namespace('{safe}');
SELECT ctx.put('{safe}', 'k', '{"owner": "globex"}');
RESET ROLE;
SET ROLE ctx_tenant_a;
SET ctxstore.tenant = 'acme';
SELECT ctx.encrypt_namespace('{safe}');
SELECT ctx.put('{safe}', 'k', '{"owner": "acme"}');
SELECT ctx.get('{safe}', 'k') AS acme_reads;
RESET ROLE;
SET ROLE ctx_tenant_b;
SET ctxstore.tenant = 'globex';
SELECT ctx.get('{safe}', 'k') AS globex_reads;
SELECT count(*) AS own_keys FROM ctx.data_keys;
-- the audit log: not writable, not others' rows
SELECT attack, pg_temp.try(attack) AS outcome FROM (VALUES
    ('UPDATE ctx.audit_log SET actor = ''nobody'''), ('DELETE FROM ctx.audit_log'), ('TRUNCATE ctx.audit_log'),
    ('INSERT INTO ctx.audit_log (id) VALUES (1)'), ('SELECT ctx.verify_audit()'), ('SELECT ctx.seal_audit()'),
    ('SELECT ctx.set_audit(''messages'', false)'), ('SELECT ctx.bind_role_to_tenant(''ctx_tenant_b'', ''acme'')'),
    ('SELECT ctx.rotate_master_key(''k2'')'), ('INSERT INTO ctx.tenant_roles VALUES (''ctx_tenant_b'', ''acme'')'),
    ('SELECT ctx.register_processor(''spy'', ''read'', ''pg_temp.noop_processor(jsonb)'')'),
    ('SELECT ctx.disable_processor(''redact_secrets'')'),
    ('SELECT ctx.configure_namespace_processors(''{users}'', ''{"redact_secrets": false}'')'),
    ('SELECT ctx.register_schema(''s'', 1, ''{}'')')
  ) AS t(attack);
RESET ROLE;
-- a role bound to a tenant cannot switch tenants with the setting
SELECT ctx.bind_role_to_tenant('ctx_tenant_b', 'globex');
SET ROLE ctx_tenant_b;
SET ctxstore.tenant = 'acme';
SELECT ctx.current_tenant(), (SELECT count(*) FROM ctx.messages) AS messages;
SELECT pg_temp.try(format('SELECT ctx.messages(%L)', :'a'));
RESET ROLE;
-- acme's data is intact
SET ROLE ctx_tenant_a;
SET ctxstore.tenant = 'acme';
SELECT seq, content FROM ctx.messages(:'a');
SELECT ctx.get('{users,u1}', 'profile'), ctx.working_memory(:'a');
SELECT content FROM ctx.recall('{users}', '{1,0,0}', k => 1);
RESET ROLE;
RESET ctxstore.tenant;

-- Audit: every change is logged with its actor, tenant, row and columns — never content.
SET application_name = 'agent-7';
SET ctxstore.traceparent = '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01';
SELECT ctx.create_context('audited') AS au \gset
SELECT ctx.append(:'au', 'user', 'audit me');
SELECT ctx.remember('{traced}', 'traced memory') AS tm \gset
RESET ctxstore.traceparent;
-- the trace id is on the rows themselves too
SELECT (SELECT trace_id FROM ctx.messages WHERE context_id = :'au' AND seq = 1) AS message_trace,
       (SELECT trace_id FROM ctx.memories WHERE id = :'tm') AS memory_trace;
-- a recall's access bookkeeping is a read, not logged; a new version is
SET ctxstore.track_memory_access = on;
SELECT count(*) AS recalled FROM ctx.recall('{traced}');
RESET ctxstore.track_memory_access;
SELECT (SELECT access_count FROM ctx.memories WHERE id = :'tm') AS access_count;
SELECT ctx.update_memory(:'tm', importance => 0.9) IS NOT NULL AS updated;
SELECT operation, row_key ->> 'version' AS version, columns
  FROM ctx.audit_log WHERE table_name = 'memories' AND row_key ->> 'id' = :'tm' ORDER BY id;
SELECT ctx.forget(:'tm'::uuid);
SELECT table_name, operation, actor, application, row_key - 'id' - 'context_id' AS row_key, columns, trace_id
  FROM ctx.audit_log WHERE row_key ->> 'context_id' = :'au' OR row_key ->> 'id' = :'au' ORDER BY id;
SELECT count(*) AS content_in_log FROM ctx.audit_log WHERE row_key::text LIKE '%audit me%';
SELECT table_name, operation, tenant, row_key - 'id' - 'context_id' AS row_key
  FROM ctx.audit_log WHERE tenant = 'acme' ORDER BY id LIMIT 3;
RESET application_name;
SELECT ok, checked > 0 AS checked, first_bad_id FROM ctx.verify_audit();
-- each tenant has its own chain (positions from 1, its own head), verified alone or all at once
SELECT tenant, min(chain_seq) AS first, max(chain_seq) = count(*) AS gapless
  FROM ctx.audit_log WHERE chain_seq IS NOT NULL AND tenant IN ('', 'acme') GROUP BY tenant ORDER BY tenant;
SELECT (SELECT last_seq FROM ctx.audit_chain WHERE tenant = 'acme')
     = (SELECT max(chain_seq) FROM ctx.audit_log WHERE tenant = 'acme') AS acme_head;
SELECT ok, checked > 0 AS checked, first_bad_id FROM ctx.verify_audit('acme');
SELECT ok, checked, first_bad_id FROM ctx.verify_audit('no such tenant');
SELECT ctx.verify_audit(NULL);
-- a superuser edits, deletes or reorders sealed rows: detected
BEGIN;
UPDATE ctx.audit_log SET actor = 'someone else' WHERE tenant = '' AND chain_seq = 4;
SELECT ok, first_bad_id = (SELECT id FROM ctx.audit_log WHERE tenant = '' AND chain_seq = 4) AS found_it FROM ctx.verify_audit();
ROLLBACK;
BEGIN;
DELETE FROM ctx.audit_log WHERE tenant = '' AND chain_seq = 6;
SELECT ok, first_bad_id = (SELECT id FROM ctx.audit_log WHERE tenant = '' AND chain_seq = 7) AS found_it FROM ctx.verify_audit();
ROLLBACK;
BEGIN;
DELETE FROM ctx.audit_log WHERE tenant = '' AND chain_seq = (SELECT max(chain_seq) FROM ctx.audit_log WHERE tenant = '');
SELECT ok, first_bad_id FROM ctx.verify_audit();
ROLLBACK;
BEGIN;
UPDATE ctx.audit_log SET chain_seq = -chain_seq WHERE tenant = '' AND chain_seq IN (1, 2);
UPDATE ctx.audit_log SET chain_seq = CASE chain_seq WHEN -1 THEN 2 ELSE 1 END WHERE tenant = '' AND chain_seq IN (-1, -2);
SELECT ok, first_bad_id IS NOT NULL AS found_it FROM ctx.verify_audit();
ROLLBACK;
-- one tenant's chain tampered with: its own verification and the whole one fail, not another's
BEGIN;
UPDATE ctx.audit_log SET columns = '{}' WHERE tenant = 'acme' AND chain_seq = 2;
SELECT (SELECT ok FROM ctx.verify_audit('acme')) AS acme_ok, (SELECT ok FROM ctx.verify_audit('')) AS others_ok,
       (SELECT ok FROM ctx.verify_audit()) AS all_ok;
ROLLBACK;
-- a row moved to another tenant's chain: both chains break
BEGIN;
UPDATE ctx.audit_log SET tenant = '', chain_seq = (SELECT max(chain_seq) + 1 FROM ctx.audit_log WHERE tenant = '')
 WHERE tenant = 'acme' AND chain_seq = (SELECT max(chain_seq) FROM ctx.audit_log WHERE tenant = 'acme');
SELECT (SELECT ok FROM ctx.verify_audit('acme')) AS acme_ok, (SELECT ok FROM ctx.verify_audit('')) AS others_ok;
ROLLBACK;
-- a tenant's head deleted (with its rows left): detected
BEGIN;
DELETE FROM ctx.audit_chain WHERE tenant = 'acme';
SELECT ok, first_bad_id FROM ctx.verify_audit('acme');
ROLLBACK;
-- and a seal never starts a tenant's chain over (its new rows would hide the deletion): it
-- leaves that tenant's rows unsealed, with a warning, and seals the other tenants'
BEGIN;
DELETE FROM ctx.audit_chain WHERE tenant = 'acme';
SET LOCAL ctxstore.tenant = 'acme';
SELECT ctx.put('{users,u1}', 'after the head went', '1') IS NOT NULL AS written;
RESET ctxstore.tenant;
SELECT ctx.put('{users,u1}', 'another tenant''s write', '1') IS NOT NULL AS written;
SELECT ctx.seal_audit() AS sealed;
SELECT tenant, count(*) FILTER (WHERE chain_seq IS NULL) AS unsealed FROM ctx.audit_log
 WHERE tenant IN ('', 'acme') GROUP BY tenant ORDER BY tenant;
SELECT count(*) AS acme_heads FROM ctx.audit_chain WHERE tenant = 'acme';
SELECT (SELECT ok FROM ctx.verify_audit('acme')) AS acme_ok, (SELECT ok FROM ctx.verify_audit('')) AS others_ok;
ROLLBACK;
SELECT ok FROM ctx.verify_audit();
-- ctx.current_tenant() keeps its answer for the statement, never past a rollback: a binding made
-- and rolled back inside one statement (an exception block) is gone at once
DO $$
BEGIN
    BEGIN
        PERFORM ctx.bind_role_to_tenant(current_user::regrole, 'rolled-back');
        RAISE NOTICE 'bound: %', ctx.current_tenant();
        RAISE EXCEPTION 'undo';
    EXCEPTION WHEN raise_exception THEN NULL;
    END;
    RAISE NOTICE 'after the rollback: "%"', ctx.current_tenant();
END $$;
-- An append's own move of the context's seq counter is logged by its messages' rows (their
-- seqs), not by a row of its own; every other change of the counter is logged: a direct
-- UPDATE, by the owner or an application role, alone or beside another column.
SELECT max(id) AS before FROM ctx.audit_log \gset
SELECT ctx.append(:'au', 'user', 'one more');
SELECT count(*) AS appended FROM ctx.append_many(:'au', '[{"role": "user", "content": "two"}, {"role": "assistant", "content": "three"}]');
SELECT count(*) AS saved FROM ctx.save_messages(:'au', '[{"role": "user", "content": "four", "message_id": "m-four"}]');
UPDATE ctx.contexts SET last_seq = last_seq + 1 WHERE id = :'au';
UPDATE ctx.contexts SET last_seq = last_seq - 1, updated_at = now() WHERE id = :'au';
SET ROLE ctx_tenant_a;
SELECT ctx.create_context('counter of a') AS ca \gset
SELECT ctx.append(:'ca', 'user', 'hi');
UPDATE ctx.contexts SET last_seq = last_seq + 1 WHERE id = :'ca';
UPDATE ctx.contexts SET last_seq = last_seq + 1, name = 'renamed' WHERE id = :'ca';
RESET ROLE;
SELECT table_name, operation, row_key - 'id' - 'context_id' AS row_key, columns
  FROM ctx.audit_log WHERE id > :before AND table_name IN ('contexts', 'messages') ORDER BY id;
-- An attacker's function that the append's statement calls (through the caller's search_path:
-- an exact match of cardinality(uuid[]) wins over pg_catalog's) and that moves the counter by
-- the same count, first: its UPDATE is another command, so it is logged; the append's own
-- bump is still taken for the one announced. (An added trigger on ctx.messages makes the append
-- run its statement; stored directly, the message's counter UPDATE calls no function the search
-- path could replace: below.)
CREATE SCHEMA regress_evil;
CREATE FUNCTION regress_evil.cardinality(uuid[]) RETURNS int LANGUAGE sql AS $$
  UPDATE ctx.contexts SET last_seq = last_seq + 1 WHERE name = 'renamed';
  SELECT 0 $$;
CREATE FUNCTION public.noop_trigger() RETURNS trigger LANGUAGE plpgsql AS 'BEGIN RETURN NULL; END';
CREATE TRIGGER noop AFTER INSERT ON ctx.messages FOR EACH ROW EXECUTE FUNCTION public.noop_trigger();
SELECT max(id) AS before FROM ctx.audit_log \gset
-- (a new session: this one has the append's statement prepared already)
\c
SET search_path = regress_evil, public;
SELECT ctx.append(:'ca', 'user', 'hijacked') AS seq;
RESET search_path;
SELECT last_seq FROM ctx.contexts WHERE id = :'ca';
SELECT table_name, operation, row_key - 'id' - 'context_id' AS row_key, columns
  FROM ctx.audit_log WHERE id > :before AND table_name IN ('contexts', 'messages') ORDER BY id;
DROP TRIGGER noop ON ctx.messages;
DROP FUNCTION public.noop_trigger();
-- the direct path under the same search path: the counter moves by exactly its one message
SELECT max(id) AS before FROM ctx.audit_log \gset
\c
SET search_path = regress_evil, public;
SELECT ctx.append(:'ca', 'user', 'not hijacked') AS seq;
RESET search_path;
SELECT last_seq FROM ctx.contexts WHERE id = :'ca';
SELECT table_name, operation, row_key - 'id' - 'context_id' AS row_key, columns
  FROM ctx.audit_log WHERE id > :before AND table_name IN ('contexts', 'messages') ORDER BY id;
DROP SCHEMA regress_evil CASCADE;
-- auditing can be switched off per table by an administrator
SELECT ctx.set_audit('messages', false);
SELECT count(*) AS before FROM ctx.audit_log WHERE table_name = 'messages' \gset
SELECT ctx.append(:'au', 'user', 'not audited');
SELECT count(*) - :before AS new_rows FROM ctx.audit_log WHERE table_name = 'messages';
SELECT ctx.set_audit('messages', true);
SELECT ctx.set_audit('nope', true);

-- An append's audit row is written straight into the log (no SQL); it records what the SQL
-- recorded: the SET ROLE role as actor, the session user, application_name (NULL when empty),
-- the transaction, and the trace id ctx.current_trace_id() gives, which the message row takes
-- as its default: equal for every way a request names its trace (and the malformed ones).
SELECT ctx.create_context('traced') AS tr \gset
CREATE TEMPORARY TABLE traced (setting text, app text, seq bigint, sql_trace text);
DO $$
DECLARE
    s text; a text; c uuid := (SELECT id FROM ctx.contexts WHERE name = 'traced');
BEGIN
    FOR s, a IN VALUES
        ('00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01', 'psql'),
        ('ff-00000000000000000000000000000000-0000000000000000-00', ''),
        ('00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01', 'x traceparent=''00-aaf92f3577b34da6a3ce929d0e0e4736-'),
        ('', 'traceparent=zz traceparent=00-bbf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01'),
        (' 00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01', 'traceparent="00-ccf92f3577b34da6a3ce929d0e0e4736-')
    LOOP
        PERFORM set_config('ctxstore.traceparent', s, true);
        PERFORM set_config('application_name', a, true);
        INSERT INTO traced VALUES (s, a, ctx.append(c, 'user', 'traced'), ctx.current_trace_id());
    END LOOP;
END $$;
RESET ctxstore.traceparent;
SELECT t.setting, t.app, m.trace_id AS message_trace, a.trace_id AS audit_trace,
       a.trace_id IS NOT DISTINCT FROM m.trace_id AS same, a.application,
       a.actor = current_user AND a.session_role = session_user AS roles,
       a.xid::text = m.xmin::text AS message_transaction,
       m.trace_id IS NOT DISTINCT FROM t.sql_trace AS message_as_sql,
       m.message_id ~ '^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$' AS uuid_v4_id
  FROM traced t
  JOIN ctx.messages m ON m.context_id = :'tr' AND m.seq = t.seq
  JOIN ctx.audit_log a ON a.table_name = 'messages' AND a.operation = 'INSERT'
                      AND a.row_key = jsonb_build_object('context_id', :'tr'::uuid, 'seq', t.seq)
 ORDER BY t.seq;
-- The direct write applies only to the log the schema made: a trigger an administrator adds
-- to it fires (the rows go through SQL); dropped, the direct write resumes (the trigger no
-- longer fires). An added CHECK constraint applies to the direct write too.
CREATE TABLE public.log_seen (n int);
CREATE FUNCTION public.log_seen() RETURNS trigger LANGUAGE plpgsql AS
    'BEGIN INSERT INTO public.log_seen VALUES (1); RETURN NULL; END';
CREATE TRIGGER seen AFTER INSERT ON ctx.audit_log FOR EACH ROW EXECUTE FUNCTION public.log_seen();
SELECT ctx.append(:'tr', 'user', 'seen by the trigger') > 0 AS appended;
SELECT count(*) AS trigger_saw FROM public.log_seen;
DROP TRIGGER seen ON ctx.audit_log;
SELECT ctx.append(:'tr', 'user', 'written directly') > 0 AS appended;
SELECT count(*) AS trigger_saw FROM public.log_seen;
ALTER TABLE ctx.audit_log ADD CONSTRAINT no_messages CHECK (table_name <> 'messages') NOT VALID;
\set VERBOSITY terse
SELECT ctx.append(:'tr', 'user', 'refused by the added constraint');
\set VERBOSITY default
ALTER TABLE ctx.audit_log DROP CONSTRAINT no_messages;
SELECT ctx.append(:'tr', 'user', 'written directly again') > 0 AS appended;
DROP TABLE public.log_seen;
DROP FUNCTION public.log_seen();
-- An append without a caller's id stores its message directly (no INSERT statement) only while
-- ctx.messages is what the schema made; otherwise its statement runs and does what it would:
-- an administrator's trigger fires, a changed default applies, a replica session fires no
-- trigger (so writes no audit row), an added row-level security policy is enforced.
CREATE TABLE public.messages_seen (seq bigint);
CREATE FUNCTION public.messages_seen() RETURNS trigger LANGUAGE plpgsql AS
    'BEGIN INSERT INTO public.messages_seen VALUES (NEW.seq); RETURN NULL; END';
CREATE TRIGGER seen AFTER INSERT ON ctx.messages FOR EACH ROW EXECUTE FUNCTION public.messages_seen();
SELECT ctx.append(:'tr', 'user', 'seen by the trigger') AS seen_seq \gset
SELECT array_agg(seq) = ARRAY[:seen_seq]::bigint[] AS trigger_saw_it FROM public.messages_seen;
DROP TRIGGER seen ON ctx.messages;
SELECT ctx.append(:'tr', 'user', 'stored directly') > 0 AS appended;
SELECT count(*) AS trigger_saw FROM public.messages_seen;
DROP TABLE public.messages_seen;
DROP FUNCTION public.messages_seen();
ALTER TABLE ctx.messages ALTER COLUMN revision SET DEFAULT 2;
SELECT ctx.append(:'tr', 'user', 'revision 2 by default') AS s2 \gset
ALTER TABLE ctx.messages ALTER COLUMN revision SET DEFAULT 1;
SELECT ctx.append(:'tr', 'user', 'revision 1 again') AS s1 \gset
SELECT content, revision FROM ctx.messages WHERE context_id = :'tr' AND seq IN (:s2, :s1) ORDER BY seq;
SELECT max(id) AS before FROM ctx.audit_log \gset
SET session_replication_role = replica;
SELECT ctx.append(:'tr', 'user', 'in a replica session') > 0 AS appended;
RESET session_replication_role;
SELECT count(*) AS audit_rows_of_a_replica_session FROM ctx.audit_log WHERE id > :before;
SELECT ctx.append(:'tr', 'user', 'audited again') > 0 AS appended;
SELECT count(*) AS audit_rows_after FROM ctx.audit_log WHERE id > :before;
-- the direct write checks the table's constraints as an INSERT does, an administrator's
-- included, and a constraint replaced by another (their count unchanged) is the new one: the
-- planned checks a backend keeps are dropped at the catalog's change
ALTER TABLE ctx.messages ADD CONSTRAINT no_shouting CHECK (content IS NULL OR content <> upper(content)) NOT VALID;
\set VERBOSITY terse
SELECT ctx.append(:'tr', 'user', 'SHOUT');
\set VERBOSITY default
ALTER TABLE ctx.messages DROP CONSTRAINT no_shouting,
  ADD CONSTRAINT no_whispering CHECK (content IS NULL OR content <> lower(content)) NOT VALID;
SELECT ctx.append(:'tr', 'user', 'SHOUT') > 0 AS appended;
\set VERBOSITY terse
SELECT ctx.append(:'tr', 'user', 'whisper');
\set VERBOSITY default
ALTER TABLE ctx.messages DROP CONSTRAINT no_whispering;
SELECT ctx.append(:'tr', 'user', 'whisper') > 0 AS appended;
CREATE POLICY no_forbidden ON ctx.messages AS RESTRICTIVE FOR INSERT WITH CHECK (content <> 'forbidden');
SET ROLE ctx_tenant_a;
SET ctxstore.tenant = 'acme';
SELECT ctx.create_context('policed') AS po \gset
SELECT ctx.append(:'po', 'user', 'allowed') AS seq;
\set VERBOSITY terse
SELECT ctx.append(:'po', 'user', 'forbidden');
\set VERBOSITY default
RESET ROLE;
DROP POLICY no_forbidden ON ctx.messages;
SET ROLE ctx_tenant_a;
SELECT ctx.append(:'po', 'user', 'forbidden') AS seq;
RESET ROLE;
RESET ctxstore.tenant;
-- under SET ROLE the actor is the role, the session user stays
CREATE ROLE "Audit Actor" IN ROLE ctx_tenant_a;
SET ROLE "Audit Actor";
SELECT ctx.create_context('actor') AS ac \gset
RESET ROLE;
SELECT actor, session_role = session_user AS session_user, tenant FROM ctx.audit_log
 WHERE table_name = 'contexts' AND row_key->>'id' = :'ac';
DROP OWNED BY "Audit Actor";
DROP ROLE "Audit Actor";

-- clean up what other tests count
SELECT ctx.delete_context(id, cascade => true) FROM ctx.contexts
 WHERE name IN ('audited', 'plain ctx') AND parent_id IS NULL;
SELECT ctx.forget('{plain}'::text[]);
DELETE FROM ctx.tenant_roles;
DELETE FROM ctx.contexts WHERE tenant <> '';
DELETE FROM ctx.memories WHERE tenant <> '';
DELETE FROM ctx.state WHERE tenant <> '';
DROP OWNED BY ctx_tenant_a, ctx_tenant_b;
DROP ROLE ctx_tenant_a;
DROP ROLE ctx_tenant_b;
RESET ctxstore.master_key;
