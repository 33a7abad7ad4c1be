//! The schema registry: JSON Schemas by name and version (compiled once per backend), validation,
//! and migrations of stored values along registered version chains.
//! `ctx.register_migration` itself is SQL (src/schema/state.sql): it only checks and records.

use crate::api::args::{jsonb, JsonArg};
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
use crate::error::{required, CtxError, CtxResult, ErrorKind, OrRaise};
use crate::plans::{first_value, Statement};

/// Compiled schemas by (name, version, hash of the schema text): a re-registered definition
/// (after a rollback or a reinstall) never hits a stale entry.
type CacheKey = (String, i32, u64);

thread_local! {
    static COMPILED: RefCell<HashMap<CacheKey, Rc<CompiledSchema>>> = RefCell::new(HashMap::new());
}

/// Bound on cached compiled schemas per backend.
const CACHE_CAPACITY: usize = 256;

fn unknown_schema(name: &str, version: Option<i32>) -> CtxError {
    let what = match version {
        Some(v) => format!("schema \"{name}\" version {v} does not exist"),
        None => format!("schema \"{name}\" does not exist"),
    };
    CtxError::new(ErrorKind::UndefinedObject, what)
        .with_hint("register it with ctx.register_schema(name, version, json_schema)")
}

fn check_name(name: &str) -> CtxResult<()> {
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

/// The schema registry acts for every tenant (values of every tenant are validated and migrated
/// by it): only a role that bypasses row-level security changes it. (Row-level security on its
/// tables says the same to direct writes; this says it clearly.)
fn refuse_unless_global_writer() -> CtxResult<()> {
    let bypasses: Option<bool> = Spi::get_one("SELECT ctx.bypasses_rls()")
        .map_err(|e| CtxError::internal(format!("checking the role: {e}")))?;
    if bypasses.unwrap_or(false) {
        return Ok(());
    }
    Err(CtxError::new(
        ErrorKind::InsufficientPrivilege,
        "the schema registry is shared by every tenant: only a superuser or a role with BYPASSRLS changes it",
    )
    .with_hint("ask the database owner to register the schema"))
}

/// Registers version `version` of the JSON Schema `name`. Versions are immutable: registering
/// the same definition again is a no-op, a different one is refused.
#[pg_extern(volatile, parallel_unsafe)]
fn register_schema(name: Option<&str>, version: Option<i32>, json_schema: Option<JsonArg>) {
    (|| -> CtxResult<()> {
        let json_schema = jsonb(json_schema, "json_schema")?;
        let name = required(name, "name")?;
        check_name(name)?;
        let version = required(version, "version")?;
        if version < 1 {
            return Err(CtxError::invalid(format!("version must be at least 1, got {version}"))
                .with_hint("schema versions count up from 1"));
        }
        let json_schema = required(json_schema, "json_schema")?;
        schema::compile(&json_schema.0)?;
        refuse_unless_global_writer()?;
        static INSERT: Statement = Statement {
            sql: "INSERT INTO ctx.schemas (name, version, json_schema) VALUES ($1, $2, $3)
                  ON CONFLICT (name, version) DO UPDATE SET json_schema = excluded.json_schema
                   WHERE ctx.schemas.json_schema = excluded.json_schema
                  RETURNING true",
            args: &[TEXTOID, INT4OID, JSONBOID],
            writes: true,
        };
        Spi::connect_mut(|client| {
            let plan = INSERT.plan(client)?;
            let written: Option<bool> = first_value(client.update(&*plan, Some(1), &[name.into(), version.into(), json_schema.into()])?)?;
            if written.is_none() {
                return Err(CtxError::new(
                    ErrorKind::DuplicateObject,
                    format!("schema \"{name}\" version {version} is already registered with another definition"),
                )
                .with_hint("registered versions are immutable: register a new version and a migration"));
            }
            Ok(())
        })
    })()
    .or_raise()
}

/// Whether `value` matches schema `name` at `version` (default: the latest).
#[pg_extern(stable, parallel_safe)]
fn validate(
    name: Option<&str>,
    value: Option<JsonArg>,
    version: default!(Option<i32>, "NULL"),
) -> bool {
    (|| -> CtxResult<bool> {
        let value = jsonb(value, "value")?;
        let name = required(name, "name")?;
        let value = required(value, "value")?;
        Spi::connect(|client| {
            let version = match version {
                Some(v) => v,
                None => latest_version(client, name)?,
            };
            Ok(compiled(client, name, version)?.is_valid(&value.0))
        })
    })()
    .or_raise()
}

/// Upgrades every stored state value of schema `name` to its latest version along the
/// registered migrations, validating each result; all or nothing. Returns how many changed.
#[pg_extern(volatile, parallel_unsafe)]
fn migrate_state(name: Option<&str>) -> i64 {
    (|| -> CtxResult<i64> {
        let name = required(name, "name")?;
        static OLDER: Statement = Statement {
            // every tenant's values (the registry is shared); encrypted values are migrated
            // when read, as their plaintext is not available to a bulk statement
            sql: "SELECT ns_key, key, value, schema_version, tenant FROM ctx.state
                   WHERE schema_name = $1 AND schema_version < $2 AND value_enc IS NULL FOR UPDATE",
            args: &[TEXTOID, INT4OID],
            writes: true,
        };
        static WRITE: Statement = Statement {
            sql: "UPDATE ctx.state SET value = $3, schema_version = $4, version = version + 1, updated_at = now()
                   WHERE tenant = $5 AND ns_key = $1 AND key = $2",
            args: &[TEXTOID, TEXTOID, JSONBOID, INT4OID, TEXTOID],
            writes: true,
        };
        Spi::connect_mut(|client| {
            let latest = latest_version(client, name)?;
            let target = compiled(client, name, latest)?;
            let plan = OLDER.plan(client)?;
            let rows = client
                .update(&*plan, None, &[name.into(), latest.into()])?
                .map(|row| {
                    Ok((
                        required(row.get::<String>(1)?, "ns_key")?,
                        required(row.get::<String>(2)?, "key")?,
                        required(row.get::<JsonB>(3)?, "value")?.0,
                        required(row.get::<i32>(4)?, "schema_version")?,
                        required(row.get::<String>(5)?, "tenant")?,
                    ))
                })
                .collect::<CtxResult<Vec<_>>>()?;
            let write = WRITE.plan(client)?;
            let mut changed = 0;
            for (ns_key, key, value, from, tenant) in rows {
                let (migrated, reached) = migrate(client, name, from, value)?;
                if reached != latest {
                    return Err(CtxError::new(
                        ErrorKind::WrongState,
                        format!("no migration path for schema \"{name}\" from version {reached} to {latest}"),
                    )
                    .with_detail(format!("value at key \"{key}\" stopped at version {reached}"))
                    .with_hint("register the missing step with ctx.register_migration"));
                }
                target.check(&migrated, name, latest)?;
                let args: [pgrx::datum::DatumWithOid; 5] = [
                    ns_key.into(),
                    key.as_str().into(),
                    JsonB(migrated).into(),
                    latest.into(),
                    tenant.into(),
                ];
                client.update(&*write, None, &args)?;
                changed += 1;
            }
            Ok(changed)
        })
    })()
    .or_raise()
}
