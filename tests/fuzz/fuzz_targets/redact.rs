//! The redaction detectors on any text; redacting twice changes nothing more.
#![no_main]
use ctxstore::core::redact::{redact, Counts, Kind, Selection};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let selection = Selection::new(true, &[Kind::Email, Kind::Phone]);
        let once = redact(text, &selection, &mut Counts::new()).unwrap_or_else(|| text.to_string());
        assert_eq!(redact(&once, &selection, &mut Counts::new()), None);
    }
});
