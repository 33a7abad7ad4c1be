//! Whether this server is a node of a Citus cluster, for the few statements whose best form on
//! one server Citus cannot plan: there, they take a form it routes to one shard.

use std::sync::OnceLock;

/// Whether Citus is loaded into this server (it must be preloaded to work at all, so the answer
/// holds for the life of the backend). Read from its settings: no catalog access.
pub(crate) fn citus() -> bool {
    static LOADED: OnceLock<bool> = OnceLock::new();
    *LOADED.get_or_init(|| {
        // SAFETY: a lookup of a setting by name; missing_ok makes an absent one NULL.
        !unsafe {
            pgrx::pg_sys::GetConfigOption(c"citus.max_worker_nodes_tracked".as_ptr(), true, false)
        }
        .is_null()
    })
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
