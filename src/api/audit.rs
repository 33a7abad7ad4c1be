//! The audit trigger: one `ctx.audit_log` row per inserted, updated or deleted row of a
//! ctxstore table. In Rust rather than PL/pgSQL because it runs on every append: it reads the
//! key columns and compares old and new column images in place, never building a JSON copy
//! of the row (which would include its content). It runs as the extension owner (SECURITY
//! DEFINER, set in `lib.rs`), so users cannot write the log themselves; chaining the rows is
//! `ctx.seal_audit`'s job (schema/security.sql).

use pgrx::pg_sys::BuiltinOid::*;
use pgrx::prelude::*;
use pgrx::Uuid;
use serde_json::{json, Map, Value};

use crate::error::{CtxError, CtxResult};
use crate::plans::Statement;
use crate::services::audit_log::{self, AuditRow};
use crate::services::cluster;
use crate::services::counter_bump;
use crate::services::transaction::writing;

/// One attribute of the audited row.
struct Column<'a> {
    /// borrowed from the relation's tuple descriptor: no copy per column per row
    name: &'a str,
    number: i32,
    type_oid: pg_sys::Oid,
    len: i16,
    by_val: bool,
}

fn columns<'a>(desc: &'a pgrx::PgTupleDesc<'a>) -> Vec<Column<'a>> {
    desc.iter()
        .filter(|a| !a.attisdropped)
        .map(|a| Column {
            name: a.name(),
            number: i32::from(a.attnum),
            type_oid: a.atttypid,
            len: a.attlen,
            by_val: a.attbyval,
        })
        .collect()
}

unsafe fn value(
    tuple: pg_sys::HeapTuple,
    desc: pg_sys::TupleDesc,
    column: &Column,
) -> Option<pg_sys::Datum> {
    let mut is_null = false;
    let datum = unsafe { pg_sys::heap_getattr(tuple, column.number, desc, &mut is_null) };
    (!is_null).then_some(datum)
}

/// Whether two stored images of a column are the same bytes (a TOASTed value left untouched
/// by an UPDATE keeps its pointer, so it compares equal without being fetched).
unsafe fn same_image(a: pg_sys::Datum, b: pg_sys::Datum, column: &Column) -> bool {
    unsafe {
        if column.by_val {
            return a == b;
        }
        let (pa, pb) = (a.cast_mut_ptr::<u8>(), b.cast_mut_ptr::<u8>());
        let len = if column.len > 0 {
            column.len as usize
        } else if column.len == -1 {
            let la = pgrx::varlena::varsize_any(pa.cast());
            if la != pgrx::varlena::varsize_any(pb.cast()) {
                return false;
            }
            la
        } else {
            // cstring
            let la = std::ffi::CStr::from_ptr(pa.cast()).to_bytes().len();
            if la != std::ffi::CStr::from_ptr(pb.cast()).to_bytes().len() {
                return false;
            }
            la
        };
        std::slice::from_raw_parts(pa, len) == std::slice::from_raw_parts(pb, len)
    }
}

/// A key column's value as JSON: integers as numbers, text arrays as arrays, the rest as text.
unsafe fn key_json(datum: pg_sys::Datum, column: &Column) -> Value {
    unsafe {
        match column.type_oid {
            t if t == INT2OID.value() => json!(i16::from_datum(datum, false)),
            t if t == INT4OID.value() => json!(i32::from_datum(datum, false)),
            t if t == INT8OID.value() => json!(i64::from_datum(datum, false)),
            t if t == TEXTARRAYOID.value() => json!(Vec::<String>::from_datum(datum, false)),
            type_oid => {
                let mut output = pg_sys::Oid::INVALID;
                let mut is_varlena = false;
                pg_sys::getTypeOutputInfo(type_oid, &mut output, &mut is_varlena);
                let text = pg_sys::OidOutputFunctionCall(output, datum);
                let value = std::ffi::CStr::from_ptr(text)
                    .to_string_lossy()
                    .into_owned();
                pg_sys::pfree(text.cast());
                json!(value)
            }
        }
    }
}

/// Columns a read updates (`ctx.recall` counts accesses); updates changing only these are not
/// audited, or every read would write an audit row.
const READ_BOOKKEEPING: [&str; 2] = ["last_accessed_at", "access_count"];

/// Whether an UPDATE that changed only `expires_at` is a TTL restart (`ctx.touch`): a row that
/// was alive now expires its (positive) ttl after a moment between its last restart and now,
/// so the expiry only moves later and never beyond now + ttl. (A moment, not exactly now(): on
/// a Citus worker the expiry was taken in the node's own earlier transaction.) Any other
/// change of `expires_at` (to hide a value at once, or bring an expired one back) is audited
/// like every other column.
fn is_ttl_restart(
    client: &pgrx::spi::SpiClient<'_>,
    old_expires: Option<pg_sys::Datum>,
    new_expires: Option<pg_sys::Datum>,
    ttl: Option<pg_sys::Datum>,
) -> CtxResult<bool> {
    static RESTART: Statement = Statement {
        sql: "SELECT $1 > now() AND $3 > interval '0' AND $2 - $3 <= now() AND $2 >= $1",
        args: &[TIMESTAMPTZOID, TIMESTAMPTZOID, INTERVALOID],
        writes: false,
    };
    let (Some(old_expires), Some(new_expires), Some(ttl)) = (old_expires, new_expires, ttl) else {
        return Ok(false);
    };
    let plan = RESTART.plan(client)?;
    let args = unsafe {
        [
            pgrx::datum::DatumWithOid::new(old_expires, TIMESTAMPTZOID.value()),
            pgrx::datum::DatumWithOid::new(new_expires, TIMESTAMPTZOID.value()),
            pgrx::datum::DatumWithOid::new(ttl, INTERVALOID.value()),
        ]
    };
    Ok(crate::plans::first_value::<bool>(client.select(&*plan, Some(1), &args)?)?.unwrap_or(false))
}

fn record(trigger: &PgTrigger<'_>) -> CtxResult<()> {
    let data = trigger.trigger_data();
    let operation = match trigger
        .op()
        .map_err(|e| CtxError::internal(format!("audit trigger: {e}")))?
    {
        PgTriggerOperation::Insert => "INSERT",
        PgTriggerOperation::Update => "UPDATE",
        PgTriggerOperation::Delete => "DELETE",
        PgTriggerOperation::Truncate => return Ok(()),
    };
    // The table's name comes first: the logical name, which a shard of a table distributed
    // across a cluster does not carry (its relation is `messages_102008`).
    let mut keys = trigger
        .extra_args()
        .map_err(|e| CtxError::internal(format!("audit trigger: {e}")))?;
    if keys.is_empty() {
        return Err(CtxError::internal(
            "audit trigger without arguments: the table's name comes first",
        ));
    }
    let table = keys.remove(0);
    let (row_key, tenant, changed, restart) = unsafe {
        let desc = (*data.tg_relation).rd_att;
        let described = pgrx::PgTupleDesc::from_pg_unchecked(desc);
        let all = columns(&described);
        // the row as it is now (the old one for a DELETE)
        let subject = if operation == "UPDATE" {
            data.tg_newtuple
        } else {
            data.tg_trigtuple
        };
        let changed: Vec<&str> = if operation == "UPDATE" {
            all.iter()
                .filter(|c| {
                    match (
                        value(data.tg_trigtuple, desc, c),
                        value(data.tg_newtuple, desc, c),
                    ) {
                        (None, None) => false,
                        (Some(a), Some(b)) => !same_image(a, b, c),
                        _ => true,
                    }
                })
                .map(|c| c.name)
                .collect()
        } else {
            all.iter()
                .filter(|c| value(subject, desc, c).is_some())
                .map(|c| c.name)
                .collect()
        };
        // an UPDATE of expires_at alone: the images a TTL restart is judged by
        let restart = (operation == "UPDATE" && changed == ["expires_at"])
            .then(|| {
                let expires = all.iter().find(|c| c.name == "expires_at")?;
                let ttl = all.iter().find(|c| c.name == "ttl")?;
                Some((
                    value(data.tg_trigtuple, desc, expires),
                    value(data.tg_newtuple, desc, expires),
                    value(data.tg_newtuple, desc, ttl),
                ))
            })
            .flatten();
        // an UPDATE of the seq counter alone: which context, moved by how much
        let bump = (table == "contexts"
            && operation == "UPDATE"
            && changed.contains(&"last_seq")
            && changed.iter().all(|c| counter_bump::BUMPED.contains(c)))
        .then(|| {
            let id = all.iter().find(|c| c.name == "id")?;
            let seq = all.iter().find(|c| c.name == "last_seq")?;
            let id = Uuid::from_datum(value(data.tg_newtuple, desc, id)?, false)?;
            let old = i64::from_datum(value(data.tg_trigtuple, desc, seq)?, false)?;
            let new = i64::from_datum(value(data.tg_newtuple, desc, seq)?, false)?;
            // the command that wrote this row version
            let command = pg_sys::HeapTupleHeaderGetCmin((*data.tg_newtuple).t_data);
            Some((id, new - old, command))
        })
        .flatten();
        // The append's own counter bump: the messages' audit rows record the seqs it took.
        if bump.is_some_and(|(id, moved, command)| counter_bump::take(id, moved, command)) {
            return Ok(());
        }
        // A read's bookkeeping is not a change: logging it would write k audit rows per
        // recall (and make every read path pay for the audit trail).
        if operation == "UPDATE"
            && !changed.is_empty()
            && changed.iter().all(|c| READ_BOOKKEEPING.contains(c))
        {
            return Ok(());
        }
        let mut row_key = Map::new();
        for key in &keys {
            if let Some(column) = all.iter().find(|c| c.name == key) {
                let v = value(subject, desc, column).map_or(Value::Null, |d| key_json(d, column));
                row_key.insert(key.clone(), v);
            }
        }
        let tenant = all
            .iter()
            .find(|c| c.name == "tenant")
            .and_then(|c| value(subject, desc, c))
            .and_then(|d| String::from_datum(d, false));
        let mut changed = changed;
        changed.sort_unstable();
        let changed: Vec<String> = changed.into_iter().map(str::to_string).collect();
        (row_key, tenant, changed, restart)
    };
    // On a Citus cluster a global table is a reference table: its trigger fires on each node's
    // copy. One of them, the coordinator's, records the change, into the log of the caller's
    // tenant, which may live on another node (a write Citus makes only when told it is nested).
    let relation = trigger
        .table_name()
        .map_err(|e| CtxError::internal(format!("audit trigger: {e}")))?;
    let nested = if cluster::citus() && relation != table {
        match cluster::reference_placement(&table)? {
            Some(true) => return Ok(()), // a worker's copy
            Some(false) => true,         // the coordinator's copy
            None => false,               // a shard of a distributed table: its log is local
        }
    } else {
        false
    };
    let record = || write_record(restart, tenant, table, operation, row_key, changed);
    if nested {
        cluster::colocated(record)
    } else {
        record()
    }
}

type Restart = (
    Option<pg_sys::Datum>,
    Option<pg_sys::Datum>,
    Option<pg_sys::Datum>,
);

fn write_record(
    restart: Option<Restart>,
    tenant: Option<String>,
    table: String,
    operation: &'static str,
    row_key: Map<String, Value>,
    changed: Vec<String>,
) -> CtxResult<()> {
    if let Some((old_expires, new_expires, ttl)) = restart {
        let restarted = writing(|client| is_ttl_restart(client, old_expires, new_expires, ttl))?;
        if restarted {
            return Ok(());
        }
    }
    let row = AuditRow {
        tenant,
        table,
        operation,
        row_key,
        columns: changed,
    };
    audit_log::write(row)
}

/// AFTER ROW trigger on every audited table; its arguments are the table's name, then its key
/// columns. (The SQL is
/// spelled out: the generated form names `MODULE_PATHNAME`, which a versioned library has not.)
#[pg_trigger(sql = r#"
CREATE FUNCTION "audit_trigger"() RETURNS trigger LANGUAGE c AS '@MODULE_PATHNAME@', 'audit_trigger_wrapper';
"#)]
fn audit_trigger<'a>(
    trigger: &'a PgTrigger<'a>,
) -> Result<Option<PgHeapTuple<'a, AllocatedByPostgres>>, CtxError> {
    record(trigger)?;
    Ok(None)
}
