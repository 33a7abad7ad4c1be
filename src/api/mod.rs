//! `#[pg_extern]` functions, one file per store.

mod args;
pub mod contexts;
pub mod memories;
pub mod schemas;
pub mod state;
