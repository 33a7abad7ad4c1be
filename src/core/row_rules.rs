//! The integrity rules of a stored message and a stored context, checked by one CHECK
//! constraint per table (`ctx.message_row_check`, `ctx.context_row_check`). As a dozen SQL
//! CHECK expressions they were parsed again by every statement that wrote a row — for an
//! append, more time than its insert. Each rule reads as its SQL did, NULL included: a rule
//! whose SQL would be NULL passes, as a CHECK passes on NULL.

use crate::core::conversation::ROLES;

/// What a message row's rules read: its columns, or a fact about one (how many of its
/// content columns are set, whether its metadata is a JSON object).
#[derive(Clone, Copy, Debug, Default)]
pub struct MessageRow<'a> {
    pub seq: Option<i64>,
    pub message_id: Option<&'a str>,
    pub revision: Option<i32>,
    pub role: Option<&'a str>,
    pub tokens: Option<i32>,
    pub deleted: Option<bool>,
    /// `num_nonnulls(content, content_lz4, content_enc)`
    pub contents_set: i32,
    pub metadata_enc_set: bool,
    /// `jsonb_typeof(metadata) = 'object'`
    pub metadata_object: Option<bool>,
}

/// The first rule a message row breaks, as its SQL reads.
pub fn message_row(row: &MessageRow<'_>) -> Result<(), &'static str> {
    if row.seq.is_some_and(|s| s <= 0) {
        return Err("seq > 0");
    }
    if row
        .message_id
        .is_some_and(|id| id.is_empty() || id.len() > 256)
    {
        return Err("message_id <> '' AND octet_length(message_id) <= 256");
    }
    if row.revision.is_some_and(|r| r <= 0) {
        return Err("revision > 0");
    }
    if row.role.is_some_and(|r| !ROLES.contains(&r)) {
        return Err("role IN ('system', 'user', 'assistant', 'tool')");
    }
    if row.metadata_object == Some(false) {
        return Err("jsonb_typeof(metadata) = 'object'");
    }
    if row.tokens.is_some_and(|t| t < 0) {
        return Err("tokens >= 0");
    }
    // (CASE WHEN NULL takes the ELSE branch)
    let expected = if row.deleted == Some(true) { 0 } else { 1 };
    if row.contents_set != expected {
        return Err(
            "num_nonnulls(content, content_lz4, content_enc) = CASE WHEN deleted THEN 0 ELSE 1 END",
        );
    }
    // NOT deleted OR (metadata_enc IS NULL AND tokens = 0): false only when deleted and the
    // conjunction is false (a NULL tokens leaves it NULL unless metadata_enc is set)
    if row.deleted == Some(true) && (row.metadata_enc_set || row.tokens.is_some_and(|t| t != 0)) {
        return Err("NOT deleted OR (metadata_enc IS NULL AND tokens = 0)");
    }
    Ok(())
}

/// An interval as Postgres orders intervals: months as 30 days, days as 24 hours.
#[derive(Clone, Copy, Debug)]
pub struct Span {
    pub months: i32,
    pub days: i32,
    pub micros: i64,
}

impl Span {
    const MICROS_PER_DAY: i128 = 86_400_000_000;

    fn value(self) -> i128 {
        (i128::from(self.months) * 30 + i128::from(self.days)) * Self::MICROS_PER_DAY
            + i128::from(self.micros)
    }

    /// `> interval '0' AND <= interval '1000 years'`
    fn positive_within_1000_years(self) -> bool {
        let years_1000 = Span {
            months: 12_000,
            days: 0,
            micros: 0,
        };
        self.value() > 0 && self.value() <= years_1000.value()
    }
}

/// What a context row's rules read.
#[derive(Clone, Copy, Debug, Default)]
pub struct ContextRow<'a> {
    pub resource: Option<&'a str>,
    pub metadata_object: Option<bool>,
    pub processors_object: Option<bool>,
    pub encoding: Option<&'a str>,
    pub last_seq: Option<i64>,
    pub retain_max_age: Option<Span>,
    pub retain_max_messages: Option<i32>,
    pub compact_older_than: Option<Span>,
    pub parent_set: bool,
    /// `cardinality(ancestors)`, `cardinality(bounds)`
    pub ancestors: Option<i32>,
    pub bounds: Option<i32>,
}

/// The first rule a context row breaks, as its SQL reads.
pub fn context_row(row: &ContextRow<'_>) -> Result<(), &'static str> {
    if row.resource.is_some_and(|r| r.is_empty() || r.len() > 1024) {
        return Err("resource <> '' AND octet_length(resource) <= 1024");
    }
    if row.metadata_object == Some(false) {
        return Err("jsonb_typeof(metadata) = 'object'");
    }
    if row.processors_object == Some(false) {
        return Err("jsonb_typeof(processors) = 'object'");
    }
    if row
        .encoding
        .is_some_and(|e| e != "o200k_base" && e != "cl100k_base")
    {
        return Err("encoding IN ('o200k_base', 'cl100k_base')");
    }
    if row.last_seq.is_some_and(|s| s < 0) {
        return Err("last_seq >= 0");
    }
    if row
        .retain_max_age
        .is_some_and(|s| !s.positive_within_1000_years())
    {
        return Err("retain_max_age > interval '0' AND retain_max_age <= interval '1000 years'");
    }
    if row.retain_max_messages.is_some_and(|n| n <= 0) {
        return Err("retain_max_messages > 0");
    }
    if row
        .compact_older_than
        .is_some_and(|s| !s.positive_within_1000_years())
    {
        return Err(
            "compact_older_than > interval '0' AND compact_older_than <= interval '1000 years'",
        );
    }
    if let (Some(a), Some(b)) = (row.ancestors, row.bounds) {
        if a != b {
            return Err("cardinality(ancestors) = cardinality(bounds)");
        }
    }
    if row.ancestors.is_some_and(|a| row.parent_set == (a == 0)) {
        return Err("(parent_id IS NULL) = (cardinality(ancestors) = 0)");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message() -> MessageRow<'static> {
        MessageRow {
            seq: Some(1),
            message_id: Some("m1"),
            revision: Some(1),
            role: Some("user"),
            tokens: Some(3),
            deleted: Some(false),
            contents_set: 1,
            metadata_enc_set: false,
            metadata_object: Some(true),
        }
    }

    #[test]
    fn a_stored_message_and_a_tombstone_pass() {
        assert_eq!(message_row(&message()), Ok(()));
        let tombstone = MessageRow {
            deleted: Some(true),
            contents_set: 0,
            tokens: Some(0),
            ..message()
        };
        assert_eq!(message_row(&tombstone), Ok(()));
        let sealed = MessageRow {
            metadata_enc_set: true,
            ..message()
        };
        assert_eq!(message_row(&sealed), Ok(()));
    }

    #[test]
    fn each_message_rule_fails_alone() {
        let broken: [(MessageRow<'_>, &str); 12] = [
            (
                MessageRow {
                    seq: Some(0),
                    ..message()
                },
                "seq > 0",
            ),
            (
                MessageRow {
                    message_id: Some(""),
                    ..message()
                },
                "message_id",
            ),
            (
                MessageRow {
                    message_id: Some(&"x".repeat(257)),
                    ..message()
                },
                "message_id",
            ),
            (
                MessageRow {
                    revision: Some(0),
                    ..message()
                },
                "revision > 0",
            ),
            (
                MessageRow {
                    role: Some("summary"),
                    ..message()
                },
                "role IN",
            ),
            (
                MessageRow {
                    role: Some("User"),
                    ..message()
                },
                "role IN",
            ),
            (
                MessageRow {
                    metadata_object: Some(false),
                    ..message()
                },
                "jsonb_typeof",
            ),
            (
                MessageRow {
                    tokens: Some(-1),
                    ..message()
                },
                "tokens >= 0",
            ),
            (
                MessageRow {
                    contents_set: 0,
                    ..message()
                },
                "num_nonnulls",
            ),
            (
                MessageRow {
                    contents_set: 2,
                    ..message()
                },
                "num_nonnulls",
            ),
            (
                MessageRow {
                    deleted: Some(true),
                    contents_set: 0,
                    tokens: Some(2),
                    ..message()
                },
                "NOT deleted",
            ),
            (
                MessageRow {
                    deleted: Some(true),
                    contents_set: 0,
                    tokens: Some(0),
                    metadata_enc_set: true,
                    ..message()
                },
                "NOT deleted",
            ),
        ];
        for (row, rule) in broken {
            let err = message_row(&row).expect_err(rule);
            assert!(err.contains(rule), "{err} for {rule}");
        }
        let id_at_limit = "x".repeat(256);
        assert_eq!(
            message_row(&MessageRow {
                message_id: Some(&id_at_limit),
                ..message()
            }),
            Ok(())
        );
    }

    #[test]
    fn null_passes_as_in_sql() {
        let nulls = MessageRow {
            contents_set: 1,
            ..MessageRow::default()
        };
        assert_eq!(message_row(&nulls), Ok(()));
        // deleted NULL: the CASE takes ELSE (one content), NOT NULL OR … is NULL
        assert!(message_row(&MessageRow {
            deleted: None,
            contents_set: 0,
            ..message()
        })
        .is_err());
        // deleted, tokens NULL, metadata_enc NULL: (true AND NULL) is NULL, which passes
        let tombstone = MessageRow {
            deleted: Some(true),
            contents_set: 0,
            tokens: None,
            ..message()
        };
        assert_eq!(message_row(&tombstone), Ok(()));
    }

    fn context() -> ContextRow<'static> {
        ContextRow {
            resource: Some("user-1"),
            metadata_object: Some(true),
            processors_object: Some(true),
            encoding: Some("o200k_base"),
            last_seq: Some(0),
            retain_max_age: None,
            retain_max_messages: None,
            compact_older_than: None,
            parent_set: false,
            ancestors: Some(0),
            bounds: Some(0),
        }
    }

    const DAY: Span = Span {
        months: 0,
        days: 1,
        micros: 0,
    };

    #[test]
    fn each_context_rule_fails_alone() {
        assert_eq!(context_row(&context()), Ok(()));
        let fork = ContextRow {
            parent_set: true,
            ancestors: Some(2),
            bounds: Some(2),
            ..context()
        };
        assert_eq!(context_row(&fork), Ok(()));
        let kept = ContextRow {
            retain_max_age: Some(DAY),
            compact_older_than: Some(Span {
                months: 12_000,
                days: 0,
                micros: 0,
            }),
            retain_max_messages: Some(1),
            ..context()
        };
        assert_eq!(context_row(&kept), Ok(()));
        let too_long = Span {
            months: 12_000,
            days: 0,
            micros: 1,
        };
        let zero = Span {
            months: 1,
            days: -30,
            micros: 0,
        };
        let broken: [(ContextRow<'_>, &str); 13] = [
            (
                ContextRow {
                    resource: Some(""),
                    ..context()
                },
                "resource",
            ),
            (
                ContextRow {
                    resource: Some(&"r".repeat(1025)),
                    ..context()
                },
                "resource",
            ),
            (
                ContextRow {
                    metadata_object: Some(false),
                    ..context()
                },
                "metadata",
            ),
            (
                ContextRow {
                    processors_object: Some(false),
                    ..context()
                },
                "processors",
            ),
            (
                ContextRow {
                    encoding: Some("p50k_base"),
                    ..context()
                },
                "encoding",
            ),
            (
                ContextRow {
                    last_seq: Some(-1),
                    ..context()
                },
                "last_seq",
            ),
            (
                ContextRow {
                    retain_max_age: Some(zero),
                    ..context()
                },
                "retain_max_age",
            ),
            (
                ContextRow {
                    retain_max_age: Some(too_long),
                    ..context()
                },
                "retain_max_age",
            ),
            (
                ContextRow {
                    retain_max_messages: Some(0),
                    ..context()
                },
                "retain_max_messages",
            ),
            (
                ContextRow {
                    compact_older_than: Some(too_long),
                    ..context()
                },
                "compact_older_than",
            ),
            (
                ContextRow {
                    ancestors: Some(1),
                    bounds: Some(0),
                    parent_set: true,
                    ..context()
                },
                "bounds",
            ),
            (
                ContextRow {
                    parent_set: true,
                    ..context()
                },
                "parent_id",
            ),
            (
                ContextRow {
                    ancestors: Some(1),
                    bounds: Some(1),
                    ..context()
                },
                "parent_id",
            ),
        ];
        for (row, rule) in broken {
            let err = context_row(&row).expect_err(rule);
            assert!(err.contains(rule), "{err} for {rule}");
        }
        // infinite intervals (Postgres 17+ stores them as the extreme fields)
        let infinity = Span {
            months: i32::MAX,
            days: i32::MAX,
            micros: i64::MAX,
        };
        let minus = Span {
            months: i32::MIN,
            days: i32::MIN,
            micros: i64::MIN,
        };
        assert!(context_row(&ContextRow {
            retain_max_age: Some(infinity),
            ..context()
        })
        .is_err());
        assert!(context_row(&ContextRow {
            retain_max_age: Some(minus),
            ..context()
        })
        .is_err());
    }
}
