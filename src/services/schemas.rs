//! Schema lookups the stores share: JSON Schemas by name and version (compiled once per
//! backend), validation against the latest version, and migrations of stored values along
//! registered version chains. The registry's SQL functions are in `api::schemas`.

use std::cell::RefCell;
use std::collections::hash_map::DefaultHasher;
use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::rc::Rc;

use pgrx::pg_sys::BuiltinOid::*;
use pgrx::prelude::*;
use pgrx::spi::SpiClient;
use pgrx::JsonB;
use serde_json::Value;

use crate::core::schema::{self, CompiledSchema};
use crate::error::{required, CtxError, CtxResult, ErrorKind};
use crate::plans::{first_value, Statement};

/// Compiled schemas by (name, version, hash of the schema text): a re-registered definition
/// (after a rollback or a reinstall) never hits a stale entry.
type CacheKey = (String, i32, u64);

thread_local! {
    static COMPILED: RefCell<HashMap<CacheKey, Rc<CompiledSchema>>> = RefCell::new(HashMap::new());
}

/// Bound on cached compiled schemas per backend.
const CACHE_CAPACITY: usize = 256;

pub(crate) fn unknown_schema(name: &str, version: Option<i32>) -> CtxError {
    let what = match version {
        Some(v) => format!("schema \"{name}\" version {v} does not exist"),
        None => format!("schema \"{name}\" does not exist"),
    };
    CtxError::new(ErrorKind::UndefinedObject, what)
        .with_hint("register it with ctx.register_schema(name, version, json_schema)")
}

pub(crate) fn check_name(name: &str) -> CtxResult<()> {
    if name.is_empty() || name.len() > 128 {
        return Err(CtxError::invalid("schema name must be 1 to 128 bytes")
            .with_hint("e.g. 'user_profile'"));
    }
    Ok(())
}

/// The newest registered version of `name`.
pub fn latest_version(client: &SpiClient<'_>, name: &str) -> CtxResult<i32> {
    static LATEST: Statement = Statement {
        sql: "SELECT max(version) FROM ctx.schemas WHERE name = $1",
        args: &[TEXTOID],
        writes: false,
    };
    let plan = LATEST.plan(client)?;
    first_value(client.select(&*plan, Some(1), &[name.into()])?)?
        .ok_or_else(|| unknown_schema(name, None))
}

/// The compiled schema `name` at `version`, from the per-backend cache when possible.
pub fn compiled(client: &SpiClient<'_>, name: &str, version: i32) -> CtxResult<Rc<CompiledSchema>> {
    static DEFINITION: Statement = Statement {
        sql: "SELECT json_schema::text FROM ctx.schemas WHERE name = $1 AND version = $2",
        args: &[TEXTOID, INT4OID],
        writes: false,
    };
    let plan = DEFINITION.plan(client)?;
    let text: String =
        first_value(client.select(&*plan, Some(1), &[name.into(), version.into()])?)?
            .ok_or_else(|| unknown_schema(name, Some(version)))?;
    let mut hasher = DefaultHasher::new();
    text.hash(&mut hasher);
    let key = (name.to_string(), version, hasher.finish());
    if let Some(hit) = COMPILED.with(|c| c.borrow().get(&key).cloned()) {
        return Ok(hit);
    }
    let definition: Value = serde_json::from_str(&text)
        .map_err(|e| CtxError::internal(format!("stored schema is not JSON: {e}")))?;
    let compiled = Rc::new(schema::compile(&definition)?);
    COMPILED.with(|c| {
        let mut cache = c.borrow_mut();
        if cache.len() >= CACHE_CAPACITY {
            cache.clear();
        }
        cache.insert(key, compiled.clone());
    });
    Ok(compiled)
}

/// Validates `value` against the latest version of schema `name`; returns that version (the
/// stamp a typed write records).
pub fn check_latest(client: &SpiClient<'_>, name: &str, value: &Value) -> CtxResult<i32> {
    let version = latest_version(client, name)?;
    compiled(client, name, version)?.check(value, name, version)?;
    Ok(version)
}

/// Migrates `value`, stored under `name` at `from`, along the registered chain as far as it
/// goes (ideally to the latest version). Returns the value and the version it now conforms to.
pub fn migrate(
    client: &SpiClient<'_>,
    name: &str,
    from: i32,
    value: Value,
) -> CtxResult<(Value, i32)> {
    static STEP: Statement = Statement {
        // (the signature again, not only at registration: the row may have been written directly)
        sql: "SELECT m.to_version, m.fn::oid,
                     p.pronargs = 1 AND p.proargtypes[0] = 'jsonb'::regtype AND p.prorettype = 'jsonb'::regtype
                     AND NOT p.proretset AND p.prokind = 'f'
                FROM ctx.schema_migrations m LEFT JOIN pg_catalog.pg_proc p ON p.oid = m.fn
               WHERE m.name = $1 AND m.from_version = $2",
        args: &[TEXTOID, INT4OID],
        writes: false,
    };
    let plan = STEP.plan(client)?;
    let (mut value, mut version) = (value, from);
    loop {
        let step = client
            .select(&*plan, Some(1), &[name.into(), version.into()])?
            .next();
        let Some(row) = step else {
            return Ok((value, version));
        };
        let to: i32 = required(row.get(1)?, "to_version")?;
        let function: pg_sys::Oid = required(row.get(2)?, "fn")?;
        if !row.get::<bool>(3)?.unwrap_or(false) {
            return Err(CtxError::new(
                ErrorKind::UndefinedFunction,
                format!("the migration of schema \"{name}\" from version {version} has no function jsonb -> jsonb"),
            )
            .with_hint("register the step again with ctx.register_migration"));
        }
        value = call_migration(function, value)?;
        version = to;
    }
}

fn call_migration(function: pg_sys::Oid, value: Value) -> CtxResult<Value> {
    let argument = JsonB(value)
        .into_datum()
        .ok_or_else(|| CtxError::internal("jsonb argument is NULL"))?;
    // SAFETY: the caller checked that the function takes jsonb and returns jsonb;
    // OidFunctionCall raises an ERROR if it returns NULL.
    let result = unsafe { pg_sys::OidFunctionCall1Coll(function, pg_sys::InvalidOid, argument) };
    let migrated = unsafe { JsonB::from_datum(result, false) }
        .ok_or_else(|| CtxError::internal("migration returned NULL"))?;
    Ok(migrated.0)
}
