//! The background worker (started when ctxstore is preloaded): runs ctx.sweep every
//! `ctxstore.sweep_interval` in `ctxstore.database`, and pushes metrics and slow-call spans to
//! `ctxstore.otlp_endpoint` every `ctxstore.otlp_interval`. Backends never wait on it.

use std::time::{Duration, Instant};

use pgrx::bgworkers::{
    BackgroundWorker, BackgroundWorkerBuilder, BgWorkerStartTime, SignalWakeFlags,
};
use pgrx::pg_sys::panic::CaughtError;
use pgrx::prelude::*;
use prost::Message;

use crate::core::otlp;
use crate::gucs;
use crate::services::metrics;
use crate::services::retention;

/// Rows per sweep transaction, and transactions per run (the rest waits for the next run).
const SWEEP_BATCH: i32 = 10_000;
const SWEEP_BATCHES_PER_RUN: usize = 100;
/// Connect, send and receive timeout of one export.
const EXPORT_TIMEOUT: Duration = Duration::from_secs(2);
/// Failed exports are logged at most this often.
const FAILURE_LOG_EVERY: Duration = Duration::from_secs(60);

pub fn register() {
    BackgroundWorkerBuilder::new("ctxstore maintenance")
        .set_type("ctxstore maintenance")
        .set_library(concat!("ctxstore-", env!("CARGO_PKG_VERSION")))
        .set_function("ctxstore_worker_main")
        .enable_spi_access()
        // on a hot standby too: it exports the standby's metrics (and does not sweep)
        .set_start_time(BgWorkerStartTime::ConsistentState)
        .set_restart_time(Some(Duration::from_secs(10)))
        .load();
}

struct Exporter {
    last_failure_log: Option<Instant>,
    attributes: Vec<(&'static str, String)>,
}

impl Exporter {
    fn export(&mut self, endpoint: &str) {
        let spans = metrics::take_spans();
        let result = otlp::parse_endpoint(endpoint).and_then(|target| {
            let snapshot = metrics::snapshot();
            let start = snapshot.reset_unix_ns;
            let request =
                otlp::metrics_request(&snapshot, start, metrics::unix_ns(), &self.attributes);
            check(otlp::post(
                &target,
                "/v1/metrics",
                &request.encode_to_vec(),
                EXPORT_TIMEOUT,
            )?)?;
            if !spans.is_empty() {
                let request = otlp::traces_request(&spans, &self.attributes);
                check(otlp::post(
                    &target,
                    "/v1/traces",
                    &request.encode_to_vec(),
                    EXPORT_TIMEOUT,
                )?)?;
            }
            Ok(())
        });
        if let Err(message) = result {
            let due = self
                .last_failure_log
                .is_none_or(|at| at.elapsed() >= FAILURE_LOG_EVERY);
            if due {
                self.last_failure_log = Some(Instant::now());
                log!("ctxstore: OTLP export to {endpoint} failed (retrying every interval; logged once a minute): {message}");
            }
        }
    }
}

fn check(status: u16) -> Result<(), String> {
    if (200..300).contains(&status) {
        Ok(())
    } else {
        Err(format!("HTTP status {status}"))
    }
}

/// Runs ctx.sweep in its own transactions until nothing is left, the run's cap, or shutdown.
/// An error (say, the extension's SQL is older than this library) is logged and ends the run;
/// the worker carries on (exports keep going, the next run retries).
fn sweep() {
    // SAFETY: a plain read of shared state.
    if unsafe { pg_sys::RecoveryInProgress() } {
        return; // a standby: the primary sweeps, and deletions replicate
    }
    let installed = in_transaction(|| {
        Spi::get_one::<bool>(
            "SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_extension WHERE extname = 'ctxstore')",
        )
        .ok()
        .flatten()
        .unwrap_or(false)
    });
    if installed != Some(true) {
        return;
    }
    for _ in 0..SWEEP_BATCHES_PER_RUN {
        if BackgroundWorker::sigterm_received() {
            return;
        }
        let removed = in_transaction(|| {
            use crate::api::raise::OrRaise;
            retention::run(Some(SWEEP_BATCH)).or_raise()
        });
        if removed.is_none_or(|n| n < i64::from(SWEEP_BATCH)) {
            break;
        }
    }
}

/// One transaction; an error aborts it, is logged, and gives None instead of ending the worker.
fn in_transaction<R>(
    body: impl FnOnce() -> R + std::panic::UnwindSafe + std::panic::RefUnwindSafe,
) -> Option<R> {
    PgTryBuilder::new(|| Some(BackgroundWorker::transaction(body)))
        .catch_others(|error| {
            let message = match &error {
                CaughtError::PostgresError(report) | CaughtError::ErrorReport(report) => {
                    report.message().to_string()
                }
                CaughtError::RustPanic { ereport, .. } => ereport.message().to_string(),
            };
            // SAFETY: the failed transaction is still open; this is how Postgres' own workers
            // recover from an error in their main loop.
            unsafe { pg_sys::AbortCurrentTransaction() };
            log!("ctxstore: background sweep failed, retrying next interval: {message}");
            None
        })
        .execute()
}

#[pg_guard]
#[unsafe(no_mangle)]
pub extern "C-unwind" fn ctxstore_worker_main(_arg: pg_sys::Datum) {
    BackgroundWorker::attach_signal_handlers(SignalWakeFlags::SIGHUP | SignalWakeFlags::SIGTERM);
    BackgroundWorker::connect_worker_to_spi(Some(&gucs::database()), None);
    let mut exporter = Exporter {
        last_failure_log: None,
        attributes: vec![
            ("service.name", "ctxstore".to_string()),
            ("service.version", env!("CARGO_PKG_VERSION").to_string()),
            ("db.system", "postgresql".to_string()),
        ],
    };
    let (mut last_sweep, mut last_export) = (Instant::now(), Instant::now());
    while BackgroundWorker::wait_latch(Some(Duration::from_secs(1))) {
        if BackgroundWorker::sighup_received() {
            // SAFETY: the worker's main loop, outside any transaction, as Postgres' own do.
            unsafe { pg_sys::ProcessConfigFile(pg_sys::GucContext::PGC_SIGHUP) };
        }
        let sweep_every = gucs::SWEEP_INTERVAL.get();
        if sweep_every > 0 && last_sweep.elapsed() >= Duration::from_secs(sweep_every as u64) {
            sweep();
            last_sweep = Instant::now();
        }
        if BackgroundWorker::sigterm_received() {
            break;
        }
        if let Some(endpoint) = gucs::otlp_endpoint() {
            let every = Duration::from_secs(gucs::OTLP_INTERVAL.get().max(1) as u64);
            if last_export.elapsed() >= every {
                exporter.export(&endpoint);
                last_export = Instant::now();
            }
        }
    }
}
