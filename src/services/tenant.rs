//! The tenant of the current call: the tenant bound to the current role, else the one bound to
//! the session's role (ctx.bind_role_to_tenant), else `ctxstore.tenant`, else '' — what
//! row-level security compares every row's tenant with.
//!
//! Every policy and most statements ask for it, so the answer is kept, keyed by everything it
//! depends on: the current and the session role, the setting, and the bindings' table, whose
//! changes reach every backend as an invalidation (the table's triggers): this backend drops
//! its answer at once, the others when the change commits, read at their next statement, and
//! the bindings are read with the latest snapshot (as the catalog caches read theirs): a
//! binding another session commits applies from this session's next statement, in any
//! isolation level and inside a cursor's fetch too. An aborted transaction or subtransaction
//! drops it as well. (On a Citus worker, where bindings are role settings, and in a parallel
//! operation, it is kept for one statement.)

use std::cell::{Cell, RefCell};

use pgrx::pg_sys::{self, BuiltinOid::REGROLEOID};
use pgrx::spi::Spi;

use crate::error::{CtxError, CtxResult, ErrorKind};
use crate::plans::{first_value, Statement};
use pgrx::FromDatum;
use std::ffi::CStr;

struct Resolved {
    /// the statement it is kept for; `None`: until an invalidation
    statement: Option<(pg_sys::TimestampTz, pg_sys::TimestampTz)>,
    current_user: pg_sys::Oid,
    session_user: pg_sys::Oid,
    setting: Option<Vec<u8>>,
    tenant: String,
}

thread_local! {
    static RESOLVED: RefCell<Option<Resolved>> = const { RefCell::new(None) };
    /// the statement that last asked (transaction and statement start)
    static LAST_STATEMENT: Cell<(pg_sys::TimestampTz, pg_sys::TimestampTz)> = const { Cell::new((0, 0)) };
}

/// Drops the kept answer: this backend changed ctx.tenant_roles (its statement trigger), so a
/// binding made earlier in the same statement counts at once; or a (sub)transaction that may
/// have changed one rolled back.
pub fn forget() {
    // (try_: never panic in a callback, even while the backend exits)
    let _ = RESOLVED.try_with(|r| {
        if let Ok(mut kept) = r.try_borrow_mut() {
            *kept = None;
        }
    });
}

/// Relcache invalidation callback (registered in `_PG_init`): any invalidation, the bindings'
/// table's among them, drops the kept answer (the next call reads the table again).
pub(crate) unsafe extern "C-unwind" fn on_invalidation(_arg: pg_sys::Datum, _relid: pg_sys::Oid) {
    forget();
}

/// Syscache callback on roles (registered in `_PG_init`): bindings are by role OID, so a role
/// dropped (and its OID one day reused) or created drops the kept answer too.
pub(crate) unsafe extern "C-unwind" fn on_role_change(
    arg: pg_sys::Datum,
    _cache: std::ffi::c_int,
    _hash: u32,
) {
    unsafe { on_invalidation(arg, pg_sys::Oid::INVALID) };
}

/// Subtransaction callback (registered in `_PG_init`): a rollback to a savepoint, or an
/// exception block's, forgets the kept answer.
pub(crate) unsafe extern "C-unwind" fn on_subtransaction(
    event: pg_sys::SubXactEvent::Type,
    _subtransaction: pg_sys::SubTransactionId,
    _parent: pg_sys::SubTransactionId,
    _arg: *mut std::ffi::c_void,
) {
    if event == pg_sys::SubXactEvent::SUBXACT_EVENT_ABORT_SUB {
        forget();
    }
}

/// The tenant of the current call.
pub fn current() -> CtxResult<String> {
    // SAFETY: reads of the backend's own transaction and role state.
    let (transaction_start, statement_start, current_user, session_user) = unsafe {
        (
            pg_sys::GetCurrentTransactionStartTimestamp(),
            pg_sys::GetCurrentStatementStartTimestamp(),
            pg_sys::GetUserId(),
            pg_sys::GetSessionUserId(),
        )
    };
    let setting = crate::gucs::TENANT.get().map(|s| s.into_bytes());
    let statement = (transaction_start, statement_start);
    let kept_for = RESOLVED.with(|r| r.borrow().as_ref().map(|k| k.statement));
    if kept_for.is_some_and(|kept| kept.is_none()) && LAST_STATEMENT.get() != statement {
        // A new statement: read the invalidations other backends committed since the last one
        // (a statement inside a transaction block that holds its locks would not otherwise),
        // which drops the kept answer if the bindings changed. Cheap when there are none.
        LAST_STATEMENT.set(statement);
        unsafe { pg_sys::AcceptInvalidationMessages() };
    }
    let kept = RESOLVED.with(|r| {
        r.borrow()
            .as_ref()
            .filter(|k| {
                k.statement.is_none_or(|s| s == statement)
                    && k.current_user == current_user
                    && k.session_user == session_user
                    && k.setting == setting
            })
            .map(|k| k.tenant.clone())
    });
    if let Some(tenant) = kept {
        return Ok(tenant);
    }
    let worker = crate::services::cluster::on_worker()?;
    let tenant = if worker {
        on_worker(current_user, setting.as_deref())?
    } else {
        match bound_tenant(current_user, session_user)? {
            Some(bound) => bound,
            None => setting
                .as_deref()
                .map(|s| String::from_utf8_lossy(s).into_owned())
                .unwrap_or_default(),
        }
    };
    LAST_STATEMENT.set(statement);
    RESOLVED.with(|r| {
        *r.borrow_mut() = Some(Resolved {
            // (in parallel mode the bindings were read with the statement's snapshot)
            statement: (worker || unsafe { pg_sys::IsInParallelMode() }).then_some(statement),
            current_user,
            session_user,
            setting,
            tenant: tenant.clone(),
        })
    });
    Ok(tenant)
}

/// The tenant on a Citus worker, where a shard's query runs as the caller's current role. The
/// worker has the bindings' table, but with the coordinator's role OIDs, which name other roles
/// (or none) here: a bound role's tenant is its role setting `ctxstore.bound_tenant`, which
/// ctx.bind_role_to_tenant puts on every node, read from the catalog (a rebinding counts from
/// the next statement, as on one server; a setting applied at login would last as long as
/// Citus keeps its connection). A role without one must bypass row-level security to take the
/// tenant the coordinator passed along (`SET LOCAL ctxstore.tenant` with
/// `citus.propagate_set_commands = 'local'`; '' without): the worker cannot know the
/// coordinator's session role, so an unbound role reached by `SET ROLE` from a bound one must
/// not choose its tenant here. Else an error, never another tenant's rows.
fn on_worker(current_user: pg_sys::Oid, setting: Option<&[u8]>) -> CtxResult<String> {
    static ROLE_SETTING: Statement = Statement {
        sql: "SELECT substr(o, length('ctxstore.bound_tenant=') + 1)
                FROM pg_catalog.pg_db_role_setting s, unnest(s.setconfig) AS o
               WHERE s.setrole OPERATOR(pg_catalog.=) $1
                 AND s.setdatabase OPERATOR(pg_catalog.=) ANY (ARRAY[0, (SELECT d.oid FROM pg_catalog.pg_database d
                                                                     WHERE d.datname OPERATOR(pg_catalog.=) pg_catalog.current_database())]::oid[])
                 AND o LIKE 'ctxstore.bound\\_tenant=%'
               ORDER BY s.setdatabase DESC LIMIT 1",
        args: &[REGROLEOID],
        writes: false,
    };
    let bound: Option<String> = Spi::connect(|client| {
        let plan = ROLE_SETTING.plan(client)?;
        // SAFETY: a role OID passed as regrole (compared with an oid column).
        let args = [unsafe { pgrx::datum::DatumWithOid::new(current_user, REGROLEOID.value()) }];
        first_value::<String>(client.select(&*plan, Some(1), &args)?)
    })?;
    if let Some(bound) = bound.filter(|t| !t.is_empty()) {
        return Ok(bound);
    }
    // SAFETY: reads of the role's catalog row.
    let bypasses = unsafe { pg_sys::superuser() || pg_sys::has_bypassrls_privilege(current_user) };
    if bypasses {
        return Ok(setting
            .map(|s| String::from_utf8_lossy(s).into_owned())
            .unwrap_or_default());
    }
    Err(CtxError::new(
        ErrorKind::WrongState,
        "the tenant of this role is not known on this Citus worker",
    )
    .with_hint(
        "on a Citus cluster, bind the role to its tenant (ctx.bind_role_to_tenant); a role that chooses its tenant must bypass row-level security and pass it with SET LOCAL ctxstore.tenant after SET LOCAL citus.propagate_set_commands = 'local'",
    ))
}

/// The tenant bound to the current role, else to the session's role. (Qualified names and
/// operators: the caller's search_path must not change the lookup.)
fn bound_tenant(current_user: pg_sys::Oid, session_user: pg_sys::Oid) -> CtxResult<Option<String>> {
    // (the bindings are a reference table on a Citus coordinator, read in a policy inside a
    // shard's query too)
    crate::services::cluster::colocated(|| read_binding(current_user, session_user))
}

fn read_binding(current_user: pg_sys::Oid, session_user: pg_sys::Oid) -> CtxResult<Option<String>> {
    const BOUND: &CStr = c"SELECT coalesce(
          (SELECT t.tenant FROM ctx.tenant_roles t WHERE t.role OPERATOR(pg_catalog.=) $1),
          (SELECT t.tenant FROM ctx.tenant_roles t WHERE t.role OPERATOR(pg_catalog.=) $2))";
    thread_local! {
        static PLAN: Cell<pg_sys::SPIPlanPtr> = const { Cell::new(std::ptr::null_mut()) };
    }
    Spi::connect(|_client| {
        // SAFETY: SPI is connected; the plan is kept for the backend's life (the plan cache
        // revalidates it); the values are role OIDs passed as regrole; the result is copied
        // out before SPI's memory goes.
        unsafe {
            let mut plan = PLAN.get();
            if plan.is_null() {
                let mut types = [REGROLEOID.value(), REGROLEOID.value()];
                plan = pg_sys::SPI_prepare(BOUND.as_ptr(), 2, types.as_mut_ptr());
                if plan.is_null() || pg_sys::SPI_keepplan(plan) != 0 {
                    return Err(CtxError::internal("could not prepare the bindings' lookup"));
                }
                PLAN.set(plan);
            }
            let mut values = [
                pg_sys::Datum::from(current_user),
                pg_sys::Datum::from(session_user),
            ];
            let nulls = [b' ' as std::ffi::c_char; 2];
            // The latest committed bindings, whatever the caller's snapshot (a cursor's, a
            // repeatable-read transaction's), as the catalog caches read theirs: the answer is
            // kept until the next invalidation. (A parallel operation cannot take a snapshot:
            // the statement's, and the answer is kept for the statement only.)
            let snapshot = if pg_sys::IsInParallelMode() {
                std::ptr::null_mut()
            } else {
                pg_sys::GetLatestSnapshot()
            };
            let rc = pg_sys::SPI_execute_snapshot(
                plan,
                values.as_mut_ptr(),
                nulls.as_ptr(),
                snapshot,
                std::ptr::null_mut(),
                true,
                false,
                1,
            );
            if rc != pg_sys::SPI_OK_SELECT as i32 {
                return Err(CtxError::internal(format!(
                    "the bindings' lookup failed (SPI code {rc})"
                )));
            }
            let table = pg_sys::SPI_tuptable;
            if table.is_null() || pg_sys::SPI_processed == 0 {
                return Ok(None);
            }
            let mut is_null = false;
            let datum = pg_sys::SPI_getbinval(*(*table).vals, (*table).tupdesc, 1, &mut is_null);
            Ok(String::from_datum(datum, is_null))
        }
    })
}
