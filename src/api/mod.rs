//! `#[pg_extern]` functions, one file per store.

pub(crate) mod args;
pub mod assembly;
mod audit;
pub mod contexts;
pub mod keys;
pub mod memories;
pub mod processors;
pub mod schemas;
pub mod state;
