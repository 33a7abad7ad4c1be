//! `ctx.build_context`: the context to send to the model for this turn, assembled in one call
//! within one token budget — system messages, working memory, recalled memories, the latest
//! summary and the most recent messages that fit. The sharing rules are in `core::assembly`.

use crate::api::args::{json_or, JsonArg};
use crate::core::metrics::{Call, Counter};
use crate::services::metrics;
use pgrx::prelude::*;
use pgrx::spi::SpiClient;
use pgrx::{JsonB, Uuid};
use serde_json::{json, Value};

use crate::api::raise::OrRaise;
use crate::core::assembly::{parse_namespaces, section_cap, AssemblyOptions};
use crate::core::tokenizer::Encoding;
use crate::error::{required, CtxError, CtxResult, ErrorKind};
use crate::services::context_view::{
    load_view, newest_processed, newest_within, read_range, Roles, Row, View,
};
use crate::services::pipeline::Pipeline;
use crate::services::recall::recall_for_assembly;

/// One row of an assembled context.
struct Part {
    section: &'static str,
    role: String,
    content: String,
    tokens: i64,
    source: Value,
}

struct Request {
    context_id: Uuid,
    max_tokens: i64,
    query: Option<Vec<f32>>,
    text: Option<String>,
    options: AssemblyOptions,
}

fn request(
    context_id: Option<Uuid>,
    max_tokens: Option<i32>,
    query_embedding: Option<Vec<Option<f32>>>,
    query_text: Option<&str>,
    options: Option<JsonArg>,
) -> CtxResult<Request> {
    let context_id = required(context_id, "context_id")?;
    let max_tokens = i64::from(required(max_tokens, "max_tokens")?);
    crate::core::conversation::check_non_negative(max_tokens, "max_tokens")?;
    let query = match query_embedding {
        Some(values) => {
            let values = values
                .into_iter()
                .map(|v| {
                    v.ok_or_else(|| {
                        CtxError::new(ErrorKind::NullValue, "query_embedding has a NULL element")
                    })
                })
                .collect::<CtxResult<Vec<f32>>>()?;
            crate::core::knn::validate(&values, "query_embedding")?;
            Some(values)
        }
        None => None,
    };
    Ok(Request {
        context_id,
        max_tokens,
        query,
        text: query_text
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .map(str::to_string),
        options: AssemblyOptions::from_json(&json_or(options, "options", Value::Null)?)?,
    })
}

/// One assembly call, timed and counted.
fn assembled(
    context_id: Option<Uuid>,
    max_tokens: Option<i32>,
    query_embedding: Option<Vec<Option<f32>>>,
    query_text: Option<&str>,
    options: Option<JsonArg>,
) -> Vec<Part> {
    let parts = metrics::timed(Call::Assembly, || {
        let request = request(context_id, max_tokens, query_embedding, query_text, options)?;
        Spi::connect_mut(|client| assemble(client, &request))
    })
    .or_raise();
    metrics::count(Counter::WindowsAssembled, 1);
    let messages = parts
        .iter()
        .filter(|p| matches!(p.section, "messages" | "system"))
        .count();
    metrics::count(Counter::MessagesRead, messages as u64);
    parts
}

fn assemble(client: &mut SpiClient<'_>, request: &Request) -> CtxResult<Vec<Part>> {
    let view = load_view(client, request.context_id, false)?;
    let encoding = Encoding::parse(&view.encoding)?;
    let count = |text: &str| encoding.count(text) as i64;
    let mut remaining = request.max_tokens;
    let mut parts = Vec::new();

    // 1. System messages: all of them, even those a compaction covered, or an error — silently
    //    dropping the instructions is worse.
    let pipeline = view.read_pipeline(client, request.options.processors.as_ref())?;
    let mut system = read_range(client, &view, 0, view.last_seq, None, Roles::SystemOnly)?;
    if !pipeline.reads_unchanged() {
        system = through_processors(&pipeline, system)?;
    }
    let system_tokens: i64 = system.iter().map(|r| i64::from(r.tokens)).sum();
    if system_tokens > remaining {
        return Err(CtxError::new(
            ErrorKind::TooLarge,
            format!(
                "the system messages need {system_tokens} tokens, above max_tokens ({})",
                request.max_tokens
            ),
        )
        .with_hint("raise max_tokens or shorten the system messages"));
    }
    remaining -= system_tokens;
    for row in system {
        parts.push(Part {
            section: "system",
            role: row.role,
            content: row.content,
            tokens: row.tokens.into(),
            source: json!({"seq": row.seq}),
        });
    }

    // 2. Working memory, rendered as a system message, within its share.
    if request.options.working_memory {
        if let Some(document) = working_memory(client, request.context_id)? {
            let content = format!("Working memory (JSON): {document}");
            let tokens = count(&content);
            if tokens
                <= section_cap(
                    request.max_tokens,
                    request.options.working_memory_share,
                    remaining,
                )
            {
                remaining -= tokens;
                parts.push(Part {
                    section: "working_memory",
                    role: "system".into(),
                    content,
                    tokens,
                    source: json!({"working_memory": request.context_id.to_string()}),
                });
            }
        }
    }

    // 3. Recalled memories, best first, while they fit in their share.
    if request.options.memories > 0 && (request.query.is_some() || request.text.is_some()) {
        let mut cap = section_cap(request.max_tokens, request.options.memory_share, remaining);
        for memory in recalled(client, request, &view)? {
            let content = format!("Relevant memory: {}", memory.content);
            let tokens = count(&content);
            if tokens > cap {
                continue; // a shorter one may still fit
            }
            cap -= tokens;
            remaining -= tokens;
            parts.push(Part {
                section: "memory",
                role: "system".into(),
                content,
                tokens,
                source: json!({"memory_id": memory.id.to_string(), "namespace": memory.namespace, "score": memory.score}),
            });
        }
    }

    // 4. The latest summary, then 5. the newest other messages that fit in what is left.
    if request.options.summary {
        if let Some(summary) = view.summary.as_ref() {
            let content = format!("Summary of the earlier conversation: {}", summary.content);
            let tokens = count(&content);
            if tokens <= remaining {
                remaining -= tokens;
                parts.push(Part {
                    section: "summary",
                    role: "system".into(),
                    content,
                    tokens,
                    source: json!({"summary_through_seq": summary.seq}),
                });
            }
        }
    }
    let recent = if pipeline.reads_unchanged() {
        newest_within(client, &view, &mut remaining, Roles::NonSystem)?
    } else {
        newest_processed(
            client,
            &view,
            &mut remaining,
            i64::MAX,
            Roles::NonSystem,
            &pipeline,
        )?
        .0
    };
    for row in recent {
        let mut source = json!({"seq": row.seq});
        let metadata = row.metadata.into_value();
        for key in ["tool_call_id", "tool_calls", "name"] {
            if let Some(v) = metadata.get(key) {
                source[key] = v.clone();
            }
        }
        parts.push(Part {
            section: "messages",
            role: row.role,
            content: row.content,
            tokens: row.tokens.into(),
            source,
        });
    }
    Ok(parts)
}

/// System messages through the per-message read processors (they are pinned: no budget walk).
fn through_processors(pipeline: &Pipeline, rows: Vec<Row>) -> CtxResult<Vec<Row>> {
    let mut kept = Vec::with_capacity(rows.len());
    for row in rows {
        kept.extend(row.through(pipeline)?);
    }
    Ok(kept)
}

fn working_memory(client: &SpiClient<'_>, context_id: Uuid) -> CtxResult<Option<Value>> {
    let document: Option<JsonB> = crate::plans::first_value(client.select(
        "SELECT ctx.working_memory($1)",
        Some(1),
        &[context_id.into()],
    )?)?;
    Ok(document
        .map(|d| d.0)
        .filter(|d| d.as_object().is_none_or(|o| !o.is_empty())))
}

fn recalled(
    client: &mut SpiClient<'_>,
    request: &Request,
    view: &View,
) -> CtxResult<Vec<crate::services::recall::Recalled>> {
    let namespaces = match &request.options.memory_namespaces {
        Some(list) => list.clone(),
        None => match view.metadata.get("memory_namespace") {
            Some(v) => parse_namespaces(v)?,
            None => return Ok(Vec::new()),
        },
    };
    let mut all = Vec::new();
    for namespace in &namespaces {
        all.extend(recall_for_assembly(
            client,
            namespace,
            request.query.clone(),
            request.text.clone(),
            request.options.memories,
        )?);
    }
    all.sort_by(|a, b| {
        b.score
            .total_cmp(&a.score)
            .then(a.id.as_bytes().cmp(b.id.as_bytes()))
    });
    all.dedup_by(|a, b| a.id == b.id);
    all.truncate(request.options.memories);
    Ok(all)
}

/// The context to send to the model: system messages, working memory, recalled memories, the
/// latest summary and the most recent messages that fit, never more than `max_tokens` in all.
#[pg_extern(volatile, parallel_unsafe)]
fn build_context(
    context_id: Option<Uuid>,
    max_tokens: Option<i32>,
    query_embedding: default!(Option<Vec<Option<f32>>>, "NULL"),
    query_text: default!(Option<&str>, "NULL"),
    options: default!(Option<JsonArg>, "'{}'"),
) -> TableIterator<
    'static,
    (
        name!(position, i32),
        name!(section, String),
        name!(role, String),
        name!(content, String),
        name!(tokens, i32),
        name!(source, JsonB),
    ),
> {
    let parts = assembled(context_id, max_tokens, query_embedding, query_text, options);
    TableIterator::new(parts.into_iter().enumerate().map(|(i, p)| {
        (
            i as i32 + 1,
            p.section.to_string(),
            p.role,
            p.content,
            p.tokens as i32,
            JsonB(p.source),
        )
    }))
}

/// The same context as an OpenAI-style `messages` array (summary and memories as system
/// messages; tool messages keep their `tool_call_id`, assistant messages their `tool_calls`).
#[pg_extern(volatile, parallel_unsafe)]
fn build_context_json(
    context_id: Option<Uuid>,
    max_tokens: Option<i32>,
    query_embedding: default!(Option<Vec<Option<f32>>>, "NULL"),
    query_text: default!(Option<&str>, "NULL"),
    options: default!(Option<JsonArg>, "'{}'"),
) -> JsonB {
    let parts = assembled(context_id, max_tokens, query_embedding, query_text, options);
    let messages = parts
        .into_iter()
        .map(|p| {
            let mut message = json!({"role": p.role, "content": p.content});
            for key in ["tool_call_id", "tool_calls", "name"] {
                if let Some(v) = p.source.get(key) {
                    message[key] = v.clone();
                }
            }
            message
        })
        .collect();
    JsonB(Value::Array(messages))
}
