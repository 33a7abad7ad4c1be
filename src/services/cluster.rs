//! Whether this server is a node of a Citus cluster, for the few statements whose best form on
//! one server Citus cannot plan: there, they take a form it routes to one shard.

use std::cell::RefCell;
use std::collections::HashMap;
use std::sync::OnceLock;

use pgrx::spi::Spi;

use crate::error::CtxResult;

/// Whether this database is on a Citus node: Citus is loaded into the server (it must be
/// preloaded to work at all; read from its settings once) and its extension exists here (asked
/// once per transaction: CREATE EXTENSION citus may come after a session started).
pub(crate) fn citus() -> bool {
    static LOADED: OnceLock<bool> = OnceLock::new();
    let loaded = *LOADED.get_or_init(|| {
        // SAFETY: a lookup of a setting by name; missing_ok makes an absent one NULL.
        !unsafe {
            pgrx::pg_sys::GetConfigOption(c"citus.max_worker_nodes_tracked".as_ptr(), true, false)
        }
        .is_null()
    });
    loaded
        && per_transaction(&CREATED, || {
            // SAFETY: a catalog lookup by name inside a transaction; missing_ok.
            Ok(
                unsafe { pgrx::pg_sys::get_extension_oid(c"citus".as_ptr(), true) }
                    != pgrx::pg_sys::Oid::INVALID,
            )
        })
        .unwrap_or(false)
}

type Kept = RefCell<Option<(pgrx::pg_sys::TimestampTz, bool)>>;

thread_local! {
    static CREATED: Kept = const { RefCell::new(None) };
    static ON_WORKER: Kept = const { RefCell::new(None) };
    static REFERENCE_TABLES: RefCell<HashMap<String, bool>> = RefCell::new(HashMap::new());
}

/// An answer kept for the rest of the transaction.
fn per_transaction(
    kept: &'static std::thread::LocalKey<Kept>,
    ask: impl FnOnce() -> CtxResult<bool>,
) -> CtxResult<bool> {
    // SAFETY: reads the backend's own transaction state.
    let started = unsafe { pgrx::pg_sys::GetCurrentTransactionStartTimestamp() };
    if let Some((at, answer)) = kept.with(|k| *k.borrow()) {
        if at == started {
            return Ok(answer);
        }
    }
    let answer = ask()?;
    kept.with(|k| *k.borrow_mut() = Some((started, answer)));
    Ok(answer)
}

/// Runs `f`, whose statements read the caller's tenant's rows or the bindings, so that it also
/// works inside a shard's query on a Citus node (a policy, a trigger, a function Citus pushed
/// down with the row): Citus refuses a distributed read there unless told it is nested. It is
/// sound for these reads: a tenant's shards are colocated, and a reference table has a copy on
/// every node, so each is read on this node, in this transaction.
pub(crate) fn colocated<T>(f: impl FnOnce() -> T) -> T {
    if citus() {
        crate::plans::with_settings(&[("citus.allow_nested_distributed_execution", "on")], f)
    } else {
        f()
    }
}

/// The plan cache mode for a statement that would keep one generic plan: Citus routes a
/// statement with parameters to its shard only when planned with their values (a generic plan
/// of a joined or lateral statement fails with "could not create distributed plan").
pub(crate) fn generic_plan_mode() -> &'static str {
    if citus() {
        "force_custom_plan"
    } else {
        "force_generic_plan"
    }
}

/// For a trigger firing on a copy of ctx.`table` that is not the table itself: whether that
/// table is a reference table, and if so whether this node is a worker (`Some(true)`: its copy
/// is one of many) or the coordinator (`Some(false)`); `None` for a distributed table's shard.
/// Kept per backend: a table's placement and a node's role do not change under a session.
pub(crate) fn reference_placement(table: &str) -> CtxResult<Option<bool>> {
    let kept = REFERENCE_TABLES.with(|r| r.borrow().get(table).copied());
    let reference = match kept {
        Some(reference) => reference,
        None => {
            let reference = Spi::get_one_with_args::<bool>(
                "SELECT EXISTS (SELECT FROM pg_catalog.pg_dist_partition p
                                 WHERE p.logicalrelid = pg_catalog.to_regclass(pg_catalog.format('ctx.%I', $1))
                                   AND p.partmethod = 'n')",
                &[table.into()],
            )?
            .unwrap_or(false);
            REFERENCE_TABLES.with(|r| r.borrow_mut().insert(table.to_string(), reference));
            reference
        }
    };
    if !reference {
        return Ok(None);
    }
    Ok(Some(on_worker()?))
}

/// Whether this server is a Citus worker (a node, but not the coordinator). Kept for the
/// transaction.
pub(crate) fn on_worker() -> CtxResult<bool> {
    if !citus() {
        return Ok(false);
    }
    per_transaction(&ON_WORKER, || {
        Ok(!Spi::get_one::<bool>("SELECT pg_catalog.citus_is_coordinator()")?.unwrap_or(false))
    })
}
