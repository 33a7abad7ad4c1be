//! `#[pg_extern]` functions, one file per store.

pub mod contexts;
pub mod memories;
pub mod schemas;
pub mod state;
