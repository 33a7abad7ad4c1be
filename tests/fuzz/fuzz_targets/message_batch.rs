//! ctx.append_many's batch parser on any JSON.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(batch) = serde_json::from_slice::<serde_json::Value>(data) {
        let _ = ctxstore::core::conversation::parse_batch(&batch, 4096);
    }
});
