-- Size views: what each context, memory namespace and state namespace holds. Security
-- invoker: a tenant sees only its own rows (row-level security applies to the caller).

CREATE VIEW ctx.context_stats WITH (security_invoker = true) AS
SELECT c.id AS context_id,
       c.tenant,
       c.name,
       c.parent_id,
       c.encrypted,
       -- live messages (tombstones are counted in deleted)
       m.messages,
       m.archived,
       -- hidden from every read by the retention policy, not yet swept
       m.expired,
       m.tokens,
       m.bytes,
       (SELECT count(*) FROM ctx.summaries s WHERE s.tenant = c.tenant AND s.context_id = c.id) AS summaries,
       greatest(c.updated_at, m.last_written) AS last_activity,
       c.retain_max_age,
       c.retain_max_messages,
       c.compact_older_than,
       m.deleted,
       -- earlier revisions of edited or deleted messages (ctx.history shows them)
       (SELECT count(*) FROM ctx.message_revisions r WHERE r.tenant = c.tenant AND r.context_id = c.id) AS revisions
  FROM ctx.contexts c
  -- (an aggregate per context, not a GROUP BY: the view depends on no key of ctx.contexts)
 CROSS JOIN LATERAL (
       SELECT count(*) FILTER (WHERE NOT x.deleted) AS messages,
              count(*) FILTER (WHERE x.content_lz4 IS NOT NULL) AS archived,
              count(*) FILTER (WHERE x.seq <= c.last_seq - c.retain_max_messages
                                  OR x.written_at < now() - c.retain_max_age) AS expired,
              coalesce(sum(x.tokens), 0)::bigint AS tokens,
              coalesce(sum(pg_column_size(x.*)), 0)::bigint AS bytes,
              max(x.written_at) AS last_written,
              count(*) FILTER (WHERE x.deleted) AS deleted
         FROM ctx.messages x
        WHERE x.tenant = c.tenant AND x.context_id = c.id) m;

CREATE VIEW ctx.namespace_stats WITH (security_invoker = true) AS
SELECT 'memories'::text AS store,
       tenant,
       namespace,
       count(*) FILTER (WHERE valid_to IS NULL AND (expires_at IS NULL OR expires_at > now())) AS live,
       count(*) FILTER (WHERE valid_to IS NULL AND expires_at <= now()) AS expired,
       count(*) AS versions,
       coalesce(sum(pg_column_size(m.*)), 0)::bigint AS bytes,
       max(created_at) AS last_write
  FROM ctx.memories m
 GROUP BY tenant, namespace
UNION ALL
SELECT 'state',
       tenant,
       namespace,
       count(*) FILTER (WHERE version > 0 AND (expires_at IS NULL OR expires_at > now())),
       count(*) FILTER (WHERE expires_at <= now()),
       count(*),
       coalesce(sum(pg_column_size(s.*)), 0)::bigint,
       max(updated_at)
  FROM ctx.state s
 GROUP BY tenant, namespace;
