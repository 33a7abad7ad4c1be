//! How a memory's content and metadata are sealed: under its namespace's data key, bound to
//! the memory's id and column.

use pgrx::Uuid;
use serde_json::Value;

use crate::core::crypto::Key;
use crate::error::{CtxError, CtxResult};
use crate::services::keys;

pub(crate) fn memory_aad(id: Uuid, column: &str) -> Vec<u8> {
    keys::row_aad(column, &[id.as_bytes()])
}

pub(crate) fn seal_json(data_key: &Key, value: &Value, aad: &[u8]) -> CtxResult<Vec<u8>> {
    let bytes = serde_json::to_vec(value)
        .map_err(|e| CtxError::internal(format!("metadata serialisation: {e}")))?;
    keys::seal(data_key, &bytes, aad)
}

/// (content, metadata) ciphertexts of a memory in an encrypted namespace.
pub(crate) fn seal_memory(
    data_key: &Key,
    id: Uuid,
    content: &str,
    metadata: &Value,
) -> CtxResult<(Vec<u8>, Vec<u8>)> {
    Ok((
        keys::seal(
            data_key,
            content.as_bytes(),
            &memory_aad(id, "memories.content"),
        )?,
        seal_json(data_key, metadata, &memory_aad(id, "memories.metadata"))?,
    ))
}

pub(crate) fn open_memory_metadata(data_key: &Key, id: Uuid, sealed: &[u8]) -> CtxResult<Value> {
    keys::open_json(
        data_key,
        sealed,
        &memory_aad(id, "memories.metadata"),
        &format!("the metadata of memory {id}"),
    )
}
