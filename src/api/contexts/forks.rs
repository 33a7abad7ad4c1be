//! Forks: a new context that reads its parent's messages up to a seq without copying them.

use pgrx::datum::TimestampWithTimeZone;
use pgrx::pg_sys::BuiltinOid::*;
use pgrx::prelude::*;
use pgrx::spi::SpiClient;
use pgrx::{JsonB, Uuid};
use serde_json::{json, Value};

use super::compaction::insert_summary_version;
use crate::api::raise::OrRaise;
use crate::core::conversation as rules;
use crate::error::{required, CtxError, CtxResult};
use crate::plans::Statement;
use crate::services::context_view::*;
use crate::services::keys;
use crate::services::transaction::writing;

/// A new context that sees this one's messages up to `at_seq` (default: all) without copying
/// them; later appends on either side stay apart.
#[pg_extern(volatile, parallel_unsafe)]
fn fork(context_id: Option<Uuid>, at_seq: default!(Option<i64>, "NULL")) -> Uuid {
    fork_context(context_id, at_seq).or_raise()
}

fn fork_context(context_id: Option<Uuid>, at_seq: Option<i64>) -> CtxResult<Uuid> {
    let context_id = required(context_id, "context_id")?;
    static INSERT_FORK: Statement = Statement {
        sql: "INSERT INTO ctx.contexts (name, metadata, encoding, parent_id, ancestors, bounds, last_seq, metadata_schema, processors, encrypted)
              SELECT $1, $2, $3, $4, $5, $6, $7, metadata_schema, processors, encrypted FROM ctx.contexts WHERE tenant = $8 AND id = $4
              RETURNING id",
        args: &[TEXTOID, JSONBOID, TEXTOID, UUIDOID, UUIDARRAYOID, INT8ARRAYOID, INT8OID, TEXTOID],
        writes: true,
    };
    // The fork inherits the summaries that cover only messages it sees.
    static COPY_SUMMARIES: Statement = Statement {
        sql: "INSERT INTO ctx.summaries (context_id, version, through_seq, content, metadata, tokens, created_at)
              SELECT $1, version, through_seq, content, metadata, tokens, created_at
                FROM ctx.summaries
               WHERE tenant = $4 AND context_id = $2 AND through_seq <= $3",
        args: &[UUIDOID, UUIDOID, INT8OID, TEXTOID],
        writes: true,
    };
    writing(|client| {
        // (the fork's insert holds its foreign key's KEY SHARE lock on the parent until commit,
        // which orders it with the parent's edits: see load_view_exclusive)
        let parent = load_view(client, context_id, false)?;
        let at_seq = rules::fork_point(at_seq, parent.last_seq)?;
        let lineage = parent.lineage.fork(*context_id.as_bytes(), at_seq);
        let ancestors: Vec<Uuid> = lineage
            .ancestors
            .iter()
            .map(|b| Uuid::from_bytes(*b))
            .collect();
        let plan = INSERT_FORK.plan(client)?;
        let mut table = client.update(
            &*plan,
            Some(1),
            &[
                parent.name.clone().into(),
                JsonB(parent.metadata.clone()).into(),
                parent.encoding.as_str().into(),
                context_id.into(),
                ancestors.into(),
                lineage.bounds.into(),
                at_seq.into(),
                parent.tenant.as_str().into(),
            ],
        )?;
        let row = table
            .next()
            .ok_or_else(|| CtxError::internal("INSERT returned no row"))?;
        let fork_id: Uuid = required(row.get(1)?, "id")?;
        if parent.encrypted {
            // the fork writes with its own key; what it inherits is re-sealed for it below
            keys::create_key(client, &keys::Scope::Context(fork_id), None)?;
        }
        // ... and its working memory as of now.
        static COPY_WORKING_MEMORY: Statement = Statement {
            sql: "INSERT INTO ctx.state (namespace, ns_key, key, value, version)
                  SELECT namespace, ns_key, $1::text, value, 1 FROM ctx.state
                   WHERE tenant = $4 AND ns_key = $3 AND key = $2::text AND version > 0
                     AND (expires_at IS NULL OR expires_at > now())",
            args: &[UUIDOID, UUIDOID, TEXTOID, TEXTOID],
            writes: true,
        };
        if !parent.encrypted {
            let plan = COPY_WORKING_MEMORY.plan(client)?;
            let wm_key = crate::services::state_values::working_memory_key();
            client.update(
                &*plan,
                None,
                &[
                    fork_id.into(),
                    context_id.into(),
                    wm_key.as_str().into(),
                    parent.tenant.as_str().into(),
                ],
            )?;
        }
        if parent.encrypted {
            copy_sealed_summaries(client, context_id, fork_id, at_seq)?;
            crate::services::state_values::reseal_working_memory(client, context_id, fork_id)?;
            return Ok(fork_id);
        }
        let plan = COPY_SUMMARIES.plan(client)?;
        client.update(
            &*plan,
            None,
            &[
                fork_id.into(),
                context_id.into(),
                at_seq.into(),
                parent.tenant.as_str().into(),
            ],
        )?;
        Ok(fork_id)
    })
}

/// The summaries a fork inherits, opened with the parent's key and sealed with the fork's.
fn copy_sealed_summaries(
    client: &mut SpiClient<'_>,
    parent: Uuid,
    fork: Uuid,
    at_seq: i64,
) -> CtxResult<()> {
    let rows: Vec<(i32, i64, Vec<u8>, Value, i32, TimestampWithTimeZone)> = client
        .select(
            "SELECT version, through_seq, content_enc, metadata, tokens, created_at
               FROM ctx.summaries
              WHERE tenant = $3 AND context_id = $1 AND through_seq <= $2
              ORDER BY version",
            None,
            &[
                parent.into(),
                at_seq.into(),
                crate::services::tenant::current()?.into(),
            ],
        )?
        .map(|row| {
            Ok((
                required(row.get(1)?, "version")?,
                required(row.get(2)?, "through_seq")?,
                required(row.get(3)?, "content_enc")?,
                row.get::<JsonB>(4)?.map_or(json!({}), |j| j.0),
                required(row.get(5)?, "tokens")?,
                required(row.get(6)?, "created_at")?,
            ))
        })
        .collect::<CtxResult<_>>()?;
    for (version, through, sealed, metadata, tokens, created_at) in rows {
        let content = open_summary(client, parent, version, &sealed)?;
        insert_summary_version(
            client,
            fork,
            version,
            through,
            &content,
            metadata,
            tokens,
            Some(created_at),
        )?;
    }
    Ok(())
}
