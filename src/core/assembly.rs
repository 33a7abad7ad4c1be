//! Options and budget rules of `ctx.build_context`: how one token budget is shared between the
//! sections of an LLM context. Pure: the SQL glue is in `api::assembly`.

use serde_json::Value;

use crate::core::conversation::json_type;
use crate::core::namespace;
use crate::core::processors::{Config, Level};
use crate::error::{CtxError, CtxResult};

/// What to assemble; every field has a documented default.
#[derive(Debug, Clone, PartialEq)]
pub struct AssemblyOptions {
    /// Namespaces to recall memories from (default: the context's `memory_namespace` metadata).
    pub memory_namespaces: Option<Vec<Vec<String>>>,
    /// How many memories at most (default 5).
    pub memories: usize,
    /// Share of the budget memories may use (default 0.25).
    pub memory_share: f64,
    /// Whether to include working memory (default true) and its share (default 0.2).
    pub working_memory: bool,
    pub working_memory_share: f64,
    /// Whether to include the latest summary (default true).
    pub summary: bool,
    /// Read-processor parameters for this call, over the context's (default none).
    pub processors: Option<Value>,
}

impl Default for AssemblyOptions {
    fn default() -> Self {
        AssemblyOptions {
            memory_namespaces: None,
            memories: 5,
            memory_share: 0.25,
            working_memory: true,
            working_memory_share: 0.2,
            summary: true,
            processors: None,
        }
    }
}

fn bad(message: String) -> CtxError {
    CtxError::invalid(format!("invalid options: {message}")).with_hint(
        "options look like {\"memory_namespaces\": [[\"user\", \"42\"]], \"memories\": 5, \"memory_share\": 0.25, \
         \"working_memory\": true, \"working_memory_share\": 0.2, \"summary\": true, \
         \"processors\": {\"drop_tool_messages\": true}}",
    )
}

impl AssemblyOptions {
    pub fn from_json(doc: &Value) -> CtxResult<AssemblyOptions> {
        let mut options = AssemblyOptions::default();
        let map = match doc {
            Value::Null => return Ok(options),
            Value::Object(map) => map,
            other => return Err(bad(format!("expected an object, not {}", json_type(other)))),
        };
        let share = |key: &str, v: &Value| {
            v.as_f64()
                .filter(|s| (0.0..=1.0).contains(s))
                .ok_or_else(|| {
                    bad(format!(
                        "\"{key}\" must be a number between 0 and 1, not {v}"
                    ))
                })
        };
        let flag = |key: &str, v: &Value| {
            v.as_bool()
                .ok_or_else(|| bad(format!("\"{key}\" must be true or false, not {v}")))
        };
        for (key, value) in map {
            match key.as_str() {
                "memory_namespaces" => options.memory_namespaces = Some(parse_namespaces(value)?),
                "memories" => {
                    options.memories = value.as_u64().filter(|n| *n <= 100).ok_or_else(|| {
                        bad(format!(
                            "\"memories\" must be an integer from 0 to 100, not {value}"
                        ))
                    })? as usize
                }
                "memory_share" => options.memory_share = share(key, value)?,
                "working_memory" => options.working_memory = flag(key, value)?,
                "working_memory_share" => options.working_memory_share = share(key, value)?,
                "summary" => options.summary = flag(key, value)?,
                "processors" => {
                    Config::check(value, Level::Call)?;
                    options.processors = Some(value.clone());
                }
                other => return Err(bad(format!("unknown key \"{other}\""))),
            }
        }
        Ok(options)
    }
}

/// `[["user","42"], ["org","7"]]` (or a single `["user","42"]`).
pub fn parse_namespaces(value: &Value) -> CtxResult<Vec<Vec<String>>> {
    let label_list = |v: &Value| -> Option<Vec<String>> {
        v.as_array()?
            .iter()
            .map(|l| l.as_str().map(str::to_string))
            .collect()
    };
    let lists: Vec<Vec<String>> = match value.as_array() {
        Some(items) if items.iter().all(Value::is_string) => {
            vec![label_list(value).unwrap_or_default()]
        }
        Some(items) => items
            .iter()
            .map(|i| {
                label_list(i)
                    .ok_or_else(|| bad(format!("a namespace is an array of strings, not {i}")))
            })
            .collect::<CtxResult<_>>()?,
        None => {
            return Err(bad(format!(
                "memory_namespaces must be an array of namespaces, not {value}"
            )))
        }
    };
    for labels in &lists {
        namespace::validate(labels, false)?;
    }
    Ok(lists)
}

/// The token cap of a section: its share of the budget, and never more than what is left.
pub fn section_cap(max_tokens: i64, share: f64, remaining: i64) -> i64 {
    ((max_tokens as f64 * share).floor() as i64)
        .min(remaining)
        .max(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn defaults_and_overrides() {
        assert_eq!(
            AssemblyOptions::from_json(&json!({})).unwrap(),
            AssemblyOptions::default()
        );
        assert_eq!(
            AssemblyOptions::from_json(&Value::Null).unwrap(),
            AssemblyOptions::default()
        );
        let o = AssemblyOptions::from_json(&json!({
            "memory_namespaces": [["user", "42"], ["org", "7"]], "memories": 3, "memory_share": 0.5,
            "working_memory": false, "working_memory_share": 0.1, "summary": false
        }))
        .unwrap();
        assert_eq!(o.memory_namespaces.unwrap().len(), 2);
        assert_eq!(
            (o.memories, o.memory_share, o.working_memory, o.summary),
            (3, 0.5, false, false)
        );
        let single =
            AssemblyOptions::from_json(&json!({"memory_namespaces": ["user", "42"]})).unwrap();
        assert_eq!(
            single.memory_namespaces,
            Some(vec![vec!["user".to_string(), "42".to_string()]])
        );
    }

    #[test]
    fn bad_options_are_22023() {
        for doc in [
            json!([]),
            json!({"memories": -1}),
            json!({"memories": 1000}),
            json!({"memory_share": 1.5}),
            json!({"working_memory": "yes"}),
            json!({"memory_namespaces": [["user", 42]]}),
            json!({"memory_namespaces": [[]]}),
            json!({"budget": 10}),
        ] {
            let e = AssemblyOptions::from_json(&doc).unwrap_err();
            assert_eq!(e.kind.sqlstate(), "22023", "{doc}");
            assert!(
                e.message.starts_with("invalid options") || e.message.contains("namespace"),
                "{}",
                e.message
            );
        }
    }

    #[test]
    fn caps() {
        assert_eq!(section_cap(1000, 0.25, 900), 250);
        assert_eq!(section_cap(1000, 0.25, 100), 100);
        assert_eq!(section_cap(1000, 0.0, 100), 0);
        assert_eq!(section_cap(10, 0.25, -5), 0);
    }
}
