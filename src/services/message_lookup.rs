//! Messages of a view found by id (`locate`, `read_at`), the revisions edits replaced, and
//! pages by seq or by the caller's created_at: the reads behind the by-id functions and the
//! revisions of ctx.history, on top of the view and row decoding of `context_view`.

use pgrx::datum::TimestampWithTimeZone;
use pgrx::pg_sys::BuiltinOid::{self, *};
use pgrx::spi::SpiClient;
use pgrx::Uuid;

use crate::core::conversation as rules;
use crate::error::{required, CtxError, CtxResult, ErrorKind};
use crate::plans::Statement;
use crate::services::context_view::{rows_of, walked_rows, Row, View};
use crate::services::direct_reads;

/// Where a message id is in a view: the row that wins at its seq (the nearest segment's).
#[derive(Clone)]
pub(crate) struct Located {
    pub message_id: String,
    pub seq: i64,
    /// the context whose row it is: the view's own, or an ancestor's
    pub owner: Uuid,
    pub revision: i32,
    pub deleted: bool,
    /// (a tombstone keeps it)
    pub role: String,
    /// the caller's time of the message (the order of `created_at` reads)
    pub created_at: TimestampWithTimeZone,
}

impl Located {
    pub fn inherited(&self, view: &View) -> bool {
        self.owner != view.id
    }
}

/// The rows these ids have in the view (deleted ones included, expired ones not); ids the
/// view does not have are left out. An index probe per id and segment.
pub(crate) fn locate(
    client: &SpiClient<'_>,
    view: &View,
    message_ids: &[String],
) -> CtxResult<Vec<Located>> {
    static LOCATE: Statement = Statement {
        sql: "SELECT i.id, w.seq, w.context_id, w.revision, w.deleted, w.role, w.created_at
                FROM unnest($4::text[]) AS i(id)
               CROSS JOIN LATERAL (
                     SELECT m.seq, m.context_id, m.revision, m.deleted, m.role, m.created_at
                       FROM unnest($1::uuid[], $2::bigint[], $5::bigint[], $6::timestamptz[])
                            WITH ORDINALITY AS s(cid, hi, lo, since, ord)
                       JOIN ctx.messages m
                         ON m.tenant = $3 AND m.context_id = s.cid AND m.message_id = i.id
                        AND m.seq <= s.hi AND m.seq > s.lo AND m.written_at >= s.since
                      WHERE s.ord = 1 OR NOT EXISTS (
                            SELECT FROM unnest($1[1:s.ord - 1]) AS n(cid) JOIN ctx.messages o
                             ON o.tenant = $3 AND o.context_id = n.cid AND o.seq = m.seq)
                      ORDER BY s.ord LIMIT 1) w",
        args: &[
            UUIDARRAYOID,
            INT8ARRAYOID,
            TEXTOID,
            TEXTARRAYOID,
            INT8ARRAYOID,
            TIMESTAMPTZARRAYOID,
        ],
        writes: false,
    };
    // (a context without ancestors: a probe of the id index per id, no lateral join; seq
    // masked, or a generic plan read the thread's primary key range and hashed the ids)
    static LOCATE_ONE: Statement = Statement {
        sql: "SELECT i.id, m.seq, m.context_id, m.revision, m.deleted, m.role, m.created_at
                FROM unnest($4::text[]) AS i(id)
                JOIN ctx.messages m
                  ON m.tenant = $3 AND m.message_id = i.id AND m.context_id = $1[1]
                 AND m.seq + 0 <= $2[1] AND m.seq + 0 > $5[1] AND m.written_at >= $6[1]",
        args: LOCATE.args,
        writes: false,
    };
    let (ids, his, los, sinces) = view.segments();
    let plan = if ids.len() == 1 { &LOCATE_ONE } else { &LOCATE }.plan(client)?;
    let table = client.select(
        &*plan,
        None,
        &[
            ids.into(),
            his.into(),
            view.tenant.as_str().into(),
            message_ids.to_vec().into(),
            los.into(),
            sinces.into(),
        ],
    )?;
    table
        .map(|row| {
            Ok(Located {
                message_id: required(row.get(1)?, "message_id")?,
                seq: required(row.get(2)?, "seq")?,
                owner: required(row.get(3)?, "context_id")?,
                revision: required(row.get(4)?, "revision")?,
                deleted: required(row.get(5)?, "deleted")?,
                role: required(row.get(6)?, "role")?,
                created_at: required(row.get(7)?, "created_at")?,
            })
        })
        .collect()
}

/// The current revision of one live message row, opened.
pub(crate) fn read_at(
    client: &SpiClient<'_>,
    tenant: &str,
    owner: Uuid,
    seq: i64,
) -> CtxResult<Row> {
    static READ_AT: Statement = Statement {
        sql: "SELECT m.seq, m.role, coalesce(m.content, ctx.lz4_decompress(m.content_lz4)),
                     m.metadata, m.tokens, m.created_at, m.context_id, m.content_enc, m.metadata_enc,
                     m.trace_id, m.message_id, m.revision, m.written_at, m.deleted
                FROM ctx.messages m
               WHERE m.tenant = $1 AND m.context_id = $2 AND m.seq = $3 AND NOT m.deleted",
        args: &[TEXTOID, UUIDOID, INT8OID],
        writes: false,
    };
    let plan = READ_AT.plan(client)?;
    let table = client.select(&*plan, Some(1), &[tenant.into(), owner.into(), seq.into()])?;
    rows_of(client, table, 0, true)?
        .pop()
        .ok_or_else(|| CtxError::internal(format!("message {seq} of context {owner} vanished")))
}

/// The revisions that these messages' current ones replaced (as (owner, seq) pairs), in seq
/// and revision order, opened; flagged archived when a summary covers them.
pub(crate) fn replaced_revisions(
    client: &SpiClient<'_>,
    view: &View,
    messages: &[(Uuid, i64)],
) -> CtxResult<Vec<Row>> {
    static REVISIONS: Statement = Statement {
        sql: "SELECT r.seq, r.role, coalesce(r.content, ctx.lz4_decompress(r.content_lz4)),
                     r.metadata, r.tokens, r.created_at, r.context_id, r.content_enc, r.metadata_enc,
                     r.trace_id, r.message_id, r.revision, r.written_at, r.deleted
                FROM unnest($2::uuid[], $3::bigint[]) AS w(owner, seq)
                JOIN ctx.message_revisions r ON r.tenant = $1 AND r.context_id = w.owner AND r.seq = w.seq
               ORDER BY r.seq, r.revision",
        args: &[TEXTOID, UUIDARRAYOID, INT8ARRAYOID],
        writes: false,
    };
    if messages.is_empty() {
        return Ok(Vec::new());
    }
    let (owners, seqs): (Vec<Uuid>, Vec<i64>) = messages.iter().copied().unzip();
    let plan = REVISIONS.plan(client)?;
    let table = client.select(
        &*plan,
        None,
        &[view.tenant.as_str().into(), owners.into(), seqs.into()],
    )?;
    rows_of(client, table, view.compacted_through(), false)
}

pub(crate) fn unknown_message(message_id: &str) -> CtxError {
    CtxError::new(
        ErrorKind::UndefinedObject,
        format!("message \"{message_id}\" does not exist in the context"),
    )
    .with_hint(
        "check the id: SELECT message_id FROM ctx.messages(context_id) lists them \
         (a purged message is gone for good, its id with it)",
    )
}

// The rows of segment s (cid, hi, lo, since, ord) of the view a list reads: live, in the
// segment's bounds, created in [from, to], and not overridden by a nearer context ($1: the
// segments' ids, $5: the tenant).
// ($seq and $created name the columns as the order's index should see them, the other one
// masked ("m.seq + 0", "(m.created_at + interval '0')"): the planner would otherwise take the
// other index for its bounds and sort the whole thread.)
// (A nearer segment's override is found by joining the segments' ids, not by `= ANY` of an
// array slice: under row-level security a slice is not leakproof, so it could not be an index
// condition, and the check read every context's message at that seq.)
macro_rules! listed_where {
    ($seq:literal, $created:literal, $from:literal, $to:literal) => {
        concat!(
            "m.tenant = $5 AND m.context_id = s.cid AND ",
            $seq,
            " > s.lo AND ",
            $seq,
            " <= s.hi
               AND m.written_at >= s.since AND NOT m.deleted
               AND ",
            $created,
            " >= ",
            $from,
            " AND ",
            $created,
            " <= ",
            $to,
            "
               AND (s.ord = 1 OR NOT EXISTS (
                    SELECT FROM unnest($1[1:s.ord - 1]) AS n(cid) JOIN ctx.messages o
                     ON o.tenant = $5 AND o.context_id = n.cid AND o.seq = m.seq))"
        )
    };
}

// The rows of every segment of the view that satisfy `cond`, in `order`: each segment's first
// `inner` rows through an index, merged, then `outer` (a LIMIT) of the merge.
macro_rules! segment_rows {
    (where [$($cond:tt)*], order $order:literal, inner $inner:literal, outer $outer:literal) => {
        concat!(
            "SELECT m.seq, m.role, m.content, m.metadata, m.tokens, m.created_at, m.context_id,
                    m.content_enc, m.metadata_enc, m.trace_id, m.message_id, m.revision, m.written_at,
                    m.deleted
               FROM unnest($1::uuid[], $2::bigint[], $3::bigint[], $4::timestamptz[])
                    WITH ORDINALITY AS s(cid, hi, lo, since, ord)
              CROSS JOIN LATERAL (
                    SELECT m.seq, m.role, coalesce(m.content, ctx.lz4_decompress(m.content_lz4)) AS content,
                           m.metadata, m.tokens, m.created_at, m.context_id, m.content_enc, m.metadata_enc,
                           m.trace_id, m.message_id, m.revision, m.written_at, m.deleted
                      FROM ctx.messages m
                     WHERE ", $($cond)*, "
                     ORDER BY ", $order, " LIMIT ", $inner, ") m
              ORDER BY ", $order, " ", $outer
        )
    };
    // A context without ancestors: its one segment's bounds are the arrays' first elements, in
    // a subquery the planner flattens (so `s.ord = 1` folds away the override check) — one
    // index scan under the LIMIT, no lateral join, merge sort or subplan to set up per call.
    (unforked where [$($cond:tt)*], order $order:literal, outer $outer:literal) => {
        concat!(
            "SELECT m.seq, m.role, coalesce(m.content, ctx.lz4_decompress(m.content_lz4)) AS content,
                    m.metadata, m.tokens, m.created_at, m.context_id, m.content_enc, m.metadata_enc,
                    m.trace_id, m.message_id, m.revision, m.written_at, m.deleted
               FROM (SELECT $1[1] AS cid, $2[1] AS hi, $3[1] AS lo, $4[1] AS since, 1 AS ord) s,
                    ctx.messages m
              WHERE ", $($cond)*, "
              ORDER BY ", $order, " ", $outer
        )
    };
}

// A page of the view's live messages with created_at in [$8, $9], in the order asked: each
// segment contributes its first skip + max_rows through an index (the primary key for seq,
// messages_created_idx for created_at), then the segments are merged.
macro_rules! list_query {
    ($order:literal, $seq:literal, $created:literal) => {
        segment_rows!(
            where [listed_where!($seq, $created, "$8", "$9")],
            order $order, inner "$6 + $7", outer "LIMIT $6 OFFSET $7"
        )
    };
    (unforked $order:literal, $seq:literal, $created:literal) => {
        segment_rows!(
            unforked where [listed_where!($seq, $created, "$8", "$9")],
            order $order, outer "LIMIT $6 OFFSET $7"
        )
    };
}

const LIST_ARGS: &[BuiltinOid] = &[
    UUIDARRAYOID,
    INT8ARRAYOID,
    INT8ARRAYOID,
    TIMESTAMPTZARRAYOID,
    TEXTOID,
    INT8OID,
    INT8OID,
    TIMESTAMPTZOID,
    TIMESTAMPTZOID,
];

// Each order's statement for a fork (every segment, merged) and for a context without
// ancestors (one segment).
macro_rules! list_statements {
    ($forked:ident, $unforked:ident, $order:literal, $seq:literal, $created:literal) => {
        static $forked: Statement = Statement {
            sql: list_query!($order, $seq, $created),
            args: LIST_ARGS,
            writes: false,
        };
        static $unforked: Statement = Statement {
    sql: list_query!(unforked $order, $seq, $created),
            args: LIST_ARGS,
            writes: false,
        };
    };
}
list_statements!(
    LIST_SEQ,
    LIST_SEQ_ONE,
    "m.seq",
    "m.seq",
    "(m.created_at + interval '0')"
);
list_statements!(
    LIST_SEQ_DESC,
    LIST_SEQ_DESC_ONE,
    "m.seq DESC",
    "m.seq",
    "(m.created_at + interval '0')"
);
list_statements!(
    LIST_CREATED,
    LIST_CREATED_ONE,
    "m.created_at, m.seq",
    "m.seq + 0",
    "m.created_at"
);
list_statements!(
    LIST_CREATED_DESC,
    LIST_CREATED_DESC_ONE,
    "m.created_at DESC, m.seq DESC",
    "m.seq + 0",
    "m.created_at"
);

// The view's live messages on one side of a (created_at, seq) point ($7, $8), nearest first, at
// most $6: the row comparison is a bound of messages_created_idx, so a tie on created_at costs
// no more than any other neighbour (a bulk save stamps many messages with one time).
macro_rules! beside_where {
    ($cmp:literal) => {
        concat!(
            listed_where!(
                "m.seq + 0",
                "m.created_at",
                "'-infinity'::timestamptz",
                "'infinity'::timestamptz"
            ),
            " AND (m.created_at, m.seq) ",
            $cmp,
            " ($7, $8)"
        )
    };
}
macro_rules! beside_query {
    ($cmp:literal, $order:literal) => {
        segment_rows!(where [beside_where!($cmp)], order $order, inner "$6", outer "LIMIT $6")
    };
    (unforked $cmp:literal, $order:literal) => {
        segment_rows!(unforked where [beside_where!($cmp)], order $order, outer "LIMIT $6")
    };
}

const BESIDE_ARGS: &[BuiltinOid] = &[
    UUIDARRAYOID,
    INT8ARRAYOID,
    INT8ARRAYOID,
    TIMESTAMPTZARRAYOID,
    TEXTOID,
    INT8OID,
    TIMESTAMPTZOID,
    INT8OID,
];
macro_rules! beside_statements {
    ($forked:ident, $unforked:ident, $cmp:literal, $order:literal) => {
        static $forked: Statement = Statement {
            sql: beside_query!($cmp, $order),
            args: BESIDE_ARGS,
            writes: false,
        };
        static $unforked: Statement = Statement {
    sql: beside_query!(unforked $cmp, $order),
            args: BESIDE_ARGS,
            writes: false,
        };
    };
}
beside_statements!(UP_TO, UP_TO_ONE, "<=", "m.created_at DESC, m.seq DESC");
beside_statements!(AFTER, AFTER_ONE, ">", "m.created_at, m.seq");

/// Up to `limit` live messages of the view at or before (`up_to`, newest first) or after
/// (oldest first) the point (created_at, seq) in (created_at, seq) order.
pub(crate) fn list_beside(
    client: &SpiClient<'_>,
    view: &View,
    created_at: TimestampWithTimeZone,
    seq: i64,
    up_to: bool,
    limit: i64,
) -> CtxResult<Vec<Row>> {
    if let Some((range, since)) = view.own_segment(None) {
        let walk = direct_reads::Walk {
            range,
            since,
            walked: direct_reads::Walked::ByCreated,
            descending: up_to,
            beside: Some((created_at, seq)),
            system: None,
            skip: 0,
            limit,
            budget: None,
        };
        if let Some(rows) = walked_rows(client, view, &walk)? {
            return Ok(rows);
        }
    }
    let (ids, his, los, sinces) = view.segments();
    let statement = match (up_to, ids.len() == 1) {
        (true, false) => &UP_TO,
        (false, false) => &AFTER,
        (true, true) => &UP_TO_ONE,
        (false, true) => &AFTER_ONE,
    };
    let plan = statement.plan(client)?;
    let table = client.select(
        &*plan,
        None,
        &[
            ids.into(),
            his.into(),
            los.into(),
            sinces.into(),
            view.tenant.as_str().into(),
            limit.into(),
            created_at.into(),
            seq.into(),
        ],
    )?;
    rows_of(client, table, view.compacted_through(), true)
}

// How many live messages of the view have created_at in [$6, $7]: the rows ctx.list_messages
// pages through, counted per segment from the indexes alone (an index-only scan where the
// visibility map allows): every entry in range, less the tombstones (their partial index), less
// the live rows written before the segment's retention bound when it has one (read from the
// rows: the indexes do not hold written_at).
macro_rules! counted_where {
    ($extra:literal, $range:ident, $segments:ident) => {
        concat!(
            "m.tenant = $5 AND m.context_id = s.cid AND m.seq > s.lo AND m.seq <= s.hi",
            $extra,
            counted_range!($range),
            counted_overrides!($segments)
        )
    };
}
macro_rules! counted_range {
    (dated) => {
        " AND m.created_at >= $6 AND m.created_at <= $7"
    };
    (undated) => {
        ""
    };
}
// (a nearer segment's row of the same seq hides an ancestor's: see segment_rows)
macro_rules! counted_overrides {
    (forked) => {
        " AND (s.ord = 1 OR NOT EXISTS (
              SELECT FROM unnest($1[1:s.ord - 1]) AS n(cid) JOIN ctx.messages o
               ON o.tenant = $5 AND o.context_id = n.cid AND o.seq = m.seq))"
    };
    (unforked) => {
        ""
    };
}
macro_rules! count_statement {
    ($name:ident, $range:ident, $segments:ident) => {
        static $name: Statement = Statement {
            sql: concat!(
                "SELECT coalesce(sum(n), 0)::bigint
                   FROM unnest($1::uuid[], $2::bigint[], $3::bigint[], $4::timestamptz[])
                        WITH ORDINALITY AS s(cid, hi, lo, since, ord)
                  CROSS JOIN LATERAL (SELECT
                        (SELECT count(*) FROM ctx.messages m WHERE ",
                counted_where!("", $range, $segments),
                ")
                      - (SELECT count(*) FROM ctx.messages m WHERE ",
                counted_where!(" AND m.deleted", $range, $segments),
                ")
                      - CASE WHEN s.since > '-infinity' THEN (SELECT count(*) FROM ctx.messages m WHERE ",
                counted_where!(" AND NOT m.deleted AND m.written_at < s.since", $range, $segments),
                ") ELSE 0 END AS n) c"
            ),
            args: COUNT_ARGS,
            writes: false,
        };
    };
}
const COUNT_ARGS: &[BuiltinOid] = &[
    UUIDARRAYOID,
    INT8ARRAYOID,
    INT8ARRAYOID,
    TIMESTAMPTZARRAYOID,
    TEXTOID,
    TIMESTAMPTZOID,
    TIMESTAMPTZOID,
];
// (without a time range the count reads the primary key's seq range: on the created_at index it
// took 2.5x as long per entry; an unforked context has one segment and needs no override check,
// a tenth of a count's time)
count_statement!(COUNT_DATED, dated, forked);
count_statement!(COUNT_ALL, undated, forked);
count_statement!(COUNT_DATED_UNFORKED, dated, unforked);
count_statement!(COUNT_ALL_UNFORKED, undated, unforked);

/// How many messages `list_page` would return over [from, to] with no limit.
pub(crate) fn count_listed(
    client: &SpiClient<'_>,
    view: &View,
    from: TimestampWithTimeZone,
    to: TimestampWithTimeZone,
) -> CtxResult<i64> {
    let dated = !(from.is_neg_infinity() && to.is_infinity());
    // (one segment without an age bound: its count is a range of index entries, less the
    // tombstones, with no row to read)
    if let Some((range, since)) = view.own_segment(dated.then_some((from, to))) {
        if since.is_neg_infinity() {
            if let Some(count) = direct_reads::count_live(&range) {
                return Ok(count);
            }
        }
    }
    let (ids, his, los, sinces) = view.segments();
    let statement = match (dated, ids.len() > 1) {
        (true, true) => &COUNT_DATED,
        (false, true) => &COUNT_ALL,
        (true, false) => &COUNT_DATED_UNFORKED,
        (false, false) => &COUNT_ALL_UNFORKED,
    };
    let plan = statement.plan(client)?;
    let table = client.select(
        &*plan,
        Some(1),
        &[
            ids.into(),
            his.into(),
            los.into(),
            sinces.into(),
            view.tenant.as_str().into(),
            from.into(),
            to.into(),
        ],
    )?;
    Ok(crate::plans::first_value::<i64>(table)?.unwrap_or(0))
}

/// A page of the view's live messages created in [from, to], ordered by `order`.
#[allow(clippy::too_many_arguments)]
pub(crate) fn list_page(
    client: &SpiClient<'_>,
    view: &View,
    from: TimestampWithTimeZone,
    to: TimestampWithTimeZone,
    order: rules::MessageOrder,
    descending: bool,
    max_rows: i64,
    skip: i64,
) -> CtxResult<Vec<Row>> {
    let dated = !(from.is_neg_infinity() && to.is_infinity());
    if let Some((range, since)) = view.own_segment(dated.then_some((from, to))) {
        let walk = direct_reads::Walk {
            range,
            since,
            walked: match order {
                rules::MessageOrder::Seq => direct_reads::Walked::BySeq,
                rules::MessageOrder::CreatedAt => direct_reads::Walked::ByCreated,
            },
            descending,
            beside: None,
            system: None,
            skip,
            limit: max_rows,
            budget: None,
        };
        if let Some(rows) = walked_rows(client, view, &walk)? {
            return Ok(rows);
        }
    }
    let (ids, his, los, sinces) = view.segments();
    let statement = match (order, descending, ids.len() == 1) {
        (rules::MessageOrder::Seq, false, false) => &LIST_SEQ,
        (rules::MessageOrder::Seq, true, false) => &LIST_SEQ_DESC,
        (rules::MessageOrder::CreatedAt, false, false) => &LIST_CREATED,
        (rules::MessageOrder::CreatedAt, true, false) => &LIST_CREATED_DESC,
        (rules::MessageOrder::Seq, false, true) => &LIST_SEQ_ONE,
        (rules::MessageOrder::Seq, true, true) => &LIST_SEQ_DESC_ONE,
        (rules::MessageOrder::CreatedAt, false, true) => &LIST_CREATED_ONE,
        (rules::MessageOrder::CreatedAt, true, true) => &LIST_CREATED_DESC_ONE,
    };
    let plan = statement.plan(client)?;
    let table = client.select(
        &*plan,
        None,
        &[
            ids.into(),
            his.into(),
            los.into(),
            sinces.into(),
            view.tenant.as_str().into(),
            max_rows.into(),
            skip.into(),
            from.into(),
            to.into(),
        ],
    )?;
    rows_of(client, table, view.compacted_through(), true)
}
