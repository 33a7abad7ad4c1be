//! Reading the active view: the buffer (ctx.messages), the last N (ctx.window), the newest
//! that fit a token budget (ctx.token_window), and everything ever appended (ctx.history).

use pgrx::datum::TimestampWithTimeZone;
use pgrx::pg_sys::BuiltinOid::*;
use pgrx::prelude::*;
use pgrx::{JsonB, Uuid};
use serde_json::json;

use super::non_negative;
use crate::api::raise::OrRaise;
use crate::core::conversation as rules;
use crate::core::metrics::{Call, Counter};
use crate::error::{required, CtxResult};
use crate::plans::Statement;
use crate::services::context_view::*;
use crate::services::metrics;

type MessageRow = (
    name!(seq, i64),
    name!(role, String),
    name!(content, String),
    name!(metadata, JsonB),
    name!(tokens, i32),
    name!(created_at, TimestampWithTimeZone),
);

type HistoryRow = (
    name!(seq, i64),
    name!(role, String),
    name!(content, String),
    name!(metadata, JsonB),
    name!(tokens, i32),
    name!(created_at, TimestampWithTimeZone),
    name!(archived, bool),
    name!(trace_id, Option<String>),
);

/// A message as the read functions return it.
fn message_row(row: Row) -> MessageRow {
    (
        row.seq,
        row.role,
        row.content,
        JsonB(row.metadata),
        row.tokens,
        row.created_at,
    )
}

/// A message or summary as ctx.history returns it.
fn history_row(row: Row) -> HistoryRow {
    let (archived, trace_id) = (row.archived, row.trace_id.clone());
    let (seq, role, content, metadata, tokens, created_at) = message_row(row);
    (
        seq, role, content, metadata, tokens, created_at, archived, trace_id,
    )
}

/// A read call: its latency, the kind of window served, and the messages returned.
fn served(window: Option<Counter>, read: impl FnOnce() -> CtxResult<Vec<Row>>) -> Vec<Row> {
    let rows = metrics::timed(Call::Read, read).or_raise();
    if let Some(window) = window {
        metrics::count(window, 1);
    }
    metrics::count(Counter::MessagesRead, rows.len() as u64);
    rows
}

/// Buffer memory: the latest summary (if newer than since_seq) and the active messages after
/// since_seq, oldest first, at most max_rows rows.
#[pg_extern(stable, parallel_safe)]
fn messages(
    context_id: Option<Uuid>,
    since_seq: default!(Option<i64>, 0),
    max_rows: default!(Option<i32>, "NULL"),
) -> TableIterator<
    'static,
    (
        name!(seq, i64),
        name!(role, String),
        name!(content, String),
        name!(metadata, JsonB),
        name!(tokens, i32),
        name!(created_at, TimestampWithTimeZone),
    ),
> {
    TableIterator::new(
        served(None, || read_messages(context_id, since_seq, max_rows))
            .into_iter()
            .map(message_row),
    )
}

fn read_messages(
    context_id: Option<Uuid>,
    since_seq: Option<i64>,
    max_rows: Option<i32>,
) -> CtxResult<Vec<Row>> {
    let context_id = required(context_id, "context_id")?;
    let since_seq = non_negative(since_seq, "since_seq")?;
    let max_rows = match max_rows {
        Some(n) => Some(non_negative(Some(n as i64), "max_rows")?),
        None => None,
    };
    Spi::connect(|client| {
        let view = load_view(client, context_id, false)?;
        let mut rows = Vec::new();
        let mut room = max_rows.unwrap_or(i64::MAX);
        if let Some(summary) = view
            .summary
            .as_ref()
            .filter(|s| s.seq > since_seq && room > 0)
        {
            rows.push(summary.clone());
            room -= 1;
        }
        let after = since_seq.max(view.compacted_through());
        if room > 0 {
            rows.extend(read_range(
                client,
                &view,
                after,
                view.last_seq,
                max_rows.map(|_| room),
                Roles::All,
            )?);
        }
        Ok(rows)
    })
}

/// The last `last_n` rows of the active view (the summary is its first row), oldest first.
// parallel restricted: read processors may be user functions that are not parallel safe
#[pg_extern(stable, parallel_restricted)]
fn window(
    context_id: Option<Uuid>,
    last_n: Option<i32>,
) -> TableIterator<
    'static,
    (
        name!(seq, i64),
        name!(role, String),
        name!(content, String),
        name!(metadata, JsonB),
        name!(tokens, i32),
        name!(created_at, TimestampWithTimeZone),
    ),
> {
    TableIterator::new(
        served(Some(Counter::WindowsLastN), || {
            read_window(context_id, last_n)
        })
        .into_iter()
        .map(message_row),
    )
}

fn read_window(context_id: Option<Uuid>, last_n: Option<i32>) -> CtxResult<Vec<Row>> {
    let context_id = required(context_id, "context_id")?;
    let last_n = non_negative(last_n.map(i64::from), "last_n")?;
    Spi::connect(|client| {
        let view = load_view(client, context_id, false)?;
        if last_n == 0 {
            return Ok(Vec::new());
        }
        let pipeline = view.read_pipeline(client, None)?;
        if !pipeline.reads_unchanged() {
            let mut budget = i64::MAX;
            let (kept, exhausted) =
                newest_processed(client, &view, &mut budget, last_n, Roles::All, &pipeline)?;
            let mut rows = Vec::new();
            // the summary stands for what comes before the window: only when nothing is left
            // out in between
            if exhausted && (kept.len() as i64) < last_n {
                rows.extend(view.summary.clone());
            }
            rows.extend(kept);
            return Ok(rows);
        }
        let after = view.compacted_through();
        let newest = scan_newest(client, &view, after, view.last_seq, last_n, Roles::All)?;
        let mut rows = Vec::new();
        if (newest.len() as i64) < last_n {
            rows.extend(view.summary.clone());
        }
        if let (Some(&(top, _)), Some(&(oldest, _))) = (newest.first(), newest.last()) {
            rows.extend(read_range(
                client,
                &view,
                oldest - 1,
                top,
                None,
                Roles::All,
            )?);
        }
        Ok(rows)
    })
}

/// The newest messages whose stored token counts fit in `max_tokens`, oldest first, after the
/// latest summary when it fits (it counts toward the budget). Reads O(window) rows.
#[pg_extern(stable, parallel_restricted)]
fn token_window(
    context_id: Option<Uuid>,
    max_tokens: Option<i32>,
) -> TableIterator<
    'static,
    (
        name!(seq, i64),
        name!(role, String),
        name!(content, String),
        name!(metadata, JsonB),
        name!(tokens, i32),
        name!(created_at, TimestampWithTimeZone),
    ),
> {
    TableIterator::new(
        served(Some(Counter::WindowsTokens), || {
            read_token_window(context_id, max_tokens)
        })
        .into_iter()
        .map(message_row),
    )
}

fn read_token_window(context_id: Option<Uuid>, max_tokens: Option<i32>) -> CtxResult<Vec<Row>> {
    let context_id = required(context_id, "context_id")?;
    let mut budget = non_negative(max_tokens.map(i64::from), "max_tokens")?;
    Spi::connect(|client| {
        let view = load_view(client, context_id, false)?;
        let mut rows = Vec::new();
        if let Some(summary) = view
            .summary
            .as_ref()
            .filter(|s| i64::from(s.tokens) <= budget)
        {
            budget -= i64::from(summary.tokens);
            rows.push(summary.clone());
        }
        let pipeline = view.read_pipeline(client, None)?;
        if pipeline.reads_unchanged() {
            rows.extend(newest_within(client, &view, &mut budget, Roles::All)?);
        } else {
            rows.extend(
                newest_processed(client, &view, &mut budget, i64::MAX, Roles::All, &pipeline)?.0,
            );
        }
        Ok(rows)
    })
}

/// Every message ever appended to the context's view (archived ones decompressed) and every
/// summary, in seq order; a summary follows the last message it covers.
// (pgrx reads the column names from this signature: no type alias)
#[allow(clippy::type_complexity)]
#[pg_extern(stable, parallel_safe)]
fn history(
    context_id: Option<Uuid>,
) -> TableIterator<
    'static,
    (
        name!(seq, i64),
        name!(role, String),
        name!(content, String),
        name!(metadata, JsonB),
        name!(tokens, i32),
        name!(created_at, TimestampWithTimeZone),
        name!(archived, bool),
        name!(trace_id, Option<String>),
    ),
> {
    TableIterator::new(
        served(None, || read_history(context_id))
            .into_iter()
            .map(history_row),
    )
}

fn read_history(context_id: Option<Uuid>) -> CtxResult<Vec<Row>> {
    let context_id = required(context_id, "context_id")?;
    static SUMMARIES: Statement = Statement {
        sql: "SELECT through_seq, content, metadata, tokens, created_at, version, content_enc
                FROM ctx.summaries WHERE context_id = $1 ORDER BY version",
        args: &[UUIDOID],
        writes: false,
    };
    Spi::connect(|client| {
        let view = load_view(client, context_id, false)?;
        let messages = read_range(client, &view, 0, view.last_seq, None, Roles::All)?;
        let plan = SUMMARIES.plan(client)?;
        let table = client.select(&*plan, None, &[context_id.into()])?;
        let rows = table.collect::<Vec<_>>();
        let latest = rows.len();
        let mut summaries = Vec::with_capacity(latest);
        for (i, row) in rows.into_iter().enumerate() {
            summaries.push(Row {
                seq: required(row.get(1)?, "through_seq")?,
                role: rules::SUMMARY_ROLE.to_string(),
                content: match row.get::<Vec<u8>>(7)? {
                    Some(sealed) => open_summary(
                        client,
                        context_id,
                        required(row.get(6)?, "version")?,
                        &sealed,
                    )?,
                    None => required(row.get(2)?, "content")?,
                },
                metadata: row.get::<JsonB>(3)?.map_or(json!({}), |j| j.0),
                tokens: required(row.get(4)?, "tokens")?,
                created_at: required(row.get(5)?, "created_at")?,
                archived: i + 1 < latest, // superseded by a later compaction
                trace_id: None,
            });
        }
        // Merge: summaries follow the message with their through_seq (boundaries never decrease).
        let mut merged = Vec::with_capacity(messages.len() + summaries.len());
        let mut pending = summaries.into_iter().peekable();
        for message in messages {
            while pending.peek().is_some_and(|s| s.seq < message.seq) {
                merged.extend(pending.next());
            }
            merged.push(message);
        }
        merged.extend(pending);
        Ok(merged)
    })
}
