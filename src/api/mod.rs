//! The SQL face: `#[pg_extern]` functions and triggers, one file (or folder) per store. Each
//! checks its arguments, calls `services/` and `core/`, and raises errors (`raise`). Files here
//! do not call each other, except the argument helpers in `args`.

pub(crate) mod args;
pub mod assembly;
mod audit;
pub mod cache;
pub mod contexts;
pub mod embedding;
pub mod keys;
pub mod memories;
pub mod metrics;
pub mod processors;
pub(crate) mod raise;
pub mod retention;
pub mod row_checks;
pub mod schemas;
pub mod sealing;
pub mod state;
pub mod tenancy;
pub mod worker;
