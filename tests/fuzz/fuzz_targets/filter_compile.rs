//! The filter language compiler: any JSON document compiles or is refused, never panics.
#![no_main]
use ctxstore::core::filter::{compile, ColumnType, FilterTarget};
use libfuzzer_sys::fuzz_target;

const TARGET: FilterTarget = FilterTarget {
    document: "m.metadata",
    columns: &[
        ("content", "m.content", ColumnType::Text),
        ("importance", "m.importance", ColumnType::Number),
        ("created_at", "m.created_at", ColumnType::Timestamp),
        ("id", "m.id", ColumnType::Uuid),
        ("namespace", "m.namespace", ColumnType::TextArray),
    ],
};

fuzz_target!(|data: &[u8]| {
    if let Ok(filter) = serde_json::from_slice::<serde_json::Value>(data) {
        let _ = compile(&filter, &TARGET, 1);
    }
});
