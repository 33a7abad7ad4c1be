//! ctxstore: the persistence layer for AI agents' context and memory, as a Postgres extension.

use pgrx::prelude::*;

pub mod api;
pub mod core;
pub mod error;
pub mod gucs;
mod plans;
pub mod services;

::pgrx::pg_module_magic!();

extension_sql_file!(
    "schema/conversation.sql",
    name = "conversation_schema",
    requires = [
        api::tenancy::current_tenant,
        api::row_checks::message_row_check,
        api::row_checks::context_row_check
    ]
);
extension_sql_file!(
    "schema/memories.sql",
    name = "memories_schema",
    requires = ["conversation_schema", "embedding_casts"]
);
extension_sql_file!(
    "schema/state.sql",
    name = "state_schema",
    requires = ["conversation_schema"]
);
extension_sql_file!(
    "schema/processors.sql",
    name = "processors_schema",
    requires = ["conversation_schema"]
);
extension_sql_file!(
    "schema/retention.sql",
    name = "retention_schema",
    requires = ["conversation_schema", "memories_schema", "state_schema"]
);
extension_sql_file!(
    "schema/observability.sql",
    name = "observability_schema",
    requires = ["conversation_schema", "memories_schema", "state_schema"]
);
// after every table: it adds tenancy policies and audit triggers to all of them
extension_sql_file!(
    "schema/security.sql",
    name = "security_schema",
    requires = [
        "conversation_schema",
        "memories_schema",
        "state_schema",
        "processors_schema"
    ]
);

extension_sql_file!(
    "schema/checkpoints.sql",
    name = "checkpoints_schema",
    requires = [
        "security_schema",
        api::sealing::context_seal,
        api::sealing::context_unseal,
        api::sealing::keyed_hash
    ]
);
extension_sql_file!(
    "schema/imports.sql",
    name = "imports_schema",
    requires = ["checkpoints_schema"]
);
extension_sql_file!(
    "schema/llm_cache.sql",
    name = "llm_cache_schema",
    requires = [
        "security_schema",
        api::cache::cache_seal,
        api::cache::cache_unseal
    ]
);
extension_sql_file!(
    "schema/scale_out.sql",
    name = "scale_out_schema",
    requires = ["conversation_schema"]
);

// Administrators' functions are not for every role (ctx.grant_access(role, admin => true)).
extension_sql!(
    r#"
REVOKE EXECUTE ON FUNCTION ctx.rotate_master_key(text) FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION ctx.reset_metrics() FROM PUBLIC;

-- Metrics as rows: counters, histogram buckets, sums and counts (ctx.metrics_prometheus has
-- the same in the Prometheus text format).
CREATE VIEW ctx.metrics AS SELECT name, labels, value FROM ctx.metric_samples();
-- Metrics are server-wide (every tenant's activity): administrators (ctx.grant_access(role,
-- admin => true)) and members of pg_monitor read them, no one else.
REVOKE EXECUTE ON FUNCTION ctx.metric_samples(), ctx.metrics_prometheus() FROM PUBLIC;
GRANT USAGE ON SCHEMA ctx TO pg_monitor;
GRANT EXECUTE ON FUNCTION ctx.metric_samples(), ctx.metrics_prometheus() TO pg_monitor;
GRANT SELECT ON ctx.metrics TO pg_monitor;

-- Any change of the processor registry, direct writes too, makes every backend reload it.
CREATE TRIGGER registry_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON ctx.processor_registry
    FOR EACH STATEMENT EXECUTE FUNCTION ctx.processor_registry_changed();
-- A binding change counts at once in this backend, and in the others from their next statement
-- (ctx.current_tenant keeps its answer until then).
CREATE TRIGGER bindings_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON ctx.tenant_roles
    FOR EACH STATEMENT EXECUTE FUNCTION ctx.tenant_roles_changed();
-- (row by row too: logical replication's apply fires row triggers only; both fire always, in
-- replica mode as well — a change that sent no invalidation would leave kept answers stale)
CREATE TRIGGER binding_changed AFTER INSERT OR UPDATE OR DELETE ON ctx.tenant_roles
    FOR EACH ROW EXECUTE FUNCTION ctx.tenant_roles_changed();
ALTER TABLE ctx.tenant_roles ENABLE ALWAYS TRIGGER bindings_changed;
ALTER TABLE ctx.tenant_roles ENABLE ALWAYS TRIGGER binding_changed;

-- Reads of a page or of messages by id keep their statements prepared: a generic plan each
-- call. (Their custom plans look cheaper, so the plan cache would keep choosing them, and plan
-- every call: most of a small read's time.)
ALTER FUNCTION ctx.list_messages(uuid, timestamptz, timestamptz, text, boolean, integer, integer) SET plan_cache_mode = force_generic_plan;
ALTER FUNCTION ctx.get_messages(uuid, text[]) SET plan_cache_mode = force_generic_plan;
ALTER FUNCTION ctx.messages_around(uuid, text, integer, integer) SET plan_cache_mode = force_generic_plan;
ALTER FUNCTION ctx.message_windows(uuid, text[], integer[], integer[], text) SET plan_cache_mode = force_generic_plan;
ALTER FUNCTION ctx.count_messages(uuid, timestamptz, timestamptz) SET plan_cache_mode = force_generic_plan;
ALTER FUNCTION ctx.thread_page(text, text, timestamptz, timestamptz, text, boolean, integer, integer, boolean) SET plan_cache_mode = force_generic_plan;

-- The audit trigger writes the log as the extension owner; users have no privilege on it.
ALTER FUNCTION ctx.audit_trigger() SECURITY DEFINER SET search_path = pg_catalog, pg_temp;
REVOKE EXECUTE ON FUNCTION ctx.audit_trigger() FROM PUBLIC;
DO $$
DECLARE t record;
BEGIN
    FOR t IN SELECT * FROM ctx.audited_tables LOOP
        EXECUTE format('CREATE TRIGGER audit AFTER INSERT OR UPDATE OR DELETE ON ctx.%I
                        FOR EACH ROW EXECUTE FUNCTION ctx.audit_trigger(%L, %s)',
                       t.table_name, t.table_name,
                       (SELECT string_agg(quote_literal(c), ', ') FROM unnest(t.key_columns) c));
    END LOOP;
END $$;
"#,
    name = "admin_privileges",
    finalize
);

/// Every relcache invalidation, to each cache of the catalog a backend keeps: the processor
/// registry, the current tenant (its bindings), the message indexes of direct reads, the
/// audit log's and the message table's direct writes, the rows' planned CHECK expressions, and
/// recall's index registry.
unsafe extern "C-unwind" fn on_relcache_invalidation(arg: pg_sys::Datum, relid: pg_sys::Oid) {
    unsafe {
        services::pipeline::forget_registry(arg, relid);
        services::tenant::on_invalidation(arg, relid);
        services::direct_reads::forget(arg, relid);
        services::audit_log::forget(arg, relid);
        services::row_store::forget(arg, relid);
        services::message_insert::forget(arg, relid);
        services::recall::forget_catalog(arg, relid);
    }
}

#[pg_guard]
pub extern "C-unwind" fn _PG_init() {
    gucs::register();
    // What the backend keeps of the catalog is dropped when it changes: one relcache callback
    // for all of it (a backend has 10 callback slots, shared with Postgres and other
    // extensions), and the processes' own syscache callbacks below.
    unsafe {
        pg_sys::CacheRegisterRelcacheCallback(
            Some(on_relcache_invalidation),
            pg_sys::Datum::from(0),
        );
        // the audit trigger function's owner and settings, which the direct message write
        // takes on: an ALTER FUNCTION sends no relcache invalidation
        pg_sys::CacheRegisterSyscacheCallback(
            pg_sys::SysCacheIdentifier::PROCOID as i32,
            Some(services::message_insert::forget_on_function),
            pg_sys::Datum::from(0),
        );
        pg_sys::CacheRegisterSyscacheCallback(
            pg_sys::SysCacheIdentifier::TYPEOID as i32,
            Some(services::recall::forget_catalog_types),
            pg_sys::Datum::from(0),
        );
        pg_sys::CacheRegisterSyscacheCallback(
            pg_sys::SysCacheIdentifier::TYPEOID as i32,
            Some(plans::forget_type_oids),
            pg_sys::Datum::from(0),
        );
        // a role dropped, renamed or created: bindings are by role OID
        pg_sys::CacheRegisterSyscacheCallback(
            pg_sys::SysCacheIdentifier::AUTHOID as i32,
            Some(services::tenant::on_role_change),
            pg_sys::Datum::from(0),
        );
        for forget in [
            services::tenant::forget as fn(),
            services::counter_bump::forget,
        ] {
            pg_sys::RegisterXactCallback(
                Some(services::transaction::forget_on_abort),
                services::transaction::abort_argument(forget),
            );
        }
        pg_sys::RegisterSubXactCallback(
            Some(services::tenant::on_subtransaction),
            std::ptr::null_mut(),
        );
    }
    // Preloaded into the postmaster: build the tokenizer once; every backend inherits it.
    if unsafe { pg_sys::process_shared_preload_libraries_in_progress } {
        gucs::default_encoding().warm_up();
        services::metrics::init_shared_memory();
        api::worker::register();
    }
}

#[cfg(any(test, feature = "pg_test"))]
mod tests;

#[cfg(test)]
pub mod pg_test {
    pub fn setup(_options: Vec<&str>) {}

    pub fn postgresql_conf_options() -> Vec<&'static str> {
        vec![]
    }
}
