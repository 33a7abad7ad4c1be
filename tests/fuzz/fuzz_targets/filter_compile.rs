//! The filter language compiler: any JSON document compiles or is refused, never panics.
#![no_main]
use ctxstore::core::filter::{compile, FilterTarget};
use libfuzzer_sys::fuzz_target;

/// The real memory filter target (columns and the metadata document).
const TARGET: FilterTarget = ctxstore::services::recall::MEMORY_FILTER;

fuzz_target!(|data: &[u8]| {
    if let Ok(filter) = serde_json::from_slice::<serde_json::Value>(data) {
        let _ = compile(&filter, &TARGET, 1);
    }
});
