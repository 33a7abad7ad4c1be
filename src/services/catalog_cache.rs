//! What a backend looked up in the catalog (relation OIDs, attribute numbers, whether a table
//! is still the one the schema made), kept until the next relcache invalidation.

use std::cell::Cell;
use std::ffi::CStr;

use pgrx::pg_sys;

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

/// ctxstore's schema, where its tables hold their rows: `None` without the extension, or on a
/// Citus cluster (whose local tables are shells of shards).
///
/// # Safety
/// Catalog lookups by name; none raises for a missing object.
pub(crate) unsafe fn local_ctx_schema() -> Option<pg_sys::Oid> {
    unsafe {
        if pg_sys::get_extension_oid(c"citus".as_ptr(), true) != pg_sys::InvalidOid {
            return None;
        }
        let schema = pg_sys::get_namespace_oid(c"ctx".as_ptr(), true);
        (schema != pg_sys::InvalidOid).then_some(schema)
    }
}

/// A relation of the schema by name.
///
/// # Safety
/// A catalog lookup by name; it does not raise for a missing relation.
pub(crate) unsafe fn relation(schema: pg_sys::Oid, name: &CStr) -> Option<pg_sys::Oid> {
    let oid = unsafe { pg_sys::get_relname_relid(name.as_ptr(), schema) };
    (oid != pg_sys::InvalidOid).then_some(oid)
}

/// A column of a table by name, if it has the type its datums will be read or written as.
///
/// # Safety
/// Catalog lookups of an existing relation's attributes.
pub(crate) unsafe fn typed_column(
    table: pg_sys::Oid,
    name: &CStr,
    type_oid: pg_sys::Oid,
) -> Option<pg_sys::AttrNumber> {
    unsafe {
        let number = pg_sys::get_attnum(table, name.as_ptr());
        (number > 0 && pg_sys::get_atttype(table, number) == type_oid).then_some(number)
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
