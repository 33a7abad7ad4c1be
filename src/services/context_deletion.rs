//! Deleting contexts: a context (and its forks with `cascade`), its working memory, the data
//! keys of encrypted ones and, when asked, the memories sourced from it — one statement, shared
//! by ctx.delete_context and crypto-shredding.

use pgrx::pg_sys::BuiltinOid::*;
use pgrx::spi::SpiClient;
use pgrx::Uuid;

use crate::error::CtxResult;
use crate::plans::Statement;
use crate::services::state_values::working_memory_key;

/// Deletes a context (and its forks with `cascade`), its working memory, the data keys of
/// encrypted ones (shredded keys keep their tombstone) and, when asked, the memories sourced
/// from it. Returns the number of contexts deleted.
pub(crate) fn delete_rows(
    client: &mut SpiClient<'_>,
    context_id: Uuid,
    cascade: bool,
    forget_memories: bool,
) -> CtxResult<i64> {
    // Memories sourced from the deleted contexts are erased only when asked; otherwise they
    // outlive them, their source_context set NULL here (the foreign key takes no action: a
    // table distributed by tenant cannot have one that sets part of its key NULL).
    static DELETE: Statement = Statement {
        sql: "WITH gone AS (
                  DELETE FROM ctx.contexts
                   WHERE tenant = $5 AND (id = $1 OR ($2 AND ancestors @> ARRAY[$1]))
               RETURNING tenant, id),
              forgotten AS (
                  DELETE FROM ctx.memories m USING gone g
                   WHERE $3 AND m.tenant = $5 AND m.source_context = g.id),
              detached AS (
                  UPDATE ctx.memories m SET source_context = NULL FROM gone g
                   WHERE NOT $3 AND m.tenant = $5 AND m.source_context = g.id),
              working AS (
                  DELETE FROM ctx.state s USING gone g
                   WHERE s.tenant = $5 AND s.ns_key = $4 AND s.key = g.id::text),
              unkeyed AS (
                  DELETE FROM ctx.data_keys k USING gone g
                   WHERE k.tenant = $5 AND k.scope = 'context:' || g.id AND k.wrapped IS NOT NULL)
              SELECT count(*) FROM gone",
        args: &[UUIDOID, BOOLOID, BOOLOID, TEXTOID, TEXTOID],
        writes: true,
    };
    // The forks' rows are locked first, in a statement of their own, as the caller locked the
    // context's: a memory sourced from one of them and committed before the lock is seen (and
    // its source cleared) by the deletion's snapshot, and none can be added after it.
    static LOCK_FORKS: Statement = Statement {
        sql: "SELECT 1 FROM ctx.contexts WHERE tenant = $2 AND ancestors @> ARRAY[$1] ORDER BY id FOR UPDATE",
        args: &[UUIDOID, TEXTOID],
        writes: true,
    };
    if cascade {
        let plan = LOCK_FORKS.plan(client)?;
        client.update(
            &*plan,
            None,
            &[
                context_id.into(),
                crate::services::tenant::current()?.into(),
            ],
        )?;
    }
    let plan = DELETE.plan(client)?;
    let deleted: Option<i64> = client
        .update(
            &*plan,
            Some(1),
            &[
                context_id.into(),
                cascade.into(),
                forget_memories.into(),
                working_memory_key().into(),
                crate::services::tenant::current()?.into(),
            ],
        )?
        .first()
        .get_one()?;
    Ok(deleted.unwrap_or(0))
}
