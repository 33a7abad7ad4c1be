-- Imports from the peers' own tables (docs/migrating.md): a database that ran langchain-postgres,
-- LangGraph's Postgres saver and store, or @mastra/pg moves into ctxstore in one call.
-- Each import runs in the caller's transaction and as the caller (row-level security applies),
-- reads its source through a cursor ordered by the source's key (one batch in memory at a time),
-- writes through the functions the adapters use (so the target's tenant, encryption and
-- processors apply and every row written is audited), and skips what is already there: running
-- it twice imports nothing twice. Each returns one row per kind: imported, skipped (already
-- present), and the settings it applied.

-- The name an import compares a column's type by: a built-in type's name without its modifier
-- ("timestamp with time zone", "jsonb"), pgvector's types by their name ("vector"), anything
-- else qualified by its schema, so that a look-alike type (a "text" of another schema, whose
-- casts would run its owner's code as the importer) never passes for a built-in one.
CREATE FUNCTION ctx.import_type_name(type_oid oid) RETURNS text
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $body$
    SELECT CASE WHEN t.typnamespace = 'pg_catalog'::regnamespace THEN format_type(t.oid, NULL)
                WHEN EXISTS (SELECT 1 FROM pg_depend d JOIN pg_extension x ON x.oid = d.refobjid
                              WHERE d.classid = 'pg_type'::regclass AND d.objid = t.oid AND d.deptype = 'e'
                                AND x.extname = 'vector')
                THEN t.typname::text
                ELSE format('%I.%I', t.typnamespace::regnamespace::text, t.typname) END
      FROM pg_type t WHERE t.oid = type_oid
$body$;

-- The source must be a table (not a view: a view's expressions would run as the importer)
-- without row-level security (nor its policies), with these columns of these types (expected:
-- {"column": ["type", ...]}, names as ctx.import_type_name gives them), else 42P16 naming
-- what differs and what the peer's version creates.
CREATE FUNCTION ctx.check_import_source(source regclass, expected jsonb, peer text) RETURNS void
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $body$
DECLARE
    wrong text;
BEGIN
    IF source IS NULL THEN
        RAISE EXCEPTION 'the source table must not be NULL' USING ERRCODE = '22004',
            HINT = format('pass the table %s writes, e.g. ''public.message_store''', peer);
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_class c WHERE c.oid = source AND c.relkind IN ('r', 'p') AND NOT c.relrowsecurity) THEN
        RAISE EXCEPTION '% is not a plain table', source USING ERRCODE = '42P16',
            DETAIL = 'an import reads tables only: not views, foreign tables, or tables with row-level security',
            HINT = format('import from the table %s wrote (a view or a policy would run its owner''s expressions as you)', peer);
    END IF;
    SELECT string_agg(format('%s (%s)', e.key,
                             coalesce(ctx.import_type_name(a.atttypid), 'missing')), ', ' ORDER BY e.key)
      INTO wrong
      FROM jsonb_each(expected) e
      LEFT JOIN pg_attribute a ON a.attrelid = source AND a.attname = e.key AND a.attnum > 0 AND NOT a.attisdropped
     WHERE a.attname IS NULL OR NOT (e.value ? ctx.import_type_name(a.atttypid));
    IF wrong IS NOT NULL THEN
        RAISE EXCEPTION '% is not a table of %', source, peer USING ERRCODE = '42P16',
            DETAIL = format('unexpected columns: %s', wrong),
            HINT = format('%s creates the columns %s', peer,
                          (SELECT string_agg(format('%s %s', key, value->>0), ', ') FROM jsonb_each(expected)));
    END IF;
END
$body$;

-- What an import applied, tallied over the contexts it wrote to: the tenant, how many of them
-- store their messages encrypted and how many in plain text, and each distinct processors
-- setting among them.
CREATE FUNCTION ctx.import_tally(tally jsonb, context_id uuid) RETURNS jsonb
LANGUAGE plpgsql STABLE AS $body$
#variable_conflict use_column
DECLARE
    caller_tenant text := ctx.current_tenant();
BEGIN
    RETURN (
        SELECT jsonb_build_object(
                   'tenant', c.tenant,
                   'encrypted_contexts', coalesce((tally->>'encrypted_contexts')::bigint, 0) + c.encrypted::int,
                   'plain_contexts', coalesce((tally->>'plain_contexts')::bigint, 0) + (NOT c.encrypted)::int,
                   'processors', CASE WHEN EXISTS (SELECT 1 FROM jsonb_array_elements(tally->'processors') p
                                                  WHERE p.value = c.processors)
                                      THEN tally->'processors'
                                      ELSE coalesce(tally->'processors', '[]') || jsonb_build_array(c.processors) END)
          FROM ctx.contexts c
         WHERE c.tenant = caller_tenant AND c.id = import_tally.context_id);
END
$body$;

-- Saves the messages of a batch that the context does not hold yet. Each item is as
-- ctx.save_messages takes it, with its message_id, plus "occurrence": the k-th row of the
-- source with that id in the thread is saved when the message has fewer than k revisions (the
-- first creates it; a repeat of the id, which the peer keeps as another row, becomes its next
-- revision, as the adapters save it). Returns how many it saved (a processor may drop one).
CREATE FUNCTION ctx.import_messages(context_id uuid, items jsonb) RETURNS bigint
LANGUAGE plpgsql AS $body$
DECLARE
    caller_tenant text := ctx.current_tenant();
    revisions jsonb;
    fresh jsonb;
    saved bigint;
BEGIN
    -- the batch's ids the context holds, with their revisions: one probe of the id index for the
    -- batch (EXECUTE: planned with this batch's ids, never a cached plan made when the thread
    -- was short, which scanned the thread once per item)
    EXECUTE 'SELECT jsonb_object_agg(m.message_id, m.revision) FROM ctx.messages m
              WHERE m.tenant = $3 AND m.message_id = ANY ($1) AND m.context_id = $2'
       INTO revisions
      USING ARRAY(SELECT e->>'message_id' FROM jsonb_array_elements(items) e), import_messages.context_id, caller_tenant;
    SELECT jsonb_agg(i.item - 'occurrence' ORDER BY i.n) INTO fresh
      FROM jsonb_array_elements(items) WITH ORDINALITY AS i(item, n)
     WHERE coalesce((revisions->>(i.item->>'message_id'))::integer, 0) < (i.item->>'occurrence')::integer;
    IF fresh IS NULL THEN
        RETURN 0;
    END IF;
    SELECT count(*) INTO saved FROM ctx.save_messages(import_messages.context_id, fresh);
    RETURN saved;
END
$body$;

-- A caller's timestamp as ctx.save_messages takes it (RFC 3339, UTC).
CREATE FUNCTION ctx.import_timestamp(at timestamptz) RETURNS text
LANGUAGE plpgsql IMMUTABLE AS $body$
BEGIN
    IF NOT isfinite(at) OR at < '0001-01-01 00:00:00+00' THEN
        RAISE EXCEPTION 'the time % cannot be a message''s', at USING ERRCODE = '22007',
            HINT = 'a message''s created_at is a finite time in the common era: fix the source row';
    END IF;
    RETURN to_char(at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"');
END
$body$;

-- One row of langchain-postgres's message table as the LangChain chat history adapter saves
-- the message (clients/python: chat_history.encode): its role, its text (list content as its
-- JSON), LangChain's type and fields in metadata.langchain, its id; a message without an id gets
-- one made of the source table's name and the row's id (never shown to LangChain: has_id is
-- false; so rename the table only after the last run).
CREATE FUNCTION ctx.langchain_chat_item(message jsonb, source text, row_id bigint, created_at timestamptz)
RETURNS jsonb
LANGUAGE plpgsql STABLE AS $body$
DECLARE
    kind text := message->>'type';
    data jsonb := message->'data';
    has_id boolean;
    role text;
BEGIN
    IF jsonb_typeof(message) IS DISTINCT FROM 'object' OR jsonb_typeof(data) IS DISTINCT FROM 'object'
       OR kind IS NULL OR NOT data ? 'content' THEN
        RAISE EXCEPTION 'row % of % is not a LangChain message', row_id, source USING ERRCODE = '22023',
            HINT = 'langchain-postgres stores message_to_dict(message): {"type": ..., "data": {"content": ..., ...}}';
    END IF;
    role := CASE kind
        WHEN 'human' THEN 'user' WHEN 'HumanMessageChunk' THEN 'user'
        WHEN 'ai' THEN 'assistant' WHEN 'AIMessageChunk' THEN 'assistant'
        WHEN 'system' THEN 'system' WHEN 'developer' THEN 'system' WHEN 'SystemMessageChunk' THEN 'system'
        WHEN 'tool' THEN 'tool' WHEN 'function' THEN 'tool'
        WHEN 'ToolMessageChunk' THEN 'tool' WHEN 'FunctionMessageChunk' THEN 'tool'
        WHEN 'chat' THEN coalesce(nullif(data->>'role', ''), 'user')
        WHEN 'ChatMessageChunk' THEN coalesce(nullif(data->>'role', ''), 'user')
    END;
    IF role IS NULL THEN
        RAISE EXCEPTION 'row % of % has the unknown message type "%"', row_id, source, kind USING ERRCODE = '22023',
            HINT = 'LangChain''s types are human, ai, system, developer, chat, tool, function and their chunks';
    END IF;
    IF role NOT IN ('user', 'assistant', 'system', 'tool') THEN
        role := 'user';
    END IF;
    has_id := coalesce(jsonb_typeof(data->'id') NOT IN ('null'), false);
    RETURN jsonb_build_object(
        'message_id', CASE WHEN has_id THEN data->>'id' ELSE format('langchain-postgres:%s:%s', source, row_id) END,
        'role', role,
        'content', CASE jsonb_typeof(data->'content') WHEN 'string' THEN data->>'content' ELSE (data->'content')::text END,
        'created_at', ctx.import_timestamp(created_at),
        'metadata', jsonb_build_object('langchain', jsonb_build_object(
            'type', kind,
            'data', data - 'content' - 'id',
            'content_is_json', jsonb_typeof(data->'content') <> 'string',
            'has_id', has_id)));
END
$body$;

-- The context of a thread id in the caller's tenant (NULL when there is none), refused (23505)
-- when another framework holds the id: an import never writes into another framework's thread.
CREATE FUNCTION ctx.import_thread_of(thread_id text, framework text) RETURNS uuid
LANGUAGE plpgsql STABLE AS $body$
DECLARE
    caller_tenant text := ctx.current_tenant();
    t record;
BEGIN
    SELECT th.context_id, th.framework INTO t FROM ctx.threads th
     WHERE th.tenant = caller_tenant AND th.thread_id = import_thread_of.thread_id;
    IF NOT FOUND THEN
        RETURN NULL;
    END IF;
    IF t.framework <> import_thread_of.framework THEN
        RAISE EXCEPTION 'thread id "%" is held by framework "%"', import_thread_of.thread_id, t.framework
            USING ERRCODE = '23505', HINT = 'import into another tenant, or delete that thread first';
    END IF;
    RETURN t.context_id;
END
$body$;

-- langchain-postgres 0.0.19's PostgresChatMessageHistory table: each session becomes the
-- thread of the same id (what CtxstoreChatMessageHistory(session_id) reads), its messages in
-- the table's order with their ids and created_at. encrypted and processors apply to the
-- threads it creates (as ctx.thread_context); threads that exist keep theirs.
CREATE FUNCTION ctx.import_langchain_chat(source regclass, encrypted boolean DEFAULT NULL,
                                          processors jsonb DEFAULT NULL, batch_size integer DEFAULT 1000)
RETURNS TABLE(kind text, imported bigint, skipped bigint, applied jsonb)
LANGUAGE plpgsql AS $body$
DECLARE
    caller_tenant text := ctx.current_tenant();
    peer constant text := 'langchain-postgres 0.0.19 (PostgresChatMessageHistory.create_tables)';
    r record;
    session uuid;
    cid uuid;
    -- (a plpgsql array grows in place; a jsonb array would be copied on every append)
    batch jsonb[] := '{}';
    batch_bytes bigint := 0;
    threads_new bigint := 0;
    threads_old bigint := 0;
    saved bigint := 0;
    seen bigint := 0;
    settings jsonb;
BEGIN
    PERFORM ctx.check_import_source(source,
        '{"id": ["integer", "bigint"], "session_id": ["uuid"], "message": ["jsonb"],
          "created_at": ["timestamp with time zone"]}', peer);
    IF batch_size IS NULL OR batch_size NOT BETWEEN 1 AND 100000 THEN
        RAISE EXCEPTION 'batch_size must be 1 to 100,000, got %', batch_size USING ERRCODE = '22023',
            HINT = 'the messages saved per call; 1,000 is a good size';
    END IF;
    -- occurrence: the how-many-th row with this message id in its session (see ctx.import_messages)
    FOR r IN EXECUTE format(
        'SELECT session_id, ctx.langchain_chat_item(message, %L, id, created_at) AS item,
                CASE WHEN message->''data''->>''id'' IS NULL THEN 1
                     ELSE row_number() OVER (PARTITION BY session_id, message->''data''->>''id'' ORDER BY id) END AS occurrence
           FROM %s ORDER BY session_id, id',
        (SELECT format('%s.%s', c.relnamespace::regnamespace, c.relname) FROM pg_class c WHERE c.oid = source), source) LOOP
        -- a batch holds one session's messages, and an id once (a repeat starts the next batch)
        -- (and at most 64 MB: a jsonb value holds 256 MB)
        IF session IS DISTINCT FROM r.session_id OR cardinality(batch) >= batch_size OR r.occurrence > 1
           OR batch_bytes + pg_column_size(r.item) > 67108864 THEN
            IF cardinality(batch) > 0 THEN
                saved := saved + ctx.import_messages(cid, to_jsonb(batch));
            END IF;
            batch := '{}';
            batch_bytes := 0;
        END IF;
        IF session IS DISTINCT FROM r.session_id THEN
            session := r.session_id;
            cid := ctx.import_thread_of(session::text, '');
            IF cid IS NULL THEN
                cid := ctx.thread_context(session::text, encrypted => import_langchain_chat.encrypted,
                                          processors => import_langchain_chat.processors);
                threads_new := threads_new + 1;
            ELSE
                threads_old := threads_old + 1;
            END IF;
            settings := ctx.import_tally(settings, cid);
        END IF;
        batch := batch || (r.item || jsonb_build_object('occurrence', r.occurrence));
        batch_bytes := batch_bytes + pg_column_size(r.item);
        seen := seen + 1;
    END LOOP;
    IF cardinality(batch) > 0 THEN
        saved := saved + ctx.import_messages(cid, to_jsonb(batch));
    END IF;
    settings := coalesce(settings, jsonb_build_object('tenant', caller_tenant));
    RETURN QUERY VALUES ('threads', threads_new, threads_old, settings),
                        ('messages', saved, seen - saved, settings);
END
$body$;

-- Whether a peer's migrations table says its schema is at the version the import reads
-- (else 55000: an older one must be migrated by the peer first, a newer one is not known).
CREATE FUNCTION ctx.check_import_migrations(migrations regclass, expected integer, peer text, setup text)
RETURNS void
LANGUAGE plpgsql AS $body$
DECLARE
    at integer;
BEGIN
    IF migrations IS NULL THEN
        RAISE EXCEPTION 'no migrations table of % found', peer USING ERRCODE = '42P01',
            HINT = format('pass the schema where %s created its tables', setup);
    END IF;
    EXECUTE format('SELECT max(v) FROM %s', migrations) INTO at;
    IF at IS DISTINCT FROM expected THEN
        RAISE EXCEPTION '% is at migration %, the import reads migration %', migrations, coalesce(at::text, 'none'), expected
            USING ERRCODE = '55000',
            HINT = CASE WHEN at IS NULL OR at < expected THEN format('run %s with %s first', setup, peer)
                        ELSE format('this ctxstore reads the tables of %s; a newer version''s are not known to it', peer) END;
    END IF;
END
$body$;

-- LangGraph's PostgresSaver tables (langgraph-checkpoint-postgres 3.2.0, in schema `source`):
-- each thread becomes the thread of the same id (what CtxstoreSaver reads), each checkpoint is
-- put as the adapter puts it (its values as blobs: the primitives the peer keeps inline in the
-- checkpoint become 'json' blobs at their versions, which LangGraph's serializer reads), and
-- each task's pending writes are put as they were. Checkpoints and writes already there are
-- skipped (writes the application added to the peer's tables since an earlier run are not).
CREATE FUNCTION ctx.import_langgraph_checkpoints(source name DEFAULT 'public', encrypted boolean DEFAULT NULL)
RETURNS TABLE(kind text, imported bigint, skipped bigint, applied jsonb)
LANGUAGE plpgsql AS $body$
DECLARE
    caller_tenant text := ctx.current_tenant();
    peer constant text := 'langgraph-checkpoint-postgres 3.2.0 (PostgresSaver)';
    r record;
    w record;
    thread text;
    cid uuid;
    values_ record;
    threads_new bigint := 0;
    threads_old bigint := 0;
    put bigint := 0;
    present bigint := 0;
    writes bigint := 0;
    writes_present bigint := 0;
    written integer;
    settings jsonb;
BEGIN
    PERFORM ctx.check_import_migrations(to_regclass(format('%I.checkpoint_migrations', source)), 9, peer,
                                        'PostgresSaver.setup()');
    PERFORM ctx.check_import_source(format('%I.checkpoints', source)::regclass,
        '{"thread_id": ["text"], "checkpoint_ns": ["text"], "checkpoint_id": ["text"],
          "parent_checkpoint_id": ["text"], "checkpoint": ["jsonb"], "metadata": ["jsonb"]}', peer);
    PERFORM ctx.check_import_source(format('%I.checkpoint_blobs', source)::regclass,
        '{"thread_id": ["text"], "checkpoint_ns": ["text"], "channel": ["text"], "version": ["text"],
          "type": ["text"], "blob": ["bytea"]}', peer);
    PERFORM ctx.check_import_source(format('%I.checkpoint_writes', source)::regclass,
        '{"thread_id": ["text"], "checkpoint_ns": ["text"], "checkpoint_id": ["text"], "task_id": ["text"],
          "idx": ["integer"], "channel": ["text"], "type": ["text"], "blob": ["bytea"], "task_path": ["text"]}', peer);
    FOR r IN EXECUTE format('SELECT thread_id, checkpoint_ns, checkpoint_id, parent_checkpoint_id, checkpoint, metadata
                               FROM %I.checkpoints ORDER BY thread_id, checkpoint_ns, checkpoint_id', source) LOOP
        IF thread IS DISTINCT FROM r.thread_id THEN
            thread := r.thread_id;
            cid := ctx.import_thread_of(thread, '');
            IF cid IS NULL THEN
                cid := ctx.thread_context(thread, encrypted => import_langgraph_checkpoints.encrypted);
                threads_new := threads_new + 1;
            ELSE
                threads_old := threads_old + 1;
            END IF;
            settings := ctx.import_tally(settings, cid);
        END IF;
        IF EXISTS (SELECT 1 FROM ctx.checkpoints c
                    WHERE c.tenant = caller_tenant AND c.context_id = cid
                      AND c.checkpoint_ns = r.checkpoint_ns AND c.checkpoint_id = r.checkpoint_id) THEN
            present := present + 1;
        ELSE
            -- each channel at the version this checkpoint saw: its blob row if there is one (the
            -- peer's own read prefers it too), else the inline value
            EXECUTE format($q$
                SELECT coalesce(array_agg(v.channel ORDER BY v.channel), '{}') AS channels,
                       coalesce(array_agg(v.version ORDER BY v.channel), '{}') AS versions,
                       coalesce(array_agg(coalesce(b.type, CASE WHEN i.value = 'null' THEN 'null' ELSE 'json' END)
                                          ORDER BY v.channel), '{}') AS types,
                       coalesce(array_agg(CASE WHEN b.type IS NOT NULL THEN b.blob
                                               WHEN i.value = 'null' THEN '\x'::bytea
                                               ELSE convert_to(i.value::text, 'UTF8') END ORDER BY v.channel), '{}') AS blobs
                  FROM jsonb_each_text($1->'channel_versions') AS v(channel, version)
                  LEFT JOIN %I.checkpoint_blobs b
                         ON b.thread_id = $2 AND b.checkpoint_ns = $3 AND b.channel = v.channel AND b.version = v.version
                  LEFT JOIN jsonb_each($1->'channel_values') AS i(channel, value) ON i.channel = v.channel
                 WHERE b.type IS NOT NULL OR i.value IS NOT NULL$q$, source)
              INTO values_ USING r.checkpoint, r.thread_id, r.checkpoint_ns;
            PERFORM ctx.checkpoint_put(r.thread_id, r.checkpoint_ns, r.checkpoint - 'channel_values', r.metadata,
                                       r.parent_checkpoint_id, values_.channels, values_.versions, values_.types,
                                       values_.blobs);
            put := put + 1;
        END IF;
        FOR w IN EXECUTE format('SELECT task_id, task_path, array_agg(idx ORDER BY idx) AS idxs,
                                        array_agg(channel ORDER BY idx) AS channels, array_agg(type ORDER BY idx) AS types,
                                        array_agg(blob ORDER BY idx) AS blobs
                                   FROM %I.checkpoint_writes
                                  WHERE thread_id = $1 AND checkpoint_ns = $2 AND checkpoint_id = $3
                                  GROUP BY task_id, task_path ORDER BY task_path, task_id', source)
          USING r.thread_id, r.checkpoint_ns, r.checkpoint_id LOOP
            IF array_position(w.types, NULL) IS NOT NULL THEN
                RAISE EXCEPTION 'a pending write of checkpoint % (thread %, task %) has no type', r.checkpoint_id, r.thread_id, w.task_id
                    USING ERRCODE = '22023', HINT = 'LangGraph cannot read such a write either: delete it from checkpoint_writes, or fix its type';
            END IF;
            written := ctx.checkpoint_put_writes(r.thread_id, r.checkpoint_ns, r.checkpoint_id, w.task_id, w.idxs,
                                                 w.channels, w.types, w.blobs, w.task_path);
            writes := writes + written;
            writes_present := writes_present + cardinality(w.idxs) - written;
        END LOOP;
    END LOOP;
    settings := coalesce(settings, jsonb_build_object('tenant', caller_tenant));
    RETURN QUERY VALUES ('threads', threads_new, threads_old, settings),
                        ('checkpoints', put, present, settings),
                        ('writes', writes, writes_present, settings);
END
$body$;

-- The text LangGraph embedded for an indexed field of a stored value (the field's path as
-- store_vectors names it: "$" for the whole value, "a.b" for a field, "a.b.0" for the first of
-- several texts). Only a simple path is followed; anything else is the value's JSON text.
-- (ctxstore keeps the text with the embedding for keyword search; LangGraph keeps no text.)
CREATE FUNCTION ctx.langgraph_field_text(value jsonb, field_name text) RETURNS text
LANGUAGE sql IMMUTABLE AS $body$
    SELECT coalesce(CASE WHEN field_name <> '$' THEN nullif(value #>> string_to_array(field_name, '.'), '') END,
                    CASE WHEN field_name <> '$' THEN nullif(value #>> string_to_array(regexp_replace(field_name, '\.\d+$', ''), '.'), '') END,
                    value::text)
$body$;

-- LangGraph's PostgresStore tables (langgraph-checkpoint-postgres 3.2.0, in schema `source`):
-- each item is put where CtxstoreStore(root => root) reads it (namespace root + the prefix's
-- labels), keeping its created_at, updated_at, expires_at and TTL (LangGraph keeps whole
-- minutes); each of its embeddings (store_vectors, when the store has an index) becomes a memory
-- as the adapter remembers it. Items already there are kept as they are, with their memories.
CREATE FUNCTION ctx.import_langgraph_store(source name DEFAULT 'public', root text DEFAULT 'langgraph')
RETURNS TABLE(kind text, imported bigint, skipped bigint, applied jsonb)
LANGUAGE plpgsql AS $body$
DECLARE
    caller_tenant text := ctx.current_tenant();
    peer constant text := 'langgraph-checkpoint-postgres 3.2.0 (PostgresStore)';
    has_vectors boolean;
    r record;
    v record;
    ns text[];
    items bigint := 0;
    items_present bigint := 0;
    vectors bigint := 0;
    vectors_present bigint := 0;
    sealed boolean;
    redacted boolean;
    sealed_items bigint := 0;
    redacted_items bigint := 0;
    settings jsonb;
BEGIN
    IF root IS NULL OR root = '' THEN
        RAISE EXCEPTION 'root must be a non-empty label' USING ERRCODE = '22023',
            HINT = 'the root CtxstoreStore is given (''langgraph'' by default)';
    END IF;
    PERFORM ctx.check_import_migrations(to_regclass(format('%I.store_migrations', source)), 3, peer, 'PostgresStore.setup()');
    PERFORM ctx.check_import_source(format('%I.store', source)::regclass,
        '{"prefix": ["text"], "key": ["text"], "value": ["jsonb"], "created_at": ["timestamp with time zone"],
          "updated_at": ["timestamp with time zone"], "expires_at": ["timestamp with time zone"], "ttl_minutes": ["integer"]}', peer);
    has_vectors := to_regclass(format('%I.store_vectors', source)) IS NOT NULL;
    IF has_vectors THEN
        PERFORM ctx.check_import_source(format('%I.store_vectors', source)::regclass,
            '{"prefix": ["text"], "key": ["text"], "field_name": ["text"], "embedding": ["vector", "halfvec"]}', peer);
    END IF;
    FOR r IN EXECUTE format('SELECT prefix, key, value, created_at, updated_at, expires_at, ttl_minutes
                               FROM %I.store ORDER BY prefix, key', source) LOOP
        ns := ARRAY[root] || string_to_array(r.prefix, '.');
        IF EXISTS (SELECT 1 FROM ctx.state s
                    WHERE s.tenant = caller_tenant AND s.ns_key = array_to_string(ns, chr(31)) || chr(31)
                      AND s.key = r.key AND s.version > 0) THEN
            items_present := items_present + 1;
            IF has_vectors THEN
                EXECUTE format('SELECT count(*) FROM %I.store_vectors WHERE prefix = $1 AND key = $2', source)
                   INTO v USING r.prefix, r.key;
                vectors_present := vectors_present + v.count;
            END IF;
            CONTINUE;
        END IF;
        PERFORM ctx.put(ns, r.key, r.value,
                        ttl => CASE WHEN r.ttl_minutes > 0 THEN make_interval(mins => r.ttl_minutes) END);
        UPDATE ctx.state s
           SET created_at = coalesce(r.created_at, s.created_at), updated_at = coalesce(r.updated_at, s.updated_at),
               expires_at = r.expires_at
         WHERE s.tenant = caller_tenant AND s.ns_key = array_to_string(ns, chr(31)) || chr(31) AND s.key = r.key
        RETURNING s.value_enc IS NOT NULL, s.redacted IS NOT NULL INTO sealed, redacted;
        items := items + 1;
        sealed_items := sealed_items + sealed::int;
        redacted_items := redacted_items + redacted::int;
        IF has_vectors THEN
            FOR v IN EXECUTE format('SELECT field_name, embedding::vector::real[] AS embedding FROM %I.store_vectors
                                      WHERE prefix = $1 AND key = $2 ORDER BY field_name', source)
              USING r.prefix, r.key LOOP
                PERFORM ctx.remember(ns, ctx.langgraph_field_text(r.value, v.field_name), v.embedding,
                                     jsonb_build_object('lg_key', r.key, 'value', r.value));
                vectors := vectors + 1;
            END LOOP;
        END IF;
    END LOOP;
    -- (a namespace's encryption and write processors apply to each put: say how many they changed)
    settings := jsonb_build_object('tenant', caller_tenant, 'root', root,
                                   'encrypted_items', sealed_items, 'redacted_items', redacted_items);
    RETURN QUERY VALUES ('items', items, items_present, settings),
                        ('embeddings', vectors, vectors_present, settings);
END
$body$;

-- Whether a plain namespace holds a current memory whose metadata has this id under id_key
-- (the adapters' document ids: _lc_id, _mastra_id), from the metadata index.
CREATE FUNCTION ctx.import_memory_exists(namespace text[], id_key text, id text) RETURNS boolean
LANGUAGE plpgsql STABLE AS $body$
#variable_conflict use_column
DECLARE
    caller_tenant text := ctx.current_tenant();
BEGIN
    RETURN (
        SELECT EXISTS (SELECT 1 FROM ctx.memories m
                        WHERE m.tenant = caller_tenant
                          AND m.ns_key = array_to_string(import_memory_exists.namespace, chr(31)) || chr(31)
                          AND m.valid_to IS NULL AND m.metadata @> jsonb_build_object(id_key, import_memory_exists.id)));
END
$body$;

-- Takes an import's turn on a namespace of the caller's tenant (an advisory lock to the end of
-- the transaction: two imports at once would each miss the other's documents), and says how
-- to tell which document ids (under id_key) it holds: NULL for a plain namespace (then
-- ctx.import_memory_exists asks the metadata index, id by id), else the ids as a set
-- ({"id": true}), read once, decrypted, through ctx.recall: a sealed namespace's metadata is
-- ciphertext, which the metadata index cannot see.
CREATE FUNCTION ctx.import_claim_namespace(namespace text[], id_key text) RETURNS jsonb
LANGUAGE plpgsql AS $body$
DECLARE
    caller_tenant text := ctx.current_tenant();
    namespace_key constant text := array_to_string(import_claim_namespace.namespace, chr(31)) || chr(31);
    n bigint;
    ids jsonb;
BEGIN
    PERFORM pg_advisory_xact_lock(hashtextextended('ctxstore.import' || chr(31) || caller_tenant || chr(31)
                                                   || array_to_string(import_claim_namespace.namespace, chr(31)), 0));
    IF NOT EXISTS (SELECT 1 FROM ctx.memories m
                    WHERE m.tenant = caller_tenant AND m.ns_key = namespace_key
                      AND m.metadata_enc IS NOT NULL) THEN
        RETURN NULL;
    END IF;
    SELECT count(*) INTO n FROM ctx.memories m
     WHERE m.tenant = caller_tenant AND m.valid_to IS NULL AND m.ns_key = namespace_key;
    SELECT coalesce(jsonb_object_agg(r.metadata->>id_key, true) FILTER (WHERE r.metadata ? id_key), '{}') INTO ids
      FROM ctx.recall(import_claim_namespace.namespace, k => greatest(n, 1)::integer, include_descendants => false) r;
    RETURN ids;
END
$body$;

-- The metric of the first pgvector index on a column (from its operator class), or NULL: the
-- only place a peer's database records the distance its application searches by.
CREATE FUNCTION ctx.import_index_metric(source regclass, column_name name) RETURNS text
LANGUAGE sql STABLE AS $body$
    SELECT CASE WHEN o.opcname LIKE '%cosine%' THEN 'cosine'
                WHEN o.opcname LIKE '%l2%' THEN 'l2'
                WHEN o.opcname LIKE '%ip%' THEN 'inner_product' END
      FROM pg_index i
      JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = i.indkey[0]
      JOIN pg_opclass o ON o.oid = i.indclass[0]
     WHERE i.indrelid = source AND a.attname = column_name
     ORDER BY i.indexrelid
     LIMIT 1
$body$;

-- langchain-postgres 0.0.19's PGVectorStore table (PGEngine.init_vectorstore_table; the column
-- names are its arguments, with its defaults): each row becomes a memory in `namespace` as
-- CtxstoreVectorStore(namespace) adds a document: its content, its embedding (same dimension,
-- float4 as stored), its metadata (the JSON column merged with every metadata column, the
-- columns winning, as PGVectorStore reads it) and its id as metadata._lc_id. metadata_columns
-- NULL: every column that is none of the others (nor the hybrid search tsvector). Documents
-- whose id the namespace holds are skipped.
CREATE FUNCTION ctx.import_langchain_vectors(source regclass, namespace text[] DEFAULT '{langchain,documents}',
                                             id_column name DEFAULT 'langchain_id', content_column name DEFAULT 'content',
                                             embedding_column name DEFAULT 'embedding',
                                             metadata_json_column name DEFAULT 'langchain_metadata',
                                             metadata_columns name[] DEFAULT NULL)
RETURNS TABLE(kind text, imported bigint, skipped bigint, applied jsonb)
LANGUAGE plpgsql AS $body$
DECLARE
    caller_tenant text := ctx.current_tenant();
    peer constant text := 'langchain-postgres 0.0.19 (PGVectorStore)';
    expected jsonb;
    has_json boolean;
    columns_ name[];
    metadata_sql text := '''{}''::jsonb';
    r record;
    n integer;
    imported_ bigint := 0;
    present bigint := 0;
    present_ids jsonb;
    missing text;
BEGIN
    IF namespace IS NULL OR cardinality(namespace) = 0 THEN
        RAISE EXCEPTION 'namespace must have at least one label' USING ERRCODE = '22023',
            HINT = 'the namespace CtxstoreVectorStore is given (''{langchain,documents}'' by default)';
    END IF;
    IF id_column IS NULL OR content_column IS NULL OR embedding_column IS NULL OR metadata_json_column IS NULL THEN
        RAISE EXCEPTION 'the column names must not be NULL' USING ERRCODE = '22004',
            HINT = 'leave an argument out for PGVectorStore''s default name (a table without a JSON metadata column is fine)';
    END IF;
    expected := jsonb_build_object(id_column, '["uuid", "text", "character varying", "integer", "bigint"]'::jsonb,
                                   content_column, '["text"]'::jsonb, embedding_column, '["vector"]'::jsonb);
    PERFORM ctx.check_import_source(source, expected, peer);
    has_json := EXISTS (SELECT 1 FROM pg_attribute a WHERE a.attrelid = source AND a.attname = metadata_json_column
                           AND a.attnum > 0 AND NOT a.attisdropped);
    IF has_json THEN
        PERFORM ctx.check_import_source(source, jsonb_build_object(metadata_json_column, '["json", "jsonb"]'::jsonb), peer);
        metadata_sql := format('coalesce(CASE WHEN json_typeof(%1$I::json) = ''object'' THEN %1$I::jsonb END, ''{}''::jsonb)',
                               metadata_json_column);
    END IF;
    IF metadata_columns IS NULL THEN
        SELECT coalesce(array_agg(a.attname ORDER BY a.attnum), '{}') INTO columns_
          FROM pg_attribute a
         WHERE a.attrelid = source AND a.attnum > 0 AND NOT a.attisdropped
           AND a.attname NOT IN (id_column, content_column, embedding_column, metadata_json_column)
           AND a.atttypid <> 'tsvector'::regtype;
    ELSE
        columns_ := metadata_columns;
        SELECT string_agg(coalesce(c, 'NULL'), ', ') INTO missing
          FROM unnest(columns_) c
         WHERE c IS NULL OR NOT EXISTS (SELECT 1 FROM pg_attribute a WHERE a.attrelid = source AND a.attname = c
                                           AND a.attnum > 0 AND NOT a.attisdropped);
        IF missing IS NOT NULL THEN
            RAISE EXCEPTION 'metadata_columns names columns % does not have', source USING ERRCODE = '42P16',
                DETAIL = format('missing: %s', missing),
                HINT = 'pass the metadata_columns PGVectorStore was created with, or NULL for every other column';
        END IF;
    END IF;
    -- (jsonb_build_object takes at most 50 pairs: one call per 50 columns)
    FOR n IN 0 .. ceil(cardinality(columns_) / 50.0)::integer - 1 LOOP
        metadata_sql := metadata_sql || ' || jsonb_build_object(' ||
            (SELECT string_agg(format('%L, %I', c, c), ', ') FROM unnest(columns_[n * 50 + 1 : n * 50 + 50]) c) || ')';
    END LOOP;
    present_ids := ctx.import_claim_namespace(import_langchain_vectors.namespace, '_lc_id');
    FOR r IN EXECUTE format('SELECT %I::text AS id, %I AS content, %I::real[] AS embedding, %s AS metadata
                               FROM %s ORDER BY %I', id_column, content_column, embedding_column, metadata_sql,
                            source, id_column) LOOP
        IF r.id IS NULL THEN
            RAISE EXCEPTION 'a row of % has a NULL %', source, id_column USING ERRCODE = '22004',
                HINT = 'every document needs its id: give it one, or delete the row';
        END IF;
        IF coalesce(present_ids ? r.id, ctx.import_memory_exists(import_langchain_vectors.namespace, '_lc_id', r.id)) THEN
            present := present + 1;
            CONTINUE;
        END IF;
        PERFORM ctx.remember(import_langchain_vectors.namespace, r.content, r.embedding, r.metadata || jsonb_build_object('_lc_id', r.id));
        imported_ := imported_ + 1;
    END LOOP;
    RETURN QUERY VALUES ('documents', imported_, present,
                         jsonb_build_object('tenant', caller_tenant, 'namespace', to_jsonb(namespace),
                                            'index_metric', ctx.import_index_metric(source, embedding_column)));
END
$body$;

-- A text as jsonb when it is JSON (as JavaScript's JSON.parse reads it), else NULL.
CREATE FUNCTION ctx.import_try_jsonb(text text) RETURNS jsonb
LANGUAGE plpgsql IMMUTABLE AS $body$
BEGIN
    RETURN text::jsonb;
EXCEPTION WHEN invalid_text_representation OR untranslatable_character THEN
    RETURN NULL;
END
$body$;

-- A metadata value as @mastra/pg reads it back: NULL is none ({} here: ctxstore keeps an
-- object), a JSON string (its generic insert stores objects as a string) is parsed.
CREATE FUNCTION ctx.mastra_metadata(value jsonb) RETURNS jsonb
LANGUAGE sql IMMUTABLE AS $body$
    SELECT CASE WHEN value IS NULL OR value = 'null' THEN '{}'::jsonb
                WHEN jsonb_typeof(value) = 'string' THEN coalesce(ctx.import_try_jsonb(value #>> '{}'), value)
                ELSE value END
$body$;

-- One row of @mastra/pg's mastra_messages as CtxstoreMemory saves the message (clients/
-- typescript: saveItem): its id and time, a ctxstore role, its text to count and search
-- (plainText), and what Mastra reads back in metadata.mastra: the role, the content as
-- @mastra/pg parses it (JSON when it is JSON, else the string), the type unless 'v2', the
-- resource id when the row has one.
CREATE FUNCTION ctx.mastra_message_item(id text, content text, role text, type text, resource_id text,
                                        created_at timestamptz)
RETURNS jsonb
LANGUAGE plpgsql STABLE AS $body$
DECLARE
    parsed jsonb := ctx.import_try_jsonb(content);
    kept jsonb;
    plain text;
BEGIN
    kept := jsonb_build_object('role', role, 'content', coalesce(parsed, to_jsonb(content)));
    IF coalesce(type, '') NOT IN ('', 'v2') THEN
        kept := kept || jsonb_build_object('type', type);
    END IF;
    IF resource_id IS NOT NULL THEN
        kept := kept || jsonb_build_object('resourceId', resource_id);
    END IF;
    -- (as plainText: a string is itself; an object its content, else its text parts, else its parts)
    plain := CASE jsonb_typeof(parsed)
        WHEN 'string' THEN parsed #>> '{}'
        WHEN 'object' THEN coalesce(
            nullif(CASE WHEN jsonb_typeof(parsed->'content') = 'string' THEN parsed->>'content' END, ''),
            (SELECT string_agg(p->>'text', E'\n' ORDER BY n) FROM jsonb_array_elements(
                    CASE WHEN jsonb_typeof(parsed->'parts') = 'array' THEN parsed->'parts' ELSE '[]' END)
                    WITH ORDINALITY AS e(p, n)
              WHERE p->>'type' = 'text' AND jsonb_typeof(p->'text') = 'string' AND p->>'text' <> ''),
            coalesce(parsed->'parts', '[]')::text)
        ELSE '[]' END;
    IF parsed IS NULL THEN
        plain := content;
    END IF;
    RETURN jsonb_build_object(
        'message_id', id,
        'role', CASE WHEN role IN ('system', 'assistant') THEN role ELSE 'user' END,
        'content', plain,
        'created_at', ctx.import_timestamp(created_at),
        'occurrence', 1,
        'metadata', jsonb_build_object('mastra', kept));
END
$body$;

-- Saves a batch of Mastra messages into a thread (ctx.import_messages), but not those whose id
-- another Mastra thread holds (one id is one message in Mastra): they are counted as conflicts.
CREATE FUNCTION ctx.import_mastra_messages(context_id uuid, items jsonb, OUT saved bigint, OUT conflicts bigint)
LANGUAGE plpgsql AS $body$
DECLARE
    elsewhere text[];
BEGIN
    SELECT coalesce(array_agg(l.message_id), '{}') INTO elsewhere
      FROM ctx.locate_messages(ARRAY(SELECT e->>'message_id' FROM jsonb_array_elements(items) e), 'mastra') l
     WHERE l.context_id <> import_mastra_messages.context_id;
    conflicts := cardinality(elsewhere);
    saved := ctx.import_messages(import_mastra_messages.context_id,
                                 (SELECT coalesce(jsonb_agg(x.e ORDER BY x.i), '[]') FROM jsonb_array_elements(items) WITH ORDINALITY AS x(e, i)
                                   WHERE NOT (x.e->>'message_id' = ANY (elsewhere))));
END
$body$;

-- @mastra/pg 1.27.1's tables (PostgresStore and PgVector, in schema `source`): each thread as
-- CtxstoreMemory saves it (framework 'mastra'; its title, resource, metadata and times), its
-- messages in Mastra's order (createdAt, then id) with their ids and times, each resource with
-- its working memory and metadata, and (vectors => true) each PgVector index of the schema as
-- CtxstoreVector creates it (its dimension, and its metric from the index's operator class, as
-- PgVector describes it) with the vectors of its 'default' namespace. Threads, messages,
-- resources, indexes and vectors already there are skipped. Not carried over (and counted):
-- messages whose thread is gone (orphaned: @mastra/pg's prune deletes threads apart from their
-- messages), messages whose id another Mastra thread holds (conflicts), vectors of other
-- PgVector namespaces and bit indexes (CtxstoreVector cannot address them).
CREATE FUNCTION ctx.import_mastra(source name DEFAULT 'public', encrypted boolean DEFAULT NULL,
                                  vectors boolean DEFAULT true, batch_size integer DEFAULT 1000)
RETURNS TABLE(kind text, imported bigint, skipped bigint, applied jsonb)
LANGUAGE plpgsql AS $body$
DECLARE
    caller_tenant text := ctx.current_tenant();
    peer constant text := '@mastra/pg 1.27.1 (PostgresStore)';
    has_z boolean;
    ts_created text;
    ts_updated text;
    t record;
    m record;
    v record;
    ix record;
    cid uuid;
    batch jsonb[];  -- (grows in place)
    batch_bytes bigint;
    wrote boolean;
    saved record;
    n bigint;
    threads_new bigint := 0;
    threads_old bigint := 0;
    messages_new bigint := 0;
    messages_seen bigint := 0;
    conflicts bigint := 0;
    orphaned bigint := 0;
    resources_new bigint := 0;
    resources_old bigint := 0;
    indexes_new bigint := 0;
    indexes_old bigint := 0;
    vectors_new bigint := 0;
    vectors_old bigint := 0;
    vectors_other bigint := 0;
    skipped_indexes text[] := '{}';
    ns text[];
    metric text;
    dims integer;
    registered jsonb;
    present_ids jsonb;
    settings jsonb;
BEGIN
    IF batch_size IS NULL OR batch_size NOT BETWEEN 1 AND 100000 THEN
        RAISE EXCEPTION 'batch_size must be 1 to 100,000, got %', batch_size USING ERRCODE = '22023',
            HINT = 'the messages saved per call; 1,000 is a good size';
    END IF;
    PERFORM ctx.check_import_source(format('%I.mastra_threads', source)::regclass,
        '{"id": ["text"], "resourceId": ["text"], "title": ["text"], "metadata": ["jsonb", "text"],
          "createdAt": ["timestamp without time zone"], "updatedAt": ["timestamp without time zone"]}', peer);
    PERFORM ctx.check_import_source(format('%I.mastra_messages', source)::regclass,
        '{"id": ["text"], "thread_id": ["text"], "content": ["text"], "role": ["text"], "type": ["text"],
          "createdAt": ["timestamp without time zone"], "resourceId": ["text"]}', peer);
    PERFORM ctx.check_import_source(format('%I.mastra_resources', source)::regclass,
        '{"id": ["text"], "workingMemory": ["text"], "metadata": ["jsonb", "text"],
          "createdAt": ["timestamp without time zone"], "updatedAt": ["timestamp without time zone"]}', peer);
    -- a time is its "<column>Z" twin (timestamptz, the instant Mastra reads) when the table has
    -- it, else the plain column (UTC wall clock)
    has_z := EXISTS (SELECT 1 FROM pg_attribute a WHERE a.attrelid = format('%I.mastra_messages', source)::regclass
                                                  AND a.attname = 'createdAtZ' AND NOT a.attisdropped);
    ts_created := CASE WHEN has_z THEN 'coalesce("createdAtZ", "createdAt" AT TIME ZONE ''UTC'')'
                       ELSE '("createdAt" AT TIME ZONE ''UTC'')' END;
    ts_updated := CASE WHEN has_z THEN 'coalesce("updatedAtZ", "updatedAt" AT TIME ZONE ''UTC'')'
                       ELSE '("updatedAt" AT TIME ZONE ''UTC'')' END;

    FOR t IN EXECUTE format('SELECT id, nullif("resourceId", '''') AS resource, title,
                                    ctx.mastra_metadata(metadata::jsonb) AS metadata,
                                    %s AS created_at, %s AS updated_at
                               FROM %I.mastra_threads ORDER BY id', ts_created, ts_updated, source) LOOP
        IF jsonb_typeof(t.metadata) <> 'object' THEN
            RAISE EXCEPTION 'thread "%" of %.mastra_threads has metadata that is not an object', t.id, source
                USING ERRCODE = '22023', HINT = 'Mastra''s thread metadata is an object: fix the row, or set it to NULL';
        END IF;
        cid := (SELECT g.context_id FROM ctx.get_thread(t.id, 'mastra') g);
        IF cid IS NOT NULL THEN
            threads_old := threads_old + 1;
        ELSE
            cid := ctx.save_thread(t.id, t.title, t.resource, t.metadata, t.created_at, t.updated_at,
                                   import_mastra.encrypted, framework => 'mastra');
            threads_new := threads_new + 1;
        END IF;
        settings := ctx.import_tally(settings, cid);
        wrote := false;
        batch := '{}';
        batch_bytes := 0;
        FOR m IN EXECUTE format('SELECT id, content, role, type, "resourceId" AS resource_id, %s AS created_at
                                   FROM %I.mastra_messages WHERE thread_id = $1 ORDER BY "createdAt", id',
                                ts_created, source) USING t.id LOOP
            batch := batch || ctx.mastra_message_item(m.id, m.content, m.role, m.type, m.resource_id, m.created_at);
            batch_bytes := batch_bytes + octet_length(m.content);
            messages_seen := messages_seen + 1;
            IF cardinality(batch) >= batch_size OR batch_bytes > 33554432 THEN  -- (a jsonb value holds 256 MB)
                SELECT * INTO saved FROM ctx.import_mastra_messages(cid, to_jsonb(batch));
                messages_new := messages_new + saved.saved;
                conflicts := conflicts + saved.conflicts;
                wrote := wrote OR saved.saved > 0;
                batch := '{}';
                batch_bytes := 0;
            END IF;
        END LOOP;
        IF cardinality(batch) > 0 THEN
            SELECT * INTO saved FROM ctx.import_mastra_messages(cid, to_jsonb(batch));
            messages_new := messages_new + saved.saved;
            conflicts := conflicts + saved.conflicts;
            wrote := wrote OR saved.saved > 0;
        END IF;
        IF wrote THEN  -- (saving messages made the thread's updated_at now: Mastra's is the thread's)
            PERFORM ctx.save_thread(t.id, updated_at => t.updated_at, framework => 'mastra', create_missing => false);
        END IF;
    END LOOP;
    EXECUTE format('SELECT count(*) FROM %1$I.mastra_messages m
                     WHERE NOT EXISTS (SELECT 1 FROM %1$I.mastra_threads t WHERE t.id = m.thread_id)', source) INTO orphaned;

    FOR t IN EXECUTE format('SELECT id, "workingMemory" AS working_memory,
                                    ctx.mastra_metadata(metadata::jsonb) AS metadata,
                                    %s AS created_at, %s AS updated_at
                               FROM %I.mastra_resources ORDER BY id', ts_created, ts_updated, source) LOOP
        IF jsonb_typeof(t.metadata) <> 'object' THEN
            RAISE EXCEPTION 'resource "%" of %.mastra_resources has metadata that is not an object', t.id, source
                USING ERRCODE = '22023', HINT = 'Mastra''s resource metadata is an object: fix the row, or set it to NULL';
        END IF;
        IF ctx.get('{mastra,resources}', t.id) IS NOT NULL THEN
            resources_old := resources_old + 1;
            CONTINUE;
        END IF;
        PERFORM ctx.put('{mastra,resources}', t.id,
                        jsonb_build_object('workingMemory', t.working_memory, 'metadata', t.metadata,
                                           'createdAt', to_char(t.created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'),
                                           'updatedAt', to_char(t.updated_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"')),
                        expected_version => 0);
        resources_new := resources_new + 1;
    END LOOP;

    IF vectors THEN
        -- PgVector's indexes: the tables with vector_id text, an embedding and jsonb metadata
        FOR ix IN SELECT c.oid::regclass AS tab, c.relname AS name, et.typname AS type, e.atttypmod AS dims,
                         EXISTS (SELECT 1 FROM pg_attribute a WHERE a.attrelid = c.oid AND a.attname = 'namespace'
                                    AND NOT a.attisdropped) AS has_namespace
                    FROM pg_class c
                    JOIN pg_namespace s ON s.oid = c.relnamespace AND s.nspname = source
                    JOIN pg_attribute i ON i.attrelid = c.oid AND i.attname = 'vector_id' AND i.atttypid = 'text'::regtype
                    JOIN pg_attribute md ON md.attrelid = c.oid AND md.attname = 'metadata' AND md.atttypid = 'jsonb'::regtype
                    JOIN pg_attribute e ON e.attrelid = c.oid AND e.attname = 'embedding'
                    JOIN pg_type et ON et.oid = e.atttypid AND et.typname IN ('vector', 'halfvec', 'bit', 'sparsevec')
                   WHERE c.relkind = 'r' AND c.relname ~ '^[a-zA-Z_][a-zA-Z0-9_]*$'
                   ORDER BY c.relname LOOP
            IF ix.type NOT IN ('vector', 'halfvec') THEN
                skipped_indexes := skipped_indexes || format('%s (%s)', ix.name, ix.type);
                CONTINUE;
            END IF;
            metric := CASE ctx.import_index_metric(ix.tab, 'embedding')
                          WHEN 'l2' THEN 'euclidean' WHEN 'inner_product' THEN 'dotproduct' ELSE 'cosine' END;
            dims := ix.dims;
            IF dims IS NULL OR dims <= 0 THEN
                EXECUTE format('SELECT vector_dims(embedding::vector) FROM %s LIMIT 1', ix.tab) INTO dims;
            END IF;
            registered := ctx.get('{mastra,vector_indexes}', ix.name);
            IF registered IS NULL THEN
                PERFORM ctx.put('{mastra,vector_indexes}', ix.name, jsonb_build_object('dimension', dims, 'metric', metric),
                                expected_version => 0);
                indexes_new := indexes_new + 1;
            ELSIF (registered->>'dimension')::integer IS DISTINCT FROM dims THEN
                RAISE EXCEPTION 'index "%" exists with dimension %, the table has %', ix.name,
                    registered->>'dimension', dims USING ERRCODE = '22023',
                    HINT = 'delete the index (CtxstoreVector.deleteIndex) or import into another tenant';
            ELSE
                indexes_old := indexes_old + 1;
            END IF;
            ns := ARRAY['mastra', 'vectors', ix.name];
            present_ids := ctx.import_claim_namespace(ns, '_mastra_id');
            IF ix.has_namespace THEN
                EXECUTE format('SELECT count(*) FROM %s WHERE namespace <> ''default''', ix.tab) INTO n;
                vectors_other := vectors_other + n;
            END IF;
            FOR v IN EXECUTE format('SELECT vector_id, embedding::vector::real[] AS embedding, coalesce(metadata, ''{}'') AS metadata
                                       FROM %s %s ORDER BY vector_id, id', ix.tab,
                                    CASE WHEN ix.has_namespace THEN 'WHERE namespace = ''default''' ELSE '' END) LOOP
                IF coalesce(present_ids ? v.vector_id, ctx.import_memory_exists(ns, '_mastra_id', v.vector_id)) THEN
                    vectors_old := vectors_old + 1;
                    CONTINUE;
                END IF;
                IF jsonb_typeof(v.metadata) <> 'object' OR v.metadata ? '_mastra_id' THEN
                    RAISE EXCEPTION 'vector "%" of index "%" has metadata CtxstoreVector cannot store', v.vector_id, ix.name
                        USING ERRCODE = '22023', HINT = 'metadata must be an object without the reserved key _mastra_id';
                END IF;
                PERFORM ctx.remember(ns, v.vector_id, v.embedding, v.metadata || jsonb_build_object('_mastra_id', v.vector_id));
                vectors_new := vectors_new + 1;
            END LOOP;
        END LOOP;
    END IF;

    settings := coalesce(settings, jsonb_build_object('tenant', caller_tenant));
    RETURN QUERY VALUES
        ('threads', threads_new, threads_old, settings),
        ('messages', messages_new, messages_seen - messages_new,
         settings || jsonb_build_object('conflicts', conflicts, 'orphaned', orphaned)),
        ('resources', resources_new, resources_old, jsonb_build_object('tenant', caller_tenant)),
        ('vector_indexes', indexes_new, indexes_old,
         jsonb_build_object('tenant', caller_tenant, 'not_imported', to_jsonb(skipped_indexes))),
        ('vectors', vectors_new, vectors_old + vectors_other,
         jsonb_build_object('tenant', caller_tenant, 'other_namespaces', vectors_other));
END
$body$;
