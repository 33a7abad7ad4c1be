//! Tenancy: the tenant of the current call, which row-level security compares every row with.

use pgrx::prelude::*;

use crate::api::raise::OrRaise;
use crate::error::CtxError;
use crate::services::tenant;

/// The tenant of the current call: the current role's binding (ctx.bind_role_to_tenant), else
/// the session role's, else `ctxstore.tenant`, else ''. Policies and defaults call it on every
/// row they check, so it is native and keeps its answer until the bindings change
/// (services::tenant).
#[pg_extern(stable, parallel_safe)]
fn current_tenant() -> String {
    tenant::current().or_raise()
}

/// Statement and row trigger on `ctx.tenant_roles` (enabled always, replica mode too): a binding
/// changed by this backend counts from the next call on, even within the statement that made
/// it; every other backend drops its kept answer when the change commits (an invalidation of
/// the table's relcache entry, which each backend reads at its next statement).
#[pg_trigger(sql = r#"
CREATE FUNCTION "tenant_roles_changed"() RETURNS trigger LANGUAGE c AS '@MODULE_PATHNAME@', 'tenant_roles_changed_wrapper';
"#)]
fn tenant_roles_changed<'a>(
    trigger: &'a PgTrigger<'a>,
) -> Result<Option<PgHeapTuple<'a, AllocatedByPostgres>>, CtxError> {
    tenant::forget();
    // SAFETY: the trigger's own relation, open for the statement that fired it.
    unsafe { pg_sys::CacheInvalidateRelcache(trigger.trigger_data().tg_relation) };
    Ok(None)
}
