//! The processor pipeline's rules: the built-in processors, their per-context / per-namespace
//! configuration, user-processor scopes, and the built-in transforms themselves. Pure: the SQL
//! glue (loading the registry, calling user functions) is in `api::processors`.
//!
//! Order: the processors of a stage run by ascending priority, built-in and user ones
//! interleaved; on read, the set-level built-ins (`dedup`, then `token_limit`) run after every
//! per-message processor.

use std::borrow::Cow;
use std::collections::HashSet;

use serde_json::{json, Map, Value};
use unicode_normalization::{is_nfc_quick, IsNormalized, UnicodeNormalization};

use crate::core::conversation::json_type;
use crate::core::redact::{self, Kind as Detected};
use crate::core::tokenizer::Encoding;
use crate::error::{CtxError, CtxResult};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    Write,
    Read,
}

impl Stage {
    pub fn name(self) -> &'static str {
        match self {
            Stage::Write => "write",
            Stage::Read => "read",
        }
    }

    pub fn parse(name: &str) -> CtxResult<Stage> {
        match name {
            "write" => Ok(Stage::Write),
            "read" => Ok(Stage::Read),
            other => Err(
                CtxError::invalid(format!("unknown processor stage \"{other}\"")).with_hint(
                    "stage is 'write' (append, remember, put) or 'read' (windows, build_context)",
                ),
            ),
        }
    }
}

/// What a write stores: processors and scopes can tell them apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Message,
    Memory,
    State,
}

impl Kind {
    pub fn name(self) -> &'static str {
        match self {
            Kind::Message => "message",
            Kind::Memory => "memory",
            Kind::State => "state",
        }
    }

    fn parse(name: &str) -> Option<Kind> {
        [Kind::Message, Kind::Memory, Kind::State]
            .into_iter()
            .find(|k| k.name() == name)
    }
}

/// A built-in processor: its name is also its configuration key.
pub struct Builtin {
    pub name: &'static str,
    pub stage: Stage,
    pub priority: i32,
    pub description: &'static str,
}

pub const BUILTINS: &[Builtin] = &[
    Builtin {
        name: "normalize",
        stage: Stage::Write,
        priority: 10,
        description: "Unicode NFC, CRLF/CR to LF, control characters other than tab and newline removed (messages and memories)",
    },
    Builtin {
        name: "size_limit",
        stage: Stage::Write,
        priority: 20,
        description: "rejects (SQLSTATE 54000) a message or memory above N tokens; off by default",
    },
    Builtin {
        name: "redact_secrets",
        stage: Stage::Write,
        priority: 50,
        description: "card numbers (Luhn), API keys and tokens, JWTs, private keys, password=... values; on by default",
    },
    Builtin {
        name: "redact_pii",
        stage: Stage::Write,
        priority: 51,
        description: "email addresses and phone numbers (true, or a list of \"email\", \"phone\"); off by default",
    },
    Builtin {
        name: "drop_roles",
        stage: Stage::Read,
        priority: 10,
        description: "drops messages of the listed roles",
    },
    Builtin {
        name: "drop_tool_messages",
        stage: Stage::Read,
        priority: 20,
        description: "drops tool results and assistant messages that only carry tool calls",
    },
    Builtin {
        name: "truncate",
        stage: Stage::Read,
        priority: 900,
        description: "cuts each message to N tokens, marked with \"…[truncated]\"",
    },
    Builtin {
        name: "dedup",
        stage: Stage::Read,
        priority: 950,
        description: "keeps only the newest of messages with the same role and stored content",
    },
    Builtin {
        name: "token_limit",
        stage: Stage::Read,
        priority: 1000,
        description: "at most N tokens of messages in all (the newest that fit)",
    },
];

pub fn builtin(name: &str) -> Option<&'static Builtin> {
    BUILTINS.iter().find(|b| b.name == name)
}

/// The effective configuration of the built-ins for one context or namespace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    pub normalize: bool,
    pub size_limit: Option<u32>,
    pub redact_secrets: bool,
    pub redact_pii: Vec<Detected>,
    pub drop_roles: Vec<String>,
    pub drop_tool_messages: bool,
    pub truncate: Option<u32>,
    pub dedup: bool,
    pub token_limit: Option<u32>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            normalize: true,
            size_limit: None,
            redact_secrets: true,
            redact_pii: Vec::new(),
            drop_roles: Vec::new(),
            drop_tool_messages: false,
            truncate: None,
            dedup: false,
            token_limit: None,
        }
    }
}

fn bad(message: String) -> CtxError {
    CtxError::invalid(format!("invalid processor configuration: {message}")).with_hint(
        "e.g. {\"redact_pii\": true, \"drop_tool_messages\": true, \"truncate\": 500}; \
         keys are the built-in processor names listed in ctx.processors",
    )
}

/// Where a configuration is stored decides which keys it may set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    /// A context: every built-in.
    Context,
    /// A namespace: the write-stage built-ins (memories and state are written there).
    Namespace,
    /// One `build_context` call: the read-stage built-ins.
    Call,
}

impl Config {
    /// Applies the keys of `doc` over this configuration; `null` values restore the default.
    pub fn overlay(&mut self, doc: &Value, level: Level) -> CtxResult<()> {
        let map = match doc {
            Value::Null => return Ok(()),
            Value::Object(map) => map,
            other => return Err(bad(format!("expected an object, not {}", json_type(other)))),
        };
        let defaults = Config::default();
        for (key, value) in map {
            let Some(b) = builtin(key) else {
                return Err(bad(format!("unknown processor \"{key}\"")));
            };
            let allowed = match level {
                Level::Context => true,
                Level::Namespace => b.stage == Stage::Write,
                Level::Call => b.stage == Stage::Read,
            };
            if !allowed {
                return Err(bad(format!(
                    "\"{key}\" is a {} processor and cannot be set {}",
                    b.stage.name(),
                    match level {
                        Level::Namespace => "for a namespace (read processors are set per context)",
                        _ => "per call (write processors are set per context or namespace)",
                    }
                )));
            }
            let flag = |v: &Value| {
                v.as_bool()
                    .ok_or_else(|| bad(format!("\"{key}\" must be true or false, not {v}")))
            };
            let tokens = |v: &Value| -> CtxResult<Option<u32>> {
                match v {
                    Value::Null => Ok(None),
                    _ => v
                        .as_u64()
                        .filter(|n| (1..=1_000_000_000).contains(n))
                        .map(|n| Some(n as u32))
                        .ok_or_else(|| {
                            bad(format!(
                                "\"{key}\" must be a positive number of tokens or null, not {v}"
                            ))
                        }),
                }
            };
            match key.as_str() {
                "normalize" if value.is_null() => self.normalize = defaults.normalize,
                "normalize" => self.normalize = flag(value)?,
                "size_limit" => self.size_limit = tokens(value)?,
                "redact_secrets" if value.is_null() => {
                    self.redact_secrets = defaults.redact_secrets
                }
                "redact_secrets" => self.redact_secrets = flag(value)?,
                "redact_pii" => self.redact_pii = personal_kinds(value)?,
                "drop_roles" => self.drop_roles = roles(value)?,
                "drop_tool_messages" if value.is_null() => self.drop_tool_messages = false,
                "drop_tool_messages" => self.drop_tool_messages = flag(value)?,
                "truncate" => self.truncate = tokens(value)?,
                "dedup" if value.is_null() => self.dedup = false,
                "dedup" => self.dedup = flag(value)?,
                "token_limit" => self.token_limit = tokens(value)?,
                _ => unreachable!("every built-in has a key"),
            }
        }
        Ok(())
    }

    /// Checks a stored configuration document (what `ctx.configure_*_processors` accepts).
    pub fn check(doc: &Value, level: Level) -> CtxResult<()> {
        Config::default().overlay(doc, level)
    }

    /// The effective values of every built-in, as `ctx.processor_config` shows them.
    pub fn to_json(&self) -> Value {
        json!({
            "normalize": self.normalize,
            "size_limit": self.size_limit,
            "redact_secrets": self.redact_secrets,
            "redact_pii": self.redact_pii.iter().map(|k| k.name()).collect::<Vec<_>>(),
            "drop_roles": self.drop_roles,
            "drop_tool_messages": self.drop_tool_messages,
            "truncate": self.truncate,
            "dedup": self.dedup,
            "token_limit": self.token_limit,
        })
    }

    /// Disables the built-ins an administrator switched off for everyone (ctx.disable_processor).
    pub fn without(mut self, disabled: &[String]) -> Config {
        for name in disabled {
            match name.as_str() {
                "normalize" => self.normalize = false,
                "size_limit" => self.size_limit = None,
                "redact_secrets" => self.redact_secrets = false,
                "redact_pii" => self.redact_pii.clear(),
                "drop_roles" => self.drop_roles.clear(),
                "drop_tool_messages" => self.drop_tool_messages = false,
                "truncate" => self.truncate = None,
                "dedup" => self.dedup = false,
                "token_limit" => self.token_limit = None,
                _ => {}
            }
        }
        self
    }

    pub fn redaction(&self) -> redact::Selection {
        redact::Selection::new(self.redact_secrets, &self.redact_pii)
    }

    /// Whether any read-stage built-in would change a window.
    pub fn reads_unchanged(&self) -> bool {
        self.drop_roles.is_empty()
            && !self.drop_tool_messages
            && self.truncate.is_none()
            && !self.dedup
            && self.token_limit.is_none()
    }
}

fn personal_kinds(value: &Value) -> CtxResult<Vec<Detected>> {
    match value {
        Value::Null | Value::Bool(false) => Ok(Vec::new()),
        Value::Bool(true) => Ok(Detected::PERSONAL.to_vec()),
        Value::Array(items) => items
            .iter()
            .map(|item| {
                item.as_str()
                    .and_then(Detected::parse)
                    .filter(|k| Detected::PERSONAL.contains(k))
                    .ok_or_else(|| {
                        bad(format!(
                            "\"redact_pii\" lists \"email\" and/or \"phone\", not {item}"
                        ))
                    })
            })
            .collect(),
        other => Err(bad(format!(
            "\"redact_pii\" must be true, false or a list of \"email\", \"phone\", not {other}"
        ))),
    }
}

fn roles(value: &Value) -> CtxResult<Vec<String>> {
    match value {
        Value::Null => Ok(Vec::new()),
        Value::Array(items) => items
            .iter()
            .map(|item| {
                item.as_str()
                    .filter(|r| crate::core::conversation::check_role(r).is_ok())
                    .map(str::to_string)
                    .ok_or_else(|| {
                        bad(format!(
                            "\"drop_roles\" lists roles (system, user, assistant, tool), not {item}"
                        ))
                    })
            })
            .collect(),
        other => Err(bad(format!(
            "\"drop_roles\" must be a list of roles, not {other}"
        ))),
    }
}

/// Where a user processor runs: every key given must match (an empty scope matches everything).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Scope {
    pub context_id: Option<String>,
    pub namespace: Option<Vec<String>>,
    pub metadata: Option<Value>,
    pub kinds: Option<Vec<Kind>>,
}

/// What a processor is about to see.
pub struct Target<'a> {
    pub kind: Kind,
    pub context_id: Option<&'a str>,
    pub namespace: Option<&'a [String]>,
    /// The context's metadata for messages, the memory's for memories.
    pub metadata: Option<&'a Value>,
}

fn bad_scope(message: String) -> CtxError {
    CtxError::invalid(format!("invalid processor scope: {message}")).with_hint(
        "a scope looks like {\"context_id\": \"…\"}, {\"namespace\": [\"user\"]}, \
         {\"metadata\": {\"app\": \"support\"}} or {\"kinds\": [\"message\", \"memory\", \"state\"]}",
    )
}

impl Scope {
    pub fn parse(doc: &Value) -> CtxResult<Scope> {
        let map = match doc {
            Value::Null => return Ok(Scope::default()),
            Value::Object(map) => map,
            other => {
                return Err(bad_scope(format!(
                    "expected an object, not {}",
                    json_type(other)
                )))
            }
        };
        let mut scope = Scope::default();
        for (key, value) in map {
            match key.as_str() {
                "context_id" => {
                    let id = value.as_str().filter(|s| is_uuid(s)).ok_or_else(|| {
                        bad_scope(format!("context_id must be a uuid, not {value}"))
                    })?;
                    scope.context_id = Some(id.to_ascii_lowercase());
                }
                "namespace" => {
                    let labels: Option<Vec<String>> = value.as_array().and_then(|items| {
                        items
                            .iter()
                            .map(|l| l.as_str().map(str::to_string))
                            .collect()
                    });
                    let labels = labels.ok_or_else(|| {
                        bad_scope(format!("namespace must be an array of labels, not {value}"))
                    })?;
                    crate::core::namespace::validate(&labels, false)?;
                    scope.namespace = Some(labels);
                }
                "metadata" => {
                    if !value.is_object() {
                        return Err(bad_scope(format!(
                            "metadata must be an object, not {value}"
                        )));
                    }
                    scope.metadata = Some(value.clone());
                }
                "kinds" => {
                    let kinds: Option<Vec<Kind>> = value.as_array().and_then(|items| {
                        items
                            .iter()
                            .map(|k| k.as_str().and_then(Kind::parse))
                            .collect()
                    });
                    scope.kinds = Some(kinds.filter(|k| !k.is_empty()).ok_or_else(|| {
                        bad_scope(format!(
                            "kinds must be a non-empty list of \"message\", \"memory\", \"state\", not {value}"
                        ))
                    })?);
                }
                other => return Err(bad_scope(format!("unknown key \"{other}\""))),
            }
        }
        Ok(scope)
    }

    pub fn matches(&self, target: &Target<'_>) -> bool {
        if let Some(kinds) = &self.kinds {
            if !kinds.contains(&target.kind) {
                return false;
            }
        }
        if let Some(id) = &self.context_id {
            if target
                .context_id
                .is_none_or(|t| !t.eq_ignore_ascii_case(id))
            {
                return false;
            }
        }
        if let Some(prefix) = &self.namespace {
            match target.namespace {
                Some(ns) if ns.starts_with(prefix) => {}
                _ => return false,
            }
        }
        if let Some(pattern) = &self.metadata {
            if !target.metadata.is_some_and(|m| contains(m, pattern)) {
                return false;
            }
        }
        true
    }
}

fn is_uuid(s: &str) -> bool {
    let hex: String = s.chars().filter(|c| *c != '-').collect();
    hex.len() == 32 && hex.chars().all(|c| c.is_ascii_hexdigit())
}

/// jsonb `@>` semantics: objects contain a subset of keys, arrays contain every element of
/// the pattern (in any order), scalars are equal.
pub fn contains(value: &Value, pattern: &Value) -> bool {
    match (value, pattern) {
        (Value::Object(v), Value::Object(p)) => p
            .iter()
            .all(|(k, pv)| v.get(k).is_some_and(|vv| contains(vv, pv))),
        (Value::Array(v), Value::Array(p)) => p.iter().all(|pv| {
            v.iter().any(|vv| match pv {
                Value::Array(_) | Value::Object(_) => contains(vv, pv),
                _ => vv == pv,
            })
        }),
        (Value::Array(v), scalar) if !scalar.is_object() => v.iter().any(|vv| vv == scalar),
        _ => value == pattern,
    }
}

/// NFC, CRLF and CR to LF, control characters other than tab and newline removed.
pub fn normalize(text: &str) -> Cow<'_, str> {
    let clean = |c: char| !c.is_control() || c == '\n' || c == '\t';
    let needs_newlines = text.contains('\r');
    let needs_controls = !text.chars().all(clean);
    let needs_nfc = is_nfc_quick(text.chars()) != IsNormalized::Yes;
    if !needs_newlines && !needs_controls && !needs_nfc {
        return Cow::Borrowed(text);
    }
    let mut out = if needs_newlines {
        text.replace("\r\n", "\n").replace('\r', "\n")
    } else {
        text.to_string()
    };
    if needs_controls {
        out.retain(clean);
    }
    if needs_nfc {
        out = out.nfc().collect();
    }
    Cow::Owned(out)
}

/// Redacts every string in a JSON document (keys are kept): state values and metadata. The
/// whole value of a key that names a secret (`"password": "…"`) is a credential.
pub fn redact_json(value: &mut Value, selection: &redact::Selection, counts: &mut redact::Counts) {
    let credentials = selection.kinds.contains(&Detected::Credential);
    match value {
        Value::String(s) => {
            if let Some(clean) = redact::redact(s, selection, counts) {
                *s = clean;
            }
        }
        Value::Array(items) => items
            .iter_mut()
            .for_each(|v| redact_json(v, selection, counts)),
        Value::Object(map) => {
            for (key, v) in map.iter_mut() {
                match v {
                    Value::String(secret)
                        if credentials
                            && !secret.is_empty()
                            && !secret.starts_with("[REDACTED")
                            && redact::is_sensitive_key(key) =>
                    {
                        *secret = Detected::Credential.placeholder();
                        *counts.entry(Detected::Credential.name()).or_default() += 1;
                    }
                    _ => redact_json(v, selection, counts),
                }
            }
        }
        _ => {}
    }
}

/// Adds this write's redaction counts to those already recorded (`{"card": 1, "email": 2}`).
pub fn record_counts(existing: Option<&Value>, counts: &redact::Counts) -> Value {
    let mut merged: Map<String, Value> = existing
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    for (kind, n) in counts {
        let before = merged.get(*kind).and_then(Value::as_u64).unwrap_or(0);
        merged.insert((*kind).to_string(), json!(before + n));
    }
    Value::Object(merged)
}

pub const TRUNCATION_MARK: &str = "…[truncated]";

/// The longest prefix of `text` (cut on a token boundary) that, with the truncation mark,
/// has at most `max_tokens` tokens; `None` if the text already fits.
pub fn truncate(text: &str, max_tokens: usize, encoding: Encoding) -> Option<String> {
    if encoding.count(text) <= max_tokens {
        return None;
    }
    let mark = encoding.count(TRUNCATION_MARK);
    if max_tokens <= mark {
        return Some(encoding.prefix(text, max_tokens));
    }
    let mut keep = max_tokens - mark;
    loop {
        let cut = format!("{}{TRUNCATION_MARK}", encoding.prefix(text, keep));
        // token boundaries can merge across the join; shrink until the whole fits
        if encoding.count(&cut) <= max_tokens || keep == 0 {
            return Some(cut);
        }
        keep -= 1;
    }
}

/// A message as read processors see it.
#[derive(Debug, Clone, PartialEq)]
pub struct ReadMessage {
    pub role: String,
    pub content: String,
    pub metadata: Value,
    pub tokens: i64,
}

/// The per-message read built-ins of `config` at `priority`: `false` means drop the message.
pub fn apply_read_builtin(
    name: &str,
    config: &Config,
    message: &mut ReadMessage,
    encoding: Encoding,
) -> bool {
    match name {
        "drop_roles" => !config.drop_roles.contains(&message.role),
        "drop_tool_messages" if config.drop_tool_messages => {
            if is_tool_traffic(message) {
                return false;
            }
            // the calls' results are gone: an assistant message keeps its text, not its calls
            // (a model API rejects tool_calls without their tool messages)
            if let Some(map) = message.metadata.as_object_mut() {
                map.remove("tool_calls");
            }
            true
        }
        "truncate" => {
            if let Some(limit) = config.truncate {
                if message.tokens > i64::from(limit) {
                    if let Some(cut) = truncate(&message.content, limit as usize, encoding) {
                        message.metadata["truncated_from_tokens"] = json!(message.tokens);
                        message.tokens = encoding.count(&cut) as i64;
                        message.content = cut;
                    }
                }
            }
            true
        }
        _ => true,
    }
}

/// Tool results, and assistant messages whose only payload is a tool call.
fn is_tool_traffic(message: &ReadMessage) -> bool {
    message.role == "tool"
        || (message.role == "assistant"
            && message.metadata.get("tool_calls").is_some()
            && message.content.trim().is_empty())
}

/// `dedup`: remembers (role, stored content) of the messages kept so far, newest first. The
/// stored content, not the processed one: two long messages that `truncate` cut to the same
/// prefix are not repeats.
#[derive(Default)]
pub struct Dedup {
    seen: HashSet<(String, String)>,
}

impl Dedup {
    /// Whether a message (visited newest first) repeats a newer one.
    pub fn repeats(&mut self, role: &str, stored_content: &str) -> bool {
        !self
            .seen
            .insert((role.to_string(), stored_content.trim().to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorKind;

    #[test]
    fn config_overlays_and_levels() {
        let mut c = Config::default();
        c.overlay(
            &json!({"redact_pii": ["email"], "truncate": 50, "drop_roles": ["tool"]}),
            Level::Context,
        )
        .unwrap();
        assert_eq!(c.redact_pii, vec![Detected::Email]);
        assert_eq!(c.truncate, Some(50));
        c.overlay(
            &json!({"truncate": null, "redact_pii": true}),
            Level::Context,
        )
        .unwrap();
        assert_eq!(c.truncate, None);
        assert_eq!(c.redact_pii, Detected::PERSONAL.to_vec());
        assert!(Config::check(&json!({"truncate": 10}), Level::Namespace).is_err());
        assert!(Config::check(&json!({"redact_pii": true}), Level::Call).is_err());
        assert!(Config::check(&json!({"dedup": true}), Level::Call).is_ok());
        for bad in [
            json!([]),
            json!({"unknown": 1}),
            json!({"truncate": 0}),
            json!({"truncate": -5}),
            json!({"redact_pii": ["ssn"]}),
            json!({"drop_roles": ["robot"]}),
            json!({"dedup": "yes"}),
        ] {
            let e = Config::check(&bad, Level::Context).unwrap_err();
            assert_eq!(e.kind, ErrorKind::InvalidParameter, "{bad}");
        }
        let off = Config::default().without(&["redact_secrets".into(), "normalize".into()]);
        assert!(!off.redact_secrets && !off.normalize);
        assert!(Config::default().reads_unchanged());
    }

    #[test]
    fn scopes() {
        let ns = vec!["user".to_string(), "42".to_string()];
        let meta = json!({"app": "support", "tags": ["a", "b"]});
        let target = Target {
            kind: Kind::Memory,
            context_id: None,
            namespace: Some(&ns),
            metadata: Some(&meta),
        };
        assert!(Scope::parse(&json!({})).unwrap().matches(&target));
        assert!(Scope::parse(&json!({"namespace": ["user"]}))
            .unwrap()
            .matches(&target));
        assert!(!Scope::parse(&json!({"namespace": ["org"]}))
            .unwrap()
            .matches(&target));
        assert!(Scope::parse(&json!({"metadata": {"tags": ["b"]}}))
            .unwrap()
            .matches(&target));
        assert!(!Scope::parse(&json!({"metadata": {"app": "sales"}}))
            .unwrap()
            .matches(&target));
        assert!(!Scope::parse(&json!({"kinds": ["message"]}))
            .unwrap()
            .matches(&target));
        let id = "6F9619FF-8B86-D011-B42D-00C04FC964FF";
        let message = Target {
            kind: Kind::Message,
            context_id: Some("6f9619ff-8b86-d011-b42d-00c04fc964ff"),
            namespace: None,
            metadata: None,
        };
        assert!(Scope::parse(&json!({"context_id": id}))
            .unwrap()
            .matches(&message));
        assert!(!Scope::parse(&json!({"namespace": ["user"]}))
            .unwrap()
            .matches(&message));
        for bad in [
            json!({"context_id": "nope"}),
            json!({"namespace": "user"}),
            json!({"kinds": []}),
            json!({"kinds": ["row"]}),
            json!({"where": 1}),
            json!(5),
        ] {
            assert_eq!(
                Scope::parse(&bad).unwrap_err().kind,
                ErrorKind::InvalidParameter,
                "{bad}"
            );
        }
    }

    #[test]
    fn containment_is_jsonb_like() {
        assert!(contains(&json!({"a": 1, "b": 2}), &json!({"a": 1})));
        assert!(contains(&json!({"a": [1, 2, 3]}), &json!({"a": [3, 1]})));
        assert!(contains(
            &json!({"a": {"b": {"c": 1, "d": 2}}}),
            &json!({"a": {"b": {"c": 1}}})
        ));
        assert!(!contains(&json!({"a": 1}), &json!({"a": 2})));
        assert!(!contains(&json!({"a": 1}), &json!({"b": null})));
    }

    #[test]
    fn normalization() {
        assert!(matches!(normalize("plain text\n\tok"), Cow::Borrowed(_)));
        assert_eq!(normalize("a\r\nb\rc"), "a\nb\nc");
        assert_eq!(normalize("bell\u{7}\u{0}x"), "bellx");
        assert_eq!(normalize("cafe\u{301}"), "caf\u{e9}");
    }

    #[test]
    fn truncation_respects_the_limit() {
        let e = Encoding::O200kBase;
        let text = "The quick brown fox jumps over the lazy dog. ".repeat(20);
        assert_eq!(truncate("short", 10, e), None);
        for limit in [1, 3, 5, 8, 20, 100] {
            let cut = truncate(&text, limit, e).unwrap();
            assert!(e.count(&cut) <= limit, "{limit}: {cut}");
            if limit > 5 {
                assert!(cut.ends_with(TRUNCATION_MARK));
            }
        }
        let emoji = "👩‍💻🌍你好".repeat(30);
        for limit in [2, 7, 15] {
            let cut = truncate(&emoji, limit, e).unwrap();
            assert!(e.count(&cut) <= limit);
        }
    }

    #[test]
    fn read_builtins() {
        let e = Encoding::O200kBase;
        let mut config = Config::default();
        config
            .overlay(
                &json!({"drop_roles": ["system"], "drop_tool_messages": true, "truncate": 8}),
                Level::Context,
            )
            .unwrap();
        let msg = |role: &str, content: &str, metadata: Value| ReadMessage {
            role: role.into(),
            content: content.into(),
            metadata,
            tokens: e.count(content) as i64,
        };
        let mut system = msg("system", "be brief", json!({}));
        assert!(!apply_read_builtin("drop_roles", &config, &mut system, e));
        let mut tool = msg("tool", "42", json!({"tool_call_id": "c1"}));
        assert!(!apply_read_builtin(
            "drop_tool_messages",
            &config,
            &mut tool,
            e
        ));
        let mut call = msg("assistant", "", json!({"tool_calls": []}));
        assert!(!apply_read_builtin(
            "drop_tool_messages",
            &config,
            &mut call,
            e
        ));
        let mut answer = msg(
            "assistant",
            "It is 42, said the tool, after a long computation.",
            json!({}),
        );
        assert!(apply_read_builtin(
            "drop_tool_messages",
            &config,
            &mut answer,
            e
        ));
        assert!(apply_read_builtin("truncate", &config, &mut answer, e));
        assert!(answer.tokens <= 8 && answer.content.ends_with(TRUNCATION_MARK));
        assert_eq!(answer.tokens, e.count(&answer.content) as i64);
        assert!(answer.metadata["truncated_from_tokens"].as_i64().unwrap() > 8);
        let mut both = msg(
            "assistant",
            "Calling the tool now.",
            json!({"tool_calls": [{"id": "c"}], "x": 1}),
        );
        assert!(apply_read_builtin(
            "drop_tool_messages",
            &config,
            &mut both,
            e
        ));
        assert_eq!(both.metadata, json!({"x": 1}));
        let mut dedup = Dedup::default();
        assert!(!dedup.repeats("user", "hi"));
        assert!(dedup.repeats("user", " hi "));
        assert!(!dedup.repeats("assistant", "hi"));
    }

    #[test]
    fn redaction_counts_accumulate_in_json() {
        let mut value = json!({"card": "4111 1111 1111 1111", "notes": ["mail a@b.io", 3],
                               "db": {"DB_PASSWORD": "x1", "password_hint": ""}});
        let mut counts = redact::Counts::new();
        redact_json(
            &mut value,
            &redact::Selection::new(true, &Detected::PERSONAL),
            &mut counts,
        );
        assert_eq!(value["card"], "[REDACTED:card]");
        assert_eq!(value["notes"][0], "mail [REDACTED:email]");
        assert_eq!(
            value["db"],
            json!({"DB_PASSWORD": "[REDACTED:credential]", "password_hint": ""})
        );
        let recorded = record_counts(Some(&json!({"card": 2})), &counts);
        assert_eq!(recorded, json!({"card": 3, "email": 1, "credential": 1}));
    }
}
