//! Stored state values: where a (namespace, key) entry lives, sealing and opening it under its
//! data key, reading it migrated to its schema's latest version, and working memory (the
//! document of a context at ({ctx,working_memory}, context id)). The SQL functions are in
//! `api::state`.

use pgrx::pg_sys::BuiltinOid::*;
use pgrx::spi::SpiClient;
use pgrx::{JsonB, Uuid};
use serde_json::Value;

use crate::core::namespace;
use crate::error::{CtxError, CtxResult, ErrorKind};
use crate::plans::{first_value, Statement};
use crate::services::{context_view, keys, schemas};

/// Working memory of context X is the document at ({ctx,working_memory}, X).
pub(crate) const WORKING_MEMORY_NAMESPACE: [&str; 2] = ["ctx", "working_memory"];

pub(crate) fn working_memory_key() -> String {
    namespace::key(&WORKING_MEMORY_NAMESPACE.map(String::from))
}

/// A validated (namespace, key) address.
pub(crate) struct Address {
    pub labels: Vec<String>,
    pub ns_key: String,
    pub key: String,
}

/// The data key an entry is sealed with: its context's for the working memory of an encrypted
/// context, else its encrypted namespace's; None when it is stored in the clear.
pub(crate) fn sealing_scope(
    client: &SpiClient<'_>,
    at: &Address,
) -> CtxResult<Option<keys::Scope>> {
    if at.ns_key == working_memory_key() {
        static ENCRYPTED: Statement = Statement {
            sql: "SELECT id FROM ctx.contexts
                   WHERE tenant = $2 AND encrypted AND id = CASE WHEN $1 ~ '^[0-9a-f-]{36}$' THEN $1::uuid END",
            args: &[TEXTOID, TEXTOID],
            writes: false,
        };
        let plan = ENCRYPTED.plan(client)?;
        let id: Option<Uuid> = first_value(client.select(
            &*plan,
            Some(1),
            &[
                at.key.as_str().into(),
                crate::services::tenant::current()?.into(),
            ],
        )?)?;
        return Ok(id.map(keys::Scope::Context));
    }
    keys::namespace_scope(client, &at.labels)
}

pub(crate) fn value_aad(at: &Address) -> Vec<u8> {
    // (the data key is per tenant too; the tenant is bound where the key is wrapped)
    keys::row_aad("state.value", &[at.ns_key.as_bytes(), at.key.as_bytes()])
}

/// What to store for `value`: itself, or JSON null and its ciphertext.
pub(crate) fn to_store(
    client: &SpiClient<'_>,
    at: &Address,
    value: Value,
) -> CtxResult<(JsonB, Option<Vec<u8>>)> {
    let Some(scope) = sealing_scope(client, at)? else {
        return Ok((JsonB(value), None));
    };
    let key = keys::data_key(client, &scope)?;
    let bytes = serde_json::to_vec(&value)
        .map_err(|e| CtxError::internal(format!("value serialisation: {e}")))?;
    Ok((
        JsonB(Value::Null),
        Some(keys::seal(&key, &bytes, &value_aad(at))?),
    ))
}

/// A stored value, decrypted when it was sealed.
pub(crate) fn stored_value(
    client: &SpiClient<'_>,
    at: &Address,
    value: Option<JsonB>,
    sealed: Option<Vec<u8>>,
) -> CtxResult<Value> {
    let Some(sealed) = sealed else {
        return Ok(value.map_or(Value::Null, |j| j.0));
    };
    let scope = sealing_scope(client, at)?.ok_or_else(|| {
        CtxError::new(
            ErrorKind::DataCorrupted,
            format!(
                "the value at {:?}/{} is encrypted but its namespace has no key",
                at.labels, at.key
            ),
        )
    })?;
    let key = keys::data_key(client, &scope)?;
    keys::open_json(
        &key,
        &sealed,
        &value_aad(at),
        &format!("the value at {:?}/{}", at.labels, at.key),
    )
}

/// Copies the working memory of an encrypted context to its new fork, re-sealed with the
/// fork's key.
pub(crate) fn reseal_working_memory(
    client: &mut SpiClient<'_>,
    from: Uuid,
    to: Uuid,
) -> CtxResult<()> {
    let source = working_memory_address(client, from)?;
    let Some(document) = read_value(client, &source)? else {
        return Ok(());
    };
    let target = working_memory_address(client, to)?;
    let (value, sealed) = to_store(client, &target, document)?;
    client.update(
        "INSERT INTO ctx.state (namespace, ns_key, key, value, value_enc, version) VALUES ($1, $2, $3, $4, $5, 1)",
        None,
        &[
            target.labels.clone().into(),
            target.ns_key.as_str().into(),
            target.key.as_str().into(),
            value.into(),
            sealed.into(),
        ],
    )?;
    Ok(())
}

pub(crate) fn stored_version(client: &SpiClient<'_>, at: &Address) -> CtxResult<Option<i64>> {
    static VERSION: Statement = Statement {
        sql: "SELECT version FROM ctx.state WHERE tenant = $3 AND ns_key = $1 AND key = $2 AND (expires_at IS NULL OR expires_at > now())",
        args: &[TEXTOID, TEXTOID, TEXTOID],
        writes: false,
    };
    let plan = VERSION.plan(client)?;
    first_value(client.select(
        &*plan,
        Some(1),
        &[
            at.ns_key.as_str().into(),
            at.key.as_str().into(),
            crate::services::tenant::current()?.into(),
        ],
    )?)
}

pub(crate) static GET: Statement = Statement {
    sql: "SELECT value, schema_name, schema_version, value_enc FROM ctx.state
           WHERE tenant = $3 AND ns_key = $1 AND key = $2 AND (expires_at IS NULL OR expires_at > now())",
    args: &[TEXTOID, TEXTOID, TEXTOID],
    writes: false,
};

/// A stored value as its readers see it: migrated to its schema's latest version when it was
/// written under an older one (as far as registered migrations go).
pub(crate) fn read_typed(
    client: &SpiClient<'_>,
    value: Value,
    schema: Option<(String, i32)>,
) -> CtxResult<Value> {
    let Some((name, version)) = schema else {
        return Ok(value);
    };
    if schemas::latest_version(client, &name)? <= version {
        return Ok(value);
    }
    Ok(schemas::migrate(client, &name, version, value)?.0)
}

pub(crate) fn read_value(client: &SpiClient<'_>, at: &Address) -> CtxResult<Option<Value>> {
    let plan = GET.plan(client)?;
    let Some(row) = client
        .select(
            &*plan,
            Some(1),
            &[
                at.ns_key.as_str().into(),
                at.key.as_str().into(),
                crate::services::tenant::current()?.into(),
            ],
        )?
        .next()
    else {
        return Ok(None);
    };
    let value = stored_value(client, at, row.get::<JsonB>(1)?, row.get::<Vec<u8>>(4)?)?;
    let schema = match (row.get::<String>(2)?, row.get::<i32>(3)?) {
        (Some(name), Some(version)) => Some((name, version)),
        _ => None,
    };
    read_typed(client, value, schema).map(Some)
}

pub(crate) fn working_memory_address(
    client: &SpiClient<'_>,
    context_id: Uuid,
) -> CtxResult<Address> {
    static EXISTS: Statement = Statement {
        sql: "SELECT true FROM ctx.contexts WHERE tenant = $2 AND id = $1",
        args: &[UUIDOID, TEXTOID],
        writes: false,
    };
    let plan = EXISTS.plan(client)?;
    if first_value::<bool>(client.select(
        &*plan,
        Some(1),
        &[
            context_id.into(),
            crate::services::tenant::current()?.into(),
        ],
    )?)?
    .is_none()
    {
        return Err(context_view::unknown_context(context_id));
    }
    Ok(Address {
        labels: WORKING_MEMORY_NAMESPACE.map(String::from).to_vec(),
        ns_key: working_memory_key(),
        key: context_id.to_string(),
    })
}
