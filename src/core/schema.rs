//! JSON Schema validation for typed state: compile once, validate many times, and report the
//! failing JSON path.

use serde_json::Value;

use crate::error::{CtxError, CtxResult, ErrorKind};

/// A compiled JSON Schema (any draft the `jsonschema` crate detects from `$schema`, 2020-12 by
/// default). Remote `$ref`s are not fetched.
pub struct CompiledSchema(jsonschema::Validator);

/// How many failures an error message lists.
const MAX_REPORTED: usize = 5;

pub fn compile(schema: &Value) -> CtxResult<CompiledSchema> {
    jsonschema::validator_for(schema).map(CompiledSchema).map_err(|e| {
        CtxError::invalid(format!("invalid JSON Schema: {e}"))
            .with_detail(format!("at schema path \"{}\"", e.schema_path()))
            .with_hint("json_schema must be a valid JSON Schema document, e.g. '{\"type\": \"object\"}'")
    })
}

impl CompiledSchema {
    pub fn is_valid(&self, value: &Value) -> bool {
        self.0.is_valid(value)
    }

    /// Ok, or SQLSTATE 23514 naming the first failing path (and listing a few more).
    pub fn check(&self, value: &Value, schema_name: &str, version: i32) -> CtxResult<()> {
        let failures: Vec<(String, String)> = self
            .0
            .iter_errors(value)
            .take(MAX_REPORTED)
            .map(|e| (path_or_root(&e.instance_path().to_string()), e.to_string()))
            .collect();
        let Some((path, first)) = failures.first() else {
            return Ok(());
        };
        let detail = failures
            .iter()
            .map(|(p, m)| format!("{p}: {m}"))
            .collect::<Vec<_>>()
            .join("; ");
        Err(CtxError::new(
            ErrorKind::CheckViolation,
            format!("value does not match schema \"{schema_name}\" version {version} at \"{path}\": {first}"),
        )
        .with_detail(detail)
        .with_hint("fix the value, or register a new schema version and a migration"))
    }
}

fn path_or_root(pointer: &str) -> String {
    if pointer.is_empty() {
        "/".to_string()
    } else {
        pointer.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn profile() -> CompiledSchema {
        compile(&json!({
            "type": "object",
            "required": ["name"],
            "properties": {
                "name": {"type": "string"},
                "age": {"type": "integer", "minimum": 0},
                "tags": {"type": "array", "items": {"type": "string"}}
            },
            "additionalProperties": false
        }))
        .unwrap()
    }

    #[test]
    fn valid_values_pass() {
        let s = profile();
        s.check(
            &json!({"name": "Ada", "age": 36, "tags": ["x"]}),
            "profile",
            1,
        )
        .unwrap();
        assert!(s.is_valid(&json!({"name": "Ada"})));
    }

    #[test]
    fn failures_name_the_json_path() {
        let s = profile();
        let cases = [
            (json!({"name": "Ada", "age": -1}), "at \"/age\""),
            (json!({"name": "Ada", "tags": ["ok", 7]}), "at \"/tags/1\""),
            (json!({"age": 3}), "at \"/\""),
            (json!({"name": "Ada", "extra": true}), "at \"/\""),
            (json!("not an object"), "at \"/\""),
        ];
        for (value, path) in cases {
            let e = s.check(&value, "profile", 2).unwrap_err();
            assert_eq!(e.kind.sqlstate(), "23514", "{value}");
            assert!(e.message.contains(path), "{value}: {}", e.message);
            assert!(e.message.contains("\"profile\" version 2"), "{}", e.message);
            assert!(!s.is_valid(&value));
        }
    }

    #[test]
    fn invalid_schemas_are_22023() {
        for schema in [
            json!({"type": "no-such-type"}),
            json!({"minimum": "zero"}),
            json!(42),
        ] {
            let e = compile(&schema).err().expect("should not compile");
            assert_eq!(e.kind.sqlstate(), "22023", "{schema}");
        }
    }
}
