//! `#[pg_extern]` functions, one file per store.

pub mod contexts;
