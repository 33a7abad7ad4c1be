//! `#[pg_test]` tests, run inside a real Postgres by `cargo pgrx test`.

mod conversation_model;
mod memories;
mod processors;
