//! Where the metrics live (shared memory when preloaded, else this backend), the recording calls
//! the SQL functions make, and slow-call spans for the OTLP exporter. The SQL functions that
//! read them are in `api::metrics`.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use pgrx::lwlock::PgLwLock;
use pgrx::pg_sys::panic::ErrorReport;
use pgrx::prelude::*;
use pgrx::{pg_shmem_init, PGRXSharedMemory, PgAtomic};

use crate::core::metrics::{self, Block, Call, Counter, Gauge};
use crate::core::trace::{self, Span, SpanRing};
use crate::error::CtxResult;
use crate::gucs;

// SAFETY: plain atomics and integers, valid when zeroed or built by `new`; no pointers.
unsafe impl PGRXSharedMemory for Block {}
unsafe impl PGRXSharedMemory for SpanRing {}

static SHARED: PgAtomic<Block> = unsafe { PgAtomic::new(c"ctxstore metrics") };
static SPANS: PgLwLock<SpanRing> = unsafe { PgLwLock::new(c"ctxstore spans") };
/// The block of a backend whose server did not preload ctxstore: this session's calls only.
static LOCAL: Block = Block::new();
/// Set in the postmaster when preloading; forked backends inherit it with the shared memory.
static PRELOADED: AtomicBool = AtomicBool::new(false);

/// Reserves the shared block; from `_PG_init` while shared_preload_libraries is processed.
pub fn init_shared_memory() {
    pg_shmem_init!(SHARED = Block::starting_at(unix_ns()));
    pg_shmem_init!(SPANS = SpanRing::new());
    PRELOADED.store(true, Ordering::Relaxed);
}

pub fn preloaded() -> bool {
    PRELOADED.load(Ordering::Relaxed)
}

pub fn block() -> &'static Block {
    if preloaded() {
        SHARED.get()
    } else {
        &LOCAL
    }
}

pub fn count(counter: Counter, n: u64) {
    if n > 0 && gucs::METRICS.get() {
        block().add(counter, n);
    }
}

pub fn error(sqlstate: &str) {
    if gucs::METRICS.get() {
        block().error(sqlstate);
    }
}

/// Runs one SQL-callable call, recording its latency when it succeeds (and a span for the
/// exporter when it was slow).
pub fn timed<T>(call: Call, f: impl FnOnce() -> CtxResult<T>) -> CtxResult<T> {
    if !gucs::METRICS.get() {
        return f();
    }
    let start = Instant::now();
    let result = f();
    if result.is_ok() {
        let micros = start.elapsed().as_micros() as u64;
        block().observe(call, micros);
        let slow_ms = gucs::SLOW_CALL_MS.get();
        if slow_ms > 0 && micros >= slow_ms as u64 * 1000 && preloaded() {
            record_span(call, micros);
        }
    }
    result
}

pub fn unix_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}

fn record_span(call: Call, micros: u64) {
    let end_ns = unix_ns();
    let parent = gucs::traceparent()
        .and_then(|t| trace::parse_traceparent(&t))
        .or_else(|| {
            let app = unsafe { std::ffi::CStr::from_ptr(pg_sys::application_name) };
            trace::traceparent_in_comment(&app.to_string_lossy())
        });
    let mut random = [0u8; 24];
    // SAFETY: a plain buffer of the given length.
    if !unsafe { pg_sys::pg_strong_random(random.as_mut_ptr().cast(), random.len()) } {
        return;
    }
    let span = Span::new(call, parent, &random, end_ns, micros);
    SPANS.exclusive().push(span);
}

/// The spans not exported yet, oldest first; marks them exported.
pub fn take_spans() -> Vec<Span> {
    SPANS.exclusive().take()
}

pub fn snapshot() -> metrics::Snapshot {
    block().snapshot()
}

pub fn samples() -> Vec<metrics::Sample> {
    snapshot().samples()
}

/// Once per session, when the metrics are this session's only.
pub fn warn_if_local() {
    static WARNED: AtomicBool = AtomicBool::new(false);
    if !preloaded() && !WARNED.swap(true, Ordering::Relaxed) {
        ErrorReport::new(
            PgSqlErrorCode::ERRCODE_WARNING,
            "ctxstore is not in shared_preload_libraries: these metrics count this session's calls only",
            "ctxstore",
        )
        .set_hint("add the library of the installed version to shared_preload_libraries and restart the server for server-wide metrics: SELECT 'ctxstore-' || extversion FROM pg_extension WHERE extname = 'ctxstore'")
        .report(PgLogLevel::NOTICE);
    }
}

pub fn gauges() -> Vec<Gauge> {
    vec![Gauge {
        name: "ctxstore_metrics_shared",
        help: "1 when the metrics are server-wide (ctxstore preloaded), 0 when they count one session.",
        value: if preloaded() { 1.0 } else { 0.0 },
    }]
}
