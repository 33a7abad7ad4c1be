-- Size views: what each context, memory namespace and state namespace holds. Security
-- invoker: a tenant sees only its own rows (row-level security applies to the caller).

CREATE VIEW ctx.context_stats WITH (security_invoker = true) AS
SELECT c.id AS context_id,
       c.tenant,
       c.name,
       c.parent_id,
       c.encrypted,
       count(m.seq) AS messages,
       count(m.seq) FILTER (WHERE m.content_lz4 IS NOT NULL) AS archived,
       coalesce(sum(m.tokens), 0)::bigint AS tokens,
       coalesce(sum(pg_column_size(m.*)), 0)::bigint AS bytes,
       (SELECT count(*) FROM ctx.summaries s WHERE s.context_id = c.id) AS summaries,
       greatest(c.updated_at, max(m.created_at)) AS last_activity
  FROM ctx.contexts c
  LEFT JOIN ctx.messages m ON m.context_id = c.id
 GROUP BY c.id;

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

-- Retention: removes expired memories and state (their TTL passed; no read returns them any
-- more) in one bounded batch; rows another transaction holds are skipped, not waited for.
-- Deletions are audited like any other. Returns how many rows were removed.
CREATE FUNCTION ctx.sweep(max_rows integer DEFAULT 10000) RETURNS bigint
LANGUAGE plpgsql AS $body$
DECLARE
    removed bigint;
    total bigint := 0;
BEGIN
    IF sweep.max_rows IS NULL OR sweep.max_rows < 1 THEN
        RAISE EXCEPTION 'max_rows must be a positive number of rows, got %', sweep.max_rows
            USING ERRCODE = '22023', HINT = 'sweep in batches, e.g. ctx.sweep(10000), until it returns 0';
    END IF;
    WITH doomed AS (
        SELECT ctid FROM ctx.memories WHERE expires_at <= now()
         LIMIT sweep.max_rows FOR UPDATE SKIP LOCKED),
    gone AS (DELETE FROM ctx.memories m USING doomed d WHERE m.ctid = d.ctid RETURNING 1)
    SELECT count(*) INTO removed FROM gone;
    total := total + removed;
    IF total < sweep.max_rows THEN
        WITH doomed AS (
            SELECT ctid FROM ctx.state WHERE expires_at <= now()
             LIMIT sweep.max_rows - total FOR UPDATE SKIP LOCKED),
        gone AS (DELETE FROM ctx.state s USING doomed d WHERE s.ctid = d.ctid RETURNING 1)
        SELECT count(*) INTO removed FROM gone;
        total := total + removed;
    END IF;
    RETURN total;
END
$body$;
