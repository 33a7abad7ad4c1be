//! What a backend looked up in the catalog (relation OIDs, attribute numbers, whether a table
//! is still the one the schema made), kept until the next relcache invalidation.

use std::cell::Cell;

/// One kept lookup. `None`: not looked up since the last invalidation; `Some(None)`: looked
/// up, and what it looked for does not apply.
pub(crate) struct Kept<T: Copy + 'static> {
    kept: Cell<Option<Option<T>>>,
    /// invalidations seen: a lookup that saw one while it ran is not kept
    invalidations: Cell<u64>,
}

impl<T: Copy + 'static> Kept<T> {
    pub(crate) const fn new() -> Self {
        Kept {
            kept: Cell::new(None),
            invalidations: Cell::new(0),
        }
    }

    /// Called by a relcache invalidation callback.
    pub(crate) fn forget(&self) {
        self.kept.set(None);
        self.invalidations
            .set(self.invalidations.get().wrapping_add(1));
    }

    /// The kept answer, or `look_up`'s (kept unless an invalidation arrived while it ran).
    pub(crate) fn get_or(&self, look_up: impl FnOnce() -> Option<T>) -> Option<T> {
        if let Some(kept) = self.kept.get() {
            return kept;
        }
        let seen = self.invalidations.get();
        let found = look_up();
        if self.invalidations.get() == seen {
            self.kept.set(Some(found));
        }
        found
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kept_until_forgotten_and_not_kept_when_invalidated_during_the_lookup() {
        let kept = Kept::<u32>::new();
        assert_eq!(kept.get_or(|| Some(1)), Some(1));
        assert_eq!(kept.get_or(|| Some(2)), Some(1), "kept");
        kept.forget();
        assert_eq!(kept.get_or(|| None), None);
        assert_eq!(kept.get_or(|| Some(3)), None, "a kept None");
        kept.forget();
        // an invalidation while the lookup runs: its answer is used once, not kept
        assert_eq!(
            kept.get_or(|| {
                kept.forget();
                Some(4)
            }),
            Some(4)
        );
        assert_eq!(kept.get_or(|| Some(5)), Some(5));
    }
}
