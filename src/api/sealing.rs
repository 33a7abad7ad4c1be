//! `ctx.context_seal` / `ctx.context_unseal`: bytes encrypted with an encrypted context's data
//! key. The checkpoint store (src/schema/checkpoints.sql) seals channel values, pending writes
//! and metadata with them; applications can seal their own per-thread data the same way, and
//! `ctx.shred` makes all of it unreadable at once.

use pgrx::prelude::*;

use crate::api::keys::{self, Scope};
use crate::core::crypto::Key;
use crate::error::{required, CtxError, CtxResult, ErrorKind, OrRaise};
use crate::plans::{first_value, Statement};
use pgrx::pg_sys::BuiltinOid::UUIDOID;
use pgrx::spi::SpiClient;

/// The context must exist for the caller's tenant and be encrypted.
fn encrypted_context_key(client: &SpiClient<'_>, context_id: pgrx::Uuid) -> CtxResult<Key> {
    static ENCRYPTED: Statement = Statement {
        sql: "SELECT encrypted FROM ctx.contexts WHERE id = $1 AND tenant = ctx.current_tenant()",
        args: &[UUIDOID],
        writes: false,
    };
    let plan = ENCRYPTED.plan(client)?;
    let encrypted: Option<bool> =
        first_value(client.select(&*plan, Some(1), &[context_id.into()])?)?;
    match encrypted {
        None => Err(keys::missing_context(client, context_id)),
        Some(false) => Err(CtxError::new(
            ErrorKind::WrongState,
            format!("context \"{context_id}\" is not encrypted"),
        )
        .with_hint("create it with ctx.create_context(encrypted => true)")),
        Some(true) => keys::data_key(client, &Scope::Context(context_id)),
    }
}

/// Ciphertext is bound to its context and to `bound_to` (what the bytes are, e.g. the row's
/// identity): it opens only with the same pair.
fn seal_aad(context_id: pgrx::Uuid, bound_to: &str) -> Vec<u8> {
    keys::row_aad(
        "context_seal",
        &[context_id.as_bytes(), bound_to.as_bytes()],
    )
}

/// lz4 + AES-256-GCM of `data` with the data key of the encrypted context `context_id`.
#[pg_extern(volatile, parallel_safe)]
fn context_seal(
    context_id: Option<pgrx::Uuid>,
    data: Option<&[u8]>,
    bound_to: default!(Option<&str>, "''"),
) -> Option<Vec<u8>> {
    let context_id = required(context_id, "context_id").or_raise();
    let bound_to = required(bound_to, "bound_to").or_raise();
    let data = data?;
    Spi::connect(|client| {
        let key = encrypted_context_key(client, context_id)?;
        keys::seal(&key, data, &seal_aad(context_id, bound_to))
    })
    .map(Some)
    .or_raise()
}

/// The bytes `ctx.context_seal` sealed, given the same context and `bound_to`.
#[pg_extern(stable, parallel_safe)]
fn context_unseal(
    context_id: Option<pgrx::Uuid>,
    sealed: Option<&[u8]>,
    bound_to: default!(Option<&str>, "''"),
) -> Option<Vec<u8>> {
    let context_id = required(context_id, "context_id").or_raise();
    let bound_to = required(bound_to, "bound_to").or_raise();
    let sealed = sealed?;
    Spi::connect(|client| {
        let key = encrypted_context_key(client, context_id)?;
        keys::open_bytes(
            &key,
            sealed,
            &seal_aad(context_id, bound_to),
            &format!("sealed data of context {context_id}"),
        )
    })
    .map(Some)
    .or_raise()
}
