-- The conversation store: contexts (threads), their append-only message log, and summaries.

-- The tenant of the current session: ctxstore.tenant (set by the application), unless the
-- current role is bound to a tenant (ctx.bind_role_to_tenant), which then wins
-- (ctx.current_tenant(), native: src/services/tenant.rs). Row-level security compares every
-- row's tenant with it. Roles are kept and compared by OID, never by
-- name: a name that needs quoting, a rename, or a new role under a dropped one's name cannot
-- move a binding. (A tenant name never holds U+001F: key bindings use it as a separator.)
CREATE TABLE ctx.tenant_roles (
    role        regrole PRIMARY KEY,
    tenant      text NOT NULL CHECK (tenant <> '' AND strpos(tenant, chr(31)) = 0)
);
-- (bindings of dropped roles are not dumped: restored, their bare OIDs could name other roles)
SELECT pg_catalog.pg_extension_config_dump('ctx.tenant_roles',
    'WHERE EXISTS (SELECT 1 FROM pg_catalog.pg_roles r WHERE r.oid OPERATOR(pg_catalog.=) role)');

-- Whether the current role bypasses row-level security (a superuser, or BYPASSRLS): only such
-- a role changes what acts for every tenant (the schema registry, processors of every tenant).
CREATE FUNCTION ctx.bypasses_rls() RETURNS boolean
LANGUAGE sql STABLE PARALLEL SAFE SET search_path = pg_catalog, pg_temp AS $$
    SELECT coalesce((SELECT r.rolsuper OR r.rolbypassrls FROM pg_catalog.pg_roles r
                      WHERE r.oid OPERATOR(pg_catalog.=) pg_catalog.to_regrole(pg_catalog.quote_ident(current_user))),
                    false)
$$;

-- The trace id of the current request: ctxstore.traceparent, else a sqlcommenter
-- traceparent='00-<trace id>-<span id>-<flags>' carried in application_name.
CREATE FUNCTION ctx.current_trace_id() RETURNS text
LANGUAGE sql STABLE PARALLEL SAFE AS $$
    SELECT coalesce(
        substring(current_setting('ctxstore.traceparent', true) FROM '^[0-9a-f]{2}-([0-9a-f]{32})-[0-9a-f]{16}-[0-9a-f]{2}$'),
        substring(current_setting('application_name', true) FROM 'traceparent=''?[0-9a-f]{2}-([0-9a-f]{32})-'))
$$;

CREATE TABLE ctx.contexts (
    id          uuid NOT NULL DEFAULT gen_random_uuid(),
    tenant      text NOT NULL DEFAULT ctx.current_tenant(),
    name        text,
    -- the user or agent it belongs to in the application: frameworks list threads by it
    -- (ctx.list_contexts)
    resource    text,  -- 1 to 1024 bytes
    metadata    jsonb NOT NULL DEFAULT '{}',  -- an object
    -- token encoding of every count stored for this context (fixed at creation)
    encoding    text NOT NULL,  -- o200k_base or cl100k_base
    -- registered schema (ctx.register_schema) that every message's metadata must match, if any
    metadata_schema text,
    -- content and metadata of its messages and summaries are stored encrypted (ctx.data_keys)
    encrypted   boolean NOT NULL DEFAULT false,
    -- parameters of the built-in processors for this context (ctx.configure_context_processors)
    processors  jsonb NOT NULL DEFAULT '{}',  -- an object
    -- fork lineage: ancestors nearest first, and the highest seq of each that this context sees
    parent_id   uuid,
    ancestors   uuid[] NOT NULL DEFAULT '{}',
    bounds      bigint[] NOT NULL DEFAULT '{}',
    -- seq of the newest message in this context's view; appends take last_seq + 1 under the
    -- row lock, which makes seqs gap-free and unique per context
    last_seq    bigint NOT NULL DEFAULT 0,
    -- retention of its own messages (ctx.set_retention): written longer than retain_max_age
    -- ago (its current revision: written_at, not the caller's created_at), or not among the
    -- newest retain_max_messages seqs of its view (a deleted message keeps its seq until it is
    -- purged), a message is expired: no read returns it, and ctx.sweep deletes it with its
    -- revisions; written longer than compact_older_than ago, ctx.sweep stores it lz4
    -- (each age positive, at most 1000 years; the count positive)
    retain_max_age      interval,
    retain_max_messages integer,
    compact_older_than  interval,
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now(),
    -- The row's rules (each column's above; ancestors and bounds of one length, a parent
    -- exactly when there are ancestors), in one constraint: Postgres parses every CHECK
    -- expression again for each statement that writes a row, and an append updates this one.
    -- The rules are in src/core/row_rules.rs.
    CONSTRAINT contexts_row_check CHECK (ctx.context_row_check(
        resource, metadata, processors, encoding, last_seq, retain_max_age, retain_max_messages,
        compact_older_than, parent_id IS NOT NULL, ancestors, bounds)),
    -- the key leads with the tenant: an id is unique within its tenant, so no row of another
    -- tenant can collide with (or confirm) it; references carry the tenant too, so a row of
    -- one tenant can never point at another's context (foreign keys ignore row-level security)
    PRIMARY KEY (tenant, id),
    FOREIGN KEY (tenant, parent_id) REFERENCES ctx.contexts (tenant, id)
);
CREATE INDEX contexts_parent_idx ON ctx.contexts (tenant, parent_id) WHERE parent_id IS NOT NULL;
-- a resource's contexts (not ordered by updated_at: every append updates it, and an index on it
-- would cost appends their HOT update; a list sorts one resource's contexts)
CREATE INDEX contexts_resource_idx ON ctx.contexts (tenant, resource) WHERE resource IS NOT NULL;
-- the sweep visits only contexts with a retention policy
CREATE INDEX contexts_retention_idx ON ctx.contexts (id)
 WHERE retain_max_age IS NOT NULL OR retain_max_messages IS NOT NULL OR compact_older_than IS NOT NULL;

-- The row type of every message read (ctx.messages, ctx.window, ctx.token_window,
-- ctx.get_messages, ctx.messages_around, ctx.history): one type for drivers to map. A summary
-- reads as role 'summary' with no message_id; ctx.history also returns the revisions that edits
-- and deletes replaced (current = false) and tombstones (deleted = true, content NULL).
CREATE TYPE ctx.message AS (
    context_id  uuid,
    seq         bigint,
    message_id  text,
    revision    integer,
    role        text,
    content     text,
    metadata    jsonb,
    tokens      integer,
    created_at  timestamptz,
    written_at  timestamptz,
    archived    boolean,
    deleted     boolean,
    current     boolean,
    trace_id    text
);

CREATE TABLE ctx.messages (
    context_id  uuid NOT NULL,
    tenant      text NOT NULL DEFAULT ctx.current_tenant(),
    seq         bigint NOT NULL,  -- from 1
    -- the caller's id (a framework's message id) or a generated uuid: unique among the live
    -- messages of a context's view (1 to 256 bytes); edits keep it, and keep the seq
    message_id  text NOT NULL DEFAULT gen_random_uuid()::text,
    -- 1 as appended; each edit (ctx.update_message) and the delete add one. This row is the
    -- current revision; the ones it replaced are in ctx.message_revisions
    revision    integer NOT NULL DEFAULT 1,
    -- a tombstone (ctx.delete_messages): hidden from every read of the view, no content
    deleted     boolean NOT NULL DEFAULT false,
    role        text NOT NULL,  -- system, user, assistant or tool
    -- exactly one of content / content_lz4 / content_enc is set (none in a tombstone):
    -- compaction archives the content in place, lz4-compressed, so forks that still see the
    -- message keep reading it; encrypted contexts store lz4 + AES-256-GCM ciphertext (and
    -- metadata_enc; metadata is {})
    content     text,
    content_lz4 bytea,
    content_enc bytea,
    metadata_enc bytea,
    metadata    jsonb NOT NULL DEFAULT '{}',  -- an object
    tokens      integer NOT NULL,  -- 0 or more
    -- the caller's timestamp of the message (a framework's own), else the append's
    created_at  timestamptz NOT NULL DEFAULT now(),
    -- when this revision was written
    written_at  timestamptz NOT NULL DEFAULT now(),
    -- the W3C trace id of the request that wrote this revision (ctxstore.traceparent), if any
    trace_id    text DEFAULT ctx.current_trace_id(),
    -- keys lead with the tenant: another tenant's insert can never collide with a row
    PRIMARY KEY (tenant, context_id, seq),
    FOREIGN KEY (tenant, context_id) REFERENCES ctx.contexts (tenant, id) ON DELETE CASCADE,
    -- The row's rules (each column's above; one content column set, none in a tombstone,
    -- whose tokens are 0 and metadata_enc NULL), in one constraint: Postgres parses every
    -- CHECK expression again for each statement that writes a row (src/core/row_rules.rs)
    CONSTRAINT messages_row_check CHECK (ctx.message_row_check(
        seq, message_id, revision, role, tokens, deleted,
        num_nonnulls(content, content_lz4, content_enc), metadata_enc IS NOT NULL, metadata))
);
-- context assembly reads every system message of a thread; they are few
CREATE INDEX messages_system_idx ON ctx.messages (tenant, context_id, seq) WHERE role = 'system';
-- a message by its id, in its context or in any of the tenant's (ctx.locate_messages): a
-- tombstone keeps its id until it is purged
CREATE UNIQUE INDEX messages_id_idx ON ctx.messages (tenant, message_id, context_id);
-- a context's messages in the caller's time order (ctx.list_messages), without a sort
CREATE INDEX messages_created_idx ON ctx.messages (tenant, context_id, created_at, seq);
-- the tombstones, by the caller's time: ctx.count_messages counts a thread's entries in the
-- index above without reading the rows, and takes these away
CREATE INDEX messages_deleted_idx ON ctx.messages (tenant, context_id, created_at, seq) WHERE deleted;

-- Revisions that an edit, a delete or a revival replaced, as they were stored (sealed ones keep their
-- ciphertext, bound to their revision): ctx.history reads them; they go with their message
-- (ctx.purge_messages, retention, the context's deletion).
CREATE TABLE ctx.message_revisions (
    context_id  uuid NOT NULL,
    tenant      text NOT NULL DEFAULT ctx.current_tenant(),
    seq         bigint NOT NULL,
    revision    integer NOT NULL CHECK (revision > 0),
    message_id  text NOT NULL,
    deleted     boolean NOT NULL DEFAULT false,
    role        text NOT NULL CHECK (role IN ('system', 'user', 'assistant', 'tool')),
    content     text,
    content_lz4 bytea,
    content_enc bytea,
    metadata_enc bytea,
    metadata    jsonb NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(metadata) = 'object'),
    tokens      integer NOT NULL CHECK (tokens >= 0),
    created_at  timestamptz NOT NULL,
    written_at  timestamptz NOT NULL,
    trace_id    text,
    -- when a later revision replaced it
    replaced_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant, context_id, seq, revision),
    FOREIGN KEY (tenant, context_id, seq) REFERENCES ctx.messages (tenant, context_id, seq) ON DELETE CASCADE,
    CHECK (num_nonnulls(content, content_lz4, content_enc) = CASE WHEN deleted THEN 0 ELSE 1 END)
);

CREATE TABLE ctx.summaries (
    context_id  uuid NOT NULL,
    tenant      text NOT NULL DEFAULT ctx.current_tenant(),
    version     integer NOT NULL CHECK (version > 0),
    -- the summary stands for every message of the view with seq <= through_seq
    through_seq bigint NOT NULL CHECK (through_seq > 0),
    content     text,
    content_enc bytea,  -- encrypted contexts
    metadata    jsonb NOT NULL DEFAULT '{}',
    tokens      integer NOT NULL CHECK (tokens >= 0),
    created_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant, context_id, version),
    FOREIGN KEY (tenant, context_id) REFERENCES ctx.contexts (tenant, id) ON DELETE CASCADE,
    CHECK (num_nonnulls(content, content_enc) = 1)
);

-- pg_dump keeps the rows of extension tables only when asked to.
SELECT pg_catalog.pg_extension_config_dump('ctx.contexts', '');
SELECT pg_catalog.pg_extension_config_dump('ctx.messages', '');
SELECT pg_catalog.pg_extension_config_dump('ctx.summaries', '');
SELECT pg_catalog.pg_extension_config_dump('ctx.message_revisions', '');
