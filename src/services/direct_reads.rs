//! Reads of one context's messages straight from its btree indexes, without a plan or an
//! executor: counts (every index entry of a range, with the visibility map check an
//! index-only scan makes) and walks (the rows of a page or a window, in index order). A short
//! read's SQL statement spends most of its time setting up its executor and copying each row
//! through SPI; these loops do neither. They read what the SQL statements read, under the same
//! snapshot, tenant and privileges; where that cannot be promised (a Citus cluster, whose local
//! table is an empty shell; serializable transactions, whose reads take predicate locks; a
//! transaction that has written, whose SQL reads take a new snapshot per statement; a role
//! without SELECT on the tables) the caller reads through SQL.

use std::cell::Cell;
use std::ffi::CStr;

use pgrx::datum::TimestampWithTimeZone;
use pgrx::pg_sys;
use pgrx::{FromDatum, IntoDatum, Uuid};

use crate::services::catalog_cache::{self, Kept};
use crate::services::stored_json::StoredJsonb;

/// The columns of ctx.messages a read takes, by attribute number.
#[derive(Clone, Copy)]
struct Columns {
    tenant: pg_sys::AttrNumber,
    context_id: pg_sys::AttrNumber,
    seq: pg_sys::AttrNumber,
    message_id: pg_sys::AttrNumber,
    revision: pg_sys::AttrNumber,
    deleted: pg_sys::AttrNumber,
    role: pg_sys::AttrNumber,
    content: pg_sys::AttrNumber,
    content_lz4: pg_sys::AttrNumber,
    content_enc: pg_sys::AttrNumber,
    metadata_enc: pg_sys::AttrNumber,
    metadata: pg_sys::AttrNumber,
    tokens: pg_sys::AttrNumber,
    created_at: pg_sys::AttrNumber,
    written_at: pg_sys::AttrNumber,
    trace_id: pg_sys::AttrNumber,
}

/// The columns of ctx.contexts, ctx.threads and ctx.summaries a context's view is read from.
#[derive(Clone, Copy)]
struct ViewColumns {
    // ctx.contexts
    name: pg_sys::AttrNumber,
    metadata: pg_sys::AttrNumber,
    encoding: pg_sys::AttrNumber,
    last_seq: pg_sys::AttrNumber,
    ancestors: pg_sys::AttrNumber,
    bounds: pg_sys::AttrNumber,
    processors: pg_sys::AttrNumber,
    encrypted: pg_sys::AttrNumber,
    retain_max_age: pg_sys::AttrNumber,
    retain_max_messages: pg_sys::AttrNumber,
    tenant: pg_sys::AttrNumber,
    id: pg_sys::AttrNumber,
    resource: pg_sys::AttrNumber,
    metadata_schema: pg_sys::AttrNumber,
    // ctx.threads
    thread_tenant: pg_sys::AttrNumber,
    thread_id: pg_sys::AttrNumber,
    thread_context: pg_sys::AttrNumber,
    framework: pg_sys::AttrNumber,
    // ctx.summaries
    summary_tenant: pg_sys::AttrNumber,
    summary_context: pg_sys::AttrNumber,
    version: pg_sys::AttrNumber,
    through_seq: pg_sys::AttrNumber,
    summary_content: pg_sys::AttrNumber,
    summary_content_enc: pg_sys::AttrNumber,
    summary_metadata: pg_sys::AttrNumber,
    summary_tokens: pg_sys::AttrNumber,
    summary_created_at: pg_sys::AttrNumber,
}

/// The message table, the three indexes the reads walk, and the table's columns; the tables
/// and primary keys a context's view is read from.
#[derive(Clone, Copy)]
struct Relations {
    contexts: pg_sys::Oid,
    contexts_key: pg_sys::Oid,
    threads: pg_sys::Oid,
    threads_key: pg_sys::Oid,
    summaries: pg_sys::Oid,
    summaries_key: pg_sys::Oid,
    view: ViewColumns,
    messages: pg_sys::Oid,
    /// the primary key (tenant, context_id, seq)
    by_seq: pg_sys::Oid,
    /// (tenant, context_id, created_at, seq)
    by_created: pg_sys::Oid,
    /// (tenant, context_id, created_at, seq) WHERE deleted
    tombstones: pg_sys::Oid,
    /// the unique (tenant, message_id, context_id)
    by_id: pg_sys::Oid,
    columns: Columns,
}

thread_local! {
    /// `Some(None)`: these reads do not apply.
    static KEPT: Kept<Relations> = const { Kept::new() };
}

/// Relcache invalidation callback (registered in `_PG_init`): the extension dropped, a table
/// distributed by Citus (its rows moved out), a policy or index changed, or any other change
/// looks the relations up again.
pub(crate) unsafe extern "C-unwind" fn forget(_arg: pg_sys::Datum, _relid: pg_sys::Oid) {
    KEPT.with(Kept::forget);
}

fn relations() -> Option<Relations> {
    // SAFETY: catalog lookups by name (none raises for a missing object) and the tables'
    // relcache entries, opened under AccessShareLock.
    KEPT.with(|kept| kept.get_or(|| unsafe { look_up() }))
}

/// Whether a table's row-level security is exactly ctxstore's: no policy but
/// `tenant_isolation`, permissive, for every command and every role, `USING (tenant =
/// ctx.current_tenant())` — the condition the direct reads key every scan by. (An added or
/// changed policy, which SQL would apply and these reads would not, sends the reads to SQL.)
unsafe fn tenant_isolation_only(
    table: pg_sys::Oid,
    tenant: pg_sys::AttrNumber,
    schema: pg_sys::Oid,
) -> bool {
    unsafe {
        let relation = pg_sys::try_relation_open(table, pg_sys::AccessShareLock as i32);
        if relation.is_null() {
            return false;
        }
        let described = (*relation).rd_rsdesc;
        let only = !described.is_null() && {
            let policies = (*described).policies;
            !policies.is_null()
                && (*policies).length == 1
                && tenant_isolation((*(*policies).elements).ptr_value.cast(), tenant, schema)
        };
        // (a table without row-level security has no descriptor: its reads are keyed by the
        // tenant all the same, through SQL or not)
        let no_security = !(*(*relation).rd_rel).relrowsecurity;
        pg_sys::relation_close(relation, pg_sys::NoLock as i32);
        only || no_security
    }
}

unsafe fn tenant_isolation(
    policy: *const pg_sys::RowSecurityPolicy,
    tenant: pg_sys::AttrNumber,
    schema: pg_sys::Oid,
) -> bool {
    unsafe {
        let name = CStr::from_ptr((*policy).policy_name);
        let public_only = pgrx::Array::<pg_sys::Oid>::from_polymorphic_datum(
            pg_sys::Datum::from((*policy).roles),
            (*policy).roles.is_null(),
            pg_sys::OIDARRAYOID,
        )
        .is_some_and(|roles| roles.iter().collect::<Vec<_>>() == [Some(pg_sys::InvalidOid)]);
        let qual = (*policy).qual as *const pg_sys::Node;
        if name != c"tenant_isolation"
            || !(*policy).permissive
            || (*policy).polcmd != b'*' as std::ffi::c_char
            || !public_only
            || qual.is_null()
            || (*qual).type_ != pg_sys::NodeTag::T_OpExpr
        {
            return false;
        }
        let op = qual as *const pg_sys::OpExpr;
        let args = (*op).args;
        if (*op).opfuncid != pg_sys::Oid::from(pg_sys::F_TEXTEQ)
            || args.is_null()
            || (*args).length != 2
        {
            return false;
        }
        let left = (*(*args).elements).ptr_value as *const pg_sys::Node;
        let right = (*(*args).elements.add(1)).ptr_value as *const pg_sys::Node;
        (*left).type_ == pg_sys::NodeTag::T_Var
            && (*(left as *const pg_sys::Var)).varattno == tenant
            && (*right).type_ == pg_sys::NodeTag::T_FuncExpr
            && {
                let function = (*(right as *const pg_sys::FuncExpr)).funcid;
                let function_name = pg_sys::get_func_name(function);
                !function_name.is_null()
                    && CStr::from_ptr(function_name) == c"current_tenant"
                    && pg_sys::get_func_namespace(function) == schema
            }
    }
}

unsafe fn look_up() -> Option<Relations> {
    unsafe {
        let schema = catalog_cache::local_ctx_schema()?;
        let relation = |name: &CStr| catalog_cache::relation(schema, name);
        // (each column found by name and checked for its type: a datum is read as that type)
        let column =
            |table, name: &CStr, type_oid| catalog_cache::typed_column(table, name, type_oid);
        use pg_sys::{
            BOOLOID, BYTEAOID, INT4OID, INT8ARRAYOID, INT8OID, INTERVALOID, JSONBOID, TEXTOID,
            TIMESTAMPTZOID, UUIDARRAYOID, UUIDOID,
        };
        let messages = relation(c"messages")?;
        let contexts = relation(c"contexts")?;
        let threads = relation(c"threads")?;
        let summaries = relation(c"summaries")?;
        for table in [messages, contexts, threads, summaries] {
            if !tenant_isolation_only(table, column(table, c"tenant", TEXTOID)?, schema) {
                return None;
            }
        }
        Some(Relations {
            contexts,
            contexts_key: relation(c"contexts_pkey")?,
            threads,
            threads_key: relation(c"threads_pkey")?,
            summaries,
            summaries_key: relation(c"summaries_pkey")?,
            view: ViewColumns {
                name: column(contexts, c"name", TEXTOID)?,
                metadata: column(contexts, c"metadata", JSONBOID)?,
                encoding: column(contexts, c"encoding", TEXTOID)?,
                last_seq: column(contexts, c"last_seq", INT8OID)?,
                ancestors: column(contexts, c"ancestors", UUIDARRAYOID)?,
                bounds: column(contexts, c"bounds", INT8ARRAYOID)?,
                processors: column(contexts, c"processors", JSONBOID)?,
                encrypted: column(contexts, c"encrypted", BOOLOID)?,
                retain_max_age: column(contexts, c"retain_max_age", INTERVALOID)?,
                retain_max_messages: column(contexts, c"retain_max_messages", INT4OID)?,
                tenant: column(contexts, c"tenant", TEXTOID)?,
                id: column(contexts, c"id", UUIDOID)?,
                resource: column(contexts, c"resource", TEXTOID)?,
                metadata_schema: column(contexts, c"metadata_schema", TEXTOID)?,
                thread_tenant: column(threads, c"tenant", TEXTOID)?,
                thread_id: column(threads, c"thread_id", TEXTOID)?,
                thread_context: column(threads, c"context_id", UUIDOID)?,
                framework: column(threads, c"framework", TEXTOID)?,
                summary_tenant: column(summaries, c"tenant", TEXTOID)?,
                summary_context: column(summaries, c"context_id", UUIDOID)?,
                version: column(summaries, c"version", INT4OID)?,
                through_seq: column(summaries, c"through_seq", INT8OID)?,
                summary_content: column(summaries, c"content", TEXTOID)?,
                summary_content_enc: column(summaries, c"content_enc", BYTEAOID)?,
                summary_metadata: column(summaries, c"metadata", JSONBOID)?,
                summary_tokens: column(summaries, c"tokens", INT4OID)?,
                summary_created_at: column(summaries, c"created_at", TIMESTAMPTZOID)?,
            },
            messages,
            by_seq: relation(c"messages_pkey")?,
            by_created: relation(c"messages_created_idx")?,
            tombstones: relation(c"messages_deleted_idx")?,
            by_id: relation(c"messages_id_idx")?,
            columns: Columns {
                tenant: column(messages, c"tenant", TEXTOID)?,
                context_id: column(messages, c"context_id", UUIDOID)?,
                seq: column(messages, c"seq", INT8OID)?,
                message_id: column(messages, c"message_id", TEXTOID)?,
                revision: column(messages, c"revision", INT4OID)?,
                deleted: column(messages, c"deleted", BOOLOID)?,
                role: column(messages, c"role", TEXTOID)?,
                content: column(messages, c"content", TEXTOID)?,
                content_lz4: column(messages, c"content_lz4", BYTEAOID)?,
                content_enc: column(messages, c"content_enc", BYTEAOID)?,
                metadata_enc: column(messages, c"metadata_enc", BYTEAOID)?,
                metadata: column(messages, c"metadata", JSONBOID)?,
                tokens: column(messages, c"tokens", INT4OID)?,
                created_at: column(messages, c"created_at", TIMESTAMPTZOID)?,
                written_at: column(messages, c"written_at", TIMESTAMPTZOID)?,
                trace_id: column(messages, c"trace_id", TEXTOID)?,
            },
        })
    }
}

/// The relations, if this transaction and role may read these tables directly.
fn usable(tables: impl Fn(&Relations) -> Vec<pg_sys::Oid>) -> Option<Relations> {
    if !crate::gucs::direct_reads() {
        return None;
    }
    let relations = relations()?;
    // SAFETY: reads of backend state and privilege checks by OID.
    let allowed = unsafe {
        // (a transaction that has written reads through SQL: its statements there take a new
        // snapshot that sees the writes, where these loops read under the calling statement's)
        pg_sys::GetCurrentTransactionIdIfAny() == pg_sys::InvalidTransactionId
            && pg_sys::ActiveSnapshotSet()
            // (with row_security off SQL refuses a role the policies apply to; another
            // extension's policy hooks add conditions these reads would not apply)
            && pg_sys::row_security
            && std::ptr::addr_of!(pg_sys::row_security_policy_hook_permissive).read().is_none()
            && std::ptr::addr_of!(pg_sys::row_security_policy_hook_restrictive).read().is_none()
            && pg_sys::XactIsoLevel < pg_sys::XACT_SERIALIZABLE as i32
            && tables(&relations).into_iter().all(|table| {
                pg_sys::pg_class_aclcheck(
                    table,
                    pg_sys::GetUserId(),
                    pg_sys::ACL_SELECT as pg_sys::AclMode,
                ) == pg_sys::AclResult::ACLCHECK_OK
            })
    };
    allowed.then_some(relations)
}

/// Which index a read walks.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Walked {
    /// the primary key: (tenant, context_id, seq)
    BySeq,
    /// (tenant, context_id, created_at, seq)
    ByCreated,
    /// the tombstones' partial index, in (created_at, seq) order
    Tombstones,
}

/// One context's entries: seq above `after_seq`, `created_at` in `created` when given.
pub(crate) struct EntryRange<'a> {
    pub tenant: &'a str,
    pub context_id: Uuid,
    pub after_seq: i64,
    pub created: Option<(TimestampWithTimeZone, TimestampWithTimeZone)>,
}

/// A table and one of its indexes, opened under AccessShareLock, if the index is one Postgres
/// itself would scan (valid, ready, live, not waiting for older snapshots to end), has no
/// descending column, a predicate only if `partial`, and leads with `leading` (the table's
/// attribute numbers). `None` otherwise, or if either was dropped since it was looked up
/// (both are closed again then; the locks are kept to the transaction's end, as a query's).
unsafe fn open_pair(
    table_oid: pg_sys::Oid,
    index_oid: pg_sys::Oid,
    leading: &[pg_sys::AttrNumber],
    partial: bool,
) -> Option<(pg_sys::Relation, pg_sys::Relation)> {
    unsafe {
        let table = pg_sys::try_relation_open(table_oid, pg_sys::AccessShareLock as i32);
        if table.is_null() {
            return None;
        }
        let index = pg_sys::try_relation_open(index_oid, pg_sys::AccessShareLock as i32);
        let usable = !index.is_null() && {
            let form = (*index).rd_index;
            let key_count = (*form).indnkeyatts as usize;
            let keys = (*form).indkey.values.as_slice(key_count);
            (*(*index).rd_rel).relkind == pg_sys::RELKIND_INDEX as std::ffi::c_char
                && (*form).indrelid == table_oid
                && (*form).indisvalid
                && (*form).indisready
                && (*form).indislive
                && !(*form).indcheckxmin
                && keys.len() >= leading.len()
                && keys[..leading.len()] == *leading
                && std::slice::from_raw_parts((*index).rd_indoption, key_count)
                    .iter()
                    .all(|&option| option == 0)
                && pg_sys::heap_attisnull(
                    (*index).rd_indextuple,
                    pg_sys::Anum_pg_index_indpred as i32,
                    std::ptr::null_mut(),
                ) != partial
        };
        if !usable {
            if !index.is_null() {
                pg_sys::relation_close(index, pg_sys::NoLock as i32);
            }
            pg_sys::relation_close(table, pg_sys::NoLock as i32);
            KEPT.with(Kept::forget);
            return None;
        }
        Some((table, index))
    }
}

/// An open index and its table, with the scan keys to read it by, closed when dropped (the
/// locks stay to the transaction's end, as a query's do).
struct OpenIndex {
    table: pg_sys::Relation,
    index: pg_sys::Relation,
    keys: Vec<pg_sys::ScanKeyData>,
}

impl OpenIndex {
    /// An index of ctx.messages keyed by a range; `None` if the index's columns are not the
    /// ones this code reads it by.
    unsafe fn open(
        relations: &Relations,
        walked: Walked,
        range: &EntryRange<'_>,
    ) -> Option<OpenIndex> {
        unsafe {
            let c = relations.columns;
            let (oid, expected): (pg_sys::Oid, &[pg_sys::AttrNumber]) = match walked {
                Walked::BySeq => (relations.by_seq, &[c.tenant, c.context_id, c.seq]),
                Walked::ByCreated => (
                    relations.by_created,
                    &[c.tenant, c.context_id, c.created_at, c.seq],
                ),
                Walked::Tombstones => (
                    relations.tombstones,
                    &[c.tenant, c.context_id, c.created_at, c.seq],
                ),
            };
            let (table, index) = open_pair(
                relations.messages,
                oid,
                expected,
                walked == Walked::Tombstones,
            )?;
            if (*(*index).rd_index).indnkeyatts as usize != expected.len() {
                pg_sys::relation_close(index, pg_sys::NoLock as i32);
                pg_sys::relation_close(table, pg_sys::NoLock as i32);
                return None;
            }
            let mut open = OpenIndex {
                table,
                index,
                keys: Vec::with_capacity(5),
            };
            // (the tenant compared in the index's collation: its entries are ordered by it)
            open.key(
                1,
                pg_sys::BTEqualStrategyNumber,
                pg_sys::F_TEXTEQ,
                *(*index).rd_indcollation,
                range.tenant.into_datum(),
            );
            open.key(
                2,
                pg_sys::BTEqualStrategyNumber,
                pg_sys::F_UUID_EQ,
                pg_sys::InvalidOid,
                range.context_id.into_datum(),
            );
            if let (Some((from, to)), false) = (range.created, walked == Walked::BySeq) {
                if !from.is_neg_infinity() {
                    open.key(
                        3,
                        pg_sys::BTGreaterEqualStrategyNumber,
                        pg_sys::F_TIMESTAMPTZ_GE,
                        pg_sys::InvalidOid,
                        from.into_datum(),
                    );
                }
                if !to.is_infinity() {
                    open.key(
                        3,
                        pg_sys::BTLessEqualStrategyNumber,
                        pg_sys::F_TIMESTAMPTZ_LE,
                        pg_sys::InvalidOid,
                        to.into_datum(),
                    );
                }
            }
            open.key(
                if walked == Walked::BySeq { 3 } else { 4 },
                pg_sys::BTGreaterStrategyNumber,
                pg_sys::F_INT8GT,
                pg_sys::InvalidOid,
                range.after_seq.into_datum(),
            );
            Some(open)
        }
    }

    unsafe fn key(
        &mut self,
        column: pg_sys::AttrNumber,
        strategy: u32,
        procedure: u32,
        collation: pg_sys::Oid,
        argument: Option<pg_sys::Datum>,
    ) {
        unsafe {
            let mut entry = std::mem::zeroed::<pg_sys::ScanKeyData>();
            pg_sys::ScanKeyEntryInitialize(
                &mut entry,
                0,
                column,
                strategy as pg_sys::StrategyNumber,
                pg_sys::InvalidOid,
                collation,
                pg_sys::Oid::from(procedure),
                argument.unwrap_or(pg_sys::Datum::from(0)),
            );
            self.keys.push(entry);
        }
    }

    /// A scan of the keys under the active snapshot, and a slot for the table's rows.
    /// `index_only`: the scan decides visibility from the visibility map, so the index must keep
    /// its pin on each leaf page while its entries are used (nbtree's README, "Making concurrent
    /// TID recycling safe"): without it, VACUUM could remove an entry's row and mark the page
    /// all-visible before the entry is counted.
    unsafe fn begin(
        &mut self,
        index_only: bool,
    ) -> (pg_sys::IndexScanDesc, *mut pg_sys::TupleTableSlot) {
        unsafe { self.begin_under(pg_sys::GetActiveSnapshot(), index_only) }
    }

    unsafe fn begin_under(
        &mut self,
        snapshot: pg_sys::Snapshot,
        index_only: bool,
    ) -> (pg_sys::IndexScanDesc, *mut pg_sys::TupleTableSlot) {
        unsafe {
            let scan = begin_scan(self.table, self.index, snapshot, self.keys.len() as i32);
            (*scan).xs_want_itup = index_only;
            pg_sys::index_rescan(
                scan,
                self.keys.as_mut_ptr(),
                self.keys.len() as i32,
                std::ptr::null_mut(),
                0,
            );
            (
                scan,
                pg_sys::table_slot_create(self.table, std::ptr::null_mut()),
            )
        }
    }
}

impl Drop for OpenIndex {
    fn drop(&mut self) {
        // SAFETY: opened by `open`, closed once; the locks are kept (NoLock).
        unsafe {
            pg_sys::relation_close(self.index, pg_sys::NoLock as i32);
            pg_sys::relation_close(self.table, pg_sys::NoLock as i32);
        }
    }
}

/// How many live messages (entries less tombstones) the range holds, or `None` where the
/// indexes cannot be read directly (the caller counts with SQL then).
pub(crate) fn count_live(range: &EntryRange<'_>) -> Option<i64> {
    let relations = usable(|r| vec![r.messages])?;
    let walked = match range.created {
        None => Walked::BySeq,
        Some(_) => Walked::ByCreated,
    };
    // SAFETY: the indexes are opened, scanned and closed within the call.
    unsafe {
        let entries = visible_entries(&mut OpenIndex::open(&relations, walked, range)?);
        let tombstones =
            visible_entries(&mut OpenIndex::open(&relations, Walked::Tombstones, range)?);
        Some(entries - tombstones)
    }
}

/// The entries matching the keys whose heap tuple the active snapshot sees: as an index-only
/// scan decides it, from the visibility map where the page is all-visible, else by fetching
/// the tuple.
unsafe fn visible_entries(open: &mut OpenIndex) -> i64 {
    unsafe {
        let (scan, slot) = open.begin(true);
        let mut map_buffer: pg_sys::Buffer = pg_sys::InvalidBuffer as pg_sys::Buffer;
        let mut count = 0i64;
        loop {
            let tid = pg_sys::index_getnext_tid(scan, pg_sys::ScanDirection::ForwardScanDirection);
            if tid.is_null() {
                break;
            }
            pgrx::check_for_interrupts!();
            let block = ((*tid).ip_blkid.bi_hi as u32) << 16 | (*tid).ip_blkid.bi_lo as u32;
            // (read per entry, after the entry: a bit read for an earlier entry could predate a
            // concurrent insert whose entry this is — the writer clears the bit first)
            let all_visible = pg_sys::visibilitymap_get_status(open.table, block, &mut map_buffer)
                & pg_sys::VISIBILITYMAP_ALL_VISIBLE as u8
                != 0;
            if !all_visible {
                if !pg_sys::index_fetch_heap(scan, slot) {
                    continue;
                }
                pg_sys::ExecClearTuple(slot);
            }
            count += 1;
        }
        if map_buffer != pg_sys::InvalidBuffer as pg_sys::Buffer {
            pg_sys::ReleaseBuffer(map_buffer);
        }
        pg_sys::ExecDropSingleTupleTableSlot(slot);
        pg_sys::index_endscan(scan);
        count
    }
}

/// A message row's columns as stored (content not yet decompressed or opened).
pub(crate) struct StoredMessage {
    pub seq: i64,
    pub role: String,
    pub content: Option<String>,
    pub content_lz4: Option<Vec<u8>>,
    pub content_enc: Option<Vec<u8>>,
    pub metadata_enc: Option<Vec<u8>>,
    pub metadata: Option<StoredJsonb>,
    pub tokens: i32,
    pub created_at: TimestampWithTimeZone,
    pub context_id: Uuid,
    pub trace_id: Option<String>,
    pub message_id: String,
    pub revision: i32,
    pub written_at: TimestampWithTimeZone,
}

/// A walk over one context's live messages (tombstones skipped) in an index's order.
pub(crate) struct Walk<'a> {
    pub range: EntryRange<'a>,
    /// written at or after this (an age bound)
    pub since: TimestampWithTimeZone,
    pub walked: Walked,
    pub descending: bool,
    /// the walk's side of a (created_at, seq) point: at or before it newest first, after it
    /// oldest first
    pub beside: Option<(TimestampWithTimeZone, i64)>,
    /// `Some(true)`: system messages only; `Some(false)`: all but system ones
    pub system: Option<bool>,
    pub skip: i64,
    pub limit: i64,
    /// a token budget: the walk stops at the first row that does not fit (then -1: closed,
    /// older rows may not skip over it), else takes each row's tokens from it
    pub budget: Option<&'a Cell<i64>>,
}

/// The walk's rows, or `None` where the indexes cannot be read directly.
pub(crate) fn walk(walk: &Walk<'_>) -> Option<Vec<StoredMessage>> {
    let relations = usable(|r| vec![r.messages])?;
    let mut range = EntryRange {
        tenant: walk.range.tenant,
        context_id: walk.range.context_id,
        after_seq: walk.range.after_seq,
        created: walk.range.created,
    };
    // (a point bounds the time keys on its side, its own time included: ties at its time are
    // told apart by seq below)
    if let Some((at, _)) = walk.beside {
        range.created = Some(match walk.descending {
            true => (TimestampWithTimeZone::negative_infinity(), at),
            false => (at, TimestampWithTimeZone::positive_infinity()),
        });
    }
    let c = relations.columns;
    // SAFETY: the index is opened, scanned and closed within the call; each row's datums are
    // copied out while the slot holds its tuple.
    unsafe {
        let mut open = OpenIndex::open(&relations, walk.walked, &range)?;
        let (scan, slot) = open.begin(false);
        let direction = match walk.descending {
            true => pg_sys::ScanDirection::BackwardScanDirection,
            false => pg_sys::ScanDirection::ForwardScanDirection,
        };
        let last_column = [
            c.tenant,
            c.context_id,
            c.seq,
            c.message_id,
            c.revision,
            c.deleted,
            c.role,
            c.content,
            c.content_lz4,
            c.content_enc,
            c.metadata_enc,
            c.metadata,
            c.tokens,
            c.created_at,
            c.written_at,
            c.trace_id,
        ]
        .into_iter()
        .max()
        .unwrap_or(1);
        let mut rows = Vec::new();
        let mut skipped = 0i64;
        let mut whole = true;
        while (rows.len() as i64) < walk.limit && pg_sys::index_getnext_slot(scan, direction, slot)
        {
            pgrx::check_for_interrupts!();
            pg_sys::slot_getsomeattrs_int(slot, last_column as i32);
            let column = |number: pg_sys::AttrNumber| {
                let at = (number - 1) as usize;
                (*(*slot).tts_values.add(at), *(*slot).tts_isnull.add(at))
            };
            match row_of(walk, &range, &c, column) {
                Ok(None) => {}
                Ok(Some(_)) if skipped < walk.skip => skipped += 1,
                Ok(Some(row)) => {
                    if let Some(budget) = walk.budget {
                        if i64::from(row.tokens) > budget.get() {
                            budget.set(-1);
                            break;
                        }
                        budget.set(budget.get() - i64::from(row.tokens));
                    }
                    rows.push(row)
                }
                Err(Broken) => {
                    whole = false;
                    break;
                }
            }
        }
        pg_sys::ExecDropSingleTupleTableSlot(slot);
        pg_sys::index_endscan(scan);
        whole.then_some(rows)
    }
}

/// A NOT NULL column read as NULL: the caller reads with SQL, which says what is wrong.
struct Broken;

/// One row of a walk: `None` for a tombstone or a row outside the walk's bounds.
unsafe fn row_of(
    walk: &Walk<'_>,
    range: &EntryRange<'_>,
    c: &Columns,
    column: impl Fn(pg_sys::AttrNumber) -> (pg_sys::Datum, bool),
) -> Result<Option<StoredMessage>, Broken> {
    // SAFETY: each datum is of its column's type (the columns were found by name).
    unsafe {
        let (deleted, _) = column(c.deleted);
        if deleted.value() != 0 {
            return Ok(None);
        }
        let (Some(written_at), Some(created_at), Some(seq)) = (
            value::<TimestampWithTimeZone>(column(c.written_at)),
            value::<TimestampWithTimeZone>(column(c.created_at)),
            value::<i64>(column(c.seq)),
        ) else {
            return Err(Broken);
        };
        if i64::from(written_at) < i64::from(walk.since) || !in_range(range, created_at) {
            return Ok(None);
        }
        if let Some((at, at_seq)) = walk.beside {
            let order = (i64::from(created_at), seq).cmp(&(i64::from(at), at_seq));
            let on_its_side = match walk.descending {
                true => order.is_le(),
                false => order.is_gt(),
            };
            if !on_its_side {
                return Ok(None);
            }
        }
        let (Some(role), Some(tokens), Some(context_id), Some(message_id), Some(revision)) = (
            value(column(c.role)),
            value(column(c.tokens)),
            value(column(c.context_id)),
            value(column(c.message_id)),
            value(column(c.revision)),
        ) else {
            return Err(Broken);
        };
        if walk
            .system
            .is_some_and(|system| (role == "system") != system)
        {
            return Ok(None);
        }
        Ok(Some(StoredMessage {
            seq,
            role,
            content: value(column(c.content)),
            content_lz4: value(column(c.content_lz4)),
            content_enc: value(column(c.content_enc)),
            metadata_enc: value(column(c.metadata_enc)),
            metadata: value(column(c.metadata)),
            tokens,
            created_at,
            context_id,
            trace_id: value(column(c.trace_id)),
            message_id,
            revision,
            written_at,
        }))
    }
}

fn in_range(range: &EntryRange<'_>, created_at: TimestampWithTimeZone) -> bool {
    range.created.is_none_or(|(from, to)| {
        let at = i64::from(created_at);
        (from.is_neg_infinity() || at >= i64::from(from))
            && (to.is_infinity() || at <= i64::from(to))
    })
}

/// A table's row found through its primary key by equality on the key's leading columns
/// (`newest`: the last of the matching ones in key order), copied out of the shared buffer.
struct FoundRow {
    slot: *mut pg_sys::TupleTableSlot,
}

impl FoundRow {
    /// The value of a column (deformed up to it on first use).
    unsafe fn value(&self, column: pg_sys::AttrNumber) -> (pg_sys::Datum, bool) {
        unsafe {
            if ((*self.slot).tts_nvalid as i32) < column as i32 {
                pg_sys::slot_getsomeattrs_int(self.slot, column as i32);
            }
            let at = (column - 1) as usize;
            (
                *(*self.slot).tts_values.add(at),
                *(*self.slot).tts_isnull.add(at),
            )
        }
    }
}

impl Drop for FoundRow {
    fn drop(&mut self) {
        // SAFETY: the slot was made by `find_row` and is dropped once.
        unsafe { pg_sys::ExecDropSingleTupleTableSlot(self.slot) }
    }
}

/// An equality key on an index column: the table's column it must be, the equality function,
/// the value, and whether it compares in the index's collation (text).
struct Equal {
    table_column: pg_sys::AttrNumber,
    procedure: u32,
    value: Option<pg_sys::Datum>,
    collated: bool,
}

/// `None` where the index's leading columns are not the keys' (the caller reads with SQL);
/// `Some(None)` when no visible row matches.
unsafe fn find_row(
    table_oid: pg_sys::Oid,
    index_oid: pg_sys::Oid,
    keys: &[Equal],
    newest: bool,
) -> Option<Option<FoundRow>> {
    unsafe {
        let expected: Vec<pg_sys::AttrNumber> = keys.iter().map(|k| k.table_column).collect();
        let (table, index) = open_pair(table_oid, index_oid, &expected, false)?;
        let mut open = OpenIndex {
            table,
            index,
            keys: Vec::with_capacity(keys.len()),
        };
        for (i, key) in keys.iter().enumerate() {
            open.key(
                (i + 1) as pg_sys::AttrNumber,
                pg_sys::BTEqualStrategyNumber,
                key.procedure,
                match key.collated {
                    true => *(*index).rd_indcollation.add(i),
                    false => pg_sys::InvalidOid,
                },
                key.value,
            );
        }
        let (scan, slot) = open.begin(false);
        let direction = match newest {
            true => pg_sys::ScanDirection::BackwardScanDirection,
            false => pg_sys::ScanDirection::ForwardScanDirection,
        };
        let found = pg_sys::index_getnext_slot(scan, direction, slot);
        if found {
            // (a local copy: the buffer is released with the scan)
            pg_sys::ExecMaterializeSlot(slot);
        }
        pg_sys::index_endscan(scan);
        let row = FoundRow { slot };
        Some(found.then_some(row))
    }
}

/// What a context's message id is, under its counter's lock.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum MessageId {
    Free,
    /// a message has it (live, edited or deleted: an id stays with its message)
    Taken,
    /// a message the transaction's snapshot cannot see has it (repeatable read): the statement
    /// would have failed to serialize
    Conflict,
}

/// The unique index `(tenant, message_id, context_id)` of ctx.messages and its table, opened
/// before an append's counter moves (whether the append may look its id up directly is then
/// known) and kept open for the look under the counter's lock (`lookup`).
pub(crate) struct IdIndex(OpenIndex);

/// The id index, if it is the one the schema made and this session may probe it directly.
pub(crate) fn id_index() -> Option<IdIndex> {
    // (serializable: the SQL path, as for the reads; `ctxstore.direct_reads = off`, too)
    // SAFETY: a read of the session's isolation level.
    if !crate::gucs::direct_reads()
        || unsafe { pg_sys::XactIsoLevel } >= pg_sys::XACT_SERIALIZABLE as i32
    {
        return None;
    }
    let relations = relations()?;
    let c = relations.columns;
    // SAFETY: `open_pair` checks the index's columns, validity and liveness; the open pair is
    // closed when the `OpenIndex` drops.
    unsafe {
        let leading = [c.tenant, c.message_id, c.context_id];
        let (table, index) = open_pair(relations.messages, relations.by_id, &leading, false)?;
        let open = OpenIndex {
            table,
            index,
            keys: Vec::with_capacity(3),
        };
        let form = (*index).rd_index;
        ((*form).indisunique && (*form).indnkeyatts == 3).then_some(IdIndex(open))
    }
}

impl IdIndex {
    /// The context's message id, looked up in its unique index as an INSERT's `ON CONFLICT` does
    /// (`check_exclusion_or_unique_constraint`): with a dirty snapshot, waiting for a transaction
    /// still inserting or deleting the row found and looking again, so an append that waited for
    /// the context's counter sees the message appended before it, and a message being deleted (a
    /// sweep) is free once the delete commits. Under repeatable read, a committed row the
    /// transaction's snapshot cannot see is a `Conflict`.
    pub(crate) fn lookup(self, tenant: &str, context_id: Uuid, message_id: &str) -> MessageId {
        let mut open = self.0;
        // SAFETY: three equality keys of the index's own column types; each scan and its slot are
        // released before a wait or the return.
        unsafe {
            let index = open.index;
            let collation = |i: usize| *(*index).rd_indcollation.add(i);
            let text = pg_sys::F_TEXTEQ;
            open.key(
                1,
                pg_sys::BTEqualStrategyNumber,
                text,
                collation(0),
                tenant.into_datum(),
            );
            open.key(
                2,
                pg_sys::BTEqualStrategyNumber,
                text,
                collation(1),
                message_id.into_datum(),
            );
            open.key(
                3,
                pg_sys::BTEqualStrategyNumber,
                pg_sys::F_UUID_EQ,
                pg_sys::InvalidOid,
                context_id.into_datum(),
            );
            loop {
                let mut dirty = std::mem::zeroed::<pg_sys::SnapshotData>();
                dirty.snapshot_type = pg_sys::SnapshotType::SNAPSHOT_DIRTY;
                let (scan, slot) = open.begin_under(&mut dirty, false);
                let found = pg_sys::index_getnext_slot(
                    scan,
                    pg_sys::ScanDirection::ForwardScanDirection,
                    slot,
                );
                pg_sys::index_endscan(scan);
                if !found {
                    pg_sys::ExecDropSingleTupleTableSlot(slot);
                    return MessageId::Free;
                }
                // (set by the dirty check: a transaction inserting, else deleting, the row)
                let waiting_for = if dirty.xmin != pg_sys::InvalidTransactionId {
                    dirty.xmin
                } else {
                    dirty.xmax
                };
                if waiting_for != pg_sys::InvalidTransactionId {
                    let mut tid = (*slot).tts_tid;
                    pg_sys::ExecDropSingleTupleTableSlot(slot);
                    pg_sys::XactLockTableWait(
                        waiting_for,
                        open.table,
                        &mut tid,
                        pg_sys::XLTW_Oper::XLTW_InsertIndex,
                    );
                    continue;
                }
                let conflict = pg_sys::XactIsoLevel >= pg_sys::XACT_REPEATABLE_READ as i32 && {
                    let getsysattr = (*(*slot).tts_ops)
                        .getsysattr
                        .expect("a heap slot reads system columns");
                    let mut null = false;
                    let xmin = getsysattr(slot, pg_sys::MinTransactionIdAttributeNumber, &mut null);
                    !null
                        && !pg_sys::TransactionIdIsCurrentTransactionId(
                            pg_sys::TransactionId::from(xmin.value() as u32),
                        )
                        && !visible_to_statement(&mut open)
                };
                pg_sys::ExecDropSingleTupleTableSlot(slot);
                return if conflict {
                    MessageId::Conflict
                } else {
                    MessageId::Taken
                };
            }
        }
    }
}

/// Whether the statement's snapshot sees a row under `open`'s keys.
unsafe fn visible_to_statement(open: &mut OpenIndex) -> bool {
    unsafe {
        let (scan, slot) = open.begin(false);
        let found =
            pg_sys::index_getnext_slot(scan, pg_sys::ScanDirection::ForwardScanDirection, slot);
        pg_sys::index_endscan(scan);
        pg_sys::ExecDropSingleTupleTableSlot(slot);
        found
    }
}

/// Which context a view is read for.
pub(crate) enum ContextKey<'a> {
    Id(Uuid),
    /// a thread's (`framework`: the one that must hold it, `None` for any)
    Thread {
        thread_id: &'a str,
        framework: Option<&'a str>,
    },
}

/// The primary key of ctx.contexts, `(tenant, id)`, as scan keys.
fn context_key(v: &ViewColumns, tenant: &str, context_id: Uuid) -> [Equal; 2] {
    [
        Equal {
            table_column: v.tenant,
            procedure: pg_sys::F_TEXTEQ,
            value: tenant.into_datum(),
            collated: true,
        },
        Equal {
            table_column: v.id,
            procedure: pg_sys::F_UUID_EQ,
            value: context_id.into_datum(),
            collated: false,
        },
    ]
}

/// A context's row, its latest summary's and its own retention bounds: the columns of the view
/// query (services::context_view), by the same positions.
pub(crate) struct ContextRow {
    context: FoundRow,
    summary: Option<FoundRow>,
    columns: ViewColumns,
    retained_after: i64,
    retained_since: TimestampWithTimeZone,
}

impl ContextRow {
    /// Column `n` (1-based) of the view query's row.
    pub(crate) fn column(&self, n: usize) -> (pg_sys::Datum, bool) {
        let v = &self.columns;
        let null = (pg_sys::Datum::from(0), true);
        // SAFETY: the rows are materialized copies owned by their slots.
        unsafe {
            let summary = |column| self.summary.as_ref().map_or(null, |s| s.value(column));
            match n {
                1 => self.context.value(v.name),
                2 => self.context.value(v.metadata),
                3 => self.context.value(v.encoding),
                4 => self.context.value(v.last_seq),
                5 => self.context.value(v.ancestors),
                6 => self.context.value(v.bounds),
                7 => summary(v.through_seq),
                8 => summary(v.summary_content),
                9 => summary(v.summary_metadata),
                10 => summary(v.summary_tokens),
                11 => summary(v.summary_created_at),
                12 => self.context.value(v.processors),
                13 => self.context.value(v.encrypted),
                14 => summary(v.summary_content_enc),
                15 => summary(v.version),
                16 => (pg_sys::Datum::from(self.retained_after), false),
                17 => (
                    self.retained_since
                        .into_datum()
                        .unwrap_or(pg_sys::Datum::from(0)),
                    false,
                ),
                18 => self.context.value(v.tenant),
                19 => self.context.value(v.id),
                20 => self.context.value(v.resource),
                _ => null,
            }
        }
    }
}

/// The tenant's context (by id, or the thread's), its latest summary and retention bounds, read
/// through the primary keys: `None` where they cannot be read directly (the caller reads with
/// SQL), `Some(None)` when there is no such context or thread.
pub(crate) fn context_row(tenant: &str, key: &ContextKey<'_>) -> Option<Option<ContextRow>> {
    let relations = usable(|r| vec![r.contexts, r.summaries, r.threads])?;
    let v = relations.view;
    // SAFETY: the rows are read through the primary keys and copied out; the datums are of the
    // types `look_up` checked.
    unsafe {
        let context_id = match key {
            ContextKey::Id(id) => *id,
            ContextKey::Thread {
                thread_id,
                framework,
            } => {
                let keys = [
                    Equal {
                        table_column: v.thread_tenant,
                        procedure: pg_sys::F_TEXTEQ,
                        value: tenant.into_datum(),
                        collated: true,
                    },
                    Equal {
                        table_column: v.thread_id,
                        procedure: pg_sys::F_TEXTEQ,
                        value: thread_id.into_datum(),
                        collated: true,
                    },
                ];
                let Some(thread) =
                    find_row(relations.threads, relations.threads_key, &keys, false)?
                else {
                    return Some(None);
                };
                let held_by = value::<String>(thread.value(v.framework));
                if framework.is_some_and(|f| held_by.as_deref() != Some(f)) {
                    return Some(None);
                }
                value::<Uuid>(thread.value(v.thread_context))?
            }
        };
        let keys = context_key(&v, tenant, context_id);
        let Some(context) = find_row(relations.contexts, relations.contexts_key, &keys, false)?
        else {
            return Some(None);
        };
        let keys = [
            Equal {
                table_column: v.summary_tenant,
                procedure: pg_sys::F_TEXTEQ,
                value: tenant.into_datum(),
                collated: true,
            },
            Equal {
                table_column: v.summary_context,
                procedure: pg_sys::F_UUID_EQ,
                value: context_id.into_datum(),
                collated: false,
            },
        ];
        let summary = find_row(relations.summaries, relations.summaries_key, &keys, true)?;
        // coalesce(last_seq - retain_max_messages, 0) and
        // coalesce(statement_timestamp() - retain_max_age, '-infinity'), as the view query has them
        let last_seq = value::<i64>(context.value(v.last_seq))?;
        let retained_after = value::<i32>(context.value(v.retain_max_messages))
            .map_or(0, |kept| last_seq - i64::from(kept));
        let (age, no_age) = context.value(v.retain_max_age);
        let retained_since = match no_age {
            true => TimestampWithTimeZone::negative_infinity(),
            false => pgrx::direct_function_call::<TimestampWithTimeZone>(
                pg_sys::timestamptz_mi_interval,
                &[
                    pg_sys::Datum::from(pg_sys::GetCurrentStatementStartTimestamp()).into(),
                    Some(age),
                ],
            )?,
        };
        Some(Some(ContextRow {
            context,
            summary,
            columns: v,
            retained_after,
            retained_since,
        }))
    }
}

/// What a write to a context reads of its row first: its metadata schema, processors,
/// metadata, encoding, whether it is encrypted, and its tenant.
pub(crate) struct WriteSettings {
    pub metadata_schema: Option<String>,
    pub processors: Option<pgrx::JsonB>,
    pub metadata: Option<pgrx::JsonB>,
    pub encoding: Option<String>,
    pub encrypted: Option<bool>,
    pub tenant: Option<String>,
}

/// The tenant's context row as a write reads it first, through the primary key: `None` where
/// it cannot be read directly (the caller reads with SQL), `Some(None)` for no such context.
pub(crate) fn write_settings(tenant: &str, context_id: Uuid) -> Option<Option<WriteSettings>> {
    let relations = usable(|r| vec![r.contexts])?;
    let v = relations.view;
    // SAFETY: the row is read through the primary key and copied out; the datums are of the
    // types `look_up` checked.
    unsafe {
        let keys = context_key(&v, tenant, context_id);
        let Some(row) = find_row(relations.contexts, relations.contexts_key, &keys, false)? else {
            return Some(None);
        };
        Some(Some(WriteSettings {
            metadata_schema: value(row.value(v.metadata_schema)),
            processors: value(row.value(v.processors)),
            metadata: value(row.value(v.metadata)),
            encoding: value(row.value(v.encoding)),
            encrypted: value(row.value(v.encrypted)),
            tenant: value(row.value(v.tenant)),
        }))
    }
}

/// A column's value (`None` for NULL).
unsafe fn value<T: FromDatum>((datum, null): (pg_sys::Datum, bool)) -> Option<T> {
    unsafe { T::from_datum(datum, null) }
}

#[cfg(feature = "pg18")]
unsafe fn begin_scan(
    table: pg_sys::Relation,
    index: pg_sys::Relation,
    snapshot: pg_sys::Snapshot,
    key_count: i32,
) -> pg_sys::IndexScanDesc {
    unsafe { pg_sys::index_beginscan(table, index, snapshot, std::ptr::null_mut(), key_count, 0) }
}

// (PostgreSQL 15 to 17: no instrumentation argument)
#[cfg(not(feature = "pg18"))]
unsafe fn begin_scan(
    table: pg_sys::Relation,
    index: pg_sys::Relation,
    snapshot: pg_sys::Snapshot,
    key_count: i32,
) -> pg_sys::IndexScanDesc {
    unsafe { pg_sys::index_beginscan(table, index, snapshot, key_count, 0) }
}
