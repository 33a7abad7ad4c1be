//! Archived (lz4) message blocks: any bytes decode or are refused; what compresses round-trips.
#![no_main]
use ctxstore::core::archive;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = archive::decompress(data);
    if let Ok(text) = std::str::from_utf8(data) {
        assert_eq!(archive::decompress(&archive::compress(text)).unwrap(), text);
    }
});
