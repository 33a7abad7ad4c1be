//! SQL functions of the key-value state store and of working memory: versioned JSON documents,
//! optimistic concurrency, RFC 7396 merge patches under a row lock, TTLs, filtered search.

use crate::api::args::{jsonb, JsonArg};
use crate::core::metrics::{Call, Counter};
use crate::services::metrics;
use pgrx::datum::{DatumWithOid, Interval, TimestampWithTimeZone};
use pgrx::pg_sys::BuiltinOid::*;
use pgrx::prelude::*;
use pgrx::spi::SpiClient;
use pgrx::{JsonB, Uuid};
use serde_json::{json, Value};

use crate::api::args::{check_ttl, namespace_arg};
use crate::api::raise::OrRaise;
use crate::core::filter::{self, ColumnType, FilterTarget};
use crate::core::processors::{record_counts, Kind};
use crate::core::{merge_patch, namespace};
use crate::error::{required, CtxError, CtxResult, ErrorKind};
use crate::plans::{first_value, param_datum, Statement};
use crate::services::pipeline::{Pipeline, WriteItem};
use crate::services::schemas;
use crate::services::state_values::*;
use crate::services::transaction::writing;

/// What filters over state may address: the document, and these columns.
pub const STATE_FILTER: FilterTarget = FilterTarget {
    document: "s.value",
    columns: &[
        ("key", "s.key", ColumnType::Text),
        ("namespace", "s.namespace", ColumnType::TextArray),
        ("version", "s.version", ColumnType::Number),
        ("created_at", "s.created_at", ColumnType::Timestamp),
        ("updated_at", "s.updated_at", ColumnType::Timestamp),
        ("expires_at", "s.expires_at", ColumnType::Timestamp),
    ],
};

const MAX_KEY_BYTES: usize = 1024;

fn address(namespace: Option<Vec<Option<String>>>, key: Option<&str>) -> CtxResult<Address> {
    let labels = namespace_arg(namespace, "namespace", false)?;
    let key = required(key, "key")?;
    if key.is_empty() || key.len() > MAX_KEY_BYTES {
        return Err(CtxError::invalid(format!(
            "key must be 1 to {MAX_KEY_BYTES} bytes, got {}",
            key.len()
        ))
        .with_hint("use a short, non-empty identifier such as 'profile'"));
    }
    Ok(Address {
        ns_key: namespace::key(&labels),
        labels,
        key: key.to_string(),
    })
}

fn conflict(detail: String) -> CtxError {
    metrics::count(Counter::StateConflicts, 1);
    CtxError::new(
        ErrorKind::SerializationFailure,
        "version conflict: the stored version is not the expected one",
    )
    .with_detail(detail)
    .with_hint("read the value again (ctx.get / ctx.search_state) and retry with its version")
}

/// Writes a value; returns its new version (1 for a new key). With `expected_version`, the write
/// happens only if the stored version is that one (0: only if the key does not exist), else
/// SQLSTATE 40001.
#[pg_extern(volatile, parallel_unsafe)]
fn put(
    namespace: Option<Vec<Option<String>>>,
    key: Option<&str>,
    value: Option<JsonArg>,
    schema: default!(Option<&str>, "NULL"),
    ttl: default!(Option<Interval>, "NULL"),
    expected_version: default!(Option<i64>, "NULL"),
) -> Option<i64> {
    let version = metrics::timed(Call::StateWrite, || -> CtxResult<Option<i64>> {
        let at = address(namespace, key)?;
        let value = required(jsonb(value, "value")?, "value")?;
        check_ttl(&ttl)?;
        if let Some(v) = expected_version {
            crate::core::conversation::check_non_negative(v, "expected_version")?;
        }
        static UPSERT: Statement = Statement {
            sql: "INSERT INTO ctx.state AS s (namespace, ns_key, key, value, version, expires_at, ttl,
                                              schema_name, schema_version, redacted, value_enc)
                  VALUES ($1, $2, $3, $4, 1, now() + $5, $5, $7, $8, $9, $10)
                  ON CONFLICT (tenant, ns_key, key) DO UPDATE
                     SET value = excluded.value, version = s.version + 1, updated_at = excluded.updated_at,
                         expires_at = excluded.expires_at, ttl = excluded.ttl, schema_name = excluded.schema_name,
                         schema_version = excluded.schema_version, redacted = excluded.redacted,
                         value_enc = excluded.value_enc
                   WHERE NOT $6 OR s.expires_at <= excluded.updated_at
                  RETURNING version",
            args: &[TEXTARRAYOID, TEXTOID, TEXTOID, JSONBOID, INTERVALOID, BOOLOID, TEXTOID, INT4OID, JSONBOID, BYTEAOID],
            writes: true,
        };
        static UPDATE_IF: Statement = Statement {
            sql: "UPDATE ctx.state SET value = $3, version = version + 1, updated_at = now(), expires_at = now() + $4, ttl = $4,
                         schema_name = $6, schema_version = $7, redacted = $8, value_enc = $9
                   WHERE tenant = $10 AND ns_key = $1 AND key = $2 AND version = $5 AND (expires_at IS NULL OR expires_at > now())
                  RETURNING version",
            args: &[TEXTOID, TEXTOID, JSONBOID, INTERVALOID, INT8OID, TEXTOID, INT4OID, JSONBOID, BYTEAOID, TEXTOID],
            writes: true,
        };
        writing(|client| {
            let pipeline = Pipeline::for_namespace(client, Kind::State, &at.labels, None)?;
            let Some(item) = pipeline.write(WriteItem::state(value.0))? else {
                return Ok(None); // a processor dropped it
            };
            let redacted = item.redacted.as_ref().map(|c| JsonB(record_counts(None, c)));
            let value = JsonB(item.value.unwrap_or(Value::Null));
            // A typed write: validate against the schema's latest version and stamp it.
            let stamp = schema
                .map(|name| schemas::check_latest(client, name, &value.0))
                .transpose()?;
            let (value, sealed) = to_store(client, &at, value.0)?;
            let written: Option<i64> = match expected_version {
                Some(expected) if expected > 0 => {
                    let plan = UPDATE_IF.plan(client)?;
                    let args: [DatumWithOid; 10] = [
                        at.ns_key.as_str().into(),
                        at.key.as_str().into(),
                        value.into(),
                        ttl.into(),
                        expected.into(),
                        schema.into(),
                        stamp.into(),
                        redacted.into(),
                        sealed.into(),
                        crate::services::tenant::current()?.into(),
                    ];
                    first_value(client.update(&*plan, Some(1), &args)?)?
                }
                _ => {
                    let only_if_absent = expected_version == Some(0);
                    let plan = UPSERT.plan(client)?;
                    let args: [DatumWithOid; 10] = [
                        at.labels.clone().into(),
                        at.ns_key.as_str().into(),
                        at.key.as_str().into(),
                        value.into(),
                        ttl.into(),
                        only_if_absent.into(),
                        schema.into(),
                        stamp.into(),
                        redacted.into(),
                        sealed.into(),
                    ];
                    first_value(client.update(&*plan, Some(1), &args)?)?
                }
            };
            written.map(Some).ok_or_else(|| {
                let stored = stored_version(client, &at).ok().flatten();
                conflict(match (expected_version, stored) {
                    (Some(e), Some(s)) => format!("expected version {e}, stored version is {s}"),
                    (Some(e), None) => format!("expected version {e}, but the key does not exist"),
                    (None, _) => "the write was not applied".to_string(),
                })
            })
        })
    })
    .or_raise();
    metrics::count(Counter::StatePuts, 1);
    version
}

/// The value at (namespace, key), or NULL when there is none (or it expired).
#[pg_extern(stable, parallel_safe)]
fn get(namespace: Option<Vec<Option<String>>>, key: Option<&str>) -> Option<JsonB> {
    let at = address(namespace, key).or_raise();
    Spi::connect(|client| read_value(client, &at).map(|v| v.map(JsonB))).or_raise()
}

/// Applies an RFC 7396 merge patch under the row lock (creating the document from `{}` when
/// absent) and returns the new document. Concurrent patches serialise: none is lost.
#[pg_extern(volatile, parallel_unsafe)]
fn patch(
    namespace: Option<Vec<Option<String>>>,
    key: Option<&str>,
    patch: Option<JsonArg>,
) -> JsonB {
    let document = metrics::timed(Call::StateWrite, || -> CtxResult<JsonB> {
        let at = address(namespace, key)?;
        let patch = required(jsonb(patch, "patch")?, "patch")?;
        writing(|client| apply_patch(client, &at, &patch.0).map(JsonB))
    })
    .or_raise();
    metrics::count(Counter::StatePatches, 1);
    document
}

fn apply_patch(client: &mut SpiClient<'_>, at: &Address, patch: &Value) -> CtxResult<Value> {
    // Make sure a row exists to lock; a concurrent creator makes this wait, then do nothing.
    static ENSURE: Statement = Statement {
        sql: "INSERT INTO ctx.state (namespace, ns_key, key, value, version) VALUES ($1, $2, $3, '{}', 0)
              ON CONFLICT (tenant, ns_key, key) DO NOTHING",
        args: &[TEXTARRAYOID, TEXTOID, TEXTOID],
        writes: true,
    };
    static LOCK: Statement = Statement {
        sql: "SELECT value, version = 0 OR coalesce(expires_at <= now(), false), schema_name, schema_version,
                     redacted, version, value_enc
                FROM ctx.state WHERE tenant = $3 AND ns_key = $1 AND key = $2 FOR UPDATE",
        args: &[TEXTOID, TEXTOID, TEXTOID],
        writes: true,
    };
    static WRITE: Statement = Statement {
        sql: "UPDATE ctx.state SET value = $3, version = version + 1, updated_at = now(),
                     expires_at = CASE WHEN $4 THEN NULL ELSE expires_at END,
                     ttl = CASE WHEN $4 THEN NULL ELSE ttl END, schema_version = $5,
                     redacted = $6, value_enc = $7
               WHERE tenant = $8 AND ns_key = $1 AND key = $2",
        args: &[
            TEXTOID, TEXTOID, JSONBOID, BOOLOID, INT4OID, JSONBOID, BYTEAOID, TEXTOID,
        ],
        writes: true,
    };
    let plan = ENSURE.plan(client)?;
    client.update(
        &*plan,
        None,
        &[
            at.labels.clone().into(),
            at.ns_key.as_str().into(),
            at.key.as_str().into(),
        ],
    )?;
    let plan = LOCK.plan(client)?;
    let row = client
        .update(
            &*plan,
            Some(1),
            &[
                at.ns_key.as_str().into(),
                at.key.as_str().into(),
                crate::services::tenant::current()?.into(),
            ],
        )?
        .next()
        .ok_or_else(|| CtxError::internal("the patched row vanished under its lock"))?;
    let fresh: bool = row.get(2)?.unwrap_or(true);
    let schema = match (fresh, row.get::<String>(3)?, row.get::<i32>(4)?) {
        (false, Some(name), Some(version)) => Some((name, version)),
        _ => None,
    };
    let stored = if fresh {
        json!({})
    } else {
        stored_value(client, at, row.get::<JsonB>(1)?, row.get::<Vec<u8>>(7)?)?
    };
    // A typed document is patched at its schema's latest version and must still match it.
    let mut document = read_typed(client, stored, schema.clone())?;
    merge_patch::apply(&mut document, patch);
    let pipeline = Pipeline::for_namespace(client, Kind::State, &at.labels, None)?;
    let Some(item) = pipeline.write(WriteItem::state(document.clone()))? else {
        // a processor dropped the write: leave no placeholder row behind
        if row.get::<i64>(6)? == Some(0) {
            client.update(
                "DELETE FROM ctx.state WHERE tenant = $3 AND ns_key = $1 AND key = $2 AND version = 0",
                None,
                &[at.ns_key.as_str().into(), at.key.as_str().into(), crate::services::tenant::current()?.into()],
            )?;
            return Ok(json!({}));
        }
        if fresh {
            return Ok(json!({})); // expired: nothing live to return
        }
        let current = stored_value(client, at, row.get::<JsonB>(1)?, row.get::<Vec<u8>>(7)?)?;
        return read_typed(client, current, schema);
    };
    let previously: Option<Value> = if fresh {
        None
    } else {
        row.get::<JsonB>(5)?.map(|j| j.0)
    };
    let redacted = match &item.redacted {
        Some(counts) => Some(record_counts(previously.as_ref(), counts)),
        None => previously,
    };
    let document = item.value.unwrap_or(Value::Null);
    let stamp = schema
        .as_ref()
        .map(|(name, _)| schemas::check_latest(client, name, &document))
        .transpose()?;
    let plan = WRITE.plan(client)?;
    let (stored_json, sealed) = to_store(client, at, document.clone())?;
    let args: [DatumWithOid; 8] = [
        at.ns_key.as_str().into(),
        at.key.as_str().into(),
        stored_json.into(),
        fresh.into(),
        stamp.into(),
        redacted.map(JsonB).into(),
        sealed.into(),
        crate::services::tenant::current()?.into(),
    ];
    client.update(&*plan, None, &args)?;
    Ok(document)
}

/// Deletes (namespace, key); returns whether a live value was there.
#[pg_extern(volatile, parallel_unsafe)]
fn delete_key(namespace: Option<Vec<Option<String>>>, key: Option<&str>) -> bool {
    let at = address(namespace, key).or_raise();
    static DELETE: Statement = Statement {
        sql: "DELETE FROM ctx.state WHERE tenant = $3 AND ns_key = $1 AND key = $2
              RETURNING expires_at IS NULL OR expires_at > now()",
        args: &[TEXTOID, TEXTOID, TEXTOID],
        writes: true,
    };
    writing(|client| -> CtxResult<bool> {
        let plan = DELETE.plan(client)?;
        Ok(first_value(client.update(
            &*plan,
            Some(1),
            &[
                at.ns_key.as_str().into(),
                at.key.as_str().into(),
                crate::services::tenant::current()?.into(),
            ],
        )?)?
        .unwrap_or(false))
    })
    .or_raise()
}

/// Restarts the time to live of live values: each of `keys` in the namespace that was put with
/// a ttl now expires that ttl from now (a read that keeps a value alive). Keys without a ttl,
/// expired or absent are left as they are. Returns how many values were touched: none in a
/// read-only transaction or on a standby, where the touch (bookkeeping of a read) is skipped.
#[pg_extern(volatile, parallel_unsafe)]
fn touch(namespace: Option<Vec<Option<String>>>, keys: Option<Vec<Option<String>>>) -> i64 {
    (|| -> CtxResult<i64> {
        let labels = namespace_arg(namespace, "namespace", false)?;
        let keys = required(keys, "keys")?
            .into_iter()
            .map(|k| required(k, "keys element"))
            .collect::<CtxResult<Vec<String>>>()?;
        if crate::services::transaction::read_only() {
            return Ok(0);
        }
        static TOUCH: Statement = Statement {
            sql: "UPDATE ctx.state SET expires_at = now() + ttl
                   WHERE tenant = $3 AND ns_key = $1 AND key = ANY ($2)
                     AND ttl IS NOT NULL AND expires_at > now()",
            args: &[TEXTOID, TEXTARRAYOID, TEXTOID],
            writes: true,
        };
        // On a Citus cluster the new expiries are read first and written as values: Citus
        // refuses `now() + ttl` (a stable operator over a column) in an UPDATE.
        static EXPIRIES: Statement = Statement {
            sql: "SELECT key, now() + ttl FROM ctx.state
                   WHERE tenant = $3 AND ns_key = $1 AND key = ANY ($2)
                     AND ttl IS NOT NULL AND expires_at > now()",
            args: &[TEXTOID, TEXTARRAYOID, TEXTOID],
            writes: false,
        };
        static TOUCH_AT: Statement = Statement {
            sql: "UPDATE ctx.state s SET expires_at = v.at
                    FROM unnest($2::text[], $4::timestamptz[]) AS v(key, at)
                   WHERE s.tenant = $3 AND s.ns_key = $1 AND s.key = v.key
                     AND s.ttl IS NOT NULL AND s.expires_at > now()",
            args: &[TEXTOID, TEXTARRAYOID, TEXTOID, TIMESTAMPTZARRAYOID],
            writes: true,
        };
        Spi::connect_mut(|client| {
            let ns_key = namespace::key(&labels);
            let tenant = crate::services::tenant::current()?;
            if crate::services::cluster::citus() {
                let plan = EXPIRIES.plan(client)?;
                let (keys, expiries): (Vec<String>, Vec<pgrx::datum::TimestampWithTimeZone>) =
                    client
                        .select(
                            &*plan,
                            None,
                            &[ns_key.as_str().into(), keys.into(), tenant.as_str().into()],
                        )?
                        .map(
                            |row| -> CtxResult<(String, pgrx::datum::TimestampWithTimeZone)> {
                                Ok((
                                    required(row.get(1)?, "key")?,
                                    required(row.get(2)?, "expires_at")?,
                                ))
                            },
                        )
                        .collect::<CtxResult<Vec<_>>>()?
                        .into_iter()
                        .unzip();
                let plan = TOUCH_AT.plan(client)?;
                let touched = client.update(
                    &*plan,
                    None,
                    &[
                        ns_key.as_str().into(),
                        keys.into(),
                        tenant.into(),
                        expiries.into(),
                    ],
                )?;
                return Ok(touched.len() as i64);
            }
            let plan = TOUCH.plan(client)?;
            let touched = client.update(
                &*plan,
                None,
                &[ns_key.as_str().into(), keys.into(), tenant.into()],
            )?;
            Ok(touched.len() as i64)
        })
    })()
    .or_raise()
}

/// Live values under a namespace prefix that match a filter, by namespace then key
/// (`order_by => 'key'`), or the most recently updated first (`'updated_at'`, as LangGraph's
/// stores list them; ties by namespace then key).
#[allow(clippy::type_complexity)]
#[pg_extern(stable, parallel_safe)]
fn search_state(
    namespace_prefix: Option<Vec<Option<String>>>,
    filter: default!(Option<JsonArg>, "'{}'"),
    max_rows: default!(Option<i32>, 100),
    skip: default!(Option<i32>, 0),
    include_descendants: default!(Option<bool>, true),
    include_expired: default!(Option<bool>, false),
    order_by: default!(Option<&str>, "'key'"),
) -> TableIterator<
    'static,
    (
        name!(namespace, Vec<String>),
        name!(key, String),
        name!(value, JsonB),
        name!(version, i64),
        name!(updated_at, TimestampWithTimeZone),
        name!(created_at, TimestampWithTimeZone),
        name!(expires_at, Option<TimestampWithTimeZone>),
    ),
> {
    let rows = (|| -> CtxResult<Vec<_>> {
        let prefix = namespace_arg(namespace_prefix, "namespace_prefix", true)?;
        let filter = jsonb(filter, "filter")?;
        let max_rows = i64::from(required(max_rows, "max_rows")?);
        let skip = i64::from(required(skip, "skip")?);
        crate::core::conversation::check_non_negative(max_rows, "max_rows")?;
        crate::core::conversation::check_non_negative(skip, "skip")?;
        let order = match required(order_by, "order_by")? {
            "key" => "s.ns_key, s.key",
            "updated_at" => "s.updated_at DESC, s.ns_key, s.key",
            other => {
                return Err(CtxError::invalid(format!("unknown order_by \"{other}\""))
                    .with_hint("order_by is key or updated_at"))
            }
        };
        let descendants = required(include_descendants, "include_descendants")?;
        if !descendants && prefix.is_empty() {
            return Err(CtxError::invalid(
                "'{}' with include_descendants => false names no namespace",
            )
            .with_hint("pass the namespace whose own values you want"));
        }
        let (mut parts, keys) = namespace::key_conditions("s.ns_key", &prefix, descendants, 1);
        let mut args: Vec<DatumWithOid> = keys.into_iter().map(DatumWithOid::from).collect();
        // expired values stay readable on request until the retention sweep deletes them
        // (LangGraph's stores show them unless told to omit them)
        if !required(include_expired, "include_expired")? {
            parts.push("(s.expires_at IS NULL OR s.expires_at > now())".into());
        }
        parts.push("s.version > 0".into());
        args.push(crate::services::tenant::current()?.into());
        parts.push(format!("s.tenant = ${}", args.len()));
        let compiled = filter::compile(
            &filter.map_or(Value::Null, |j| j.0),
            &STATE_FILTER,
            args.len() + 1,
        )?;
        parts.push(format!("({})", compiled.sql));
        args.extend(compiled.params.iter().map(param_datum));
        let sql = format!(
            "SELECT s.namespace, s.key, s.value, s.version, s.updated_at, s.schema_name, s.schema_version,
                    s.ns_key, s.value_enc, s.created_at, s.expires_at
               FROM ctx.state s
              WHERE {} ORDER BY {order} LIMIT {max_rows} OFFSET {skip}",
            parts.join(" AND ")
        );
        Spi::connect(|client| {
            client
                .select(sql.as_str(), None, &args)?
                                .map(|row| {
                    let schema = match (row.get::<String>(6)?, row.get::<i32>(7)?) {
                        (Some(name), Some(version)) => Some((name, version)),
                        _ => None,
                    };
                    let at = Address {
                        labels: required(row.get::<Vec<String>>(1)?, "namespace")?,
                        ns_key: required(row.get::<String>(8)?, "ns_key")?,
                        key: required(row.get::<String>(2)?, "key")?,
                    };
                    let stored = stored_value(client, &at, row.get::<JsonB>(3)?, row.get::<Vec<u8>>(9)?)?;
                    let value = read_typed(client, stored, schema)?;
                    Ok((
                        required(row.get::<Vec<String>>(1)?, "namespace")?,
                        required(row.get::<String>(2)?, "key")?,
                        JsonB(value),
                        required(row.get::<i64>(4)?, "version")?,
                        required(row.get::<TimestampWithTimeZone>(5)?, "updated_at")?,
                        required(row.get::<TimestampWithTimeZone>(10)?, "created_at")?,
                        row.get::<TimestampWithTimeZone>(11)?,
                    ))
                })
                .collect()
        })
    })()
    .or_raise();
    TableIterator::new(rows)
}

/// The working-memory document of a context (`{}` until something is written).
#[pg_extern(stable, parallel_safe)]
fn working_memory(context_id: Option<Uuid>) -> JsonB {
    (|| -> CtxResult<JsonB> {
        let context_id = required(context_id, "context_id")?;
        Spi::connect(|client| {
            let at = working_memory_address(client, context_id)?;
            Ok(JsonB(read_value(client, &at)?.unwrap_or(json!({}))))
        })
    })()
    .or_raise()
}

/// Merges `patch` (RFC 7396) into the context's working memory atomically; returns the result.
#[pg_extern(volatile, parallel_unsafe)]
fn update_working_memory(context_id: Option<Uuid>, patch: Option<JsonArg>) -> JsonB {
    (|| -> CtxResult<JsonB> {
        let context_id = required(context_id, "context_id")?;
        let patch = required(jsonb(patch, "patch")?, "patch")?;
        writing(|client| {
            let at = working_memory_address(client, context_id)?;
            apply_patch(client, &at, &patch.0).map(JsonB)
        })
    })()
    .or_raise()
}
