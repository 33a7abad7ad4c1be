//! `ctx.context_seal` / `ctx.context_unseal`: bytes encrypted with an encrypted context's data
//! key. The checkpoint store (src/schema/checkpoints.sql) seals channel values, pending writes
//! and metadata with them; applications can seal their own per-thread data the same way, and
//! `ctx.shred` makes all of it unreadable at once.

use pgrx::prelude::*;
use pgrx::VariadicArray;

use crate::api::raise::OrRaise;
use crate::core::crypto::Key;
use crate::error::{required, CtxError, CtxResult, ErrorKind};
use crate::plans::{first_value, Statement};
use crate::services::keys::{self, Scope};
use crate::services::transaction;
use pgrx::pg_sys::BuiltinOid::{TEXTOID, UUIDOID};
use pgrx::spi::SpiClient;

/// The context must exist for the caller's tenant and be encrypted.
fn encrypted_context_key(client: &SpiClient<'_>, context_id: pgrx::Uuid) -> CtxResult<Key> {
    static ENCRYPTED: Statement = Statement {
        sql: "SELECT encrypted FROM ctx.contexts WHERE id = $1 AND tenant = $2",
        args: &[UUIDOID, TEXTOID],
        writes: false,
    };
    let plan = ENCRYPTED.plan(client)?;
    let encrypted: Option<bool> = first_value(client.select(
        &*plan,
        Some(1),
        &[
            context_id.into(),
            crate::services::tenant::current()?.into(),
        ],
    )?)?;
    match encrypted {
        None => Err(crate::services::context_view::missing_context(
            client, context_id,
        )),
        Some(false) => Err(CtxError::new(
            ErrorKind::WrongState,
            format!("context \"{context_id}\" is not encrypted"),
        )
        .with_hint("create it with ctx.create_context(encrypted => true)")),
        Some(true) => keys::data_key(client, &Scope::Context(context_id)),
    }
}

/// Ciphertext is bound to its context and to the parts of `bound_to` (what the bytes are, e.g.
/// the row's identity, field by field): it opens only with the same context and parts. Each
/// part is length-prefixed, so no two lists of parts bind alike: ("a", "b\u{1f}1") is not
/// ("a\u{1f}b", "1").
fn seal_aad(context_id: pgrx::Uuid, bound_to: &[String]) -> Vec<u8> {
    let mut ids: Vec<&[u8]> = Vec::with_capacity(bound_to.len() + 1);
    ids.push(context_id.as_bytes());
    ids.extend(bound_to.iter().map(|part| part.as_bytes()));
    keys::row_aad("context_seal", &ids)
}

/// The parts of a VARIADIC `bound_to`, none NULL.
fn bound_parts(bound_to: Option<VariadicArray<'_, &str>>) -> CtxResult<Vec<String>> {
    let Some(parts) = bound_to else {
        return Ok(Vec::new());
    };
    parts
        .iter()
        .enumerate()
        .map(|(i, part)| {
            part.map(str::to_owned).ok_or_else(|| {
                CtxError::new(
                    ErrorKind::NullValue,
                    format!("bound_to has a NULL at position {}", i + 1),
                )
                .with_hint("bind ciphertext to text parts, e.g. the row's key columns")
            })
        })
        .collect()
}

/// lz4 + AES-256-GCM of `data` with the data key of the encrypted context `context_id`.
#[pg_extern(volatile, parallel_safe)]
fn context_seal<'a>(
    context_id: Option<pgrx::Uuid>,
    data: Option<&[u8]>,
    bound_to: default!(Option<VariadicArray<'a, &'a str>>, "'{}'"),
) -> Option<Vec<u8>> {
    let context_id = required(context_id, "context_id").or_raise();
    let bound_to = bound_parts(bound_to).or_raise();
    let data = data?;
    crate::services::cluster::colocated(|| {
        Spi::connect(|client| {
            let key = encrypted_context_key(client, context_id)?;
            keys::seal(&key, data, &seal_aad(context_id, &bound_to))
        })
    })
    .map(Some)
    .or_raise()
}

/// The bytes `ctx.context_seal` sealed, given the same context and `bound_to` parts.
#[pg_extern(stable, parallel_safe)]
fn context_unseal<'a>(
    context_id: Option<pgrx::Uuid>,
    sealed: Option<&[u8]>,
    bound_to: default!(Option<VariadicArray<'a, &'a str>>, "'{}'"),
) -> Option<Vec<u8>> {
    let context_id = required(context_id, "context_id").or_raise();
    let bound_to = bound_parts(bound_to).or_raise();
    let sealed = sealed?;
    crate::services::cluster::colocated(|| {
        Spi::connect(|client| {
            let key = encrypted_context_key(client, context_id)?;
            keys::open_bytes(
                &key,
                sealed,
                &seal_aad(context_id, &bound_to),
                &format!("sealed data of context {context_id}"),
            )
        })
    })
    .map(Some)
    .or_raise()
}

/// HMAC-SHA-256 of the parts under this tenant's hashing key (created on first use): a value
/// that must be found again by equality without being stored readable, e.g. the run id of a
/// checkpoint in an encrypted thread. A read-only transaction uses the key that exists (a
/// tenant without one has hashed nothing yet) and refuses to create one (25006).
#[pg_extern(volatile, parallel_unsafe)]
fn keyed_hash<'a>(parts: VariadicArray<'a, &'a str>) -> Vec<u8> {
    let parts = bound_parts(Some(parts)).or_raise();
    crate::services::cluster::colocated(|| {
        Spi::connect_mut(|client| -> CtxResult<Vec<u8>> {
            let key = if transaction::read_only() {
                keys::existing_key(client, &Scope::Hashing)?.ok_or_else(transaction::refusal)?
            } else {
                keys::key_or_create(client, &Scope::Hashing)?
            };
            let bytes: Vec<&[u8]> = parts.iter().map(|p| p.as_bytes()).collect();
            Ok(crate::core::crypto::keyed_hash(&key, b"ctxstore keyed_hash", &bytes).to_vec())
        })
    })
    .or_raise()
}
