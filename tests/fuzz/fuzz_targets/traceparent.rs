//! W3C traceparent values and sqlcommenter comments.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = ctxstore::core::trace::parse_traceparent(text);
        let _ = ctxstore::core::trace::traceparent_in_comment(text);
    }
});
