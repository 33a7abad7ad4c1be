//! `#[pg_extern]` functions, one file per store.

mod args;
pub mod assembly;
pub mod contexts;
pub mod memories;
pub mod schemas;
pub mod state;
