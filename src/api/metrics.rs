//! The SQL functions that read the metrics: ctx.metric_samples (behind the ctx.metrics view),
//! ctx.metrics_prometheus, ctx.reset_metrics. Recording lives in `services::metrics`.

use pgrx::prelude::*;
use pgrx::JsonB;
use serde_json::{Map, Value};

use crate::core::metrics;
use crate::services::metrics::{block, gauges, samples, unix_ns, warn_if_local};

/// Every metric sample: counters, histogram buckets (cumulative, `le` in seconds), sums and
/// counts, errors by SQLSTATE class.
#[pg_extern(volatile, parallel_safe)]
fn metric_samples(
) -> TableIterator<'static, (name!(name, String), name!(labels, JsonB), name!(value, f64))> {
    warn_if_local();
    let rows: Vec<_> = samples()
        .into_iter()
        .map(|s| {
            let labels: Map<String, Value> = s
                .labels
                .iter()
                .map(|(k, v)| (k.to_string(), Value::String(v.clone())))
                .collect();
            (s.name(), JsonB(Value::Object(labels)), s.value)
        })
        .chain(gauges().into_iter().map(|g| {
            (
                g.name.to_string(),
                JsonB(Value::Object(Map::new())),
                g.value,
            )
        }))
        .collect();
    TableIterator::new(rows)
}

/// The metrics in the Prometheus text exposition format (0.0.4), for a scrape through any SQL
/// exporter.
#[pg_extern(volatile, parallel_safe)]
fn metrics_prometheus() -> String {
    warn_if_local();
    metrics::prometheus(&samples(), &gauges())
}

/// Zeroes every counter and histogram (server-wide when preloaded).
#[pg_extern(volatile, parallel_unsafe)]
fn reset_metrics() {
    block().reset(unix_ns());
}
