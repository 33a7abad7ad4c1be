-- Processors: the transforms every write (append, remember, put) and read (windows,
-- build_context) goes through. Built-ins are rows here too, so they can be listed, ordered and
-- switched off like user processors; their parameters live with each context or namespace.

CREATE TABLE ctx.processor_registry (
    -- the tenant it acts for; NULL: every tenant (the built-ins, and what a superuser or a
    -- BYPASSRLS role registers with all_tenants => true). A tenant's row named like a
    -- built-in switches that built-in for the tenant only.
    tenant      text DEFAULT ctx.current_tenant(),
    name        text NOT NULL CHECK (name ~ '^[a-z_][a-z0-9_]{0,62}$'),
    stage       text NOT NULL CHECK (stage IN ('write', 'read')),
    -- a function jsonb -> jsonb (NULL drops the item); NULL for built-ins
    fn          regprocedure,
    -- lower runs first; built-ins and user processors share one order per stage
    priority    integer NOT NULL CHECK (priority BETWEEN 0 AND 10000),
    scope       jsonb NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(scope) = 'object'),
    enabled     boolean NOT NULL DEFAULT true,
    description text NOT NULL DEFAULT '',
    created_at  timestamptz NOT NULL DEFAULT now(),
    UNIQUE NULLS NOT DISTINCT (tenant, name)
);
-- Every tenant sees the processors that act for it, and changes only its own: what acts for
-- every tenant is changed by roles that bypass row-level security.
ALTER TABLE ctx.processor_registry ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant_reads ON ctx.processor_registry FOR SELECT
    USING (tenant IS NULL OR tenant = ctx.current_tenant());
CREATE POLICY tenant_writes ON ctx.processor_registry
    USING (tenant = ctx.current_tenant()) WITH CHECK (tenant = ctx.current_tenant());

-- Write-stage built-in parameters by namespace (memories and state); longer prefixes override.
-- Per tenant: one tenant's settings never act on another's namespace of the same name.
CREATE TABLE ctx.namespace_processors (
    tenant      text NOT NULL DEFAULT ctx.current_tenant(),
    namespace   text[] NOT NULL CHECK (cardinality(namespace) BETWEEN 1 AND 32),
    ns_key      text COLLATE "C" NOT NULL,
    config      jsonb NOT NULL CHECK (jsonb_typeof(config) = 'object'),
    updated_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant, ns_key)
);

-- The built-ins (kept equal to core::processors::BUILTINS by a test).
INSERT INTO ctx.processor_registry (tenant, name, stage, priority, description)
SELECT NULL, * FROM (VALUES
    ('normalize', 'write', 10, 'Unicode NFC, CRLF/CR to LF, control characters other than tab and newline removed (messages and memories)'),
    ('size_limit', 'write', 20, 'rejects (SQLSTATE 54000) a message or memory above N tokens; off by default'),
    ('redact_secrets', 'write', 50, 'card numbers (Luhn), API keys and tokens, JWTs, private keys, password=... values; on by default'),
    ('redact_pii', 'write', 51, 'email addresses and phone numbers (true, or a list of "email", "phone"); off by default'),
    ('drop_roles', 'read', 10, 'drops messages of the listed roles'),
    ('drop_tool_messages', 'read', 20, 'drops tool results and assistant messages that only carry tool calls'),
    ('truncate', 'read', 900, 'cuts each message to N tokens, marked with "…[truncated]"'),
    ('dedup', 'read', 950, 'keeps only the newest of messages with the same role and stored content'),
    ('token_limit', 'read', 1000, 'at most N tokens of messages in all (the newest that fit)')) AS b;

-- The processors acting for the caller's tenant (its own switches of built-ins first), with
-- the tenant each row belongs to (NULL: every tenant). security_invoker: the caller's
-- row-level security applies, so no filter pushed into the view sees other tenants' rows.
CREATE VIEW ctx.processors WITH (security_invoker = true) AS
SELECT name, stage,
       CASE WHEN fn IS NULL THEN 'builtin' ELSE 'user' END AS kind,
       fn AS function, priority, scope, enabled, description, created_at, tenant
  FROM (SELECT DISTINCT ON (r.name) r.name, r.stage, r.fn, r.priority, r.scope, r.enabled, r.description,
               r.created_at, r.tenant
          FROM ctx.processor_registry r
         WHERE r.tenant IS NULL OR r.tenant = ctx.current_tenant()
         ORDER BY r.name, (r.tenant IS NULL AND r.fn IS NOT NULL) DESC, r.tenant NULLS LAST) p
 ORDER BY stage DESC, priority, name;

-- User processors, tenants' settings of built-ins and namespace settings are data: pg_dump
-- keeps them. Built-in rows come back with CREATE EXTENSION (an all-tenants disable_processor
-- of a built-in is not dumped).
SELECT pg_catalog.pg_extension_config_dump('ctx.processor_registry', 'WHERE fn IS NOT NULL OR tenant IS NOT NULL');
SELECT pg_catalog.pg_extension_config_dump('ctx.namespace_processors', '');
