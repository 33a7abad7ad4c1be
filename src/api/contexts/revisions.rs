//! Changing messages by id without losing anything: an edit is a new revision (the one it
//! replaces moves to ctx.message_revisions), a delete is a tombstone revision, a purge removes
//! every revision for good. A fork's view stays as it was at the fork: before a context changes
//! what it shows at a seq, each direct fork that sees that seq gets its own copy of it.

use pgrx::pg_sys::BuiltinOid::*;
use pgrx::prelude::*;
use pgrx::spi::SpiClient;
use pgrx::{JsonB, Uuid};
use serde_json::Value;

use super::read::message_id_list;
use super::write::{append_processed, process_writes, split_batch, Incoming};
use crate::api::args::JsonArg;
use crate::api::raise::OrRaise;
use crate::core::conversation as rules;
use crate::core::metrics::{Call, Counter};
use crate::core::tokenizer::Encoding;
use crate::error::{required, CtxError, CtxResult, ErrorKind};
use crate::gucs;
use crate::plans::Statement;
use crate::services::context_view::*;
use crate::services::keys;
use crate::services::message_lookup::*;
use crate::services::metrics;
use crate::services::pipeline::WriteItem;
use crate::services::transaction::writing;

/// What a new revision holds: a message, or a tombstone (`item` None).
struct NewRevision {
    item: Option<WriteItem>,
    /// the caller's timestamp (RFC 3339); None keeps the message's
    created_at: Option<String>,
}

/// Edits a message: a new revision in the same place (seq), through the write processors and
/// the metadata schema, sealed when the context is encrypted. NULL arguments keep what the
/// message has. Returns the new revision number (NULL when a write processor dropped the edit).
#[pg_extern(volatile, parallel_unsafe)]
fn update_message(
    context_id: Option<Uuid>,
    message_id: Option<&str>,
    content: default!(Option<&str>, "NULL"),
    metadata: default!(Option<JsonArg>, "NULL"),
    role: default!(Option<&str>, "NULL"),
) -> Option<i32> {
    metrics::timed(Call::Append, || {
        edit(context_id, message_id, content, metadata, role)
    })
    .or_raise()
}

fn edit(
    context_id: Option<Uuid>,
    message_id: Option<&str>,
    content: Option<&str>,
    metadata: Option<JsonArg>,
    role: Option<&str>,
) -> CtxResult<Option<i32>> {
    let context_id = required(context_id, "context_id")?;
    let message_id = required(message_id, "message_id")?;
    rules::check_message_id(message_id)?;
    if let Some(role) = role {
        rules::check_role(role)?;
    }
    if let Some(content) = content {
        rules::check_content(content, gucs::max_message_bytes())?;
    }
    let metadata = match metadata {
        Some(m) => {
            let m = m.parse("metadata")?;
            rules::check_metadata(&m, "metadata")?;
            Some(m)
        }
        None => None,
    };
    writing(|client| {
        let view = load_view_exclusive(client, context_id)?;
        let at = locate(client, &view, &[message_id.to_string()])?
            .pop()
            .ok_or_else(|| unknown_message(message_id))?;
        if at.deleted {
            return Err(CtxError::new(
                ErrorKind::WrongState,
                format!("message \"{message_id}\" was deleted"),
            )
            .with_hint(
                "ctx.save_messages(context_id, messages) writes it again; ctx.history shows its revisions",
            ));
        }
        let now = read_at(client, &view.tenant, at.owner, at.seq)?;
        let item = WriteItem::message(
            role.map_or(now.role, str::to_string),
            content.map_or(now.content, str::to_string),
            metadata.unwrap_or_else(|| now.metadata.into_value()),
        );
        let (mut processed, _) = process_writes(client, context_id, vec![item])?;
        let Some(item) = processed.pop().flatten() else {
            return Ok(None); // a processor dropped the edit: the message stays as it was
        };
        let revision = revise(
            client,
            &view,
            &at,
            NewRevision {
                item: Some(item),
                created_at: None,
            },
        )?;
        metrics::count(Counter::MessagesRevised, 1);
        Ok(Some(revision))
    })
}

/// Deletes messages: each live one gets a tombstone revision that every read of the view
/// skips (ctx.history keeps what it was). Returns how many were live; an id the view never had
/// is SQLSTATE 42704.
#[pg_extern(volatile, parallel_unsafe)]
fn delete_messages(context_id: Option<Uuid>, message_ids: Option<Vec<Option<String>>>) -> i32 {
    metrics::timed(Call::Append, || tombstone(context_id, message_ids)).or_raise()
}

fn tombstone(context_id: Option<Uuid>, message_ids: Option<Vec<Option<String>>>) -> CtxResult<i32> {
    let context_id = required(context_id, "context_id")?;
    let ids = message_id_list(message_ids)?;
    writing(|client| {
        let view = load_view_exclusive(client, context_id)?;
        let found = located_all(client, &view, &ids)?;
        let mut deleted = 0;
        for at in found.iter().filter(|at| !at.deleted) {
            revise(
                client,
                &view,
                at,
                NewRevision {
                    item: None,
                    created_at: None,
                },
            )?;
            deleted += 1;
        }
        metrics::count(Counter::MessagesDeleted, deleted as u64);
        Ok(deleted)
    })
}

/// Every id located (once each, in seq order), or 42704 naming the first the view lacks.
fn located_all(client: &SpiClient<'_>, view: &View, ids: &[String]) -> CtxResult<Vec<Located>> {
    let mut found = locate(client, view, ids)?;
    if let Some(missing) = ids
        .iter()
        .find(|id| !found.iter().any(|at| &at.message_id == *id))
    {
        return Err(unknown_message(missing));
    }
    found.sort_unstable_by_key(|at| at.seq);
    found.dedup_by_key(|at| at.seq);
    Ok(found)
}

/// Removes messages for good: every revision and tombstone of each, here and in the forks that
/// see them (what an erasure request needs short of shredding the context). Audited like every
/// delete. A message a fork inherits is its ancestor's to purge (SQLSTATE 55000); a fork's own
/// revision of an inherited message is purged to a bare tombstone, which keeps the ancestor's
/// message hidden from the fork.
#[pg_extern(volatile, parallel_unsafe)]
fn purge_messages(context_id: Option<Uuid>, message_ids: Option<Vec<Option<String>>>) -> i32 {
    purge(context_id, message_ids).or_raise()
}

fn purge(context_id: Option<Uuid>, message_ids: Option<Vec<Option<String>>>) -> CtxResult<i32> {
    let context_id = required(context_id, "context_id")?;
    let ids = message_id_list(message_ids)?;
    // $3: seqs whose rows go; $4: seqs of rows that hide an ancestor's message, which become
    // bare tombstones (without them the ancestor's message would show through again); in forks
    // that see them, both go
    static PURGE: Statement = Statement {
        sql: "WITH doomed AS (
                  SELECT m.ctid FROM ctx.messages m
                   WHERE m.tenant = $1 AND m.context_id = $2 AND m.seq = ANY ($3)
                  UNION ALL
                  SELECT m.ctid FROM ctx.contexts d
                    JOIN ctx.messages m ON m.tenant = d.tenant AND m.context_id = d.id AND m.seq = ANY ($3 || $4)
                   WHERE d.tenant = $1 AND d.ancestors @> ARRAY[$2]
                     AND m.seq <= d.bounds[array_position(d.ancestors, $2)]),
              gone AS (
                  DELETE FROM ctx.messages m USING doomed d WHERE m.tenant = $1 AND m.ctid = d.ctid
                  RETURNING m.context_id = $2 AS own),
              forgotten AS (
                  DELETE FROM ctx.message_revisions r
                   WHERE r.tenant = $1 AND r.context_id = $2 AND r.seq = ANY ($4)),
              hidden AS (
                  UPDATE ctx.messages
                     SET revision = revision + 1, deleted = true, content = NULL, content_lz4 = NULL,
                         content_enc = NULL, metadata_enc = NULL, metadata = '{}', tokens = 0,
                         written_at = now(), trace_id = ctx.current_trace_id()
                   WHERE tenant = $1 AND context_id = $2 AND seq = ANY ($4)
                  RETURNING 1)
              SELECT (SELECT count(*) FROM gone WHERE own) + (SELECT count(*) FROM hidden)",
        args: &[TEXTOID, UUIDOID, INT8ARRAYOID, INT8ARRAYOID],
        writes: true,
    };
    writing(|client| {
        let view = load_view_exclusive(client, context_id)?;
        let found = located_all(client, &view, &ids)?;
        if let Some(inherited) = found.iter().find(|at| at.inherited(&view)) {
            return Err(CtxError::new(
                ErrorKind::WrongState,
                format!(
                    "message \"{}\" is inherited from context {}",
                    inherited.message_id, inherited.owner
                ),
            )
            .with_hint(format!(
                "purge it in context {} (which removes it from its forks too), or delete it here with ctx.delete_messages",
                inherited.owner
            )));
        }
        // the forks' rows go too: their contexts are locked first (shallower first, as edits
        // lock a context, then its direct forks), so no edit in a fork slips in between
        static LOCK_FORKS: Statement = Statement {
            sql: "SELECT d.id FROM ctx.contexts d
                   WHERE d.tenant = $1 AND d.ancestors @> ARRAY[$2]
                   ORDER BY cardinality(d.ancestors), d.id
                     FOR NO KEY UPDATE OF d",
            args: &[TEXTOID, UUIDOID],
            writes: true,
        };
        let plan = LOCK_FORKS.plan(client)?;
        client.update(
            &*plan,
            None,
            &[view.tenant.as_str().into(), context_id.into()],
        )?;
        // positions the context inherits from its parent: its own rows there hide the parent's
        let inherited_through = view.lineage.bounds.first().copied().unwrap_or(0);
        let (hiding, owned): (Vec<i64>, Vec<i64>) = found
            .iter()
            .map(|at| at.seq)
            .partition(|&seq| seq <= inherited_through);
        let plan = PURGE.plan(client)?;
        let purged: i64 = crate::plans::first_value(client.update(
            &*plan,
            Some(1),
            &[
                view.tenant.as_str().into(),
                context_id.into(),
                owned.into(),
                hiding.into(),
            ],
        )?)?
        .unwrap_or(0);
        let purged = purged as i32;
        metrics::count(Counter::MessagesPurged, purged as u64);
        Ok(purged)
    })
}

/// Saves messages by id in one call, all or nothing: new ids are appended (in order), existing
/// ones get a new revision (a deleted one is written again). Validated whole, through the
/// write processors and the metadata schema, before anything is written; errors name
/// `messages[i]`. Returns each saved message's id, seq and revision, in the batch's order
/// (none for a message a processor dropped).
#[pg_extern(volatile, parallel_unsafe)]
fn save_messages(
    context_id: Option<Uuid>,
    messages: Option<JsonArg>,
) -> TableIterator<
    'static,
    (
        name!(message_id, String),
        name!(seq, i64),
        name!(revision, i32),
    ),
> {
    let saved = metrics::timed(Call::Append, || save(context_id, messages)).or_raise();
    TableIterator::new(saved)
}

fn save(context_id: Option<Uuid>, messages: Option<JsonArg>) -> CtxResult<Vec<(String, i64, i32)>> {
    let context_id = required(context_id, "context_id")?;
    let messages = required(messages, "messages")?.parse("messages")?;
    let batch = rules::parse_batch(&messages, gucs::max_message_bytes())?;
    rules::check_unique_ids(&batch)?;
    writing(|client| {
        let view = load_view_exclusive(client, context_id)?;
        let ids: Vec<String> = batch.iter().filter_map(|m| m.message_id.clone()).collect();
        let found = locate(client, &view, &ids)?;
        let (items, identities) = split_batch(batch);
        let (processed, sealed) = process_writes(client, context_id, items)?;
        let mut saved = vec![None; processed.len()];
        let mut appending = Vec::new();
        let mut appending_at = Vec::new();
        for (i, (item, (message_id, created_at))) in
            processed.into_iter().zip(identities).enumerate()
        {
            let Some(item) = item else {
                continue; // dropped by a processor
            };
            let existing = message_id
                .as_ref()
                .and_then(|id| found.iter().find(|at| &at.message_id == id));
            match existing {
                Some(at) => {
                    let revision = revise(
                        client,
                        &view,
                        at,
                        NewRevision {
                            item: Some(item),
                            created_at,
                        },
                    )?;
                    metrics::count(Counter::MessagesRevised, 1);
                    saved[i] = Some((at.message_id.clone(), at.seq, revision));
                }
                None => {
                    appending_at.push(i);
                    appending.push(Incoming {
                        message_id,
                        created_at,
                        item,
                    });
                }
            }
        }
        if !appending.is_empty() {
            let appended = append_processed(client, context_id, sealed, appending)?;
            metrics::count(Counter::MessagesAppended, appended.len() as u64);
            for (i, a) in appending_at.into_iter().zip(appended) {
                saved[i] = Some((a.message_id, a.seq, 1));
            }
        }
        Ok(saved.into_iter().flatten().collect())
    })
}

/// Writes a new revision of the message at `at` (the one the view shows now): forks that see
/// it get their copy first; the current revision moves to ctx.message_revisions (or, for an
/// inherited message, stays with its owner and the new one is this context's own row).
fn revise(
    client: &mut SpiClient<'_>,
    view: &View,
    at: &Located,
    new: NewRevision,
) -> CtxResult<i32> {
    let forks = forks_seeing(client, view, at.seq)?;
    copy_to(client, view, at, &forks)?;
    if at.inherited(view) {
        // the message becomes this context's own row, with the revisions it had: its history
        // here stays whole, and the ancestor's row is hidden from this view from now on
        copy_to(client, view, at, &[view.id])?;
    }
    let revision = at
        .revision
        .checked_add(1)
        .ok_or_else(|| CtxError::new(ErrorKind::TooLarge, "a message has too many revisions"))?;
    let encoding = Encoding::parse(&view.encoding)?;
    let (deleted, role, tokens) = match &new.item {
        Some(item) => (
            false,
            item.role.clone().unwrap_or_default(),
            encoding.count(item.content.as_deref().unwrap_or_default()) as i32,
        ),
        // a tombstone keeps the role
        None => (true, at.role.clone(), 0),
    };
    let (mut content, mut content_enc, mut metadata_enc, mut metadata) =
        (None, None, None, Value::Object(Default::default()));
    if let Some(item) = &new.item {
        let text = item.content.clone().unwrap_or_default();
        if view.encrypted {
            let key = keys::data_key(client, &keys::Scope::Context(view.id))?;
            let place = SealedAt {
                context_id: view.id,
                seq: at.seq,
                role: &role,
                revision,
            };
            let (c, m) = seal_message(&key, &place, &text, &item.stamped_metadata())?;
            (content_enc, metadata_enc) = (Some(c), Some(m));
        } else {
            content = Some(text);
            metadata = item.stamped_metadata();
        }
    }
    // Two forms, a new time or the kept one, rather than coalesce($12, created_at): Citus
    // refuses a coalesce over a column in an UPDATE (Citus 14).
    macro_rules! revise {
        ($created_at:literal) => {
            concat!(
                "WITH replaced AS (
                  INSERT INTO ctx.message_revisions (context_id, tenant, seq, revision, message_id, deleted,
                         role, content, content_lz4, content_enc, metadata_enc, metadata, tokens, created_at,
                         written_at, trace_id)
                  SELECT context_id, tenant, seq, revision, message_id, deleted, role, content, content_lz4,
                         content_enc, metadata_enc, metadata, tokens, created_at, written_at, trace_id
                    FROM ctx.messages
                   WHERE tenant = $1 AND context_id = $2 AND seq = $3 AND revision = $4 - 1)
              UPDATE ctx.messages
                 SET revision = $4, deleted = $5, role = $6, content = $7, content_lz4 = NULL,
                     content_enc = $8, metadata_enc = $9, metadata = $10, tokens = $11, ",
                $created_at,
                " written_at = now(), trace_id = $13
               WHERE tenant = $1 AND context_id = $2 AND seq = $3 AND revision = $4 - 1
              RETURNING revision"
            )
        };
    }
    static REVISE: Statement = Statement {
        sql: revise!(""),
        args: REVISION_ARGS,
        writes: true,
    };
    static REVISE_AT: Statement = Statement {
        sql: revise!("created_at = $12::timestamptz,"),
        args: REVISION_ARGS,
        writes: true,
    };
    let statement = if new.created_at.is_some() {
        &REVISE_AT
    } else {
        &REVISE
    };
    // (the trace id as a value: ctx.current_trace_id() inlines into a coalesce of settings,
    // which Citus refuses in an UPDATE)
    let trace_id: Option<String> =
        crate::plans::first_value(client.select("SELECT ctx.current_trace_id()", Some(1), &[])?)?;
    let plan = statement.plan(client)?;
    let done: Option<i32> = crate::plans::first_value(client.update(
        &*plan,
        Some(1),
        &[
            view.tenant.as_str().into(),
            view.id.into(),
            at.seq.into(),
            revision.into(),
            deleted.into(),
            role.into(),
            content.into(),
            content_enc.into(),
            metadata_enc.into(),
            JsonB(metadata).into(),
            tokens.into(),
            new.created_at.clone().into(),
            trace_id.into(),
        ],
    )?)?;
    done.ok_or_else(|| {
        CtxError::new(
            ErrorKind::SerializationFailure,
            format!(
                "message {} of context {} changed meanwhile",
                at.seq, view.id
            ),
        )
        .with_hint("retry the call")
    })
}

const REVISION_ARGS: &[pgrx::pg_sys::BuiltinOid] = &[
    TEXTOID, UUIDOID, INT8OID, INT4OID, BOOLOID, TEXTOID, TEXTOID, BYTEAOID, BYTEAOID, JSONBOID,
    INT4OID, TEXTOID, TEXTOID,
];

/// The direct forks of `view` that see `seq` and have no row of their own there, locked:
/// before `view` changes what it shows at `seq` they get a copy of it, so the change does not
/// reach them (forks of forks read through their parent's copy).
fn forks_seeing(client: &mut SpiClient<'_>, view: &View, seq: i64) -> CtxResult<Vec<Uuid>> {
    static FORKS: Statement = Statement {
        sql: "SELECT c.id FROM ctx.contexts c
               WHERE c.tenant = $1 AND c.parent_id = $2 AND c.bounds[1] >= $3
                 AND NOT EXISTS (
                     SELECT FROM ctx.messages o WHERE o.tenant = $1 AND o.context_id = c.id AND o.seq = $3)
               ORDER BY c.id
                 FOR NO KEY UPDATE OF c",
        args: &[TEXTOID, UUIDOID, INT8OID],
        writes: true,
    };
    let plan = FORKS.plan(client)?;
    client
        .update(
            &*plan,
            None,
            &[view.tenant.as_str().into(), view.id.into(), seq.into()],
        )?
        .map(|row| required(row.get::<Uuid>(1)?, "id"))
        .collect()
}

/// Copies the row `view` shows at `at` (and the revisions it replaced) into each of `targets`
/// as their own, sealed ones re-sealed for each.
fn copy_to(
    client: &mut SpiClient<'_>,
    view: &View,
    at: &Located,
    targets: &[Uuid],
) -> CtxResult<()> {
    static COPY: Statement = Statement {
        sql: "INSERT INTO ctx.messages (context_id, tenant, seq, message_id, revision, deleted, role, content,
                     content_lz4, metadata, tokens, created_at, written_at, trace_id)
              SELECT f.id, m.tenant, m.seq, m.message_id, m.revision, m.deleted, m.role, m.content,
                     m.content_lz4, m.metadata, m.tokens, m.created_at, m.written_at, m.trace_id
                FROM ctx.messages m, unnest($4::uuid[]) AS f(id)
               WHERE m.tenant = $1 AND m.context_id = $2 AND m.seq = $3
              ON CONFLICT DO NOTHING",
        args: &[TEXTOID, UUIDOID, INT8OID, UUIDARRAYOID],
        writes: true,
    };
    if targets.is_empty() {
        return Ok(());
    }
    // the revisions it replaced go with it (they are the message's history there too)
    static COPY_REVISIONS: Statement = Statement {
        sql: "INSERT INTO ctx.message_revisions (context_id, tenant, seq, revision, message_id, deleted, role,
                     content, content_lz4, metadata, tokens, created_at, written_at, trace_id, replaced_at)
              SELECT f.id, r.tenant, r.seq, r.revision, r.message_id, r.deleted, r.role, r.content,
                     r.content_lz4, r.metadata, r.tokens, r.created_at, r.written_at, r.trace_id, r.replaced_at
                FROM ctx.message_revisions r, unnest($4::uuid[]) AS f(id)
               WHERE r.tenant = $1 AND r.context_id = $2 AND r.seq = $3
              ON CONFLICT DO NOTHING",
        args: &[TEXTOID, UUIDOID, INT8OID, UUIDARRAYOID],
        writes: true,
    };
    let copy_all = |client: &mut SpiClient<'_>, statement: &'static Statement| -> CtxResult<()> {
        let plan = statement.plan(client)?;
        client.update(
            &*plan,
            None,
            &[
                view.tenant.as_str().into(),
                at.owner.into(),
                at.seq.into(),
                targets.to_vec().into(),
            ],
        )?;
        Ok(())
    };
    // a tombstone holds nothing sealed: copied as stored, encrypted context or not
    if !view.encrypted || at.deleted {
        copy_all(client, &COPY)?;
    }
    if !view.encrypted {
        return copy_all(client, &COPY_REVISIONS);
    }
    let current = if at.deleted {
        None
    } else {
        Some(read_at(client, &view.tenant, at.owner, at.seq)?)
    };
    let replaced = replaced_revisions(client, view, &[(at.owner, at.seq)])?;
    for fork in targets.iter().copied() {
        let key = keys::data_key(client, &keys::Scope::Context(fork))?;
        if let Some(row) = &current {
            insert_sealed_copy(client, &key, fork, &view.tenant, row, "ctx.messages")?;
        }
        for row in &replaced {
            insert_sealed_copy(
                client,
                &key,
                fork,
                &view.tenant,
                row,
                "ctx.message_revisions",
            )?;
        }
    }
    Ok(())
}

/// A message revision re-sealed for a fork, as a row of `table` (the fork's current row, or
/// one of its replaced revisions).
fn insert_sealed_copy(
    client: &mut SpiClient<'_>,
    key: &crate::core::crypto::Key,
    fork: Uuid,
    tenant: &str,
    row: &Row,
    table: &'static str,
) -> CtxResult<()> {
    let place = SealedAt {
        context_id: fork,
        seq: row.seq,
        role: &row.role,
        revision: row.revision,
    };
    let (content_enc, metadata_enc) = if row.deleted {
        (None, None)
    } else {
        let metadata = row.metadata.clone().into_value();
        let (c, m) = seal_message(key, &place, &row.content, &metadata)?;
        (Some(c), Some(m))
    };
    client.update(
        &format!(
            "INSERT INTO {table} (context_id, tenant, seq, message_id, revision, deleted, role, content_enc,
                    metadata_enc, tokens, created_at, written_at, trace_id)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)
             ON CONFLICT DO NOTHING"
        ),
        None,
        &[
            fork.into(),
            tenant.into(),
            row.seq.into(),
            row.message_id.clone().into(),
            row.revision.into(),
            row.deleted.into(),
            row.role.clone().into(),
            content_enc.into(),
            metadata_enc.into(),
            row.tokens.into(),
            row.created_at.into(),
            row.written_at.into(),
            row.trace_id.clone().into(),
        ],
    )?;
    Ok(())
}
