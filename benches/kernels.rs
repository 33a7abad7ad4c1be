//! Criterion benchmarks of the pure kernels on the hot paths. Baselines named per group.

use criterion::{black_box, criterion_group, criterion_main, Criterion, Throughput};
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

criterion_group!(benches, tokenizer, lz4, batch);
criterion_main!(benches);
