//! `#[pg_extern]` functions, one file per store.

pub(crate) mod args;
pub mod assembly;
mod audit;
pub mod cache;
pub mod contexts;
pub mod keys;
pub mod memories;
pub mod metrics;
pub mod processors;
pub mod retention;
pub mod schemas;
pub mod sealing;
pub mod state;
pub mod worker;
