//! Counts of a context's messages read straight from its btree indexes, without a plan or an
//! executor: the total of a paged list (`ctx.count_messages`, `ctx.thread_page`) visits every
//! index entry of the range, and per entry a loop over `index_getnext_tid` with the visibility
//! map check an index-only scan makes costs a fraction of the executor's. The same entries as
//! the SQL count, under the same snapshot, tenant and privileges; where that cannot be promised
//! (a Citus cluster, whose local table is an empty shell; serializable transactions, whose
//! reads take predicate locks; a role without SELECT on the table) the caller counts with SQL.

use std::cell::Cell;
use std::ffi::CStr;

use pgrx::datum::TimestampWithTimeZone;
use pgrx::pg_sys;
use pgrx::{IntoDatum, Uuid};

/// The message table, the three indexes a count reads, and the table's key columns.
#[derive(Clone, Copy)]
struct Relations {
    messages: pg_sys::Oid,
    /// the primary key (tenant, context_id, seq)
    by_seq: pg_sys::Oid,
    /// (tenant, context_id, created_at, seq)
    by_created: pg_sys::Oid,
    /// (tenant, context_id, created_at, seq) WHERE deleted
    tombstones: pg_sys::Oid,
    /// the table's attribute numbers of tenant, context_id, created_at and seq
    columns: [pg_sys::AttrNumber; 4],
}

thread_local! {
    /// `None`: not looked up since the last invalidation; `Some(None)`: this path does not apply.
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
            columns: [
                column(c"tenant")?,
                column(c"context_id")?,
                column(c"created_at")?,
                column(c"seq")?,
            ],
        })
    }
}

/// The entries of one context to count: seq above `after_seq`, and `created_at` in
/// `created` when given.
pub(crate) struct EntryRange<'a> {
    pub tenant: &'a str,
    pub context_id: Uuid,
    pub after_seq: i64,
    pub created: Option<(TimestampWithTimeZone, TimestampWithTimeZone)>,
}

/// How many live messages (entries less tombstones) the range holds, or `None` where the
/// indexes cannot be read directly (the caller counts with SQL then).
pub(crate) fn count_live(range: &EntryRange<'_>) -> Option<i64> {
    if !crate::gucs::direct_counts() {
        return None;
    }
    let relations = relations()?;
    // SAFETY: the relations are opened under AccessShareLock (kept to the transaction's end,
    // as a query keeps them) and closed; every scan is ended before they are.
    unsafe {
        if pg_sys::XactIsoLevel >= pg_sys::XACT_SERIALIZABLE as i32
            || pg_sys::pg_class_aclcheck(
                relations.messages,
                pg_sys::GetUserId(),
                pg_sys::ACL_SELECT as pg_sys::AclMode,
            ) != pg_sys::AclResult::ACLCHECK_OK
        {
            return None;
        }
        let table = pg_sys::table_open(relations.messages, pg_sys::AccessShareLock as i32);
        let entries = match range.created {
            None => count_entries(table, relations.by_seq, &relations, range, false),
            Some(_) => count_entries(table, relations.by_created, &relations, range, true),
        };
        let tombstones = count_entries(table, relations.tombstones, &relations, range, true);
        pg_sys::table_close(table, pg_sys::NoLock as i32);
        Some(entries? - tombstones?)
    }
}

/// The visible entries of `index` in the range (`by_time`: the index is (tenant, context_id,
/// created_at, seq), else (tenant, context_id, seq)); `None` if its columns are not those.
unsafe fn count_entries(
    table: pg_sys::Relation,
    index_oid: pg_sys::Oid,
    relations: &Relations,
    range: &EntryRange<'_>,
    by_time: bool,
) -> Option<i64> {
    unsafe {
        let index = pg_sys::index_open(index_oid, pg_sys::AccessShareLock as i32);
        let [tenant, context_id, created_at, seq] = relations.columns;
        let expected: &[pg_sys::AttrNumber] = if by_time {
            &[tenant, context_id, created_at, seq]
        } else {
            &[tenant, context_id, seq]
        };
        let form = (*index).rd_index;
        let key_count = (*form).indnkeyatts as usize;
        let keys = (*form).indkey.values.as_slice(key_count);
        if keys != expected {
            pg_sys::index_close(index, pg_sys::NoLock as i32);
            return None;
        }
        let seq_column: pg_sys::AttrNumber = if by_time { 4 } else { 3 };
        let mut scan_keys: Vec<pg_sys::ScanKeyData> = Vec::with_capacity(5);
        let mut key = |column: pg_sys::AttrNumber,
                       strategy: u32,
                       procedure: u32,
                       collation: pg_sys::Oid,
                       argument: Option<pg_sys::Datum>| {
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
            scan_keys.push(entry);
        };
        // (the tenant compared in the index's collation: its entries are ordered by it)
        key(
            1,
            pg_sys::BTEqualStrategyNumber,
            pg_sys::F_TEXTEQ,
            *(*index).rd_indcollation,
            range.tenant.into_datum(),
        );
        key(
            2,
            pg_sys::BTEqualStrategyNumber,
            pg_sys::F_UUID_EQ,
            pg_sys::InvalidOid,
            range.context_id.into_datum(),
        );
        if let Some((from, to)) = range.created {
            key(
                3,
                pg_sys::BTGreaterEqualStrategyNumber,
                pg_sys::F_TIMESTAMPTZ_GE,
                pg_sys::InvalidOid,
                from.into_datum(),
            );
            key(
                3,
                pg_sys::BTLessEqualStrategyNumber,
                pg_sys::F_TIMESTAMPTZ_LE,
                pg_sys::InvalidOid,
                to.into_datum(),
            );
        }
        key(
            seq_column,
            pg_sys::BTGreaterStrategyNumber,
            pg_sys::F_INT8GT,
            pg_sys::InvalidOid,
            range.after_seq.into_datum(),
        );
        let count = visible_entries(table, index, &mut scan_keys);
        pg_sys::index_close(index, pg_sys::NoLock as i32);
        Some(count)
    }
}

/// The entries matching `keys` whose heap tuple the active snapshot sees: as an index-only
/// scan decides it, from the visibility map where the page is all-visible, else by fetching
/// the tuple.
unsafe fn visible_entries(
    table: pg_sys::Relation,
    index: pg_sys::Relation,
    keys: &mut [pg_sys::ScanKeyData],
) -> i64 {
    unsafe {
        let snapshot = pg_sys::GetActiveSnapshot();
        let scan = begin_scan(table, index, snapshot, keys.len() as i32);
        pg_sys::index_rescan(
            scan,
            keys.as_mut_ptr(),
            keys.len() as i32,
            std::ptr::null_mut(),
            0,
        );
        let slot = pg_sys::table_slot_create(table, std::ptr::null_mut());
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
            let all_visible = pg_sys::visibilitymap_get_status(table, block, &mut map_buffer)
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
