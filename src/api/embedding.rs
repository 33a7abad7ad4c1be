//! `ctx.embedding`: the type memories store their embeddings in. Its bytes are pgvector's
//! `vector`'s, so with pgvector installed a cast without a function lets an HNSW index read
//! the stored value as it is, and without pgvector the exact kernels read it in place.

use std::ffi::CStr;

use pgrx::array::RawArray;
use pgrx::datum::Internal;
use pgrx::pg_sys;
use pgrx::prelude::*;

use super::args::EmbeddingRef;
use super::raise::OrRaise;
use crate::core::embedding_format as format;
use crate::error::{CtxError, CtxResult, ErrorKind};
use crate::services::embedding_datum::Embedding;

extension_sql!(
    "-- the shell, so that the I/O functions can name the type\nCREATE TYPE ctx.embedding;\n",
    name = "embedding_shell"
);

/// Text input: `'[0.1,0.2]'` (pgvector's form) or `'{0.1,0.2}'` (a `real[]` literal).
#[pg_extern(immutable, strict, parallel_safe, requires = ["embedding_shell"])]
fn embedding_in(input: &CStr, _type_oid: pg_sys::Oid, typmod: i32) -> Embedding {
    (|| -> CtxResult<Embedding> {
        let text = input.to_str().map_err(|_| {
            CtxError::new(
                ErrorKind::InvalidTextRepresentation,
                "embedding text is not UTF-8",
            )
        })?;
        let values = format::parse(text)?;
        format::check_typmod(typmod, values.len())?;
        Ok(Embedding(values))
    })()
    .or_raise()
}

/// Text output: `[0.1,0.2]`, shortest decimals that read back to the same bits.
#[pg_extern(immutable, strict, parallel_safe, requires = ["embedding_shell"])]
fn embedding_out(embedding: EmbeddingRef<'_>) -> &'static CStr {
    let text = format::format(&embedding);
    unsafe {
        let bytes = pg_sys::palloc(text.len() + 1) as *mut u8;
        std::ptr::copy_nonoverlapping(text.as_ptr(), bytes, text.len());
        bytes.add(text.len()).write(0);
        CStr::from_ptr(bytes as *const std::ffi::c_char)
    }
}

/// `ctx.embedding(n)`: the dimension every value must have.
#[pg_extern(immutable, strict, parallel_safe, requires = ["embedding_shell"])]
fn embedding_typmod_in(modifiers: pgrx::Array<'_, &CStr>) -> i32 {
    let texts = modifiers
        .iter()
        .map(|m| m.and_then(|m| m.to_str().ok()).unwrap_or(""))
        .collect::<Vec<&str>>();
    format::typmod(&texts).or_raise()
}

/// Binary input (the binary protocol, `COPY … BINARY`): pgvector's binary form.
#[pg_extern(immutable, strict, parallel_safe, requires = ["embedding_shell"])]
fn embedding_recv(mut buffer: Internal, _type_oid: pg_sys::Oid, typmod: i32) -> Embedding {
    (|| -> CtxResult<Embedding> {
        let message = unsafe { buffer.get_mut::<pg_sys::StringInfoData>() }
            .ok_or_else(|| CtxError::internal("embedding_recv without a buffer"))?;
        let start = message.cursor as usize;
        let end = message.len as usize;
        let bytes = unsafe {
            std::slice::from_raw_parts((message.data as *const u8).add(start), end - start)
        };
        let values = format::decode(bytes, typmod)?;
        message.cursor = message.len;
        Ok(Embedding(values))
    })()
    .or_raise()
}

/// Binary output: pgvector's binary form.
#[pg_extern(immutable, strict, parallel_safe, requires = ["embedding_shell"])]
fn embedding_send(embedding: EmbeddingRef<'_>) -> Vec<u8> {
    format::encode(&embedding)
}

extension_sql!(
    r#"
CREATE TYPE ctx.embedding (
    INPUT = ctx.embedding_in,
    OUTPUT = ctx.embedding_out,
    TYPMOD_IN = ctx.embedding_typmod_in,
    RECEIVE = ctx.embedding_recv,
    SEND = ctx.embedding_send,
    INTERNALLENGTH = VARIABLE,
    ALIGNMENT = int4,
    STORAGE = external
);
COMMENT ON TYPE ctx.embedding IS 'A memory''s embedding: float4 values in pgvector''s vector layout';
"#,
    name = "embedding_type",
    requires = [
        "embedding_shell",
        embedding_in,
        embedding_out,
        embedding_typmod_in,
        embedding_recv,
        embedding_send
    ]
);

/// The length coercion of `ctx.embedding(n)`: the value itself, once its dimension is checked.
#[pg_extern(immutable, strict, parallel_safe, name = "embedding", requires = ["embedding_type"])]
fn embedding_with_typmod(embedding: EmbeddingRef<'_>, typmod: i32, _explicit: bool) -> Embedding {
    format::check_typmod(typmod, embedding.len()).or_raise();
    Embedding(embedding.to_vec())
}

/// The elements of a cast's array: one-dimensional, without NULLs (pgvector's rules).
fn array_elements<T: Copy>(values: pgrx::Array<'_, T>) -> CtxResult<Vec<T>> {
    // SAFETY: the argument came from an ArrayType datum, detoasted by its unboxing
    let mut raw = unsafe { RawArray::from_array(values) }
        .ok_or_else(|| CtxError::internal("an array argument without its ArrayType"))?;
    if raw.dims().len() > 1 {
        return Err(CtxError::new(ErrorKind::DataException, "array must be 1-D")
            .with_hint("an embedding is a flat list of numbers"));
    }
    if unsafe { raw.any_nulls() } {
        return Err(
            CtxError::new(ErrorKind::NullValue, "array must not contain nulls")
                .with_hint("embeddings must not contain NULL elements"),
        );
    }
    // SAFETY: a NULL-free array of this element type: its data is the values, aligned
    Ok(unsafe { raw.data::<T>().as_ref() }.to_vec())
}

fn embedding_of(values: Vec<f32>, typmod: i32) -> CtxResult<Embedding> {
    format::check_dims(values.len())?;
    values.iter().try_for_each(|v| format::check_element(*v))?;
    format::check_typmod(typmod, values.len())?;
    Ok(Embedding(values))
}

/// `real[]` → `ctx.embedding` (the cast; the array must be one-dimensional without NULLs).
#[pg_extern(immutable, strict, parallel_safe, name = "embedding", requires = ["embedding_type"])]
fn embedding_from_real_array(
    values: pgrx::Array<'_, f32>,
    typmod: i32,
    _explicit: bool,
) -> Embedding {
    array_elements(values)
        .and_then(|values| embedding_of(values, typmod))
        .or_raise()
}

/// `double precision[]` → `ctx.embedding` (each value rounded to float4).
#[pg_extern(immutable, strict, parallel_safe, name = "embedding", requires = ["embedding_type"])]
fn embedding_from_double_array(
    values: pgrx::Array<'_, f64>,
    typmod: i32,
    _explicit: bool,
) -> Embedding {
    // (a value beyond float4 rounds to an infinity, refused as pgvector refuses it)
    array_elements(values)
        .and_then(|values| embedding_of(values.into_iter().map(|v| v as f32).collect(), typmod))
        .or_raise()
}

/// `ctx.embedding` → `real[]`.
#[pg_extern(immutable, strict, parallel_safe, requires = ["embedding_type"])]
fn embedding_to_array(embedding: EmbeddingRef<'_>) -> Vec<f32> {
    embedding.to_vec()
}

/// The number of dimensions of an embedding.
#[pg_extern(immutable, strict, parallel_safe, requires = ["embedding_type"])]
fn embedding_dims(embedding: EmbeddingRef<'_>) -> i32 {
    embedding.len() as i32
}

extension_sql!(
    r#"
CREATE CAST (ctx.embedding AS ctx.embedding)
    WITH FUNCTION ctx.embedding(ctx.embedding, integer, boolean) AS IMPLICIT;
CREATE CAST (real[] AS ctx.embedding)
    WITH FUNCTION ctx.embedding(real[], integer, boolean) AS IMPLICIT;
CREATE CAST (double precision[] AS ctx.embedding)
    WITH FUNCTION ctx.embedding(double precision[], integer, boolean) AS ASSIGNMENT;
CREATE CAST (ctx.embedding AS real[])
    WITH FUNCTION ctx.embedding_to_array(ctx.embedding) AS IMPLICIT;

"#,
    name = "embedding_casts",
    requires = [
        "embedding_type",
        embedding_with_typmod,
        embedding_from_real_array,
        embedding_from_double_array,
        embedding_to_array
    ]
);
