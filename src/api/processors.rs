//! The SQL functions that manage processors: register/enable/disable/unregister, per-context and
//! per-namespace configuration, the registry's change trigger. The pipeline that runs them is
//! `services::pipeline`; the rules (configuration, scopes, transforms) are in `core::processors`.

use crate::api::args::{json_or, jsonb, JsonArg};

use pgrx::callconv::{Arg, ArgAbi};
use pgrx::prelude::*;
use pgrx::spi::SpiClient;
use pgrx::{JsonB, Uuid};
use serde_json::json;

use crate::api::raise::OrRaise;
use crate::core::namespace;
use crate::core::processors::{self as rules, Config, Level, Scope, Stage};
use crate::error::{required, CtxError, CtxResult, ErrorKind};
use crate::services::context_view::unknown_context;
use crate::services::pipeline::registry_changed;
use crate::services::transaction::writing;

/// A `regprocedure` argument: a function given by signature, `'my_fn(jsonb)'`.
pub struct RegProcedure(pub pg_sys::Oid);

impl FromDatum for RegProcedure {
    unsafe fn from_polymorphic_datum(
        datum: pg_sys::Datum,
        is_null: bool,
        typoid: pg_sys::Oid,
    ) -> Option<Self> {
        unsafe { pg_sys::Oid::from_polymorphic_datum(datum, is_null, typoid) }.map(RegProcedure)
    }
}

impl IntoDatum for RegProcedure {
    fn into_datum(self) -> Option<pg_sys::Datum> {
        self.0.into_datum()
    }

    fn type_oid() -> pg_sys::Oid {
        pg_sys::REGPROCEDUREOID
    }
}

unsafe impl<'fcx> ArgAbi<'fcx> for RegProcedure {
    unsafe fn unbox_arg_unchecked(arg: Arg<'_, 'fcx>) -> Self {
        let index = arg.index();
        unsafe { arg.unbox_arg_using_from_datum() }
            .unwrap_or_else(|| panic!("argument {index} must not be null"))
    }
}

impl_sql_translatable!(RegProcedure, "regprocedure");

fn processor_name(name: Option<&str>) -> CtxResult<&str> {
    let name = required(name, "name")?;
    let valid = !name.is_empty()
        && name.len() <= 63
        && name.starts_with(|c: char| c.is_ascii_lowercase() || c == '_')
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    if !valid {
        return Err(
            CtxError::invalid(format!("invalid processor name \"{name}\""))
                .with_hint("use lower-case letters, digits and underscores, e.g. 'mask_order_ids'"),
        );
    }
    Ok(name)
}

fn unknown_processor(name: &str) -> CtxError {
    CtxError::new(
        ErrorKind::UndefinedObject,
        format!("processor \"{name}\" does not exist"),
    )
    .with_hint("SELECT name FROM ctx.processors lists them")
}

/// The tenant a registry change acts for: the caller's, or every tenant (NULL), which only a
/// role that bypasses row-level security may change.
fn registry_tenant(client: &SpiClient<'_>, all_tenants: Option<bool>) -> CtxResult<Option<String>> {
    if !all_tenants.unwrap_or(false) {
        return crate::services::tenant::current().map(Some);
    }
    let bypasses: Option<bool> =
        crate::plans::first_value(client.select("SELECT ctx.bypasses_rls()", Some(1), &[])?)?;
    if !bypasses.unwrap_or(false) {
        return Err(CtxError::new(
            ErrorKind::InsufficientPrivilege,
            "only a superuser or a role with BYPASSRLS changes processors for every tenant",
        )
        .with_hint("leave all_tenants out: the change then acts for your tenant only"));
    }
    Ok(None)
}

/// Plugs a user function (jsonb -> jsonb, NULL drops the item) into a stage, for the caller's
/// tenant (or, with `all_tenants`, every tenant).
#[pg_extern(volatile, parallel_unsafe)]
fn register_processor(
    name: Option<&str>,
    stage: Option<&str>,
    function: Option<RegProcedure>,
    priority: default!(Option<i32>, 100),
    scope: default!(Option<JsonArg>, "'{}'"),
    all_tenants: default!(Option<bool>, false),
) {
    register(name, stage, function, priority, scope, all_tenants).or_raise()
}

fn register(
    name: Option<&str>,
    stage: Option<&str>,
    function: Option<RegProcedure>,
    priority: Option<i32>,
    scope: Option<JsonArg>,
    all_tenants: Option<bool>,
) -> CtxResult<()> {
    let scope = jsonb(scope, "scope")?;
    let name = processor_name(name)?;
    let stage = Stage::parse(required(stage, "stage")?)?;
    let function = required(function, "fn")?.0;
    let priority = required(priority, "priority")?;
    if !(0..=10_000).contains(&priority) {
        return Err(CtxError::invalid(format!(
            "priority must be between 0 and 10000, got {priority}"
        ))
        .with_hint("lower runs first; the built-ins use 10 to 51 (write) and 10 to 1000 (read)"));
    }
    let scope = scope.map_or(json!({}), |j| j.0);
    Scope::parse(&scope)?;
    writing(|client| {
        let tenant = registry_tenant(client, all_tenants)?;
        let mut table = client.select(
            "SELECT p.pronargs = 1 AND p.proargtypes[0] = 'jsonb'::regtype
                    AND p.prorettype = 'jsonb'::regtype AND NOT p.proretset AND p.prokind = 'f',
                    p.provolatile <> 'v'
               FROM pg_catalog.pg_proc p WHERE p.oid = $1",
            Some(1),
            &[function.into()],
        )?;
        let (signature_ok, read_only) = match table.next() {
            Some(row) => (
                row.get::<bool>(1)?.unwrap_or(false),
                row.get::<bool>(2)?.unwrap_or(false),
            ),
            None => (false, false),
        };
        if stage == Stage::Read && signature_ok && !read_only {
            return Err(CtxError::invalid(
                "a read processor must be STABLE or IMMUTABLE: reads must not write",
            )
            .with_hint("ALTER FUNCTION ... STABLE, or register it in the write stage"));
        }
        if !signature_ok {
            return Err(CtxError::invalid(
                "a processor function must take one jsonb and return jsonb",
            )
            .with_hint(
                "CREATE FUNCTION f(item jsonb) RETURNS jsonb ... (return NULL to drop the item)",
            ));
        }
        // one name, one processor, as any tenant sees them: a tenant's name may not shadow a
        // processor of every tenant, nor one of every tenant hide a tenant's
        let table = client.update(
            "INSERT INTO ctx.processor_registry (tenant, name, stage, fn, priority, scope)
             SELECT $6, $1, $2, $3::regprocedure, $4, $5
              WHERE NOT EXISTS (SELECT 1 FROM ctx.processor_registry r
                                 WHERE r.name = $1 AND (r.tenant IS NULL OR $6 IS NULL OR r.tenant = $6))
             ON CONFLICT DO NOTHING RETURNING 1",
            Some(1),
            &[
                name.into(),
                stage.name().into(),
                function.into(),
                priority.into(),
                JsonB(scope).into(),
                tenant.into(),
            ],
        )?;
        if table.is_empty() {
            return Err(CtxError::new(
                ErrorKind::DuplicateObject,
                format!("processor \"{name}\" already exists"),
            )
            .with_hint("ctx.unregister_processor() it first, or choose another name"));
        }
        registry_changed(client)
    })
}

fn set_enabled(name: Option<&str>, enabled: bool, all_tenants: Option<bool>) -> CtxResult<()> {
    let name = required(name, "name")?;
    writing(|client| {
        let tenant = registry_tenant(client, all_tenants)?;
        // the row acting for this tenant: its own, else (a built-in) a copy switched for it
        let table = client.update(
            "WITH own AS (
                 UPDATE ctx.processor_registry SET enabled = $2
                  WHERE name = $1 AND tenant IS NOT DISTINCT FROM $3 RETURNING 1),
             switched AS (
                 INSERT INTO ctx.processor_registry (tenant, name, stage, fn, priority, scope, enabled, description)
                 SELECT $3, g.name, g.stage, NULL, g.priority, g.scope, $2, g.description
                   FROM ctx.processor_registry g
                  WHERE g.name = $1 AND g.tenant IS NULL AND g.fn IS NULL AND $3 IS NOT NULL
                    AND NOT EXISTS (SELECT 1 FROM own)
                 RETURNING 1)
             SELECT (SELECT count(*) FROM own) + (SELECT count(*) FROM switched)",
            Some(1),
            &[name.into(), enabled.into(), tenant.clone().into()],
        )?;
        let changed: i64 = crate::plans::first_value(table)?.unwrap_or(0);
        if changed > 0 {
            return registry_changed(client);
        }
        let global: Option<bool> = crate::plans::first_value(client.select(
            "SELECT true FROM ctx.processor_registry WHERE name = $1 AND tenant IS NULL",
            Some(1),
            &[name.into()],
        )?)?;
        match (global, tenant) {
            (Some(_), Some(_)) => Err(CtxError::new(
                ErrorKind::InsufficientPrivilege,
                format!("processor \"{name}\" was registered for every tenant"),
            )
            .with_hint("a superuser or a BYPASSRLS role switches it, with all_tenants => true")),
            _ => Err(unknown_processor(name)),
        }
    })
}

/// Switches a processor (built-in or user) off for the caller's tenant (or, with
/// `all_tenants`, for every tenant without a setting of its own).
#[pg_extern(volatile, parallel_unsafe)]
fn disable_processor(name: Option<&str>, all_tenants: default!(Option<bool>, false)) {
    set_enabled(name, false, all_tenants).or_raise()
}

/// Switches a processor back on.
#[pg_extern(volatile, parallel_unsafe)]
fn enable_processor(name: Option<&str>, all_tenants: default!(Option<bool>, false)) {
    set_enabled(name, true, all_tenants).or_raise()
}

/// Removes a user processor of the caller's tenant (or, with `all_tenants`, one registered for
/// every tenant); built-ins can only be disabled.
#[pg_extern(volatile, parallel_unsafe)]
fn unregister_processor(name: Option<&str>, all_tenants: default!(Option<bool>, false)) {
    let name = required(name, "name").or_raise();
    writing(|client| -> CtxResult<()> {
        let tenant = registry_tenant(client, all_tenants)?;
        let removed: Option<bool> = crate::plans::first_value(client.update(
            "DELETE FROM ctx.processor_registry
              WHERE name = $1 AND tenant IS NOT DISTINCT FROM $2 AND fn IS NOT NULL RETURNING false",
            Some(1),
            &[name.into(), tenant.into()],
        )?)?;
        if removed.is_some() {
            return registry_changed(client);
        }
        if rules::builtin(name).is_some() {
            return Err(CtxError::new(
                ErrorKind::WrongState,
                format!("\"{name}\" is a built-in processor and cannot be removed"),
            )
            .with_hint("ctx.disable_processor() switches it off"));
        }
        Err(unknown_processor(name))
    })
    .or_raise()
}

/// Sets the built-in processors' parameters of a context (NULL resets to the defaults) and
/// returns the effective configuration.
#[pg_extern(volatile, parallel_unsafe)]
fn configure_context_processors(context_id: Option<Uuid>, config: Option<JsonArg>) -> JsonB {
    let context_id = required(context_id, "context_id").or_raise();
    let config = json_or(config, "config", json!({})).or_raise();
    Config::check(&config, Level::Context).or_raise();
    writing(|client| -> CtxResult<JsonB> {
        let table = client.update(
            "UPDATE ctx.contexts SET processors = $2, updated_at = now()
              WHERE tenant = $3 AND id = $1 RETURNING 1",
            Some(1),
            &[
                context_id.into(),
                JsonB(config).into(),
                crate::services::tenant::current()?.into(),
            ],
        )?;
        if table.is_empty() {
            return Err(unknown_context(context_id));
        }
        effective_for_context(client, context_id)
    })
    .or_raise()
}

/// The built-in processors' effective parameters for a context (defaults, its configuration,
/// built-ins disabled for its tenant).
#[pg_extern(stable, parallel_safe)]
fn processor_config(context_id: Option<Uuid>) -> JsonB {
    let context_id = required(context_id, "context_id").or_raise();
    Spi::connect(|client| effective_for_context(client, context_id)).or_raise()
}

fn effective_for_context(client: &SpiClient<'_>, context_id: Uuid) -> CtxResult<JsonB> {
    let row: Option<JsonB> = crate::plans::first_value(client.select(
        "SELECT processors FROM ctx.contexts WHERE tenant = $2 AND id = $1",
        Some(1),
        &[
            context_id.into(),
            crate::services::tenant::current()?.into(),
        ],
    )?)?;
    let stored = row.ok_or_else(|| unknown_context(context_id))?.0;
    let mut config = Config::default();
    config.overlay(&stored, Level::Context)?;
    // the built-ins switched off for the context's tenant
    let disabled: Vec<String> = client
        .select(
            "SELECT r.name
               FROM (SELECT DISTINCT ON (p.name) p.fn, p.name, p.enabled FROM ctx.processor_registry p
                      WHERE p.tenant IS NULL OR p.tenant = (SELECT c.tenant FROM ctx.contexts c
                                                                  WHERE c.tenant = $2 AND c.id = $1)
                      ORDER BY p.name, (p.tenant IS NULL AND p.fn IS NOT NULL) DESC, p.tenant NULLS LAST) r
              WHERE r.fn IS NULL AND NOT r.enabled",
            None,
            &[context_id.into(), crate::services::tenant::current()?.into()],
        )?
        .map(|row| required(row.get::<String>(1)?, "name"))
        .collect::<CtxResult<_>>()?;
    Ok(JsonB(config.without(&disabled).to_json()))
}

/// Sets the write-stage built-ins' parameters for a namespace and everything below it (NULL or
/// '{}' removes the setting); returns what is stored.
#[pg_extern(volatile, parallel_unsafe)]
fn configure_namespace_processors(
    namespace: Option<Vec<Option<String>>>,
    config: Option<JsonArg>,
) -> JsonB {
    let labels = crate::api::args::namespace_arg(namespace, "namespace", false).or_raise();
    let config = json_or(config, "config", json!({})).or_raise();
    Config::check(&config, Level::Namespace).or_raise();
    let key = namespace::key(&labels);
    writing(|client| -> CtxResult<()> {
        if config.as_object().is_some_and(|m| m.is_empty()) {
            client.update(
                "DELETE FROM ctx.namespace_processors WHERE tenant = $2 AND ns_key = $1",
                None,
                &[key.clone().into(), crate::services::tenant::current()?.into()],
            )?;
        } else {
            client.update(
                "INSERT INTO ctx.namespace_processors (namespace, ns_key, config) VALUES ($1, $2, $3)
                 ON CONFLICT (tenant, ns_key) DO UPDATE SET config = excluded.config, updated_at = excluded.updated_at",
                None,
                &[
                    labels.clone().into(),
                    key.clone().into(),
                    JsonB(config.clone()).into(),
                ],
            )?;
        }
        Ok(())
    })
    .or_raise();
    JsonB(config)
}

/// Statement trigger on `ctx.processor_registry`: any change, through the functions or written
/// directly, makes every backend reload the registry (see `REGISTRY_CACHE`).
#[pg_trigger(sql = r#"
CREATE FUNCTION "processor_registry_changed"() RETURNS trigger LANGUAGE c AS '@MODULE_PATHNAME@', 'processor_registry_changed_wrapper';
"#)]
fn processor_registry_changed<'a>(
    trigger: &'a PgTrigger<'a>,
) -> Result<Option<PgHeapTuple<'a, AllocatedByPostgres>>, CtxError> {
    let relation = trigger.trigger_data().tg_relation;
    unsafe { pg_sys::CacheInvalidateRelcacheByRelid((*relation).rd_id) };
    Ok(None)
}
