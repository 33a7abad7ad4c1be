//! Pure logic: no SPI, no Postgres calls. Unit-tested with plain `cargo test` and benchmarked
//! with criterion.

pub mod archive;
pub mod assembly;
pub mod conversation;
pub mod crypto;
pub mod embedding_format;
pub mod filter;
pub mod knn;
pub mod merge_patch;
pub mod metrics;
pub mod namespace;
pub mod otlp;
pub mod processors;
pub mod redact;
pub mod row_rules;
pub mod schema;
pub mod scoring;
pub mod tokenizer;
pub mod trace;
