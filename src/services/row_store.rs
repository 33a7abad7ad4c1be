//! A new row stored as the executor stores an INSERT's, without a statement: the table's
//! constraints checked first, then the row and its index entries. Used where a row's writer has
//! established that nothing else of an INSERT applies (no trigger to fire, no rule, the
//! defaults applied by the writer): the audit log's rows, an append's message.

use std::cell::{Cell, RefCell};

use pgrx::pg_sys;

/// A relation's CHECK constraints as parsed expression trees, kept across statements: an
/// INSERT parses each constraint's stored text (`stringToNode`) and plans it again for every
/// statement, which for the append's two rows (message and audit row) was 7 % of its time. The
/// trees are turned into fresh expression states per row (`ExecInitExpr`, cheap), never reused
/// across calls, so no state of a previous evaluation (or of one an error interrupted) survives.
struct Checks {
    relation: pg_sys::Oid,
    /// holds the trees; deleted when they go stale
    context: pg_sys::MemoryContext,
    /// one per constraint, in the relation's order (null: not enforced)
    trees: Vec<*mut pg_sys::Expr>,
}

thread_local! {
    static CHECKS: RefCell<Vec<Checks>> = const { RefCell::new(Vec::new()) };
    /// set by any relcache invalidation; the trees are rebuilt at the next store (not freed in
    /// the callback, which can run while a store is initializing expressions from them)
    static STALE: Cell<bool> = const { Cell::new(false) };
}

/// Relcache invalidation callback (registered in `_PG_init`).
pub(crate) unsafe extern "C-unwind" fn forget(_arg: pg_sys::Datum, _relid: pg_sys::Oid) {
    STALE.with(|stale| stale.set(true));
}

/// The relation's check constraints as fresh expression states in `estate`'s query memory, in
/// the layout the executor keeps them (`ri_CheckConstraintExprs`), from the kept trees.
unsafe fn check_states(
    relation: pg_sys::Relation,
    estate: *mut pg_sys::EState,
) -> *mut *mut pg_sys::ExprState {
    unsafe {
        let constr = (*(*relation).rd_att).constr;
        let count = (*constr).num_check as usize;
        let oid = (*relation).rd_id;
        CHECKS.with(|checks| {
            let mut checks = checks.borrow_mut();
            if STALE.with(|stale| stale.replace(false)) {
                for kept in checks.drain(..) {
                    pg_sys::MemoryContextDelete(kept.context);
                }
            }
            if !checks
                .iter()
                .any(|c| c.relation == oid && c.trees.len() == count)
            {
                checks.retain(|c| {
                    let other = c.relation != oid;
                    if !other {
                        pg_sys::MemoryContextDelete(c.context);
                    }
                    other
                });
                checks.push(plan_checks(relation, count));
            }
            let kept = checks
                .iter()
                .find(|c| c.relation == oid)
                .expect("the relation's checks were just kept");
            let old = pg_sys::MemoryContextSwitchTo((*estate).es_query_cxt);
            let states = pg_sys::palloc0(count * std::mem::size_of::<*mut pg_sys::ExprState>())
                .cast::<*mut pg_sys::ExprState>();
            for (i, tree) in kept.trees.iter().enumerate() {
                if !tree.is_null() {
                    // (a copy in the statement's memory: the states point into their tree, and
                    // a store nested in a CHECK's function may drop the kept ones)
                    let copy = pg_sys::copyObjectImpl(tree.cast()).cast::<pg_sys::Expr>();
                    *states.add(i) = pg_sys::ExecInitExpr(copy, std::ptr::null_mut());
                }
            }
            pg_sys::MemoryContextSwitchTo(old);
            states
        })
    }
}

/// Parses the relation's check constraints as the executor does the first time a statement
/// checks a row (`ExecRelCheck`), into a memory context of their own; the planner's constant
/// folding and inlining are left out (see below).
unsafe fn plan_checks(relation: pg_sys::Relation, count: usize) -> Checks {
    unsafe {
        let context = pg_sys::AllocSetContextCreateExtended(
            pg_sys::TopMemoryContext,
            c"ctxstore row checks".as_ptr(),
            pg_sys::ALLOCSET_SMALL_MINSIZE as usize,
            pg_sys::ALLOCSET_SMALL_INITSIZE as usize,
            pg_sys::ALLOCSET_SMALL_MAXSIZE as usize,
        );
        let old = pg_sys::MemoryContextSwitchTo(context);
        let check = (*(*(*relation).rd_att).constr).check;
        let mut trees = Vec::with_capacity(count);
        for i in 0..count {
            let constraint = &*check.add(i);
            #[cfg(feature = "pg18")]
            if !constraint.ccenforced {
                trees.push(std::ptr::null_mut());
                continue;
            }
            let tree = pg_sys::stringToNode(constraint.ccbin).cast::<pg_sys::Node>();
            #[cfg(feature = "pg18")]
            let tree = pg_sys::expand_generated_columns_in_expr(tree, relation, 1);
            // Operator functions resolved, nothing else: no SQL function inlined and no call
            // folded, so a function redefined later is the one called (as by OID at run time),
            // and nothing depends on the search path of the session that planned it.
            pg_sys::fix_opfuncids(tree);
            trees.push(tree.cast::<pg_sys::Expr>());
        }
        pg_sys::MemoryContextSwitchTo(old);
        Checks {
            relation: (*relation).rd_id,
            context,
            trees,
        }
    }
}

/// A new row's values by attribute number, NULL until set.
pub(crate) struct NewRow {
    values: Vec<pg_sys::Datum>,
    nulls: Vec<bool>,
}

impl NewRow {
    /// An all-NULL row of `relation`'s descriptor.
    ///
    /// # Safety
    /// `relation` is an open relation.
    pub(crate) unsafe fn of(relation: pg_sys::Relation) -> NewRow {
        let count = unsafe { (*(*relation).rd_att).natts } as usize;
        NewRow {
            values: vec![pg_sys::Datum::from(0); count],
            nulls: vec![true; count],
        }
    }

    /// Sets attribute `number` (None leaves it NULL).
    pub(crate) fn set(&mut self, number: pg_sys::AttrNumber, datum: Option<pg_sys::Datum>) {
        if let Some(datum) = datum {
            self.values[number as usize - 1] = datum;
            self.nulls[number as usize - 1] = false;
        }
    }

    pub(crate) fn is_null(&self, number: pg_sys::AttrNumber) -> bool {
        self.nulls[number as usize - 1]
    }

    /// Forms the row with `relation`'s descriptor and stores it (`store`).
    ///
    /// # Safety
    /// As `store`; the datums match the attributes' types.
    pub(crate) unsafe fn store(mut self, relation: pg_sys::Relation) {
        unsafe {
            let tuple = pg_sys::heap_form_tuple(
                (*relation).rd_att,
                self.values.as_mut_ptr(),
                self.nulls.as_mut_ptr(),
            );
            store(relation, tuple);
            pg_sys::heap_freetuple(tuple);
        }
    }
}

/// The session's application_name, empty when unset (what the SQL's setting reads).
pub(crate) fn application_name() -> String {
    // SAFETY: reads the GUC's current C string.
    unsafe {
        if pg_sys::application_name.is_null() {
            String::new()
        } else {
            std::ffi::CStr::from_ptr(pg_sys::application_name)
                .to_string_lossy()
                .into_owned()
        }
    }
}

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
        let constr = (*(*relation).rd_att).constr;
        if !constr.is_null() {
            if (*constr).num_check > 0 {
                let states = check_states(relation, estate);
                #[cfg(feature = "pg18")]
                {
                    (*info).ri_CheckConstraintExprs = states;
                }
                #[cfg(not(feature = "pg18"))]
                {
                    (*info).ri_ConstraintExprs = states;
                }
            }
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
