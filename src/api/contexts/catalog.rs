//! The context catalog: contexts listed by the resource they belong to (a user, an agent: what
//! frameworks group threads by), filtered and paged in one call, and renamed or re-tagged.

use pgrx::datum::{DatumWithOid, TimestampWithTimeZone};
use pgrx::prelude::*;
use pgrx::{JsonB, Uuid};
use serde_json::Value;

use crate::api::args::{jsonb, JsonArg};
use crate::api::raise::OrRaise;
use crate::core::filter::{self, ColumnType, FilterTarget};
use crate::core::{conversation as rules, merge_patch};
use crate::error::{required, CtxError, CtxResult};
use crate::plans::param_datum;
use crate::services::context_view::missing_context;
use crate::services::transaction::writing;

use super::non_negative;

/// What filters over contexts may address: the metadata document, and these columns.
pub const CONTEXT_FILTER: FilterTarget = FilterTarget {
    document: "c.metadata",
    columns: &[
        ("id", "c.id", ColumnType::Uuid),
        ("name", "c.name", ColumnType::Text),
        ("resource", "c.resource", ColumnType::Text),
        ("message_count", "c.last_seq", ColumnType::Number),
        ("created_at", "c.created_at", ColumnType::Timestamp),
        ("updated_at", "c.updated_at", ColumnType::Timestamp),
    ],
};

type ContextRow = (
    Uuid,
    Option<String>,
    Option<String>,
    JsonB,
    TimestampWithTimeZone,
    TimestampWithTimeZone,
);

/// Renames a context, moves it to another resource, or merges `metadata_patch` into its metadata
/// (RFC 7396: null removes a key), under its row lock; NULL leaves a field as it is. Returns the
/// context as it now is.
// (pgrx reads the column names from this signature: no type alias)
#[allow(clippy::type_complexity)]
#[pg_extern(volatile, parallel_unsafe)]
fn update_context(
    context_id: Option<Uuid>,
    name: default!(Option<&str>, "NULL"),
    metadata_patch: default!(Option<JsonArg>, "NULL"),
    resource: default!(Option<&str>, "NULL"),
) -> TableIterator<
    'static,
    (
        name!(id, Uuid),
        name!(name, Option<String>),
        name!(resource, Option<String>),
        name!(metadata, JsonB),
        name!(created_at, TimestampWithTimeZone),
        name!(updated_at, TimestampWithTimeZone),
    ),
> {
    let row = (|| -> CtxResult<ContextRow> {
        let context_id = required(context_id, "context_id")?;
        rules::check_resource(resource)?;
        let patch = jsonb(metadata_patch, "metadata_patch")?.map(|j| j.0);
        if let Some(p) = &patch {
            if !p.is_object() {
                return Err(CtxError::invalid(format!(
                    "metadata_patch must be a JSON object, not {}",
                    rules::json_type(p)
                ))
                .with_hint("pass '{\"key\": \"value\"}'; a null value removes a key"));
            }
        }
        writing(|client| {
            let mut table = client.update(
                "SELECT metadata FROM ctx.contexts WHERE tenant = $2 AND id = $1 FOR NO KEY UPDATE",
                Some(1),
                &[context_id.into(), crate::services::tenant::current()?.into()],
            )?;
            let Some(current) = table.next() else {
                return Err(missing_context(client, context_id));
            };
            let mut metadata = current.get::<JsonB>(1)?.map_or(Value::Null, |j| j.0);
            if let Some(p) = &patch {
                merge_patch::apply(&mut metadata, p);
                rules::check_metadata(&metadata, "metadata")?;
            }
            let updated = client
                .update(
                    "UPDATE ctx.contexts SET name = coalesce($2, name), resource = coalesce($3, resource),
                            metadata = $4, updated_at = now()
                      WHERE tenant = $5 AND id = $1
                  RETURNING id, name, resource, metadata, created_at, updated_at",
                    Some(1),
                    &[
                        context_id.into(),
                        name.into(),
                        resource.into(),
                        JsonB(metadata).into(),
                        crate::services::tenant::current()?.into(),
                    ],
                )?
                .first();
            Ok((
                required(updated.get::<Uuid>(1)?, "id")?,
                updated.get::<String>(2)?,
                updated.get::<String>(3)?,
                required(updated.get::<JsonB>(4)?, "metadata")?,
                required(updated.get::<TimestampWithTimeZone>(5)?, "created_at")?,
                required(updated.get::<TimestampWithTimeZone>(6)?, "updated_at")?,
            ))
        })
    })()
    .or_raise();
    TableIterator::once(row)
}

/// The caller's contexts (of `resource`, when given) that match `filter` (the filter language
/// of memories, over the metadata and the columns id, name, resource, message_count,
/// created_at, updated_at), ordered and paged; each row carries the number of all matches, so
/// a client pages without a second query. message_count is the newest seq of the context's
/// view: the messages ever appended to it, inherited ones of a fork included.
// (pgrx reads the column names from this signature: no type alias)
#[allow(clippy::type_complexity)]
#[pg_extern(stable, parallel_safe)]
fn list_contexts(
    resource: default!(Option<&str>, "NULL"),
    filter: default!(Option<JsonArg>, "'{}'"),
    order_by: default!(Option<&str>, "'updated_at'"),
    descending: default!(Option<bool>, true),
    max_rows: default!(Option<i32>, 100),
    skip: default!(Option<i32>, 0),
) -> TableIterator<
    'static,
    (
        name!(id, Uuid),
        name!(name, Option<String>),
        name!(resource, Option<String>),
        name!(metadata, JsonB),
        name!(created_at, TimestampWithTimeZone),
        name!(updated_at, TimestampWithTimeZone),
        name!(message_count, i64),
        name!(total_count, i64),
    ),
> {
    let rows = (|| -> CtxResult<Vec<_>> {
        rules::check_resource(resource)?;
        let filter = jsonb(filter, "filter")?;
        let column = rules::context_order_column(required(order_by, "order_by")?)?;
        let direction = if required(descending, "descending")? {
            "DESC NULLS LAST"
        } else {
            "ASC NULLS LAST"
        };
        let max_rows = non_negative(max_rows.map(i64::from), "max_rows")?;
        let skip = non_negative(skip.map(i64::from), "skip")?;
        let mut args: Vec<DatumWithOid> = vec![resource.into()];
        let compiled = filter::compile(&filter.map_or(Value::Null, |j| j.0), &CONTEXT_FILTER, 2)?;
        args.extend(compiled.params.iter().map(param_datum));
        args.push(crate::services::tenant::current()?.into());
        let tenant_param = args.len();
        // (the caller's tenant, as every function acts in; resource lookups use
        // contexts_resource_idx; count(*) OVER () counts the matches before LIMIT)
        let sql = format!(
            "SELECT c.id, c.name, c.resource, c.metadata, c.created_at, c.updated_at, c.last_seq,
                    count(*) OVER ()
               FROM ctx.contexts c
              WHERE c.tenant = ${tenant_param}
                AND ($1::text IS NULL OR c.resource = $1::text) AND ({})
              ORDER BY {column} {direction}, c.id
              LIMIT {max_rows} OFFSET {skip}",
            compiled.sql
        );
        Spi::connect(|client| {
            client
                .select(sql.as_str(), None, &args)?
                .map(|row| {
                    Ok((
                        required(row.get::<Uuid>(1)?, "id")?,
                        row.get::<String>(2)?,
                        row.get::<String>(3)?,
                        required(row.get::<JsonB>(4)?, "metadata")?,
                        required(row.get::<TimestampWithTimeZone>(5)?, "created_at")?,
                        required(row.get::<TimestampWithTimeZone>(6)?, "updated_at")?,
                        required(row.get::<i64>(7)?, "last_seq")?,
                        required(row.get::<i64>(8)?, "total")?,
                    ))
                })
                .collect()
        })
    })()
    .or_raise();
    TableIterator::new(rows)
}
