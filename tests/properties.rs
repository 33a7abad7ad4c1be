//! Property tests of the pure kernels (proptest): the parsers and compilers that take user
//! input never panic, and the codecs round-trip. Run with `cargo test --test properties`.

use ctxstore::core::filter::{self, FilterTarget};
use ctxstore::core::{
    archive, conversation, crypto, merge_patch, namespace, redact, tokenizer, trace,
};
use proptest::prelude::*;
use serde_json::{json, Value};

/// A tuple's fields as the slices `crypto::aad` takes.
fn parts(tuple: &[Vec<u8>]) -> Vec<&[u8]> {
    tuple.iter().map(Vec::as_slice).collect()
}

/// The real memory filter target (columns and the metadata document).
const TARGET: FilterTarget = ctxstore::services::recall::MEMORY_FILTER;

/// Arbitrary JSON, biased towards what filters and message batches look like.
fn json_value() -> impl Strategy<Value = Value> {
    let key = prop_oneof![
        Just("$and".to_string()),
        Just("$or".to_string()),
        Just("$not".to_string()),
        Just("$eq".to_string()),
        Just("$in".to_string()),
        Just("$gt".to_string()),
        Just("$exists".to_string()),
        Just("$contains".to_string()),
        Just("$nor".to_string()),
        Just("$all".to_string()),
        Just("$size".to_string()),
        Just("$elemMatch".to_string()),
        Just("$regex".to_string()),
        Just("$options".to_string()),
        Just("$between".to_string()),
        Just("role".to_string()),
        Just("content".to_string()),
        Just("metadata".to_string()),
        Just("importance".to_string()),
        Just("created_at".to_string()),
        Just("namespace".to_string()),
        "[a-z$.]{0,6}",
    ];
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(|f| json!(f)),
        ".{0,12}".prop_map(Value::String),
        Just(json!("user")),
        Just(json!("2026-01-01T00:00:00Z")),
    ];
    leaf.prop_recursive(5, 64, 6, move |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::vec((key.clone(), inner), 0..6)
                .prop_map(|kv| Value::Object(kv.into_iter().collect())),
        ]
    })
}

/// Well-formed-ish filters over every operator, whose field names and values all carry the
/// marker `§`: a compiled filter binds them all, so the marker never reaches the SQL text.
fn marked_filter() -> impl Strategy<Value = Value> {
    let field = prop_oneof![
        "§[a-z'\"; ]{0,6}".prop_map(|s| s),
        "§[a-z]{1,4}\\.§[a-z]{1,4}".prop_map(|s| s),
    ];
    let value = prop_oneof![
        "§.{0,10}".prop_map(Value::String),
        any::<i32>().prop_map(|n| json!(n)),
        any::<bool>().prop_map(Value::Bool),
    ];
    let op = prop::sample::select(vec![
        "$eq",
        "$ne",
        "$gt",
        "$gte",
        "$lt",
        "$lte",
        "$in",
        "$nin",
        "$all",
        "$size",
        "$like",
        "$ilike",
        "$regex",
        "$exists",
        "$contains",
        "$between",
    ]);
    let operand = prop_oneof![
        value.clone(),
        prop::collection::vec(value.clone(), 0..4).prop_map(Value::Array),
        (0u32..5).prop_map(|n| json!(n)),
    ];
    let condition = prop_oneof![
        value.clone(),
        (op, operand).prop_map(|(op, operand)| json!({ op: operand })),
    ];
    let leaf = (field.clone(), condition).prop_map(|(f, c)| json!({ f: c }));
    leaf.prop_recursive(4, 32, 4, move |inner| {
        prop_oneof![
            (
                prop::sample::select(vec!["$and", "$or", "$nor", "$not"]),
                prop::collection::vec(inner.clone(), 1..4)
            )
                .prop_map(|(op, items)| json!({ op: items })),
            (field.clone(), inner.clone()).prop_map(|(f, i)| json!({ f: { "$elemMatch": i } })),
            inner.prop_map(|i| json!({ "$not": i })),
        ]
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn filters_bind_every_name_and_value(filter in marked_filter(), first in 1usize..50) {
        if let Ok(compiled) = filter::compile(&filter, &TARGET, first) {
            prop_assert!(!compiled.sql.contains('§'), "{filter} spliced into {}", compiled.sql);
            for n in first..first + compiled.params.len() {
                let placeholder = format!("${n}");
                prop_assert!(compiled.sql.contains(&placeholder), "{} lacks {placeholder}", compiled.sql);
            }
        }
    }

    #[test]
    fn filter_compiler_never_panics(filter in json_value(), first in 1usize..50) {
        if let Ok(compiled) = filter::compile(&filter, &TARGET, first) {
            // every placeholder it writes has a parameter
            for n in first..first + compiled.params.len() {
                let placeholder = format!("${n}");
                prop_assert!(compiled.sql.contains(&placeholder), "{} lacks {placeholder}", compiled.sql);
            }
        }
    }

    #[test]
    fn message_batches_never_panic(batch in json_value(), max in 1usize..4096) {
        if let Ok(messages) = conversation::parse_batch(&batch, max) {
            prop_assert!(messages.iter().all(|m| m.content.len() <= max));
        }
    }

    #[test]
    fn archive_round_trips(text in any::<String>()) {
        prop_assert_eq!(archive::decompress(&archive::compress(&text)).unwrap(), text);
    }

    #[test]
    fn archive_rejects_garbage_without_panicking(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        let _ = archive::decompress(&bytes);
    }

    #[test]
    fn sealing_round_trips_and_detects_any_change(
        plaintext in prop::collection::vec(any::<u8>(), 0..2048),
        aad in prop::collection::vec(any::<u8>(), 0..64),
        key in any::<[u8; 32]>(),
        nonce in any::<[u8; 12]>(),
        flip in any::<prop::sample::Index>(),
        bit in 0u8..8,
    ) {
        let sealed = crypto::seal(&key, nonce, &plaintext, &aad);
        prop_assert_eq!(&crypto::open(&key, &sealed, &aad, "p").unwrap(), &plaintext);
        let mut altered = sealed.clone();
        let i = flip.index(altered.len());
        altered[i] ^= 1 << bit;
        prop_assert!(crypto::open(&key, &altered, &aad, "p").is_err());
    }

    /// Associated data is injective: distinct field tuples never encode alike, even when their
    /// fields join to the same bytes (e.g. split at a separator such as U+001F).
    #[test]
    fn associated_data_is_injective(
        a in prop::collection::vec(prop::collection::vec(prop_oneof![Just(0x1fu8), Just(b'a'), Just(0u8), Just(4u8)], 0..6), 0..5),
        b in prop::collection::vec(prop::collection::vec(prop_oneof![Just(0x1fu8), Just(b'a'), Just(0u8), Just(4u8)], 0..6), 0..5),
        cut in any::<prop::sample::Index>(),
    ) {
        prop_assert_eq!(crypto::aad(&parts(&a)) == crypto::aad(&parts(&b)), a == b);
        // the same bytes split in two other places: a different tuple, a different encoding
        let joined: Vec<u8> = a.concat();
        let i = cut.index(joined.len() + 1);
        let resplit = vec![joined[..i].to_vec(), joined[i..].to_vec()];
        prop_assert_eq!(crypto::aad(&parts(&resplit)) == crypto::aad(&parts(&a)), resplit == a);
    }

    #[test]
    fn opening_garbage_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..256), key in any::<[u8; 32]>()) {
        let _ = crypto::open(&key, &bytes, b"", "p");
        let _ = crypto::unwrap_key(&key, &bytes, b"scope");
    }

    #[test]
    fn token_prefix_fits_and_is_a_prefix(text in ".{0,200}", budget in 0usize..80) {
        let encoding = tokenizer::Encoding::O200kBase;
        let prefix = encoding.prefix(&text, budget);
        prop_assert!(text.starts_with(&prefix));
        prop_assert!(encoding.count(&prefix) <= budget);
        if encoding.count(&text) <= budget {
            prop_assert_eq!(prefix, text);
        }
    }

    #[test]
    fn merge_patch_is_idempotent(mut doc in json_value(), patch in json_value()) {
        merge_patch::apply(&mut doc, &patch);
        let once = doc.clone();
        merge_patch::apply(&mut doc, &patch);
        prop_assert_eq!(doc, once);
    }

    #[test]
    fn redaction_is_idempotent(text in "[ -~]{0,120}|.*4111 1111 1111 1111.*|.*sk-[a-zA-Z0-9]{24}.*") {
        let selection = redact::Selection::new(true, &[redact::Kind::Email, redact::Kind::Phone]);
        let mut counts = redact::Counts::default();
        let once = redact::redact(&text, &selection, &mut counts).unwrap_or(text.clone());
        let mut again = redact::Counts::default();
        prop_assert_eq!(redact::redact(&once, &selection, &mut again), None, "{}", once);
    }

    #[test]
    fn namespaces_and_traceparents_never_panic(labels in prop::collection::vec(".{0,8}", 0..5), header in ".{0,80}") {
        if namespace::validate(&labels, true).is_ok() {
            let _ = namespace::key(&labels);
            let _ = namespace::descendants_range(&labels);
        }
        let _ = trace::parse_traceparent(&header);
        let _ = trace::traceparent_in_comment(&header);
    }
}
