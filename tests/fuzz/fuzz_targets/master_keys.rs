//! The ctxstore.master_key setting's parser.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = ctxstore::core::crypto::MasterKeys::parse(text);
    }
});
