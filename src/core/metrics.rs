//! Metrics: a fixed block of atomic counters and latency histograms (placed in shared memory
//! when the library is preloaded, else per backend), its snapshot as samples, and the
//! Prometheus text exposition format. No allocation and no lock on the recording path.

use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

/// Every counter: one sample each, grouped in families that share a name (see `COUNTERS`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Counter {
    MessagesAppended,
    MessagesRevised,
    MessagesDeleted,
    MessagesPurged,
    MessagesRead,
    WindowsLastN,
    WindowsTokens,
    WindowsAssembled,
    Compactions,
    RecallsHnsw,
    RecallsExact,
    RecallsText,
    MemoriesWritten,
    MemoriesDeduplicated,
    MemoriesExpired,
    MessagesExpired,
    MessagesCompressed,
    StateExpired,
    StatePuts,
    StatePatches,
    StateConflicts,
    LlmCacheExpired,
    Encryptions,
    Decryptions,
    KeyCacheHits,
    KeyCacheMisses,
    BytesBeforeCompression,
    BytesAfterCompression,
}

pub struct Family {
    pub name: &'static str,
    pub help: &'static str,
}

const APPENDED: Family = Family {
    name: "ctxstore_messages_appended_total",
    help: "Messages appended to contexts.",
};
const CHANGED: Family = Family {
    name: "ctxstore_messages_changed_total",
    help: "Messages revised (edits), deleted (tombstones) and purged, by event.",
};
const READ: Family = Family {
    name: "ctxstore_messages_read_total",
    help: "Messages returned by read functions (windows, history, assembly).",
};
const WINDOWS: Family = Family {
    name: "ctxstore_windows_total",
    help: "Context windows served, by kind.",
};
const LLM_CACHE: Family = Family {
    name: "ctxstore_llm_cache_total",
    help: "LLM response cache entries, by event.",
};
const COMPACTIONS: Family = Family {
    name: "ctxstore_compactions_total",
    help: "Summary compactions (ctx.compact).",
};
const RECALLS: Family = Family {
    name: "ctxstore_recalls_total",
    help: "Memory recalls, by search path.",
};
const MEMORIES: Family = Family {
    name: "ctxstore_memories_total",
    help: "Long-term memory writes, deduplications and expiries.",
};
const MESSAGES_RETAINED: Family = Family {
    name: "ctxstore_messages_retention_total",
    help: "Messages deleted (expired) or compressed by the sweep.",
};
const STATE: Family = Family {
    name: "ctxstore_state_total",
    help: "Key-value state operations, version conflicts and expiries.",
};
const CRYPTO: Family = Family {
    name: "ctxstore_crypto_operations_total",
    help: "AES-256-GCM seals and opens of stored content.",
};
const KEY_CACHE: Family = Family {
    name: "ctxstore_key_cache_total",
    help: "Data-key cache lookups, by result.",
};
const BYTES: Family = Family {
    name: "ctxstore_compression_bytes_total",
    help: "Bytes given to lz4 and bytes it produced.",
};

/// A counter's family, its label (name, value) if any, and the counter.
pub type CounterDef = (
    &'static Family,
    Option<(&'static str, &'static str)>,
    Counter,
);

/// (family, label, counter), in family order: the exposition format wants a family's samples
/// together.
pub const COUNTERS: [CounterDef; 28] = [
    (&APPENDED, None, Counter::MessagesAppended),
    (
        &CHANGED,
        Some(("event", "revised")),
        Counter::MessagesRevised,
    ),
    (
        &CHANGED,
        Some(("event", "deleted")),
        Counter::MessagesDeleted,
    ),
    (&CHANGED, Some(("event", "purged")), Counter::MessagesPurged),
    (&READ, None, Counter::MessagesRead),
    (&WINDOWS, Some(("kind", "last_n")), Counter::WindowsLastN),
    (&WINDOWS, Some(("kind", "tokens")), Counter::WindowsTokens),
    (
        &WINDOWS,
        Some(("kind", "assembled")),
        Counter::WindowsAssembled,
    ),
    (&COMPACTIONS, None, Counter::Compactions),
    (&RECALLS, Some(("path", "hnsw")), Counter::RecallsHnsw),
    (&RECALLS, Some(("path", "exact")), Counter::RecallsExact),
    (&RECALLS, Some(("path", "text")), Counter::RecallsText),
    (
        &MEMORIES,
        Some(("event", "written")),
        Counter::MemoriesWritten,
    ),
    (
        &MEMORIES,
        Some(("event", "deduplicated")),
        Counter::MemoriesDeduplicated,
    ),
    (
        &MEMORIES,
        Some(("event", "expired")),
        Counter::MemoriesExpired,
    ),
    (
        &MESSAGES_RETAINED,
        Some(("event", "expired")),
        Counter::MessagesExpired,
    ),
    (
        &MESSAGES_RETAINED,
        Some(("event", "compressed")),
        Counter::MessagesCompressed,
    ),
    (&STATE, Some(("event", "expired")), Counter::StateExpired),
    (&STATE, Some(("event", "put")), Counter::StatePuts),
    (&STATE, Some(("event", "patch")), Counter::StatePatches),
    (&STATE, Some(("event", "conflict")), Counter::StateConflicts),
    (
        &LLM_CACHE,
        Some(("event", "expired")),
        Counter::LlmCacheExpired,
    ),
    (
        &CRYPTO,
        Some(("operation", "encrypt")),
        Counter::Encryptions,
    ),
    (
        &CRYPTO,
        Some(("operation", "decrypt")),
        Counter::Decryptions,
    ),
    (&KEY_CACHE, Some(("result", "hit")), Counter::KeyCacheHits),
    (
        &KEY_CACHE,
        Some(("result", "miss")),
        Counter::KeyCacheMisses,
    ),
    (
        &BYTES,
        Some(("stage", "before")),
        Counter::BytesBeforeCompression,
    ),
    (
        &BYTES,
        Some(("stage", "after")),
        Counter::BytesAfterCompression,
    ),
];

/// The calls whose latency is recorded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Call {
    Append,
    Read,
    Recall,
    Assembly,
    StateWrite,
}

pub const CALLS: [(&str, Call); 5] = [
    ("append", Call::Append),
    ("read", Call::Read),
    ("recall", Call::Recall),
    ("build_context", Call::Assembly),
    ("state_write", Call::StateWrite),
];

pub const DURATION: Family = Family {
    name: "ctxstore_call_duration_seconds",
    help: "Latency of ctxstore calls that succeeded, by call.",
};

/// Upper bounds of the latency buckets, in microseconds (+Inf is implicit).
pub const BUCKETS_US: [u64; 14] = [
    100, 250, 500, 1_000, 2_500, 5_000, 10_000, 25_000, 50_000, 100_000, 250_000, 500_000,
    1_000_000, 2_500_000,
];

pub const ERRORS: Family = Family {
    name: "ctxstore_errors_total",
    help: "Errors raised by ctxstore calls, by SQLSTATE class.",
};

/// SQLSTATE classes counted apart (ctxstore raises these); the last slot counts the others.
pub const ERROR_CLASSES: [&str; 14] = [
    "22", "23", "25", "2B", "39", "40", "42", "53", "54", "55", "57", "P0", "XX", "other",
];

pub struct Histogram {
    buckets: [AtomicU64; BUCKETS_US.len()],
    sum_us: AtomicU64,
    count: AtomicU64,
}

impl Histogram {
    const fn new() -> Self {
        Histogram {
            buckets: [const { AtomicU64::new(0) }; BUCKETS_US.len()],
            sum_us: AtomicU64::new(0),
            count: AtomicU64::new(0),
        }
    }

    fn observe(&self, micros: u64) {
        // non-cumulative buckets: one increment per observation; summed when read
        if let Some(i) = BUCKETS_US.iter().position(|&bound| micros <= bound) {
            self.buckets[i].fetch_add(1, Relaxed);
        }
        self.sum_us.fetch_add(micros, Relaxed);
        self.count.fetch_add(1, Relaxed);
    }

    fn reset(&self) {
        self.buckets.iter().for_each(|b| b.store(0, Relaxed));
        self.sum_us.store(0, Relaxed);
        self.count.store(0, Relaxed);
    }
}

/// All metrics: plain atomics, so one block can live in shared memory and be updated by every
/// backend at once.
#[repr(C)]
pub struct Block {
    counters: [AtomicU64; COUNTERS.len()],
    durations: [Histogram; CALLS.len()],
    errors: [AtomicU64; ERROR_CLASSES.len()],
    /// when counting started: creation or the last `reset` (Unix ns); cumulative exports
    /// start there
    reset_unix_ns: AtomicU64,
}

impl Default for Block {
    fn default() -> Self {
        Self::new()
    }
}

impl Block {
    pub const fn new() -> Self {
        Block {
            counters: [const { AtomicU64::new(0) }; COUNTERS.len()],
            durations: [const { Histogram::new() }; CALLS.len()],
            errors: [const { AtomicU64::new(0) }; ERROR_CLASSES.len()],
            reset_unix_ns: AtomicU64::new(0),
        }
    }

    pub fn add(&self, counter: Counter, n: u64) {
        self.counters[counter as usize].fetch_add(n, Relaxed);
    }

    pub fn observe(&self, call: Call, micros: u64) {
        self.durations[call as usize].observe(micros);
    }

    /// Counts an error by the class (first two characters) of its SQLSTATE.
    pub fn error(&self, sqlstate: &str) {
        let class = sqlstate.get(..2).unwrap_or("");
        let slot = ERROR_CLASSES[..ERROR_CLASSES.len() - 1]
            .iter()
            .position(|&c| c == class)
            .unwrap_or(ERROR_CLASSES.len() - 1);
        self.errors[slot].fetch_add(1, Relaxed);
    }

    /// Zeroes everything, then records when (cumulative exports start there).
    pub fn reset(&self, now_unix_ns: u64) {
        self.counters.iter().for_each(|c| c.store(0, Relaxed));
        self.durations.iter().for_each(Histogram::reset);
        self.errors.iter().for_each(|c| c.store(0, Relaxed));
        self.reset_unix_ns.store(now_unix_ns, Relaxed);
    }

    /// A block whose counting starts now (shared memory, at server start).
    pub fn starting_at(now_unix_ns: u64) -> Self {
        let block = Self::new();
        block.reset_unix_ns.store(now_unix_ns, Relaxed);
        block
    }

    /// The current values (each read atomically; the whole not at one instant).
    pub fn snapshot(&self) -> Snapshot {
        Snapshot {
            counters: std::array::from_fn(|i| self.counters[i].load(Relaxed)),
            durations: std::array::from_fn(|i| {
                let h = &self.durations[i];
                let buckets: [u64; BUCKETS_US.len()] =
                    std::array::from_fn(|b| h.buckets[b].load(Relaxed));
                // read after the buckets: concurrent observations may make count larger than
                // their sum, never smaller, so +Inf stays >= every bucket
                let count = h.count.load(Relaxed).max(buckets.iter().sum());
                HistogramSnapshot {
                    buckets,
                    sum_us: h.sum_us.load(Relaxed),
                    count,
                }
            }),
            errors: std::array::from_fn(|i| self.errors[i].load(Relaxed)),
            reset_unix_ns: self.reset_unix_ns.load(Relaxed),
        }
    }
}

pub struct HistogramSnapshot {
    /// per bucket (not cumulative); observations above the last bound are count - sum
    pub buckets: [u64; BUCKETS_US.len()],
    pub sum_us: u64,
    pub count: u64,
}

pub struct Snapshot {
    pub counters: [u64; COUNTERS.len()],
    pub durations: [HistogramSnapshot; CALLS.len()],
    pub errors: [u64; ERROR_CLASSES.len()],
    pub reset_unix_ns: u64,
}

impl Snapshot {
    pub fn counter(&self, counter: Counter) -> u64 {
        self.counters[counter as usize]
    }

    /// Every sample, as the exposition format names them (histograms as cumulative `_bucket`
    /// samples, `_sum` in seconds and `_count`).
    pub fn samples(&self) -> Vec<Sample> {
        let mut samples = Vec::with_capacity(128);
        for (family, label, counter) in COUNTERS {
            samples.push(Sample {
                family,
                suffix: "",
                labels: label.map(|(k, v)| (k, v.to_string())).into_iter().collect(),
                value: self.counters[counter as usize] as f64,
            });
        }
        for (name, call) in CALLS {
            let histogram = &self.durations[call as usize];
            let mut cumulative = 0;
            for (i, bound) in BUCKETS_US.iter().enumerate() {
                cumulative += histogram.buckets[i];
                samples.push(Sample {
                    family: &DURATION,
                    suffix: "_bucket",
                    labels: vec![("call", name.to_string()), ("le", seconds(*bound))],
                    value: cumulative as f64,
                });
            }
            let count = histogram.count;
            samples.push(Sample {
                family: &DURATION,
                suffix: "_bucket",
                labels: vec![("call", name.to_string()), ("le", "+Inf".to_string())],
                value: count as f64,
            });
            samples.push(Sample {
                family: &DURATION,
                suffix: "_sum",
                labels: vec![("call", name.to_string())],
                value: histogram.sum_us as f64 / 1e6,
            });
            samples.push(Sample {
                family: &DURATION,
                suffix: "_count",
                labels: vec![("call", name.to_string())],
                value: count as f64,
            });
        }
        for (i, class) in ERROR_CLASSES.iter().enumerate() {
            samples.push(Sample {
                family: &ERRORS,
                suffix: "",
                labels: vec![("class", class.to_string())],
                value: self.errors[i] as f64,
            });
        }
        samples
    }
}

fn seconds(micros: u64) -> String {
    format!("{}", micros as f64 / 1e6)
}

pub struct Sample {
    pub family: &'static Family,
    pub suffix: &'static str,
    pub labels: Vec<(&'static str, String)>,
    pub value: f64,
}

impl Sample {
    pub fn name(&self) -> String {
        format!("{}{}", self.family.name, self.suffix)
    }
}

/// The kind of a family for its `# TYPE` line.
fn kind(family: &Family) -> &'static str {
    if std::ptr::eq(family, &DURATION) {
        "histogram"
    } else {
        "counter"
    }
}

/// Gauges that are not kept in the block (computed by the caller), appended after it.
pub struct Gauge {
    pub name: &'static str,
    pub help: &'static str,
    pub value: f64,
}

/// The Prometheus text exposition format (version 0.0.4): `# HELP` and `# TYPE` once per
/// family, then its samples; label values escaped.
pub fn prometheus(samples: &[Sample], gauges: &[Gauge]) -> String {
    let mut out = String::with_capacity(16 * 1024);
    let mut current: Option<&str> = None;
    for sample in samples {
        if current != Some(sample.family.name) {
            current = Some(sample.family.name);
            let _ = writeln!(out, "# HELP {} {}", sample.family.name, sample.family.help);
            let _ = writeln!(out, "# TYPE {} {}", sample.family.name, kind(sample.family));
        }
        out.push_str(&sample.name());
        if !sample.labels.is_empty() {
            out.push('{');
            for (i, (key, value)) in sample.labels.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                let _ = write!(out, "{key}=\"{}\"", escape_label(value));
            }
            out.push('}');
        }
        let _ = writeln!(out, " {}", sample.value);
    }
    for gauge in gauges {
        let _ = writeln!(out, "# HELP {} {}", gauge.name, gauge.help);
        let _ = writeln!(out, "# TYPE {} gauge", gauge.name);
        let _ = writeln!(out, "{} {}", gauge.name, gauge.value);
    }
    out
}

fn escape_label(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_table_follows_the_enum() {
        for (i, (_, _, counter)) in COUNTERS.iter().enumerate() {
            assert_eq!(*counter as usize, i, "{counter:?} out of place");
        }
        for (i, (_, call)) in CALLS.iter().enumerate() {
            assert_eq!(*call as usize, i);
        }
        // families are contiguous (the exposition format requires it)
        let names: Vec<&str> = COUNTERS.iter().map(|(f, _, _)| f.name).collect();
        for (i, name) in names.iter().enumerate() {
            if i > 0 && names[i - 1] != *name {
                assert!(!names[..i].contains(name), "{name} split");
            }
        }
    }

    #[test]
    fn histogram_buckets_are_cumulative() {
        let block = Block::new();
        for micros in [50, 300, 300, 7_000, 9_000_000] {
            block.observe(Call::Append, micros);
        }
        let samples = block.snapshot().samples();
        let append: Vec<(String, f64)> = samples
            .iter()
            .filter(|s| s.labels.first().is_some_and(|(_, v)| v == "append"))
            .map(|s| {
                let le = s.labels.get(1).map_or(String::new(), |(_, v)| v.clone());
                (format!("{}{}", s.suffix, le), s.value)
            })
            .collect();
        let get = |k: &str| append.iter().find(|(n, _)| n == k).unwrap().1;
        assert_eq!(get("_bucket0.0001"), 1.0);
        assert_eq!(get("_bucket0.0005"), 3.0);
        assert_eq!(get("_bucket0.01"), 4.0);
        assert_eq!(get("_bucket2.5"), 4.0);
        assert_eq!(get("_bucket+Inf"), 5.0);
        assert_eq!(get("_count"), 5.0);
        assert!((get("_sum") - 9.00765).abs() < 1e-9);
    }

    #[test]
    fn errors_by_class_and_reset() {
        let block = Block::new();
        block.error("22023");
        block.error("22004");
        block.error("HV000");
        block.add(Counter::StatePuts, 3);
        let value = |name: &str, label: &str| {
            block
                .snapshot()
                .samples()
                .iter()
                .find(|s| s.name() == name && s.labels.iter().any(|(_, v)| v == label))
                .unwrap()
                .value
        };
        assert_eq!(value("ctxstore_errors_total", "22"), 2.0);
        assert_eq!(value("ctxstore_errors_total", "other"), 1.0);
        assert_eq!(value("ctxstore_state_total", "put"), 3.0);
        block.reset(1);
        assert_eq!(value("ctxstore_errors_total", "22"), 0.0);
        assert_eq!(value("ctxstore_state_total", "put"), 0.0);
    }

    #[test]
    fn exposition_has_one_help_and_type_per_family() {
        let block = Block::new();
        block.add(Counter::MessagesAppended, 2);
        let text = prometheus(
            &block.snapshot().samples(),
            &[Gauge {
                name: "ctxstore_up",
                help: "x",
                value: 1.0,
            }],
        );
        assert!(text.contains(
            "# TYPE ctxstore_messages_appended_total counter\nctxstore_messages_appended_total 2\n"
        ));
        assert!(
            text.contains("ctxstore_call_duration_seconds_bucket{call=\"append\",le=\"+Inf\"} 0\n")
        );
        assert_eq!(text.matches("# TYPE ctxstore_windows_total ").count(), 1);
        assert_eq!(
            text.matches("# TYPE ctxstore_call_duration_seconds histogram")
                .count(),
            1
        );
        assert!(text.ends_with("# TYPE ctxstore_up gauge\nctxstore_up 1\n"));
        assert_eq!(escape_label("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
    }
}
