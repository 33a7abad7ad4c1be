//! Row metadata as read: the stored `jsonb` kept as its bytes and handed back as they are, so
//! a window returns what is stored without parsing and re-serialising each row's document;
//! parsed only when something reads into it (a processor, context assembly, an edit).

use pgrx::pg_sys;
use pgrx::prelude::*;
use serde_json::Value;

/// A detoasted `jsonb` datum's bytes (its varlena header included), owned by Rust.
#[derive(Clone, Debug)]
pub(crate) struct StoredJsonb(Vec<u8>);

impl StoredJsonb {
    /// A palloc'd copy in the current memory context, as a datum (jsonb needs 4-byte alignment,
    /// which palloc gives and a `Vec<u8>` does not).
    fn datum(&self) -> pg_sys::Datum {
        // SAFETY: the copy has the bytes' length, and the bytes are a whole varlena value.
        unsafe {
            let copy = pg_sys::palloc(self.0.len()) as *mut u8;
            std::ptr::copy_nonoverlapping(self.0.as_ptr(), copy, self.0.len());
            pg_sys::Datum::from(copy)
        }
    }

    fn value(&self) -> Value {
        // SAFETY: the datum is a valid jsonb value (it was read as one).
        unsafe { pgrx::JsonB::from_datum(self.datum(), false) }.map_or(Value::Null, |j| j.0)
    }
}

impl FromDatum for StoredJsonb {
    unsafe fn from_polymorphic_datum(
        datum: pg_sys::Datum,
        is_null: bool,
        _typoid: pg_sys::Oid,
    ) -> Option<Self> {
        if is_null {
            return None;
        }
        // SAFETY: a non-null jsonb datum; detoasting gives a plain varlena of VARSIZE bytes.
        unsafe {
            let value = pg_sys::pg_detoast_datum(datum.cast_mut_ptr());
            let len = pgrx::varsize_any(value);
            Some(StoredJsonb(
                std::slice::from_raw_parts(value as *const u8, len).to_vec(),
            ))
        }
    }
}

impl IntoDatum for StoredJsonb {
    fn into_datum(self) -> Option<pg_sys::Datum> {
        Some(self.datum())
    }

    fn type_oid() -> pg_sys::Oid {
        pg_sys::JSONBOID
    }
}

/// A row's metadata: as stored, or a JSON value (opened from a sealed row, changed by a
/// processor, or made here).
#[derive(Clone, Debug)]
pub(crate) enum Metadata {
    Stored(StoredJsonb),
    Value(Value),
}

impl Metadata {
    pub(crate) fn into_value(self) -> Value {
        match self {
            Metadata::Stored(stored) => stored.value(),
            Metadata::Value(value) => value,
        }
    }
}

impl From<Value> for Metadata {
    fn from(value: Value) -> Self {
        Metadata::Value(value)
    }
}

/// `SqlTranslatable` for a Rust type that pgrx passes as SQL `jsonb` (an argument or a result).
macro_rules! jsonb_sql_type {
    ($type:ty) => {
        // SAFETY: the SQL type is jsonb, which the type's datums are.
        unsafe impl pgrx::pgrx_sql_entity_graph::metadata::SqlTranslatable for $type {
            const TYPE_IDENT: &'static str = pgrx::pgrx_resolved_type!($type);
            const TYPE_ORIGIN: pgrx::pgrx_sql_entity_graph::metadata::TypeOrigin =
                pgrx::pgrx_sql_entity_graph::metadata::TypeOrigin::External;
            const ARGUMENT_SQL: Result<
                pgrx::pgrx_sql_entity_graph::metadata::SqlMappingRef,
                pgrx::pgrx_sql_entity_graph::metadata::ArgumentError,
            > = Ok(pgrx::pgrx_sql_entity_graph::metadata::SqlMappingRef::literal("jsonb"));
            const RETURN_SQL: Result<
                pgrx::pgrx_sql_entity_graph::metadata::ReturnsRef,
                pgrx::pgrx_sql_entity_graph::metadata::ReturnsError,
            > = Ok(pgrx::pgrx_sql_entity_graph::metadata::ReturnsRef::One(
                pgrx::pgrx_sql_entity_graph::metadata::SqlMappingRef::literal("jsonb"),
            ));
        }
    };
}
pub(crate) use jsonb_sql_type;

// (both forms' datums are jsonb: see IntoDatum)
jsonb_sql_type!(Metadata);

// SAFETY: the datum is returned as IntoDatum makes it, palloc'd in the call's context.
unsafe impl pgrx::callconv::BoxRet for Metadata {
    unsafe fn box_into<'fcx>(
        self,
        fcinfo: &mut pgrx::callconv::FcInfo<'fcx>,
    ) -> pgrx::datum::Datum<'fcx> {
        match self.into_datum() {
            Some(datum) => unsafe { fcinfo.return_raw_datum(datum) },
            None => fcinfo.return_null(),
        }
    }
}

impl IntoDatum for Metadata {
    fn into_datum(self) -> Option<pg_sys::Datum> {
        match self {
            Metadata::Stored(stored) => stored.into_datum(),
            Metadata::Value(value) => pgrx::JsonB(value).into_datum(),
        }
    }

    fn type_oid() -> pg_sys::Oid {
        pg_sys::JSONBOID
    }
}
