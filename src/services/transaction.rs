//! What the current transaction may write. Reads that keep books (a recall's access counts, a
//! TTL touch) skip the bookkeeping where nothing can be written, so that they work in
//! `BEGIN READ ONLY` and on hot standbys instead of failing there.

use pgrx::pg_sys;
use pgrx::spi::{Spi, SpiClient};

use crate::error::{CtxError, CtxResult, ErrorKind};

/// Transaction callback (registered in `_PG_init`, once for each backend-local answer that an
/// abort must drop; `forget` is its `fn()`): calls `forget` when a transaction aborts.
pub(crate) unsafe extern "C-unwind" fn forget_on_abort(
    event: pg_sys::XactEvent::Type,
    forget: *mut std::ffi::c_void,
) {
    if event == pg_sys::XactEvent::XACT_EVENT_ABORT
        || event == pg_sys::XactEvent::XACT_EVENT_PARALLEL_ABORT
    {
        // SAFETY: registered with a `fn()` as its argument, and nothing else.
        let forget: fn() = unsafe { std::mem::transmute::<*mut std::ffi::c_void, fn()>(forget) };
        forget();
    }
}

/// The argument `forget_on_abort` is registered with.
pub(crate) fn abort_argument(forget: fn()) -> *mut std::ffi::c_void {
    forget as *mut std::ffi::c_void
}

/// Whether this transaction is read-only: declared so, or on a standby (where every
/// transaction is).
pub fn read_only() -> bool {
    // SAFETY: plain reads of the backend's transaction state.
    unsafe { pg_sys::XactReadOnly || pg_sys::RecoveryInProgress() }
}

/// Runs `f` in an SPI connection that may write, after refusing a read-only transaction with
/// 25006. Without this, a write on a standby would fail inside pgrx, which asks for a
/// transaction id before it runs a writing statement, with an internal error (XX000).
pub fn writing<T>(f: impl FnOnce(&mut SpiClient<'_>) -> CtxResult<T>) -> CtxResult<T> {
    if read_only() {
        return Err(refusal());
    }
    Spi::connect_mut(f)
}

/// The error of a write asked for in a read-only transaction.
pub fn refusal() -> CtxError {
    CtxError::new(
        ErrorKind::ReadOnlyTransaction,
        "this ctxstore function writes, and the transaction is read-only",
    )
    .with_hint(
        "run it on the primary, outside a read-only transaction (a hot standby serves ctxstore's reads)",
    )
}
