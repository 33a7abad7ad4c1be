-- Retention: per-context message policies, and the sweep that applies every policy. A message
-- is expired under its own context's policy: no read returns it, and the sweep deletes it. A
-- fork reads its parent's messages under both policies, but only the parent's deletes them.
-- Expiry only ever grows (last_seq and now() only move forward), so a sweep working from
-- an older snapshot never deletes a row that a newer one would still show.

CREATE FUNCTION ctx.set_retention(
    context_id uuid,
    max_age interval DEFAULT NULL,
    max_messages integer DEFAULT NULL,
    compact_older_than interval DEFAULT NULL) RETURNS void
LANGUAGE plpgsql AS $body$
BEGIN
    IF set_retention.context_id IS NULL THEN
        RAISE EXCEPTION 'context_id must not be NULL'
            USING ERRCODE = '22004', HINT = 'pass the id ctx.create_context() returned';
    END IF;
    IF set_retention.max_age <= interval '0' THEN
        RAISE EXCEPTION 'max_age must be a positive interval, got %', set_retention.max_age
            USING ERRCODE = '22023', HINT = 'e.g. interval ''30 days''; NULL keeps messages of any age';
    END IF;
    IF set_retention.max_messages < 1 THEN
        RAISE EXCEPTION 'max_messages must be at least 1, got %', set_retention.max_messages
            USING ERRCODE = '22023', HINT = 'NULL keeps any number of messages; ctx.delete_context removes them all';
    END IF;
    IF set_retention.compact_older_than <= interval '0' THEN
        RAISE EXCEPTION 'compact_older_than must be a positive interval, got %', set_retention.compact_older_than
            USING ERRCODE = '22023', HINT = 'e.g. interval ''1 day''; NULL leaves messages uncompressed';
    END IF;
    UPDATE ctx.contexts c
       SET retain_max_age = set_retention.max_age,
           retain_max_messages = set_retention.max_messages,
           compact_older_than = set_retention.compact_older_than
     WHERE c.id = set_retention.context_id;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'context "%" does not exist', set_retention.context_id
            USING ERRCODE = '42704', HINT = 'create it with ctx.create_context(), or check the id (it may have been deleted)';
    END IF;
END
$body$;

-- Applies retention in one bounded batch: deletes expired messages (their context's policy),
-- memories and state (their TTL passed), then stores old messages lz4-compressed
-- (compact_older_than). Rows another transaction holds are skipped, not waited for, so appends
-- never wait on a sweep. Deletions are audited like any other. Returns how many rows it
-- deleted or compressed: call it until it returns 0.
CREATE FUNCTION ctx.sweep(max_rows integer DEFAULT 10000) RETURNS bigint
LANGUAGE plpgsql AS $body$
DECLARE
    done bigint;
    total bigint := 0;
BEGIN
    IF sweep.max_rows IS NULL OR sweep.max_rows < 1 THEN
        RAISE EXCEPTION 'max_rows must be a positive number of rows, got %', sweep.max_rows
            USING ERRCODE = '22023', HINT = 'sweep in batches, e.g. ctx.sweep(10000), until it returns 0';
    END IF;
    -- messages beyond their context's max_messages (a primary key range per context)
    WITH doomed AS (
        SELECT m.ctid FROM ctx.contexts c
          JOIN ctx.messages m ON m.context_id = c.id AND m.seq <= c.last_seq - c.retain_max_messages
         WHERE c.retain_max_messages IS NOT NULL
         LIMIT sweep.max_rows FOR UPDATE OF m SKIP LOCKED),
    gone AS (DELETE FROM ctx.messages m USING doomed d WHERE m.ctid = d.ctid RETURNING 1)
    SELECT count(*) INTO done FROM gone;
    total := total + done;
    -- messages older than their context's max_age
    IF total < sweep.max_rows THEN
        WITH doomed AS (
            SELECT m.ctid FROM ctx.contexts c
              JOIN ctx.messages m ON m.context_id = c.id AND m.created_at < now() - c.retain_max_age
             WHERE c.retain_max_age IS NOT NULL
             LIMIT sweep.max_rows - total FOR UPDATE OF m SKIP LOCKED),
        gone AS (DELETE FROM ctx.messages m USING doomed d WHERE m.ctid = d.ctid RETURNING 1)
        SELECT count(*) INTO done FROM gone;
        total := total + done;
    END IF;
    IF total < sweep.max_rows THEN
        WITH doomed AS (
            SELECT ctid FROM ctx.memories WHERE expires_at <= now()
             LIMIT sweep.max_rows - total FOR UPDATE SKIP LOCKED),
        gone AS (DELETE FROM ctx.memories m USING doomed d WHERE m.ctid = d.ctid RETURNING 1)
        SELECT count(*) INTO done FROM gone;
        total := total + done;
    END IF;
    IF total < sweep.max_rows THEN
        WITH doomed AS (
            SELECT ctid FROM ctx.state WHERE expires_at <= now()
             LIMIT sweep.max_rows - total FOR UPDATE SKIP LOCKED),
        gone AS (DELETE FROM ctx.state s USING doomed d WHERE s.ctid = d.ctid RETURNING 1)
        SELECT count(*) INTO done FROM gone;
        total := total + done;
    END IF;
    -- plain messages past compact_older_than: compressed in place, still readable
    IF total < sweep.max_rows THEN
        WITH doomed AS (
            SELECT m.ctid FROM ctx.contexts c
              JOIN ctx.messages m ON m.context_id = c.id AND m.content IS NOT NULL
                                 AND m.created_at < now() - c.compact_older_than
             WHERE c.compact_older_than IS NOT NULL
             LIMIT sweep.max_rows - total FOR UPDATE OF m SKIP LOCKED),
        squeezed AS (
            UPDATE ctx.messages m SET content_lz4 = ctx.lz4_compress(m.content), content = NULL
              FROM doomed d WHERE m.ctid = d.ctid RETURNING 1)
        SELECT count(*) INTO done FROM squeezed;
        total := total + done;
    END IF;
    RETURN total;
END
$body$;
