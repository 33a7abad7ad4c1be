//! The schema registry's SQL functions: register, validate, migrate stored state. Lookups,
//! compilation and migration runs are in `services::schemas`.
//! `ctx.register_migration` itself is SQL (src/schema/state.sql): it only checks and records.

use crate::api::args::{jsonb, JsonArg};

use pgrx::pg_sys::BuiltinOid::*;
use pgrx::prelude::*;
use pgrx::JsonB;

use crate::api::raise::OrRaise;
use crate::core::schema;
use crate::error::{required, CtxError, CtxResult, ErrorKind};
use crate::plans::{first_value, Statement};
use crate::services::schemas::*;
use crate::services::transaction::writing;

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
        writing(|client| {
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
        writing(|client| {
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
