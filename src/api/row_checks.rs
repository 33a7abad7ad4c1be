//! The functions the tables' CHECK constraints call: one per table, for the rules in
//! `core::row_rules`. A broken rule is SQLSTATE 23514 naming the constraint and the rule —
//! never the row's values (a message's content stays out of the error and the server log).

use pgrx::datum::{Array, Interval};
use pgrx::prelude::*;

use crate::api::args::JsonbIsObject;
use crate::api::raise::OrRaise;
use crate::core::row_rules::{self, ContextRow, MessageRow, Span};
use crate::error::{CtxError, CtxResult, ErrorKind};

fn violated(table: &str, constraint: &str, rule: &str) -> CtxError {
    CtxError::new(
        ErrorKind::CheckViolation,
        format!("new row for relation \"{table}\" violates check constraint \"{constraint}\""),
    )
    .with_detail(format!("The row breaks: {rule}."))
    .with_hint(format!(
        "write {table} through ctxstore's functions, which keep these rules; a direct write must keep them too"
    ))
}

/// The rules of a ctx.messages row (the table's `messages_row_check`).
#[allow(clippy::too_many_arguments)]
#[pg_extern(immutable, parallel_safe)]
fn message_row_check(
    seq: Option<i64>,
    message_id: Option<&str>,
    revision: Option<i32>,
    role: Option<&str>,
    tokens: Option<i32>,
    deleted: Option<bool>,
    contents_set: Option<i32>,
    metadata_enc_set: Option<bool>,
    metadata: Option<JsonbIsObject>,
) -> bool {
    let row = MessageRow {
        seq,
        message_id,
        revision,
        role,
        tokens,
        deleted,
        contents_set: contents_set.unwrap_or(0),
        metadata_enc_set: metadata_enc_set.unwrap_or(false),
        metadata_object: metadata.map(|m| m.0),
    };
    checked(
        row_rules::message_row(&row),
        "messages",
        "messages_row_check",
    )
    .or_raise()
}

/// The rules of a ctx.contexts row (the table's `contexts_row_check`).
#[allow(clippy::too_many_arguments)]
#[pg_extern(immutable, parallel_safe)]
fn context_row_check(
    resource: Option<&str>,
    metadata: Option<JsonbIsObject>,
    processors: Option<JsonbIsObject>,
    encoding: Option<&str>,
    last_seq: Option<i64>,
    retain_max_age: Option<Interval>,
    retain_max_messages: Option<i32>,
    compact_older_than: Option<Interval>,
    parent_set: Option<bool>,
    ancestors: Option<Array<'_, pgrx::Uuid>>,
    bounds: Option<Array<'_, i64>>,
) -> bool {
    let span = |i: Interval| Span {
        months: i.months(),
        days: i.days(),
        micros: i.micros(),
    };
    let row = ContextRow {
        resource,
        metadata_object: metadata.map(|m| m.0),
        processors_object: processors.map(|m| m.0),
        encoding,
        last_seq,
        retain_max_age: retain_max_age.map(span),
        retain_max_messages,
        compact_older_than: compact_older_than.map(span),
        parent_set: parent_set.unwrap_or(false),
        ancestors: ancestors.map(|a| a.len() as i32),
        bounds: bounds.map(|b| b.len() as i32),
    };
    checked(
        row_rules::context_row(&row),
        "contexts",
        "contexts_row_check",
    )
    .or_raise()
}

fn checked(rules: Result<(), &str>, table: &str, constraint: &str) -> CtxResult<bool> {
    rules
        .map(|()| true)
        .map_err(|rule| violated(table, constraint, rule))
}
