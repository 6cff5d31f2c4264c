//! The `#[must_use]` TLB-flush token returned by operations that change translations.

/// A TLB invalidation the caller owes: the virtual range `[start, end)` of every leaf whose
/// translation was removed or changed (Linux's `struct mmu_gather` range, later passed to
/// `flush_tlb_range()`), and whether any of them was global.
///
/// Dropping it silently is a bug (a stale TLB entry would keep a freed frame reachable), so
/// the type is `#[must_use]`; call [`Flush::range`] and invalidate, or [`Flush::ignore`] when
/// the table is not live on any CPU (a child being built by fork, a table being destroyed).
#[must_use = "the TLB may still hold the old translations: flush them or call ignore()"]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct Flush {
    start: u64,
    end: u64,
    global: bool,
}

impl Flush {
    /// Nothing to flush.
    pub const fn none() -> Self {
        Flush { start: u64::MAX, end: 0, global: false }
    }

    /// True if some translation changed.
    #[inline]
    pub const fn is_needed(&self) -> bool {
        self.start < self.end
    }

    /// The virtual range to invalidate, if any (`end` may be below `start` never).
    #[inline]
    pub const fn range(&self) -> Option<(u64, u64)> {
        if self.is_needed() {
            Some((self.start, self.end))
        } else {
            None
        }
    }

    /// True if a global translation changed (needs a flush in every address space).
    #[inline]
    pub const fn global(&self) -> bool {
        self.global
    }

    /// Records a changed leaf `[va, va + size)`.
    #[inline]
    pub(crate) fn add(&mut self, va: u64, size: u64, global: bool) {
        self.start = self.start.min(va);
        self.end = self.end.max(va.saturating_add(size));
        self.global |= global;
    }

    /// Combines two owed flushes into one covering both.
    pub fn merge(self, other: Flush) -> Flush {
        Flush {
            start: self.start.min(other.start),
            end: self.end.max(other.end),
            global: self.global | other.global,
        }
    }

    /// Explicitly discards the token: the caller knows no TLB can hold these translations.
    #[inline]
    pub fn ignore(self) {}
}
