//! An append's message row stored without an INSERT statement. Through SQL, one append's
//! statement set up an executor for an UPDATE feeding an INSERT, queued the row's AFTER
//! triggers and ran them: the audit trigger, and the foreign key's check — an SPI query of the
//! context row that the append's own UPDATE of its counter has just locked. Here the counter is
//! still moved by its UPDATE statement (the row lock, the gap-free seq, the waits and
//! serialization errors of concurrent appends are Postgres's own); the message row is then
//! formed from its datums and stored with its index entries (`row_store`), its audit row written
//! as the trigger writes it, and the foreign key's check left out: the referenced row is the one
//! the UPDATE found by the same (tenant, id) and holds locked against a delete or a key change
//! until the transaction ends, which is what the check's `FOR KEY SHARE` would have ensured.
//!
//! Only where `ctx.messages` is what the schema made, checked once per relcache invalidation: an
//! ordinary table of its 16 columns, the defaults the append leaves to them unchanged (this
//! writer applies them), no rule, row-level security unforced with its one tenant policy, no
//! deferred unique check, and no trigger that fires on INSERT other than the audit trigger
//! (enabled or disabled by `ctx.set_audit`) and that foreign key's check; and the session's
//! `session_replication_role` the default. Anything else, or Citus, and the append runs its
//! statement as before.

use std::ffi::CStr;

use pgrx::datum::TimestampWithTimeZone;
use pgrx::pg_sys;
use pgrx::spi::SpiClient;
use pgrx::{IntoDatum, JsonB, Uuid};
use serde_json::{json, Map, Value};

use crate::core::trace;
use crate::error::{CtxError, CtxResult};
use crate::services::audit_log::{self, AuditRow};
use crate::services::catalog_cache::{local_ctx_schema, relation, typed_column, Kept};
use crate::services::row_store;

/// ctx.messages, each written column's attribute number, and whether its audit trigger is on.
#[derive(Clone, Copy)]
struct Messages {
    table: pg_sys::Oid,
    context_id: pg_sys::AttrNumber,
    tenant: pg_sys::AttrNumber,
    seq: pg_sys::AttrNumber,
    message_id: pg_sys::AttrNumber,
    revision: pg_sys::AttrNumber,
    deleted: pg_sys::AttrNumber,
    role: pg_sys::AttrNumber,
    content: pg_sys::AttrNumber,
    metadata: pg_sys::AttrNumber,
    tokens: pg_sys::AttrNumber,
    created_at: pg_sys::AttrNumber,
    written_at: pg_sys::AttrNumber,
    trace_id: pg_sys::AttrNumber,
    audited: bool,
    /// the role the audit trigger runs as (its function is SECURITY DEFINER), or InvalidOid
    audit_role: pg_sys::Oid,
}

thread_local! {
    /// `Some(None)`: append through SQL.
    static KEPT: Kept<Messages> = const { Kept::new() };
}

/// Relcache invalidation callback (registered in `_PG_init`): a trigger, rule, policy,
/// default, column or index changed on the table, `ctx.set_audit`, or the extension dropped.
pub(crate) unsafe extern "C-unwind" fn forget(_arg: pg_sys::Datum, _relid: pg_sys::Oid) {
    KEPT.with(Kept::forget);
}

/// Syscache callback on `pg_proc` (registered in `_PG_init`): the audit trigger function's
/// owner or settings may have changed (an ALTER FUNCTION sends no relcache invalidation).
pub(crate) unsafe extern "C-unwind" fn forget_on_function(
    _arg: pg_sys::Datum,
    _cache: core::ffi::c_int,
    _hash: u32,
) {
    KEPT.with(Kept::forget);
}

/// What the table must be for this writer, read from the catalog (once per invalidation).
const PLAIN: &str = r#"
SELECT c.relkind = 'r' AND NOT c.relispartition AND NOT c.relforcerowsecurity AND NOT c.relhasrules
   AND c.relam = (SELECT a.oid FROM pg_am a WHERE a.amname = 'heap')
   AND (SELECT count(*) FROM pg_attribute a WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped) = 16
   AND NOT EXISTS (SELECT FROM pg_attribute a
                    WHERE a.attrelid = c.oid AND a.attnum > 0 AND (a.attgenerated <> '' OR a.attidentity <> ''))
   -- the defaults of the columns an append leaves to them, which this writer applies
   AND (SELECT array_agg(a.attname || '=' || coalesce(pg_get_expr(d.adbin, d.adrelid), '') ORDER BY a.attname)
          FROM pg_attribute a LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
         WHERE a.attrelid = c.oid AND a.attname IN ('revision', 'deleted', 'written_at', 'trace_id',
                                                     'content_lz4', 'content_enc', 'metadata_enc'))
       = ARRAY['content_enc=', 'content_lz4=', 'deleted=false', 'metadata_enc=', 'revision=1',
               'trace_id=ctx.current_trace_id()', 'written_at=now()']
   -- every unique check made at once
   AND NOT EXISTS (SELECT FROM pg_index i WHERE i.indrelid = c.oid AND NOT i.indimmediate)
   -- row-level security's one policy: a row of the caller's tenant, which the append's is
   AND (SELECT count(*) = 1 AND bool_and(p.polname = 'tenant_isolation' AND p.polcmd = '*' AND p.polpermissive
                                         AND p.polroles = '{0}'
                                         AND pg_get_expr(p.polwithcheck, p.polrelid) = '(tenant = ctx.current_tenant())')
          FROM pg_policy p WHERE p.polrelid = c.oid)
   -- every trigger that fires on INSERT: the audit trigger, or the check of the foreign key to
   -- the context row (tenant, context_id) -> ctx.contexts (tenant, id)
   AND NOT EXISTS (
       SELECT FROM pg_trigger t
        WHERE t.tgrelid = c.oid AND t.tgtype & 4 <> 0
          AND NOT (t.tgname = 'audit' AND NOT t.tgisinternal AND t.tgtype = 29 AND t.tgenabled IN ('O', 'D')
                   AND t.tgqual IS NULL
                   AND t.tgfoid = 'ctx.audit_trigger()'::regprocedure
                   AND encode(t.tgargs, 'escape') = 'messages\000context_id\000seq\000')
          AND NOT (t.tgisinternal AND t.tgenabled = 'O'
                   AND t.tgfoid = 'pg_catalog."RI_FKey_check_ins"()'::regprocedure
                   AND EXISTS (SELECT FROM pg_constraint f
                                WHERE f.oid = t.tgconstraint AND f.conrelid = c.oid AND f.contype = 'f'
                                  AND f.confrelid = 'ctx.contexts'::regclass
                                  AND ARRAY(SELECT a.attname::text FROM unnest(f.conkey) WITH ORDINALITY k(n, o)
                                              JOIN pg_attribute a ON a.attrelid = f.conrelid AND a.attnum = k.n
                                             ORDER BY k.o) = '{tenant,context_id}'
                                  AND ARRAY(SELECT a.attname::text FROM unnest(f.confkey) WITH ORDINALITY k(n, o)
                                              JOIN pg_attribute a ON a.attrelid = f.confrelid AND a.attnum = k.n
                                             ORDER BY k.o) = '{tenant,id}')))
   AS plain,
   EXISTS (SELECT FROM pg_trigger t WHERE t.tgrelid = c.oid AND t.tgname = 'audit' AND t.tgenabled = 'O') AS audited,
   (SELECT CASE WHEN p.prosecdef THEN p.proowner ELSE 0 END FROM pg_proc p
     WHERE p.oid = 'ctx.audit_trigger()'::regprocedure) AS audit_role
  FROM pg_class c WHERE c.oid = $1"#;

/// Whether this writer applies (see the module's conditions), for the current user; opens
/// ctx.messages for the INSERT first, so that a change committed by another session is seen.
/// (`_connected`: the lookup runs a query through the caller's SPI connection)
fn messages(_connected: &SpiClient<'_>) -> CtxResult<Option<Messages>> {
    // SAFETY: catalog lookups by name; the relation is locked as an INSERT locks it (the lock
    // is kept to the transaction's end) before the kept answer is read, which processes
    // pending invalidations.
    unsafe {
        if pg_sys::SessionReplicationRole != pg_sys::SESSION_REPLICATION_ROLE_ORIGIN as i32 {
            return Ok(None);
        }
        // (an access-control hook, sepgsql's say, sees statements: it gets the statement)
        if std::ptr::addr_of!(pg_sys::ExecutorCheckPerms_hook)
            .read()
            .is_some()
        {
            return Ok(None);
        }
        let Some(schema) = local_ctx_schema() else {
            return Ok(None);
        };
        let (Some(contexts), Some(table)) =
            (relation(schema, c"contexts"), relation(schema, c"messages"))
        else {
            return Ok(None);
        };
        // (in the statement's order: the counter's table, then the messages')
        for locked in [contexts, table] {
            let opened = pg_sys::try_table_open(locked, pg_sys::RowExclusiveLock as i32);
            if opened.is_null() {
                return Ok(None);
            }
            pg_sys::table_close(opened, pg_sys::NoLock as i32);
        }
        let found = KEPT.with(|kept| kept.get_or(|| look_up(table)));
        // (privileges are the caller's, checked per call: the SQL path raises the error)
        Ok(found.filter(|_| {
            pg_sys::pg_class_aclcheck(
                table,
                pg_sys::GetUserId(),
                pg_sys::ACL_INSERT as pg_sys::AclMode,
            ) == pg_sys::AclResult::ACLCHECK_OK
        }))
    }
}

unsafe fn look_up(table: pg_sys::Oid) -> Option<Messages> {
    unsafe {
        use pg_sys::{
            BOOLOID, BYTEAOID, INT4OID, INT8OID, JSONBOID, TEXTOID, TIMESTAMPTZOID, UUIDOID,
        };
        let column = |name: &CStr, type_oid: pg_sys::Oid| typed_column(table, name, type_oid);
        let messages = Messages {
            table,
            context_id: column(c"context_id", UUIDOID)?,
            tenant: column(c"tenant", TEXTOID)?,
            seq: column(c"seq", INT8OID)?,
            message_id: column(c"message_id", TEXTOID)?,
            revision: column(c"revision", INT4OID)?,
            deleted: column(c"deleted", BOOLOID)?,
            role: column(c"role", TEXTOID)?,
            content: column(c"content", TEXTOID)?,
            metadata: column(c"metadata", JSONBOID)?,
            tokens: column(c"tokens", INT4OID)?,
            created_at: column(c"created_at", TIMESTAMPTZOID)?,
            written_at: column(c"written_at", TIMESTAMPTZOID)?,
            trace_id: column(c"trace_id", TEXTOID)?,
            audited: false,
            audit_role: pg_sys::InvalidOid,
        };
        for sealed in [c"content_lz4", c"content_enc", c"metadata_enc"] {
            column(sealed, BYTEAOID)?;
        }
        // Read with the system catalog's names first and nothing of the caller's search path:
        // a function or operator the caller's schemas define must not change the answer (it is
        // kept for the backend), and `pg_get_expr` then spells ctxstore's functions qualified.
        let (plain, audited, audit_role) =
            crate::plans::with_settings(&[("search_path", "pg_catalog, pg_temp")], || {
                plain_now(table)
            })?;
        plain.then_some(Messages {
            audited,
            audit_role,
            ..messages
        })
    }
}

/// The PLAIN query's answer read with the latest snapshot: the catalog as committed now, after
/// the table's lock was taken (which waited for any change of it in progress), not as the
/// statement's or the transaction's older snapshot saw it; an answer kept for the backend must
/// not be an old one.
unsafe fn plain_now(table: pg_sys::Oid) -> Option<(bool, bool, pg_sys::Oid)> {
    unsafe {
        let sql = std::ffi::CString::new(PLAIN).ok()?;
        let mut types = [pg_sys::OIDOID];
        let plan = pg_sys::SPI_prepare(sql.as_ptr(), 1, types.as_mut_ptr());
        if plan.is_null() {
            return None;
        }
        let mut values = [pg_sys::Datum::from(table)];
        let nulls = [b' ' as core::ffi::c_char];
        let status = pg_sys::SPI_execute_snapshot(
            plan,
            values.as_mut_ptr(),
            nulls.as_ptr(),
            pg_sys::GetLatestSnapshot(),
            std::ptr::null_mut(),
            true,
            false,
            1,
        );
        pg_sys::SPI_freeplan(plan);
        let table = pg_sys::SPI_tuptable;
        let answer = (status == pg_sys::SPI_OK_SELECT as i32
            && pg_sys::SPI_processed == 1
            && !table.is_null())
        .then(|| {
            let (tuple, desc) = (*(*table).vals, (*table).tupdesc);
            let column = |n: i32| {
                let mut is_null = false;
                let datum = pg_sys::SPI_getbinval(tuple, desc, n, &mut is_null);
                (!is_null).then_some(datum)
            };
            Some((
                column(1)?.value() != 0,
                column(2)?.value() != 0,
                pg_sys::Oid::from(column(3)?.value() as u32),
            ))
        })
        .flatten();
        if !table.is_null() {
            pg_sys::SPI_freetuptable(table);
        }
        answer
    }
}

/// A message to store: its context and seq (the counter's move), and what the append computed.
pub(crate) struct NewMessage<'a> {
    pub context_id: Uuid,
    pub tenant: &'a str,
    pub seq: i64,
    /// the caller's (checked free under the counter's lock), else a random UUID
    pub message_id: Option<&'a str>,
    pub role: &'a str,
    pub content: &'a str,
    pub metadata: Value,
    pub tokens: i32,
    pub created_at: Option<TimestampWithTimeZone>,
}

/// The writer of one append's message, when it applies (else the append runs its statement).
/// Taken before the counter moves, so that the append chooses its path once.
pub(crate) struct Writer(Messages);

pub(crate) fn writer(client: &SpiClient<'_>) -> CtxResult<Option<Writer>> {
    Ok(messages(client)?.map(Writer))
}

impl Writer {
    /// Stores the message as the append's INSERT would (the same values: the caller's id or a
    /// random UUID, revision 1, now() for the times it is not given, the session's trace id) and
    /// its audit row; returns its id.
    pub(crate) fn store(self, message: NewMessage<'_>) -> CtxResult<String> {
        let table = self.0;
        let message_id = match message.message_id {
            Some(id) => id.to_string(),
            None => random_uuid()?.to_string(),
        };
        // SAFETY: the table was checked plain (and is locked since); the datums match the
        // column types looked up.
        let columns = unsafe { insert(&table, &message, &message_id) };
        if table.audited {
            let mut row_key = Map::new();
            row_key.insert("context_id".into(), json!(message.context_id.to_string()));
            row_key.insert("seq".into(), json!(message.seq));
            let row = AuditRow {
                tenant: Some(message.tenant.to_string()),
                table: "messages".into(),
                operation: "INSERT",
                row_key,
                columns,
            };
            as_role(table.audit_role, || audit_log::write(row))?;
        }
        // later statements of the transaction see the row, as after an INSERT
        // SAFETY: advances the transaction's command counter.
        unsafe { pg_sys::CommandCounterIncrement() };
        Ok(message_id)
    }
}

/// Runs `f` as `role`, as a SECURITY DEFINER function runs (InvalidOid: as the current user):
/// the audit row is written with the trigger function owner's rights, never the caller's. An
/// error inside rolls the (sub)transaction back, which restores the user.
fn as_role<T>(role: pg_sys::Oid, f: impl FnOnce() -> T) -> T {
    if role == pg_sys::InvalidOid {
        return f();
    }
    let (mut user, mut context) = (pg_sys::InvalidOid, 0);
    // SAFETY: the fmgr_security_definer pattern: save, switch, restore.
    unsafe {
        pg_sys::GetUserIdAndSecContext(&mut user, &mut context);
        pg_sys::SetUserIdAndSecContext(role, context | pg_sys::SECURITY_LOCAL_USERID_CHANGE as i32);
    }
    // (and with its settings: the function's SET search_path, lib.rs)
    let result = crate::plans::with_settings(&[("search_path", "pg_catalog, pg_temp")], f);
    unsafe { pg_sys::SetUserIdAndSecContext(user, context) };
    result
}

/// A version 4 UUID from the strong random source, as `gen_random_uuid()` makes it.
fn random_uuid() -> CtxResult<Uuid> {
    let mut bytes = [0u8; 16];
    // SAFETY: fills the buffer it is given.
    if !unsafe { pg_sys::pg_strong_random(bytes.as_mut_ptr().cast(), bytes.len()) } {
        return Err(CtxError::internal("could not generate random values"));
    }
    bytes[6] = (bytes[6] & 0x0f) | 0x40;
    bytes[8] = (bytes[8] & 0x3f) | 0x80;
    Ok(Uuid::from_bytes(bytes))
}

/// Forms and stores the row; returns the names of its non-NULL columns, sorted (the audit
/// row's `columns`, as the trigger lists them for an INSERT).
unsafe fn insert(table: &Messages, message: &NewMessage<'_>, message_id: &str) -> Vec<String> {
    unsafe {
        let relation = pg_sys::table_open(table.table, pg_sys::RowExclusiveLock as i32);
        let mut new_row = row_store::NewRow::of(relation);
        let mut set =
            |number: pg_sys::AttrNumber, datum: Option<pg_sys::Datum>| new_row.set(number, datum);
        // now(): the transaction's start, as the statement's now() and the columns' defaults
        let now = pg_sys::GetCurrentTransactionStartTimestamp();
        let application = row_store::application_name();
        set(table.context_id, message.context_id.into_datum());
        set(table.tenant, message.tenant.into_datum());
        set(table.seq, message.seq.into_datum());
        set(table.message_id, message_id.into_datum());
        set(table.revision, 1i32.into_datum());
        set(table.deleted, false.into_datum());
        set(table.role, message.role.into_datum());
        set(table.content, message.content.into_datum());
        set(table.metadata, JsonB(message.metadata.clone()).into_datum());
        set(table.tokens, message.tokens.into_datum());
        set(
            table.created_at,
            Some(match message.created_at {
                Some(at) => at.into_datum().unwrap_or(pg_sys::Datum::from(now)),
                None => pg_sys::Datum::from(now),
            }),
        );
        set(table.written_at, Some(pg_sys::Datum::from(now)));
        set(
            table.trace_id,
            trace::current_trace_id(crate::gucs::traceparent_as_set().as_deref(), &application)
                .into_datum(),
        );
        let described = pgrx::PgTupleDesc::from_pg_unchecked((*relation).rd_att);
        let mut columns: Vec<String> = described
            .iter()
            .filter(|a| !a.attisdropped && !new_row.is_null(a.attnum))
            .map(|a| a.name().to_string())
            .collect();
        columns.sort_unstable();
        drop(described);
        new_row.store(relation);
        // the lock is kept to the transaction's end, as an INSERT keeps it
        pg_sys::relation_close(relation, pg_sys::NoLock as i32);
        columns
    }
}
