//! SQL functions of the conversation store: contexts, the append-only message log, windows,
//! compaction and forks. Argument checks and SPI only; the rules are in `core::conversation`.

use pgrx::datum::TimestampWithTimeZone;
use pgrx::pg_sys::BuiltinOid::{self, *};
use pgrx::prelude::*;
use pgrx::spi::SpiClient;
use pgrx::{JsonB, Uuid};
use serde_json::{json, Value};

use crate::api::args::{json_or, JsonArg};
use crate::api::keys;
use crate::api::metrics;
use crate::api::processors::{ContextTarget, Pipeline, WriteItem};
use crate::core::archive;
use crate::core::conversation::{self as rules, Lineage};
use crate::core::metrics::{Call, Counter};
use crate::core::processors::{Dedup, ReadMessage, Stage};
use crate::core::tokenizer::Encoding;
use crate::error::{required, CtxError, CtxResult, ErrorKind, OrRaise};
use crate::gucs;
use crate::plans::Statement;

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

/// A message or summary as read back.
#[derive(Clone)]
pub(crate) struct Row {
    pub seq: i64,
    pub role: String,
    pub content: String,
    pub metadata: Value,
    pub tokens: i32,
    pub created_at: TimestampWithTimeZone,
    pub archived: bool,
    /// the W3C trace id of the request that appended it (messages only)
    pub trace_id: Option<String>,
}

/// Which roles a read returns: context assembly reads system messages apart from the others.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Roles {
    All,
    SystemOnly,
    NonSystem,
}

impl Roles {
    fn param(self) -> &'static str {
        match self {
            Roles::All => "all",
            Roles::SystemOnly => "system",
            Roles::NonSystem => "other",
        }
    }
}

impl Row {
    /// This message as the read processors leave it (`None`: dropped), token count updated.
    pub(crate) fn through(self, pipeline: &Pipeline) -> CtxResult<Option<Row>> {
        let message = ReadMessage {
            role: self.role,
            content: self.content,
            metadata: self.metadata,
            tokens: self.tokens.into(),
        };
        Ok(pipeline.read(self.seq, message)?.map(|m| Row {
            role: m.role,
            content: m.content,
            metadata: m.metadata,
            tokens: m.tokens as i32,
            ..self
        }))
    }

    fn message(self) -> MessageRow {
        (
            self.seq,
            self.role,
            self.content,
            JsonB(self.metadata),
            self.tokens,
            self.created_at,
        )
    }

    fn history(self) -> HistoryRow {
        let (archived, trace_id) = (self.archived, self.trace_id.clone());
        let (seq, role, content, metadata, tokens, created_at) = self.message();
        (
            seq, role, content, metadata, tokens, created_at, archived, trace_id,
        )
    }
}

/// A context as its readers see it: where its messages live and its latest summary.
pub(crate) struct View {
    pub id: Uuid,
    pub name: Option<String>,
    pub metadata: Value,
    pub encoding: String,
    pub last_seq: i64,
    pub lineage: Lineage,
    pub summary: Option<Row>,
    /// The context's processor configuration (ctx.configure_context_processors).
    pub processors: Value,
    /// Whether its messages and summaries are stored encrypted.
    pub encrypted: bool,
    /// Its tenant, whose processors act on its messages.
    pub tenant: String,
    /// Per segment (own first, then ancestors): the highest expired seq and the oldest
    /// unexpired creation time, under its owner's retention policy (ctx.set_retention) and
    /// those of the contexts between it and this one (a fork keeping the newest 10 shows 10,
    /// though its parent keeps more of its own). Taken once per call, at statement time.
    retained_after: Vec<i64>,
    retained_since: Vec<TimestampWithTimeZone>,
}

impl View {
    /// The read processors of this context, with one call's `overlay` of their parameters.
    pub fn read_pipeline(
        &self,
        client: &SpiClient<'_>,
        overlay: Option<&Value>,
    ) -> CtxResult<Pipeline> {
        Pipeline::for_context(
            client,
            Stage::Read,
            &ContextTarget {
                tenant: &self.tenant,
                id: self.id,
                metadata: &self.metadata,
            },
            &self.processors,
            overlay,
            Encoding::parse(&self.encoding)?,
        )
    }

    /// Messages at or below this seq are replaced by the summary.
    pub fn compacted_through(&self) -> i64 {
        self.summary.as_ref().map_or(0, |s| s.seq)
    }

    /// Statement arguments $1, $2, $7, $8: per segment (own, then each ancestor's) its
    /// context id, highest visible seq, and retention bounds.
    fn segments(&self) -> (Vec<Uuid>, Vec<i64>, Vec<i64>, Vec<TimestampWithTimeZone>) {
        let mut ids = vec![self.id];
        ids.extend(
            self.lineage
                .ancestors
                .iter()
                .map(|bytes| Uuid::from_bytes(*bytes)),
        );
        let mut his = vec![i64::MAX];
        his.extend_from_slice(&self.lineage.bounds);
        (
            ids,
            his,
            self.retained_after.clone(),
            self.retained_since.clone(),
        )
    }
}

macro_rules! view_query {
    ($($tail:literal)?) => {
        concat!(
            "SELECT c.name, c.metadata, c.encoding, c.last_seq, c.ancestors, c.bounds,
                    s.through_seq, s.content, s.metadata, s.tokens, s.created_at, c.processors,
                    c.encrypted, s.content_enc, s.version, r.after, r.since, c.tenant
               FROM ctx.contexts c
               CROSS JOIN LATERAL (
                    SELECT ARRAY[coalesce(c.last_seq - c.retain_max_messages, 0)] AS after,
                           ARRAY[coalesce(statement_timestamp() - c.retain_max_age, '-infinity')] AS since
                     WHERE cardinality(c.ancestors) = 0
                    UNION ALL
                    -- a segment is read under its owner's policy and that of every context
                    -- between it and the reader (each of them sees it): a running maximum
                    SELECT array_agg(x.after ORDER BY x.ord), array_agg(x.since ORDER BY x.ord)
                      FROM (SELECT a.ord,
                                   max(coalesce(p.last_seq - p.retain_max_messages, 0)) OVER w AS after,
                                   max(coalesce(statement_timestamp() - p.retain_max_age, '-infinity')) OVER w AS since
                              FROM unnest(c.id || c.ancestors) WITH ORDINALITY AS a(id, ord)
                              LEFT JOIN ctx.contexts p ON p.id = a.id
                             WHERE cardinality(c.ancestors) > 0
                            WINDOW w AS (ORDER BY a.ord ROWS UNBOUNDED PRECEDING)) x
                    HAVING count(*) > 0) r
               LEFT JOIN LATERAL (
                    SELECT through_seq, content, content_enc, metadata, tokens, created_at, version
                      FROM ctx.summaries
                     WHERE context_id = c.id ORDER BY version DESC LIMIT 1) s ON true
              WHERE c.id = $1 ",
            $($tail)?
        )
    };
}

static LOAD_VIEW: Statement = Statement {
    sql: view_query!(),
    args: &[UUIDOID],
    writes: false,
};

// Takes the context's row lock too: compaction and forks must not race appends.
static LOCK_VIEW: Statement = Statement {
    sql: view_query!("FOR NO KEY UPDATE OF c"),
    args: &[UUIDOID],
    writes: true,
};

pub(crate) fn unknown_context(id: Uuid) -> CtxError {
    CtxError::new(
        ErrorKind::UndefinedObject,
        format!("context \"{id}\" does not exist"),
    )
    .with_hint("create it with ctx.create_context(), or check the id (it may have been deleted)")
}

pub(crate) fn load_view(client: &SpiClient<'_>, id: Uuid, lock: bool) -> CtxResult<View> {
    let statement = if lock { &LOCK_VIEW } else { &LOAD_VIEW };
    let plan = statement.plan(client)?;
    let mut table = client.select(&*plan, Some(1), &[id.into()])?;
    let Some(row) = table.next() else {
        return Err(keys::missing_context(client, id));
    };
    let ancestors: Vec<Uuid> = row.get(5)?.unwrap_or_default();
    let summary = match row.get::<i64>(7)? {
        Some(through_seq) => Some(Row {
            seq: through_seq,
            role: rules::SUMMARY_ROLE.to_string(),
            content: match row.get::<Vec<u8>>(14)? {
                Some(sealed) => {
                    let version: i32 = required(row.get(15)?, "summary version")?;
                    open_summary(client, id, version, &sealed)?
                }
                None => row.get(8)?.unwrap_or_default(),
            },
            metadata: row.get::<JsonB>(9)?.map_or(Value::Null, |j| j.0),
            tokens: row.get(10)?.unwrap_or(0),
            created_at: required(row.get(11)?, "summary created_at")?,
            archived: false,
            trace_id: None,
        }),
        None => None,
    };
    Ok(View {
        id,
        name: row.get(1)?,
        metadata: row.get::<JsonB>(2)?.map_or(json!({}), |j| j.0),
        encoding: required(row.get(3)?, "encoding")?,
        last_seq: required(row.get(4)?, "last_seq")?,
        lineage: Lineage {
            ancestors: ancestors.iter().map(|u| *u.as_bytes()).collect(),
            bounds: row.get(6)?.unwrap_or_default(),
        },
        summary,
        processors: row.get::<JsonB>(12)?.map_or(Value::Null, |j| j.0),
        encrypted: row.get(13)?.unwrap_or(false),
        retained_after: required(row.get(16)?, "retention seq bounds")?,
        retained_since: required(row.get(17)?, "retention time bounds")?,
        tenant: required(row.get(18)?, "tenant")?,
    })
}

fn summary_aad(context_id: Uuid, version: i32) -> Vec<u8> {
    keys::row_aad(
        "summaries.content",
        &[context_id.as_bytes(), &version.to_be_bytes()],
    )
}

fn open_summary(
    client: &SpiClient<'_>,
    context_id: Uuid,
    version: i32,
    sealed: &[u8],
) -> CtxResult<String> {
    let key = keys::data_key(client, &keys::Scope::Context(context_id))?;
    keys::open_text(
        &key,
        sealed,
        &summary_aad(context_id, version),
        &format!("summary {version} of context {context_id}"),
    )
}

/// A message's ciphertexts are bound to its context, seq and role (a `user` message cannot be
/// turned into a `system` one by editing the plaintext role column).
fn message_aad(context_id: Uuid, seq: i64, role: &str, column: &str) -> Vec<u8> {
    keys::row_aad(
        column,
        &[context_id.as_bytes(), &seq.to_be_bytes(), role.as_bytes()],
    )
}

/// Arguments of the range reads: segment ids, their bounds, (after, upto], limit, roles, and
/// each segment's retention bounds (expired messages are never read).
const RANGE_ARGS: &[BuiltinOid] = &[
    UUIDARRAYOID,
    INT8ARRAYOID,
    INT8OID,
    INT8OID,
    INT8OID,
    TEXTOID,
    INT8ARRAYOID,
    TIMESTAMPTZARRAYOID,
];

static SCAN_NEWEST: Statement = Statement {
    sql: "SELECT m.seq, m.tokens
            FROM unnest($1::uuid[], $2::bigint[], $7::bigint[], $8::timestamptz[]) AS s(cid, hi, lo, since)
           CROSS JOIN LATERAL (
                 SELECT seq, tokens FROM ctx.messages
                  WHERE context_id = s.cid AND seq > greatest($3, s.lo) AND seq <= least(s.hi, $4)
                    AND created_at >= s.since
                    AND ($6 = 'all' OR ($6 = 'system') = (role = 'system'))
                  ORDER BY seq DESC LIMIT $5) m
           ORDER BY m.seq DESC LIMIT $5",
    args: RANGE_ARGS,
    writes: false,
};

macro_rules! range_query {
    ($roles:literal) => {
        concat!(
            "SELECT m.seq, m.role, coalesce(m.content, ctx.lz4_decompress(m.content_lz4)),
                    m.metadata, m.tokens, m.created_at, m.context_id, m.content_enc, m.metadata_enc,
                    m.trace_id
               FROM unnest($1::uuid[], $2::bigint[], $7::bigint[], $8::timestamptz[]) AS s(cid, hi, lo, since)
              CROSS JOIN LATERAL (
                    SELECT * FROM ctx.messages
                     WHERE context_id = s.cid AND seq > greatest($3, s.lo) AND seq <= least(s.hi, $4)
                       AND created_at >= s.since ",
            $roles,
            " ORDER BY seq LIMIT $5) m
              ORDER BY m.seq LIMIT $5"
        )
    };
}

static READ_RANGE: Statement = Statement {
    sql: range_query!("AND ($6 = 'all' OR ($6 = 'system') = (role = 'system'))"),
    args: RANGE_ARGS,
    writes: false,
};

// System messages through their partial index (a literal role, which a parameter is not).
static READ_SYSTEM: Statement = Statement {
    sql: range_query!("AND role = 'system' AND $6 = 'system'"),
    args: RANGE_ARGS,
    writes: false,
};

// The same reads for a context without ancestors (the common case): plain bounds let the
// planner see the seq range and walk the primary key backwards for LIMIT; behind a lateral
// join it cannot, and with some statistics it picked a bitmap scan of the whole thread.
static SCAN_NEWEST_ONE: Statement = Statement {
    sql: "SELECT seq, tokens FROM ctx.messages
           WHERE context_id = $1[1] AND seq > greatest($3, $7[1]) AND seq <= $4
             AND created_at >= $8[1]
             AND ($6 = 'all' OR ($6 = 'system') = (role = 'system'))
           ORDER BY seq DESC LIMIT $5",
    args: RANGE_ARGS,
    writes: false,
};

macro_rules! range_query_one {
    ($roles:literal) => {
        concat!(
            "SELECT seq, role, coalesce(content, ctx.lz4_decompress(content_lz4)),
                    metadata, tokens, created_at, context_id, content_enc, metadata_enc, trace_id
               FROM ctx.messages
              WHERE context_id = $1[1] AND seq > greatest($3, $7[1]) AND seq <= $4
                AND created_at >= $8[1] ",
            $roles,
            " ORDER BY seq LIMIT $5"
        )
    };
}

static READ_RANGE_ONE: Statement = Statement {
    sql: range_query_one!("AND ($6 = 'all' OR ($6 = 'system') = (role = 'system'))"),
    args: RANGE_ARGS,
    writes: false,
};

static READ_SYSTEM_ONE: Statement = Statement {
    sql: range_query_one!("AND role = 'system' AND $6 = 'system'"),
    args: RANGE_ARGS,
    writes: false,
};

/// (seq, tokens) of the view's messages in (after, upto], newest first, at most `limit`.
fn scan_newest(
    client: &SpiClient<'_>,
    view: &View,
    after: i64,
    upto: i64,
    limit: i64,
    roles: Roles,
) -> CtxResult<Vec<(i64, i64)>> {
    let (ids, his, los, sinces) = view.segments();
    let statement = if ids.len() == 1 {
        &SCAN_NEWEST_ONE
    } else {
        &SCAN_NEWEST
    };
    let plan = statement.plan(client)?;
    let table = client.select(
        &*plan,
        None,
        &[
            ids.into(),
            his.into(),
            after.into(),
            upto.into(),
            limit.into(),
            roles.param().into(),
            los.into(),
            sinces.into(),
        ],
    )?;
    table
        .map(|row| {
            Ok((
                required(row.get::<i64>(1)?, "seq")?,
                required(row.get::<i32>(2)?, "tokens")? as i64,
            ))
        })
        .collect()
}

/// The view's messages in (after, upto], oldest first, at most `limit` (None: all).
pub(crate) fn read_range(
    client: &SpiClient<'_>,
    view: &View,
    after: i64,
    upto: i64,
    limit: Option<i64>,
    roles: Roles,
) -> CtxResult<Vec<Row>> {
    let (ids, his, los, sinces) = view.segments();
    let statement = match (roles == Roles::SystemOnly, ids.len() == 1) {
        (true, true) => &READ_SYSTEM_ONE,
        (true, false) => &READ_SYSTEM,
        (false, true) => &READ_RANGE_ONE,
        (false, false) => &READ_RANGE,
    };
    let plan = statement.plan(client)?;
    let table = client.select(
        &*plan,
        None,
        &[
            ids.into(),
            his.into(),
            after.into(),
            upto.into(),
            limit.into(),
            roles.param().into(),
            los.into(),
            sinces.into(),
        ],
    )?;
    let compacted_through = view.compacted_through();
    table
        .map(|row| {
            let seq = required(row.get::<i64>(1)?, "seq")?;
            let role: String = required(row.get(2)?, "role")?;
            let (content, metadata) = match row.get::<Vec<u8>>(8)? {
                // encrypted: opened with the key of the context that wrote it (maybe an ancestor)
                Some(sealed) => {
                    let owner: Uuid = required(row.get(7)?, "context_id")?;
                    let key = keys::data_key(client, &keys::Scope::Context(owner))?;
                    let what = format!("message {seq} of context {owner}");
                    let content = keys::open_text(
                        &key,
                        &sealed,
                        &message_aad(owner, seq, &role, "messages.content"),
                        &what,
                    )?;
                    let metadata = match row.get::<Vec<u8>>(9)? {
                        Some(m) => keys::open_json(
                            &key,
                            &m,
                            &message_aad(owner, seq, &role, "messages.metadata"),
                            &what,
                        )?,
                        None => json!({}),
                    };
                    (content, metadata)
                }
                None => (
                    required(row.get(3)?, "content")?,
                    row.get::<JsonB>(4)?.map_or(json!({}), |j| j.0),
                ),
            };
            Ok(Row {
                seq,
                role,
                content,
                metadata,
                tokens: required(row.get(5)?, "tokens")?,
                created_at: required(row.get(6)?, "created_at")?,
                archived: seq <= compacted_through,
                trace_id: row.get(10)?,
            })
        })
        .collect()
}

fn non_negative(value: Option<i64>, name: &str) -> CtxResult<i64> {
    let value = required(value, name)?;
    rules::check_non_negative(value, name)?;
    Ok(value)
}

pub(crate) fn object_or_empty(metadata: Option<JsonArg>, what: &str) -> CtxResult<Value> {
    let value = json_or(metadata, what, json!({}))?;
    rules::check_metadata(&value, what)?;
    Ok(value)
}

/// Creates a conversation context (a thread) and returns its id.
#[pg_extern(volatile, parallel_unsafe)]
fn create_context(
    name: default!(Option<&str>, "NULL"),
    metadata: default!(Option<JsonArg>, "'{}'"),
    metadata_schema: default!(Option<&str>, "NULL"),
    processors: default!(Option<JsonArg>, "'{}'"),
    encrypted: default!(Option<bool>, "NULL"),
) -> Uuid {
    let encrypted = encrypted.unwrap_or_else(gucs::encrypt_new_contexts);
    let metadata = object_or_empty(metadata, "metadata").or_raise();
    let processors = json_or(processors, "processors", json!({})).or_raise();
    crate::core::processors::Config::check(&processors, crate::core::processors::Level::Context)
        .or_raise();
    let encoding = gucs::default_encoding().name();
    static INSERT: Statement = Statement {
        sql: "INSERT INTO ctx.contexts (name, metadata, encoding, metadata_schema, processors, encrypted)
              VALUES ($1, $2, $3, $4, $5, $6) RETURNING id",
        args: &[TEXTOID, JSONBOID, TEXTOID, TEXTOID, JSONBOID, BOOLOID],
        writes: true,
    };
    Spi::connect_mut(|client| -> CtxResult<Uuid> {
        if let Some(schema) = metadata_schema {
            crate::api::schemas::latest_version(client, schema)?; // must exist
        }
        let plan = INSERT.plan(client)?;
        let mut table = client.update(
            &*plan,
            Some(1),
            &[
                name.into(),
                JsonB(metadata).into(),
                encoding.into(),
                metadata_schema.into(),
                JsonB(processors).into(),
                encrypted.into(),
            ],
        )?;
        let row = table
            .next()
            .ok_or_else(|| CtxError::internal("INSERT returned no row"))?;
        let id: Uuid = required(row.get(1)?, "id")?;
        if encrypted {
            keys::create_key(client, &keys::Scope::Context(id), None)?;
        }
        Ok(id)
    })
    .or_raise()
}

/// Appends one message; returns its seq (gap-free, unique per context).
#[pg_extern(volatile, parallel_unsafe)]
fn append(
    context_id: Option<Uuid>,
    role: Option<&str>,
    content: Option<&str>,
    metadata: default!(Option<JsonArg>, "'{}'"),
) -> Option<i64> {
    let seq = metrics::timed(Call::Append, || {
        append_one(context_id, role, content, metadata)
    })
    .or_raise();
    metrics::count(Counter::MessagesAppended, u64::from(seq.is_some()));
    seq
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

fn append_one(
    context_id: Option<Uuid>,
    role: Option<&str>,
    content: Option<&str>,
    metadata: Option<JsonArg>,
) -> CtxResult<Option<i64>> {
    let context_id = required(context_id, "context_id")?;
    let role = required(role, "role")?;
    let content = required(content, "content")?;
    rules::check_role(role)?;
    rules::check_content(content, gucs::max_message_bytes())?;
    let metadata = object_or_empty(metadata, "metadata")?;
    let message = WriteItem::message(role.to_string(), content.to_string(), metadata);
    // The message's tenant is its context's (the foreign key says so): taken from the row
    // just locked rather than evaluating ctx.current_tenant() again for the column default.
    static APPEND: Statement = Statement {
        sql: "WITH c AS (
                  UPDATE ctx.contexts SET last_seq = last_seq + 1, updated_at = now()
                   WHERE id = $1 RETURNING last_seq, encoding, tenant)
              INSERT INTO ctx.messages (context_id, tenant, seq, role, content, metadata, tokens)
              SELECT $1, c.tenant, c.last_seq, $2, $3, $4, ctx.count_tokens($3, c.encoding) FROM c
              RETURNING seq",
        args: &[UUIDOID, TEXTOID, TEXTOID, JSONBOID],
        writes: true,
    };
    Spi::connect_mut(|client| {
        let (mut processed, sealed) = process_writes(client, context_id, vec![message])?;
        let Some(message) = processed.pop().flatten() else {
            return Ok(None); // a processor dropped it
        };
        if let Some(encoding) = sealed {
            return Ok(append_sealed(client, context_id, encoding, vec![message])?.pop());
        }
        let plan = APPEND.plan(client)?;
        let mut table = client.update(
            &*plan,
            Some(1),
            &[
                context_id.into(),
                message.role.clone().into(),
                message.content.clone().into(),
                JsonB(message.stamped_metadata()).into(),
            ],
        )?;
        let row = table.next().ok_or_else(|| unknown_context(context_id))?;
        Ok(Some(required(row.get(1)?, "seq")?))
    })
}

/// Appends a JSON array of {role, content, metadata} in one round trip, all or nothing.
#[pg_extern(volatile, parallel_unsafe)]
fn append_many(context_id: Option<Uuid>, messages: Option<JsonArg>) -> SetOfIterator<'static, i64> {
    let seqs = metrics::timed(Call::Append, || append_batch(context_id, messages)).or_raise();
    metrics::count(Counter::MessagesAppended, seqs.len() as u64);
    SetOfIterator::new(seqs)
}

fn append_batch(context_id: Option<Uuid>, messages: Option<JsonArg>) -> CtxResult<Vec<i64>> {
    let context_id = required(context_id, "context_id")?;
    let messages = required(messages, "messages")?.parse("messages")?;
    let batch = rules::parse_batch(&messages, gucs::max_message_bytes())?;
    static APPEND_MANY: Statement = Statement {
        sql: "WITH c AS (
                  UPDATE ctx.contexts SET last_seq = last_seq + $5, updated_at = now()
                   WHERE id = $1 RETURNING last_seq - $5 AS base, encoding, tenant)
              INSERT INTO ctx.messages (context_id, tenant, seq, role, content, metadata, tokens)
              SELECT $1, c.tenant, c.base + m.ord, m.role, m.content, m.metadata,
                     ctx.count_tokens(m.content, c.encoding)
                FROM c, unnest($2::text[], $3::text[], $4::jsonb[]) WITH ORDINALITY AS m(role, content, metadata, ord)
              RETURNING seq",
        args: &[UUIDOID, TEXTARRAYOID, TEXTARRAYOID, JSONBARRAYOID, INT8OID],
        writes: true,
    };
    Spi::connect_mut(|client| {
        if batch.is_empty() {
            load_view(client, context_id, false)?; // still reject an unknown context
            return Ok(Vec::new());
        }
        let items = batch
            .into_iter()
            .map(|m| WriteItem::message(m.role, m.content, m.metadata))
            .collect();
        let (processed, sealed) = process_writes(client, context_id, items)?;
        let kept: Vec<WriteItem> = processed.into_iter().flatten().collect();
        if kept.is_empty() {
            return Ok(Vec::new()); // processors dropped every message
        }
        if let Some(encoding) = sealed {
            return append_sealed(client, context_id, encoding, kept);
        }
        let count = kept.len() as i64;
        let mut roles = Vec::with_capacity(kept.len());
        let mut contents = Vec::with_capacity(kept.len());
        let mut metadatas = Vec::with_capacity(kept.len());
        for message in kept {
            metadatas.push(JsonB(message.stamped_metadata()));
            roles.push(message.role.unwrap_or_default());
            contents.push(message.content.unwrap_or_default());
        }
        let plan = APPEND_MANY.plan(client)?;
        let table = client.update(
            &*plan,
            None,
            &[
                context_id.into(),
                roles.into(),
                contents.into(),
                metadatas.into(),
                count.into(),
            ],
        )?;
        let mut seqs = table
            .map(|row| required(row.get::<i64>(1)?, "seq"))
            .collect::<CtxResult<Vec<_>>>()?;
        if seqs.is_empty() {
            return Err(unknown_context(context_id));
        }
        seqs.sort_unstable();
        Ok(seqs)
    })
}

/// Runs the context's write processors over new messages (`None`: dropped by a processor),
/// then checks the metadata of those kept against the context's `metadata_schema`, if any
/// (SQLSTATE 23514). Errors name `messages[i]` when there are several.
fn process_writes(
    client: &SpiClient<'_>,
    context_id: Uuid,
    messages: Vec<WriteItem>,
) -> CtxResult<(Vec<Option<WriteItem>>, Option<Encoding>)> {
    static CONTEXT: Statement = Statement {
        sql: "SELECT metadata_schema, processors, metadata, encoding, encrypted, tenant
                FROM ctx.contexts WHERE id = $1",
        args: &[UUIDOID],
        writes: false,
    };
    let plan = CONTEXT.plan(client)?;
    let mut table = client.select(&*plan, Some(1), &[context_id.into()])?;
    let Some(row) = table.next() else {
        return Err(keys::missing_context(client, context_id));
    };
    let schema: Option<String> = row.get(1)?;
    let encrypted: bool = row.get(5)?.unwrap_or(false);
    let stored: Value = row.get::<JsonB>(2)?.map_or(Value::Null, |j| j.0);
    let context_metadata: Value = row.get::<JsonB>(3)?.map_or(Value::Null, |j| j.0);
    let encoding = Encoding::parse(&required::<String>(row.get(4)?, "encoding")?)?;
    let tenant: String = required(row.get(6)?, "tenant")?;
    let pipeline = Pipeline::for_context(
        client,
        Stage::Write,
        &ContextTarget {
            tenant: &tenant,
            id: context_id,
            metadata: &context_metadata,
        },
        &stored,
        None,
        encoding,
    )?;
    let compiled = match &schema {
        Some(name) => {
            let version = crate::api::schemas::latest_version(client, name)?;
            Some((
                name,
                version,
                crate::api::schemas::compiled(client, name, version)?,
            ))
        }
        None => None,
    };
    let several = messages.len() > 1;
    let name_it = |i: usize, e: CtxError| {
        if several {
            CtxError {
                message: format!("messages[{i}]: {}", e.message),
                ..e
            }
        } else {
            e
        }
    };
    let mut out = Vec::with_capacity(messages.len());
    for (i, message) in messages.into_iter().enumerate() {
        let processed = pipeline.write(message).map_err(|e| name_it(i, e))?;
        // placeholders and user processors can make a message longer
        if let Some(content) = processed.as_ref().and_then(|m| m.content.as_deref()) {
            rules::check_content(content, gucs::max_message_bytes()).map_err(|e| name_it(i, e))?;
        }
        if let (Some(m), Some((name, version, compiled))) = (&processed, &compiled) {
            compiled.check(&m.metadata, name, *version).map_err(|e| {
                if several {
                    CtxError {
                        message: format!("messages[{i}] metadata: {}", e.message),
                        ..e
                    }
                } else {
                    e
                }
            })?;
        }
        out.push(processed);
    }
    Ok((out, encrypted.then_some(encoding)))
}

/// Appends messages of an encrypted context: seqs are reserved first, because each ciphertext
/// is bound to its seq; token counts are taken from the plaintext here.
fn append_sealed(
    client: &mut SpiClient<'_>,
    context_id: Uuid,
    encoding: Encoding,
    messages: Vec<WriteItem>,
) -> CtxResult<Vec<i64>> {
    static RESERVE: Statement = Statement {
        sql: "UPDATE ctx.contexts SET last_seq = last_seq + $2, updated_at = now()
               WHERE id = $1 RETURNING last_seq - $2",
        args: &[UUIDOID, INT8OID],
        writes: true,
    };
    static INSERT_SEALED: Statement = Statement {
        sql: "INSERT INTO ctx.messages (context_id, seq, role, content_enc, metadata_enc, tokens)
              SELECT $1, $2 + m.ord, m.role, m.content, m.metadata, m.tokens
                FROM unnest($3::text[], $4::bytea[], $5::bytea[], $6::int[])
                     WITH ORDINALITY AS m(role, content, metadata, tokens, ord)",
        args: &[
            UUIDOID,
            INT8OID,
            TEXTARRAYOID,
            BYTEAARRAYOID,
            BYTEAARRAYOID,
            INT4ARRAYOID,
        ],
        writes: true,
    };
    let plan = RESERVE.plan(client)?;
    let base: i64 = crate::plans::first_value(client.update(
        &*plan,
        Some(1),
        &[context_id.into(), (messages.len() as i64).into()],
    )?)?
    .ok_or_else(|| unknown_context(context_id))?;
    let key = keys::data_key(client, &keys::Scope::Context(context_id))?;
    let (mut roles, mut contents, mut metadatas, mut tokens) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for (i, message) in messages.into_iter().enumerate() {
        let seq = base + i as i64 + 1;
        let content = message.content.clone().unwrap_or_default();
        let role = message.role.clone().unwrap_or_default();
        let metadata = serde_json::to_vec(&message.stamped_metadata())
            .map_err(|e| CtxError::internal(format!("metadata serialisation: {e}")))?;
        tokens.push(encoding.count(&content) as i32);
        contents.push(keys::seal(
            &key,
            content.as_bytes(),
            &message_aad(context_id, seq, &role, "messages.content"),
        )?);
        metadatas.push(keys::seal(
            &key,
            &metadata,
            &message_aad(context_id, seq, &role, "messages.metadata"),
        )?);
        roles.push(role);
    }
    let count = roles.len() as i64;
    let plan = INSERT_SEALED.plan(client)?;
    client.update(
        &*plan,
        None,
        &[
            context_id.into(),
            base.into(),
            roles.into(),
            contents.into(),
            metadatas.into(),
            tokens.into(),
        ],
    )?;
    Ok((base + 1..=base + count).collect())
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
            .map(Row::message),
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
        .map(Row::message),
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
        .map(Row::message),
    )
}

/// Rows fetched per index probe while walking back from the newest message; grows so long
/// windows take few probes and short ones read little.
const FIRST_BATCH: i64 = 32;
const MAX_BATCH: i64 = 4096;

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

/// The newest active messages (of `roles`) whose token counts fit in `budget`, oldest first;
/// the budget is reduced by what they use. Walks back in growing batches: O(window).
pub(crate) fn newest_within(
    client: &SpiClient<'_>,
    view: &View,
    budget: &mut i64,
    roles: Roles,
) -> CtxResult<Vec<Row>> {
    let after = view.compacted_through();
    let (mut top, mut oldest) = (None, None);
    // sized so a typical window (messages of ~30+ tokens) is found in one probe
    let first = (*budget / 32).clamp(FIRST_BATCH, MAX_BATCH);
    let (mut upto, mut batch) = (view.last_seq, first);
    loop {
        let newest = scan_newest(client, view, after, upto, batch, roles)?;
        let taken = rules::newest_that_fit(newest.iter().map(|&(_, t)| t), budget);
        if taken > 0 {
            top = top.or(Some(newest[0].0));
            oldest = Some(newest[taken - 1].0);
        }
        if taken < newest.len() || (newest.len() as i64) < batch {
            break;
        }
        upto = newest[taken - 1].0 - 1;
        batch = (batch * 4).min(MAX_BATCH);
    }
    match (top, oldest) {
        (Some(top), Some(oldest)) => read_range(client, view, oldest - 1, top, None, roles),
        _ => Ok(Vec::new()),
    }
}

/// Like `newest_within`, through the read processors: walks back from the newest message,
/// runs each through the pipeline (dropped ones cost nothing), skips repeats when `dedup` is
/// on, and stops at the first that does not fit in the budget (capped by `token_limit`) or
/// after `max_rows` messages. Oldest first; the budget is reduced by what they use. Also says
/// whether the walk reached the oldest active message (nothing left out between the summary
/// and these rows).
pub(crate) fn newest_processed(
    client: &SpiClient<'_>,
    view: &View,
    budget: &mut i64,
    max_rows: i64,
    roles: Roles,
    pipeline: &Pipeline,
) -> CtxResult<(Vec<Row>, bool)> {
    let after = view.compacted_through();
    let granted = pipeline
        .token_limit()
        .map_or(*budget, |limit| limit.min(*budget));
    let mut left = granted;
    let mut dedup = Dedup::default();
    let mut kept = Vec::new();
    let (mut upto, mut batch) = (view.last_seq, FIRST_BATCH);
    let mut exhausted = false;
    'walk: while (kept.len() as i64) < max_rows {
        let newest = scan_newest(client, view, after, upto, batch, roles)?;
        let (Some(&(top, _)), Some(&(oldest, _))) = (newest.first(), newest.last()) else {
            exhausted = true;
            break;
        };
        for row in read_range(client, view, oldest - 1, top, None, roles)?
            .into_iter()
            .rev()
        {
            // repeats are skipped before any processing: cheap, and keyed on what is stored
            if pipeline.dedup() && dedup.repeats(&row.role, &row.content) {
                continue;
            }
            let Some(row) = row.through(pipeline)? else {
                continue;
            };
            if i64::from(row.tokens) > left {
                break 'walk;
            }
            left -= i64::from(row.tokens);
            kept.push(row);
            if (kept.len() as i64) >= max_rows {
                break 'walk;
            }
        }
        if (newest.len() as i64) < batch {
            exhausted = true;
            break;
        }
        upto = oldest - 1;
        batch = (batch * 4).min(MAX_BATCH);
    }
    *budget -= granted - left;
    kept.reverse();
    Ok((kept, exhausted))
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
            .map(Row::history),
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
               WHERE context_id = $1 AND seq <= $2 AND content IS NOT NULL",
        args: &[UUIDOID, INT8OID],
        writes: true,
    };
    static INSERT_SUMMARY: Statement = Statement {
        sql:
            "INSERT INTO ctx.summaries (context_id, version, through_seq, content, metadata, tokens)
              SELECT $1, coalesce(max(version), 0) + 1, $2, $3, $4, ctx.count_tokens($3, $5)
                FROM ctx.summaries WHERE context_id = $1",
        args: &[UUIDOID, INT8OID, TEXTOID, JSONBOID, TEXTOID],
        writes: true,
    };
    Spi::connect_mut(|client| {
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
        client.update(&*plan, None, &[context_id.into(), through.into()])?;
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
        "SELECT coalesce(max(version), 0) + 1 FROM ctx.summaries WHERE context_id = $1",
        Some(1),
        &[context_id.into()],
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
fn insert_summary_version(
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

/// A new context that sees this one's messages up to `at_seq` (default: all) without copying
/// them; later appends on either side stay apart.
#[pg_extern(volatile, parallel_unsafe)]
fn fork(context_id: Option<Uuid>, at_seq: default!(Option<i64>, "NULL")) -> Uuid {
    fork_context(context_id, at_seq).or_raise()
}

fn fork_context(context_id: Option<Uuid>, at_seq: Option<i64>) -> CtxResult<Uuid> {
    let context_id = required(context_id, "context_id")?;
    static INSERT_FORK: Statement = Statement {
        sql: "INSERT INTO ctx.contexts (name, metadata, encoding, parent_id, ancestors, bounds, last_seq, metadata_schema, processors, encrypted)
              SELECT $1, $2, $3, $4, $5, $6, $7, metadata_schema, processors, encrypted FROM ctx.contexts WHERE id = $4
              RETURNING id",
        args: &[TEXTOID, JSONBOID, TEXTOID, UUIDOID, UUIDARRAYOID, INT8ARRAYOID, INT8OID],
        writes: true,
    };
    // The fork inherits the summaries that cover only messages it sees.
    static COPY_SUMMARIES: Statement = Statement {
        sql: "INSERT INTO ctx.summaries (context_id, version, through_seq, content, metadata, tokens, created_at)
              SELECT $1, version, through_seq, content, metadata, tokens, created_at
                FROM ctx.summaries WHERE context_id = $2 AND through_seq <= $3",
        args: &[UUIDOID, UUIDOID, INT8OID],
        writes: true,
    };
    Spi::connect_mut(|client| {
        let parent = load_view(client, context_id, false)?;
        let at_seq = rules::fork_point(at_seq, parent.last_seq)?;
        let lineage = parent.lineage.fork(*context_id.as_bytes(), at_seq);
        let ancestors: Vec<Uuid> = lineage
            .ancestors
            .iter()
            .map(|b| Uuid::from_bytes(*b))
            .collect();
        let plan = INSERT_FORK.plan(client)?;
        let mut table = client.update(
            &*plan,
            Some(1),
            &[
                parent.name.clone().into(),
                JsonB(parent.metadata.clone()).into(),
                parent.encoding.as_str().into(),
                context_id.into(),
                ancestors.into(),
                lineage.bounds.into(),
                at_seq.into(),
            ],
        )?;
        let row = table
            .next()
            .ok_or_else(|| CtxError::internal("INSERT returned no row"))?;
        let fork_id: Uuid = required(row.get(1)?, "id")?;
        if parent.encrypted {
            // the fork writes with its own key; what it inherits is re-sealed for it below
            keys::create_key(client, &keys::Scope::Context(fork_id), None)?;
        }
        // ... and its working memory as of now.
        static COPY_WORKING_MEMORY: Statement = Statement {
            sql: "INSERT INTO ctx.state (namespace, ns_key, key, value, version)
                  SELECT namespace, ns_key, $1::text, value, 1 FROM ctx.state
                   WHERE tenant = ctx.current_tenant() AND ns_key = $3 AND key = $2::text AND version > 0
                     AND (expires_at IS NULL OR expires_at > now())",
            args: &[UUIDOID, UUIDOID, TEXTOID],
            writes: true,
        };
        if !parent.encrypted {
            let plan = COPY_WORKING_MEMORY.plan(client)?;
            let wm_key = crate::api::state::working_memory_key();
            client.update(
                &*plan,
                None,
                &[fork_id.into(), context_id.into(), wm_key.as_str().into()],
            )?;
        }
        if parent.encrypted {
            copy_sealed_summaries(client, context_id, fork_id, at_seq)?;
            crate::api::state::reseal_working_memory(client, context_id, fork_id)?;
            return Ok(fork_id);
        }
        let plan = COPY_SUMMARIES.plan(client)?;
        client.update(
            &*plan,
            None,
            &[fork_id.into(), context_id.into(), at_seq.into()],
        )?;
        Ok(fork_id)
    })
}

/// The summaries a fork inherits, opened with the parent's key and sealed with the fork's.
fn copy_sealed_summaries(
    client: &mut SpiClient<'_>,
    parent: Uuid,
    fork: Uuid,
    at_seq: i64,
) -> CtxResult<()> {
    let rows: Vec<(i32, i64, Vec<u8>, Value, i32, TimestampWithTimeZone)> = client
        .select(
            "SELECT version, through_seq, content_enc, metadata, tokens, created_at
               FROM ctx.summaries WHERE context_id = $1 AND through_seq <= $2 ORDER BY version",
            None,
            &[parent.into(), at_seq.into()],
        )?
        .map(|row| {
            Ok((
                required(row.get(1)?, "version")?,
                required(row.get(2)?, "through_seq")?,
                required(row.get(3)?, "content_enc")?,
                row.get::<JsonB>(4)?.map_or(json!({}), |j| j.0),
                required(row.get(5)?, "tokens")?,
                required(row.get(6)?, "created_at")?,
            ))
        })
        .collect::<CtxResult<_>>()?;
    for (version, through, sealed, metadata, tokens, created_at) in rows {
        let content = open_summary(client, parent, version, &sealed)?;
        insert_summary_version(
            client,
            fork,
            version,
            through,
            &content,
            metadata,
            tokens,
            Some(created_at),
        )?;
    }
    Ok(())
}

/// Deletes a context and everything it owns. A context with forks is refused unless
/// `cascade` is true, which deletes the forks (and theirs) too. Returns the number of
/// contexts deleted.
#[pg_extern(volatile, parallel_unsafe)]
fn delete_context(
    context_id: Option<Uuid>,
    cascade: default!(Option<bool>, false),
    forget_memories: default!(Option<bool>, false),
) -> i64 {
    delete(context_id, cascade, forget_memories).or_raise()
}

fn delete(
    context_id: Option<Uuid>,
    cascade: Option<bool>,
    forget_memories: Option<bool>,
) -> CtxResult<i64> {
    let context_id = required(context_id, "context_id")?;
    let cascade = required(cascade, "cascade")?;
    let forget_memories = required(forget_memories, "forget_memories")?;
    static FORKS: Statement = Statement {
        sql: "SELECT count(*) FROM ctx.contexts WHERE ancestors @> ARRAY[$1]",
        args: &[UUIDOID],
        writes: false,
    };
    // locks the row without reading content: a shredded context can still be deleted
    static LOCK: Statement = Statement {
        sql: "SELECT 1 FROM ctx.contexts WHERE id = $1 FOR UPDATE",
        args: &[UUIDOID],
        writes: true,
    };
    Spi::connect_mut(|client| {
        let plan = LOCK.plan(client)?;
        if client
            .update(&*plan, Some(1), &[context_id.into()])?
            .is_empty()
        {
            return Err(keys::missing_context(client, context_id));
        }
        if !cascade {
            let plan = FORKS.plan(client)?;
            let forks: i64 = client
                .select(&*plan, Some(1), &[context_id.into()])?
                .first()
                .get_one()?
                .unwrap_or(0);
            if forks > 0 {
                return Err(CtxError::new(
                    ErrorKind::DependentObjects,
                    format!(
                        "cannot delete a context that has forks: {forks} fork(s) read its messages"
                    ),
                )
                .with_hint(
                    "delete the forks first, or call ctx.delete_context(id, cascade => true)",
                ));
            }
        }
        delete_rows(client, context_id, cascade, forget_memories)
    })
}

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
    // outlive them (their source_context becomes NULL).
    static DELETE: Statement = Statement {
        sql: "WITH gone AS (
                  DELETE FROM ctx.contexts WHERE id = $1 OR ($2 AND ancestors @> ARRAY[$1]) RETURNING id),
              forgotten AS (
                  DELETE FROM ctx.memories WHERE $3 AND source_context IN (SELECT id FROM gone)),
              working AS (
                  DELETE FROM ctx.state WHERE ns_key = $4 AND key IN (SELECT id::text FROM gone)),
              unkeyed AS (
                  DELETE FROM ctx.data_keys
                   WHERE scope IN (SELECT 'context:' || id FROM gone) AND wrapped IS NOT NULL)
              SELECT count(*) FROM gone",
        args: &[UUIDOID, BOOLOID, BOOLOID, TEXTOID],
        writes: true,
    };
    let plan = DELETE.plan(client)?;
    let deleted: Option<i64> = client
        .update(
            &*plan,
            Some(1),
            &[
                context_id.into(),
                cascade.into(),
                forget_memories.into(),
                crate::api::state::working_memory_key().into(),
            ],
        )?
        .first()
        .get_one()?;
    Ok(deleted.unwrap_or(0))
}

/// Number of tokens of `content` in `encoding` (default: the ctxstore.tokenizer setting).
#[pg_extern(stable, parallel_safe)]
fn count_tokens(content: Option<&str>, encoding: default!(Option<&str>, "NULL")) -> Option<i32> {
    let encoding = match encoding {
        Some(name) => Encoding::parse(name).or_raise(),
        None => gucs::default_encoding(),
    };
    content.map(|text| i32::try_from(encoding.count(text)).unwrap_or(i32::MAX))
}

/// lz4 block (with its length prepended) of a text, as ctxstore archives message content.
#[pg_extern(immutable, strict, parallel_safe)]
fn lz4_compress(content: &str) -> Vec<u8> {
    let block = archive::compress(content);
    metrics::count(Counter::BytesBeforeCompression, content.len() as u64);
    metrics::count(Counter::BytesAfterCompression, block.len() as u64);
    block
}

/// The text inside an lz4 block made by ctx.lz4_compress; corrupt input is an error.
#[pg_extern(immutable, strict, parallel_safe)]
fn lz4_decompress(block: &[u8]) -> String {
    archive::decompress(block).or_raise()
}
