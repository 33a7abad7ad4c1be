//! Data keys of encrypted contexts and namespaces: created on first use, stored only wrapped by
//! the master key (`ctxstore.master_key` or `ctxstore.master_key_file`, never in a table),
//! cached unwrapped per backend; sealing and opening values under them. The cryptography is in
//! `core::crypto`; the SQL functions (rotation, shredding) in `api::keys`.

use crate::core::metrics::Counter;
use crate::services::metrics;
use std::cell::RefCell;
use std::collections::HashMap;

use pgrx::pg_sys::BuiltinOid::*;
use pgrx::prelude::*;
use pgrx::spi::SpiClient;
use pgrx::Uuid;

use crate::core::crypto::{self, Key, MasterKeys, KEY_LEN, NONCE_LEN};
use crate::core::namespace;
use crate::error::{required, CtxError, CtxResult, ErrorKind};
use crate::gucs;
use crate::plans::Statement;

/// What a data key encrypts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Scope {
    Context(Uuid),
    /// A namespace prefix (its sort key) and everything below it.
    Namespace(String),
    /// The tenant's LLM cache, once `ctx.encrypt_cache` was called.
    Cache,
    /// The tenant's key for keyed hashes of values that must be found but not read (the run ids
    /// of encrypted checkpoint threads).
    Hashing,
}

/// What a data key is bound to when wrapped, and cached under: tenant and scope. Injective
/// because a tenant name never holds U+001F (a CHECK of ctx.data_keys and ctx.tenant_roles).
pub(crate) fn binding(tenant: &str, scope: &str) -> String {
    format!("{tenant}\u{1f}{scope}")
}

impl Scope {
    pub fn name(&self) -> String {
        match self {
            Scope::Context(id) => format!("context:{id}"),
            Scope::Namespace(key) => format!("namespace:{key}"),
            Scope::Cache => "cache".into(),
            Scope::Hashing => "hashing".into(),
        }
    }
}

/// Random bytes from the server's strong source (OpenSSL when built with it).
pub(crate) fn random<const N: usize>() -> CtxResult<[u8; N]> {
    let mut bytes = [0u8; N];
    if !unsafe { pg_sys::pg_strong_random(bytes.as_mut_ptr().cast(), N) } {
        return Err(CtxError::internal(
            "the server's strong random source failed",
        ));
    }
    Ok(bytes)
}

pub(crate) fn nonce() -> CtxResult<[u8; NONCE_LEN]> {
    random()
}

#[derive(Default)]
struct Cache {
    /// The master-key setting the entries were unwrapped under: a change empties the cache.
    spec: String,
    master: Option<MasterKeys>,
    keys: HashMap<String, Key>,
    hits: u64,
    misses: u64,
}

/// Unwrapped data keys kept per backend; bounded, emptied when the master key setting changes
/// and on rotation or shredding in this backend.
const CACHE_CAPACITY: usize = 4096;

thread_local! {
    static CACHE: RefCell<Cache> = RefCell::new(Cache::default());
}

/// What the key cache of this backend holds.
pub(crate) struct CacheStats {
    pub hits: u64,
    pub misses: u64,
    pub entries: usize,
}

pub(crate) fn cache_stats() -> CacheStats {
    CACHE.with(|cache| {
        let cache = cache.borrow();
        CacheStats {
            hits: cache.hits,
            misses: cache.misses,
            entries: cache.keys.len(),
        }
    })
}

pub(crate) fn master_key_spec() -> CtxResult<String> {
    if let Some(spec) = gucs::master_key() {
        return Ok(spec);
    }
    if let Some(path) = gucs::master_key_file() {
        return std::fs::read_to_string(&path).map_err(|e| {
            CtxError::new(
                ErrorKind::WrongState,
                format!("cannot read ctxstore.master_key_file \"{path}\": {e}"),
            )
            .with_hint("the file must be readable by the server's operating-system user")
        });
    }
    Err(CtxError::new(
        ErrorKind::WrongState,
        "encryption needs a master key, and none is configured",
    )
    .with_hint(
        "a superuser sets ctxstore.master_key = 'key_id:<64 hex digits>' (e.g. in postgresql.conf), \
         or ctxstore.master_key_file; openssl rand -hex 32 makes a key",
    ))
}

/// Runs `f` with the master keys, parsed once per setting value.
pub(crate) fn with_master<T>(f: impl FnOnce(&MasterKeys) -> CtxResult<T>) -> CtxResult<T> {
    let spec = master_key_spec()?;
    CACHE.with(|cache| {
        let mut cache = cache.borrow_mut();
        if cache.master.is_none() || cache.spec != spec {
            let parsed = MasterKeys::parse(&spec)?;
            *cache = Cache {
                spec,
                master: Some(parsed),
                hits: cache.hits,
                misses: cache.misses,
                ..Cache::default()
            };
        }
        f(cache.master.as_ref().expect("parsed above"))
    })
}

pub(crate) fn cached(scope: &str) -> CtxResult<Option<Key>> {
    let spec = master_key_spec()?;
    Ok(CACHE.with(|cache| {
        let mut cache = cache.borrow_mut();
        if cache.spec != spec {
            return None;
        }
        let found = cache.keys.get(scope).copied();
        if found.is_some() {
            cache.hits += 1;
            metrics::count(Counter::KeyCacheHits, 1);
        }
        found
    }))
}

pub(crate) fn remember_key(scope: String, key: Key) {
    CACHE.with(|cache| {
        let mut cache = cache.borrow_mut();
        cache.misses += 1;
        metrics::count(Counter::KeyCacheMisses, 1);
        if cache.keys.len() >= CACHE_CAPACITY {
            cache.keys.clear();
        }
        cache.keys.insert(scope, key);
    })
}

pub(crate) fn forget_keys() {
    CACHE.with(|cache| cache.borrow_mut().keys.clear());
}

static LOAD: Statement = Statement {
    sql: "SELECT master_key_id, wrapped, shredded_at IS NOT NULL FROM ctx.data_keys
           WHERE tenant = $2 AND scope = $1",
    args: &[TEXTOID, TEXTOID],
    writes: false,
};

/// The data key of `scope`, which must exist.
pub(crate) fn data_key(client: &SpiClient<'_>, scope: &Scope) -> CtxResult<Key> {
    let name = scope.name();
    let tenant = crate::services::tenant::current()?;
    let bound = binding(&tenant, &name);
    if let Some(key) = cached(&bound)? {
        return Ok(key);
    }
    let plan = LOAD.plan(client)?;
    let mut table = client.select(
        &*plan,
        Some(1),
        &[name.as_str().into(), tenant.as_str().into()],
    )?;
    let row = table.next().ok_or_else(|| {
        CtxError::new(
            ErrorKind::DataCorrupted,
            format!("the data key of {name} is missing"),
        )
        .with_hint("ctx.data_keys lost a row: restore it from a backup")
    })?;
    if row.get::<bool>(3)?.unwrap_or(false) {
        return Err(shredded(&name));
    }
    let key_id: String = required(row.get(1)?, "master_key_id")?;
    let wrapped: Vec<u8> = required(row.get(2)?, "wrapped")?;
    let key =
        with_master(|master| crypto::unwrap_key(master.get(&key_id)?, &wrapped, bound.as_bytes()))?;
    remember_key(bound, key);
    Ok(key)
}

pub(crate) fn shredded(scope: &str) -> CtxError {
    CtxError::new(
        ErrorKind::WrongState,
        format!("{scope} was shredded: its data can never be read again"),
    )
}

/// The data key of `scope` if the tenant has one (None: the scope is not encrypted).
pub(crate) fn existing_key(client: &SpiClient<'_>, scope: &Scope) -> CtxResult<Option<Key>> {
    static EXISTS: Statement = Statement {
        sql: "SELECT true FROM ctx.data_keys WHERE tenant = $2 AND scope = $1",
        args: &[TEXTOID, TEXTOID],
        writes: false,
    };
    // (asked of the table first: a tenant without the key needs no master key)
    let name = scope.name();
    let plan = EXISTS.plan(client)?;
    let found: Option<bool> = crate::plans::first_value(client.select(
        &*plan,
        Some(1),
        &[
            name.as_str().into(),
            crate::services::tenant::current()?.into(),
        ],
    )?)?;
    match found {
        None => Ok(None),
        Some(_) => data_key(client, scope).map(Some),
    }
}

/// The data key of `scope`, created when the tenant has none yet (two sessions creating it at
/// once: the second waits for the first and takes its key).
pub(crate) fn key_or_create(client: &mut SpiClient<'_>, scope: &Scope) -> CtxResult<Key> {
    if let Some(key) = existing_key(client, scope)? {
        return Ok(key);
    }
    let name = scope.name();
    let tenant_name = crate::services::tenant::current()?;
    client.update(
        "SELECT pg_catalog.pg_advisory_xact_lock(pg_catalog.hashtextextended(
                    'ctxstore.data_key:' || length($1) || ':' || $1 || $2, 0))",
        None,
        &[tenant_name.as_str().into(), name.as_str().into()],
    )?;
    match existing_key(client, scope)? {
        Some(key) => Ok(key),
        None => {
            create_key(client, scope, None)?;
            data_key(client, scope)
        }
    }
}

/// Creates the data key of a new encrypted scope (wrapped with the current master key).
pub(crate) fn create_key(
    client: &mut SpiClient<'_>,
    scope: &Scope,
    labels: Option<&[String]>,
) -> CtxResult<()> {
    static INSERT: Statement = Statement {
        sql: "INSERT INTO ctx.data_keys (scope, namespace, master_key_id, wrapped) VALUES ($1, $2, $3, $4)",
        args: &[TEXTOID, TEXTARRAYOID, TEXTOID, BYTEAOID],
        writes: true,
    };
    let name = scope.name();
    let bound = binding(&crate::services::tenant::current()?, &name);
    let data_key: Key = random::<KEY_LEN>()?;
    let nonce = nonce()?;
    let (key_id, wrapped) = with_master(|master| {
        let (id, kek) = master.current();
        Ok((
            id.to_string(),
            crypto::wrap_key(kek, nonce, &data_key, bound.as_bytes()),
        ))
    })?;
    let plan = INSERT.plan(client)?;
    client.update(
        &*plan,
        None,
        &[
            name.as_str().into(),
            labels.map(<[String]>::to_vec).into(),
            key_id.into(),
            wrapped.into(),
        ],
    )?;
    remember_key(bound, data_key);
    Ok(())
}

/// The encrypted namespace prefix `labels` falls under (the nearest), if any.
pub(crate) fn namespace_scope(
    client: &SpiClient<'_>,
    labels: &[String],
) -> CtxResult<Option<Scope>> {
    static NEAREST: Statement = Statement {
        sql: "SELECT scope, shredded_at IS NOT NULL FROM ctx.data_keys
               WHERE tenant = $2 AND scope = ANY($1)
               ORDER BY length(scope) DESC LIMIT 1",
        args: &[TEXTARRAYOID, TEXTOID],
        writes: false,
    };
    let scopes: Vec<String> = (1..=labels.len())
        .map(|n| Scope::Namespace(namespace::key(&labels[..n])).name())
        .collect();
    let plan = NEAREST.plan(client)?;
    let mut table = client.select(
        &*plan,
        Some(1),
        &[scopes.into(), crate::services::tenant::current()?.into()],
    )?;
    let Some(row) = table.next() else {
        return Ok(None);
    };
    let name: String = required(row.get(1)?, "scope")?;
    if row.get::<bool>(2)?.unwrap_or(false) {
        return Err(shredded(&name));
    }
    Ok(Some(Scope::Namespace(
        name.trim_start_matches("namespace:").to_string(),
    )))
}

/// Destroys the data key of `scope` (keeping a tombstone), so its ciphertext can never be read.
pub(crate) fn destroy_key(client: &mut SpiClient<'_>, scope: &Scope) -> CtxResult<bool> {
    let table = client.update(
        "UPDATE ctx.data_keys SET wrapped = NULL, master_key_id = NULL, shredded_at = now()
          WHERE tenant = $2 AND scope = $1 AND wrapped IS NOT NULL RETURNING 1",
        Some(1),
        &[
            scope.name().into(),
            crate::services::tenant::current()?.into(),
        ],
    )?;
    forget_keys();
    Ok(!table.is_empty())
}

/// Associated data of a stored value: the table and column, then the row's identity.
pub(crate) fn row_aad(column: &str, ids: &[&[u8]]) -> Vec<u8> {
    let mut parts: Vec<&[u8]> = vec![b"ctxstore", column.as_bytes()];
    parts.extend_from_slice(ids);
    crypto::aad(&parts)
}

pub(crate) fn seal(key: &Key, plaintext: &[u8], aad: &[u8]) -> CtxResult<Vec<u8>> {
    let sealed = crypto::seal(key, nonce()?, plaintext, aad);
    metrics::count(Counter::Encryptions, 1);
    if crypto::is_compressed(&sealed) {
        metrics::count(Counter::BytesBeforeCompression, plaintext.len() as u64);
        let stored = sealed.len().saturating_sub(crypto::SEAL_OVERHEAD);
        metrics::count(Counter::BytesAfterCompression, stored as u64);
    }
    Ok(sealed)
}

pub(crate) fn open_bytes(key: &Key, sealed: &[u8], aad: &[u8], what: &str) -> CtxResult<Vec<u8>> {
    let bytes = crypto::open(key, sealed, aad, what)?;
    metrics::count(Counter::Decryptions, 1);
    Ok(bytes)
}

pub(crate) fn open_text(key: &Key, sealed: &[u8], aad: &[u8], what: &str) -> CtxResult<String> {
    let bytes = crypto::open(key, sealed, aad, what)?;
    metrics::count(Counter::Decryptions, 1);
    String::from_utf8(bytes).map_err(|_| {
        CtxError::new(
            ErrorKind::DataCorrupted,
            format!("{what} decrypted to invalid UTF-8"),
        )
    })
}

pub(crate) fn open_json(
    key: &Key,
    sealed: &[u8],
    aad: &[u8],
    what: &str,
) -> CtxResult<serde_json::Value> {
    let bytes = crypto::open(key, sealed, aad, what)?;
    metrics::count(Counter::Decryptions, 1);
    serde_json::from_slice(&bytes).map_err(|_| {
        CtxError::new(
            ErrorKind::DataCorrupted,
            format!("{what} decrypted to invalid JSON"),
        )
    })
}

/// A random (version 4) UUID's bytes, for rows whose ciphertext is bound to their id.
pub(crate) fn random_id() -> CtxResult<[u8; 16]> {
    let mut bytes: [u8; 16] = random()?;
    bytes[6] = (bytes[6] & 0x0f) | 0x40;
    bytes[8] = (bytes[8] & 0x3f) | 0x80;
    Ok(bytes)
}
