//! SQL functions of the conversation store: contexts, the append-only message log, windows,
//! compaction and forks. Argument checks and SPI only; the rules are in `core::conversation`,
//! the context view and its reads in `services::context_view`.

mod catalog;
mod compaction;
mod forks;
mod read;
mod revisions;
mod write;

use pgrx::pg_sys::BuiltinOid::*;
use pgrx::prelude::*;
use pgrx::{JsonB, Uuid};
use serde_json::json;

use crate::api::args::{json_or, object_or_empty, JsonArg};
use crate::api::raise::OrRaise;
use crate::core::archive;
use crate::core::conversation as rules;
use crate::core::metrics::Counter;
use crate::core::tokenizer::Encoding;
use crate::error::{required, CtxError, CtxResult, ErrorKind};
use crate::gucs;
use crate::plans::Statement;
use crate::services::context_deletion::delete_rows;
use crate::services::context_view::*;
use crate::services::keys;
use crate::services::metrics;
use crate::services::transaction::writing;

pub(super) fn non_negative(value: Option<i64>, name: &str) -> CtxResult<i64> {
    let value = required(value, name)?;
    rules::check_non_negative(value, name)?;
    Ok(value)
}

/// Creates a conversation context (a thread) and returns its id.
#[pg_extern(volatile, parallel_unsafe)]
fn create_context(
    name: default!(Option<&str>, "NULL"),
    metadata: default!(Option<JsonArg>, "'{}'"),
    metadata_schema: default!(Option<&str>, "NULL"),
    processors: default!(Option<JsonArg>, "'{}'"),
    encrypted: default!(Option<bool>, "NULL"),
    resource: default!(Option<&str>, "NULL"),
) -> Uuid {
    rules::check_resource(resource).or_raise();
    let encrypted = encrypted.unwrap_or_else(gucs::encrypt_new_contexts);
    let metadata = object_or_empty(metadata, "metadata").or_raise();
    let processors = json_or(processors, "processors", json!({})).or_raise();
    crate::core::processors::Config::check(&processors, crate::core::processors::Level::Context)
        .or_raise();
    let encoding = gucs::default_encoding().name();
    static INSERT: Statement = Statement {
        sql: "INSERT INTO ctx.contexts (name, metadata, encoding, metadata_schema, processors, encrypted, resource)
              VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id",
        args: &[TEXTOID, JSONBOID, TEXTOID, TEXTOID, JSONBOID, BOOLOID, TEXTOID],
        writes: true,
    };
    writing(|client| -> CtxResult<Uuid> {
        if let Some(schema) = metadata_schema {
            crate::services::schemas::latest_version(client, schema)?; // must exist
        }
        let plan = INSERT.plan(client)?;
        let mut table = client.update(
            &*plan,
            Some(1),
            &[
                name.into(),
                JsonB(metadata).into(),
                encoding.into(),
                metadata_schema.into(),
                JsonB(processors).into(),
                encrypted.into(),
                resource.into(),
            ],
        )?;
        let row = table
            .next()
            .ok_or_else(|| CtxError::internal("INSERT returned no row"))?;
        let id: Uuid = required(row.get(1)?, "id")?;
        if encrypted {
            keys::create_key(client, &keys::Scope::Context(id), None)?;
        }
        Ok(id)
    })
    .or_raise()
}

/// Deletes a context and everything it owns. A context with forks is refused unless
/// `cascade` is true, which deletes the forks (and theirs) too. Returns the number of
/// contexts deleted.
#[pg_extern(volatile, parallel_unsafe)]
fn delete_context(
    context_id: Option<Uuid>,
    cascade: default!(Option<bool>, false),
    forget_memories: default!(Option<bool>, false),
) -> i64 {
    delete(context_id, cascade, forget_memories).or_raise()
}

fn delete(
    context_id: Option<Uuid>,
    cascade: Option<bool>,
    forget_memories: Option<bool>,
) -> CtxResult<i64> {
    let context_id = required(context_id, "context_id")?;
    let cascade = required(cascade, "cascade")?;
    let forget_memories = required(forget_memories, "forget_memories")?;
    static FORKS: Statement = Statement {
        sql: "SELECT count(*) FROM ctx.contexts WHERE tenant = $2 AND ancestors @> ARRAY[$1]",
        args: &[UUIDOID, TEXTOID],
        writes: false,
    };
    // locks the row without reading content: a shredded context can still be deleted
    static LOCK: Statement = Statement {
        sql: "SELECT 1 FROM ctx.contexts WHERE tenant = $2 AND id = $1 FOR UPDATE",
        args: &[UUIDOID, TEXTOID],
        writes: true,
    };
    writing(|client| {
        let plan = LOCK.plan(client)?;
        if client
            .update(
                &*plan,
                Some(1),
                &[
                    context_id.into(),
                    crate::services::tenant::current()?.into(),
                ],
            )?
            .is_empty()
        {
            return Err(missing_context(client, context_id));
        }
        if !cascade {
            let plan = FORKS.plan(client)?;
            let forks: i64 = client
                .select(
                    &*plan,
                    Some(1),
                    &[
                        context_id.into(),
                        crate::services::tenant::current()?.into(),
                    ],
                )?
                .first()
                .get_one()?
                .unwrap_or(0);
            if forks > 0 {
                return Err(CtxError::new(
                    ErrorKind::DependentObjects,
                    format!(
                        "cannot delete a context that has forks: {forks} fork(s) read its messages"
                    ),
                )
                .with_hint(
                    "delete the forks first, or call ctx.delete_context(id, cascade => true)",
                ));
            }
        }
        delete_rows(client, context_id, cascade, forget_memories)
    })
}

/// Number of tokens of `content` in `encoding` (default: the ctxstore.tokenizer setting).
#[pg_extern(stable, parallel_safe)]
fn count_tokens(content: Option<&str>, encoding: default!(Option<&str>, "NULL")) -> Option<i32> {
    let encoding = match encoding {
        Some(name) => Encoding::parse(name).or_raise(),
        None => gucs::default_encoding(),
    };
    content.map(|text| i32::try_from(encoding.count(text)).unwrap_or(i32::MAX))
}

/// lz4 block (with its length prepended) of a text, as ctxstore archives message content.
#[pg_extern(immutable, strict, parallel_safe)]
fn lz4_compress(content: &str) -> Vec<u8> {
    let block = archive::compress(content);
    metrics::count(Counter::BytesBeforeCompression, content.len() as u64);
    metrics::count(Counter::BytesAfterCompression, block.len() as u64);
    block
}

/// The text inside an lz4 block made by ctx.lz4_compress; corrupt input is an error.
#[pg_extern(immutable, strict, parallel_safe)]
fn lz4_decompress(block: &[u8]) -> String {
    archive::decompress(block).or_raise()
}
