//! Authenticated encryption of stored values and envelope keys. Pure: randomness (nonces, new
//! keys) is passed in, so sealing is deterministic under test.
//!
//! A sealed value is `[format 1][flags][nonce 12][AES-256-GCM ciphertext + tag 16]`; the
//! plaintext is lz4-compressed first when that saves space (flag bit 0). The associated data
//! names the row and column the value belongs to, so a ciphertext copied to another row or
//! column fails to open instead of decrypting to the wrong place.
//!
//! Each context or namespace has its own random data key; the table stores it only wrapped
//! (sealed) by a master key (KEK) that lives outside the database, chosen by id so that two
//! master keys can coexist while every data key is re-wrapped.

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};

use crate::error::{CtxError, CtxResult, ErrorKind};

pub const KEY_LEN: usize = 32;
pub const NONCE_LEN: usize = 12;
const FORMAT: u8 = 1;
const FLAG_LZ4: u8 = 1;
const HEADER_LEN: usize = 2 + NONCE_LEN;
/// What sealing adds to the (maybe compressed) plaintext: header and GCM tag.
pub const SEAL_OVERHEAD: usize = HEADER_LEN + 16;

/// Whether a sealed value holds lz4-compressed plaintext.
pub fn is_compressed(sealed: &[u8]) -> bool {
    sealed.get(1).is_some_and(|flags| flags & FLAG_LZ4 != 0)
}
/// Below this, compression cannot pay for its 4-byte length prefix.
const MIN_COMPRESS: usize = 64;

pub type Key = [u8; KEY_LEN];

/// The associated data of a stored value: length-prefixed parts, so ("ab","c") ≠ ("a","bc").
pub fn aad(parts: &[&[u8]]) -> Vec<u8> {
    let mut out = Vec::with_capacity(parts.iter().map(|p| p.len() + 4).sum());
    for part in parts {
        out.extend_from_slice(&(part.len() as u32).to_be_bytes());
        out.extend_from_slice(part);
    }
    out
}

fn cipher(key: &Key) -> Aes256Gcm {
    Aes256Gcm::new(key.into())
}

/// lz4 (when smaller) then AES-256-GCM under `key`, bound to `aad`.
pub fn seal(key: &Key, nonce: [u8; NONCE_LEN], plaintext: &[u8], aad: &[u8]) -> Vec<u8> {
    let compressed = (plaintext.len() >= MIN_COMPRESS)
        .then(|| lz4_flex::compress_prepend_size(plaintext))
        .filter(|c| c.len() < plaintext.len());
    let (flags, body) = match &compressed {
        Some(c) => (FLAG_LZ4, c.as_slice()),
        None => (0, plaintext),
    };
    let mut header = [0u8; HEADER_LEN];
    header[0] = FORMAT;
    header[1] = flags;
    header[2..].copy_from_slice(&nonce);
    // the header is authenticated too: flipping the lz4 flag fails like any other change
    let full_aad = [aad, &header[..2]].concat();
    let ciphertext = cipher(key)
        .encrypt(
            Nonce::from_slice(&nonce),
            Payload {
                msg: body,
                aad: &full_aad,
            },
        )
        .expect("AES-GCM encryption of an in-memory buffer cannot fail");
    let mut out = Vec::with_capacity(HEADER_LEN + ciphertext.len());
    out.extend_from_slice(&header);
    out.extend_from_slice(&ciphertext);
    out
}

fn undecryptable(what: &str) -> CtxError {
    CtxError::new(
        ErrorKind::DataCorrupted,
        format!("cannot decrypt {what}: the data key does not match, or the ciphertext was altered or moved from another row"),
    )
    .with_hint("check ctxstore.master_key; a ciphertext opens only in the row and column it was written for")
}

/// Opens a value sealed by [`seal`] with the same key and associated data.
pub fn open(key: &Key, sealed: &[u8], aad: &[u8], what: &str) -> CtxResult<Vec<u8>> {
    if sealed.len() < HEADER_LEN + 16 || sealed[0] != FORMAT {
        return Err(undecryptable(what));
    }
    let (header, ciphertext) = sealed.split_at(HEADER_LEN);
    let full_aad = [aad, &header[..2]].concat();
    let body = cipher(key)
        .decrypt(
            Nonce::from_slice(&header[2..]),
            Payload {
                msg: ciphertext,
                aad: &full_aad,
            },
        )
        .map_err(|_| undecryptable(what))?;
    if header[1] & FLAG_LZ4 != 0 {
        lz4_flex::decompress_size_prepended(&body).map_err(|_| undecryptable(what))
    } else {
        Ok(body)
    }
}

/// A data key sealed by a master key, bound to the scope it encrypts.
pub fn wrap_key(kek: &Key, nonce: [u8; NONCE_LEN], data_key: &Key, scope: &[u8]) -> Vec<u8> {
    seal(kek, nonce, data_key, &aad(&[b"ctxstore data key", scope]))
}

pub fn unwrap_key(kek: &Key, wrapped: &[u8], scope: &[u8]) -> CtxResult<Key> {
    let bytes = open(
        kek,
        wrapped,
        &aad(&[b"ctxstore data key", scope]),
        "a data key",
    )
    .map_err(|_| {
        CtxError::new(
            ErrorKind::DataCorrupted,
            "cannot unwrap a data key with the configured master key",
        )
        .with_hint("ctxstore.master_key holds a different key under this key id")
    })?;
    bytes
        .try_into()
        .map_err(|_| CtxError::new(ErrorKind::DataCorrupted, "a data key has the wrong length"))
}

/// The master keys from `ctxstore.master_key` (or its key file): `id:hex` entries separated by
/// commas or newlines, 64 hex digits each; the first is the one new data keys are wrapped with.
#[derive(Clone, PartialEq, Eq)]
pub struct MasterKeys {
    keys: Vec<(String, Key)>,
}

impl std::fmt::Debug for MasterKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // never print key material
        let ids: Vec<&str> = self.keys.iter().map(|(id, _)| id.as_str()).collect();
        f.debug_struct("MasterKeys").field("ids", &ids).finish()
    }
}

fn bad_master_key(message: String) -> CtxError {
    CtxError::new(ErrorKind::WrongState, message).with_hint(
        "set ctxstore.master_key (superuser, e.g. in postgresql.conf) to 'key_id:<64 hex digits>', \
         or ctxstore.master_key_file to a file holding such lines; openssl rand -hex 32 makes a key",
    )
}

impl MasterKeys {
    pub fn parse(spec: &str) -> CtxResult<MasterKeys> {
        let mut keys: Vec<(String, Key)> = Vec::new();
        for entry in spec
            .split([',', '\n'])
            .map(str::trim)
            .filter(|e| !e.is_empty() && !e.starts_with('#'))
        {
            let (id, hex) = entry.split_once(':').ok_or_else(|| {
                bad_master_key("a ctxstore master key entry is not 'key_id:hex'".into())
            })?;
            let id = id.trim();
            let valid_id = !id.is_empty()
                && id.len() <= 64
                && id
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
            if !valid_id {
                return Err(bad_master_key(format!(
                    "invalid master key id \"{id}\" (letters, digits, '_' and '-')"
                )));
            }
            let key = decode_hex(hex.trim()).ok_or_else(|| {
                bad_master_key(format!(
                    "master key \"{id}\" must be 64 hex digits (32 bytes)"
                ))
            })?;
            if keys.iter().any(|(existing, _)| existing == id) {
                return Err(bad_master_key(format!(
                    "master key id \"{id}\" appears twice"
                )));
            }
            keys.push((id.to_string(), key));
        }
        if keys.is_empty() {
            return Err(bad_master_key("no master key is configured".into()));
        }
        Ok(MasterKeys { keys })
    }

    /// The key new data keys are wrapped with.
    pub fn current(&self) -> (&str, &Key) {
        let (id, key) = &self.keys[0];
        (id, key)
    }

    pub fn get(&self, id: &str) -> CtxResult<&Key> {
        self.keys
            .iter()
            .find(|(k, _)| k == id)
            .map(|(_, key)| key)
            .ok_or_else(|| {
                bad_master_key(format!(
                    "master key \"{id}\" is not configured: data keys wrapped with it cannot be opened"
                ))
            })
    }
}

fn decode_hex(hex: &str) -> Option<Key> {
    if hex.len() != KEY_LEN * 2 {
        return None;
    }
    let mut key = [0u8; KEY_LEN];
    for (i, pair) in hex.as_bytes().chunks(2).enumerate() {
        let digit = |b: u8| (b as char).to_digit(16);
        key[i] = (digit(pair[0])? * 16 + digit(pair[1])?) as u8;
    }
    Some(key)
}

/// HMAC-SHA-256 of the parts (encoded by [`aad`], so distinct tuples hash apart) under `key`:
/// a value that must be found again by equality but never read back (e.g. the run id of an
/// encrypted checkpoint). The domain separates it from any other use of the key.
pub fn keyed_hash(key: &Key, domain: &[u8], parts: &[&[u8]]) -> [u8; 32] {
    use hmac::{KeyInit as _, Mac};
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(key)
        .expect("HMAC-SHA-256 takes a key of any length");
    let mut all: Vec<&[u8]> = Vec::with_capacity(parts.len() + 1);
    all.push(domain);
    all.extend_from_slice(parts);
    mac.update(&aad(&all));
    mac.finalize().into_bytes().into()
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: Key = [7u8; KEY_LEN];
    const NONCE: [u8; NONCE_LEN] = [1u8; NONCE_LEN];

    #[test]
    fn round_trips_small_and_compressible() {
        let row = aad(&[b"messages.content", b"ctx-1", b"42"]);
        for plaintext in [
            b"".to_vec(),
            b"hi".to_vec(),
            "the same words again and again ".repeat(200).into_bytes(),
            (0..5000u32)
                .map(|i| (i.wrapping_mul(2654435761) >> 13) as u8)
                .collect(),
        ] {
            let sealed = seal(&KEY, NONCE, &plaintext, &row);
            assert_eq!(open(&KEY, &sealed, &row, "x").unwrap(), plaintext);
            assert!(!sealed
                .windows(8.min(plaintext.len().max(1)))
                .any(|w| plaintext.len() >= 8 && w == &plaintext[..8]));
        }
        let text = "the same words again and again ".repeat(200);
        assert!(seal(&KEY, NONCE, text.as_bytes(), &row).len() < text.len() / 4);
    }

    #[test]
    fn wrong_key_row_column_or_bytes_fail() {
        let row = aad(&[b"messages.content", b"ctx-1", b"42"]);
        let sealed = seal(&KEY, NONCE, b"secret marker", &row);
        let e = open(&[8u8; KEY_LEN], &sealed, &row, "message 42").unwrap_err();
        assert_eq!(e.kind, ErrorKind::DataCorrupted);
        assert!(e.message.contains("message 42"));
        for other in [
            aad(&[b"messages.content", b"ctx-1", b"43"]),
            aad(&[b"messages.metadata", b"ctx-1", b"42"]),
            aad(&[b"messages.content", b"ctx-2", b"42"]),
        ] {
            assert!(open(&KEY, &sealed, &other, "x").is_err());
        }
        for i in 0..sealed.len() {
            let mut tampered = sealed.clone();
            tampered[i] ^= 1;
            assert!(open(&KEY, &tampered, &row, "x").is_err(), "byte {i}");
        }
        assert!(open(&KEY, &sealed[..10], &row, "x").is_err());
    }

    #[test]
    fn keyed_hashes_depend_on_key_domain_and_every_part() {
        let (k1, k2) = ([1u8; KEY_LEN], [2u8; KEY_LEN]);
        let h = keyed_hash(&k1, b"run_id", &[b"run-1"]);
        assert_eq!(h, keyed_hash(&k1, b"run_id", &[b"run-1"]));
        assert_ne!(h, keyed_hash(&k2, b"run_id", &[b"run-1"]));
        assert_ne!(h, keyed_hash(&k1, b"other", &[b"run-1"]));
        assert_ne!(h, keyed_hash(&k1, b"run_id", &[b"run-2"]));
        assert_ne!(
            keyed_hash(&k1, b"d", &[b"ab", b"c"]),
            keyed_hash(&k1, b"d", &[b"a", b"bc"])
        );
    }

    #[test]
    fn aad_parts_are_unambiguous() {
        assert_ne!(aad(&[b"ab", b"c"]), aad(&[b"a", b"bc"]));
    }

    #[test]
    fn key_wrapping() {
        let data_key = [9u8; KEY_LEN];
        let wrapped = wrap_key(&KEY, NONCE, &data_key, b"context:1");
        assert_eq!(unwrap_key(&KEY, &wrapped, b"context:1").unwrap(), data_key);
        assert!(unwrap_key(&KEY, &wrapped, b"context:2").is_err());
        assert!(unwrap_key(&[1u8; KEY_LEN], &wrapped, b"context:1").is_err());
    }

    #[test]
    fn master_key_specs() {
        let a = "a".repeat(64);
        let b = "0123456789abcdef".repeat(4);
        let keys = MasterKeys::parse(&format!("k2:{b}, k1:{a}")).unwrap();
        assert_eq!(keys.current().0, "k2");
        assert_eq!(keys.get("k1").unwrap(), &[0xaa; KEY_LEN]);
        assert_eq!(
            MasterKeys::parse(&format!("# comment\nk1:{a}\n"))
                .unwrap()
                .current()
                .0,
            "k1"
        );
        for bad in [
            String::new(),
            "k1".to_string(),
            "k1:abcd".to_string(),
            format!("k1:{}", "g".repeat(64)),
            format!("bad id:{a}"),
            format!("k1:{a},k1:{b}"),
        ] {
            let e = MasterKeys::parse(&bad).unwrap_err();
            assert_eq!(e.kind, ErrorKind::WrongState, "{bad}");
            assert!(!e.message.contains(&a), "key material in an error");
        }
        assert_eq!(keys.get("k9").unwrap_err().kind, ErrorKind::WrongState);
        assert!(!format!("{keys:?}").contains(&b));
    }
}
