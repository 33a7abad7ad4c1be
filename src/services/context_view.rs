//! A context as its readers see it (`View`: lineage, latest summary, retention bounds,
//! processor configuration) and the index-ordered reads of its messages that every window
//! and the context assembly are built from. Opens sealed messages and summaries.

use pgrx::datum::TimestampWithTimeZone;
use pgrx::pg_sys::BuiltinOid::{self, *};
use pgrx::spi::SpiClient;
use pgrx::{FromDatum, IntoDatum, JsonB, Uuid};
use serde_json::{json, Value};

use crate::core::conversation::{self as rules, Lineage};
use crate::core::processors::{Dedup, ReadMessage, Stage};
use crate::core::tokenizer::Encoding;
use crate::error::{required, CtxError, CtxResult, ErrorKind};
use crate::plans::Statement;
use crate::services::direct_reads::{self, StoredMessage};
use crate::services::keys;
use crate::services::pipeline::{ContextTarget, Pipeline};
pub(crate) use crate::services::stored_json::{Metadata, StoredJsonb};

/// A message or summary as read back.
#[derive(Clone)]
pub(crate) struct Row {
    pub seq: i64,
    pub role: String,
    pub content: String,
    pub metadata: Metadata,
    pub tokens: i32,
    pub created_at: TimestampWithTimeZone,
    pub archived: bool,
    /// the W3C trace id of the request that wrote it (messages only)
    pub trace_id: Option<String>,
    /// messages only: the id, the revision read, and when that revision was written
    pub message_id: Option<String>,
    pub revision: i32,
    pub written_at: Option<TimestampWithTimeZone>,
    /// a tombstone (only ctx.history reads them; content is empty)
    pub deleted: bool,
    /// the revision a message has now (ctx.history also reads the ones it replaced)
    pub current: bool,
    /// messages only: the context whose row it is (the reader's or an ancestor's)
    pub owner: Option<Uuid>,
}

impl Row {
    /// A summary as a row of the view: it stands for the messages up to `through_seq`.
    pub(crate) fn summary(
        through_seq: i64,
        content: String,
        metadata: Value,
        tokens: i32,
        created_at: TimestampWithTimeZone,
        archived: bool,
    ) -> Row {
        Row {
            seq: through_seq,
            role: rules::SUMMARY_ROLE.to_string(),
            content,
            metadata: metadata.into(),
            tokens,
            created_at,
            archived,
            trace_id: None,
            message_id: None,
            revision: 1,
            written_at: None,
            deleted: false,
            current: !archived,
            owner: None,
        }
    }
}

/// Which roles a read returns: context assembly reads system messages apart from the others.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Roles {
    All,
    SystemOnly,
    NonSystem,
    /// every role, tombstones too (ctx.history)
    History,
}

impl Row {
    /// This message as the read processors leave it (`None`: dropped), token count updated.
    pub(crate) fn through(self, pipeline: &Pipeline) -> CtxResult<Option<Row>> {
        let message = ReadMessage {
            role: self.role,
            content: self.content,
            metadata: self.metadata.into_value(),
            tokens: self.tokens.into(),
        };
        Ok(pipeline.read(self.seq, message)?.map(|m| Row {
            role: m.role,
            content: m.content,
            metadata: m.metadata.into(),
            tokens: m.tokens as i32,
            ..self
        }))
    }
}

impl Roles {
    fn param(self) -> &'static str {
        match self {
            Roles::All => "all",
            Roles::SystemOnly => "system",
            Roles::NonSystem => "other",
            Roles::History => "history",
        }
    }
}

// (Every table reference names the tenant parameter itself, not `c.tenant`: Citus routes a
// lateral subquery correlated on another table's tenant nowhere.)
macro_rules! view_query {
    ($($tail:literal)?) => {
        view_query!(where "c.id = $1 ", $($tail)?)
    };
    (where $which:literal, $($tail:literal)?) => {
        concat!(
            // (one index probe and the latest summary: a fork's ancestors' retention bounds are
            // read apart, by ANCESTOR_BOUNDS, so an unforked context's read plans no window,
            // sort or union, whose executor setup was a third of a short read's time)
            "SELECT c.name, c.metadata, c.encoding, c.last_seq, c.ancestors, c.bounds,
                    s.through_seq, s.content, s.metadata, s.tokens, s.created_at, c.processors,
                    c.encrypted, s.content_enc, s.version,
                    coalesce(c.last_seq - c.retain_max_messages, 0),
                    coalesce(statement_timestamp() - c.retain_max_age, '-infinity'), c.tenant,
                    c.id, c.resource
               FROM ctx.contexts c
               LEFT JOIN LATERAL (
                    SELECT through_seq, content, content_enc, metadata, tokens, created_at, version
                      FROM ctx.summaries
                     WHERE tenant = $2 AND context_id = c.id ORDER BY version DESC LIMIT 1) s ON true
              WHERE c.tenant = $2 AND ", $which,
            $($tail)?
        )
    };
}

// Each ancestor's own retention bounds, nearest first ($1: a fork's ancestors). A segment is
// read under its owner's policy and that of every context between it and the reader (each of
// them sees it): `view_by` takes the running maximum, starting from the fork's own bounds as the
// view query read them (in its snapshot, with its last_seq).
static ANCESTOR_BOUNDS: Statement = Statement {
    sql: "SELECT coalesce(p.last_seq - p.retain_max_messages, 0),
                 coalesce(statement_timestamp() - p.retain_max_age, '-infinity')
            FROM unnest($1::uuid[]) WITH ORDINALITY AS a(id, ord)
            LEFT JOIN ctx.contexts p ON p.tenant = $2 AND p.id = a.id
           ORDER BY a.ord",
    args: &[UUIDARRAYOID, TEXTOID],
    writes: false,
};

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
    /// The resource (user, agent, ...) it belongs to, if any.
    pub resource: Option<String>,
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

    /// A context without ancestors: its one segment as a range of its entries (seq above its
    /// retention bound; `created_at` in `created` when given) and its age bound, which the
    /// reads straight from its indexes take (services::direct_reads). `None` for a fork.
    pub(crate) fn own_segment(
        &self,
        created: Option<(TimestampWithTimeZone, TimestampWithTimeZone)>,
    ) -> Option<(direct_reads::EntryRange<'_>, TimestampWithTimeZone)> {
        self.lineage.ancestors.is_empty().then(|| {
            (
                direct_reads::EntryRange {
                    tenant: &self.tenant,
                    context_id: self.id,
                    after_seq: self.retained_after[0],
                    created,
                },
                self.retained_since[0],
            )
        })
    }

    /// Messages at or below this seq are replaced by the summary.
    pub fn compacted_through(&self) -> i64 {
        self.summary.as_ref().map_or(0, |s| s.seq)
    }

    /// Statement arguments $1, $2, $7, $8: per segment (own, then each ancestor's) its
    /// context id, highest visible seq, and retention bounds.
    pub(crate) fn segments(&self) -> (Vec<Uuid>, Vec<i64>, Vec<i64>, Vec<TimestampWithTimeZone>) {
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

static LOAD_VIEW: Statement = Statement {
    sql: view_query!(),
    args: &[UUIDOID, TEXTOID],
    writes: false,
};

// A thread's context ($1: the thread id, $3: the framework holding it, NULL for any): the thread
// row's primary key probe inside the view query, not a statement of its own.
static LOAD_THREAD_VIEW: Statement = Statement {
    sql: view_query!(where "c.id = (SELECT t.context_id FROM ctx.threads t
                                     WHERE t.tenant = $2 AND t.thread_id = $1
                                       AND ($3::text IS NULL OR t.framework = $3)) ",),
    args: &[TEXTOID, TEXTOID, TEXTOID],
    writes: false,
};

// Takes the context's row lock too: compaction and forks must not race appends.
static LOCK_VIEW: Statement = Statement {
    sql: view_query!("FOR NO KEY UPDATE OF c"),
    args: &[UUIDOID, TEXTOID],
    writes: true,
};

// Edits, deletes and purges take the row lock in its strongest mode: besides appends and other
// edits, it waits for (and holds off) a fork being taken, whose insert holds the KEY SHARE lock
// of its foreign key on this row until it commits. So a fork sees an edit exactly when the edit
// committed first, and an edit copies what a fork sees to every fork committed before it.
static LOCK_VIEW_EXCLUSIVE: Statement = Statement {
    sql: view_query!("FOR UPDATE OF c"),
    args: &[UUIDOID, TEXTOID],
    writes: true,
};

pub(crate) fn unknown_context(id: Uuid) -> CtxError {
    CtxError::new(
        ErrorKind::UndefinedObject,
        format!("context \"{id}\" does not exist"),
    )
    .with_hint("create it with ctx.create_context(), or check the id (it may have been deleted)")
}

/// Why a context id is not found: deleted, never existed, or shredded.
pub(crate) fn missing_context(client: &SpiClient<'_>, id: Uuid) -> CtxError {
    let shredded_at: Option<String> = client
        .select(
            "SELECT shredded_at::text FROM ctx.data_keys
              WHERE tenant = $2 AND scope = $1 AND shredded_at IS NOT NULL",
            Some(1),
            &[
                keys::Scope::Context(id).name().into(),
                crate::services::tenant::current()
                    .unwrap_or_default()
                    .into(),
            ],
        )
        .ok()
        .and_then(|t| crate::plans::first_value(t).ok().flatten());
    match shredded_at {
        Some(at) => CtxError::new(
            ErrorKind::UndefinedObject,
            format!("context \"{id}\" was shredded: its data can never be read again"),
        )
        .with_detail(format!("its data key was destroyed at {at}")),
        None => match tenant_elsewhere(client, id) {
            // (only a role that bypasses row-level security sees other tenants' contexts)
            Some(owner) => unknown_context(id).with_hint(format!(
                "contexts are found within the current tenant ({}); this one belongs to tenant {owner:?}: SET ctxstore.tenant to act on it",
                current_tenant_label()
            )),
            None => unknown_context(id),
        },
    }
}

/// The tenant of another tenant's context with this id, if the caller can see one.
fn tenant_elsewhere(client: &SpiClient<'_>, id: Uuid) -> Option<String> {
    client
        .select(
            // (asked only by a role that bypasses row-level security: no one else could see one)
            "SELECT tenant FROM ctx.contexts
              WHERE ctx.bypasses_rls() AND id = $1 AND tenant <> ctx.current_tenant() ORDER BY tenant LIMIT 1",
            Some(1),
            &[id.into()],
        )
        .ok()
        .and_then(|t| crate::plans::first_value(t).ok().flatten())
}

fn current_tenant_label() -> String {
    let tenant = crate::services::tenant::current().ok();
    match tenant.as_deref() {
        None | Some("") => "none".to_string(),
        Some(t) => format!("{t:?}"),
    }
}

pub(crate) fn load_view(client: &SpiClient<'_>, id: Uuid, lock: bool) -> CtxResult<View> {
    if !lock {
        // (read through the primary keys where it can be: see services::direct_reads)
        let tenant = crate::services::tenant::current()?;
        match direct_reads::context_row(&tenant, &direct_reads::ContextKey::Id(id)) {
            Some(Some(row)) => return view_of(client, &row),
            Some(None) => return Err(missing_context(client, id)),
            None => {}
        }
    }
    let statement = if lock { &LOCK_VIEW } else { &LOAD_VIEW };
    view_by(client, statement, id)
}

/// The view under the row lock that also orders it with forks being taken (edits, deletes,
/// purges: see LOCK_VIEW_EXCLUSIVE).
pub(crate) fn load_view_exclusive(client: &SpiClient<'_>, id: Uuid) -> CtxResult<View> {
    view_by(client, &LOCK_VIEW_EXCLUSIVE, id)
}

/// The view of a thread's context (`framework`: the one that must hold the thread, `None` for
/// any), `None` when the tenant has no such thread.
pub(crate) fn load_thread_view(
    client: &SpiClient<'_>,
    thread_id: &str,
    framework: Option<&str>,
) -> CtxResult<Option<View>> {
    let tenant = crate::services::tenant::current()?;
    let key = direct_reads::ContextKey::Thread {
        thread_id,
        framework,
    };
    if let Some(found) = direct_reads::context_row(&tenant, &key) {
        return found.map(|row| view_of(client, &row)).transpose();
    }
    let plan = LOAD_THREAD_VIEW.plan(client)?;
    let mut table = client.select(
        &*plan,
        Some(1),
        &[thread_id.into(), tenant.as_str().into(), framework.into()],
    )?;
    match table.next() {
        Some(row) => view_of(client, &row).map(Some),
        None => Ok(None),
    }
}

fn view_by(client: &SpiClient<'_>, statement: &'static Statement, id: Uuid) -> CtxResult<View> {
    let plan = statement.plan(client)?;
    let mut table = client.select(
        &*plan,
        Some(1),
        &[id.into(), crate::services::tenant::current()?.into()],
    )?;
    let Some(row) = table.next() else {
        return Err(missing_context(client, id));
    };
    view_of(client, &row)
}

/// A row of the view query's columns, read through SQL or straight from the tables.
trait ViewRow {
    fn get<T: FromDatum + IntoDatum>(&self, n: usize) -> CtxResult<Option<T>>;
}

impl ViewRow for pgrx::spi::SpiHeapTupleData<'_> {
    fn get<T: FromDatum + IntoDatum>(&self, n: usize) -> CtxResult<Option<T>> {
        Ok(pgrx::spi::SpiHeapTupleData::get(self, n)?)
    }
}

impl ViewRow for direct_reads::ContextRow {
    fn get<T: FromDatum + IntoDatum>(&self, n: usize) -> CtxResult<Option<T>> {
        let (datum, null) = self.column(n);
        // SAFETY: view_of asks each position for its column's type, which the lookup checked.
        Ok(unsafe { T::from_datum(datum, null) })
    }
}

/// A row of a view query as the view.
fn view_of(client: &SpiClient<'_>, row: &impl ViewRow) -> CtxResult<View> {
    let id: Uuid = required(row.get(19)?, "id")?;
    let ancestors: Vec<Uuid> = row.get(5)?.unwrap_or_default();
    let tenant: String = required(row.get(18)?, "tenant")?;
    let mut retained_after: Vec<i64> = vec![required(row.get(16)?, "retention seq bound")?];
    let mut retained_since: Vec<TimestampWithTimeZone> =
        vec![required(row.get(17)?, "retention time bound")?];
    if !ancestors.is_empty() {
        let plan = ANCESTOR_BOUNDS.plan(client)?;
        let bounds = client.select(
            &*plan,
            None,
            &[ancestors.clone().into(), tenant.as_str().into()],
        )?;
        for bound in bounds {
            let after: i64 = required(bound.get(1)?, "retention seq bound")?;
            let since: TimestampWithTimeZone = required(bound.get(2)?, "retention time bound")?;
            // (both vectors start with the fork's own bounds: never empty)
            let nearer_after = retained_after[retained_after.len() - 1];
            let nearer_since = retained_since[retained_since.len() - 1];
            retained_after.push(after.max(nearer_after));
            retained_since.push(if i64::from(since) > i64::from(nearer_since) {
                since
            } else {
                nearer_since
            });
        }
        if retained_after.len() != ancestors.len() + 1 {
            return Err(CtxError::internal(
                "a fork's retention bounds miss a segment",
            ));
        }
    }
    let summary = match row.get::<i64>(7)? {
        Some(through_seq) => Some(Row::summary(
            through_seq,
            match row.get::<Vec<u8>>(14)? {
                Some(sealed) => {
                    let version: i32 = required(row.get(15)?, "summary version")?;
                    open_summary(client, id, version, &sealed)?
                }
                None => row.get(8)?.unwrap_or_default(),
            },
            row.get::<JsonB>(9)?.map_or(Value::Null, |j| j.0),
            row.get(10)?.unwrap_or(0),
            required(row.get(11)?, "summary created_at")?,
            false,
        )),
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
        retained_after,
        retained_since,
        tenant,
        resource: row.get(20)?,
    })
}

pub(crate) fn summary_aad(context_id: Uuid, version: i32) -> Vec<u8> {
    keys::row_aad(
        "summaries.content",
        &[context_id.as_bytes(), &version.to_be_bytes()],
    )
}

pub(crate) fn open_summary(
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

/// A message's ciphertexts are bound to its context, seq, role and revision (a `user` message
/// cannot be turned into a `system` one by editing the plaintext role column, nor an old
/// revision's ciphertext put in place of the current one). The first revision binds no
/// revision number: messages sealed before revisions existed read as they were written.
pub(crate) fn message_aad(
    context_id: Uuid,
    seq: i64,
    role: &str,
    revision: i32,
    column: &str,
) -> Vec<u8> {
    let (seq, revision) = (seq.to_be_bytes(), revision.to_be_bytes());
    let mut ids: Vec<&[u8]> = vec![context_id.as_bytes(), &seq, role.as_bytes()];
    if revision != 1i32.to_be_bytes() {
        ids.push(&revision);
    }
    keys::row_aad(column, &ids)
}

/// Arguments of the range reads: segment ids, their bounds, (after, upto], limit, roles, each
/// segment's retention bounds (expired messages are never read), and the tenant.
pub(crate) const RANGE_ARGS: &[BuiltinOid] = &[
    UUIDARRAYOID,
    INT8ARRAYOID,
    INT8OID,
    INT8OID,
    INT8OID,
    TEXTOID,
    INT8ARRAYOID,
    TIMESTAMPTZARRAYOID,
    TEXTOID,
];

// The messages a segment contributes to a fork's view: live ones in its range that no nearer
// segment has a row for (a fork's own revision or tombstone of an inherited message hides the
// ancestor's; see ctx.update_message).
macro_rules! segment_rows {
    ($columns:literal, $roles:literal, $order:literal) => {
        concat!(
            "FROM unnest($1::uuid[], $2::bigint[], $7::bigint[], $8::timestamptz[])
                  WITH ORDINALITY AS s(cid, hi, lo, since, ord)
             CROSS JOIN LATERAL (
                  SELECT ",
            $columns,
            " FROM ctx.messages m
                   WHERE m.tenant = $9 AND m.context_id = s.cid
                     AND m.seq > greatest($3, s.lo) AND m.seq <= least(s.hi, $4)
                     AND m.written_at >= s.since AND (NOT m.deleted OR $6 = 'history') ",
            $roles,
            "
                     -- (joined, not `= ANY` of a slice: see listed_where)
                     AND (s.ord = 1 OR NOT EXISTS (
                          SELECT FROM unnest($1[1:s.ord - 1]) AS n(cid) JOIN ctx.messages o
                           ON o.tenant = $9 AND o.context_id = n.cid AND o.seq = m.seq))
                   ORDER BY m.seq ",
            $order,
            " LIMIT $5) m"
        )
    };
}

static SCAN_NEWEST: Statement = Statement {
    sql: concat!(
        "SELECT m.seq, m.tokens ",
        segment_rows!(
            "m.seq, m.tokens",
            "AND ($6 IN ('all', 'history') OR ($6 = 'system') = (m.role = 'system'))",
            "DESC"
        ),
        " ORDER BY m.seq DESC LIMIT $5"
    ),
    args: RANGE_ARGS,
    writes: false,
};

macro_rules! range_query {
    ($roles:literal) => {
        concat!(
            "SELECT m.seq, m.role, m.content, m.metadata, m.tokens, m.created_at, m.context_id,
                    m.content_enc, m.metadata_enc, m.trace_id, m.message_id, m.revision, m.written_at,
                    m.deleted ",
            segment_rows!(
                "m.seq, m.role, coalesce(m.content, ctx.lz4_decompress(m.content_lz4)) AS content,
                 m.metadata, m.tokens, m.created_at, m.context_id, m.content_enc, m.metadata_enc,
                 m.trace_id, m.message_id, m.revision, m.written_at, m.deleted",
                $roles,
                "ASC"
            ),
            " ORDER BY m.seq LIMIT $5"
        )
    };
}

static READ_RANGE: Statement = Statement {
    sql: range_query!("AND ($6 IN ('all', 'history') OR ($6 = 'system') = (m.role = 'system'))"),
    args: RANGE_ARGS,
    writes: false,
};

// System messages through their partial index (a literal role, which a parameter is not).
static READ_SYSTEM: Statement = Statement {
    sql: range_query!("AND m.role = 'system' AND $6 = 'system'"),
    args: RANGE_ARGS,
    writes: false,
};

// The same reads for a context without ancestors (the common case): plain bounds let the
// planner see the seq range and walk the primary key backwards for LIMIT; behind a lateral
// join it cannot, and with some statistics it picked a bitmap scan of the whole thread.
static SCAN_NEWEST_ONE: Statement = Statement {
    sql: "SELECT seq, tokens FROM ctx.messages m
           WHERE tenant = $9 AND context_id = $1[1] AND seq > greatest($3, $7[1]) AND seq <= $4
             AND written_at >= $8[1] AND (NOT deleted OR $6 = 'history')
             AND ($6 IN ('all', 'history') OR ($6 = 'system') = (role = 'system'))
           ORDER BY seq DESC LIMIT $5",
    args: RANGE_ARGS,
    writes: false,
};

macro_rules! range_query_one {
    ($roles:literal) => {
        concat!(
            "SELECT ",
            "m.seq, m.role, coalesce(m.content, ctx.lz4_decompress(m.content_lz4)),
             m.metadata, m.tokens, m.created_at, m.context_id, m.content_enc, m.metadata_enc, m.trace_id,
             m.message_id, m.revision, m.written_at, m.deleted
               FROM ctx.messages m
              WHERE m.tenant = $9 AND m.context_id = $1[1] AND m.seq > greatest($3, $7[1]) AND m.seq <= $4
                AND m.written_at >= $8[1] AND (NOT m.deleted OR $6 = 'history') ",
            $roles,
            " ORDER BY m.seq LIMIT $5"
        )
    };
}

static READ_RANGE_ONE: Statement = Statement {
    sql: range_query_one!(
        "AND ($6 IN ('all', 'history') OR ($6 = 'system') = (m.role = 'system'))"
    ),
    args: RANGE_ARGS,
    writes: false,
};

static READ_SYSTEM_ONE: Statement = Statement {
    sql: range_query_one!("AND m.role = 'system' AND $6 = 'system'"),
    args: RANGE_ARGS,
    writes: false,
};

/// (seq, tokens) of the view's messages in (after, upto], newest first, at most `limit`.
pub(crate) fn scan_newest(
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
            view.tenant.as_str().into(),
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
            view.tenant.as_str().into(),
        ],
    )?;
    rows_of(client, table, view.compacted_through(), true)
}

/// Message rows of the range reads' column list, opened where sealed; those at or below
/// `compacted_through` are flagged archived.
pub(crate) fn rows_of(
    client: &SpiClient<'_>,
    table: pgrx::spi::SpiTupleTable<'_>,
    compacted_through: i64,
    current: bool,
) -> CtxResult<Vec<Row>> {
    table
        .map(|row| {
            let seq = required(row.get::<i64>(1)?, "seq")?;
            let role: String = required(row.get(2)?, "role")?;
            let revision: i32 = required(row.get(12)?, "revision")?;
            let deleted: bool = required(row.get(14)?, "deleted")?;
            let owner: Uuid = required(row.get(7)?, "context_id")?;
            let (content, metadata) = match row.get::<Vec<u8>>(8)? {
                // encrypted: opened with the key of the context that wrote it (maybe an ancestor)
                Some(sealed) => {
                    let at = SealedAt {
                        context_id: owner,
                        seq,
                        role: &role,
                        revision,
                    };
                    let (content, metadata) =
                        open_message(client, &at, &sealed, row.get::<Vec<u8>>(9)?.as_deref())?;
                    (content, Metadata::Value(metadata))
                }
                None if deleted => (String::new(), Metadata::Value(json!({}))),
                None => (
                    required(row.get(3)?, "content")?,
                    row.get::<StoredJsonb>(4)?
                        .map_or(Metadata::Value(json!({})), Metadata::Stored),
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
                message_id: row.get(11)?,
                revision,
                written_at: row.get(13)?,
                deleted,
                current,
                owner: Some(owner),
            })
        })
        .collect()
}

/// A message row read straight from the table (services::direct_reads) as a row of the view:
/// what `rows_of` makes of the same row read through SQL.
pub(crate) fn stored_row(
    client: &SpiClient<'_>,
    m: StoredMessage,
    compacted_through: i64,
) -> CtxResult<Row> {
    let (content, metadata) = match m.content_enc {
        // encrypted: opened with the key of the context that wrote it
        Some(sealed) => {
            let at = SealedAt {
                context_id: m.context_id,
                seq: m.seq,
                role: &m.role,
                revision: m.revision,
            };
            let (content, metadata) =
                open_message(client, &at, &sealed, m.metadata_enc.as_deref())?;
            (content, Metadata::Value(metadata))
        }
        None => {
            let content = match (m.content, m.content_lz4) {
                (Some(content), _) => content,
                (None, Some(block)) => crate::core::archive::decompress(&block)?,
                (None, None) => {
                    return Err(CtxError::internal(format!(
                        "message {} of context {} has no content",
                        m.seq, m.context_id
                    )))
                }
            };
            (
                content,
                m.metadata
                    .map_or(Metadata::Value(json!({})), Metadata::Stored),
            )
        }
    };
    Ok(Row {
        seq: m.seq,
        role: m.role,
        content,
        metadata,
        tokens: m.tokens,
        created_at: m.created_at,
        archived: m.seq <= compacted_through,
        trace_id: m.trace_id,
        message_id: Some(m.message_id),
        revision: m.revision,
        written_at: Some(m.written_at),
        deleted: false,
        current: true,
        owner: Some(m.context_id),
    })
}

/// A one-segment read straight from the indexes (services::direct_reads) as rows of the view,
/// or `None` where it must go through SQL.
pub(crate) fn walked_rows(
    client: &SpiClient<'_>,
    view: &View,
    walk: &direct_reads::Walk<'_>,
) -> CtxResult<Option<Vec<Row>>> {
    let Some(stored) = direct_reads::walk(walk) else {
        return Ok(None);
    };
    let compacted_through = view.compacted_through();
    stored
        .into_iter()
        .map(|m| stored_row(client, m, compacted_through))
        .collect::<CtxResult<Vec<Row>>>()
        .map(Some)
}

/// Where a message revision was sealed: what its associated data names.
pub(crate) struct SealedAt<'a> {
    pub context_id: Uuid,
    pub seq: i64,
    pub role: &'a str,
    pub revision: i32,
}

/// A sealed message revision's content and metadata, opened with its context's key.
pub(crate) fn open_message(
    client: &SpiClient<'_>,
    at: &SealedAt<'_>,
    content: &[u8],
    metadata: Option<&[u8]>,
) -> CtxResult<(String, Value)> {
    let key = keys::data_key(client, &keys::Scope::Context(at.context_id))?;
    let what = format!(
        "message {} (revision {}) of context {}",
        at.seq, at.revision, at.context_id
    );
    let aad = |column| message_aad(at.context_id, at.seq, at.role, at.revision, column);
    let text = keys::open_text(&key, content, &aad("messages.content"), &what)?;
    let metadata = match metadata {
        Some(m) => keys::open_json(&key, m, &aad("messages.metadata"), &what)?,
        None => json!({}),
    };
    Ok((text, metadata))
}

/// A message revision's content and metadata, sealed for its place.
pub(crate) fn seal_message(
    key: &crate::core::crypto::Key,
    at: &SealedAt<'_>,
    content: &str,
    metadata: &Value,
) -> CtxResult<(Vec<u8>, Vec<u8>)> {
    let metadata = serde_json::to_vec(metadata)
        .map_err(|e| CtxError::internal(format!("metadata serialisation: {e}")))?;
    let aad = |column| message_aad(at.context_id, at.seq, at.role, at.revision, column);
    Ok((
        keys::seal(key, content.as_bytes(), &aad("messages.content"))?,
        keys::seal(key, &metadata, &aad("messages.metadata"))?,
    ))
}

/// Rows fetched per index probe while walking back from the newest message; grows so long
/// windows take few probes and short ones read little.
const FIRST_BATCH: i64 = 32;

const MAX_BATCH: i64 = 4096;

/// The newest active messages (of `roles`) whose token counts fit in `budget`, oldest first;
/// the budget is reduced by what they use. Walks back in growing batches: O(window).
pub(crate) fn newest_within(
    client: &SpiClient<'_>,
    view: &View,
    budget: &mut i64,
    roles: Roles,
) -> CtxResult<Vec<Row>> {
    let after = view.compacted_through();
    // (a context without ancestors: one walk of its primary key, newest first, that stops at
    // the first message that does not fit, reading each row once)
    if let (Some((mut range, since)), false) = (view.own_segment(None), roles == Roles::History) {
        range.after_seq = range.after_seq.max(after);
        let left = std::cell::Cell::new(*budget);
        let walk = direct_reads::Walk {
            range,
            since,
            walked: direct_reads::Walked::BySeq,
            descending: true,
            beside: None,
            system: match roles {
                Roles::SystemOnly => Some(true),
                Roles::NonSystem => Some(false),
                Roles::All | Roles::History => None,
            },
            skip: 0,
            limit: i64::MAX,
            budget: Some(&left),
        };
        if let Some(mut rows) = walked_rows(client, view, &walk)? {
            *budget = left.get();
            rows.reverse();
            return Ok(rows);
        }
    }
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
