//! Appending messages: one, or a batch all or nothing; write processors and metadata schemas
//! run first; encrypted contexts seal each message bound to its seq.

use pgrx::datum::TimestampWithTimeZone;
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
use crate::error::{required, CtxError, CtxResult, ErrorKind};
use crate::gucs;
use crate::plans::Statement;
use crate::services::cluster;
use crate::services::context_view::*;
use crate::services::counter_bump;
use crate::services::direct_reads::{self, WriteSettings};
use crate::services::keys;
use crate::services::message_insert;
use crate::services::metrics;
use crate::services::pipeline::{ContextTarget, Pipeline, WriteItem};
use crate::services::tenant;
use crate::services::transaction::writing;

/// Appends one message; returns its seq (gap-free, unique per context).
#[pg_extern(volatile, parallel_unsafe)]
fn append(
    context_id: Option<Uuid>,
    role: Option<&str>,
    content: Option<&str>,
    metadata: default!(Option<JsonArg>, "'{}'"),
    message_id: default!(Option<&str>, "NULL"),
    created_at: default!(Option<TimestampWithTimeZone>, "NULL"),
) -> Option<i64> {
    let seq = metrics::timed(Call::Append, || {
        append_one(context_id, role, content, metadata, message_id, created_at)
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
    message_id: Option<&str>,
    created_at: Option<TimestampWithTimeZone>,
) -> CtxResult<Option<i64>> {
    let context_id = required(context_id, "context_id")?;
    let role = required(role, "role")?;
    let content = required(content, "content")?;
    rules::check_role(role)?;
    rules::check_content(content, gucs::max_message_bytes())?;
    if let Some(id) = message_id {
        rules::check_message_id(id)?;
    }
    if created_at.is_some_and(|t| t.is_infinity() || t.is_neg_infinity()) {
        return Err(CtxError::new(
            ErrorKind::InvalidDatetime,
            "created_at must be a finite timestamp",
        )
        .with_hint("pass the time the message was written, or NULL for now()"));
    }
    let metadata = object_or_empty(metadata, "metadata")?;
    let message = WriteItem::message(role.to_string(), content.to_string(), metadata);
    // The message's tenant is its context's (the foreign key says so): taken from the row just
    // locked. The tenant is a parameter of every statement (a cluster distributed by tenant
    // routes a statement to one node by it).
    macro_rules! append_one {
        ($conflict:literal) => {
            concat!(
                "WITH c AS (
                     UPDATE ctx.contexts SET last_seq = last_seq + 1, updated_at = now()
                      WHERE tenant = $7 AND id = $1 RETURNING last_seq, encoding, tenant, cardinality(ancestors) > 0 AS forked)
                 INSERT INTO ctx.messages (context_id, tenant, seq, message_id, role, content, metadata, tokens, created_at)
                 SELECT $1, c.tenant, c.last_seq, coalesce($5, gen_random_uuid()::text), $2, $3, $4,
                        ctx.count_tokens($3, c.encoding), coalesce($6, now())
                   FROM c ",
                $conflict,
                " RETURNING seq, (SELECT forked FROM c)"
            )
        };
    }
    const ARGS: &[pgrx::pg_sys::BuiltinOid] = &[
        UUIDOID,
        TEXTOID,
        TEXTOID,
        JSONBOID,
        TEXTOID,
        TIMESTAMPTZOID,
        TEXTOID,
    ];
    static APPEND: Statement = Statement {
        sql: append_one!(""),
        args: ARGS,
        writes: true,
    };
    // a caller's id may be taken: no row instead of an error, to say which
    static APPEND_WITH_ID: Statement = Statement {
        sql: append_one!("ON CONFLICT (tenant, context_id, message_id) DO NOTHING"),
        args: ARGS,
        writes: true,
    };
    writing(|client| {
        let (mut processed, sealed) = process_writes(client, context_id, vec![message])?;
        let Some(message) = processed.pop().flatten() else {
            return Ok(None); // a processor dropped it
        };
        let incoming = Incoming {
            message_id: message_id.map(str::to_string),
            created_at: created_at.map(|t| t.to_string()),
            item: message,
        };
        if sealed.is_some() || cluster::citus() {
            let appended = append_processed(client, context_id, sealed, vec![incoming])?;
            return Ok(appended.first().map(|a| a.seq));
        }
        // The message is stored directly where the table allows (services::message_insert); a
        // caller's id, where its unique index can be probed (else the statement's ON CONFLICT
        // finds a taken id through that index).
        if let (Some(role), Some(content), Some(writer)) = (
            &incoming.item.role,
            &incoming.item.content,
            message_insert::writer(client)?,
        ) {
            // (whether the id's index can be probed, known before the counter moves; its answer
            // counts only under the counter's lock, and a transaction whose snapshot is older
            // than the context's last append gets the UPDATE's serialization error first)
            let id = match message_id {
                None => Some(None),
                Some(id) => direct_reads::id_index().map(|index| Some((id, index))),
            };
            if let Some(id) = id {
                return append_direct(
                    client,
                    writer,
                    context_id,
                    DirectMessage {
                        id,
                        role,
                        content,
                        metadata: incoming.item.stamped_metadata(),
                        created_at,
                    },
                );
            }
        }
        let statement = if message_id.is_some() {
            &APPEND_WITH_ID
        } else {
            &APPEND
        };
        let plan = statement.plan(client)?;
        let tenant = tenant::current()?;
        let bump = counter_bump::announce(context_id, 1);
        let mut table = client.update(
            &*plan,
            Some(1),
            &[
                context_id.into(),
                incoming.item.role.clone().into(),
                incoming.item.content.clone().into(),
                JsonB(incoming.item.stamped_metadata()).into(),
                message_id.into(),
                created_at.into(),
                tenant.into(),
            ],
        )?;
        drop(bump);
        let Some(row) = table.next() else {
            load_view(client, context_id, false)?; // an unknown context says so
            return Err(taken(message_id.unwrap_or_default()));
        };
        let seq = required(row.get::<i64>(1)?, "seq")?;
        if let (Some(id), Some(true)) = (message_id, row.get::<bool>(2)?) {
            if let Some(id) = inherited_live(client, context_id, &[id.to_string()])? {
                return Err(taken(&id));
            }
        }
        Ok(Some(seq))
    })
}

/// One message appended without its INSERT statement: the counter moved by its UPDATE (the
/// lock, the gap-free seq, and every wait and serialization error of concurrent appends are the
/// statement's), the message stored by `message_insert`, with the same values.
fn append_direct(
    client: &mut SpiClient<'_>,
    writer: message_insert::Writer,
    context_id: Uuid,
    message: DirectMessage<'_>,
) -> CtxResult<Option<i64>> {
    // (operators and functions qualified: the caller's search path is not consulted)
    static BUMP: Statement = Statement {
        sql: "UPDATE ctx.contexts SET last_seq = last_seq OPERATOR(pg_catalog.+) 1, updated_at = pg_catalog.now()
               WHERE tenant OPERATOR(pg_catalog.=) $2 AND id OPERATOR(pg_catalog.=) $1
           RETURNING last_seq, encoding, tenant,
                     pg_catalog.cardinality(ancestors) OPERATOR(pg_catalog.>) 0",
        args: &[UUIDOID, TEXTOID],
        writes: true,
    };
    let plan = BUMP.plan(client)?;
    let bump = counter_bump::announce(context_id, 1);
    let mut table = client.update(
        &*plan,
        Some(1),
        &[context_id.into(), tenant::current()?.into()],
    )?;
    drop(bump);
    let Some(row) = table.next() else {
        load_view(client, context_id, false)?; // an unknown context says so
        return Err(CtxError::internal(format!(
            "context {context_id} has no counter row"
        )));
    };
    let seq: i64 = required(row.get(1)?, "seq")?;
    let encoding = match row.get::<String>(2)? {
        Some(name) => Encoding::parse(&name)?,
        None => gucs::default_encoding(),
    };
    let tenant: String = required(row.get(3)?, "tenant")?;
    let forked: bool = required(row.get(4)?, "forked")?;
    let message_id = message.id.as_ref().map(|(id, _)| *id);
    if let Some((id, index)) = message.id {
        // (under the counter's lock: an append of the same id that held it before is
        // committed now; the unique index would refuse it anyway, without saying which id)
        match index.lookup(&tenant, context_id, id) {
            direct_reads::MessageId::Free => {}
            direct_reads::MessageId::Taken => return Err(taken(id)),
            direct_reads::MessageId::Conflict => {
                return Err(CtxError::new(
                    ErrorKind::SerializationFailure,
                    "could not serialize access due to concurrent update",
                )
                .with_hint(format!(
                    "message \"{id}\" was appended by a transaction this one cannot see: retry the transaction"
                )));
            }
        }
        if forked && inherited_live(client, context_id, &[id.to_string()])?.is_some() {
            return Err(taken(id));
        }
    }
    writer.store(message_insert::NewMessage {
        context_id,
        tenant: &tenant,
        seq,
        message_id,
        role: message.role,
        content: message.content,
        metadata: message.metadata,
        tokens: i32::try_from(encoding.count(message.content)).unwrap_or(i32::MAX),
        created_at: message.created_at,
    })?;
    Ok(Some(seq))
}

/// What `append_direct` stores: the processed message, the caller's id (with its index, opened
/// to look it up) and timestamp if given.
struct DirectMessage<'a> {
    id: Option<(&'a str, direct_reads::IdIndex)>,
    role: &'a str,
    content: &'a str,
    metadata: Value,
    created_at: Option<TimestampWithTimeZone>,
}

/// A message to append: processed, with the caller's id and timestamp (RFC 3339 text).
pub(crate) struct Incoming {
    pub message_id: Option<String>,
    pub created_at: Option<String>,
    pub item: WriteItem,
}

/// A message's id and timestamp as the caller gave them (either may be absent).
pub(crate) type Identity = (Option<String>, Option<String>);

/// A parsed batch as what the write processors take and, apart, each message's identity.
pub(crate) fn split_batch(batch: Vec<rules::NewMessage>) -> (Vec<WriteItem>, Vec<Identity>) {
    batch
        .into_iter()
        .map(|m| {
            (
                WriteItem::message(m.role, m.content, m.metadata),
                (m.message_id, m.created_at),
            )
        })
        .unzip()
}

/// An appended message: its id (the caller's, or the one generated) and seq.
pub(crate) struct Appended {
    pub message_id: String,
    pub seq: i64,
}

/// Appending an id that a message of the view already has (deleted ones keep theirs).
pub(crate) fn taken(id: &str) -> CtxError {
    CtxError::new(
        ErrorKind::UniqueViolation,
        format!("message \"{id}\" already exists in the context"),
    )
    .with_hint(
        "ctx.save_messages(context_id, messages) appends new ids and revises existing ones \
         (deleted ones too); ctx.update_message edits one",
    )
}

/// Which of these ids a message that a fork inherits has (its own rows are kept unique by an
/// index; an ancestor's are not its rows), if any. A deleted message keeps its id.
pub(crate) fn inherited_live(
    client: &SpiClient<'_>,
    context_id: Uuid,
    ids: &[String],
) -> CtxResult<Option<String>> {
    static INHERITED: Statement = Statement {
        sql: "SELECT m.message_id
                FROM ctx.contexts c
               CROSS JOIN LATERAL unnest(c.ancestors, c.bounds) WITH ORDINALITY AS a(cid, hi, ord)
                JOIN ctx.messages m
                  ON m.tenant = c.tenant AND m.context_id = a.cid AND m.message_id = ANY ($2)
                 AND m.seq <= a.hi
               WHERE c.tenant = $3 AND c.id = $1
                 AND NOT EXISTS (
                     SELECT FROM ctx.messages o
                      WHERE o.tenant = c.tenant AND o.context_id = ANY ((c.id || c.ancestors)[1:a.ord])
                        AND o.seq = m.seq)
               LIMIT 1",
        args: &[UUIDOID, TEXTARRAYOID, TEXTOID],
        writes: false,
    };
    let plan = INHERITED.plan(client)?;
    crate::plans::first_value(client.select(
        &*plan,
        Some(1),
        &[
            context_id.into(),
            ids.to_vec().into(),
            tenant::current()?.into(),
        ],
    )?)
}

/// Appends a JSON array of {message_id?, role, content, metadata?, created_at?} in one round
/// trip, all or nothing.
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
    rules::check_unique_ids(&batch)?;
    writing(|client| {
        if batch.is_empty() {
            load_view(client, context_id, false)?; // still reject an unknown context
            return Ok(Vec::new());
        }
        let (items, identities) = split_batch(batch);
        let (processed, sealed) = process_writes(client, context_id, items)?;
        let kept: Vec<Incoming> = processed
            .into_iter()
            .zip(identities)
            .filter_map(|(item, (message_id, created_at))| {
                item.map(|item| Incoming {
                    message_id,
                    created_at,
                    item,
                })
            })
            .collect();
        if kept.is_empty() {
            return Ok(Vec::new()); // processors dropped every message
        }
        let appended = append_processed(client, context_id, sealed, kept)?;
        Ok(appended.into_iter().map(|a| a.seq).collect())
    })
}

/// Appends processed messages, in order, all or nothing: a caller's id that a live message of
/// the view has is SQLSTATE 23505 naming it.
pub(crate) fn append_processed(
    client: &mut SpiClient<'_>,
    context_id: Uuid,
    sealed: Option<Encoding>,
    kept: Vec<Incoming>,
) -> CtxResult<Vec<Appended>> {
    if let Some(encoding) = sealed {
        return append_sealed(client, context_id, encoding, kept);
    }
    if cluster::citus() {
        return append_reserved(client, context_id, kept);
    }
    static APPEND_MANY: Statement = Statement {
        sql: "WITH c AS (
                  UPDATE ctx.contexts SET last_seq = last_seq + $5, updated_at = now()
                   WHERE tenant = $8 AND id = $1 RETURNING last_seq - $5 AS base, encoding, tenant)
              INSERT INTO ctx.messages (context_id, tenant, seq, message_id, role, content, metadata, tokens, created_at)
              SELECT $1, c.tenant, c.base + m.ord, coalesce(m.message_id, gen_random_uuid()::text),
                     m.role, m.content, m.metadata, ctx.count_tokens(m.content, c.encoding),
                     coalesce(m.created_at::timestamptz, now())
                FROM c, unnest($2::text[], $3::text[], $4::jsonb[], $6::text[], $7::text[])
                        WITH ORDINALITY AS m(role, content, metadata, message_id, created_at, ord)
              ON CONFLICT (tenant, context_id, message_id) DO NOTHING
              RETURNING seq, message_id",
        args: &[
            UUIDOID,
            TEXTARRAYOID,
            TEXTARRAYOID,
            JSONBARRAYOID,
            INT8OID,
            TEXTARRAYOID,
            TEXTARRAYOID,
            TEXTOID,
        ],
        writes: true,
    };
    let count = kept.len() as i64;
    let Columns {
        roles,
        contents,
        metadatas,
        ids,
        created,
    } = Columns::of(&kept);
    let plan = APPEND_MANY.plan(client)?;
    let tenant = tenant::current()?;
    let bump = counter_bump::announce(context_id, count);
    let table = client.update(
        &*plan,
        None,
        &[
            context_id.into(),
            roles.into(),
            contents.into(),
            metadatas.into(),
            count.into(),
            ids.clone().into(),
            created.into(),
            tenant.into(),
        ],
    )?;
    drop(bump);
    appended_rows(client, context_id, &ids, table)
}

/// Plain messages to append as the columns an insert unnests.
struct Columns {
    roles: Vec<String>,
    contents: Vec<String>,
    metadatas: Vec<JsonB>,
    ids: Vec<Option<String>>,
    created: Vec<Option<String>>,
}

impl Columns {
    fn of(kept: &[Incoming]) -> Columns {
        let mut columns = Columns {
            roles: Vec::with_capacity(kept.len()),
            contents: Vec::with_capacity(kept.len()),
            metadatas: Vec::with_capacity(kept.len()),
            ids: Vec::with_capacity(kept.len()),
            created: Vec::with_capacity(kept.len()),
        };
        for message in kept {
            columns
                .metadatas
                .push(JsonB(message.item.stamped_metadata()));
            columns
                .roles
                .push(message.item.role.clone().unwrap_or_default());
            columns
                .contents
                .push(message.item.content.clone().unwrap_or_default());
            columns.ids.push(message.message_id.clone());
            columns.created.push(message.created_at.clone());
        }
        columns
    }
}

/// Reserves `count` seqs of the context (its row locked until the transaction ends): the seq
/// before the first, and the context's encoding.
fn reserve(
    client: &mut SpiClient<'_>,
    context_id: Uuid,
    count: usize,
    tenant: &str,
) -> CtxResult<(i64, String)> {
    static RESERVE: Statement = Statement {
        sql: "UPDATE ctx.contexts SET last_seq = last_seq + $2, updated_at = now()
               WHERE tenant = $3 AND id = $1 RETURNING last_seq - $2, encoding",
        args: &[UUIDOID, INT8OID, TEXTOID],
        writes: true,
    };
    let plan = RESERVE.plan(client)?;
    let _bump = counter_bump::announce(context_id, count as i64);
    let reserved = client
        .update(
            &*plan,
            Some(1),
            &[context_id.into(), (count as i64).into(), tenant.into()],
        )?
        .next()
        .map(|row| -> CtxResult<(i64, String)> {
            Ok((
                required(row.get(1)?, "seq")?,
                required(row.get(2)?, "encoding")?,
            ))
        })
        .transpose()?;
    reserved.ok_or_else(|| missing_context(client, context_id))
}

/// Appends plain messages in two statements, seqs reserved first: on a Citus cluster, where
/// the one-statement form (the counter's UPDATE in a CTE feeding the INSERT) is refused, or
/// crashes its INSERT … SELECT planner (Citus 14.0).
fn append_reserved(
    client: &mut SpiClient<'_>,
    context_id: Uuid,
    kept: Vec<Incoming>,
) -> CtxResult<Vec<Appended>> {
    static INSERT_RESERVED: Statement = Statement {
        sql: "INSERT INTO ctx.messages (context_id, tenant, seq, message_id, role, content, metadata, tokens, created_at)
              SELECT $1, $2, $3 + m.ord, coalesce(m.message_id, gen_random_uuid()::text), m.role, m.content,
                     m.metadata, ctx.count_tokens(m.content, $4), coalesce(m.created_at::timestamptz, now())
                FROM unnest($5::text[], $6::text[], $7::jsonb[], $8::text[], $9::text[])
                     WITH ORDINALITY AS m(role, content, metadata, message_id, created_at, ord)
              ON CONFLICT (tenant, context_id, message_id) DO NOTHING
              RETURNING seq, message_id",
        args: &[
            UUIDOID,
            TEXTOID,
            INT8OID,
            TEXTOID,
            TEXTARRAYOID,
            TEXTARRAYOID,
            JSONBARRAYOID,
            TEXTARRAYOID,
            TEXTARRAYOID,
        ],
        writes: true,
    };
    let tenant = tenant::current()?;
    let (base, encoding) = reserve(client, context_id, kept.len(), &tenant)?;
    let Columns {
        roles,
        contents,
        metadatas,
        ids,
        created,
    } = Columns::of(&kept);
    let plan = INSERT_RESERVED.plan(client)?;
    let table = client.update(
        &*plan,
        None,
        &[
            context_id.into(),
            tenant.into(),
            base.into(),
            encoding.into(),
            roles.into(),
            contents.into(),
            metadatas.into(),
            ids.clone().into(),
            created.into(),
        ],
    )?;
    appended_rows(client, context_id, &ids, table)
}

/// The (seq, message_id) rows an append's insert returned, in seq order, checked.
fn appended_rows(
    client: &SpiClient<'_>,
    context_id: Uuid,
    ids: &[Option<String>],
    table: pgrx::spi::SpiTupleTable<'_>,
) -> CtxResult<Vec<Appended>> {
    let mut appended = table
        .map(|row| {
            Ok(Appended {
                seq: required(row.get::<i64>(1)?, "seq")?,
                message_id: required(row.get(2)?, "message_id")?,
            })
        })
        .collect::<CtxResult<Vec<_>>>()?;
    appended.sort_unstable_by_key(|a| a.seq);
    check_appended(client, context_id, ids, &appended)?;
    Ok(appended)
}

/// After an insert that skips taken ids: an unknown context, or the first id that was taken
/// (by a live message of the context, or one it inherits).
fn check_appended(
    client: &SpiClient<'_>,
    context_id: Uuid,
    ids: &[Option<String>],
    appended: &[Appended],
) -> CtxResult<()> {
    if appended.is_empty() {
        load_view(client, context_id, false)?;
    }
    if appended.len() < ids.len() {
        let stored: std::collections::HashSet<&str> =
            appended.iter().map(|a| a.message_id.as_str()).collect();
        let (i, id) = ids
            .iter()
            .enumerate()
            .find_map(|(i, id)| {
                id.as_deref()
                    .filter(|id| !stored.contains(id))
                    .map(|id| (i, id))
            })
            .ok_or_else(|| CtxError::internal("an append lost a message without an id"))?;
        let err = taken(id);
        return Err(if ids.len() > 1 {
            CtxError {
                message: format!("messages[{i}]: {}", err.message),
                ..err
            }
        } else {
            err
        });
    }
    let given: Vec<String> = ids.iter().flatten().cloned().collect();
    if !given.is_empty() {
        if let Some(id) = inherited_live(client, context_id, &given)? {
            let err = taken(&id);
            return Err(match ids.iter().position(|i| i.as_deref() == Some(&id)) {
                Some(i) if ids.len() > 1 => CtxError {
                    message: format!("messages[{i}]: {}", err.message),
                    ..err
                },
                _ => err,
            });
        }
    }
    Ok(())
}

/// Runs the context's write processors over new messages (`None`: dropped by a processor),
/// then checks the metadata of those kept against the context's `metadata_schema`, if any
/// (SQLSTATE 23514). Errors name `messages[i]` when there are several.
pub(crate) fn process_writes(
    client: &SpiClient<'_>,
    context_id: Uuid,
    messages: Vec<WriteItem>,
) -> CtxResult<(Vec<Option<WriteItem>>, Option<Encoding>)> {
    static CONTEXT: Statement = Statement {
        sql: "SELECT metadata_schema, processors, metadata, encoding, encrypted, tenant
                FROM ctx.contexts WHERE tenant = $2 AND id = $1",
        args: &[UUIDOID, TEXTOID],
        writes: false,
    };
    let tenant = tenant::current()?;
    let settings = match direct_reads::write_settings(&tenant, context_id) {
        Some(found) => found,
        None => {
            let plan = CONTEXT.plan(client)?;
            let mut table = client.select(&*plan, Some(1), &[context_id.into(), tenant.into()])?;
            table
                .next()
                .map(|row| -> CtxResult<WriteSettings> {
                    Ok(WriteSettings {
                        metadata_schema: row.get(1)?,
                        processors: row.get(2)?,
                        metadata: row.get(3)?,
                        encoding: row.get(4)?,
                        encrypted: row.get(5)?,
                        tenant: row.get(6)?,
                    })
                })
                .transpose()?
        }
    };
    let Some(settings) = settings else {
        return Err(missing_context(client, context_id));
    };
    let schema = settings.metadata_schema;
    let encrypted = settings.encrypted.unwrap_or(false);
    let stored: Value = settings.processors.map_or(Value::Null, |j| j.0);
    let context_metadata: Value = settings.metadata.map_or(Value::Null, |j| j.0);
    let encoding = Encoding::parse(&required(settings.encoding, "encoding")?)?;
    let tenant: String = required(settings.tenant, "tenant")?;
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
    messages: Vec<Incoming>,
) -> CtxResult<Vec<Appended>> {
    static INSERT_SEALED: Statement = Statement {
        sql: "INSERT INTO ctx.messages (context_id, seq, message_id, role, content_enc, metadata_enc, tokens, created_at)
              SELECT $1, $2 + m.ord, coalesce(m.message_id, gen_random_uuid()::text), m.role, m.content,
                     m.metadata, m.tokens, coalesce(m.created_at::timestamptz, now())
                FROM unnest($3::text[], $4::bytea[], $5::bytea[], $6::int[], $7::text[], $8::text[])
                     WITH ORDINALITY AS m(role, content, metadata, tokens, message_id, created_at, ord)
              ON CONFLICT (tenant, context_id, message_id) DO NOTHING
              RETURNING seq, message_id",
        args: &[
            UUIDOID,
            INT8OID,
            TEXTARRAYOID,
            BYTEAARRAYOID,
            BYTEAARRAYOID,
            INT4ARRAYOID,
            TEXTARRAYOID,
            TEXTARRAYOID,
        ],
        writes: true,
    };
    let (base, _) = reserve(client, context_id, messages.len(), &tenant::current()?)?;
    let key = keys::data_key(client, &keys::Scope::Context(context_id))?;
    let (mut roles, mut contents, mut metadatas, mut tokens) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let (mut ids, mut created) = (Vec::new(), Vec::new());
    for (i, message) in messages.into_iter().enumerate() {
        let content = message.item.content.clone().unwrap_or_default();
        let role = message.item.role.clone().unwrap_or_default();
        let at = SealedAt {
            context_id,
            seq: base + i as i64 + 1,
            role: &role,
            revision: 1,
        };
        let (content_enc, metadata_enc) =
            seal_message(&key, &at, &content, &message.item.stamped_metadata())?;
        tokens.push(encoding.count(&content) as i32);
        contents.push(content_enc);
        metadatas.push(metadata_enc);
        roles.push(role);
        ids.push(message.message_id);
        created.push(message.created_at);
    }
    let plan = INSERT_SEALED.plan(client)?;
    let table = client.update(
        &*plan,
        None,
        &[
            context_id.into(),
            base.into(),
            roles.into(),
            contents.into(),
            metadatas.into(),
            tokens.into(),
            ids.clone().into(),
            created.into(),
        ],
    )?;
    appended_rows(client, context_id, &ids, table)
}
