//! Pure rules of the conversation store: roles, message validation, fork lineage and the
//! window arithmetic. The SPI glue in `api::contexts` only moves rows; decisions live here.

use serde_json::Value;

use crate::error::{CtxError, CtxResult, ErrorKind};

/// Roles a client may append. `summary` is internal: only `ctx.compact` writes summaries.
pub const ROLES: [&str; 4] = ["system", "user", "assistant", "tool"];
pub const SUMMARY_ROLE: &str = "summary";

pub fn check_role(role: &str) -> CtxResult<()> {
    if ROLES.contains(&role) {
        return Ok(());
    }
    let err = CtxError::invalid(format!("unknown message role \"{role}\""));
    Err(if role == SUMMARY_ROLE {
        err.with_hint("summaries are written by ctx.compact(context_id, summary, keep_last)")
    } else {
        err.with_hint("role must be one of: system, user, assistant, tool")
    })
}

pub fn check_content(content: &str, max_bytes: usize) -> CtxResult<()> {
    if content.len() > max_bytes {
        return Err(CtxError::new(
            ErrorKind::TooLarge,
            format!(
                "message content is {} bytes, above the limit of {max_bytes}",
                content.len()
            ),
        )
        .with_hint("split the message, or raise ctxstore.max_message_bytes (superuser)"));
    }
    Ok(())
}

/// Metadata must be a JSON object, so that filters over it have paths to follow.
pub fn check_metadata(metadata: &Value, what: &str) -> CtxResult<()> {
    if metadata.is_object() {
        return Ok(());
    }
    Err(CtxError::invalid(format!(
        "{what} must be a JSON object, not {}",
        json_type(metadata)
    ))
    .with_hint("pass metadata as a jsonb object, e.g. '{\"source\": \"web\"}'"))
}

pub fn check_non_negative(value: i64, name: &str) -> CtxResult<()> {
    if value < 0 {
        return Err(
            CtxError::invalid(format!("{name} must not be negative, got {value}"))
                .with_hint(format!("pass {name} >= 0")),
        );
    }
    Ok(())
}

pub fn json_type(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

const MAX_RESOURCE_BYTES: usize = 1024;

/// A context's resource (the user or agent it belongs to): NULL (none), else 1 to 1024 bytes.
pub fn check_resource(resource: Option<&str>) -> CtxResult<()> {
    match resource {
        Some(r) if r.is_empty() || r.len() > MAX_RESOURCE_BYTES => Err(CtxError::invalid(format!(
            "resource must be 1 to {MAX_RESOURCE_BYTES} bytes, got {}",
            r.len()
        ))
        .with_hint("pass the id of the user or agent the context belongs to, or NULL for none")),
        _ => Ok(()),
    }
}

/// The SQL of a column ctx.list_contexts may order by: a fixed list, never the caller's text.
pub fn context_order_column(order_by: &str) -> CtxResult<&'static str> {
    match order_by {
        "updated_at" => Ok("c.updated_at"),
        "created_at" => Ok("c.created_at"),
        "name" => Ok("c.name"),
        "message_count" => Ok("c.last_seq"),
        other => Err(
            CtxError::invalid(format!("cannot order contexts by \"{other}\""))
                .with_hint("order_by is one of updated_at, created_at, name, message_count"),
        ),
    }
}

/// How ctx.list_messages orders a context's messages: by seq, or by the caller's created_at
/// (ties by seq).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MessageOrder {
    Seq,
    CreatedAt,
}

impl MessageOrder {
    pub fn parse(order_by: &str) -> CtxResult<MessageOrder> {
        match order_by {
            "seq" => Ok(MessageOrder::Seq),
            "created_at" => Ok(MessageOrder::CreatedAt),
            other => Err(
                CtxError::invalid(format!("cannot order messages by \"{other}\""))
                    .with_hint("order_by is seq or created_at"),
            ),
        }
    }
}

/// One message of an `append_many` or `save_messages` batch, validated.
#[derive(Debug, Clone, PartialEq)]
pub struct NewMessage {
    /// The caller's id; `None`: the store generates one.
    pub message_id: Option<String>,
    pub role: String,
    pub content: String,
    pub metadata: Value,
    /// The caller's timestamp (RFC 3339), checked by `check_timestamp`.
    pub created_at: Option<String>,
}

const MAX_MESSAGE_ID_BYTES: usize = 256;

/// A caller's message id: 1 to 256 bytes.
pub fn check_message_id(id: &str) -> CtxResult<()> {
    if id.is_empty() || id.len() > MAX_MESSAGE_ID_BYTES {
        return Err(CtxError::invalid(format!(
            "a message id must be 1 to {MAX_MESSAGE_ID_BYTES} bytes, got {}",
            id.len()
        ))
        .with_hint("pass the framework's message id, or leave it out to have one generated"));
    }
    Ok(())
}

/// A caller's timestamp must be RFC 3339 with an offset (`2026-01-31T12:00:00Z`,
/// `...+02:00`): without one its meaning would depend on the session's time zone. Days are
/// checked against their month (leap years too) and offsets against Postgres' range (±15:59),
/// so what passes here is a timestamp Postgres accepts.
pub fn check_timestamp(text: &str, name: &str) -> CtxResult<()> {
    if is_rfc3339(text.as_bytes()) {
        return Ok(());
    }
    Err(CtxError::new(
        ErrorKind::InvalidDatetime,
        format!("{name} is not an RFC 3339 timestamp with an offset: \"{text}\""),
    )
    .with_hint("pass e.g. \"2026-01-31T12:00:00.123Z\" or \"2026-01-31T14:00:00+02:00\""))
}

fn is_rfc3339(b: &[u8]) -> bool {
    let digits = |range: std::ops::Range<usize>| -> Option<u32> {
        let part = b.get(range)?;
        if !part.iter().all(u8::is_ascii_digit) {
            return None;
        }
        Some(part.iter().fold(0, |n, d| n * 10 + u32::from(d - b'0')))
    };
    let in_range = |v: Option<u32>, lo: u32, hi: u32| v.is_some_and(|v| (lo..=hi).contains(&v));
    let (year, month) = (digits(0..4), digits(5..7));
    let days = match (year, month) {
        (Some(y), Some(2)) if y % 4 == 0 && (y % 100 != 0 || y % 400 == 0) => 29,
        (_, Some(2)) => 28,
        (_, Some(4 | 6 | 9 | 11)) => 30,
        _ => 31,
    };
    if b.len() < 20
        || !in_range(year, 1, 9999)
        || b[4] != b'-'
        || !in_range(month, 1, 12)
        || b[7] != b'-'
        || !in_range(digits(8..10), 1, days)
        || !matches!(b[10], b'T' | b't' | b' ')
        || !in_range(digits(11..13), 0, 23)
        || b[13] != b':'
        || !in_range(digits(14..16), 0, 59)
        || b[16] != b':'
        || !in_range(digits(17..19), 0, 60)
    {
        return false;
    }
    let mut rest = &b[19..];
    if let Some(fraction) = rest.strip_prefix(b".") {
        let n = fraction.iter().take_while(|c| c.is_ascii_digit()).count();
        if n == 0 || n > 9 {
            return false;
        }
        rest = &fraction[n..];
    }
    match rest {
        [b'Z' | b'z'] => true,
        [b'+' | b'-', h1, h2, b':', m1, m2] => {
            let (h, m) = ([*h1, *h2], [*m1, *m2]);
            h.iter().chain(&m).all(u8::is_ascii_digit)
                && (h[0] - b'0') * 10 + (h[1] - b'0') <= 15
                && (m[0] - b'0') * 10 + (m[1] - b'0') <= 59
        }
        _ => false,
    }
}

/// Two elements of one batch with the same id: SQLSTATE 22023 naming both.
pub fn check_unique_ids(batch: &[NewMessage]) -> CtxResult<()> {
    let mut seen = std::collections::HashMap::new();
    for (i, message) in batch.iter().enumerate() {
        let Some(id) = &message.message_id else {
            continue;
        };
        if let Some(first) = seen.insert(id.as_str(), i) {
            return Err(CtxError::invalid(format!(
                "messages[{first}] and messages[{i}] have the same message_id \"{id}\""
            ))
            .with_hint("a batch names each message once"));
        }
    }
    Ok(())
}

/// Parses and validates a whole batch before anything is written, so a bad element fails the
/// call with its index and nothing is appended.
pub fn parse_batch(messages: &Value, max_bytes: usize) -> CtxResult<Vec<NewMessage>> {
    let items = messages.as_array().ok_or_else(|| {
        CtxError::invalid(format!(
            "messages must be a JSON array, not {}",
            json_type(messages)
        ))
        .with_hint("pass '[{\"role\": \"user\", \"content\": \"hi\"}, ...]'")
    })?;
    items
        .iter()
        .enumerate()
        .map(|(i, item)| parse_batch_item(i, item, max_bytes))
        .collect()
}

fn parse_batch_item(i: usize, item: &Value, max_bytes: usize) -> CtxResult<NewMessage> {
    let at = |err: CtxError| CtxError {
        message: format!("messages[{i}]: {}", err.message),
        ..err
    };
    let object = item.as_object().ok_or_else(|| {
        at(CtxError::invalid(format!(
            "element must be an object, not {}",
            json_type(item)
        ))
        .with_hint("each element is {\"role\": ..., \"content\": ..., \"metadata\": {...}}"))
    })?;
    if let Some(key) = object.keys().find(|k| {
        !matches!(
            k.as_str(),
            "role" | "content" | "metadata" | "message_id" | "created_at"
        )
    }) {
        return Err(at(CtxError::invalid(format!("unexpected key \"{key}\""))
            .with_hint(
                "allowed keys are message_id, role, content, metadata and created_at",
            )));
    }
    let optional_text = |name: &str| -> CtxResult<Option<String>> {
        match object.get(name) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(other) => Err(at(CtxError::invalid(format!(
                "{name} must be a string, not {}",
                json_type(other)
            ))
            .with_hint(format!("pass {name} as a JSON string, or leave it out")))),
        }
    };
    let message_id = optional_text("message_id")?;
    if let Some(id) = &message_id {
        check_message_id(id).map_err(at)?;
    }
    let created_at = optional_text("created_at")?;
    if let Some(at_text) = &created_at {
        check_timestamp(at_text, "created_at").map_err(at)?;
    }
    let text_field = |name: &str| -> CtxResult<String> {
        match object.get(name) {
            Some(Value::String(s)) => Ok(s.clone()),
            None | Some(Value::Null) => Err(at(CtxError::new(
                ErrorKind::NullValue,
                format!("{name} is missing or null"),
            )
            .with_hint(format!("every message needs a string \"{name}\"")))),
            Some(other) => Err(at(CtxError::invalid(format!(
                "{name} must be a string, not {}",
                json_type(other)
            ))
            .with_hint("serialise structured content to a JSON string first"))),
        }
    };
    let role = text_field("role")?;
    let content = text_field("content")?;
    check_role(&role).map_err(at)?;
    check_content(&content, max_bytes).map_err(at)?;
    let metadata = match object.get("metadata") {
        None | Some(Value::Null) => Value::Object(Default::default()),
        Some(m) => {
            check_metadata(m, "metadata").map_err(at)?;
            m.clone()
        }
    };
    Ok(NewMessage {
        message_id,
        role,
        content,
        metadata,
        created_at,
    })
}

/// Where a context's messages live: its own rows, then each ancestor's rows up to the seq the
/// fork saw. Seq ranges are disjoint and descending along the list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lineage {
    /// Ancestors, nearest first.
    pub ancestors: Vec<[u8; 16]>,
    /// For each ancestor, the highest of its seqs this context sees.
    pub bounds: Vec<i64>,
}

impl Lineage {
    /// The lineage of a fork of a context with this lineage, taken at `at_seq`.
    pub fn fork(&self, parent: [u8; 16], at_seq: i64) -> Lineage {
        let mut ancestors = Vec::with_capacity(self.ancestors.len() + 1);
        let mut bounds = Vec::with_capacity(self.bounds.len() + 1);
        ancestors.push(parent);
        bounds.push(at_seq);
        ancestors.extend_from_slice(&self.ancestors);
        bounds.extend(self.bounds.iter().map(|&b| b.min(at_seq)));
        Lineage { ancestors, bounds }
    }
}

/// Validates a fork point: it must name an existing position of the parent's view.
pub fn fork_point(at_seq: Option<i64>, parent_last_seq: i64) -> CtxResult<i64> {
    match at_seq {
        None => Ok(parent_last_seq),
        Some(seq) if (0..=parent_last_seq).contains(&seq) => Ok(seq),
        Some(seq) => Err(CtxError::invalid(format!(
            "cannot fork at seq {seq}: the context's messages run from 1 to {parent_last_seq}"
        ))
        .with_hint("pass at_seq between 0 and the context's last seq, or NULL for all")),
    }
}

/// Given the newest messages' token counts (newest first), how many fit in `budget`: the
/// window is contiguous, so it stops at the first message that does not fit.
pub fn newest_that_fit(
    tokens_newest_first: impl IntoIterator<Item = i64>,
    budget: &mut i64,
) -> usize {
    let mut taken = 0;
    for tokens in tokens_newest_first {
        if tokens > *budget {
            *budget = -1; // closed: older messages may not skip over this one
            break;
        }
        *budget -= tokens;
        taken += 1;
    }
    taken
}

/// What a compaction replaces: among the active (uncompacted) message seqs in ascending order,
/// all but the last `keep_last`. Returns the seqs covered, or an error when nothing is left
/// to summarise.
pub fn compaction_range(active_seqs: &[i64], keep_last: i64) -> CtxResult<&[i64]> {
    let keep = usize::try_from(keep_last)
        .unwrap_or(usize::MAX)
        .min(active_seqs.len());
    let covered = &active_seqs[..active_seqs.len() - keep];
    if covered.is_empty() {
        return Err(CtxError::new(
            ErrorKind::WrongState,
            format!(
                "nothing to compact: the context has {} active message(s) and keep_last is {keep_last}",
                active_seqs.len()
            ),
        )
        .with_hint("append more messages or lower keep_last"));
    }
    Ok(covered)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn roles() {
        for role in ROLES {
            check_role(role).unwrap();
        }
        for (role, hint) in [
            ("summary", "ctx.compact"),
            ("User", "one of"),
            ("", "one of"),
        ] {
            let err = check_role(role).unwrap_err();
            assert_eq!(err.kind.sqlstate(), "22023");
            assert!(err.hint.unwrap().contains(hint), "{role}");
        }
    }

    #[test]
    fn content_limit_counts_bytes() {
        check_content("héllo", 6).unwrap();
        let err = check_content("héllo", 5).unwrap_err();
        assert_eq!(err.kind.sqlstate(), "54000");
        assert!(err.message.contains("6 bytes"));
    }

    #[test]
    fn batch_accepts_well_formed() {
        let batch = parse_batch(
            &json!([
                {"role": "user", "content": "hi"},
                {"role": "assistant", "content": "", "metadata": {"model": "x"}},
                {"role": "tool", "content": "42", "metadata": null}
            ]),
            100,
        )
        .unwrap();
        assert_eq!(batch.len(), 3);
        assert_eq!(batch[1].metadata, json!({"model": "x"}));
        assert_eq!(batch[2].metadata, json!({}));
        assert!(parse_batch(&json!([]), 100).unwrap().is_empty());
    }

    #[test]
    fn batch_errors_name_the_element() {
        let cases = [
            (json!({"role": "user"}), "", "22023", "must be a JSON array"),
            (json!([1]), "messages[0]", "22023", "must be an object"),
            (
                json!([{"role": "user", "content": "a"}, {"content": "b"}]),
                "messages[1]",
                "22004",
                "role is missing",
            ),
            (
                json!([{"role": "user", "content": null}]),
                "messages[0]",
                "22004",
                "content is missing or null",
            ),
            (
                json!([{"role": "user", "content": 5}]),
                "messages[0]",
                "22023",
                "must be a string, not a number",
            ),
            (
                json!([{"role": "bot", "content": "x"}]),
                "messages[0]",
                "22023",
                "unknown message role",
            ),
            (
                json!([{"role": "user", "content": "x", "metadata": [1]}]),
                "messages[0]",
                "22023",
                "JSON object",
            ),
            (
                json!([{"role": "user", "content": "x", "meta": {}}]),
                "messages[0]",
                "22023",
                "unexpected key \"meta\"",
            ),
            (
                json!([{"role": "user", "content": "x".repeat(11)}]),
                "messages[0]",
                "54000",
                "above the limit",
            ),
        ];
        for (input, prefix, state, text) in cases {
            let err = parse_batch(&input, 10).unwrap_err();
            assert_eq!(err.kind.sqlstate(), state, "{input}");
            assert!(err.message.starts_with(prefix), "{}", err.message);
            assert!(err.message.contains(text), "{}", err.message);
        }
    }

    #[test]
    fn fork_lineage_clips_bounds() {
        let a = [1u8; 16];
        let b = [2u8; 16];
        let root = Lineage {
            ancestors: vec![],
            bounds: vec![],
        };
        let b_line = root.fork(a, 5); // B = fork(A, 5)
        assert_eq!(
            b_line,
            Lineage {
                ancestors: vec![a],
                bounds: vec![5]
            }
        );
        let c_line = b_line.fork(b, 3); // C = fork(B, 3): sees A only up to 3
        assert_eq!(
            c_line,
            Lineage {
                ancestors: vec![b, a],
                bounds: vec![3, 3]
            }
        );
        let d_line = b_line.fork(b, 7); // D = fork(B, 7): B's 6..7, A's 1..5
        assert_eq!(d_line.bounds, vec![7, 5]);
    }

    #[test]
    fn fork_points() {
        assert_eq!(fork_point(None, 9).unwrap(), 9);
        assert_eq!(fork_point(Some(0), 9).unwrap(), 0);
        assert_eq!(fork_point(Some(9), 9).unwrap(), 9);
        for bad in [-1, 10] {
            assert_eq!(
                fork_point(Some(bad), 9).unwrap_err().kind.sqlstate(),
                "22023"
            );
        }
    }

    #[test]
    fn token_budget_is_contiguous() {
        let mut budget = 10;
        assert_eq!(newest_that_fit([3, 4, 5, 1], &mut budget), 2);
        let mut budget = 10;
        assert_eq!(newest_that_fit([3, 4, 3], &mut budget), 3);
        assert_eq!(budget, 0);
        let mut budget = 0;
        assert_eq!(newest_that_fit([0, 0, 1, 0], &mut budget), 2);
        // a closed budget takes nothing more, even zero-token messages
        assert_eq!(newest_that_fit([0], &mut budget), 0);
    }

    #[test]
    fn compaction_ranges() {
        let seqs = [4, 5, 6, 7];
        assert_eq!(compaction_range(&seqs, 0).unwrap(), &[4, 5, 6, 7]);
        assert_eq!(compaction_range(&seqs, 3).unwrap(), &[4]);
        for keep in [4, 5, i64::MAX] {
            assert_eq!(
                compaction_range(&seqs, keep).unwrap_err().kind.sqlstate(),
                "55000"
            );
        }
        assert!(compaction_range(&[], 0).is_err());
    }

    #[test]
    fn only_known_columns_order_a_context_list() {
        assert_eq!(context_order_column("updated_at").unwrap(), "c.updated_at");
        assert_eq!(context_order_column("message_count").unwrap(), "c.last_seq");
        let err = context_order_column("updated_at; DROP TABLE x").unwrap_err();
        assert_eq!(err.kind.sqlstate(), "22023");
    }

    #[test]
    fn resources_are_bounded() {
        assert!(check_resource(None).is_ok());
        assert!(check_resource(Some("user-42")).is_ok());
        assert_eq!(
            check_resource(Some("")).unwrap_err().kind.sqlstate(),
            "22023"
        );
        let long = "x".repeat(MAX_RESOURCE_BYTES + 1);
        assert!(check_resource(Some(&long)).is_err());
    }

    #[test]
    fn timestamps() {
        for good in [
            "2026-01-31T12:00:00Z",
            "2026-01-31t12:00:00z",
            "2026-01-31 12:00:00.123456+02:00",
            "0001-12-31T23:59:60.1-15:59",
            "2024-02-29T00:00:00Z",
            "2000-02-29T00:00:00Z",
        ] {
            check_timestamp(good, "created_at").unwrap();
        }
        for bad in [
            "",
            "2026-01-31",
            "2026-01-31T12:00:00",
            "2026-13-01T00:00:00Z",
            "2026-01-32T00:00:00Z",
            "2026-01-31T24:00:00Z",
            "2026-01-31T12:60:00Z",
            "2026-01-31T12:00:00.Z",
            "2026-01-31T12:00:00.1234567890Z",
            "2026-01-31T12:00:00+2:00",
            "2026-01-31T12:00:00+24:00",
            "2026-01-31T12:00:00-16:00",
            "2026-02-29T00:00:00Z",
            "1900-02-29T00:00:00Z",
            "2026-04-31T00:00:00Z",
            "2026-01-31T12:00:00+02:60",
            "2026-01-31T12:00:00Z ",
            "yesterday",
        ] {
            let err = check_timestamp(bad, "created_at").unwrap_err();
            assert_eq!(err.kind.sqlstate(), "22007", "{bad}");
        }
    }

    #[test]
    fn batch_ids() {
        let batch = parse_batch(
            &json!([
                {"role": "user", "content": "a", "message_id": "m-1", "created_at": "2026-01-31T12:00:00Z"},
                {"role": "user", "content": "b"},
                {"role": "user", "content": "c", "message_id": "m-1"}
            ]),
            1000,
        )
        .unwrap();
        assert_eq!(batch[0].message_id.as_deref(), Some("m-1"));
        assert_eq!(batch[0].created_at.as_deref(), Some("2026-01-31T12:00:00Z"));
        assert_eq!(batch[1].message_id, None);
        let err = check_unique_ids(&batch).unwrap_err();
        assert_eq!(err.kind.sqlstate(), "22023");
        assert!(
            err.message.contains("messages[0] and messages[2]"),
            "{}",
            err.message
        );
        check_unique_ids(&batch[..2]).unwrap();
        for (bad, state) in [
            (
                json!([{"role": "user", "content": "a", "message_id": ""}]),
                "22023",
            ),
            (
                json!([{"role": "user", "content": "a", "message_id": 7}]),
                "22023",
            ),
            (
                json!([{"role": "user", "content": "a", "message_id": "x".repeat(257)}]),
                "22023",
            ),
            (
                json!([{"role": "user", "content": "a", "created_at": "now"}]),
                "22007",
            ),
        ] {
            let err = parse_batch(&bad, 1000).unwrap_err();
            assert_eq!(err.kind.sqlstate(), state, "{bad}");
            assert!(err.message.starts_with("messages[0]: "), "{}", err.message);
        }
    }
}
