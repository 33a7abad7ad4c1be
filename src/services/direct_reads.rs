//! Reads of one context's messages straight from its btree indexes, without a plan or an
//! executor: counts (every index entry of a range, with the visibility map check an
//! index-only scan makes) and walks (the rows of a page or a window, in index order). A short
//! read's SQL statement spends most of its time setting up its executor and copying each row
//! through SPI; these loops do neither. They read what the SQL statements read, under the same
//! snapshot, tenant and privileges; where that cannot be promised (a Citus cluster, whose local
//! table is an empty shell; serializable transactions, whose reads take predicate locks; a role
//! without SELECT on the table) the caller reads through SQL.

use std::cell::Cell;
use std::ffi::CStr;

use pgrx::datum::TimestampWithTimeZone;
use pgrx::pg_sys;
use pgrx::{FromDatum, IntoDatum, Uuid};

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

/// The message table, the three indexes the reads walk, and the table's columns.
#[derive(Clone, Copy)]
struct Relations {
    messages: pg_sys::Oid,
    /// the primary key (tenant, context_id, seq)
    by_seq: pg_sys::Oid,
    /// (tenant, context_id, created_at, seq)
    by_created: pg_sys::Oid,
    /// (tenant, context_id, created_at, seq) WHERE deleted
    tombstones: pg_sys::Oid,
    columns: Columns,
}

thread_local! {
    /// `None`: not looked up since the last invalidation; `Some(None)`: these reads do not apply.
    static KEPT: Cell<Option<Option<Relations>>> = const { Cell::new(None) };
}

/// Relcache invalidation callback (registered in `_PG_init`): the extension dropped, a table
/// distributed by Citus (its rows moved out) or any other change looks the relations up again.
pub(crate) unsafe extern "C-unwind" fn forget(_arg: pg_sys::Datum, _relid: pg_sys::Oid) {
    KEPT.set(None);
}

fn relations() -> Option<Relations> {
    if let Some(kept) = KEPT.get() {
        return kept;
    }
    // SAFETY: catalog lookups by name; none raises for a missing object (missing_ok).
    let found = unsafe { look_up() };
    KEPT.set(Some(found));
    found
}

unsafe fn look_up() -> Option<Relations> {
    unsafe {
        if pg_sys::get_extension_oid(c"citus".as_ptr(), true) != pg_sys::InvalidOid {
            return None;
        }
        let schema = pg_sys::get_namespace_oid(c"ctx".as_ptr(), true);
        if schema == pg_sys::InvalidOid {
            return None;
        }
        let relation = |name: &CStr| {
            let oid = pg_sys::get_relname_relid(name.as_ptr(), schema);
            (oid != pg_sys::InvalidOid).then_some(oid)
        };
        let messages = relation(c"messages")?;
        let column = |name: &CStr| {
            let number = pg_sys::get_attnum(messages, name.as_ptr());
            (number > 0).then_some(number)
        };
        Some(Relations {
            messages,
            by_seq: relation(c"messages_pkey")?,
            by_created: relation(c"messages_created_idx")?,
            tombstones: relation(c"messages_deleted_idx")?,
            columns: Columns {
                tenant: column(c"tenant")?,
                context_id: column(c"context_id")?,
                seq: column(c"seq")?,
                message_id: column(c"message_id")?,
                revision: column(c"revision")?,
                deleted: column(c"deleted")?,
                role: column(c"role")?,
                content: column(c"content")?,
                content_lz4: column(c"content_lz4")?,
                content_enc: column(c"content_enc")?,
                metadata_enc: column(c"metadata_enc")?,
                metadata: column(c"metadata")?,
                tokens: column(c"tokens")?,
                created_at: column(c"created_at")?,
                written_at: column(c"written_at")?,
                trace_id: column(c"trace_id")?,
            },
        })
    }
}

/// The relations, if this transaction and role may read them directly.
fn usable() -> Option<Relations> {
    if !crate::gucs::direct_reads() {
        return None;
    }
    let relations = relations()?;
    // SAFETY: reads of a backend global and a privilege check by OID.
    let allowed = unsafe {
        pg_sys::XactIsoLevel < pg_sys::XACT_SERIALIZABLE as i32
            && pg_sys::pg_class_aclcheck(
                relations.messages,
                pg_sys::GetUserId(),
                pg_sys::ACL_SELECT as pg_sys::AclMode,
            ) == pg_sys::AclResult::ACLCHECK_OK
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

/// An open index of ctx.messages, its scan keys set from a range, closed when dropped (the
/// locks stay to the transaction's end, as a query's do).
struct OpenIndex {
    table: pg_sys::Relation,
    index: pg_sys::Relation,
    keys: Vec<pg_sys::ScanKeyData>,
}

impl OpenIndex {
    /// `None` if the index's columns are not the ones this code reads it by.
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
            let table = pg_sys::table_open(relations.messages, pg_sys::AccessShareLock as i32);
            let index = pg_sys::index_open(oid, pg_sys::AccessShareLock as i32);
            let form = (*index).rd_index;
            let key_count = (*form).indnkeyatts as usize;
            if (*form).indkey.values.as_slice(key_count) != expected {
                pg_sys::index_close(index, pg_sys::NoLock as i32);
                pg_sys::table_close(table, pg_sys::NoLock as i32);
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
    unsafe fn begin(&mut self) -> (pg_sys::IndexScanDesc, *mut pg_sys::TupleTableSlot) {
        unsafe {
            let snapshot = pg_sys::GetActiveSnapshot();
            let scan = begin_scan(self.table, self.index, snapshot, self.keys.len() as i32);
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
            pg_sys::index_close(self.index, pg_sys::NoLock as i32);
            pg_sys::table_close(self.table, pg_sys::NoLock as i32);
        }
    }
}

/// How many live messages (entries less tombstones) the range holds, or `None` where the
/// indexes cannot be read directly (the caller counts with SQL then).
pub(crate) fn count_live(range: &EntryRange<'_>) -> Option<i64> {
    let relations = usable()?;
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
        let (scan, slot) = open.begin();
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
    let relations = usable()?;
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
        let (scan, slot) = open.begin();
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
