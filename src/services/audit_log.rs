//! Audit rows written without SQL. The audit trigger fires for every audited row; through SPI
//! each of its rows set up an executor for one INSERT and parsed the log's CHECK constraint
//! again — as much time as the append's own message insert. Here the row is formed from its
//! datums and stored with its index entries, as COPY stores a row: the same values the SQL
//! wrote (the sequence's next id, the clock, the roles, the transaction id, the trace id).
//!
//! Only where the log is the plain table the schema made: its own columns, no trigger, no rule,
//! no forced row-level security, and no Citus (whose log is a shell of shards). Anywhere else
//! the trigger writes through SQL as before. Its constraints, an administrator's added CHECK
//! among them, apply either way.

use std::ffi::CStr;

use pgrx::{pg_sys, IntoDatum, JsonB};
use serde_json::{Map, Value};

use crate::core::trace;
use crate::plans::Statement;
use crate::services::catalog_cache::{local_ctx_schema, relation, typed_column, Kept};
use crate::services::row_store;
use crate::services::transaction::writing;

/// ctx.audit_log and its id sequence, with each written column's attribute number.
#[derive(Clone, Copy)]
struct AuditLog {
    table: pg_sys::Oid,
    sequence: pg_sys::Oid,
    id: pg_sys::AttrNumber,
    at: pg_sys::AttrNumber,
    tenant: pg_sys::AttrNumber,
    actor: pg_sys::AttrNumber,
    session_role: pg_sys::AttrNumber,
    application: pg_sys::AttrNumber,
    table_name: pg_sys::AttrNumber,
    operation: pg_sys::AttrNumber,
    row_key: pg_sys::AttrNumber,
    columns: pg_sys::AttrNumber,
    xid: pg_sys::AttrNumber,
    trace_id: pg_sys::AttrNumber,
}

/// The log's columns a new row leaves NULL (set when it is sealed into its tenant's chain).
const SEALING: [&CStr; 3] = [c"row_hash", c"chain_seq", c"chain_hash"];

thread_local! {
    /// `Some(None)`: write through SQL.
    static KEPT: Kept<AuditLog> = const { Kept::new() };
}

/// Relcache invalidation callback (registered in `_PG_init`): a trigger, rule, column or
/// constraint added to the log, or the extension dropped, looks it up again.
pub(crate) unsafe extern "C-unwind" fn forget(_arg: pg_sys::Datum, _relid: pg_sys::Oid) {
    KEPT.with(Kept::forget);
}

fn audit_log() -> Option<AuditLog> {
    // SAFETY: catalog lookups by name and the log's relcache entry, under AccessShareLock.
    KEPT.with(|kept| kept.get_or(|| unsafe { look_up() }))
}

unsafe fn look_up() -> Option<AuditLog> {
    unsafe {
        let schema = local_ctx_schema()?;
        let table = relation(schema, c"audit_log")?;
        let sequence = relation(schema, c"audit_log_id_seq")?;
        let column = |name: &CStr, type_oid: pg_sys::Oid| typed_column(table, name, type_oid);
        use pg_sys::{BYTEAOID, INT8OID, JSONBOID, TEXTARRAYOID, TEXTOID, TIMESTAMPTZOID, XID8OID};
        let log = AuditLog {
            table,
            sequence,
            id: column(c"id", INT8OID)?,
            at: column(c"at", TIMESTAMPTZOID)?,
            tenant: column(c"tenant", TEXTOID)?,
            actor: column(c"actor", TEXTOID)?,
            session_role: column(c"session_role", TEXTOID)?,
            application: column(c"application", TEXTOID)?,
            table_name: column(c"table_name", TEXTOID)?,
            operation: column(c"operation", TEXTOID)?,
            row_key: column(c"row_key", JSONBOID)?,
            columns: column(c"columns", TEXTARRAYOID)?,
            xid: column(c"xid", XID8OID)?,
            trace_id: column(c"trace_id", TEXTOID)?,
        };
        column(SEALING[0], BYTEAOID)?;
        column(SEALING[1], INT8OID)?;
        column(SEALING[2], BYTEAOID)?;
        plain(table).then_some(log)
    }
}

/// Whether the log is the table the schema made: an ordinary table of exactly its 15 columns
/// (an added one might have a default this write would not apply), no trigger or rule to fire,
/// and row-level security not forced on its owner. (Its constraints, added ones too, are
/// checked by every write: `store`.)
unsafe fn plain(table: pg_sys::Oid) -> bool {
    unsafe {
        let relation = pg_sys::try_relation_open(table, pg_sys::AccessShareLock as i32);
        if relation.is_null() {
            return false;
        }
        let form = &*(*relation).rd_rel;
        let desc = pgrx::PgTupleDesc::from_pg_unchecked((*relation).rd_att);
        let live = desc.iter().filter(|a| !a.attisdropped).count();
        let generated = desc.iter().any(|a| a.attgenerated != 0);
        let plain = form.relkind == pg_sys::RELKIND_RELATION as core::ffi::c_char
            && form.relam == pg_sys::HEAP_TABLE_AM_OID
            && !form.relispartition
            && !form.relforcerowsecurity
            && (*relation).trigdesc.is_null()
            && (*relation).rd_rules.is_null()
            && live == 15
            && !generated;
        drop(desc);
        pg_sys::relation_close(relation, pg_sys::AccessShareLock as i32);
        plain
    }
}

/// One audit row, as the trigger knows it.
pub(crate) struct AuditRow {
    /// the changed row's tenant (None: a global table's row, logged under the caller's)
    pub tenant: Option<String>,
    pub table: String,
    pub operation: &'static str,
    pub row_key: Map<String, Value>,
    pub columns: Vec<String>,
}

/// The statement an audit row is written with where it cannot be stored directly.
static INSERT: Statement = Statement {
    sql: "INSERT INTO ctx.audit_log (id, at, tenant, actor, session_role, application, table_name,
                                     operation, row_key, columns, xid, trace_id)
          VALUES (nextval('ctx.audit_log_id_seq'), clock_timestamp(), coalesce($1, ctx.current_tenant()),
                  CASE WHEN coalesce(current_setting('role', true), 'none') = 'none' THEN session_user::text
                       ELSE current_setting('role', true) END,
                  session_user::text, nullif(current_setting('application_name', true), ''),
                  $2, $3, $4, $5, pg_current_xact_id(), ctx.current_trace_id())",
    args: &[
        pgrx::pg_sys::BuiltinOid::TEXTOID,
        pgrx::pg_sys::BuiltinOid::TEXTOID,
        pgrx::pg_sys::BuiltinOid::TEXTOID,
        pgrx::pg_sys::BuiltinOid::JSONBOID,
        pgrx::pg_sys::BuiltinOid::TEXTARRAYOID,
    ],
    writes: true,
};

/// Writes one audit row: stored directly where the log is plain, else through SQL.
pub(crate) fn write(row: AuditRow) -> crate::error::CtxResult<()> {
    let Err(row) = write_direct(row)? else {
        return Ok(());
    };
    // (names resolved in the system catalog first, as in the trigger's own SET search_path: the
    // row is written with the log owner's rights)
    crate::plans::with_settings(&[("search_path", "pg_catalog, pg_temp")], || write_sql(row))
}

fn write_sql(row: AuditRow) -> crate::error::CtxResult<()> {
    writing(|client| -> crate::error::CtxResult<()> {
        let plan = INSERT.plan(client)?;
        client.update(
            &*plan,
            None,
            &[
                row.tenant.into(),
                row.table.into(),
                row.operation.into(),
                JsonB(Value::Object(row.row_key)).into(),
                row.columns.into(),
            ],
        )?;
        Ok(())
    })
}

/// Writes the row directly; `Err(row)` gives it back to be written through SQL.
fn write_direct(mut row: AuditRow) -> crate::error::CtxResult<Result<(), AuditRow>> {
    let Some(log) = audit_log() else {
        return Ok(Err(row));
    };
    let tenant = match row.tenant.take() {
        Some(tenant) => tenant,
        None => crate::services::tenant::current()?,
    };
    // SAFETY: the log checked plain above (and again on every invalidation); the datums match
    // the column types looked up; the relation is locked as an INSERT locks it.
    unsafe { insert(&log, tenant, row) };
    Ok(Ok(()))
}

unsafe fn insert(log: &AuditLog, tenant: String, row: AuditRow) {
    unsafe {
        let relation = pg_sys::table_open(log.table, pg_sys::RowExclusiveLock as i32);
        let mut new_row = row_store::NewRow::of(relation);
        let mut set =
            |number: pg_sys::AttrNumber, datum: Option<pg_sys::Datum>| new_row.set(number, datum);
        // the same values the SQL statement computed: nextval, clock_timestamp(), the SET ROLE
        // role else the session user, session_user, application_name (NULL when empty),
        // pg_current_xact_id() and ctx.current_trace_id()
        let id = pg_sys::DirectFunctionCall1Coll(
            Some(nextval_oid),
            pg_sys::InvalidOid,
            pg_sys::Datum::from(log.sequence),
        );
        set(log.id, Some(id));
        set(
            log.at,
            Some(pg_sys::Datum::from(pg_sys::GetCurrentTimestamp())),
        );
        set(log.tenant, tenant.into_datum());
        let session_user = name_of(pg_sys::GetSessionUserId());
        let role = pg_sys::GetConfigOptionByName(c"role".as_ptr(), std::ptr::null_mut(), true);
        let actor = if role.is_null() || CStr::from_ptr(role).to_bytes() == b"none" {
            session_user.clone()
        } else {
            CStr::from_ptr(role).to_string_lossy().into_owned()
        };
        set(log.actor, actor.into_datum());
        set(log.session_role, session_user.into_datum());
        let application = row_store::application_name();
        let trace_id =
            trace::current_trace_id(crate::gucs::traceparent_as_set().as_deref(), &application);
        set(
            log.application,
            (!application.is_empty())
                .then_some(application)
                .into_datum(),
        );
        set(log.table_name, row.table.into_datum());
        set(log.operation, row.operation.into_datum());
        set(log.row_key, JsonB(Value::Object(row.row_key)).into_datum());
        set(log.columns, row.columns.into_datum());
        set(
            log.xid,
            Some(pg_sys::Datum::from(pg_sys::GetTopFullTransactionId().value)),
        );
        set(log.trace_id, trace_id.into_datum());
        new_row.store(relation);
        // the lock is kept to the transaction's end, as an INSERT keeps it
        pg_sys::relation_close(relation, pg_sys::NoLock as i32);
    }
}

unsafe extern "C-unwind" {
    /// nextval(regclass) itself (pgrx's binding of it is a Rust wrapper, not a PGFunction)
    fn nextval_oid(fcinfo: pg_sys::FunctionCallInfo) -> pg_sys::Datum;
}

unsafe fn name_of(role: pg_sys::Oid) -> String {
    unsafe {
        CStr::from_ptr(pg_sys::GetUserNameFromId(role, false))
            .to_string_lossy()
            .into_owned()
    }
}
