//! Encryption of the LLM response cache (src/schema/llm_cache.sql): once a tenant calls
//! `ctx.encrypt_cache`, every cached answer is stored sealed with the tenant's cache key,
//! bound to its entry's key (the hash of prompt and model string). The model string stays in
//! the clear: `ctx.cache_clear(llm_string)` selects entries by it.

use pgrx::prelude::*;

use crate::api::raise::OrRaise;
use crate::error::{required, CtxError, CtxResult, ErrorKind};
use crate::plans::first_value;
use crate::services::keys::{self, Scope};
use crate::services::transaction::writing;

fn value_aad(key: &[u8]) -> Vec<u8> {
    keys::row_aad("llm_cache.value", &[key])
}

/// Encrypts this tenant's LLM cache from now on. The cache must be empty: an entry written in
/// the clear would stay readable in old row versions and WAL until they are recycled.
#[pg_extern(volatile, parallel_unsafe)]
fn encrypt_cache() {
    writing(|client| -> CtxResult<()> {
        if keys::existing_key(client, &Scope::Cache)?.is_some() {
            return Err(CtxError::new(
                ErrorKind::DuplicateObject,
                "this tenant's LLM cache is already encrypted",
            ));
        }
        let occupied: Option<bool> = first_value(client.select(
            "SELECT true FROM ctx.llm_cache WHERE tenant = $1 LIMIT 1",
            Some(1),
            &[crate::services::tenant::current()?.into()],
        )?)?;
        if occupied.is_some() {
            return Err(CtxError::new(
                ErrorKind::WrongState,
                "this tenant's LLM cache already holds entries",
            )
            .with_hint("SELECT ctx.cache_clear() empties it (a cache can always be refilled)"));
        }
        keys::create_key(client, &Scope::Cache, None)
    })
    .or_raise()
}

/// The sealed form of a cache entry's value (its jsonb text, sealed as it is: no JSON parsing
/// here, so every value jsonb accepts round-trips), or NULL when the tenant's cache is not
/// encrypted (`ctx.cache_store` keeps the value in the clear then).
#[pg_extern(volatile, parallel_unsafe)]
fn cache_seal(key: Option<&[u8]>, value: Option<&str>) -> Option<Vec<u8>> {
    let key = required(key, "key").or_raise();
    let value = value?;
    crate::services::cluster::colocated(|| {
        Spi::connect(|client| -> CtxResult<Option<Vec<u8>>> {
            let Some(data_key) = keys::existing_key(client, &Scope::Cache)? else {
                return Ok(None);
            };
            keys::seal(&data_key, value.as_bytes(), &value_aad(key)).map(Some)
        })
    })
    .or_raise()
}

/// The jsonb text `ctx.cache_seal` sealed for the entry `key`.
#[pg_extern(stable, parallel_safe)]
fn cache_unseal(key: Option<&[u8]>, sealed: Option<&[u8]>) -> Option<String> {
    let key = required(key, "key").or_raise();
    let sealed = sealed?;
    crate::services::cluster::colocated(|| {
        Spi::connect(|client| -> CtxResult<String> {
            let data_key = keys::existing_key(client, &Scope::Cache)?.ok_or_else(|| {
                CtxError::new(
                    ErrorKind::WrongState,
                    "this tenant's LLM cache is not encrypted: there is nothing to unseal",
                )
                .with_hint("ctx.encrypt_cache() encrypts it")
            })?;
            keys::open_text(&data_key, sealed, &value_aad(key), "a cached LLM answer")
        })
    })
    .map(Some)
    .or_raise()
}
