//! Argument checks shared by the SQL functions of several stores.

use pgrx::datum::Interval;

use crate::core::namespace;
use crate::error::{required, CtxError, CtxResult, ErrorKind};

/// A namespace (or prefix, with `allow_empty`) argument: non-NULL, no NULL label, valid labels.
pub fn namespace_arg(
    value: Option<Vec<Option<String>>>,
    name: &str,
    allow_empty: bool,
) -> CtxResult<Vec<String>> {
    let labels = required(value, name)?
        .into_iter()
        .map(|label| {
            label.ok_or_else(|| {
                CtxError::new(
                    ErrorKind::NullValue,
                    format!("{name} contains a NULL label"),
                )
            })
        })
        .collect::<CtxResult<Vec<String>>>()?;
    namespace::validate(&labels, allow_empty)?;
    Ok(labels)
}

/// A time-to-live must be a positive interval (NULL: never expires).
pub fn check_ttl(ttl: &Option<Interval>) -> CtxResult<()> {
    match ttl {
        Some(t)
            if t.months() < 0
                || t.days() < 0
                || t.micros() < 0
                || (t.months(), t.days(), t.micros()) == (0, 0, 0) =>
        {
            Err(CtxError::invalid("ttl must be a positive interval")
                .with_hint("e.g. ttl => '30 days'"))
        }
        _ => Ok(()),
    }
}
