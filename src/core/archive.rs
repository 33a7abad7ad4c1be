//! Compression of archived message content: lz4 blocks (lz4_flex) with the decompressed length
//! prepended, so decompression allocates exactly once and a corrupt block is detected.

use crate::error::{CtxError, CtxResult, ErrorKind};

/// Largest content an archive block may claim to hold; guards against a corrupt length prefix
/// asking for a huge allocation (Postgres text values are below 1 GiB anyway).
const MAX_DECOMPRESSED: usize = 1 << 30;

pub fn compress(text: &str) -> Vec<u8> {
    lz4_flex::block::compress_prepend_size(text.as_bytes())
}

pub fn decompress(block: &[u8]) -> CtxResult<String> {
    let corrupt = |why: String| {
        CtxError::new(
            ErrorKind::DataCorrupted,
            "archived message content is corrupt",
        )
        .with_detail(why)
        .with_hint("restore the row from a backup; ctxstore never writes such blocks")
    };
    if block.len() < 4 {
        return Err(corrupt(format!(
            "block of {} bytes is shorter than its header",
            block.len()
        )));
    }
    let claimed = u32::from_le_bytes([block[0], block[1], block[2], block[3]]) as usize;
    // lz4 expands at most ~255x (one extra length byte per 255 bytes of a match): a claim
    // beyond that is corrupt, and is refused before allocating it
    let possible = (block.len() - 4).saturating_mul(256).saturating_add(64);
    if claimed > MAX_DECOMPRESSED || claimed > possible {
        return Err(corrupt(format!(
            "header claims {claimed} bytes, more than {} compressed bytes can hold",
            block.len() - 4
        )));
    }
    let bytes =
        lz4_flex::block::decompress_size_prepended(block).map_err(|e| corrupt(e.to_string()))?;
    if bytes.len() != claimed {
        return Err(corrupt(format!(
            "header claims {claimed} bytes, block holds {}",
            bytes.len()
        )));
    }
    String::from_utf8(bytes).map_err(|e| corrupt(format!("not UTF-8: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn highly_compressible_text_round_trips_within_the_bound() {
        for text in [
            "a".repeat(10_000_000),
            " ".to_string(),
            String::new(),
            "ab".repeat(300_000),
        ] {
            assert_eq!(decompress(&compress(&text)).unwrap(), text);
        }
        // 12 bytes claiming 1 MiB: refused before any allocation
        let mut forged = (1u32 << 20).to_le_bytes().to_vec();
        forged.extend_from_slice(&[0u8; 8]);
        assert!(decompress(&forged).is_err());
    }

    #[test]
    fn round_trips() {
        for text in [
            "",
            "a",
            "hello hello hello hello hello",
            "你好 🌍",
            &"x".repeat(100_000),
        ] {
            assert_eq!(decompress(&compress(text)).unwrap(), text);
        }
    }

    #[test]
    fn repetitive_text_shrinks() {
        let text = "the assistant said the same thing again. ".repeat(200);
        assert!(compress(&text).len() * 5 < text.len());
    }

    #[test]
    fn corrupt_blocks_are_errors_not_panics() {
        let good = compress("some archived content that is long enough to compress well well well");
        let mut bad = good.clone();
        bad[0] = bad[0].wrapping_add(7);
        for block in [
            &b""[..],
            &b"\x01\x00"[..],
            &[0xff, 0xff, 0xff, 0x7f, 1, 2][..],
            &bad[..],
        ] {
            let err = decompress(block).unwrap_err();
            assert_eq!(err.kind, ErrorKind::DataCorrupted);
        }
    }
}
