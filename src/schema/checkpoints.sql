-- The checkpoint store of graph-based agents (LangGraph's BaseCheckpointSaver contract): per
-- thread and namespace, checkpoints with parent pointers and metadata, channel values stored
-- once per (channel, version), and the pending writes of each task.
--
-- A thread is a context: its checkpoints live beside its messages and working memory, follow
-- its tenant, are sealed with its data key when it is encrypted, and go when it is deleted or
-- shredded. Thread ids are the application's own strings; ctx.threads maps them to contexts.

CREATE TABLE ctx.threads (
    tenant      text NOT NULL DEFAULT ctx.current_tenant(),
    thread_id   text NOT NULL CHECK (thread_id <> '' AND octet_length(thread_id) <= 1024),
    context_id  uuid NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    -- whose thread record this is: '' for the adapters that only map ids (LangGraph, LangChain,
    -- the Agents SDK), 'mastra' for Mastra's threads (ctx.save_thread)
    framework   text NOT NULL DEFAULT '',
    PRIMARY KEY (tenant, thread_id),
    UNIQUE (tenant, context_id),
    FOREIGN KEY (tenant, context_id) REFERENCES ctx.contexts (tenant, id) ON DELETE CASCADE
);

CREATE TABLE ctx.checkpoints (
    context_id    uuid NOT NULL,
    tenant        text NOT NULL DEFAULT ctx.current_tenant(),
    checkpoint_ns text NOT NULL DEFAULT '',
    -- LangGraph's ids are time-ordered (uuid6): byte order is creation order
    checkpoint_id text COLLATE "C" NOT NULL CHECK (checkpoint_id <> ''),
    parent_checkpoint_id text COLLATE "C",
    -- metadata.run_id, for ctx.checkpoint_delete_runs; in an encrypted context its keyed hash
    -- ('hmac:' || hex of ctx.keyed_hash('checkpoints.run_id', run_id)), never the value
    run_id        text,
    -- the checkpoint without its channel values (versions, versions seen, timestamps: no
    -- application data, so it stays readable for garbage collection of unreferenced values)
    checkpoint    jsonb NOT NULL CHECK (jsonb_typeof(checkpoint) = 'object'),
    -- {} in an encrypted context, where metadata_enc holds it
    metadata      jsonb NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(metadata) = 'object'),
    metadata_enc  bytea,
    created_at    timestamptz NOT NULL DEFAULT now(),
    trace_id      text DEFAULT ctx.current_trace_id(),
    PRIMARY KEY (tenant, context_id, checkpoint_ns, checkpoint_id),
    FOREIGN KEY (tenant, context_id) REFERENCES ctx.contexts (tenant, id) ON DELETE CASCADE
);
CREATE INDEX checkpoints_run_idx ON ctx.checkpoints (tenant, run_id) WHERE run_id IS NOT NULL;

-- What ctx.checkpoints.run_id holds for a run id: in an encrypted context, its keyed hash.
CREATE FUNCTION ctx.checkpoint_run_key(run_id text, encrypted boolean) RETURNS text
LANGUAGE sql VOLATILE AS $$
    SELECT CASE WHEN NOT encrypted OR run_id IS NULL THEN run_id
                ELSE 'hmac:' || pg_catalog.encode(ctx.keyed_hash('checkpoints.run_id', run_id), 'hex') END
$$;

-- A channel's value at a version, shared by every checkpoint that saw that version.
CREATE TABLE ctx.checkpoint_blobs (
    context_id    uuid NOT NULL,
    tenant        text NOT NULL DEFAULT ctx.current_tenant(),
    checkpoint_ns text NOT NULL DEFAULT '',
    channel       text NOT NULL,
    version       text NOT NULL,
    -- the client serializer's type tag ('empty': the channel had no value)
    type          text NOT NULL,
    blob          bytea,  -- lz4 + AES-256-GCM in an encrypted context
    PRIMARY KEY (tenant, context_id, checkpoint_ns, channel, version),
    FOREIGN KEY (tenant, context_id) REFERENCES ctx.contexts (tenant, id) ON DELETE CASCADE
);

CREATE TABLE ctx.checkpoint_writes (
    context_id    uuid NOT NULL,
    tenant        text NOT NULL DEFAULT ctx.current_tenant(),
    checkpoint_ns text NOT NULL DEFAULT '',
    checkpoint_id text COLLATE "C" NOT NULL,
    -- (code point order, as LangGraph sorts pending writes: task path, task id, idx)
    task_id       text COLLATE "C" NOT NULL,
    task_path     text COLLATE "C" NOT NULL DEFAULT '',
    idx           integer NOT NULL,
    channel       text NOT NULL,
    type          text NOT NULL,
    blob          bytea NOT NULL,  -- lz4 + AES-256-GCM in an encrypted context
    created_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant, context_id, checkpoint_ns, checkpoint_id, task_id, idx),
    FOREIGN KEY (tenant, context_id) REFERENCES ctx.contexts (tenant, id) ON DELETE CASCADE
);

SELECT pg_catalog.pg_extension_config_dump('ctx.threads', '');
SELECT pg_catalog.pg_extension_config_dump('ctx.checkpoints', '');
SELECT pg_catalog.pg_extension_config_dump('ctx.checkpoint_blobs', '');
SELECT pg_catalog.pg_extension_config_dump('ctx.checkpoint_writes', '');

DO $$
DECLARE t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['threads', 'checkpoints', 'checkpoint_blobs', 'checkpoint_writes'] LOOP
        EXECUTE format('ALTER TABLE ctx.%I ENABLE ROW LEVEL SECURITY', t);
        EXECUTE format($p$CREATE POLICY tenant_isolation ON ctx.%I
                          USING (tenant = ctx.current_tenant())
                          WITH CHECK (tenant = ctx.current_tenant())$p$, t);
    END LOOP;
END $$;

INSERT INTO ctx.audited_tables VALUES
    ('threads', '{tenant,thread_id}'), ('checkpoints', '{context_id,checkpoint_ns,checkpoint_id}'),
    ('checkpoint_blobs', '{context_id,checkpoint_ns,channel,version}'),
    ('checkpoint_writes', '{context_id,checkpoint_ns,checkpoint_id,task_id,idx}');

CREATE FUNCTION ctx.thread_context(thread_id text, create_missing boolean DEFAULT true,
                                   encrypted boolean DEFAULT NULL, processors jsonb DEFAULT NULL) RETURNS uuid
LANGUAGE plpgsql AS $body$
DECLARE
    found_id uuid;
    tenant_name text := ctx.current_tenant();
BEGIN
    IF thread_context.thread_id IS NULL THEN
        RAISE EXCEPTION 'thread_id must not be NULL' USING ERRCODE = '22004';
    END IF;
    IF thread_context.thread_id = '' OR octet_length(thread_context.thread_id) > 1024 THEN
        RAISE EXCEPTION 'a thread id must be 1 to 1,024 bytes long' USING ERRCODE = '22023',
            HINT = 'use the id your framework gives the conversation, e.g. LangGraph''s thread_id';
    END IF;
    SELECT t.context_id INTO found_id FROM ctx.threads t
     WHERE t.tenant = tenant_name AND t.thread_id = thread_context.thread_id;
    IF found_id IS NOT NULL OR NOT coalesce(create_missing, true) THEN
        RETURN found_id;
    END IF;
    -- two sessions creating the same thread: the second waits and finds the first's
    PERFORM pg_catalog.pg_advisory_xact_lock(pg_catalog.hashtextextended(
        'ctxstore.thread' || chr(31) || tenant_name || chr(31) || thread_context.thread_id, 0));
    SELECT t.context_id INTO found_id FROM ctx.threads t
     WHERE t.tenant = tenant_name AND t.thread_id = thread_context.thread_id;
    IF found_id IS NULL THEN
        found_id := ctx.create_context(name => thread_context.thread_id, encrypted => thread_context.encrypted,
                                       processors => coalesce(thread_context.processors, '{}'));
        INSERT INTO ctx.threads (thread_id, context_id) VALUES (thread_context.thread_id, found_id);
    END IF;
    RETURN found_id;
END
$body$;

-- A framework's thread record (Mastra's threads: a title, a resource, metadata and the caller's
-- timestamps) kept on its context: created when missing (unless create_missing is false: 42704),
-- else updated in place under the context's row lock. NULL keeps a field; metadata replaces the
-- context's whole; updated_at defaults to now(). framework names whose records these are: a
-- thread id another framework holds is refused (23505), so one adapter never reads, lists or
-- clears another's threads.
CREATE FUNCTION ctx.save_thread(thread_id text, title text DEFAULT NULL, resource text DEFAULT NULL,
                                metadata jsonb DEFAULT NULL, created_at timestamptz DEFAULT NULL,
                                updated_at timestamptz DEFAULT NULL, encrypted boolean DEFAULT NULL,
                                framework text DEFAULT '', create_missing boolean DEFAULT true)
RETURNS uuid
LANGUAGE plpgsql AS $body$
DECLARE
    caller_tenant text := ctx.current_tenant();
    -- (a value, not now() under coalesce in the UPDATE: Citus refuses that)
    stamp timestamptz := coalesce(save_thread.updated_at, now());
    cid uuid;
    holder text;
BEGIN
    IF save_thread.metadata IS NOT NULL AND jsonb_typeof(save_thread.metadata) <> 'object' THEN
        RAISE EXCEPTION 'metadata must be a JSON object, not %', jsonb_typeof(save_thread.metadata)
            USING ERRCODE = '22023', HINT = 'pass an object such as ''{"topic": "billing"}'', or NULL to keep the metadata';
    END IF;
    IF save_thread.resource = '' OR octet_length(save_thread.resource) > 1024 THEN
        RAISE EXCEPTION 'a resource must be 1 to 1,024 bytes long' USING ERRCODE = '22023',
            HINT = 'the user or agent the thread belongs to, e.g. Mastra''s resourceId';
    END IF;
    IF NOT isfinite(save_thread.created_at) OR NOT isfinite(save_thread.updated_at) THEN
        RAISE EXCEPTION 'created_at and updated_at must be finite timestamps' USING ERRCODE = '22007',
            HINT = 'pass the times the application gives, or NULL';
    END IF;
    IF save_thread.framework IS NULL OR save_thread.create_missing IS NULL THEN
        RAISE EXCEPTION 'framework and create_missing must not be NULL' USING ERRCODE = '22004',
            HINT = 'framework '''' is that of the adapters that only map thread ids (LangGraph, LangChain, the Agents SDK)';
    END IF;
    SELECT t.framework INTO holder FROM ctx.threads t
     WHERE t.tenant = caller_tenant AND t.thread_id = save_thread.thread_id;
    IF FOUND AND holder <> save_thread.framework THEN
        RAISE EXCEPTION 'thread id "%" is held by framework "%"', save_thread.thread_id, holder USING ERRCODE = '23505',
            HINT = 'one thread id is one framework''s: use another id for this one';
    END IF;
    IF NOT FOUND AND NOT save_thread.create_missing THEN
        RAISE EXCEPTION 'thread "%" does not exist', save_thread.thread_id USING ERRCODE = '42704',
            HINT = 'create_missing => true creates it';
    END IF;
    cid := ctx.thread_context(save_thread.thread_id, encrypted => save_thread.encrypted);
    IF holder IS NULL THEN
        UPDATE ctx.threads t SET framework = save_thread.framework
         WHERE t.tenant = caller_tenant AND t.thread_id = save_thread.thread_id;
    END IF;
    UPDATE ctx.contexts c
       SET name = coalesce(save_thread.title, c.name),
           resource = coalesce(save_thread.resource, c.resource),
           metadata = coalesce(save_thread.metadata, c.metadata),
           created_at = coalesce(save_thread.created_at, c.created_at),
           updated_at = stamp
     WHERE c.tenant = caller_tenant AND c.id = cid;
    IF NOT FOUND THEN  -- (deleted since the lookup)
        RAISE EXCEPTION 'thread "%" was deleted while it was saved', save_thread.thread_id USING ERRCODE = '40001',
            HINT = 'retry the transaction';
    END IF;
    RETURN cid;
END
$body$;

-- The rows of ctx.get_thread, in PL/pgSQL: the tenant is taken once and is a parameter of the
-- statement, which a cluster distributed by tenant routes to one node. (Its arguments are
-- renamed: PL/pgSQL refuses an argument named as a result column.)
CREATE FUNCTION ctx.get_thread_rows(p_thread_id text, p_framework text)
RETURNS TABLE(thread_id text, context_id uuid, title text, resource text, metadata jsonb,
              created_at timestamptz, updated_at timestamptz)
LANGUAGE plpgsql STABLE AS $body$
#variable_conflict use_column
DECLARE
    caller_tenant text := ctx.current_tenant();
BEGIN
    RETURN QUERY
        SELECT t.thread_id, c.id, c.name, c.resource, c.metadata, c.created_at, c.updated_at
          FROM ctx.threads t
          JOIN ctx.contexts c ON c.tenant = t.tenant AND c.id = t.context_id
         WHERE t.tenant = caller_tenant AND t.thread_id = p_thread_id
           AND (p_framework IS NULL OR t.framework = p_framework);
END
$body$;

-- A thread by its id, as ctx.list_threads returns it (no row when the tenant has no such thread,
-- or when framework is given and another one holds it).
CREATE FUNCTION ctx.get_thread(thread_id text, framework text DEFAULT NULL)
RETURNS TABLE(thread_id text, context_id uuid, title text, resource text, metadata jsonb,
              created_at timestamptz, updated_at timestamptz)
LANGUAGE sql STABLE AS $body$
    SELECT * FROM ctx.get_thread_rows(get_thread.thread_id, get_thread.framework)
$body$;

-- The arguments of ctx.list_threads: true, or an error that names the bad one.
CREATE FUNCTION ctx.check_thread_list(order_by text, descending boolean, max_rows integer, skip integer,
                                      metadata_contains jsonb) RETURNS boolean
LANGUAGE plpgsql IMMUTABLE AS $body$
BEGIN
    IF order_by IS NULL OR descending IS NULL OR max_rows IS NULL OR skip IS NULL THEN
        RAISE EXCEPTION 'order_by, descending, max_rows and skip must not be NULL' USING ERRCODE = '22004';
    END IF;
    IF order_by NOT IN ('created_at', 'updated_at') THEN
        RAISE EXCEPTION 'threads are ordered by created_at or updated_at, not "%"', order_by
            USING ERRCODE = '22023', HINT = 'order_by => ''updated_at'' lists the most recently active first';
    END IF;
    IF max_rows < 0 OR skip < 0 THEN
        RAISE EXCEPTION 'max_rows and skip must not be negative' USING ERRCODE = '22023', HINT = 'pass 0 or more';
    END IF;
    IF metadata_contains IS NOT NULL AND jsonb_typeof(metadata_contains) <> 'object' THEN
        RAISE EXCEPTION 'metadata_contains must be a JSON object' USING ERRCODE = '22023',
            HINT = 'e.g. ''{"topic": "billing"}'': threads whose metadata contains it';
    END IF;
    RETURN true;
END
$body$;

-- The rows of ctx.list_threads, in PL/pgSQL: the tenant is taken once and is a parameter of the
-- statement, which a cluster distributed by tenant routes to one node. (Its arguments are
-- renamed: PL/pgSQL refuses an argument named as a result column.)
CREATE FUNCTION ctx.list_threads_rows(p_resource text, p_metadata_contains jsonb, p_order_by text, p_descending boolean, p_max_rows integer, p_skip integer, p_framework text)
RETURNS TABLE(thread_id text, context_id uuid, title text, resource text, metadata jsonb,
              created_at timestamptz, updated_at timestamptz, total_count bigint)
LANGUAGE plpgsql STABLE AS $body$
#variable_conflict use_column
DECLARE
    caller_tenant text := ctx.current_tenant();
BEGIN
    -- (the arguments are checked once, before any row is read)
    PERFORM ctx.check_thread_list(p_order_by, p_descending, p_max_rows, p_skip, p_metadata_contains);
    RETURN QUERY
        SELECT t.thread_id, c.id, c.name, c.resource, c.metadata, c.created_at, c.updated_at, count(*) OVER ()
          FROM ctx.threads t
          JOIN ctx.contexts c ON c.tenant = t.tenant AND c.id = t.context_id
         WHERE t.tenant = caller_tenant
           AND (p_resource IS NULL OR c.resource = p_resource)
           AND (p_framework IS NULL OR t.framework = p_framework)
           AND c.metadata @> coalesce(p_metadata_contains, '{}')
         ORDER BY CASE WHEN NOT p_descending THEN
                       CASE p_order_by WHEN 'created_at' THEN c.created_at ELSE c.updated_at END END,
                  CASE WHEN p_descending THEN
                       CASE p_order_by WHEN 'created_at' THEN c.created_at ELSE c.updated_at END END DESC,
                  CASE WHEN NOT p_descending THEN t.thread_id END,
                  CASE WHEN p_descending THEN t.thread_id END DESC
         LIMIT p_max_rows OFFSET p_skip;
END
$body$;

-- The tenant's threads (of a resource, of a framework), whose metadata contains metadata_contains, ordered by
-- created_at or updated_at (ties by thread id, in the same direction) and paged; every row
-- carries the number of matches before paging.
CREATE FUNCTION ctx.list_threads(resource text DEFAULT NULL, metadata_contains jsonb DEFAULT '{}',
                                 order_by text DEFAULT 'created_at', descending boolean DEFAULT true,
                                 max_rows integer DEFAULT 100, skip integer DEFAULT 0, framework text DEFAULT NULL)
RETURNS TABLE(thread_id text, context_id uuid, title text, resource text, metadata jsonb,
              created_at timestamptz, updated_at timestamptz, total_count bigint)
LANGUAGE sql STABLE AS $body$
    SELECT * FROM ctx.list_threads_rows(list_threads.resource, list_threads.metadata_contains, list_threads.order_by, list_threads.descending, list_threads.max_rows, list_threads.skip, list_threads.framework)
$body$;

-- Where messages live, by id alone: for each live message with one of these ids, the context
-- that holds it (not the forks that inherit it), that context's thread id, if it has one, and its
-- resource. (Frameworks such as Mastra address a message by its id without its thread.)
CREATE FUNCTION ctx.locate_messages(message_ids text[], framework text DEFAULT NULL)
RETURNS TABLE(message_id text, context_id uuid, thread_id text, resource text)
LANGUAGE plpgsql STABLE SET plan_cache_mode = force_generic_plan AS $body$
DECLARE
    caller_tenant text := ctx.current_tenant();
BEGIN
    IF locate_messages.message_ids IS NULL OR array_position(locate_messages.message_ids, NULL) IS NOT NULL THEN
        RAISE EXCEPTION 'message_ids must not be NULL nor contain NULL' USING ERRCODE = '22004',
            HINT = 'pass the ids as a text[]';
    END IF;
    RETURN QUERY
    SELECT m.message_id, m.context_id, t.thread_id, c.resource
      FROM ctx.messages m
      JOIN ctx.contexts c ON c.tenant = caller_tenant AND c.id = m.context_id
      LEFT JOIN ctx.threads t ON t.tenant = caller_tenant AND t.context_id = m.context_id
     WHERE m.tenant = caller_tenant AND m.message_id = ANY (locate_messages.message_ids) AND NOT m.deleted
       -- (with a framework: only messages of its threads)
       AND (locate_messages.framework IS NULL OR t.framework = locate_messages.framework)
     ORDER BY m.message_id, m.context_id;
END
$body$;

-- Puts take this lock shared, garbage collection exclusive: a put that reuses a stored channel
-- value never sees it deleted under it.
CREATE FUNCTION ctx.checkpoint_put(thread_id text, checkpoint_ns text, checkpoint jsonb,
                                   metadata jsonb DEFAULT '{}', parent_checkpoint_id text DEFAULT NULL,
                                   channels text[] DEFAULT '{}', versions text[] DEFAULT '{}',
                                   types text[] DEFAULT '{}', blobs bytea[] DEFAULT '{}')
RETURNS text
LANGUAGE plpgsql AS $body$
DECLARE
    caller_tenant text := ctx.current_tenant();
    cid uuid;
    sealed boolean;
    new_id text := checkpoint_put.checkpoint->>'id';
    ns text := coalesce(checkpoint_put.checkpoint_ns, '');
    md jsonb := coalesce(checkpoint_put.metadata, '{}');
    run_key text;
    metadata_sealed bytea;
BEGIN
    IF checkpoint_put.checkpoint IS NULL THEN
        RAISE EXCEPTION 'checkpoint must not be NULL' USING ERRCODE = '22004';
    END IF;
    IF jsonb_typeof(checkpoint_put.checkpoint) <> 'object' OR jsonb_typeof(checkpoint_put.checkpoint->'id') IS DISTINCT FROM 'string'
       OR new_id = '' THEN
        RAISE EXCEPTION 'checkpoint must be a JSON object with a non-empty string "id"' USING ERRCODE = '22023';
    END IF;
    IF checkpoint_put.checkpoint ? 'channel_values' THEN
        RAISE EXCEPTION 'checkpoint must not carry channel_values' USING ERRCODE = '22023',
            HINT = 'pass each channel''s value in channels/versions/types/blobs; they are stored once per version';
    END IF;
    IF jsonb_typeof(md) <> 'object' THEN
        RAISE EXCEPTION 'metadata must be a JSON object' USING ERRCODE = '22023';
    END IF;
    IF cardinality(coalesce(checkpoint_put.channels, '{}')) <> cardinality(coalesce(checkpoint_put.versions, '{}'))
       OR cardinality(coalesce(checkpoint_put.channels, '{}')) <> cardinality(coalesce(checkpoint_put.types, '{}'))
       OR cardinality(coalesce(checkpoint_put.channels, '{}')) <> cardinality(coalesce(checkpoint_put.blobs, '{}')) THEN
        RAISE EXCEPTION 'channels, versions, types and blobs must have the same length' USING ERRCODE = '22023';
    END IF;
    IF array_position(checkpoint_put.channels, NULL) IS NOT NULL OR array_position(checkpoint_put.versions, NULL) IS NOT NULL
       OR array_position(checkpoint_put.types, NULL) IS NOT NULL THEN
        RAISE EXCEPTION 'channels, versions and types must not contain NULL' USING ERRCODE = '22004';
    END IF;
    cid := ctx.thread_context(checkpoint_put.thread_id);
    SELECT c.encrypted INTO sealed FROM ctx.contexts c WHERE c.tenant = caller_tenant AND c.id = cid;
    PERFORM pg_catalog.pg_advisory_xact_lock_shared(pg_catalog.hashtextextended('ctxstore.checkpoints' || chr(31) || cid::text || chr(31) || caller_tenant, 0));

    INSERT INTO ctx.checkpoint_blobs AS b (context_id, checkpoint_ns, channel, version, type, blob)
    SELECT cid, ns, v.channel, v.version, v.type,
           CASE WHEN sealed AND v.blob IS NOT NULL
                THEN ctx.context_seal(cid, v.blob, 'checkpoint_blobs', ns, v.channel, v.version)
                ELSE v.blob END
      FROM unnest(checkpoint_put.channels, checkpoint_put.versions, checkpoint_put.types, checkpoint_put.blobs)
           AS v(channel, version, type, blob)
    ON CONFLICT ON CONSTRAINT checkpoint_blobs_pkey DO NOTHING;

    -- (sealed before the INSERT, not under a CASE in its values: a distributed INSERT evaluates
    -- the functions of its values on the coordinator, every branch)
    run_key := ctx.checkpoint_run_key(md->>'run_id', sealed);
    IF sealed THEN
        metadata_sealed := ctx.context_seal(cid, convert_to(md::text, 'UTF8'), 'checkpoints.metadata', ns, new_id);
    END IF;
    INSERT INTO ctx.checkpoints AS c (context_id, checkpoint_ns, checkpoint_id, parent_checkpoint_id, run_id,
                                      checkpoint, metadata, metadata_enc)
    VALUES (cid, ns, new_id, checkpoint_put.parent_checkpoint_id, run_key, checkpoint_put.checkpoint,
            CASE WHEN sealed THEN '{}' ELSE md END, metadata_sealed)
    ON CONFLICT ON CONSTRAINT checkpoints_pkey DO UPDATE
       SET parent_checkpoint_id = excluded.parent_checkpoint_id, run_id = excluded.run_id,
           checkpoint = excluded.checkpoint, metadata = excluded.metadata, metadata_enc = excluded.metadata_enc,
           trace_id = excluded.trace_id;
    RETURN new_id;
END
$body$;

CREATE FUNCTION ctx.checkpoint_put_writes(thread_id text, checkpoint_ns text, checkpoint_id text, task_id text,
                                          idxs integer[], channels text[], types text[], blobs bytea[],
                                          task_path text DEFAULT '', overwrite boolean DEFAULT false)
RETURNS integer
LANGUAGE plpgsql AS $body$
DECLARE
    caller_tenant text := ctx.current_tenant();
    cid uuid;
    sealed boolean;
    ns text := coalesce(checkpoint_put_writes.checkpoint_ns, '');
    stored bytea[];
    written integer;
BEGIN
    IF checkpoint_put_writes.checkpoint_id IS NULL OR checkpoint_put_writes.task_id IS NULL
       OR checkpoint_put_writes.idxs IS NULL OR checkpoint_put_writes.channels IS NULL
       OR checkpoint_put_writes.types IS NULL OR checkpoint_put_writes.blobs IS NULL THEN
        RAISE EXCEPTION 'checkpoint_id, task_id, idxs, channels, types and blobs must not be NULL' USING ERRCODE = '22004';
    END IF;
    IF cardinality(checkpoint_put_writes.idxs) <> cardinality(checkpoint_put_writes.channels)
       OR cardinality(checkpoint_put_writes.idxs) <> cardinality(checkpoint_put_writes.types)
       OR cardinality(checkpoint_put_writes.idxs) <> cardinality(checkpoint_put_writes.blobs) THEN
        RAISE EXCEPTION 'idxs, channels, types and blobs must have the same length' USING ERRCODE = '22023';
    END IF;
    IF array_position(checkpoint_put_writes.idxs, NULL) IS NOT NULL OR array_position(checkpoint_put_writes.channels, NULL) IS NOT NULL
       OR array_position(checkpoint_put_writes.types, NULL) IS NOT NULL OR array_position(checkpoint_put_writes.blobs, NULL) IS NOT NULL THEN
        RAISE EXCEPTION 'idxs, channels, types and blobs must not contain NULL' USING ERRCODE = '22004';
    END IF;
    IF (SELECT count(DISTINCT i) FROM unnest(checkpoint_put_writes.idxs) i) < cardinality(checkpoint_put_writes.idxs) THEN
        RAISE EXCEPTION 'idxs must not repeat an index' USING ERRCODE = '21000',
            HINT = 'each write of a task has its own index';
    END IF;
    cid := ctx.thread_context(checkpoint_put_writes.thread_id);
    SELECT c.encrypted INTO sealed FROM ctx.contexts c WHERE c.tenant = caller_tenant AND c.id = cid;
    -- (garbage collection waits for these writes, as for a put)
    PERFORM pg_catalog.pg_advisory_xact_lock_shared(pg_catalog.hashtextextended('ctxstore.checkpoints' || chr(31) || cid::text || chr(31) || caller_tenant, 0));
    -- (sealed first, then one plain INSERT per conflict rule: a distributed INSERT evaluates
    -- neither a function under CASE nor a variable in DO UPDATE's WHERE as one server does)
    stored := checkpoint_put_writes.blobs;
    IF sealed THEN
        stored := ARRAY(SELECT ctx.context_seal(cid, v.blob, 'checkpoint_writes', ns, checkpoint_put_writes.checkpoint_id,
                                                checkpoint_put_writes.task_id, v.idx::text)
                          FROM unnest(checkpoint_put_writes.idxs, checkpoint_put_writes.blobs) WITH ORDINALITY AS v(idx, blob, ord)
                         ORDER BY v.ord);
    END IF;
    IF checkpoint_put_writes.overwrite THEN
        INSERT INTO ctx.checkpoint_writes AS w (context_id, tenant, checkpoint_ns, checkpoint_id, task_id, task_path, idx,
                                                channel, type, blob)
        SELECT cid, caller_tenant, ns, checkpoint_put_writes.checkpoint_id, checkpoint_put_writes.task_id,
               coalesce(checkpoint_put_writes.task_path, ''), v.idx, v.channel, v.type, v.blob
          FROM unnest(checkpoint_put_writes.idxs, checkpoint_put_writes.channels, checkpoint_put_writes.types, stored)
               AS v(idx, channel, type, blob)
        ON CONFLICT ON CONSTRAINT checkpoint_writes_pkey DO UPDATE
           SET channel = excluded.channel, type = excluded.type, blob = excluded.blob, task_path = excluded.task_path;
    ELSE
        INSERT INTO ctx.checkpoint_writes AS w (context_id, tenant, checkpoint_ns, checkpoint_id, task_id, task_path, idx,
                                                channel, type, blob)
        SELECT cid, caller_tenant, ns, checkpoint_put_writes.checkpoint_id, checkpoint_put_writes.task_id,
               coalesce(checkpoint_put_writes.task_path, ''), v.idx, v.channel, v.type, v.blob
          FROM unnest(checkpoint_put_writes.idxs, checkpoint_put_writes.channels, checkpoint_put_writes.types, stored)
               AS v(idx, channel, type, blob)
        ON CONFLICT ON CONSTRAINT checkpoint_writes_pkey DO NOTHING;
    END IF;
    GET DIAGNOSTICS written = ROW_COUNT;
    RETURN written;
END
$body$;

-- The values (at the versions the checkpoint saw) and the pending writes of one checkpoint,
-- decrypted, as ctx.checkpoint_get and ctx.checkpoint_list return them.
CREATE FUNCTION ctx.checkpoint_payload(context_id uuid, checkpoint_ns text, checkpoint_id text,
                                       channel_versions jsonb, encrypted boolean)
RETURNS TABLE(channels text[], types text[], blobs bytea[],
              write_task_ids text[], write_channels text[], write_types text[], write_blobs bytea[])
LANGUAGE plpgsql STABLE AS $body$
#variable_conflict use_column
DECLARE
    caller_tenant text := ctx.current_tenant();
BEGIN
    RETURN QUERY
        SELECT coalesce(b.channels, '{}'), coalesce(b.types, '{}'), coalesce(b.blobs, '{}'),
               coalesce(w.task_ids, '{}'), coalesce(w.channels, '{}'), coalesce(w.types, '{}'), coalesce(w.blobs, '{}')
          FROM (SELECT array_agg(v.channel ORDER BY v.channel) AS channels,
                       array_agg(bl.type ORDER BY v.channel) AS types,
                       array_agg(CASE WHEN checkpoint_payload.encrypted AND bl.blob IS NOT NULL
                                      THEN ctx.context_unseal(checkpoint_payload.context_id, bl.blob,
                                               'checkpoint_blobs', checkpoint_payload.checkpoint_ns, v.channel, v.version)
                                      ELSE bl.blob END ORDER BY v.channel) AS blobs
                  FROM jsonb_each_text(checkpoint_payload.channel_versions) AS v(channel, version)
                  -- (LIMIT 1 keeps this a probe of the primary key per channel, never a scan of the thread's values)
                 CROSS JOIN LATERAL (SELECT b1.type, b1.blob FROM ctx.checkpoint_blobs b1
                                      WHERE b1.tenant = caller_tenant AND b1.context_id = checkpoint_payload.context_id
                                        AND b1.checkpoint_ns = checkpoint_payload.checkpoint_ns
                                        AND b1.channel = v.channel AND b1.version = v.version LIMIT 1) bl) b,
               (SELECT array_agg(wr.task_id ORDER BY wr.task_path, wr.task_id, wr.idx) AS task_ids,
                       array_agg(wr.channel ORDER BY wr.task_path, wr.task_id, wr.idx) AS channels,
                       array_agg(wr.type ORDER BY wr.task_path, wr.task_id, wr.idx) AS types,
                       array_agg(CASE WHEN checkpoint_payload.encrypted
                                      THEN ctx.context_unseal(wr.context_id, wr.blob,
                                               'checkpoint_writes', wr.checkpoint_ns, wr.checkpoint_id,
                                                         wr.task_id, wr.idx::text)
                                      ELSE wr.blob END ORDER BY wr.task_path, wr.task_id, wr.idx) AS blobs
                  FROM ctx.checkpoint_writes wr
                 WHERE wr.tenant = caller_tenant AND wr.context_id = checkpoint_payload.context_id
                   AND wr.checkpoint_ns = checkpoint_payload.checkpoint_ns
                   AND wr.checkpoint_id = checkpoint_payload.checkpoint_id) w;
END
$body$;

-- The rows of ctx.checkpoint_list, in PL/pgSQL: the tenant is taken once and is a parameter of the
-- statement, which a cluster distributed by tenant routes to one node. (Its arguments are
-- renamed: PL/pgSQL refuses an argument named as a result column.)
CREATE FUNCTION ctx.checkpoint_list_rows(p_thread_id text, p_checkpoint_ns text, p_filter jsonb, p_before text, p_max_rows integer, p_checkpoint_id text)
RETURNS TABLE(thread_id text, checkpoint_ns text, checkpoint_id text, parent_checkpoint_id text,
              checkpoint jsonb, metadata jsonb, channels text[], types text[], blobs bytea[],
              write_task_ids text[], write_channels text[], write_types text[], write_blobs bytea[],
              created_at timestamptz)
LANGUAGE plpgsql STABLE AS $body$
#variable_conflict use_column
DECLARE
    caller_tenant text := ctx.current_tenant();
BEGIN
    RETURN QUERY
        SELECT c.thread_id, c.checkpoint_ns, c.checkpoint_id, c.parent_checkpoint_id, c.checkpoint,
               CASE WHEN c.metadata_enc IS NULL THEN c.metadata
                    ELSE convert_from(ctx.context_unseal(c.context_id, c.metadata_enc,
                             'checkpoints.metadata', c.checkpoint_ns, c.checkpoint_id), 'UTF8')::jsonb END,
               p.channels, p.types, p.blobs, p.write_task_ids, p.write_channels, p.write_types, p.write_blobs,
               c.created_at
          FROM (SELECT t.thread_id, x.encrypted, cp.context_id, cp.checkpoint_ns, cp.checkpoint_id,
                       cp.parent_checkpoint_id, cp.checkpoint, cp.metadata, cp.metadata_enc, cp.created_at
                  FROM ctx.checkpoints cp
                  JOIN ctx.threads t ON t.tenant = cp.tenant AND t.context_id = cp.context_id
                  JOIN ctx.contexts x ON x.tenant = cp.tenant AND x.id = cp.context_id
                 WHERE cp.tenant = caller_tenant
                   -- (one thread: its context id as a constant, so the newest come first off the index)
                   AND (p_thread_id IS NULL
                        OR cp.context_id = (SELECT t1.context_id FROM ctx.threads t1
                                             WHERE t1.tenant = caller_tenant AND t1.thread_id = p_thread_id))
                   AND (p_checkpoint_ns IS NULL OR cp.checkpoint_ns = p_checkpoint_ns)
                   AND (p_checkpoint_id IS NULL OR cp.checkpoint_id = p_checkpoint_id)
                   AND (p_before IS NULL OR cp.checkpoint_id < p_before)
                   AND (p_filter IS NULL
                        OR (CASE WHEN cp.metadata_enc IS NULL THEN cp.metadata
                                 ELSE convert_from(ctx.context_unseal(cp.context_id, cp.metadata_enc,
                                          'checkpoints.metadata', cp.checkpoint_ns, cp.checkpoint_id), 'UTF8')::jsonb
                            END) @> p_filter)
                 ORDER BY cp.checkpoint_id DESC, cp.checkpoint_ns
                 LIMIT p_max_rows) c
         CROSS JOIN LATERAL ctx.checkpoint_payload(c.context_id, c.checkpoint_ns, c.checkpoint_id,
                                                   c.checkpoint->'channel_versions', c.encrypted) p
         ORDER BY c.checkpoint_id DESC, c.checkpoint_ns;
END
$body$;

-- The checkpoints are chosen first (filter, order, limit), then only those are decrypted and
-- joined with their values and writes.
CREATE FUNCTION ctx.checkpoint_list(thread_id text DEFAULT NULL, checkpoint_ns text DEFAULT NULL,
                                    filter jsonb DEFAULT NULL, before text DEFAULT NULL,
                                    max_rows integer DEFAULT NULL, checkpoint_id text DEFAULT NULL)
RETURNS TABLE(thread_id text, checkpoint_ns text, checkpoint_id text, parent_checkpoint_id text,
              checkpoint jsonb, metadata jsonb, channels text[], types text[], blobs bytea[],
              write_task_ids text[], write_channels text[], write_types text[], write_blobs bytea[],
              created_at timestamptz)
LANGUAGE sql STABLE AS $body$
    SELECT * FROM ctx.checkpoint_list_rows(checkpoint_list.thread_id, checkpoint_list.checkpoint_ns, checkpoint_list.filter, checkpoint_list.before, checkpoint_list.max_rows, checkpoint_list.checkpoint_id)
$body$;

-- The rows of ctx.checkpoint_get, in PL/pgSQL: the tenant is taken once and is a parameter of the
-- statement, which a cluster distributed by tenant routes to one node. (Its arguments are
-- renamed: PL/pgSQL refuses an argument named as a result column.)
CREATE FUNCTION ctx.checkpoint_get_rows(p_thread_id text, p_checkpoint_ns text, p_checkpoint_id text)
RETURNS TABLE(thread_id text, checkpoint_ns text, checkpoint_id text, parent_checkpoint_id text,
              checkpoint jsonb, metadata jsonb, channels text[], types text[], blobs bytea[],
              write_task_ids text[], write_channels text[], write_types text[], write_blobs bytea[],
              created_at timestamptz)
LANGUAGE plpgsql STABLE AS $body$
#variable_conflict use_column
DECLARE
    caller_tenant text := ctx.current_tenant();
BEGIN
    RETURN QUERY
        SELECT t.thread_id, cp.checkpoint_ns, cp.checkpoint_id, cp.parent_checkpoint_id, cp.checkpoint,
               CASE WHEN cp.metadata_enc IS NULL THEN cp.metadata
                    ELSE convert_from(ctx.context_unseal(cp.context_id, cp.metadata_enc,
                             'checkpoints.metadata', cp.checkpoint_ns, cp.checkpoint_id), 'UTF8')::jsonb END,
               p.channels, p.types, p.blobs, p.write_task_ids, p.write_channels, p.write_types, p.write_blobs,
               cp.created_at
          FROM ctx.threads t
          JOIN ctx.contexts x ON x.tenant = caller_tenant AND x.id = t.context_id
         CROSS JOIN LATERAL (
               -- (one branch runs: "checkpoint_id IS NULL" is decided once per call, even in a generic plan)
               (SELECT * FROM ctx.checkpoints c
                 WHERE p_checkpoint_id IS NULL
                   AND c.tenant = caller_tenant AND c.context_id = t.context_id
                   AND c.checkpoint_ns = coalesce(p_checkpoint_ns, '')
                 ORDER BY c.checkpoint_id DESC LIMIT 1)
               UNION ALL
               (SELECT * FROM ctx.checkpoints c
                 WHERE c.tenant = caller_tenant AND c.context_id = t.context_id
                   AND c.checkpoint_ns = coalesce(p_checkpoint_ns, '')
                   AND c.checkpoint_id = p_checkpoint_id)) cp
         CROSS JOIN LATERAL ctx.checkpoint_payload(cp.context_id, cp.checkpoint_ns, cp.checkpoint_id,
                                                   cp.checkpoint->'channel_versions', x.encrypted) p
         WHERE t.tenant = caller_tenant AND t.thread_id = p_thread_id;
END
$body$;

-- One checkpoint by primary key (the latest of the namespace: the index's last entry), written
-- so that a prepared statement's generic plan stays a key lookup.
CREATE FUNCTION ctx.checkpoint_get(thread_id text, checkpoint_ns text DEFAULT '', checkpoint_id text DEFAULT NULL)
RETURNS TABLE(thread_id text, checkpoint_ns text, checkpoint_id text, parent_checkpoint_id text,
              checkpoint jsonb, metadata jsonb, channels text[], types text[], blobs bytea[],
              write_task_ids text[], write_channels text[], write_types text[], write_blobs bytea[],
              created_at timestamptz)
LANGUAGE sql STABLE AS $body$
    SELECT * FROM ctx.checkpoint_get_rows(checkpoint_get.thread_id, checkpoint_get.checkpoint_ns, checkpoint_get.checkpoint_id)
$body$;

-- Deletes the pending writes and channel values no checkpoint of these contexts refers to.
-- Its exclusive lock waits for puts in flight, whose checkpoints may reuse stored values.
CREATE FUNCTION ctx.checkpoint_collect_garbage(context_ids uuid[]) RETURNS bigint
LANGUAGE plpgsql AS $body$
DECLARE
    caller_tenant text := ctx.current_tenant();
    n bigint;
    total bigint := 0;
BEGIN
    IF checkpoint_collect_garbage.context_ids IS NULL THEN
        RAISE EXCEPTION 'context_ids must not be NULL' USING ERRCODE = '22004';
    END IF;
    PERFORM pg_catalog.pg_advisory_xact_lock(pg_catalog.hashtextextended('ctxstore.checkpoints' || chr(31) || id::text || chr(31) || caller_tenant, 0))
       FROM unnest(checkpoint_collect_garbage.context_ids) AS id ORDER BY id;
    DELETE FROM ctx.checkpoint_writes w
     WHERE w.context_id = ANY (checkpoint_collect_garbage.context_ids) AND w.tenant = caller_tenant
       AND NOT EXISTS (SELECT 1 FROM ctx.checkpoints c
                        WHERE c.tenant = w.tenant AND c.context_id = w.context_id AND c.checkpoint_ns = w.checkpoint_ns
                          AND c.checkpoint_id = w.checkpoint_id);
    GET DIAGNOSTICS n = ROW_COUNT;
    total := total + n;
    DELETE FROM ctx.checkpoint_blobs b
     WHERE b.context_id = ANY (checkpoint_collect_garbage.context_ids) AND b.tenant = caller_tenant
       AND NOT EXISTS (SELECT 1 FROM ctx.checkpoints c
                        WHERE c.tenant = b.tenant AND c.context_id = b.context_id AND c.checkpoint_ns = b.checkpoint_ns
                          AND c.checkpoint->'channel_versions'->>b.channel = b.version);
    GET DIAGNOSTICS n = ROW_COUNT;
    RETURN total + n;
END
$body$;

CREATE FUNCTION ctx.checkpoint_prune(thread_ids text[], keep_latest integer DEFAULT 1) RETURNS bigint
LANGUAGE plpgsql AS $body$
DECLARE
    caller_tenant text := ctx.current_tenant();
    cids uuid[];
    deleted bigint;
BEGIN
    IF checkpoint_prune.thread_ids IS NULL OR checkpoint_prune.keep_latest IS NULL THEN
        RAISE EXCEPTION 'thread_ids and keep_latest must not be NULL' USING ERRCODE = '22004';
    END IF;
    IF checkpoint_prune.keep_latest < 0 THEN
        RAISE EXCEPTION 'keep_latest must be 0 or more, not %', checkpoint_prune.keep_latest USING ERRCODE = '22023',
            HINT = '0 deletes every checkpoint of the threads; 1 keeps the latest of each namespace';
    END IF;
    SELECT coalesce(array_agg(t.context_id), '{}') INTO cids FROM ctx.threads t
     WHERE t.tenant = caller_tenant AND t.thread_id = ANY (checkpoint_prune.thread_ids);
    PERFORM pg_catalog.pg_advisory_xact_lock(pg_catalog.hashtextextended('ctxstore.checkpoints' || chr(31) || id::text || chr(31) || caller_tenant, 0))
       FROM unnest(cids) AS id ORDER BY id;
    DELETE FROM ctx.checkpoints c
     USING (SELECT r.context_id, r.checkpoint_ns, r.checkpoint_id,
                   row_number() OVER (PARTITION BY r.context_id, r.checkpoint_ns ORDER BY r.checkpoint_id DESC) AS rank
              FROM ctx.checkpoints r WHERE r.tenant = caller_tenant AND r.context_id = ANY (cids)) ranked
     WHERE c.tenant = caller_tenant AND c.context_id = ranked.context_id AND c.checkpoint_ns = ranked.checkpoint_ns
       AND c.checkpoint_id = ranked.checkpoint_id AND ranked.rank > checkpoint_prune.keep_latest;
    GET DIAGNOSTICS deleted = ROW_COUNT;
    PERFORM ctx.checkpoint_collect_garbage(cids);
    RETURN deleted;
END
$body$;

CREATE FUNCTION ctx.checkpoint_delete_thread(thread_id text) RETURNS bigint
LANGUAGE sql AS $body$
    SELECT ctx.checkpoint_prune(ARRAY[checkpoint_delete_thread.thread_id], keep_latest => 0)
$body$;

CREATE FUNCTION ctx.checkpoint_delete_runs(run_ids text[]) RETURNS bigint
LANGUAGE plpgsql AS $body$
DECLARE
    caller_tenant text := ctx.current_tenant();
    keys text[];
    cids uuid[];
    deleted bigint;
BEGIN
    IF checkpoint_delete_runs.run_ids IS NULL THEN
        RAISE EXCEPTION 'run_ids must not be NULL' USING ERRCODE = '22004';
    END IF;
    -- plain threads store the run id, encrypted ones its keyed hash (there are none before the
    -- tenant's hashing key exists: no key is made, and no master key needed, to look)
    keys := checkpoint_delete_runs.run_ids;
    IF EXISTS (SELECT 1 FROM ctx.data_keys d WHERE d.tenant = caller_tenant AND d.scope = 'hashing') THEN
        keys := keys || ARRAY(SELECT ctx.checkpoint_run_key(r, true)
                                FROM unnest(checkpoint_delete_runs.run_ids) r WHERE r IS NOT NULL);
    END IF;
    SELECT coalesce(array_agg(DISTINCT c.context_id), '{}') INTO cids FROM ctx.checkpoints c
     WHERE c.tenant = caller_tenant AND c.run_id = ANY (keys);
    PERFORM pg_catalog.pg_advisory_xact_lock(pg_catalog.hashtextextended('ctxstore.checkpoints' || chr(31) || id::text || chr(31) || caller_tenant, 0))
       FROM unnest(cids) AS id ORDER BY id;
    DELETE FROM ctx.checkpoints c
     WHERE c.tenant = caller_tenant AND c.context_id = ANY (cids) AND c.run_id = ANY (keys);
    GET DIAGNOSTICS deleted = ROW_COUNT;
    PERFORM ctx.checkpoint_collect_garbage(cids);
    RETURN deleted;
END
$body$;

-- The target thread, when new, is a fork of the source's context: it reads the source's
-- messages and working memory without copying them; checkpoints are copied (re-sealed with the
-- fork's own key when encrypted).
CREATE FUNCTION ctx.checkpoint_copy_thread(source_thread_id text, target_thread_id text) RETURNS bigint
LANGUAGE plpgsql AS $body$
DECLARE
    caller_tenant text := ctx.current_tenant();
    src uuid;
    dst uuid;
    src_sealed boolean;
    dst_sealed boolean;
    copied bigint;
BEGIN
    IF source_thread_id IS NULL OR target_thread_id IS NULL THEN
        RAISE EXCEPTION 'source_thread_id and target_thread_id must not be NULL' USING ERRCODE = '22004';
    END IF;
    IF source_thread_id = target_thread_id THEN
        RAISE EXCEPTION 'cannot copy thread "%" onto itself', source_thread_id USING ERRCODE = '22023';
    END IF;
    src := ctx.thread_context(source_thread_id, create_missing => false);
    IF src IS NULL THEN
        RAISE EXCEPTION 'thread "%" does not exist', source_thread_id USING ERRCODE = '42704',
            HINT = 'a thread exists once a checkpoint or message was stored in it';
    END IF;
    dst := ctx.thread_context(target_thread_id, create_missing => false);
    IF dst IS NULL THEN
        PERFORM pg_catalog.pg_advisory_xact_lock(pg_catalog.hashtextextended(
            'ctxstore.thread' || chr(31) || caller_tenant || chr(31) || target_thread_id, 0));
        dst := ctx.thread_context(target_thread_id, create_missing => false);
        IF dst IS NULL THEN
            dst := ctx.fork(src);
            UPDATE ctx.contexts SET name = target_thread_id WHERE tenant = caller_tenant AND id = dst;
            INSERT INTO ctx.threads (thread_id, context_id) VALUES (target_thread_id, dst);
        END IF;
    END IF;
    SELECT encrypted INTO src_sealed FROM ctx.contexts WHERE tenant = caller_tenant AND id = src;
    SELECT encrypted INTO dst_sealed FROM ctx.contexts WHERE tenant = caller_tenant AND id = dst;
    IF src_sealed AND NOT dst_sealed THEN
        RAISE EXCEPTION 'cannot copy encrypted thread "%" into unencrypted thread "%"', source_thread_id, target_thread_id
            USING ERRCODE = '55000', HINT = 'copy into a new thread id: it becomes an encrypted fork';
    END IF;
    -- the source exclusively (puts in flight finish first, later ones wait): its values,
    -- checkpoints and writes are read as one consistent state by the three statements below
    -- (both locks in context id order: two copies in opposite directions cannot deadlock; a
    -- transaction that put into the source before copying it waits for other such transactions)
    IF src < dst THEN
        PERFORM pg_catalog.pg_advisory_xact_lock(pg_catalog.hashtextextended('ctxstore.checkpoints' || chr(31) || src::text || chr(31) || caller_tenant, 0));
    END IF;
    PERFORM pg_catalog.pg_advisory_xact_lock_shared(pg_catalog.hashtextextended('ctxstore.checkpoints' || chr(31) || dst::text || chr(31) || caller_tenant, 0));
    IF src > dst THEN
        PERFORM pg_catalog.pg_advisory_xact_lock(pg_catalog.hashtextextended('ctxstore.checkpoints' || chr(31) || src::text || chr(31) || caller_tenant, 0));
    END IF;

    INSERT INTO ctx.checkpoint_blobs (context_id, checkpoint_ns, channel, version, type, blob)
    SELECT dst, b.checkpoint_ns, b.channel, b.version, b.type,
           CASE WHEN b.blob IS NULL OR NOT dst_sealed THEN plain.blob
                ELSE ctx.context_seal(dst, plain.blob, 'checkpoint_blobs', b.checkpoint_ns, b.channel, b.version) END
      FROM ctx.checkpoint_blobs b
     CROSS JOIN LATERAL (SELECT CASE WHEN src_sealed AND b.blob IS NOT NULL
                                     THEN ctx.context_unseal(src, b.blob, 'checkpoint_blobs', b.checkpoint_ns, b.channel, b.version)
                                     ELSE b.blob END AS blob) plain
     WHERE b.tenant = caller_tenant AND b.context_id = src
    ON CONFLICT ON CONSTRAINT checkpoint_blobs_pkey DO NOTHING;

    INSERT INTO ctx.checkpoints (context_id, checkpoint_ns, checkpoint_id, parent_checkpoint_id, run_id,
                                 checkpoint, metadata, metadata_enc, created_at)
    SELECT dst, c.checkpoint_ns, c.checkpoint_id, c.parent_checkpoint_id,
           -- (a plain source's run id is hashed into an encrypted target; a hash stays a hash)
           CASE WHEN dst_sealed AND NOT src_sealed THEN ctx.checkpoint_run_key(c.run_id, true) ELSE c.run_id END,
           c.checkpoint,
           CASE WHEN dst_sealed THEN '{}' ELSE plain.metadata END,
           CASE WHEN dst_sealed THEN ctx.context_seal(dst, convert_to(plain.metadata::text, 'UTF8'),
                                     'checkpoints.metadata', c.checkpoint_ns, c.checkpoint_id) END,
           c.created_at
      FROM ctx.checkpoints c
     CROSS JOIN LATERAL (SELECT CASE WHEN c.metadata_enc IS NULL THEN c.metadata
                                     ELSE convert_from(ctx.context_unseal(src, c.metadata_enc,
                                              'checkpoints.metadata', c.checkpoint_ns, c.checkpoint_id), 'UTF8')::jsonb
                                END AS metadata) plain
     WHERE c.tenant = caller_tenant AND c.context_id = src
    ON CONFLICT ON CONSTRAINT checkpoints_pkey DO NOTHING;
    GET DIAGNOSTICS copied = ROW_COUNT;

    INSERT INTO ctx.checkpoint_writes (context_id, checkpoint_ns, checkpoint_id, task_id, task_path, idx, channel, type, blob, created_at)
    SELECT dst, w.checkpoint_ns, w.checkpoint_id, w.task_id, w.task_path, w.idx, w.channel, w.type,
           CASE WHEN NOT dst_sealed THEN plain.blob
                ELSE ctx.context_seal(dst, plain.blob, 'checkpoint_writes', w.checkpoint_ns,
                                      w.checkpoint_id, w.task_id, w.idx::text) END,
           w.created_at
      FROM ctx.checkpoint_writes w
     CROSS JOIN LATERAL (SELECT CASE WHEN src_sealed
                                     THEN ctx.context_unseal(src, w.blob, 'checkpoint_writes', w.checkpoint_ns,
                                                             w.checkpoint_id, w.task_id, w.idx::text)
                                     ELSE w.blob END AS blob) plain
     WHERE w.tenant = caller_tenant AND w.context_id = src
    ON CONFLICT ON CONSTRAINT checkpoint_writes_pkey DO NOTHING;
    RETURN copied;
END
$body$;
