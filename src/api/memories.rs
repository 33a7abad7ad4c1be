//! SQL functions of long-term memory: remember, update (supersede), forget, hybrid recall,
//! namespaces and vector indexes. The ranking rules are in `core::{knn, scoring, filter}`.

use crate::api::args::{jsonb, JsonArg};
use crate::core::metrics::{Call, Counter};
use crate::services::metrics;

use pgrx::datum::{DatumWithOid, Interval, TimestampWithTimeZone};
use pgrx::pg_sys::BuiltinOid::*;
use pgrx::prelude::*;
use pgrx::spi::SpiClient;
use pgrx::{JsonB, Uuid};
use serde_json::{json, Value};

use crate::api::args::{check_ttl, namespace_arg, EmbeddingList, EmbeddingRef};
use crate::api::raise::OrRaise;
use crate::core::crypto::Key;
use crate::core::knn::{self, Metric, TopK};
use crate::core::namespace;
use crate::core::processors::Kind;
use crate::core::scoring::Weights;
use crate::error::{required, CtxError, CtxResult, ErrorKind};
use crate::plans::{first_value, Statement};
use crate::services::embedding_datum::Embedding;
use crate::services::keys;
use crate::services::memory_sealing::*;
use crate::services::pipeline::{Pipeline, WriteItem};
use crate::services::recall::*;
use crate::services::transaction::writing;

fn unknown_memory(id: Uuid) -> CtxError {
    CtxError::new(
        ErrorKind::UndefinedObject,
        format!("memory \"{id}\" does not exist"),
    )
    .with_hint("it may have been forgotten or may have expired; recall returns current ids")
}

fn check_importance(importance: f32) -> CtxResult<()> {
    if !(0.0..=1.0).contains(&importance) {
        return Err(CtxError::invalid(format!(
            "importance must be between 0 and 1, got {importance}"
        ))
        .with_hint("pass a real in [0, 1]; 0.5 is neutral"));
    }
    Ok(())
}

fn checked_embedding(
    embedding: Option<Vec<Option<f32>>>,
    what: &str,
) -> CtxResult<Option<Vec<f32>>> {
    let Some(values) = embedding else {
        return Ok(None);
    };
    let values = values
        .into_iter()
        .enumerate()
        .map(|(i, v)| {
            v.ok_or_else(|| {
                CtxError::new(
                    ErrorKind::NullValue,
                    format!("{what} has a NULL at position {}", i + 1),
                )
                .with_hint("embeddings must not contain NULL elements")
            })
        })
        .collect::<CtxResult<Vec<f32>>>()?;
    knn::validate(&values, what)?;
    Ok(Some(values))
}

static INSERT_MEMORY: Statement = Statement {
    sql:
        "INSERT INTO ctx.memories (id, namespace, ns_key, content, embedding, metadata, importance,
                                    source_context, source_seq, expires_at, schema_name, schema_version,
                                    content_enc, metadata_enc)
          VALUES (coalesce($12, gen_random_uuid()), $1, $2, $3, $4, $5, $6, $7, $8, now() + $9, $10, $11, $13, $14)
          RETURNING id",
    args: &[
        TEXTARRAYOID,
        TEXTOID,
        TEXTOID,
        FLOAT4ARRAYOID,
        JSONBOID,
        FLOAT4OID,
        UUIDOID,
        INT8OID,
        INTERVALOID,
        TEXTOID,
        INT4OID,
        UUIDOID,
        BYTEAOID,
        BYTEAOID,
    ],
    writes: true,
};

// A new version of the current row of $1 with the given fields replaced (NULL: keep);
// the old version's validity ends now.
static SUPERSEDE: Statement = Statement {
    sql: "WITH old AS (
              UPDATE ctx.memories SET valid_to = now()
               WHERE tenant = $12 AND id = $1 AND valid_to IS NULL
           RETURNING *)
          INSERT INTO ctx.memories (id, version, namespace, ns_key, content, embedding, metadata, importance,
                                    source_context, source_seq, created_at, last_accessed_at, access_count,
                                                                        expires_at, valid_from, schema_name, schema_version, content_enc, metadata_enc)
          SELECT id, version + 1, namespace, ns_key,
                 CASE WHEN $10::bytea IS NOT NULL THEN NULL ELSE coalesce($2, content) END,
                 coalesce($3::ctx.embedding, embedding),
                 CASE WHEN $11::bytea IS NOT NULL THEN '{}'
                      WHEN $6 THEN metadata || coalesce($4, '{}') ELSE coalesce($4, metadata) END,
                 CASE WHEN $6 THEN greatest(importance, coalesce($5, importance)) ELSE coalesce($5, importance) END,
                 source_context, source_seq, created_at, last_accessed_at, access_count,
                                  coalesce(now() + $7, expires_at), now(), coalesce($9, schema_name), coalesce($8, schema_version),
                 CASE WHEN $2 IS NOT NULL THEN NULL ELSE coalesce($10, content_enc) END,
                 coalesce($11, metadata_enc)
            FROM old
          RETURNING id",
    args: &[UUIDOID, TEXTOID, FLOAT4ARRAYOID, JSONBOID, FLOAT4OID, BOOLOID, INTERVALOID, INT4OID, TEXTOID, BYTEAOID, BYTEAOID, TEXTOID],
    writes: true,
};

/// Stores a memory; with `dedup_threshold`, a near-duplicate in the same namespace is updated
/// instead (its id is returned).
#[allow(clippy::too_many_arguments)]
#[pg_extern(volatile, parallel_unsafe)]
fn remember(
    namespace: Option<Vec<Option<String>>>,
    content: Option<&str>,
    embedding: default!(Option<Vec<Option<f32>>>, "NULL"),
    metadata: default!(Option<JsonArg>, "'{}'"),
    importance: default!(Option<f32>, 0.5),
    ttl: default!(Option<Interval>, "NULL"),
    dedup_threshold: default!(Option<f32>, "NULL"),
    source_context: default!(Option<Uuid>, "NULL"),
    source_seq: default!(Option<i64>, "NULL"),
    schema: default!(Option<&str>, "NULL"),
) -> Option<Uuid> {
    let args = (|| -> CtxResult<_> {
        let labels = namespace_arg(namespace, "namespace", false)?;
        let content = required(content, "content")?;
        crate::core::conversation::check_content(content, crate::gucs::max_message_bytes())?;
        let embedding = checked_embedding(embedding, "embedding")?;
        let metadata = crate::api::args::object_or_empty(metadata, "metadata")?;
        let importance = required(importance, "importance")?;
        check_importance(importance)?;
        check_ttl(&ttl)?;
        if let Some(t) = dedup_threshold {
            if !(t > 0.0 && t <= 1.0) {
                return Err(CtxError::invalid(format!(
                    "dedup_threshold must be in (0, 1], got {t}"
                ))
                .with_hint("a cosine similarity such as 0.95; NULL disables deduplication"));
            }
        }
        Ok((labels, content, embedding, metadata, importance, ttl))
    })();
    let (labels, content, embedding, metadata, importance, ttl) = args.or_raise();
    writing(|client| -> CtxResult<Option<Uuid>> {
        let key = namespace::key(&labels);
        if let Some(e) = &embedding {
            check_namespace_dims(client, &key, e.len(), None)?;
        }
        let pipeline = Pipeline::for_namespace(client, Kind::Memory, &labels, Some(&metadata))?;
        let Some(item) = pipeline.write(WriteItem::memory(Some(content.to_string()), metadata))?
        else {
            return Ok(None); // a processor dropped it
        };
        let content = item.content.as_deref().unwrap_or_default();
        crate::core::conversation::check_content(content, crate::gucs::max_message_bytes())?;
        // Typed metadata: validated against the schema's latest version and stamped with it.
        // The redaction counts (`redacted`, reserved) are added after validation.
        let stamp = schema
            .map(|name| crate::services::schemas::check_latest(client, name, &item.metadata))
            .transpose()?;
        let metadata = item.stamped_metadata();
        let sealing = keys::namespace_scope(client, &labels)?
            .map(|scope| keys::data_key(client, &scope))
            .transpose()?;
        if let Some(threshold) = dedup_threshold {
            // (identical-text matching needs plaintext: in an encrypted namespace only
            // embeddings are compared, and the text is never sent to a query)
            let existing = if sealing.is_some() && embedding.is_none() {
                None
            } else {
                find_duplicate(client, &key, content, embedding.as_deref(), threshold)?
            };
            if let Some(existing) = existing {
                let (plain, sealed) = match &sealing {
                    // encrypted: the merge of old and new metadata happens here
                    Some(data_key) => {
                        let mut merged = current_metadata(client, existing, data_key)?;
                        if let (Some(m), Some(new)) = (merged.as_object_mut(), metadata.as_object())
                        {
                            m.extend(new.clone());
                        }
                        (
                            None,
                            Some(seal_memory(data_key, existing, content, &merged)?),
                        )
                    }
                    None => (Some(content), None),
                };
                let plan = SUPERSEDE.plan(client)?;
                let args: [DatumWithOid; 12] = [
                    existing.into(),
                    plain.into(),
                    embedding.clone().into(),
                    sealed.is_none().then(|| JsonB(metadata.clone())).into(),
                    importance.into(),
                    true.into(),
                    ttl.into(),
                    stamp.into(),
                    schema.into(),
                    sealed.as_ref().map(|s| s.0.clone()).into(),
                    sealed.map(|s| s.1).into(),
                    crate::services::tenant::current()?.into(),
                ];
                client.update(&*plan, Some(1), &args)?;
                metrics::count(Counter::MemoriesDeduplicated, 1);
                return Ok(Some(existing));
            }
        }
        let id = insert_memory(
            client,
            &labels,
            &key,
            NewMemory {
                content,
                embedding,
                metadata,
                importance,
                source_context,
                source_seq,
            },
            ttl,
            schema.zip(stamp),
            sealing.as_ref(),
        )?;
        metrics::count(Counter::MemoriesWritten, 1);
        Ok(Some(id))
    })
    .or_raise()
}

/// One new memory, as the write processors left it.
struct NewMemory<'a> {
    content: &'a str,
    embedding: Option<Vec<f32>>,
    metadata: Value,
    importance: f32,
    source_context: Option<Uuid>,
    source_seq: Option<i64>,
}

/// Inserts a new memory (sealed under `sealing` in an encrypted namespace); returns its id.
fn insert_memory(
    client: &mut SpiClient<'_>,
    labels: &[String],
    key: &str,
    memory: NewMemory<'_>,
    ttl: Option<Interval>,
    schema: Option<(&str, i32)>,
    sealing: Option<&Key>,
) -> CtxResult<Uuid> {
    let (id, plain, sealed) = match sealing {
        Some(data_key) => {
            let id = Uuid::from_bytes(keys::random_id()?);
            (
                Some(id),
                None,
                Some(seal_memory(data_key, id, memory.content, &memory.metadata)?),
            )
        }
        None => (None, Some(memory.content), None),
    };
    let plan = INSERT_MEMORY.plan(client)?;
    let args: [DatumWithOid; 14] = [
        labels.to_vec().into(),
        key.into(),
        plain.into(),
        memory.embedding.into(),
        JsonB(if sealed.is_some() {
            json!({})
        } else {
            memory.metadata
        })
        .into(),
        memory.importance.into(),
        memory.source_context.into(),
        memory.source_seq.into(),
        ttl.into(),
        schema.map(|(name, _)| name).into(),
        schema.map(|(_, version)| version).into(),
        id.into(),
        sealed.as_ref().map(|s| s.0.clone()).into(),
        sealed.map(|s| s.1).into(),
    ];
    let mut table = client.update(&*plan, Some(1), &args)?;
    let id = required(
        table
            .next()
            .ok_or_else(|| CtxError::internal("INSERT returned no row"))?
            .get(1)?,
        "id",
    )?;
    Ok(id)
}

/// One element of `ctx.remember_many`'s `memories`, checked.
struct ManyItem {
    content: String,
    embedding: Option<Vec<f32>>,
    metadata: Value,
    importance: f32,
    source_context: Option<Uuid>,
    source_seq: Option<i64>,
}

const EMBEDDINGS_HINT: &str = "embeddings[n] is the embedding of memories[n - 1] (SQL arrays count from 1): one element per memory, NULL for a memory without one or whose JSON has its embedding";

const MANY_ITEM_HINT: &str = "each element looks like {\"content\": \"...\", \"embedding\": [0.1, 0.2], \"metadata\": {}, \"importance\": 0.5, \"source_context\": null, \"source_seq\": null}; only content is required";

fn many_item(value: &Value) -> CtxResult<ManyItem> {
    let bad = |message: String| CtxError::invalid(message).with_hint(MANY_ITEM_HINT);
    let object = value.as_object().ok_or_else(|| {
        bad(format!(
            "expected an object, not {}",
            crate::core::conversation::json_type(value)
        ))
    })?;
    if let Some(unknown) = object.keys().find(|k| {
        !matches!(
            k.as_str(),
            "content" | "embedding" | "metadata" | "importance" | "source_context" | "source_seq"
        )
    }) {
        return Err(bad(format!("unknown key \"{unknown}\"")));
    }
    let present = |name: &str| object.get(name).filter(|v| !v.is_null());
    let content = match present("content") {
        Some(Value::String(s)) => s.clone(),
        Some(other) => {
            return Err(bad(format!(
                "content must be a string, not {}",
                crate::core::conversation::json_type(other)
            )))
        }
        None => {
            return Err(
                CtxError::new(ErrorKind::NullValue, "content is missing").with_hint(MANY_ITEM_HINT)
            )
        }
    };
    let embedding = match present("embedding") {
        None => None,
        Some(Value::Array(values)) => {
            let floats = values
                .iter()
                .enumerate()
                .map(|(i, v)| {
                    v.as_f64().map(|f| f as f32).ok_or_else(|| {
                        bad(format!(
                            "embedding[{i}] must be a number, not {}",
                            crate::core::conversation::json_type(v)
                        ))
                    })
                })
                .collect::<CtxResult<Vec<f32>>>()?;
            knn::validate(&floats, "embedding")?;
            Some(floats)
        }
        Some(other) => {
            return Err(bad(format!(
                "embedding must be an array of numbers, not {}",
                crate::core::conversation::json_type(other)
            )))
        }
    };
    let metadata = present("metadata").cloned().unwrap_or_else(|| json!({}));
    crate::core::conversation::check_metadata(&metadata, "metadata")?;
    let importance = match object.get("importance") {
        None => 0.5,
        Some(Value::Null) => {
            return Err(CtxError::null_argument("importance")
                .with_hint("leave importance out for the default 0.5, or pass a number in [0, 1]"))
        }
        Some(v) => v
            .as_f64()
            .map(|f| f as f32)
            .ok_or_else(|| bad(format!("importance must be a number, not {v}")))?,
    };
    check_importance(importance)?;
    let source_context = match present("source_context") {
        None => None,
        Some(v) => Some(
            v.as_str()
                .and_then(crate::api::args::parse_uuid)
                .ok_or_else(|| bad(format!("source_context must be a uuid, not {v}")))?,
        ),
    };
    let source_seq = match present("source_seq") {
        None => None,
        Some(v) => Some(
            v.as_i64()
                .ok_or_else(|| bad(format!("source_seq must be an integer, not {v}")))?,
        ),
    };
    Ok(ManyItem {
        content,
        embedding,
        metadata,
        importance,
        source_context,
        source_seq,
    })
}

/// Stores many memories of one namespace in one call: the namespace's key and embedding
/// dimension are looked up once, every element's shape is checked before anything is written,
/// and each memory then goes through the processors and is one prepared INSERT. Returns each
/// element's position (from 1) and its id (NULL when a processor dropped it). Embeddings come
/// in the JSON or, sent binary, in `embeddings` (one per element). No deduplication:
/// `ctx.remember(dedup_threshold => ...)` searches for near-duplicates.
#[pg_extern(volatile, parallel_unsafe, requires = ["embedding_type"])]
fn remember_many(
    namespace: Option<Vec<Option<String>>>,
    memories: Option<JsonArg>,
    ttl: default!(Option<Interval>, "NULL"),
    schema: default!(Option<&str>, "NULL"),
    embeddings: default!(Option<EmbeddingList>, "NULL"),
) -> TableIterator<'static, (name!(position, i32), name!(id, Option<Uuid>))> {
    let args = (|| -> CtxResult<_> {
        let labels = namespace_arg(namespace, "namespace", false)?;
        let memories = required(memories, "memories")?.parse("memories")?;
        let Value::Array(elements) = memories else {
            return Err(CtxError::invalid(format!(
                "memories must be a JSON array, not {}",
                crate::core::conversation::json_type(&memories)
            ))
            .with_hint(MANY_ITEM_HINT));
        };
        // (binary embeddings, beside the JSON: a 384-d vector as JSON text is ~7 KB to format
        // and parse, sent binary 1.5 KB read in place)
        let mut embeddings = match embeddings {
            None => None,
            Some(EmbeddingList(list)) if list.len() != elements.len() => {
                return Err(CtxError::invalid(format!(
                    "embeddings has {} elements but memories has {}",
                    list.len(),
                    elements.len()
                ))
                .with_hint(EMBEDDINGS_HINT))
            }
            Some(EmbeddingList(list)) => Some(list.into_iter()),
        };
        check_ttl(&ttl)?;
        let max_bytes = crate::gucs::max_message_bytes();
        let mut dims: Option<(usize, usize)> = None;
        let items = elements
            .iter()
            .enumerate()
            .map(|(i, element)| {
                let at = |e: CtxError| e.prefixed(&format!("memories[{i}]: "));
                let mut item = many_item(element).map_err(at)?;
                if let Some(values) = embeddings.as_mut().and_then(Iterator::next).flatten() {
                    if item.embedding.is_some() {
                        return Err(CtxError::invalid(format!(
                            "memories[{i}] has an embedding and so has embeddings[{}]",
                            i + 1
                        ))
                        .with_hint(EMBEDDINGS_HINT));
                    }
                    knn::validate(&values, &format!("embeddings[{}]", i + 1))?;
                    item.embedding = Some(values);
                }
                crate::core::conversation::check_content(&item.content, max_bytes).map_err(at)?;
                if let Some(e) = &item.embedding {
                    match dims {
                        None => dims = Some((i, e.len())),
                        Some((first, d)) if d != e.len() => {
                            return Err(CtxError::invalid(format!(
                                "memories[{i}]: embedding has {} dimensions but memories[{first}]'s has {d}",
                                e.len()
                            ))
                            .with_hint("the memories of a namespace share one embedding model"))
                        }
                        Some(_) => {}
                    }
                }
                Ok(item)
            })
            .collect::<CtxResult<Vec<ManyItem>>>()?;
        Ok((labels, items, dims.map(|(_, d)| d), max_bytes))
    })();
    let (labels, items, dims, max_bytes) = args.or_raise();
    let ids = writing(|client| -> CtxResult<Vec<(i32, Option<Uuid>)>> {
        let key = namespace::key(&labels);
        if let Some(d) = dims {
            check_namespace_dims(client, &key, d, None)?;
        }
        let sealing = keys::namespace_scope(client, &labels)?
            .map(|scope| keys::data_key(client, &scope))
            .transpose()?;
        let mut ids = Vec::with_capacity(items.len());
        for (i, item) in items.into_iter().enumerate() {
            let position = i as i32 + 1;
            let at = |e: CtxError| e.prefixed(&format!("memories[{i}]: "));
            // (user processors may be scoped by a memory's metadata: one pipeline per memory)
            let pipeline =
                Pipeline::for_namespace(client, Kind::Memory, &labels, Some(&item.metadata))
                    .map_err(at)?;
            let Some(written) = pipeline
                .write(WriteItem::memory(Some(item.content), item.metadata))
                .map_err(at)?
            else {
                ids.push((position, None)); // a processor dropped it
                continue;
            };
            let content = written.content.as_deref().unwrap_or_default();
            crate::core::conversation::check_content(content, max_bytes).map_err(at)?;
            let stamp = schema
                .map(|name| crate::services::schemas::check_latest(client, name, &written.metadata))
                .transpose()
                .map_err(at)?;
            let id = insert_memory(
                client,
                &labels,
                &key,
                NewMemory {
                    content,
                    embedding: item.embedding,
                    metadata: written.stamped_metadata(),
                    importance: item.importance,
                    source_context: item.source_context,
                    source_seq: item.source_seq,
                },
                ttl,
                schema.zip(stamp),
                sealing.as_ref(),
            )?;
            ids.push((position, Some(id)));
        }
        let written = ids.iter().filter(|(_, id)| id.is_some()).count();
        metrics::count(Counter::MemoriesWritten, written as u64);
        Ok(ids)
    })
    .or_raise();
    TableIterator::new(ids)
}

/// Embeddings in one namespace share a dimension, so recall can compare them all. `except`
/// leaves out the memory being updated.
fn check_namespace_dims(
    client: &SpiClient<'_>,
    key: &str,
    dims: usize,
    except: Option<Uuid>,
) -> CtxResult<()> {
    static DIMS: Statement = Statement {
        sql: "SELECT ctx.embedding_dims(embedding) FROM ctx.memories
               WHERE tenant = $3 AND ns_key = $1 AND valid_to IS NULL
                 AND embedding IS NOT NULL AND id IS DISTINCT FROM $2 LIMIT 1",
        args: &[TEXTOID, UUIDOID, TEXTOID],
        writes: false,
    };
    let plan = DIMS.plan(client)?;
    let existing: Option<i32> = first_value(client.select(
        &*plan,
        Some(1),
        &[
            key.into(),
            except.into(),
            crate::services::tenant::current()?.into(),
        ],
    )?)?;
    match existing {
        Some(d) if d as usize != dims => Err(CtxError::invalid(format!(
            "embedding has {dims} dimensions but this namespace holds {d}-dimensional embeddings"
        ))
        .with_hint("use the same embedding model for a namespace, or store these memories in another namespace")),
        _ => Ok(()),
    }
}

/// The current memory of the namespace most similar to `embedding` (≥ threshold), or with
/// exactly this content when no embedding is given.
fn find_duplicate(
    client: &SpiClient<'_>,
    key: &str,
    content: &str,
    embedding: Option<&[f32]>,
    threshold: f32,
) -> CtxResult<Option<Uuid>> {
    static SAME_CONTENT: Statement = Statement {
        sql: "SELECT id FROM ctx.memories m
               WHERE m.tenant = $3 AND ns_key = $1 AND valid_to IS NULL AND content = $2
                 AND (expires_at IS NULL OR expires_at > now())
               ORDER BY created_at LIMIT 1",
        args: &[TEXTOID, TEXTOID, TEXTOID],
        writes: false,
    };
    static EMBEDDINGS: Statement = Statement {
        sql: "SELECT id, embedding FROM ctx.memories m
               WHERE m.tenant = $2 AND ns_key = $1 AND valid_to IS NULL
                 AND embedding IS NOT NULL
                 AND (expires_at IS NULL OR expires_at > now())
               ORDER BY created_at",
        args: &[TEXTOID, TEXTOID],
        writes: false,
    };
    let Some(query) = embedding else {
        let plan = SAME_CONTENT.plan(client)?;
        return first_value(client.select(
            &*plan,
            Some(1),
            &[
                key.into(),
                content.into(),
                crate::services::tenant::current()?.into(),
            ],
        )?);
    };
    let mut best = TopK::new(query, Metric::Cosine, 1);
    let plan = EMBEDDINGS.plan(client)?;
    for row in client.select(
        &*plan,
        None,
        &[key.into(), crate::services::tenant::current()?.into()],
    )? {
        let id: Uuid = required(row.get(1)?, "id")?;
        if let Some(stored) = row.get::<Embedding>(2)? {
            best.push(&stored.0, id);
        }
    }
    Ok(best
        .into_sorted()
        .into_iter()
        .find(|(_, sim)| *sim >= threshold)
        .map(|(id, _)| id))
}

/// Supersedes a memory: the new version is current, the old one stays readable as of the
/// time it was valid. NULL arguments keep the old value. Returns the memory's id.
#[pg_extern(volatile, parallel_unsafe)]
fn update_memory(
    id: Option<Uuid>,
    content: default!(Option<&str>, "NULL"),
    embedding: default!(Option<Vec<Option<f32>>>, "NULL"),
    metadata: default!(Option<JsonArg>, "NULL"),
    importance: default!(Option<f32>, "NULL"),
) -> Option<Uuid> {
    (|| -> CtxResult<Option<Uuid>> {
        let id = required(id, "id")?;
        let metadata = jsonb(metadata, "metadata")?;
        if let Some(content) = content {
            crate::core::conversation::check_content(content, crate::gucs::max_message_bytes())?;
        }
        let embedding = checked_embedding(embedding, "embedding")?;
        if let Some(m) = &metadata {
            crate::core::conversation::check_metadata(&m.0, "metadata")?;
        }
        if let Some(i) = importance {
            check_importance(i)?;
        }
        writing(|client| {
            static CURRENT: Statement = Statement {
                sql: "SELECT ns_key, namespace, metadata, metadata_enc FROM ctx.memories
                       WHERE tenant = $2 AND id = $1 AND valid_to IS NULL",
                args: &[UUIDOID, TEXTOID],
                writes: false,
            };
            let plan = CURRENT.plan(client)?;
            let mut table = client.select(
                &*plan,
                Some(1),
                &[id.into(), crate::services::tenant::current()?.into()],
            )?;
            let row = table.next().ok_or_else(|| unknown_memory(id))?;
            let key: String = required(row.get(1)?, "ns_key")?;
            let labels: Vec<String> = required(row.get(2)?, "namespace")?;
            let sealed_metadata: Option<Vec<u8>> = row.get(4)?;
            let mut stored_metadata: Value = row.get::<JsonB>(3)?.map_or(Value::Null, |j| j.0);
            let sealing = keys::namespace_scope(client, &labels)?
                .map(|scope| keys::data_key(client, &scope))
                .transpose()?;
            if let (Some(data_key), Some(sealed)) = (&sealing, &sealed_metadata) {
                stored_metadata = open_memory_metadata(data_key, id, sealed)?;
            }
            if let Some(e) = &embedding {
                check_namespace_dims(client, &key, e.len(), Some(id))?;
            }
            // New content or metadata goes through the namespace's write processors.
            let (content, checked, metadata) = if content.is_some() || metadata.is_some() {
                let given = metadata.is_some();
                let stored = stored_metadata.clone();
                let metadata = metadata.map_or(stored_metadata, |m| m.0);
                let pipeline =
                    Pipeline::for_namespace(client, Kind::Memory, &labels, Some(&metadata))?;
                let item = WriteItem::memory(content.map(str::to_string), metadata);
                let Some(item) = pipeline.write(item)? else {
                    return Ok(None); // a processor dropped the update
                };
                // stored when given, or when a processor changed it
                let changed = given || item.redacted.is_some() || item.metadata != stored;
                let checked = changed.then(|| item.metadata.clone());
                let metadata = changed.then(|| JsonB(item.stamped_metadata()));
                if let Some(content) = &item.content {
                    crate::core::conversation::check_content(
                        content,
                        crate::gucs::max_message_bytes(),
                    )?;
                }
                (item.content, checked, metadata)
            } else {
                (None, None, None)
            };
            // New metadata of a typed memory must match its schema's latest version.
            let stamp = match &checked {
                Some(m) => typed_metadata_stamp(client, id, m)?,
                None => None,
            };
            // encrypted namespace: what changes is sealed, the rest is kept as it is
            let (content, metadata, sealed_content, sealed_metadata) = match &sealing {
                Some(data_key) => (
                    None,
                    None,
                    content
                        .map(|c| {
                            keys::seal(data_key, c.as_bytes(), &memory_aad(id, "memories.content"))
                        })
                        .transpose()?,
                    metadata
                        .map(|m| seal_json(data_key, &m.0, &memory_aad(id, "memories.metadata")))
                        .transpose()?,
                ),
                None => (content, metadata, None, None),
            };
            let plan = SUPERSEDE.plan(client)?;
            let args: [DatumWithOid; 12] = [
                id.into(),
                content.into(),
                embedding.into(),
                metadata.into(),
                importance.into(),
                false.into(),
                Option::<Interval>::None.into(),
                stamp.into(),
                Option::<&str>::None.into(),
                sealed_content.into(),
                sealed_metadata.into(),
                crate::services::tenant::current()?.into(),
            ];
            let table = client.update(&*plan, Some(1), &args)?;
            if table.is_empty() {
                return Err(unknown_memory(id));
            }
            Ok(Some(id))
        })
    })()
    .or_raise()
}

/// The decrypted metadata of a memory's current version (encrypted namespaces).
fn current_metadata(client: &SpiClient<'_>, id: Uuid, data_key: &Key) -> CtxResult<Value> {
    let sealed: Option<Vec<u8>> = first_value(client.select(
        "SELECT metadata_enc FROM ctx.memories
          WHERE tenant = $2 AND id = $1 AND valid_to IS NULL",
        Some(1),
        &[id.into(), crate::services::tenant::current()?.into()],
    )?)?;
    match sealed {
        Some(sealed) => open_memory_metadata(data_key, id, &sealed),
        None => Ok(json!({})),
    }
}

fn typed_metadata_stamp(
    client: &SpiClient<'_>,
    id: Uuid,
    metadata: &Value,
) -> CtxResult<Option<i32>> {
    static SCHEMA: Statement = Statement {
        sql: "SELECT schema_name FROM ctx.memories
               WHERE tenant = $2 AND id = $1 AND valid_to IS NULL",
        args: &[UUIDOID, TEXTOID],
        writes: false,
    };
    let plan = SCHEMA.plan(client)?;
    let schema: Option<String> = first_value(client.select(
        &*plan,
        Some(1),
        &[id.into(), crate::services::tenant::current()?.into()],
    )?)?;
    let Some(name) = schema else { return Ok(None) };
    crate::services::schemas::check_latest(client, &name, metadata).map(Some)
}

/// Erases a memory, every version of it. Returns false when there was nothing to forget.
#[pg_extern(volatile, parallel_unsafe, name = "forget")]
fn forget_id(id: Option<Uuid>) -> bool {
    let id = required(id, "id").or_raise();
    static DELETE: Statement = Statement {
        sql: "DELETE FROM ctx.memories WHERE tenant = $2 AND id = $1",
        args: &[UUIDOID, TEXTOID],
        writes: true,
    };
    writing(|client| -> CtxResult<bool> {
        let plan = DELETE.plan(client)?;
        Ok(!client
            .update(
                &*plan,
                None,
                &[id.into(), crate::services::tenant::current()?.into()],
            )?
            .is_empty())
    })
    .or_raise()
}

/// Erases every memory in the namespace (and below it) that matches the filter. Returns the
/// number of memories forgotten.
#[pg_extern(volatile, parallel_unsafe, name = "forget")]
fn forget_matching(
    namespace: Option<Vec<Option<String>>>,
    filter: default!(Option<JsonArg>, "'{}'"),
) -> i64 {
    (|| -> CtxResult<i64> {
        let labels = namespace_arg(namespace, "namespace", true)?;
        let filter = jsonb(filter, "filter")?;
        let scope = Scope::new(&labels, true, None, filter.map(|j| j.0).as_ref())?;
        let sql = format!(
            "WITH f AS (SELECT DISTINCT m.id FROM ctx.memories m WHERE {}),
                  d AS (DELETE FROM ctx.memories x USING f
                         WHERE x.tenant = {} AND x.id = f.id RETURNING x.id)
             SELECT count(DISTINCT id) FROM d",
            scope.predicate,
            scope.tenant_param()
        );
        writing(|client| {
            let count: Option<i64> =
                first_value(client.update(sql.as_str(), Some(1), &scope.args())?)?;
            Ok(count.unwrap_or(0))
        })
    })()
    .or_raise()
}

/// Hybrid recall: vector similarity, full-text rank, recency and importance in one score.
#[allow(clippy::too_many_arguments, clippy::type_complexity)]
#[pg_extern(volatile, parallel_unsafe)]
fn recall(
    namespace: Option<Vec<Option<String>>>,
    query_embedding: default!(Option<Vec<Option<f32>>>, "NULL"),
    query_text: default!(Option<&str>, "NULL"),
    k: default!(Option<i32>, 10),
    filter: default!(Option<JsonArg>, "'{}'"),
    weights: default!(Option<JsonArg>, "NULL"),
    as_of: default!(Option<TimestampWithTimeZone>, "NULL"),
    include_descendants: default!(Option<bool>, true),
    metric: default!(Option<&str>, "NULL"),
    include_embedding: default!(Option<bool>, false),
) -> TableIterator<
    'static,
    (
        name!(id, Uuid),
        name!(namespace, Vec<String>),
        name!(content, String),
        name!(metadata, JsonB),
        name!(importance, f32),
        name!(similarity, Option<f32>),
        name!(text_rank, Option<f32>),
        name!(score, f32),
        name!(created_at, TimestampWithTimeZone),
        name!(embedding, Option<Vec<f32>>),
    ),
> {
    let include_embedding = include_embedding.unwrap_or(false);
    let request = (|| -> CtxResult<RecallRequest> {
        let labels = namespace_arg(namespace, "namespace", true)?;
        let (filter, weights) = (jsonb(filter, "filter")?, jsonb(weights, "weights")?);
        let k = required(k, "k")?;
        crate::core::conversation::check_non_negative(k.into(), "k")?;
        let include_descendants = required(include_descendants, "include_descendants")?;
        if labels.is_empty() && !include_descendants {
            return Err(
                CtxError::invalid("the root namespace '{}' holds no memories itself")
                    .with_hint("pass include_descendants => true to search everything"),
            );
        }
        Ok(RecallRequest {
            scope: Scope::new(
                &labels,
                include_descendants,
                as_of,
                filter.map(|j| j.0).as_ref(),
            )?,
            query: checked_embedding(query_embedding, "query_embedding")?,
            text: query_text
                .map(str::trim)
                .filter(|t| !t.is_empty())
                .map(str::to_string),
            k: k as usize,
            weights: Weights::from_json(weights.map(|j| j.0).as_ref())?,
            historical: as_of.is_some(),
            metric: metric.map(Metric::parse).transpose()?,
            with_embedding: include_embedding,
        })
    })()
    .or_raise();
    let rows = metrics::timed(Call::Recall, || {
        Spi::connect_mut(|client| run_recall(client, &request))
    })
    .or_raise();
    let has_text = request.text.is_some();
    TableIterator::new(rows.into_iter().map(move |(c, similarity, score)| {
        let text_rank = has_text.then_some(c.text_rank as f32);
        let embedding = if include_embedding { c.embedding } else { None };
        (
            c.id,
            c.namespace,
            c.content,
            JsonB(c.metadata),
            c.importance,
            similarity,
            text_rank,
            score as f32,
            c.created_at,
            embedding,
        )
    }))
}

/// Similarity of two embeddings under `metric` (`cosine`, `l2`, `inner_product`), as recall
/// scores them; NULL when their dimensions differ. Recall's exact scan runs it inside the
/// executor, reading each stored value in place.
#[pg_extern(immutable, strict, parallel_safe, requires = ["embedding_type"])]
fn embedding_similarity(
    a: EmbeddingRef<'_>,
    b: EmbeddingRef<'_>,
    metric: default!(&str, "'cosine'"),
) -> Option<f32> {
    let metric = Metric::parse(metric).or_raise();
    (a.len() == b.len()).then(|| metric.similarity(&a, &b))
}

/// The namespaces that hold current memories, under `prefix`, cut to `max_depth` labels.
#[pg_extern(stable, parallel_safe)]
fn list_namespaces(
    prefix: default!(Option<Vec<Option<String>>>, "'{}'"),
    max_depth: default!(Option<i32>, "NULL"),
) -> SetOfIterator<'static, Vec<String>> {
    let namespaces = (|| -> CtxResult<Vec<Vec<String>>> {
        let labels = namespace_arg(prefix, "prefix", true)?;
        if let Some(d) = max_depth {
            if d < 1 {
                return Err(
                    CtxError::invalid(format!("max_depth must be at least 1, got {d}"))
                        .with_hint("pass NULL for full depth"),
                );
            }
        }
        let scope = Scope::new(&labels, true, None, None)?;
        let depth = max_depth.map_or("".to_string(), |d| format!("[1:{d}]"));
        let sql = format!(
            "SELECT DISTINCT m.namespace{depth} AS ns FROM ctx.memories m WHERE {} ORDER BY 1",
            scope.predicate
        );
        Spi::connect(|client| {
            client
                .select(sql.as_str(), None, &scope.args())?
                .map(|row| required(row.get::<Vec<String>>(1)?, "namespace"))
                .collect()
        })
    })()
    .or_raise();
    SetOfIterator::new(namespaces)
}

/// The casts between `ctx.embedding` and pgvector's `vector`, without a function (the bytes are
/// the same). They are not members of the extension: a member depending on pgvector's type
/// would make `DROP EXTENSION vector CASCADE` drop ctxstore and every memory with it. Their
/// dependency on `ctx.embedding` is made automatic instead, so DROP EXTENSION ctxstore takes
/// them along, and dropping pgvector takes only them and the HNSW indexes.
fn ensure_vector_casts(client: &mut SpiClient<'_>, schema: &str) -> CtxResult<()> {
    let vector = format!("{schema}.vector");
    for (source, target, context) in [
        ("ctx.embedding", vector.as_str(), "IMPLICIT"),
        (vector.as_str(), "ctx.embedding", "ASSIGNMENT"),
    ] {
        // (method, whether its dependencies need repair: an extension membership, or a normal
        // dependency on ctx.embedding as CREATE CAST and pg_restore leave it)
        let cast: Option<(String, bool)> = client
            .select(
                "SELECT c.castmethod::text,
                        EXISTS (SELECT 1 FROM pg_catalog.pg_depend d
                                 WHERE d.classid = 'pg_catalog.pg_cast'::regclass AND d.objid = c.oid
                                   AND ((d.refclassid = 'pg_catalog.pg_extension'::regclass AND d.deptype = 'e')
                                     OR (d.refclassid = 'pg_catalog.pg_type'::regclass
                                         AND d.refobjid = 'ctx.embedding'::regtype AND d.deptype = 'n')))
                   FROM pg_catalog.pg_cast c WHERE c.castsource = $1::regtype AND c.casttarget = $2::regtype",
                Some(1),
                &[source.into(), target.into()],
            )?
            .next()
            .map(|row| -> CtxResult<(String, bool)> {
                Ok((required(row.get(1)?, "castmethod")?, required(row.get(2)?, "repair")?))
            })
            .transpose()?;
        let repair = match cast {
            Some((method, _)) if method != "b" => {
                return Err(CtxError::new(
                    ErrorKind::DuplicateObject,
                    format!("a cast ({source} AS {target}) with a function exists"),
                )
                .with_hint("drop it: ctxstore's cast between the two types has no function (their bytes are the same)"));
            }
            Some((_, repair)) => repair,
            None => true,
        };
        if !repair {
            continue;
        }
        let superuser: Option<bool> = first_value(client.select(
            "SELECT rolsuper FROM pg_catalog.pg_roles WHERE rolname = current_user",
            Some(1),
            &[],
        )?)?;
        if superuser != Some(true) {
            return Err(CtxError::new(
                ErrorKind::InsufficientPrivilege,
                format!("the cast ({source} AS {target}) needs a superuser to be made"),
            )
            .with_hint("run ctx.create_vector_index once as a superuser; later calls need only the table's ownership"));
        }
        if cast.is_none() {
            client.update(
                format!("CREATE CAST ({source} AS {target}) WITHOUT FUNCTION AS {context}")
                    .as_str(),
                None,
                &[],
            )?;
        }
        // not a member (inside ALTER EXTENSION UPDATE, CREATE CAST made it one), and an
        // automatic dependency on ctx.embedding (also after a restore)
        client.update(
            "DELETE FROM pg_catalog.pg_depend d USING pg_catalog.pg_cast c
              WHERE c.castsource = $1::regtype AND c.casttarget = $2::regtype
                AND d.classid = 'pg_catalog.pg_cast'::regclass AND d.objid = c.oid
                AND d.refclassid = 'pg_catalog.pg_extension'::regclass AND d.deptype = 'e'",
            None,
            &[source.into(), target.into()],
        )?;
        client.update(
            "UPDATE pg_catalog.pg_depend d SET deptype = 'a'
               FROM pg_catalog.pg_cast c
              WHERE c.castsource = $1::regtype AND c.casttarget = $2::regtype
                AND d.classid = 'pg_catalog.pg_cast'::regclass AND d.objid = c.oid
                AND d.refclassid = 'pg_catalog.pg_type'::regclass
                AND d.refobjid = 'ctx.embedding'::regtype AND d.deptype = 'n'",
            None,
            &[source.into(), target.into()],
        )?;
    }
    Ok(())
}

/// Builds an HNSW index (pgvector) for memories with `dims`-dimensional embeddings; recall
/// then uses it for large candidate sets. Returns the index name.
#[pg_extern(volatile, parallel_unsafe)]
fn create_vector_index(dims: Option<i32>, metric: default!(Option<&str>, "'cosine'")) -> String {
    (|| -> CtxResult<String> {
        let dims = required(dims, "dims")?;
        if !(1..=2000).contains(&dims) {
            return Err(CtxError::invalid(format!("dims must be between 1 and 2000, got {dims}"))
                .with_hint("pgvector's HNSW indexes vectors of up to 2000 dimensions"));
        }
        let metric = Metric::parse(required(metric, "metric")?)?;
        writing(|client| {
            let schema = vector_schema(client)?.ok_or_else(|| {
                CtxError::new(ErrorKind::WrongState, "the vector extension (pgvector) is not installed")
                    .with_hint("run CREATE EXTENSION vector; without it, recall uses exact search")
            })?;
            // (before the early return: an index whose cast was dropped is repaired too)
            ensure_vector_casts(client, &schema)?;
            let name = format!("memories_hnsw_{dims}");
            // (a restored dump has the registry row but not the index: pg_dump never dumps
            // indexes on an extension's tables, so the index is checked, not assumed)
            if let Some(existing) = index_metric(client, dims as usize)? {
                let present = existing.rows.is_some();
                if existing.metric == metric && present {
                    return Ok(name);
                }
                if present {
                    client.update(format!("DROP INDEX ctx.{name}").as_str(), None, &[])?;
                }
            }
            let (opclass, _) = metric.pgvector_opclass();
            // the expression is a relabelling and pgvector's dimension check: the index reads
            // the stored bytes as they are
            client.update(
                format!(
                    "CREATE INDEX {name} ON ctx.memories USING hnsw ((embedding::{schema}.vector({dims})) {schema}.{opclass})
                      WHERE ctx.embedding_dims(embedding) = {dims} AND valid_to IS NULL"
                )
                .as_str(),
                None,
                &[],
            )?;
            client.update(
                "INSERT INTO ctx.vector_indexes (dims, metric, index_name) VALUES ($1, $2, $3)
                 ON CONFLICT (dims) DO UPDATE SET metric = excluded.metric, index_name = excluded.index_name, created_at = excluded.created_at",
                None,
                &[dims.into(), metric.name().into(), name.as_str().into()],
            )?;
            Ok(name)
        })
    })()
    .or_raise()
}
