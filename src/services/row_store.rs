//! A new row stored as the executor stores an INSERT's, without a statement: the table's
//! constraints checked first, then the row and its index entries. Used where a row's writer has
//! established that nothing else of an INSERT applies (no trigger to fire, no rule, the
//! defaults applied by the writer): the audit log's rows, an append's message.

use pgrx::pg_sys;

/// Stores `tuple` in `relation` (opened with RowExclusiveLock by the caller): NOT NULL and
/// every CHECK constraint, an administrator's too, checked with the executor's own error; then
/// the row and its index entries (partial indexes by their predicate; a unique index checks its
/// key, raising 23505 as an INSERT does). Returns with the tuple's `t_self` set to its place.
///
/// # Safety
/// `relation` is an open, locked ordinary table; `tuple` was formed with its descriptor.
pub(crate) unsafe fn store(relation: pg_sys::Relation, tuple: pg_sys::HeapTuple) {
    unsafe {
        let estate = pg_sys::CreateExecutorState();
        let info: *mut pg_sys::ResultRelInfo =
            pgrx::PgBox::<pg_sys::ResultRelInfo>::alloc_node(pg_sys::NodeTag::T_ResultRelInfo)
                .into_pg();
        // (range table index 0: no statement's range table; an error's row detail is then
        // built without a column list, as for COPY)
        pg_sys::InitResultRelInfo(info, relation, 0, std::ptr::null_mut(), 0);
        let slot = pg_sys::MakeSingleTupleTableSlot((*relation).rd_att, &pg_sys::TTSOpsHeapTuple);
        pg_sys::ExecStoreHeapTuple(tuple, slot, false);
        if !(*(*relation).rd_att).constr.is_null() {
            pg_sys::ExecConstraints(info, slot, estate);
        }
        pg_sys::simple_heap_insert(relation, tuple);
        // (stored again: the slot takes the row's new place, which its index entries point to)
        pg_sys::ExecStoreHeapTuple(tuple, slot, false);
        pg_sys::ExecOpenIndices(info, false);
        #[cfg(feature = "pg15")]
        pg_sys::ExecInsertIndexTuples(
            info,
            slot,
            estate,
            false,
            false,
            std::ptr::null_mut(),
            std::ptr::null_mut(),
        );
        #[cfg(not(feature = "pg15"))]
        pg_sys::ExecInsertIndexTuples(
            info,
            slot,
            estate,
            false,
            false,
            std::ptr::null_mut(),
            std::ptr::null_mut(),
            false,
        );
        pg_sys::ExecDropSingleTupleTableSlot(slot);
        pg_sys::ExecCloseIndices(info);
        pg_sys::FreeExecutorState(estate);
    }
}
