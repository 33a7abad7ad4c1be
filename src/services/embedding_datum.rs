//! `ctx.embedding` datums: pgvector's `vector` layout (varlena header int32, dimension int16,
//! unused int16 = 0, then the float4 values), read in place or built anew.

use pgrx::callconv::{BoxRet, FcInfo};
use pgrx::pg_sys;
use pgrx::prelude::*;

use crate::error::{CtxError, CtxResult, ErrorKind};

/// Bytes before the first value: the varlena length, the dimension, the unused int16.
const HEADER: usize = 8;

/// The OID of `ctx.embedding` (looked up per use: a dropped and re-created extension has a
/// new one, and two syscache probes cost well under a microsecond).
pub fn type_oid() -> pg_sys::Oid {
    unsafe {
        let namespace = pg_sys::get_namespace_oid(c"ctx".as_ptr(), true);
        if namespace == pg_sys::InvalidOid {
            return pg_sys::InvalidOid;
        }
        pg_sys::GetSysCacheOid(
            pg_sys::SysCacheIdentifier::TYPENAMENSP as _,
            pg_sys::Anum_pg_type_oid as _,
            pg_sys::Datum::from(c"embedding".as_ptr()),
            pg_sys::Datum::from(namespace),
            pg_sys::Datum::from(0),
            pg_sys::Datum::from(0),
        )
    }
}

/// The values of a `ctx.embedding` datum, detoasted (a copy only when the stored value was
/// toasted or short-headed), valid while the current memory context lives.
///
/// # Safety
/// `datum` must be a non-null `ctx.embedding` (or pgvector `vector`) datum.
pub unsafe fn values<'a>(datum: pg_sys::Datum) -> CtxResult<&'a [f32]> {
    unsafe {
        let value = pg_sys::pg_detoast_datum(datum.cast_mut_ptr());
        let size = pgrx::varsize_4b(value);
        let bytes = value as *const u8;
        let dims = if size >= HEADER {
            (bytes.add(4) as *const i16).read()
        } else {
            0
        };
        if dims < 1 || size != HEADER + 4 * dims as usize {
            return Err(CtxError::new(
                ErrorKind::DataCorrupted,
                format!("a stored ctx.embedding is malformed: {size} bytes for {dims} dimensions"),
            )
            .with_hint("restore the row from a backup, or set its embedding again"));
        }
        Ok(std::slice::from_raw_parts(
            bytes.add(HEADER) as *const f32,
            dims as usize,
        ))
    }
}

/// A new `ctx.embedding` datum in the current memory context. Every caller checked the length
/// (1..=16,000: the parsers, the casts, `knn::validate`); the int16 dimension cannot hold more.
pub fn new_datum(values: &[f32]) -> pg_sys::Datum {
    assert!(
        (1..=crate::core::embedding_format::MAX_DIMS).contains(&values.len()),
        "a ctx.embedding of {} dimensions",
        values.len()
    );
    let size = HEADER + 4 * values.len();
    unsafe {
        let bytes = pg_sys::palloc(size) as *mut u8;
        pgrx::set_varsize_4b(bytes as *mut pg_sys::varlena, size as i32);
        (bytes.add(4) as *mut i16).write(values.len() as i16);
        (bytes.add(6) as *mut i16).write(0);
        std::ptr::copy_nonoverlapping(values.as_ptr(), bytes.add(HEADER) as *mut f32, values.len());
        pg_sys::Datum::from(bytes)
    }
}

/// An embedding built in Rust: returned from a function, passed to a statement, or read from
/// a result row (a copy).
#[derive(Debug, Clone, PartialEq)]
pub struct Embedding(pub Vec<f32>);

unsafe impl BoxRet for Embedding {
    unsafe fn box_into<'fcx>(self, fcinfo: &mut FcInfo<'fcx>) -> pgrx::datum::Datum<'fcx> {
        unsafe { fcinfo.return_raw_datum(new_datum(&self.0)) }
    }
}

impl IntoDatum for Embedding {
    fn into_datum(self) -> Option<pg_sys::Datum> {
        Some(new_datum(&self.0))
    }
    fn type_oid() -> pg_sys::Oid {
        type_oid()
    }
}

impl FromDatum for Embedding {
    unsafe fn from_polymorphic_datum(
        datum: pg_sys::Datum,
        is_null: bool,
        _typoid: pg_sys::Oid,
    ) -> Option<Self> {
        if is_null {
            return None;
        }
        // a malformed stored value is raised here, where the row is read: FromDatum has no
        // error channel (the one place below the SQL face that raises)
        match unsafe { values(datum) } {
            Ok(values) => Some(Embedding(values.to_vec())),
            Err(e) => e.raise(),
        }
    }
}

pgrx::impl_sql_translatable!(Embedding, "ctx.embedding");
