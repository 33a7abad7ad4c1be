//! Retention in one bounded batch (ctx.sweep and the background worker). Deletes expired messages (their
//! context's policy, ctx.set_retention), memories and state (their TTL passed), then stores old
//! messages lz4-compressed (compact_older_than). Rows another transaction holds are skipped, not
//! waited for, so appends never wait on a sweep; deletions are audited like any other.

use pgrx::pg_sys::BuiltinOid::{INT8OID, TEXTOID};

use crate::core::metrics::Counter;
use crate::error::{required, CtxError, CtxResult};
use crate::plans::{first_value, Statement};
use crate::services::cluster;
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

/// The same steps for one tenant (`$2`), for a Citus cluster: there a statement may lock rows
/// of one shard group only, so the sweep goes tenant by tenant. The tenant is named on every
/// table reference, the outer DELETE's or UPDATE's too (a row's ctid means something in its own
/// shard only).
macro_rules! tenant_step {
    ($sql:literal) => {
        Statement {
            sql: $sql,
            args: &[INT8OID, TEXTOID],
            writes: true,
        }
    };
}

static TENANT_STEPS: [(Statement, Counter); 6] = [
    (
        tenant_step!(
            "WITH doomed AS (
                 SELECT m.ctid FROM ctx.contexts c
                   JOIN ctx.messages m ON m.tenant = $2 AND m.context_id = c.id AND m.seq <= c.last_seq - c.retain_max_messages
                  WHERE c.tenant = $2 AND c.retain_max_messages IS NOT NULL
                  LIMIT $1 FOR UPDATE OF m SKIP LOCKED FOR KEY SHARE OF c SKIP LOCKED),
             gone AS (DELETE FROM ctx.messages m USING doomed d WHERE m.tenant = $2 AND m.ctid = d.ctid RETURNING 1)
             SELECT count(*) FROM gone"
        ),
        Counter::MessagesExpired,
    ),
    (
        tenant_step!(
            "WITH doomed AS (
                 SELECT m.ctid FROM ctx.contexts c
                   JOIN ctx.messages m ON m.tenant = $2 AND m.context_id = c.id AND m.written_at < now() - c.retain_max_age
                  WHERE c.tenant = $2 AND c.retain_max_age IS NOT NULL
                  LIMIT $1 FOR UPDATE OF m SKIP LOCKED FOR KEY SHARE OF c SKIP LOCKED),
             gone AS (DELETE FROM ctx.messages m USING doomed d WHERE m.tenant = $2 AND m.ctid = d.ctid RETURNING 1)
             SELECT count(*) FROM gone"
        ),
        Counter::MessagesExpired,
    ),
    (
        tenant_step!(
            "WITH doomed AS (
                 SELECT ctid FROM ctx.memories WHERE tenant = $2 AND expires_at <= now()
                  LIMIT $1 FOR UPDATE SKIP LOCKED),
             gone AS (DELETE FROM ctx.memories m USING doomed d WHERE m.tenant = $2 AND m.ctid = d.ctid RETURNING 1)
             SELECT count(*) FROM gone"
        ),
        Counter::MemoriesExpired,
    ),
    (
        tenant_step!(
            "WITH doomed AS (
                 SELECT ctid FROM ctx.state WHERE tenant = $2 AND expires_at <= now()
                  LIMIT $1 FOR UPDATE SKIP LOCKED),
             gone AS (DELETE FROM ctx.state s USING doomed d WHERE s.tenant = $2 AND s.ctid = d.ctid RETURNING 1)
             SELECT count(*) FROM gone"
        ),
        Counter::StateExpired,
    ),
    (
        tenant_step!(
            "WITH doomed AS (
                 SELECT ctid FROM ctx.llm_cache WHERE tenant = $2 AND expires_at <= now()
                  LIMIT $1 FOR UPDATE SKIP LOCKED),
             gone AS (DELETE FROM ctx.llm_cache c USING doomed d WHERE c.tenant = $2 AND c.ctid = d.ctid RETURNING 1)
             SELECT count(*) FROM gone"
        ),
        Counter::LlmCacheExpired,
    ),
    (
        tenant_step!(
            "WITH doomed AS (
                 SELECT m.ctid FROM ctx.contexts c
                   JOIN ctx.messages m ON m.tenant = $2 AND m.context_id = c.id AND m.content IS NOT NULL
                                      AND m.written_at < now() - c.compact_older_than
                  WHERE c.tenant = $2 AND c.compact_older_than IS NOT NULL
                  LIMIT $1 FOR UPDATE OF m SKIP LOCKED FOR KEY SHARE OF c SKIP LOCKED),
             squeezed AS (
                 UPDATE ctx.messages m SET content_lz4 = ctx.lz4_compress(m.content), content = NULL
                   FROM doomed d WHERE m.tenant = $2 AND m.ctid = d.ctid RETURNING 1)
             SELECT count(*) FROM squeezed"
        ),
        Counter::MessagesCompressed,
    ),
];

/// The tenants a sweep on a Citus cluster visits: those with a retention policy on a context
/// or an expired memory, state value or cache entry (a read of every shard, no lock).
static SWEPT_TENANTS: Statement = Statement {
    sql: "SELECT tenant FROM ctx.contexts
           WHERE retain_max_messages IS NOT NULL OR retain_max_age IS NOT NULL OR compact_older_than IS NOT NULL
          UNION SELECT tenant FROM ctx.memories WHERE expires_at <= now()
          UNION SELECT tenant FROM ctx.state WHERE expires_at <= now()
          UNION SELECT tenant FROM ctx.llm_cache WHERE expires_at <= now()
          ORDER BY 1",
    args: &[],
    writes: false,
};

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
    if cluster::on_worker()? {
        return Ok(0); // the coordinator sweeps the shards; a worker's tables are its shells
    }
    writing(|client| {
        let mut total = 0;
        if cluster::citus() {
            let plan = SWEPT_TENANTS.plan(client)?;
            let tenants = client
                .select(&*plan, None, &[])?
                .map(|row| required(row.get::<String>(1)?, "tenant"))
                .collect::<CtxResult<Vec<String>>>()?;
            for tenant in tenants {
                for (statement, counter) in &TENANT_STEPS {
                    if total >= limit {
                        return Ok(total);
                    }
                    let plan = statement.plan(client)?;
                    let done: i64 = first_value(client.update(
                        &*plan,
                        None,
                        &[(limit - total).into(), tenant.as_str().into()],
                    )?)?
                    .unwrap_or(0);
                    metrics::count(*counter, done as u64);
                    total += done;
                }
            }
            return Ok(total);
        }
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
