//! Criterion benchmarks of the pure kernels on the hot paths. Baselines named per group.

use criterion::{black_box, criterion_group, criterion_main, Criterion, Throughput};
use ctxstore::core::crypto;
use ctxstore::core::filter::{self, ColumnType, FilterTarget};
use ctxstore::core::knn::{Metric, TopK};
use ctxstore::core::processors::normalize;
use ctxstore::core::redact::{self, Counts, Kind, Selection};
use ctxstore::core::scoring::Weights;
use ctxstore::core::{archive, conversation, tokenizer::Encoding};

fn chat_text(bytes: usize) -> String {
    let sentence = "The user asked how to rotate the API key; the assistant explained the steps \
                    and linked the docs (v2.3, 14 steps). ";
    sentence.repeat(bytes / sentence.len() + 1)[..bytes].to_string()
}

fn tokenizer(c: &mut Criterion) {
    let mut group = c.benchmark_group("count_tokens");
    for bytes in [256usize, 4096, 65536] {
        let text = chat_text(bytes);
        group.throughput(Throughput::Bytes(bytes as u64));
        group.bench_function(format!("o200k_base/{bytes}B"), |b| {
            b.iter(|| Encoding::O200kBase.count(black_box(&text)))
        });
        group.bench_function(format!("cl100k_base/{bytes}B"), |b| {
            b.iter(|| Encoding::Cl100kBase.count(black_box(&text)))
        });
    }
    group.finish();
}

fn lz4(c: &mut Criterion) {
    let mut group = c.benchmark_group("archive_lz4");
    let text = chat_text(4096);
    let block = archive::compress(&text);
    group.throughput(Throughput::Bytes(text.len() as u64));
    group.bench_function("compress/4KiB", |b| {
        b.iter(|| archive::compress(black_box(&text)))
    });
    group.bench_function("decompress/4KiB", |b| {
        b.iter(|| archive::decompress(black_box(&block)).unwrap())
    });
    group.finish();
}

fn batch(c: &mut Criterion) {
    let messages: Vec<serde_json::Value> = (0..100)
        .map(|i| serde_json::json!({"role": if i % 2 == 0 { "user" } else { "assistant" }, "content": chat_text(200), "metadata": {"turn": i}}))
        .collect();
    let messages = serde_json::Value::Array(messages);
    c.bench_function("append_many_validate/100", |b| {
        b.iter(|| conversation::parse_batch(black_box(&messages), 1 << 20).unwrap())
    });
}

fn pseudo_random(seed: &mut u64, n: usize) -> Vec<f32> {
    (0..n)
        .map(|_| {
            *seed = seed
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            ((*seed >> 40) as f32 / (1u64 << 24) as f32) - 0.5
        })
        .collect()
}

/// The exact recall path: top-10 by cosine over N candidates of 384 dims (baseline: a naive
/// score-everything-then-sort, what a client-side reranker does).
fn knn(c: &mut Criterion) {
    let mut seed = 42;
    let query = pseudo_random(&mut seed, 384);
    let mut group = c.benchmark_group("exact_knn_384d_top10");
    for n in [1_000usize, 10_000] {
        let vectors: Vec<Vec<f32>> = (0..n).map(|_| pseudo_random(&mut seed, 384)).collect();
        group.throughput(Throughput::Elements(n as u64));
        group.bench_function(format!("ctxstore_topk/{n}"), |b| {
            b.iter(|| {
                let mut top = TopK::new(&query, Metric::Cosine, 10);
                for (i, v) in vectors.iter().enumerate() {
                    top.push(v, i);
                }
                top.into_sorted()
            })
        });
        group.bench_function(format!("naive_sort/{n}"), |b| {
            b.iter(|| {
                let mut all: Vec<(usize, f32)> = vectors
                    .iter()
                    .enumerate()
                    .map(|(i, v)| {
                        let dot: f32 = query.iter().zip(v).map(|(x, y)| x * y).sum();
                        let nq: f32 = query.iter().map(|x| x * x).sum::<f32>().sqrt();
                        let nv: f32 = v.iter().map(|x| x * x).sum::<f32>().sqrt();
                        (i, dot / (nq * nv))
                    })
                    .collect();
                all.sort_by(|a, b| b.1.total_cmp(&a.1));
                all.truncate(10);
                all
            })
        });
    }
    group.finish();
}

const TARGET: FilterTarget = FilterTarget {
    document: "m.metadata",
    columns: &[
        ("importance", "m.importance", ColumnType::Number),
        ("content", "m.content", ColumnType::Text),
    ],
};

fn filter_compiler(c: &mut Criterion) {
    let simple = serde_json::json!({"topic": "billing"});
    let nested = serde_json::json!({
        "$or": [{"user.tier": {"$in": ["gold", "platinum"]}}, {"importance": {"$gte": 0.8}}],
        "tags": {"$contains": ["urgent"]},
        "$not": {"content": {"$ilike": "%spam%"}},
        "created": {"$gte": "2026-01-01", "$lt": "2027-01-01"}
    });
    c.bench_function("filter_compile/simple", |b| {
        b.iter(|| filter::compile(black_box(&simple), &TARGET, 1).unwrap())
    });
    c.bench_function("filter_compile/nested_7_conditions", |b| {
        b.iter(|| filter::compile(black_box(&nested), &TARGET, 1).unwrap())
    });
}

/// Typed state validation: the per-backend cache of compiled schemas vs compiling on every write.
fn schema_validation(c: &mut Criterion) {
    let definition = serde_json::json!({
        "type": "object", "required": ["first", "last"],
        "properties": {
            "first": {"type": "string"}, "last": {"type": "string"},
            "age": {"type": "integer", "minimum": 0},
            "tags": {"type": "array", "items": {"type": "string"}},
            "address": {"type": "object", "properties": {"city": {"type": "string"}, "zip": {"type": "string", "pattern": "^[0-9]{5}$"}}}
        }
    });
    let value = serde_json::json!({"first": "Ada", "last": "Lovelace", "age": 36, "tags": ["math", "poetry"],
                                   "address": {"city": "London", "zip": "12345"}});
    let compiled = ctxstore::core::schema::compile(&definition).unwrap();
    c.bench_function("schema_validate/cached_compiled", |b| {
        b.iter(|| compiled.check(black_box(&value), "p", 1).unwrap())
    });
    c.bench_function("schema_validate/compile_each_time", |b| {
        b.iter(|| {
            ctxstore::core::schema::compile(black_box(&definition))
                .unwrap()
                .check(&value, "p", 1)
                .unwrap()
        })
    });
}

// Write-path processors run on every append: the clean case must cost little.
fn processors(c: &mut Criterion) {
    let mut group = c.benchmark_group("write_processors");
    let clean = chat_text(4096);
    let dirty = format!(
        "{}card 4111 1111 1111 1111, key sk-proj-abcdefghijklmnopqrstuvwxyz0123, mail ada@example.com{}",
        &clean[..2000],
        &clean[..2000]
    );
    let secrets = Selection::new(true, &[]);
    let everything = Selection::new(true, &Kind::PERSONAL);
    group.throughput(Throughput::Bytes(4096));
    group.bench_function("redact_secrets/clean/4KiB", |b| {
        b.iter(|| redact::redact(black_box(&clean), &secrets, &mut Counts::new()))
    });
    group.bench_function("redact_secrets+pii/clean/4KiB", |b| {
        b.iter(|| redact::redact(black_box(&clean), &everything, &mut Counts::new()))
    });
    group.bench_function("redact_secrets+pii/3 hits/4KiB", |b| {
        b.iter(|| redact::redact(black_box(&dirty), &everything, &mut Counts::new()))
    });
    group.bench_function("normalize/clean/4KiB", |b| {
        b.iter(|| normalize(black_box(&clean)).len())
    });
    // baseline: what every append already pays
    group.bench_function("baseline: count_tokens/4KiB", |b| {
        b.iter(|| Encoding::O200kBase.count(black_box(&clean)))
    });
    group.finish();
}

// Encryption at rest: every encrypted append seals, every read opens. lz4 runs first when it
// saves space (chat text: it does); the baseline is lz4 alone, what an unencrypted archive pays.
fn encryption(c: &mut Criterion) {
    let mut group = c.benchmark_group("encryption");
    let key = [7u8; crypto::KEY_LEN];
    let nonce = [3u8; crypto::NONCE_LEN];
    let aad = crypto::aad(&[
        b"messages.content",
        b"0123456789abcdef",
        &42i64.to_be_bytes(),
    ]);
    for bytes in [256usize, 4096, 65536] {
        let text = chat_text(bytes);
        let sealed = crypto::seal(&key, nonce, text.as_bytes(), &aad);
        group.throughput(Throughput::Bytes(bytes as u64));
        group.bench_function(format!("seal (lz4 + AES-256-GCM)/{bytes}B"), |b| {
            b.iter(|| crypto::seal(&key, nonce, black_box(text.as_bytes()), &aad))
        });
        group.bench_function(format!("open/{bytes}B"), |b| {
            b.iter(|| crypto::open(&key, black_box(&sealed), &aad, "bench").unwrap())
        });
        group.bench_function(format!("baseline: lz4 compress only/{bytes}B"), |b| {
            b.iter(|| archive::compress(black_box(&text)))
        });
    }
    group.finish();
}

/// What an instrumented call adds: two clock reads, one histogram observation and a counter,
/// against the clock reads alone.
fn metrics(c: &mut Criterion) {
    use ctxstore::core::metrics::{Block, Call, Counter};
    let mut group = c.benchmark_group("metrics");
    let block = Block::new();
    group.bench_function("record one call (timer + histogram + counter)", |b| {
        b.iter(|| {
            let start = std::time::Instant::now();
            block.observe(Call::Append, black_box(start.elapsed().as_micros() as u64));
            block.add(Counter::MessagesAppended, 1);
        })
    });
    group.bench_function("baseline: timer only", |b| {
        b.iter(|| black_box(std::time::Instant::now().elapsed()))
    });
    group.bench_function("snapshot + Prometheus text", |b| {
        b.iter(|| ctxstore::core::metrics::prometheus(&block.snapshot().samples(), &[]))
    });
    group.finish();
}

/// Hybrid scoring of a recall's candidate pool (40 for k = 10): the score of each candidate
/// and the sort, against ranking by similarity alone.
fn hybrid_scoring(c: &mut Criterion) {
    let weights = Weights::default();
    let mut seed = 7u64;
    let pool: Vec<(f64, f64, f64, f64)> = pseudo_random(&mut seed, 160)
        .chunks(4)
        .map(|x| {
            (
                x[0] as f64,
                x[1].abs() as f64,
                x[2].abs() as f64 * 1e6,
                x[3].abs() as f64,
            )
        })
        .collect();
    let mut group = c.benchmark_group("hybrid_scoring");
    group.bench_function("score + sort/40 candidates", |b| {
        b.iter(|| {
            let mut scored: Vec<f64> = black_box(&pool)
                .iter()
                .map(|&(s, t, age, imp)| weights.score(s, t, age, imp))
                .collect();
            scored.sort_by(|a, b| b.total_cmp(a));
            scored
        })
    });
    group.bench_function("baseline: sort by similarity/40 candidates", |b| {
        b.iter(|| {
            let mut scored: Vec<f64> = black_box(&pool).iter().map(|p| p.0).collect();
            scored.sort_by(|a, b| b.total_cmp(a));
            scored
        })
    });
    group.finish();
}

criterion_group!(
    benches,
    hybrid_scoring,
    metrics,
    encryption,
    processors,
    tokenizer,
    lz4,
    batch,
    knn,
    filter_compiler,
    schema_validation
);
criterion_main!(benches);
