//! ctx.sweep, the SQL face of retention (`services::retention`).

use pgrx::prelude::*;

use crate::api::raise::OrRaise;
use crate::services::retention::run;

/// Removes (or compresses) at most `max_rows` rows that retention says must go; returns how
/// many. Call it until it returns 0.
#[pg_extern(volatile, parallel_unsafe)]
fn sweep(max_rows: default!(Option<i32>, 10000)) -> i64 {
    run(max_rows).or_raise()
}
