//! Argument checks shared by the SQL functions of several stores.

use std::ops::Deref;

use pgrx::callconv::{Arg, ArgAbi};
use pgrx::datum::Interval;
use pgrx::pg_sys;

use crate::core::namespace;
use crate::error::{required, CtxError, CtxResult, ErrorKind};
use crate::services::embedding_datum;

/// A namespace (or prefix, with `allow_empty`) argument: non-NULL, no NULL label, valid labels.
pub fn namespace_arg(
    value: Option<Vec<Option<String>>>,
    name: &str,
    allow_empty: bool,
) -> CtxResult<Vec<String>> {
    let labels = required(value, name)?
        .into_iter()
        .map(|label| {
            label.ok_or_else(|| {
                CtxError::new(
                    ErrorKind::NullValue,
                    format!("{name} contains a NULL label"),
                )
            })
        })
        .collect::<CtxResult<Vec<String>>>()?;
    namespace::validate(&labels, allow_empty)?;
    Ok(labels)
}

/// A time-to-live must be a positive interval (NULL: never expires).
pub fn check_ttl(ttl: &Option<Interval>) -> CtxResult<()> {
    match ttl {
        Some(t)
            if t.months() < 0
                || t.days() < 0
                || t.micros() < 0
                || (t.months(), t.days(), t.micros()) == (0, 0, 0) =>
        {
            Err(CtxError::invalid("ttl must be a positive interval")
                .with_hint("e.g. ttl => '30 days'"))
        }
        _ => Ok(()),
    }
}

/// A `jsonb` argument, parsed inside the function so that what serde_json cannot represent
/// (nesting deeper than 128 levels, numbers beyond ±1.8e308) is a clear 22023 error instead of
/// a panic in the argument conversion (pgrx's `JsonB` parses before the function runs).
pub struct JsonArg(String);

impl JsonArg {
    pub fn parse(self, name: &str) -> CtxResult<serde_json::Value> {
        serde_json::from_str(&self.0).map_err(|e| {
            let why = e.to_string();
            let why = why.split(" at line").next().unwrap_or(&why).to_string();
            CtxError::invalid(format!("{name} is not JSON ctxstore can use: {why}"))
                .with_hint("keep JSON under 128 levels of nesting and numbers within ±1.8e308")
        })
    }
}

/// A `jsonb` argument or, when NULL, `default`.
pub fn json_or(
    value: Option<JsonArg>,
    name: &str,
    default: serde_json::Value,
) -> CtxResult<serde_json::Value> {
    value.map_or(Ok(default), |v| v.parse(name))
}

impl pgrx::FromDatum for JsonArg {
    unsafe fn from_polymorphic_datum(
        datum: pgrx::pg_sys::Datum,
        is_null: bool,
        _: pgrx::pg_sys::Oid,
    ) -> Option<Self> {
        if is_null {
            return None;
        }
        // SAFETY: a non-NULL jsonb datum, as Postgres passes it (jsonb_out detoasts it); the
        // text form is UTF-8 and is copied before the C string is freed.
        unsafe {
            let cstr = pgrx::direct_function_call::<&core::ffi::CStr>(
                pgrx::pg_sys::jsonb_out,
                &[Some(datum)],
            )?;
            let text = cstr.to_string_lossy().into_owned();
            pgrx::pg_sys::pfree(cstr.as_ptr() as *mut core::ffi::c_void);
            Some(JsonArg(text))
        }
    }
}

/// `ArgAbi` for an argument type unboxed through its `FromDatum`, as pgrx's own `JsonB` is.
macro_rules! arg_from_datum {
    ($type:ty) => {
        // SAFETY: unboxed through `FromDatum`, which reads the datum as the SQL type it is.
        unsafe impl<'fcx> pgrx::callconv::ArgAbi<'fcx> for $type {
            unsafe fn unbox_arg_unchecked(arg: pgrx::callconv::Arg<'_, 'fcx>) -> Self {
                let index = arg.index();
                unsafe {
                    arg.unbox_arg_using_from_datum()
                        .unwrap_or_else(|| panic!("argument {index} must not be null"))
                }
            }

            unsafe fn unbox_nullable_arg(
                arg: pgrx::callconv::Arg<'_, 'fcx>,
            ) -> pgrx::nullable::Nullable<Self> {
                unsafe { arg.unbox_arg_using_from_datum().into() }
            }
        }
    };
}

arg_from_datum!(JsonArg);

// (the SQL type is jsonb, as for pgrx's `JsonB`)
crate::services::stored_json::jsonb_sql_type!(JsonArg);

/// A `jsonb` argument as pgrx's `JsonB` (for code written against it), parse errors as 22023.
pub fn jsonb(value: Option<JsonArg>, name: &str) -> CtxResult<Option<pgrx::JsonB>> {
    value.map(|v| v.parse(name).map(pgrx::JsonB)).transpose()
}

/// A JSON object argument (NULL: `{}`), checked as message/memory metadata.
pub(crate) fn object_or_empty(
    metadata: Option<JsonArg>,
    what: &str,
) -> CtxResult<serde_json::Value> {
    let value = json_or(metadata, what, serde_json::json!({}))?;
    crate::core::conversation::check_metadata(&value, what)?;
    Ok(value)
}

/// A uuid in any spelling Postgres's `uuid` input accepts: 32 hex digits, optionally in braces,
/// with at most one hyphen after each group of four digits (its `string_to_uuid`, rule for rule).
pub(crate) fn parse_uuid(text: &str) -> Option<pgrx::Uuid> {
    let mut src = text.as_bytes();
    let braces = src.first() == Some(&b'{');
    if braces {
        src = &src[1..];
    }
    let mut bytes = [0u8; 16];
    for (i, byte) in bytes.iter_mut().enumerate() {
        let (high, low) = (src.first()?, src.get(1)?);
        if !high.is_ascii_hexdigit() || !low.is_ascii_hexdigit() {
            return None;
        }
        let digit = |c: u8| (c as char).to_digit(16).unwrap_or(0) as u8;
        *byte = digit(*high) << 4 | digit(*low);
        src = &src[2..];
        if src.first() == Some(&b'-') && i % 2 == 1 && i < 15 {
            src = &src[1..];
        }
    }
    if braces {
        src = src.strip_prefix(b"}")?;
    }
    src.is_empty().then(|| pgrx::Uuid::from_bytes(bytes))
}

/// A `ctx.embedding` argument, read in place for the duration of the call.
pub struct EmbeddingRef<'fcx> {
    values: &'fcx [f32],
}

impl Deref for EmbeddingRef<'_> {
    type Target = [f32];
    fn deref(&self) -> &[f32] {
        self.values
    }
}

unsafe impl<'fcx> ArgAbi<'fcx> for EmbeddingRef<'fcx> {
    unsafe fn unbox_arg_unchecked(arg: Arg<'_, 'fcx>) -> Self {
        let datum = unsafe { arg.unbox_arg_using_from_datum::<pg_sys::Datum>() }
            .expect("a strict function's ctx.embedding argument is not NULL");
        match unsafe { embedding_datum::values(datum) } {
            Ok(values) => EmbeddingRef { values },
            Err(e) => e.raise(),
        }
    }
}

pgrx::impl_sql_translatable!(EmbeddingRef<'_>, arg_only = "ctx.embedding");

/// A `ctx.embedding[]` argument, its elements copied out (NULL elements kept as `None`).
pub struct EmbeddingList(pub Vec<Option<Vec<f32>>>);

unsafe impl<'fcx> ArgAbi<'fcx> for EmbeddingList {
    unsafe fn unbox_arg_unchecked(arg: Arg<'_, 'fcx>) -> Self {
        let datum = unsafe { arg.unbox_arg_using_from_datum::<pg_sys::Datum>() }
            .expect("a ctx.embedding[] argument is checked for NULL before it is read");
        match unsafe { embedding_list(datum) } {
            Ok(list) => list,
            Err(e) => e.raise(),
        }
    }
}

pgrx::impl_sql_translatable!(EmbeddingList, arg_only = "ctx.embedding[]");

/// # Safety
/// `datum` must be a non-null array datum.
unsafe fn embedding_list(datum: pg_sys::Datum) -> CtxResult<EmbeddingList> {
    unsafe {
        let array = pg_sys::pg_detoast_datum(datum.cast_mut_ptr()) as *mut pg_sys::ArrayType;
        let element_type = (*array).elemtype;
        if element_type != embedding_datum::type_oid() {
            return Err(
                CtxError::invalid("embeddings must be a ctx.embedding[] array")
                    .with_hint("cast it: $1::ctx.embedding[]"),
            );
        }
        let ndim = (*array).ndim;
        if ndim > 1 {
            return Err(CtxError::invalid(format!(
                "embeddings must be a one-dimensional array, not {ndim}-dimensional"
            ))
            .with_hint("one ctx.embedding per memory: ARRAY[e1, e2, ...]"));
        }
        // (ARR_LBOUND: after the header and the one dimension, read only when there is one (an
        // empty array has neither); embeddings[n] pairs with memories[n - 1] only for an array
        // counted from 1)
        let lower = (ndim == 1).then(|| {
            (array as *const u8)
                .add(std::mem::size_of::<pg_sys::ArrayType>() + 4)
                .cast::<i32>()
                .read_unaligned()
        });
        if let Some(lower) = lower.filter(|&lower| lower != 1) {
            return Err(CtxError::invalid(format!(
                "embeddings must count from 1, not from {lower}"
            ))
            .with_hint("one ctx.embedding per memory: ARRAY[e1, e2, ...]"));
        }
        let mut elements: *mut pg_sys::Datum = std::ptr::null_mut();
        let mut nulls: *mut bool = std::ptr::null_mut();
        let mut count: i32 = 0;
        pg_sys::deconstruct_array(
            array,
            element_type,
            -1,
            false,
            pg_sys::TYPALIGN_INT as std::ffi::c_char,
            &mut elements,
            &mut nulls,
            &mut count,
        );
        let mut list = Vec::with_capacity(count as usize);
        for i in 0..count as usize {
            list.push(if *nulls.add(i) {
                None
            } else {
                Some(embedding_datum::values(*elements.add(i))?.to_vec())
            });
        }
        Ok(EmbeddingList(list))
    }
}

#[cfg(test)]
mod tests {
    use super::parse_uuid;

    #[test]
    fn uuids_as_postgres_prints_them() {
        let canonical = "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11";
        let parsed = parse_uuid(canonical).unwrap();
        assert_eq!(parsed.to_string(), canonical);
        for same in [
            "A0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A11",
            "{a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11}",
            "a0eebc999c0b4ef8bb6d6bb9bd380a11",
            "a0ee-bc99-9c0b-4ef8-bb6d-6bb9-bd38-0a11",
            "{a0eebc99-9c0b4ef8-bb6d6bb9-bd380a11}",
        ] {
            assert_eq!(
                parse_uuid(same).map(|u| u.to_string()).as_deref(),
                Some(canonical)
            );
        }
        for bad in [
            "",
            "a0eebc99",
            "-a0eebc999c0b4ef8bb6d6bb9bd380a11",
            "g0eebc999c0b4ef8bb6d6bb9bd380a11",
            "a0eebc999c0b4ef8bb6d6bb9bd380a1+",
            "+a0eebc999c0b4ef8bb6d6bb9bd380a1",
            // hyphens only after a group of four digits, one at a time, not at the end
            "7-0ce2daa-5a32-4635-a913-e8dd47ea6dbd",
            "a0eebc99--9c0b-4ef8-bb6d-6bb9bd380a11",
            "a0e-ebc99-9c0b-4ef8-bb6d-6bb9bd380a11",
            "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11-",
            "{a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11",
            "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11}",
        ] {
            assert!(parse_uuid(bad).is_none(), "{bad}");
        }
    }
}

/// Whether a `jsonb` argument is a JSON object, read from its root container's header alone:
/// at most the first bytes are detoasted (a large document is not read to learn its kind).
pub struct JsonbIsObject(pub bool);

impl pgrx::FromDatum for JsonbIsObject {
    unsafe fn from_polymorphic_datum(
        datum: pgrx::pg_sys::Datum,
        is_null: bool,
        _: pgrx::pg_sys::Oid,
    ) -> Option<Self> {
        /// the root container's flag for an object (jsonb's JB_FOBJECT)
        const OBJECT: u32 = 0x2000_0000;
        if is_null {
            return None;
        }
        // SAFETY: a non-NULL jsonb datum; the slice is a plain varlena holding the value's
        // first bytes, the root container's 4-byte header first (every jsonb has one).
        unsafe {
            let slice = pgrx::pg_sys::pg_detoast_datum_slice(datum.cast_mut_ptr(), 0, 4);
            let header = std::ptr::read_unaligned(
                (slice as *const u8).add(pgrx::pg_sys::VARHDRSZ) as *const u32
            );
            Some(JsonbIsObject(header & OBJECT != 0))
        }
    }
}

arg_from_datum!(JsonbIsObject);
crate::services::stored_json::jsonb_sql_type!(JsonbIsObject);
