//! Reading the active view: the buffer (ctx.messages), the last N (ctx.window), the newest
//! that fit a token budget (ctx.token_window), and everything ever appended (ctx.history).

use std::collections::HashMap;

use pgrx::datum::TimestampWithTimeZone;
use pgrx::pg_sys::BuiltinOid::*;
use pgrx::prelude::*;
use pgrx::{JsonB, Uuid};
use serde_json::json;

use super::non_negative;
use crate::api::raise::OrRaise;
use crate::core::conversation as rules;
use crate::core::metrics::{Call, Counter};
use crate::error::{required, CtxError, CtxResult, ErrorKind};
use crate::plans::Statement;
use crate::services::context_view::*;
use crate::services::message_lookup::*;
use crate::services::metrics;

/// The row type of every message read (`ctx.message`).
pub(crate) type Message = pgrx::composite_type!('static, "ctx.message");

/// The attribute types of `ctx.message`, in order: each row is formed from datums of these.
const MESSAGE_TYPES: [pg_sys::BuiltinOid; 14] = [
    UUIDOID,
    INT8OID,
    TEXTOID,
    INT4OID,
    TEXTOID,
    TEXTOID,
    JSONBOID,
    INT4OID,
    TIMESTAMPTZOID,
    TIMESTAMPTZOID,
    BOOLOID,
    BOOLOID,
    BOOLOID,
    TEXTOID,
];

/// Rows of `ctx.message` for a read of `context_id`: the type is looked up and checked once per
/// call, and each row is formed once from its datums.
pub(crate) fn message_rows(context_id: Uuid, rows: Vec<Row>) -> CtxResult<Vec<Message>> {
    let type_oid = crate::plans::type_oid("ctx.message")?;
    let tupdesc = pgrx::PgTupleDesc::for_composite_type_by_oid(type_oid)
        .ok_or_else(|| CtxError::internal("ctx.message is not a composite type"))?;
    // (a changed ctx.message would otherwise be filled with datums of the wrong types)
    let types: Vec<pg_sys::Oid> = tupdesc.iter().map(|a| a.atttypid).collect();
    let expected: Vec<pg_sys::Oid> = MESSAGE_TYPES.iter().map(|&t| t.into()).collect();
    if types != expected {
        return Err(CtxError::internal(
            "ctx.message's attributes are not the ones this build writes",
        )
        .with_hint("reinstall the extension version that matches the loaded library"));
    }
    // One copy of the descriptor serves every row: it is palloc'd in the set-returning call's
    // memory context, which outlives the rows, so it is left for that context to free.
    let shared = tupdesc.as_ptr();
    std::mem::forget(tupdesc);
    rows.into_iter()
        .map(|row| {
            // SAFETY: `shared` stays valid as long as the rows (see above); no release or pfree.
            let borrowed = unsafe { pgrx::PgTupleDesc::from_pg_unchecked(shared) };
            message_tuple(borrowed, context_id, row)
        })
        .collect()
}

fn message_tuple(
    tupdesc: pgrx::PgTupleDesc<'static>,
    context_id: Uuid,
    row: Row,
) -> CtxResult<Message> {
    let is_message = row.message_id.is_some();
    let written_at = row.written_at.or(Some(row.created_at));
    let content = (!row.deleted).then_some(row.content);
    let datums = [
        context_id.into_datum(),
        row.seq.into_datum(),
        row.message_id.into_datum(),
        is_message.then_some(row.revision).into_datum(),
        row.role.into_datum(),
        content.into_datum(),
        row.metadata.into_datum(),
        row.tokens.into_datum(),
        row.created_at.into_datum(),
        written_at.into_datum(),
        row.archived.into_datum(),
        row.deleted.into_datum(),
        row.current.into_datum(),
        row.trace_id.into_datum(),
    ];
    // SAFETY: the datums are of MESSAGE_TYPES, the attribute types message_rows checked.
    unsafe { pgrx::heap_tuple::PgHeapTuple::from_datums(tupdesc, datums) }
        .map_err(|e| CtxError::internal(format!("building a ctx.message row: {e}")))
}

/// A read's rows as `SETOF ctx.message`.
fn served_as_messages(
    window: Option<Counter>,
    context_id: Option<Uuid>,
    read: impl FnOnce() -> CtxResult<Vec<Row>>,
) -> SetOfIterator<'static, Message> {
    let rows = served(window, read);
    // a read that succeeded had a context id
    let context_id = context_id.unwrap_or(Uuid::from_bytes([0; 16]));
    SetOfIterator::new(message_rows(context_id, rows).or_raise())
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
) -> SetOfIterator<'static, pgrx::composite_type!('static, "ctx.message")> {
    served_as_messages(None, context_id, || {
        read_messages(context_id, since_seq, max_rows)
    })
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
) -> SetOfIterator<'static, pgrx::composite_type!('static, "ctx.message")> {
    served_as_messages(Some(Counter::WindowsLastN), context_id, || {
        read_window(context_id, last_n)
    })
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
) -> SetOfIterator<'static, pgrx::composite_type!('static, "ctx.message")> {
    served_as_messages(Some(Counter::WindowsTokens), context_id, || {
        read_token_window(context_id, max_tokens)
    })
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

/// Every message of the context's view with every revision it had (edits, tombstones: flagged
/// `current` / `deleted`), archived ones decompressed, and every summary, in seq order; a
/// summary follows the last message it covers.
#[pg_extern(stable, parallel_safe)]
fn history(
    context_id: Option<Uuid>,
) -> SetOfIterator<'static, pgrx::composite_type!('static, "ctx.message")> {
    served_as_messages(None, context_id, || read_history(context_id))
}

fn read_history(context_id: Option<Uuid>) -> CtxResult<Vec<Row>> {
    let context_id = required(context_id, "context_id")?;
    static SUMMARIES: Statement = Statement {
        sql: "SELECT through_seq, content, metadata, tokens, created_at, version, content_enc
                FROM ctx.summaries
               WHERE tenant = $2 AND context_id = $1 ORDER BY version",
        args: &[UUIDOID, TEXTOID],
        writes: false,
    };
    Spi::connect(|client| {
        let view = load_view(client, context_id, false)?;
        let current = read_range(client, &view, 0, view.last_seq, None, Roles::History)?;
        let owned: Vec<(Uuid, i64)> = current
            .iter()
            .filter(|row| row.revision > 1)
            .filter_map(|row| row.owner.map(|owner| (owner, row.seq)))
            .collect();
        let mut replaced = replaced_revisions(client, &view, &owned)?
            .into_iter()
            .peekable();
        // each message's replaced revisions, then its current one
        let mut messages = Vec::with_capacity(current.len());
        for row in current {
            while replaced.peek().is_some_and(|r| r.seq <= row.seq) {
                messages.extend(replaced.next());
            }
            messages.push(row);
        }
        messages.extend(replaced);
        let plan = SUMMARIES.plan(client)?;
        let table = client.select(
            &*plan,
            None,
            &[context_id.into(), view.tenant.as_str().into()],
        )?;
        let rows = table.collect::<Vec<_>>();
        let latest = rows.len();
        let mut summaries = Vec::with_capacity(latest);
        for (i, row) in rows.into_iter().enumerate() {
            let content = match row.get::<Vec<u8>>(7)? {
                Some(sealed) => open_summary(
                    client,
                    context_id,
                    required(row.get(6)?, "version")?,
                    &sealed,
                )?,
                None => required(row.get(2)?, "content")?,
            };
            summaries.push(Row::summary(
                required(row.get(1)?, "through_seq")?,
                content,
                row.get::<JsonB>(3)?.map_or(json!({}), |j| j.0),
                required(row.get(4)?, "tokens")?,
                required(row.get(5)?, "created_at")?,
                i + 1 < latest, // superseded by a later compaction
            ));
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

/// The live messages with these ids, in seq order (ids the view does not have, or whose
/// message was deleted, are left out). An index probe per id.
#[pg_extern(stable, parallel_safe)]
fn get_messages(
    context_id: Option<Uuid>,
    message_ids: Option<Vec<Option<String>>>,
) -> SetOfIterator<'static, pgrx::composite_type!('static, "ctx.message")> {
    served_as_messages(None, context_id, || read_by_ids(context_id, message_ids))
}

fn read_by_ids(
    context_id: Option<Uuid>,
    message_ids: Option<Vec<Option<String>>>,
) -> CtxResult<Vec<Row>> {
    let context_id = required(context_id, "context_id")?;
    let ids = message_id_list(message_ids)?;
    Spi::connect(|client| {
        let view = load_view(client, context_id, false)?;
        let mut found: Vec<Located> = locate(client, &view, &ids)?
            .into_iter()
            .filter(|at| !at.deleted)
            .collect();
        found.sort_unstable_by_key(|at| at.seq);
        found
            .iter()
            .map(|at| {
                let mut row = read_at(client, &view.tenant, at.owner, at.seq)?;
                row.archived = row.seq <= view.compacted_through();
                Ok(row)
            })
            .collect()
    })
}

/// The ids of a by-id call: not NULL, none NULL, each 1 to 256 bytes.
pub(super) fn message_id_list(message_ids: Option<Vec<Option<String>>>) -> CtxResult<Vec<String>> {
    let ids = required(message_ids, "message_ids")?;
    ids.into_iter()
        .enumerate()
        .map(|(i, id)| {
            let id = id.ok_or_else(|| {
                CtxError::new(
                    ErrorKind::NullValue,
                    format!("message_ids[{}] is NULL", i + 1),
                )
                .with_hint("pass message ids, none of them NULL")
            })?;
            rules::check_message_id(&id)?;
            Ok(id)
        })
        .collect()
}

/// The message with this id and up to `before` messages before it and `after` after it in the
/// view, in order (the same messages ctx.messages returns around it: tombstones and expired
/// ones skipped, those a summary covers included). Index probes, not a scan of the thread.
#[pg_extern(stable, parallel_safe)]
fn messages_around(
    context_id: Option<Uuid>,
    message_id: Option<&str>,
    before: default!(Option<i32>, 0),
    after: default!(Option<i32>, 0),
) -> SetOfIterator<'static, pgrx::composite_type!('static, "ctx.message")> {
    served_as_messages(None, context_id, || {
        read_around(context_id, message_id, before, after)
    })
}

fn read_around(
    context_id: Option<Uuid>,
    message_id: Option<&str>,
    before: Option<i32>,
    after: Option<i32>,
) -> CtxResult<Vec<Row>> {
    let context_id = required(context_id, "context_id")?;
    let message_id = required(message_id, "message_id")?;
    rules::check_message_id(message_id)?;
    let before = non_negative(before.map(i64::from), "before")?;
    let after = non_negative(after.map(i64::from), "after")?;
    Spi::connect(|client| {
        let view = load_view(client, context_id, false)?;
        let at = locate(client, &view, &[message_id.to_string()])?
            .into_iter()
            .find(|at| !at.deleted)
            .ok_or_else(|| unknown_message(message_id))?;
        window_by_seq(client, &view, &at, before, after)
    })
}

/// Up to `before` live messages before `at` in seq order, `at`, and up to `after` after it.
fn window_by_seq(
    client: &pgrx::spi::SpiClient<'_>,
    view: &View,
    at: &Located,
    before: i64,
    after: i64,
) -> CtxResult<Vec<Row>> {
    let mut rows = Vec::new();
    if before > 0 {
        let older = scan_newest(client, view, 0, at.seq - 1, before, Roles::All)?;
        if let Some(&(oldest, _)) = older.last() {
            rows.extend(read_range(
                client,
                view,
                oldest - 1,
                at.seq - 1,
                None,
                Roles::All,
            )?);
        }
    }
    rows.extend(read_range(
        client,
        view,
        at.seq - 1,
        view.last_seq,
        Some(after + 1),
        Roles::All,
    )?);
    Ok(rows)
}

/// The windows around several messages of the view at once, each message once: for each id,
/// up to `before[i]` live messages before it, the message, and up to `after[i]` after it, in
/// the order `order_by` names (`seq`, or `created_at` then seq). Ids the view does not have, or
/// whose message was deleted, give no window. One view for all, index probes per id.
#[pg_extern(stable, parallel_safe)]
fn message_windows(
    context_id: Option<Uuid>,
    message_ids: Option<Vec<Option<String>>>,
    before: Option<Vec<Option<i32>>>,
    after: Option<Vec<Option<i32>>>,
    order_by: default!(Option<&str>, "'seq'"),
) -> SetOfIterator<'static, pgrx::composite_type!('static, "ctx.message")> {
    served_as_messages(None, context_id, || {
        read_windows(context_id, message_ids, before, after, order_by)
    })
}

fn read_windows(
    context_id: Option<Uuid>,
    message_ids: Option<Vec<Option<String>>>,
    before: Option<Vec<Option<i32>>>,
    after: Option<Vec<Option<i32>>>,
    order_by: Option<&str>,
) -> CtxResult<Vec<Row>> {
    let context_id = required(context_id, "context_id")?;
    let ids = message_id_list(message_ids)?;
    let order = rules::MessageOrder::parse(required(order_by, "order_by")?)?;
    let before = window_sizes(before, "before", ids.len())?;
    let after = window_sizes(after, "after", ids.len())?;
    Spi::connect(|client| {
        let view = load_view(client, context_id, false)?;
        let found: HashMap<String, Located> = locate(client, &view, &ids)?
            .into_iter()
            .filter(|at| !at.deleted)
            .map(|at| (at.message_id.clone(), at))
            .collect();
        let mut rows: Vec<Row> = Vec::new();
        for (i, id) in ids.iter().enumerate() {
            let Some(at) = found.get(id) else {
                continue;
            };
            rows.extend(match order {
                rules::MessageOrder::Seq => window_by_seq(client, &view, at, before[i], after[i])?,
                rules::MessageOrder::CreatedAt => {
                    window_by_created(client, &view, at, before[i], after[i])?
                }
            });
        }
        match order {
            rules::MessageOrder::Seq => rows.sort_by_key(|r| r.seq),
            rules::MessageOrder::CreatedAt => {
                rows.sort_by_key(|r| (i64::from(r.created_at), r.seq))
            }
        }
        rows.dedup_by_key(|r| r.seq);
        Ok(rows)
    })
}

/// A per-id window size: as many as there are ids, none NULL or negative.
fn window_sizes(sizes: Option<Vec<Option<i32>>>, name: &str, ids: usize) -> CtxResult<Vec<i64>> {
    let sizes = required(sizes, name)?;
    if sizes.len() != ids {
        return Err(CtxError::new(
            ErrorKind::InvalidParameter,
            format!(
                "{name} has {} element(s) for {ids} message id(s)",
                sizes.len()
            ),
        )
        .with_hint(format!("pass one {name} per message id, in the same order")));
    }
    sizes
        .into_iter()
        .enumerate()
        .map(|(i, n)| non_negative(n.map(i64::from), &format!("{name}[{}]", i + 1)))
        .collect::<CtxResult<Vec<i64>>>()
}

/// Up to `before` live messages before `at` in (created_at, seq) order, `at`, and up to
/// `after` after it: two index scans from its (created_at, seq).
fn window_by_created(
    client: &pgrx::spi::SpiClient<'_>,
    view: &View,
    at: &Located,
    before: i64,
    after: i64,
) -> CtxResult<Vec<Row>> {
    let mut rows = list_beside(client, view, at.created_at, at.seq, true, before + 1)?;
    if after > 0 {
        rows.extend(list_beside(
            client,
            view,
            at.created_at,
            at.seq,
            false,
            after,
        )?);
    }
    Ok(rows)
}

/// How many messages ctx.list_messages would return over [created_from, created_to] with no
/// limit: counted through the same indexes, without reading a message's content.
#[pg_extern(stable, parallel_safe)]
fn count_messages(
    context_id: Option<Uuid>,
    created_from: default!(Option<TimestampWithTimeZone>, "NULL"),
    created_to: default!(Option<TimestampWithTimeZone>, "NULL"),
) -> i64 {
    metrics::timed(Call::Read, || {
        let context_id = required(context_id, "context_id")?;
        let from = created_from.unwrap_or_else(TimestampWithTimeZone::negative_infinity);
        let to = created_to.unwrap_or_else(TimestampWithTimeZone::positive_infinity);
        Spi::connect(|client| {
            let view = load_view(client, context_id, false)?;
            count_listed(client, &view, from, to)
        })
    })
    .or_raise()
}

/// A page of the context's live messages, optionally only those created (the caller's
/// `created_at`) in [created_from, created_to], ordered by seq or created_at, either way, through
/// an index: no sort of the thread.
#[allow(clippy::too_many_arguments)]
#[pg_extern(stable, parallel_safe)]
fn list_messages(
    context_id: Option<Uuid>,
    created_from: default!(Option<TimestampWithTimeZone>, "NULL"),
    created_to: default!(Option<TimestampWithTimeZone>, "NULL"),
    order_by: default!(Option<&str>, "'seq'"),
    descending: default!(Option<bool>, false),
    max_rows: default!(Option<i32>, 100),
    skip: default!(Option<i32>, 0),
) -> SetOfIterator<'static, pgrx::composite_type!('static, "ctx.message")> {
    served_as_messages(None, context_id, || {
        read_list(
            context_id,
            created_from,
            created_to,
            order_by,
            descending,
            max_rows,
            skip,
        )
    })
}

/// A page of a thread's messages found by the thread's id, as ctx.list_messages lists its
/// context's, with the thread's context and resource and (with_total) the count
/// ctx.count_messages gives: a framework's "page of this thread" in one call. No row when the
/// tenant has no such thread (or `framework` is given and another one holds it); one row with
/// NULL message columns when the page is empty.
// (the row type is spelled out: pgrx reads the column names from the signature, not an alias)
#[allow(clippy::too_many_arguments, clippy::type_complexity)]
#[pg_extern(stable, parallel_safe)]
fn thread_page(
    thread_id: Option<&str>,
    framework: default!(Option<&str>, "NULL"),
    created_from: default!(Option<TimestampWithTimeZone>, "NULL"),
    created_to: default!(Option<TimestampWithTimeZone>, "NULL"),
    order_by: default!(Option<&str>, "'seq'"),
    descending: default!(Option<bool>, false),
    max_rows: default!(Option<i32>, 100),
    skip: default!(Option<i32>, 0),
    with_total: default!(Option<bool>, false),
) -> TableIterator<
    'static,
    // (the thread's context, resource and total, then one message: all NULL for an empty page)
    (
        name!(context_id, Uuid),
        name!(resource, Option<String>),
        name!(total, Option<i64>),
        name!(seq, Option<i64>),
        name!(message_id, Option<String>),
        name!(revision, Option<i32>),
        name!(role, Option<String>),
        name!(content, Option<String>),
        name!(metadata, Option<Metadata>),
        name!(tokens, Option<i32>),
        name!(created_at, Option<TimestampWithTimeZone>),
        name!(written_at, Option<TimestampWithTimeZone>),
        name!(archived, Option<bool>),
        name!(trace_id, Option<String>),
    ),
> {
    let page = metrics::timed(Call::Read, || {
        let thread_id = required(thread_id, "thread_id")?;
        let order = rules::MessageOrder::parse(required(order_by, "order_by")?)?;
        let descending = required(descending, "descending")?;
        let max_rows = non_negative(max_rows.map(i64::from), "max_rows")?;
        let skip = non_negative(skip.map(i64::from), "skip")?;
        let with_total = required(with_total, "with_total")?;
        let from = created_from.unwrap_or_else(TimestampWithTimeZone::negative_infinity);
        let to = created_to.unwrap_or_else(TimestampWithTimeZone::positive_infinity);
        Spi::connect(|client| {
            let Some(view) = load_thread_view(client, thread_id, framework)? else {
                return Ok(None);
            };
            let total = match with_total {
                true => Some(count_listed(client, &view, from, to)?),
                false => None,
            };
            let rows = list_page(client, &view, from, to, order, descending, max_rows, skip)?;
            Ok(Some((view.id, view.resource, total, rows)))
        })
    })
    .or_raise();
    let Some((context_id, resource, total, rows)) = page else {
        return TableIterator::new(Vec::new());
    };
    metrics::count(Counter::MessagesRead, rows.len() as u64);
    if rows.is_empty() {
        let empty = (
            context_id, resource, total, None, None, None, None, None, None, None, None, None,
            None, None,
        );
        return TableIterator::new(vec![empty]);
    }
    TableIterator::new(rows.into_iter().map(move |row| {
        let written_at = row.written_at.or(Some(row.created_at));
        (
            context_id,
            resource.clone(),
            total,
            Some(row.seq),
            row.message_id,
            Some(row.revision),
            Some(row.role),
            Some(row.content),
            Some(row.metadata),
            Some(row.tokens),
            Some(row.created_at),
            written_at,
            Some(row.archived),
            row.trace_id,
        )
    }))
}

fn read_list(
    context_id: Option<Uuid>,
    created_from: Option<TimestampWithTimeZone>,
    created_to: Option<TimestampWithTimeZone>,
    order_by: Option<&str>,
    descending: Option<bool>,
    max_rows: Option<i32>,
    skip: Option<i32>,
) -> CtxResult<Vec<Row>> {
    let context_id = required(context_id, "context_id")?;
    let order = rules::MessageOrder::parse(required(order_by, "order_by")?)?;
    let descending = required(descending, "descending")?;
    let max_rows = non_negative(max_rows.map(i64::from), "max_rows")?;
    let skip = non_negative(skip.map(i64::from), "skip")?;
    let from = created_from.unwrap_or_else(TimestampWithTimeZone::negative_infinity);
    let to = created_to.unwrap_or_else(TimestampWithTimeZone::positive_infinity);
    Spi::connect(|client| {
        let view = load_view(client, context_id, false)?;
        list_page(client, &view, from, to, order, descending, max_rows, skip)
    })
}
