//! Compaction: the oldest active messages replaced by a summary, the originals kept
//! lz4-compressed and readable in the history.

use pgrx::datum::TimestampWithTimeZone;
use pgrx::pg_sys::BuiltinOid::*;
use pgrx::prelude::*;
use pgrx::spi::SpiClient;
use pgrx::{JsonB, Uuid};
use serde_json::{json, Value};

use super::non_negative;
use crate::api::raise::OrRaise;
use crate::core::conversation as rules;
use crate::core::metrics::Counter;
use crate::core::tokenizer::Encoding;
use crate::error::{required, CtxResult};
use crate::gucs;
use crate::plans::Statement;
use crate::services::context_view::*;
use crate::services::keys;
use crate::services::metrics;
use crate::services::transaction::writing;

/// Replaces all but the last `keep_last` active messages with `summary`, keeping the originals
/// lz4-compressed. Returns the summary's seq (the last seq it covers).
#[pg_extern(volatile, parallel_unsafe)]
fn compact(
    context_id: Option<Uuid>,
    summary: Option<&str>,
    keep_last: default!(Option<i32>, 0),
) -> i64 {
    let seq = compact_context(context_id, summary, keep_last).or_raise();
    metrics::count(Counter::Compactions, 1);
    seq
}

fn compact_context(
    context_id: Option<Uuid>,
    summary: Option<&str>,
    keep_last: Option<i32>,
) -> CtxResult<i64> {
    let context_id = required(context_id, "context_id")?;
    let summary = required(summary, "summary")?;
    rules::check_content(summary, gucs::max_message_bytes())?;
    let keep_last = non_negative(keep_last.map(i64::from), "keep_last")?;
    static ARCHIVE: Statement = Statement {
        sql: "UPDATE ctx.messages SET content_lz4 = ctx.lz4_compress(content), content = NULL
               WHERE tenant = $3 AND context_id = $1 AND seq <= $2 AND content IS NOT NULL",
        args: &[UUIDOID, INT8OID, TEXTOID],
        writes: true,
    };
    // The next version is read, then inserted as a value (the context's row is locked, so no
    // other compaction takes it meanwhile): a distributed INSERT … SELECT goes through the
    // coordinator, which Citus refuses under row-level security.
    static NEXT_VERSION: Statement = Statement {
        sql: "SELECT coalesce(max(version), 0) + 1 FROM ctx.summaries WHERE tenant = $2 AND context_id = $1",
        args: &[UUIDOID, TEXTOID],
        writes: false,
    };
    static INSERT_SUMMARY: Statement = Statement {
        sql:
            "INSERT INTO ctx.summaries (context_id, tenant, version, through_seq, content, metadata, tokens)
              VALUES ($1, $6, $7, $2, $3, $4, ctx.count_tokens($3, $5))",
        args: &[UUIDOID, INT8OID, TEXTOID, JSONBOID, TEXTOID, TEXTOID, INT4OID],
        writes: true,
    };
    writing(|client| {
        let view = load_view(client, context_id, true)?;
        let active: Vec<i64> = scan_newest(
            client,
            &view,
            view.compacted_through(),
            view.last_seq,
            i64::MAX,
            Roles::All,
        )?
        .into_iter()
        .rev()
        .map(|(seq, _)| seq)
        .collect();
        let covered = rules::compaction_range(&active, keep_last)?;
        let (first, through) = (covered[0], covered[covered.len() - 1]);
        let metadata =
            json!({"summarized": covered.len(), "from_seq": first, "through_seq": through});
        let plan = ARCHIVE.plan(client)?;
        client.update(
            &*plan,
            None,
            &[
                context_id.into(),
                through.into(),
                view.tenant.as_str().into(),
            ],
        )?;
        if view.encrypted {
            insert_sealed_summary(
                client,
                context_id,
                through,
                summary,
                metadata,
                Encoding::parse(&view.encoding)?,
            )?;
            return Ok(through);
        }
        let plan = NEXT_VERSION.plan(client)?;
        let version: i32 = crate::plans::first_value(client.select(
            &*plan,
            Some(1),
            &[context_id.into(), view.tenant.as_str().into()],
        )?)?
        .unwrap_or(1);
        let plan = INSERT_SUMMARY.plan(client)?;
        client.update(
            &*plan,
            None,
            &[
                context_id.into(),
                through.into(),
                summary.into(),
                JsonB(metadata).into(),
                view.encoding.as_str().into(),
                view.tenant.as_str().into(),
                version.into(),
            ],
        )?;
        Ok(through)
    })
}

/// Writes the summary of an encrypted context (under its row lock: the version is next).
fn insert_sealed_summary(
    client: &mut SpiClient<'_>,
    context_id: Uuid,
    through: i64,
    content: &str,
    metadata: Value,
    encoding: Encoding,
) -> CtxResult<()> {
    let version: i32 = crate::plans::first_value(client.select(
        "SELECT coalesce(max(version), 0) + 1 FROM ctx.summaries
          WHERE tenant = $2 AND context_id = $1",
        Some(1),
        &[
            context_id.into(),
            crate::services::tenant::current()?.into(),
        ],
    )?)?
    .unwrap_or(1);
    insert_summary_version(
        client,
        context_id,
        version,
        through,
        content,
        metadata,
        encoding.count(content) as i32,
        None,
    )
}

#[allow(clippy::too_many_arguments)]
pub(super) fn insert_summary_version(
    client: &mut SpiClient<'_>,
    context_id: Uuid,
    version: i32,
    through: i64,
    content: &str,
    metadata: Value,
    tokens: i32,
    created_at: Option<TimestampWithTimeZone>,
) -> CtxResult<()> {
    let key = keys::data_key(client, &keys::Scope::Context(context_id))?;
    let sealed = keys::seal(&key, content.as_bytes(), &summary_aad(context_id, version))?;
    client.update(
        "INSERT INTO ctx.summaries (context_id, version, through_seq, content_enc, metadata, tokens, created_at)
         VALUES ($1, $2, $3, $4, $5, $6, coalesce($7, now()))",
        None,
        &[
            context_id.into(),
            version.into(),
            through.into(),
            sealed.into(),
            JsonB(metadata).into(),
            tokens.into(),
            created_at.into(),
        ],
    )?;
    Ok(())
}
