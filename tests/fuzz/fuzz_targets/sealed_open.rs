//! Sealed values and wrapped keys: any bytes are refused without panicking.
#![no_main]
use ctxstore::core::crypto;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let key = [7u8; crypto::KEY_LEN];
    let _ = crypto::open(&key, data, b"aad", "fuzz");
    let _ = crypto::unwrap_key(&key, data, b"scope");
});
