//! Postgres-integration services the SQL functions share: data keys and sealing, the processor
//! pipeline, the context view and its reads, messages found by id, counts read from the
//! indexes, audit rows stored without SQL, catalog lookups kept until an invalidation, recall,
//! stored state values, schema lookups, retention, metrics recording, the current tenant and
//! what a transaction may write. They return `CtxResult`; only the SQL face (`api/`) turns an
//! error into a Postgres ERROR (the one exception: a user processor's own ERROR, re-raised with
//! the processor's name by the pipeline).

pub mod audit_log;
pub mod catalog_cache;
pub mod cluster;
pub mod context_deletion;
pub mod context_view;
pub mod counter_bump;
pub mod direct_reads;
pub mod embedding_datum;
pub mod keys;
pub mod memory_sealing;
pub mod message_insert;
pub mod message_lookup;
pub mod metrics;
pub mod pipeline;
pub mod recall;
pub mod retention;
pub mod row_store;
pub mod schemas;
pub mod state_values;
pub mod stored_json;
pub mod tenant;
pub mod transaction;
