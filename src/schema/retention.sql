-- Retention: per-context message policies, and the sweep that applies every policy. A message
-- is expired under its own context's policy: no read returns it, and the sweep deletes it. A
-- fork reads its parent's messages under both policies, but only the parent's deletes them.
-- Under one policy, expiry only ever grows (last_seq and now() only move forward), so a sweep
-- working from an older snapshot never deletes a row that a newer one would still show; a
-- policy change waits for running sweeps of that context (see set_retention). Loosening a
-- policy makes expired messages that were not swept yet readable again.

CREATE FUNCTION ctx.set_retention(
    context_id uuid,
    max_age interval DEFAULT NULL,
    max_messages integer DEFAULT NULL,
    compact_older_than interval DEFAULT NULL) RETURNS void
LANGUAGE plpgsql AS $body$
DECLARE
    caller_tenant text := ctx.current_tenant();
BEGIN
    IF set_retention.context_id IS NULL THEN
        RAISE EXCEPTION 'context_id must not be NULL'
            USING ERRCODE = '22004', HINT = 'pass the id ctx.create_context() returned';
    END IF;
    IF set_retention.max_age <= interval '0' OR set_retention.max_age > interval '1000 years' THEN
        RAISE EXCEPTION 'max_age must be a positive interval of at most 1000 years, got %', set_retention.max_age
            USING ERRCODE = '22023', HINT = 'e.g. interval ''30 days''; NULL keeps messages of any age';
    END IF;
    IF set_retention.max_messages < 1 THEN
        RAISE EXCEPTION 'max_messages must be at least 1, got %', set_retention.max_messages
            USING ERRCODE = '22023', HINT = 'NULL keeps any number of messages; ctx.delete_context removes them all';
    END IF;
    IF set_retention.compact_older_than <= interval '0' OR set_retention.compact_older_than > interval '1000 years' THEN
        RAISE EXCEPTION 'compact_older_than must be a positive interval of at most 1000 years, got %', set_retention.compact_older_than
            USING ERRCODE = '22023', HINT = 'e.g. interval ''1 day''; NULL leaves messages uncompressed';
    END IF;
    -- FOR UPDATE waits for sweeps working on this context (they hold KEY SHARE) and makes
    -- later ones skip it until this commits: no sweep deletes under a policy being replaced.
    -- Appends take a weaker lock and do not conflict with sweeps.
    PERFORM 1 FROM ctx.contexts c
     WHERE c.tenant = caller_tenant AND c.id = set_retention.context_id FOR UPDATE;
    UPDATE ctx.contexts c
       SET retain_max_age = set_retention.max_age,
           retain_max_messages = set_retention.max_messages,
           compact_older_than = set_retention.compact_older_than
     WHERE c.tenant = caller_tenant AND c.id = set_retention.context_id;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'context "%" does not exist', set_retention.context_id
            USING ERRCODE = '42704', HINT = 'create it with ctx.create_context(), or check the id (it may have been deleted)';
    END IF;
END
$body$;

-- ctx.sweep (src/api/retention.rs) applies every policy in bounded batches.
