//! The SQL functions of encryption keys: marking a namespace encrypted, master-key rotation,
//! crypto-shredding, the key cache's statistics. Data keys themselves (creation, caching,
//! sealing) are in `services::keys`.

use pgrx::prelude::*;
use pgrx::Uuid;

use crate::api::raise::OrRaise;
use crate::core::{crypto, namespace};
use crate::error::{required, CtxError, CtxResult, ErrorKind};
use crate::services::context_view::missing_context;
use crate::services::keys::*;
use crate::services::transaction::writing;

/// Marks a namespace (and everything below it) encrypted: new memories and state there are
/// stored encrypted with its own data key. It must not hold data yet.
#[pg_extern(volatile, parallel_unsafe)]
fn encrypt_namespace(namespace: Option<Vec<Option<String>>>) {
    let labels = crate::api::args::namespace_arg(namespace, "namespace", false).or_raise();
    let key = namespace::key(&labels);
    writing(|client| -> CtxResult<()> {
        if namespace_scope(client, &labels)?.is_some() {
            return Err(CtxError::new(
                ErrorKind::DuplicateObject,
                format!("namespace {labels:?} is already encrypted (or lies under an encrypted one)"),
            ));
        }
        let (lo, hi) = namespace::descendants_range(&labels);
        let occupied: Option<bool> = crate::plans::first_value(client.select(
            "SELECT true WHERE EXISTS (SELECT 1 FROM ctx.memories WHERE tenant = $3
                                          AND ns_key >= $1 AND ($2::text IS NULL OR ns_key < $2))
                         OR EXISTS (SELECT 1 FROM ctx.state WHERE tenant = $3
                                          AND ns_key >= $1 AND ($2::text IS NULL OR ns_key < $2))",
            Some(1),
            &[lo.into(), hi.into(), crate::services::tenant::current()?.into()],
        )?)?;
        if occupied.is_some() {
            return Err(CtxError::new(
                ErrorKind::WrongState,
                format!("namespace {labels:?} already holds memories or state"),
            )
            .with_hint("encrypt a namespace before writing to it, or move its data to a new encrypted namespace"));
        }
        create_key(client, &Scope::Namespace(key), Some(&labels))
    })
    .or_raise()
}

/// Re-wraps every data key of this tenant (all of them for a role that bypasses row-level
/// security) with master key `new_key_id`, which must be configured; the data is not touched.
/// Returns how many keys were re-wrapped.
#[pg_extern(volatile, parallel_unsafe)]
fn rotate_master_key(new_key_id: Option<&str>) -> i64 {
    let new_key_id = required(new_key_id, "new_key_id").or_raise();
    writing(|client| -> CtxResult<i64> {
        let rows: Vec<(String, String, String, Vec<u8>)> = client
            .update(
                "SELECT tenant, scope, master_key_id, wrapped FROM ctx.data_keys
                  WHERE wrapped IS NOT NULL AND master_key_id <> $1 FOR UPDATE",
                None,
                &[new_key_id.into()],
            )?
            .map(|row| {
                Ok((
                    required(row.get(1)?, "tenant")?,
                    required(row.get(2)?, "scope")?,
                    required(row.get(3)?, "master_key_id")?,
                    required(row.get(4)?, "wrapped")?,
                ))
            })
            .collect::<CtxResult<_>>()?;
        let rewrapped = with_master(|master| {
            let new_kek = master.get(new_key_id)?;
            rows.iter()
                .map(|(tenant, scope, old_id, wrapped)| {
                    let bound = binding(tenant, scope);
                    let data_key =
                        crypto::unwrap_key(master.get(old_id)?, wrapped, bound.as_bytes())?;
                    Ok((
                        tenant.clone(),
                        scope.clone(),
                        crypto::wrap_key(new_kek, nonce()?, &data_key, bound.as_bytes()),
                    ))
                })
                .collect::<CtxResult<Vec<_>>>()
        })?;
        for (tenant, scope, wrapped) in &rewrapped {
            client.update(
                "UPDATE ctx.data_keys SET master_key_id = $3, wrapped = $4, rotated_at = now()
                  WHERE tenant = $1 AND scope = $2",
                None,
                &[
                    tenant.as_str().into(),
                    scope.as_str().into(),
                    new_key_id.into(),
                    wrapped.clone().into(),
                ],
            )?;
        }
        forget_keys();
        Ok(rewrapped.len() as i64)
    })
    .or_raise()
}

/// Crypto-shreds an encrypted context: destroys its data key (and its forks' with `cascade`),
/// then deletes the rows. Reading it afterwards says it was shredded.
#[pg_extern(volatile, parallel_unsafe)]
fn shred(context_id: Option<Uuid>, cascade: default!(Option<bool>, false)) -> i64 {
    let context_id = required(context_id, "context_id").or_raise();
    let cascade = cascade.unwrap_or(false);
    writing(|client| -> CtxResult<i64> {
        let encrypted: Option<bool> = crate::plans::first_value(client.update(
            "SELECT encrypted FROM ctx.contexts WHERE tenant = $2 AND id = $1 FOR UPDATE",
            Some(1),
            &[context_id.into(), crate::services::tenant::current()?.into()],
        )?)?;
        match encrypted {
            None => return Err(missing_context(client, context_id)),
            Some(false) => {
                return Err(CtxError::new(
                    ErrorKind::WrongState,
                    format!("context \"{context_id}\" is not encrypted: there is no key to shred"),
                )
                .with_hint("ctx.delete_context() deletes it; create contexts with encrypted => true to be able to shred them"))
            }
            Some(true) => {}
        }
        let forks: Vec<Uuid> = client
            .select(
                "SELECT id FROM ctx.contexts WHERE tenant = $2 AND ancestors @> ARRAY[$1]",
                None,
                &[context_id.into(), crate::services::tenant::current()?.into()],
            )?
            .map(|row| required(row.get::<Uuid>(1)?, "id"))
            .collect::<CtxResult<_>>()?;
        if !forks.is_empty() && !cascade {
            return Err(CtxError::new(
                ErrorKind::DependentObjects,
                format!("context \"{context_id}\" has {} fork(s) that read its messages", forks.len()),
            )
            .with_hint("pass cascade => true to shred the forks too"));
        }
        for id in std::iter::once(context_id).chain(forks.iter().copied()) {
            destroy_key(client, &Scope::Context(id))?;
        }
        crate::services::context_deletion::delete_rows(client, context_id, cascade, false)
    })
    .or_raise()
}

/// Crypto-shreds an encrypted namespace: destroys its data key, then deletes its memories and
/// state (everything below it too).
#[pg_extern(volatile, parallel_unsafe)]
fn shred_namespace(namespace: Option<Vec<Option<String>>>) -> i64 {
    let labels = crate::api::args::namespace_arg(namespace, "namespace", false).or_raise();
    let scope = Scope::Namespace(namespace::key(&labels));
    writing(|client| -> CtxResult<i64> {
        if !destroy_key(client, &scope)? {
            return Err(CtxError::new(
                ErrorKind::WrongState,
                format!("namespace {labels:?} is not an encrypted namespace (or was already shredded)"),
            )
            .with_hint("ctx.forget() deletes memories; ctx.encrypt_namespace() makes a namespace shreddable"));
        }
        let (lo, hi) = namespace::descendants_range(&labels);
        let memories = client.update(
            "DELETE FROM ctx.memories WHERE tenant = $3
                AND ns_key >= $1 AND ($2::text IS NULL OR ns_key < $2)",
            None,
            &[lo.clone().into(), hi.clone().into(), crate::services::tenant::current()?.into()],
        )?;
        let removed = memories.len() as i64;
        let state = client.update(
            "DELETE FROM ctx.state WHERE tenant = $3
                AND ns_key >= $1 AND ($2::text IS NULL OR ns_key < $2)",
            None,
            &[lo.into(), hi.into(), crate::services::tenant::current()?.into()],
        )?;
        Ok(removed + state.len() as i64)
    })
    .or_raise()
}

/// This backend's data-key cache: hits, misses (keys unwrapped) and entries.
#[pg_extern(volatile, parallel_unsafe)]
fn key_cache_stats(
) -> TableIterator<'static, (name!(hits, i64), name!(misses, i64), name!(entries, i32))> {
    let stats = cache_stats();
    TableIterator::once((stats.hits as i64, stats.misses as i64, stats.entries as i32))
}
