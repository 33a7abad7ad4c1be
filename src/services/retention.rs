//! Retention in one bounded batch (ctx.sweep and the background worker). Deletes expired messages (their
//! context's policy, ctx.set_retention), memories and state (their TTL passed), then stores old
//! messages lz4-compressed (compact_older_than). Rows another transaction holds are skipped, not
//! waited for, so appends never wait on a sweep; deletions are audited like any other.

use pgrx::pg_sys::BuiltinOid::INT8OID;

use crate::core::metrics::Counter;
use crate::error::{CtxError, CtxResult};
use crate::plans::{first_value, Statement};
use crate::services::metrics;
use crate::services::transaction::writing;

/// Each step takes at most $1 rows and returns how many it changed.
macro_rules! step {
    ($sql:literal) => {
        Statement {
            sql: $sql,
            args: &[INT8OID],
            writes: true,
        }
    };
}

static STEPS: [(Statement, Counter); 6] = [
    // messages beyond their context's max_messages: a primary key range per context
    (
        step!(
            "WITH doomed AS (
                 SELECT m.ctid FROM ctx.contexts c
                   JOIN ctx.messages m ON m.tenant = c.tenant AND m.context_id = c.id AND m.seq <= c.last_seq - c.retain_max_messages
                  WHERE c.retain_max_messages IS NOT NULL
                  LIMIT $1 FOR UPDATE OF m SKIP LOCKED FOR KEY SHARE OF c SKIP LOCKED),
             gone AS (DELETE FROM ctx.messages m USING doomed d WHERE m.ctid = d.ctid RETURNING 1)
             SELECT count(*) FROM gone"
        ),
        Counter::MessagesExpired,
    ),
    // messages older than their context's max_age
    (
        step!(
            "WITH doomed AS (
                 SELECT m.ctid FROM ctx.contexts c
                   JOIN ctx.messages m ON m.tenant = c.tenant AND m.context_id = c.id AND m.written_at < now() - c.retain_max_age
                  WHERE c.retain_max_age IS NOT NULL
                  LIMIT $1 FOR UPDATE OF m SKIP LOCKED FOR KEY SHARE OF c SKIP LOCKED),
             gone AS (DELETE FROM ctx.messages m USING doomed d WHERE m.ctid = d.ctid RETURNING 1)
             SELECT count(*) FROM gone"
        ),
        Counter::MessagesExpired,
    ),
    (
        step!(
            "WITH doomed AS (
                 SELECT ctid FROM ctx.memories WHERE expires_at <= now()
                  LIMIT $1 FOR UPDATE SKIP LOCKED),
             gone AS (DELETE FROM ctx.memories m USING doomed d WHERE m.ctid = d.ctid RETURNING 1)
             SELECT count(*) FROM gone"
        ),
        Counter::MemoriesExpired,
    ),
    (
        step!(
            "WITH doomed AS (
                 SELECT ctid FROM ctx.state WHERE expires_at <= now()
                  LIMIT $1 FOR UPDATE SKIP LOCKED),
             gone AS (DELETE FROM ctx.state s USING doomed d WHERE s.ctid = d.ctid RETURNING 1)
             SELECT count(*) FROM gone"
        ),
        Counter::StateExpired,
    ),
    (
        step!(
            "WITH doomed AS (
                 SELECT ctid FROM ctx.llm_cache WHERE expires_at <= now()
                  LIMIT $1 FOR UPDATE SKIP LOCKED),
             gone AS (DELETE FROM ctx.llm_cache c USING doomed d WHERE c.ctid = d.ctid RETURNING 1)
             SELECT count(*) FROM gone"
        ),
        Counter::LlmCacheExpired,
    ),
    // plain messages past compact_older_than: compressed in place, still readable
    (
        step!(
            "WITH doomed AS (
                 SELECT m.ctid FROM ctx.contexts c
                   JOIN ctx.messages m ON m.tenant = c.tenant AND m.context_id = c.id AND m.content IS NOT NULL
                                      AND m.written_at < now() - c.compact_older_than
                  WHERE c.compact_older_than IS NOT NULL
                  LIMIT $1 FOR UPDATE OF m SKIP LOCKED FOR KEY SHARE OF c SKIP LOCKED),
             squeezed AS (
                 UPDATE ctx.messages m SET content_lz4 = ctx.lz4_compress(m.content), content = NULL
                   FROM doomed d WHERE m.ctid = d.ctid RETURNING 1)
             SELECT count(*) FROM squeezed"
        ),
        Counter::MessagesCompressed,
    ),
];

/// One sweep of at most `max_rows` rows; see ctx.sweep.
pub(crate) fn run(max_rows: Option<i32>) -> CtxResult<i64> {
    let limit = match max_rows {
        Some(n) if n >= 1 => i64::from(n),
        other => {
            return Err(CtxError::invalid(format!(
                "max_rows must be a positive number of rows, got {}",
                other.map_or("NULL".to_string(), |n| n.to_string())
            ))
            .with_hint("sweep in batches, e.g. ctx.sweep(10000), until it returns 0"))
        }
    };
    writing(|client| {
        let mut total = 0;
        for (statement, counter) in &STEPS {
            if total >= limit {
                break;
            }
            let plan = statement.plan(client)?;
            let done: i64 =
                first_value(client.update(&*plan, None, &[(limit - total).into()])?)?.unwrap_or(0);
            metrics::count(*counter, done as u64);
            total += done;
        }
        Ok(total)
    })
}
