//! The append's own move of a context's seq counter, which the audit trail leaves out: the
//! inserted messages' audit rows already record every seq taken, so a second row per append
//! for `ctx.contexts` (last_seq and updated_at) would only repeat them — at a quarter of an
//! append's time. Any other change of those columns, a direct UPDATE among them, is audited.
//!
//! The append announces the bump just before its statement runs; the audit trigger takes the
//! announcement only for that context, a counter moved by exactly the announced count and no
//! other column changed than `last_seq` and `updated_at`, by the announcing statement's own
//! command, and only once. The announcement lives in this backend's memory, where SQL cannot
//! set it, and is dropped when the statement returns or fails (and by a transaction's abort).

use std::cell::Cell;

use pgrx::{pg_sys, Uuid};

thread_local! {
    static ANNOUNCED: Cell<Option<(Uuid, i64, u32)>> = const { Cell::new(None) };
}

/// The bump announced until it is dropped: the guard of one statement.
pub struct Announced(());

impl Drop for Announced {
    fn drop(&mut self) {
        forget();
    }
}

/// Announces that the next statement moves `context_id`'s counter by `count`. The statement's
/// command id is part of it: a row changed by another command (a function the statement calls
/// that updates the counter itself) is not the announced bump.
pub fn announce(context_id: Uuid, count: i64) -> Announced {
    // SAFETY: reads the transaction's current command id (the next statement's).
    let command = unsafe { pg_sys::GetCurrentCommandId(false) };
    announce_for(context_id, count, command)
}

fn announce_for(context_id: Uuid, count: i64, command: u32) -> Announced {
    ANNOUNCED.with(|a| a.set(Some((context_id, count, command))));
    Announced(())
}

/// Whether an UPDATE of `context_id` by command `command` that moved its counter by `moved`
/// is the announced bump (taken: a second UPDATE in the same statement is audited).
pub fn take(context_id: Uuid, moved: i64, command: u32) -> bool {
    ANNOUNCED.with(|a| match a.get() {
        Some(announced) if announced == (context_id, moved, command) => {
            a.set(None);
            true
        }
        _ => false,
    })
}

/// Drops an announcement (also called when a transaction aborts: `_PG_init`).
pub fn forget() {
    let _ = ANNOUNCED.try_with(|a| a.set(None));
}

/// The columns the append's counter bump changes.
pub const BUMPED: [&str; 2] = ["last_seq", "updated_at"];

#[cfg(test)]
mod tests {
    use super::*;

    fn id(n: u8) -> Uuid {
        Uuid::from_bytes([n; 16])
    }

    #[test]
    fn taken_once_for_the_announced_context_count_and_command() {
        let _guard = announce_for(id(1), 3, 7);
        assert!(!take(id(2), 3, 7), "another context");
        assert!(!take(id(1), 2, 7), "another count");
        assert!(!take(id(1), 3, 8), "another command");
        assert!(take(id(1), 3, 7));
        assert!(!take(id(1), 3, 7), "taken once");
    }

    #[test]
    fn dropped_with_its_guard() {
        {
            let _guard = announce_for(id(1), 1, 0);
        }
        assert!(!take(id(1), 1, 0));
    }
}
