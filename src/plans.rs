//! A per-backend cache of prepared SPI statements. Hot paths (append, windows) would otherwise
//! parse and plan their SQL on every call; Postgres' plan cache revalidates kept plans after
//! DDL, so a cached statement stays correct across schema changes.

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;

use pgrx::pg_sys::{BuiltinOid, PgOid};
use pgrx::spi::{OwnedPreparedStatement, SpiClient};

use crate::core::filter::Param;
use crate::error::{CtxError, CtxResult};

/// A statement known at compile time: its SQL, argument types, and whether it writes.
pub struct Statement {
    pub sql: &'static str,
    pub args: &'static [BuiltinOid],
    pub writes: bool,
}

thread_local! {
    static PLANS: RefCell<HashMap<&'static str, Rc<OwnedPreparedStatement>>> =
        RefCell::new(HashMap::new());
}

impl Statement {
    /// The kept plan for this statement, prepared on first use in this backend.
    pub fn plan(&'static self, client: &SpiClient<'_>) -> CtxResult<Rc<OwnedPreparedStatement>> {
        if let Some(plan) = PLANS.with(|plans| plans.borrow().get(self.sql).cloned()) {
            return Ok(plan);
        }
        let types: Vec<PgOid> = self.args.iter().map(|&oid| PgOid::BuiltIn(oid)).collect();
        let prepared = if self.writes {
            client.prepare_mut(self.sql, &types)?
        } else {
            client.prepare(self.sql, &types)?
        };
        let plan = Rc::new(prepared.keep());
        PLANS.with(|plans| plans.borrow_mut().insert(self.sql, plan.clone()));
        Ok(plan)
    }
}

thread_local! {
    static SHAPES: RefCell<HashMap<String, Rc<OwnedPreparedStatement>>> =
        RefCell::new(HashMap::new());
}

/// Statements whose text is built at run time (a recall's scope and filter) are kept per
/// shape — per distinct text, with the arguments' types — up to this many per backend.
const SHAPES_KEPT: usize = 256;

/// The kept read-only plan of a statement built at run time, prepared on first use of its text
/// in this backend; `args` give the parameters' types.
pub fn prepared_shape(
    client: &SpiClient<'_>,
    sql: &str,
    args: &[pgrx::datum::DatumWithOid<'_>],
) -> CtxResult<Rc<OwnedPreparedStatement>> {
    if let Some(plan) = SHAPES.with(|shapes| shapes.borrow().get(sql).cloned()) {
        return Ok(plan);
    }
    let types: Vec<PgOid> = args.iter().map(|a| PgOid::from(a.oid())).collect();
    let plan = Rc::new(client.prepare(sql, &types)?.keep());
    SHAPES.with(|shapes| {
        let mut shapes = shapes.borrow_mut();
        if shapes.len() >= SHAPES_KEPT {
            shapes.clear();
        }
        shapes.insert(sql.to_string(), plan.clone());
    });
    Ok(plan)
}

/// The first column of the first row, or None when there is no row (or it is NULL).
pub fn first_value<T: pgrx::FromDatum + pgrx::IntoDatum>(
    table: pgrx::spi::SpiTupleTable<'_>,
) -> CtxResult<Option<T>> {
    match table.into_iter().next() {
        Some(row) => Ok(row.get::<T>(1)?),
        None => Ok(None),
    }
}

/// A compiled filter's parameter as an SPI argument.
pub fn param_datum(param: &Param) -> pgrx::datum::DatumWithOid<'static> {
    match param {
        Param::Text(s) => s.clone().into(),
        Param::TextArray(v) => v.clone().into(),
        Param::Number(n) => (*n).into(),
        Param::Jsonb(v) => pgrx::JsonB(v.clone()).into(),
        Param::JsonbArray(v) => v
            .iter()
            .cloned()
            .map(pgrx::JsonB)
            .collect::<Vec<_>>()
            .into(),
    }
}

impl From<pgrx::spi::SpiError> for CtxError {
    fn from(err: pgrx::spi::SpiError) -> Self {
        CtxError::internal(format!("SPI failure: {err}"))
    }
}

/// The OID of a type named with its schema (resolved from the catalog, not the search path).
pub fn type_oid(qualified_name: &'static str) -> CtxResult<pgrx::pg_sys::Oid> {
    if let Some(oid) = TYPE_OIDS.with(|t| t.borrow().get(qualified_name).copied()) {
        return Ok(oid);
    }
    let oid = pgrx::wrappers::regtypein(qualified_name);
    if oid == pgrx::pg_sys::InvalidOid {
        return Err(crate::error::CtxError::internal(format!(
            "type {qualified_name} does not exist"
        )));
    }
    TYPE_OIDS.with(|t| t.borrow_mut().insert(qualified_name, oid));
    Ok(oid)
}

thread_local! {
    // (parsing the name per call was 3 % of a short read)
    static TYPE_OIDS: RefCell<HashMap<&'static str, pgrx::pg_sys::Oid>> =
        RefCell::new(HashMap::new());
}

/// Syscache callback on types (registered in `_PG_init`): a type created, altered or dropped
/// (the extension's among them) makes every kept OID be looked up again.
pub(crate) unsafe extern "C-unwind" fn forget_type_oids(
    _arg: pgrx::pg_sys::Datum,
    _cache: std::ffi::c_int,
    _hash: u32,
) {
    let _ = TYPE_OIDS.try_with(|t| t.try_borrow_mut().map(|mut t| t.clear()));
}

/// The planner's `EXPLAIN (FORMAT JSON)` of `sql` with `args`, as text. Run inside an SPI
/// connection. SPI refuses EXPLAIN in its read-only mode, and pgrx's mutable path assigns a
/// transaction id, which a hot standby cannot (and a read has no use for): so the statement
/// goes to SPI directly, non-read-only, leaving the transaction without an id.
pub fn explain_json(
    _client: &SpiClient<'_>,
    sql: &str,
    args: &[pgrx::datum::DatumWithOid<'_>],
) -> CtxResult<Option<String>> {
    let statement = std::ffi::CString::new(format!("EXPLAIN (FORMAT JSON) {sql}"))
        .map_err(|_| CtxError::internal("a statement with a NUL byte"))?;
    let mut types: Vec<pgrx::pg_sys::Oid> = args.iter().map(|a| a.oid()).collect();
    let mut values: Vec<pgrx::pg_sys::Datum> = args
        .iter()
        .map(|a| {
            a.datum()
                .map_or(pgrx::pg_sys::Datum::from(0), |d| d.sans_lifetime())
        })
        .collect();
    let nulls: Vec<std::ffi::c_char> = args
        .iter()
        .map(|a| if a.datum().is_some() { b' ' } else { b'n' } as std::ffi::c_char)
        .collect();
    // SAFETY: inside an SPI connection (the client's); the arrays outlive the call, and the
    // result is read before any other SPI call replaces SPI_tuptable.
    unsafe {
        let status = pgrx::pg_sys::SPI_execute_with_args(
            statement.as_ptr(),
            args.len() as i32,
            types.as_mut_ptr(),
            values.as_mut_ptr(),
            nulls.as_ptr(),
            false,
            1,
        );
        if status < 0 {
            return Err(CtxError::internal(format!(
                "EXPLAIN failed: SPI status {status}"
            )));
        }
        let table = pgrx::pg_sys::SPI_tuptable;
        if table.is_null() || pgrx::pg_sys::SPI_processed == 0 {
            return Ok(None);
        }
        let text = pgrx::pg_sys::SPI_getvalue(*(*table).vals, (*table).tupdesc, 1);
        if text.is_null() {
            return Ok(None);
        }
        Ok(Some(
            std::ffi::CStr::from_ptr(text)
                .to_string_lossy()
                .into_owned(),
        ))
    }
}

/// Runs `f` with GUCs set as a function's SET clause would, restoring them afterwards.
pub(crate) fn with_settings<T>(settings: &[(&str, &str)], f: impl FnOnce() -> T) -> T {
    // SAFETY: the standard fmgr pattern: a new GUC nest level, SET at it, pop it after.
    use pgrx::pg_sys;
    let level = unsafe { pg_sys::NewGUCNestLevel() };
    for (name, value) in settings {
        let name = std::ffi::CString::new(*name).unwrap_or_default();
        let value = std::ffi::CString::new(*value).unwrap_or_default();
        unsafe {
            pg_sys::set_config_option(
                name.as_ptr(),
                value.as_ptr(),
                pg_sys::GucContext::PGC_USERSET,
                pg_sys::GucSource::PGC_S_SESSION,
                pg_sys::GucAction::GUC_ACTION_SAVE,
                true,
                0,
                false,
            );
        }
    }
    let result = f();
    unsafe { pg_sys::AtEOXact_GUC(true, level) };
    result
}
