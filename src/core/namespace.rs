//! Namespaces are paths of labels (`{user,42,facts}`). Stored alongside each row as a key that
//! sorts by path — labels joined by U+001F, with a trailing separator — so "this namespace and
//! everything below it" is one btree range scan.

use crate::error::{CtxError, CtxResult};

const SEPARATOR: char = '\u{1f}';
pub const MAX_LABELS: usize = 32;
const MAX_LABEL_BYTES: usize = 256;

fn invalid(message: String) -> CtxError {
    CtxError::invalid(message).with_hint("a namespace is a non-empty text[] of non-empty labels without control characters (tab and line breaks allowed), e.g. '{user,42,facts}'")
}

/// Checks a namespace; `allow_empty` for prefixes (the empty prefix is the root).
pub fn validate(labels: &[String], allow_empty: bool) -> CtxResult<()> {
    if labels.is_empty() && !allow_empty {
        return Err(invalid("namespace must have at least one label".into()));
    }
    if labels.len() > MAX_LABELS {
        return Err(invalid(format!(
            "namespace has {} labels, above the limit of {MAX_LABELS}",
            labels.len()
        )));
    }
    for (i, label) in labels.iter().enumerate() {
        if label.is_empty() {
            return Err(invalid(format!("namespace label {} is empty", i + 1)));
        }
        if label.len() > MAX_LABEL_BYTES {
            return Err(invalid(format!(
                "namespace label {} is longer than {MAX_LABEL_BYTES} bytes",
                i + 1
            )));
        }
        // tab and line breaks are plain text in a label ("alice\n" is not "alice": the
        // separator, U+001F, still bounds every label); other controls are refused
        if label
            .chars()
            .any(|c| c.is_control() && !matches!(c, '\t' | '\n' | '\r'))
        {
            return Err(invalid(format!(
                "namespace label {} contains a control character",
                i + 1
            )));
        }
    }
    Ok(())
}

/// The sort key of a namespace (also of a prefix: every descendant's key starts with it).
pub fn key(labels: &[String]) -> String {
    let mut key = String::new();
    for label in labels {
        key.push_str(label);
        key.push(SEPARATOR);
    }
    key
}

/// The half-open key range [low, high) of a prefix and all its descendants.
pub fn descendants_range(prefix: &[String]) -> (String, Option<String>) {
    let low = key(prefix);
    if low.is_empty() {
        return (low, None); // the root: everything
    }
    // the separator is the last char; the next code point bounds every extension
    let mut high = low[..low.len() - SEPARATOR.len_utf8()].to_string();
    high.push(char::from_u32(SEPARATOR as u32 + 1).unwrap_or(' '));
    (low, Some(high))
}

/// SQL conditions on `column` (a namespace key) selecting `prefix` — and its descendants when
/// asked — with the key bounds as text parameters numbered from `first_param`.
pub fn key_conditions(
    column: &str,
    prefix: &[String],
    descendants: bool,
    first_param: usize,
) -> (Vec<String>, Vec<String>) {
    let (mut parts, mut params) = (Vec::new(), Vec::new());
    if !descendants {
        parts.push(format!("{column} = ${first_param}"));
        params.push(key(prefix));
        return (parts, params);
    }
    let (low, high) = descendants_range(prefix);
    if !low.is_empty() {
        parts.push(format!("{column} >= ${}", first_param + params.len()));
        params.push(low);
    }
    if let Some(high) = high {
        parts.push(format!("{column} < ${}", first_param + params.len()));
        params.push(high);
    }
    (parts, params)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ns(labels: &[&str]) -> Vec<String> {
        labels.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn keys_sort_by_path() {
        let (low, high) = descendants_range(&ns(&["user", "42"]));
        let high = high.unwrap();
        let inside = [
            key(&ns(&["user", "42"])),
            key(&ns(&["user", "42", "facts"])),
            key(&ns(&["user", "42", "a", "b"])),
        ];
        let outside = [
            key(&ns(&["user", "420"])),
            key(&ns(&["user", "4"])),
            key(&ns(&["user"])),
            key(&ns(&["user", "42!"])),
        ];
        for k in inside {
            assert!(k >= low && k < high, "{k:?}");
        }
        for k in outside {
            assert!(!(k >= low && k < high), "{k:?}");
        }
        assert_eq!(descendants_range(&[]), (String::new(), None));
    }

    #[test]
    fn key_conditions_number_their_parameters() {
        let (parts, params) = key_conditions("m.ns_key", &ns(&["a"]), true, 3);
        assert_eq!(parts, vec!["m.ns_key >= $3", "m.ns_key < $4"]);
        assert_eq!(params.len(), 2);
        let (parts, params) = key_conditions("s.ns_key", &ns(&["a", "b"]), false, 1);
        assert_eq!(parts, vec!["s.ns_key = $1"]);
        assert_eq!(params, vec![key(&ns(&["a", "b"]))]);
        assert_eq!(key_conditions("k", &[], true, 1), (vec![], vec![]));
    }

    #[test]
    fn validation() {
        validate(&ns(&["user", "42", "facts"]), false).unwrap();
        validate(&ns(&["users", "alice\n", "a\tb\r"]), false).unwrap();
        validate(&[], true).unwrap();
        for (labels, text) in [
            (ns(&[]), "at least one label"),
            (ns(&["a", ""]), "label 2 is empty"),
            (ns(&["a\u{1f}b"]), "control character"),
            (ns(&["a\u{7}"]), "control character"),
            (vec!["x".to_string(); 33], "above the limit"),
            (vec!["x".repeat(300)], "longer than"),
        ] {
            let e = validate(&labels, false).unwrap_err();
            assert_eq!(e.kind.sqlstate(), "22023");
            assert!(e.message.contains(text), "{}", e.message);
        }
    }
}
