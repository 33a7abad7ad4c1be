//! Appending messages: one, or a batch all or nothing; write processors and metadata schemas
//! run first; encrypted contexts seal each message bound to its seq.

use pgrx::pg_sys::BuiltinOid::*;
use pgrx::prelude::*;
use pgrx::spi::SpiClient;
use pgrx::{JsonB, Uuid};
use serde_json::Value;

use crate::api::args::{object_or_empty, JsonArg};
use crate::api::raise::OrRaise;
use crate::core::conversation as rules;
use crate::core::metrics::{Call, Counter};
use crate::core::processors::Stage;
use crate::core::tokenizer::Encoding;
use crate::error::{required, CtxError, CtxResult};
use crate::gucs;
use crate::plans::Statement;
use crate::services::context_view::*;
use crate::services::keys;
use crate::services::metrics;
use crate::services::pipeline::{ContextTarget, Pipeline, WriteItem};

/// Appends one message; returns its seq (gap-free, unique per context).
#[pg_extern(volatile, parallel_unsafe)]
fn append(
    context_id: Option<Uuid>,
    role: Option<&str>,
    content: Option<&str>,
    metadata: default!(Option<JsonArg>, "'{}'"),
) -> Option<i64> {
    let seq = metrics::timed(Call::Append, || {
        append_one(context_id, role, content, metadata)
    })
    .or_raise();
    metrics::count(Counter::MessagesAppended, u64::from(seq.is_some()));
    seq
}

fn append_one(
    context_id: Option<Uuid>,
    role: Option<&str>,
    content: Option<&str>,
    metadata: Option<JsonArg>,
) -> CtxResult<Option<i64>> {
    let context_id = required(context_id, "context_id")?;
    let role = required(role, "role")?;
    let content = required(content, "content")?;
    rules::check_role(role)?;
    rules::check_content(content, gucs::max_message_bytes())?;
    let metadata = object_or_empty(metadata, "metadata")?;
    let message = WriteItem::message(role.to_string(), content.to_string(), metadata);
    // The message's tenant is its context's (the foreign key says so): taken from the row
    // just locked rather than evaluating ctx.current_tenant() again for the column default.
    static APPEND: Statement = Statement {
        sql: "WITH c AS (
                  UPDATE ctx.contexts SET last_seq = last_seq + 1, updated_at = now()
                   WHERE id = $1 RETURNING last_seq, encoding, tenant)
              INSERT INTO ctx.messages (context_id, tenant, seq, role, content, metadata, tokens)
              SELECT $1, c.tenant, c.last_seq, $2, $3, $4, ctx.count_tokens($3, c.encoding) FROM c
              RETURNING seq",
        args: &[UUIDOID, TEXTOID, TEXTOID, JSONBOID],
        writes: true,
    };
    Spi::connect_mut(|client| {
        let (mut processed, sealed) = process_writes(client, context_id, vec![message])?;
        let Some(message) = processed.pop().flatten() else {
            return Ok(None); // a processor dropped it
        };
        if let Some(encoding) = sealed {
            return Ok(append_sealed(client, context_id, encoding, vec![message])?.pop());
        }
        let plan = APPEND.plan(client)?;
        let mut table = client.update(
            &*plan,
            Some(1),
            &[
                context_id.into(),
                message.role.clone().into(),
                message.content.clone().into(),
                JsonB(message.stamped_metadata()).into(),
            ],
        )?;
        let row = table.next().ok_or_else(|| unknown_context(context_id))?;
        Ok(Some(required(row.get(1)?, "seq")?))
    })
}

/// Appends a JSON array of {role, content, metadata} in one round trip, all or nothing.
#[pg_extern(volatile, parallel_unsafe)]
fn append_many(context_id: Option<Uuid>, messages: Option<JsonArg>) -> SetOfIterator<'static, i64> {
    let seqs = metrics::timed(Call::Append, || append_batch(context_id, messages)).or_raise();
    metrics::count(Counter::MessagesAppended, seqs.len() as u64);
    SetOfIterator::new(seqs)
}

fn append_batch(context_id: Option<Uuid>, messages: Option<JsonArg>) -> CtxResult<Vec<i64>> {
    let context_id = required(context_id, "context_id")?;
    let messages = required(messages, "messages")?.parse("messages")?;
    let batch = rules::parse_batch(&messages, gucs::max_message_bytes())?;
    static APPEND_MANY: Statement = Statement {
        sql: "WITH c AS (
                  UPDATE ctx.contexts SET last_seq = last_seq + $5, updated_at = now()
                   WHERE id = $1 RETURNING last_seq - $5 AS base, encoding, tenant)
              INSERT INTO ctx.messages (context_id, tenant, seq, role, content, metadata, tokens)
              SELECT $1, c.tenant, c.base + m.ord, m.role, m.content, m.metadata,
                     ctx.count_tokens(m.content, c.encoding)
                FROM c, unnest($2::text[], $3::text[], $4::jsonb[]) WITH ORDINALITY AS m(role, content, metadata, ord)
              RETURNING seq",
        args: &[UUIDOID, TEXTARRAYOID, TEXTARRAYOID, JSONBARRAYOID, INT8OID],
        writes: true,
    };
    Spi::connect_mut(|client| {
        if batch.is_empty() {
            load_view(client, context_id, false)?; // still reject an unknown context
            return Ok(Vec::new());
        }
        let items = batch
            .into_iter()
            .map(|m| WriteItem::message(m.role, m.content, m.metadata))
            .collect();
        let (processed, sealed) = process_writes(client, context_id, items)?;
        let kept: Vec<WriteItem> = processed.into_iter().flatten().collect();
        if kept.is_empty() {
            return Ok(Vec::new()); // processors dropped every message
        }
        if let Some(encoding) = sealed {
            return append_sealed(client, context_id, encoding, kept);
        }
        let count = kept.len() as i64;
        let mut roles = Vec::with_capacity(kept.len());
        let mut contents = Vec::with_capacity(kept.len());
        let mut metadatas = Vec::with_capacity(kept.len());
        for message in kept {
            metadatas.push(JsonB(message.stamped_metadata()));
            roles.push(message.role.unwrap_or_default());
            contents.push(message.content.unwrap_or_default());
        }
        let plan = APPEND_MANY.plan(client)?;
        let table = client.update(
            &*plan,
            None,
            &[
                context_id.into(),
                roles.into(),
                contents.into(),
                metadatas.into(),
                count.into(),
            ],
        )?;
        let mut seqs = table
            .map(|row| required(row.get::<i64>(1)?, "seq"))
            .collect::<CtxResult<Vec<_>>>()?;
        if seqs.is_empty() {
            return Err(unknown_context(context_id));
        }
        seqs.sort_unstable();
        Ok(seqs)
    })
}

/// Runs the context's write processors over new messages (`None`: dropped by a processor),
/// then checks the metadata of those kept against the context's `metadata_schema`, if any
/// (SQLSTATE 23514). Errors name `messages[i]` when there are several.
fn process_writes(
    client: &SpiClient<'_>,
    context_id: Uuid,
    messages: Vec<WriteItem>,
) -> CtxResult<(Vec<Option<WriteItem>>, Option<Encoding>)> {
    static CONTEXT: Statement = Statement {
        sql: "SELECT metadata_schema, processors, metadata, encoding, encrypted, tenant
                FROM ctx.contexts WHERE id = $1",
        args: &[UUIDOID],
        writes: false,
    };
    let plan = CONTEXT.plan(client)?;
    let mut table = client.select(&*plan, Some(1), &[context_id.into()])?;
    let Some(row) = table.next() else {
        return Err(missing_context(client, context_id));
    };
    let schema: Option<String> = row.get(1)?;
    let encrypted: bool = row.get(5)?.unwrap_or(false);
    let stored: Value = row.get::<JsonB>(2)?.map_or(Value::Null, |j| j.0);
    let context_metadata: Value = row.get::<JsonB>(3)?.map_or(Value::Null, |j| j.0);
    let encoding = Encoding::parse(&required::<String>(row.get(4)?, "encoding")?)?;
    let tenant: String = required(row.get(6)?, "tenant")?;
    let pipeline = Pipeline::for_context(
        client,
        Stage::Write,
        &ContextTarget {
            tenant: &tenant,
            id: context_id,
            metadata: &context_metadata,
        },
        &stored,
        None,
        encoding,
    )?;
    let compiled = match &schema {
        Some(name) => {
            let version = crate::services::schemas::latest_version(client, name)?;
            Some((
                name,
                version,
                crate::services::schemas::compiled(client, name, version)?,
            ))
        }
        None => None,
    };
    let several = messages.len() > 1;
    let name_it = |i: usize, e: CtxError| {
        if several {
            CtxError {
                message: format!("messages[{i}]: {}", e.message),
                ..e
            }
        } else {
            e
        }
    };
    let mut out = Vec::with_capacity(messages.len());
    for (i, message) in messages.into_iter().enumerate() {
        let processed = pipeline.write(message).map_err(|e| name_it(i, e))?;
        // placeholders and user processors can make a message longer
        if let Some(content) = processed.as_ref().and_then(|m| m.content.as_deref()) {
            rules::check_content(content, gucs::max_message_bytes()).map_err(|e| name_it(i, e))?;
        }
        if let (Some(m), Some((name, version, compiled))) = (&processed, &compiled) {
            compiled.check(&m.metadata, name, *version).map_err(|e| {
                if several {
                    CtxError {
                        message: format!("messages[{i}] metadata: {}", e.message),
                        ..e
                    }
                } else {
                    e
                }
            })?;
        }
        out.push(processed);
    }
    Ok((out, encrypted.then_some(encoding)))
}

/// Appends messages of an encrypted context: seqs are reserved first, because each ciphertext
/// is bound to its seq; token counts are taken from the plaintext here.
fn append_sealed(
    client: &mut SpiClient<'_>,
    context_id: Uuid,
    encoding: Encoding,
    messages: Vec<WriteItem>,
) -> CtxResult<Vec<i64>> {
    static RESERVE: Statement = Statement {
        sql: "UPDATE ctx.contexts SET last_seq = last_seq + $2, updated_at = now()
               WHERE id = $1 RETURNING last_seq - $2",
        args: &[UUIDOID, INT8OID],
        writes: true,
    };
    static INSERT_SEALED: Statement = Statement {
        sql: "INSERT INTO ctx.messages (context_id, seq, role, content_enc, metadata_enc, tokens)
              SELECT $1, $2 + m.ord, m.role, m.content, m.metadata, m.tokens
                FROM unnest($3::text[], $4::bytea[], $5::bytea[], $6::int[])
                     WITH ORDINALITY AS m(role, content, metadata, tokens, ord)",
        args: &[
            UUIDOID,
            INT8OID,
            TEXTARRAYOID,
            BYTEAARRAYOID,
            BYTEAARRAYOID,
            INT4ARRAYOID,
        ],
        writes: true,
    };
    let plan = RESERVE.plan(client)?;
    let base: i64 = crate::plans::first_value(client.update(
        &*plan,
        Some(1),
        &[context_id.into(), (messages.len() as i64).into()],
    )?)?
    .ok_or_else(|| unknown_context(context_id))?;
    let key = keys::data_key(client, &keys::Scope::Context(context_id))?;
    let (mut roles, mut contents, mut metadatas, mut tokens) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for (i, message) in messages.into_iter().enumerate() {
        let seq = base + i as i64 + 1;
        let content = message.content.clone().unwrap_or_default();
        let role = message.role.clone().unwrap_or_default();
        let metadata = serde_json::to_vec(&message.stamped_metadata())
            .map_err(|e| CtxError::internal(format!("metadata serialisation: {e}")))?;
        tokens.push(encoding.count(&content) as i32);
        contents.push(keys::seal(
            &key,
            content.as_bytes(),
            &message_aad(context_id, seq, &role, "messages.content"),
        )?);
        metadatas.push(keys::seal(
            &key,
            &metadata,
            &message_aad(context_id, seq, &role, "messages.metadata"),
        )?);
        roles.push(role);
    }
    let count = roles.len() as i64;
    let plan = INSERT_SEALED.plan(client)?;
    client.update(
        &*plan,
        None,
        &[
            context_id.into(),
            base.into(),
            roles.into(),
            contents.into(),
            metadatas.into(),
            tokens.into(),
        ],
    )?;
    Ok((base + 1..=base + count).collect())
}
