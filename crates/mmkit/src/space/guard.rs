//! Guard regions (MADV_GUARD_INSTALL / MADV_GUARD_REMOVE, Linux 6.13+): the per-page guard
//! markers Linux keeps in the page tables (`PTE_MARKER_GUARD`, installed by
//! `guard_install_pte_entry()` in mm/madvise.c), kept here as an ordered set of page ranges
//! of the address space, since the model has no page tables yet.
//!
//! What the markers do and where they go, as the 6.18 host kernel behaves (verified with
//! probe programs):
//! - a fault on a marked page is SIGSEGV (`handle_pte_marker()` → VM_FAULT_SIGSEGV), so
//!   MADV_POPULATE_READ/WRITE fail with EFAULT there and mlock's populate with EFAULT, which
//!   mlock reports as ENOMEM; MLOCK_ONFAULT (no populate) succeeds;
//! - MADV_DONTNEED(_LOCKED), MADV_FREE, MADV_REMOVE and mprotect keep them (the zap of
//!   madvise does not pass ZAP_FLAG_DROP_MARKER);
//! - munmap and MAP_FIXED replacement drop them with the page tables; an mremap shrink drops
//!   those of the cut-off tail;
//! - mremap moves them with the page tables (`move_ptes()`); with MREMAP_DONTUNMAP the
//!   source is left without any;
//! - fork copies them for every copied VMA (`vma_needs_copy()` is true for VM_MAYBE_GUARD),
//!   except VM_WIPEONFORK ones, whose page tables are not copied.

use alloc::collections::BTreeMap;
use alloc::vec::Vec;

use super::AddressSpace;
use crate::addr::PAGE_SHIFT;
use crate::vma::{Backing, Vma};

/// Disjoint, coalesced, page-aligned ranges `[start, end)`, keyed by start. O(log n + k)
/// per operation, `k` the ranges touched.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct GuardSet {
    ranges: BTreeMap<u64, u64>,
}

impl GuardSet {
    /// True when no page is guarded.
    pub(crate) fn is_empty(&self) -> bool {
        self.ranges.is_empty()
    }

    /// Marks `[start, end)`.
    pub(crate) fn insert(&mut self, start: u64, end: u64) {
        if start >= end {
            return;
        }
        let (mut s, mut e) = (start, end);
        // A range starting at or below `start` that reaches it is absorbed.
        if let Some((&ps, &pe)) = self.ranges.range(..=start).next_back() {
            if pe >= start {
                s = ps;
                e = e.max(pe);
                self.ranges.remove(&ps);
            }
        }
        // Ranges starting inside `[start, end]` are absorbed.
        let absorbed: Vec<(u64, u64)> =
            self.ranges.range(start..=e).map(|(&a, &b)| (a, b)).collect();
        for (a, b) in absorbed {
            e = e.max(b);
            self.ranges.remove(&a);
        }
        self.ranges.insert(s, e);
    }

    /// Unmarks `[start, end)`.
    pub(crate) fn remove(&mut self, start: u64, end: u64) {
        if start >= end || self.ranges.is_empty() {
            return;
        }
        if let Some((&ps, &pe)) = self.ranges.range(..start).next_back() {
            if pe > start {
                self.ranges.insert(ps, start);
                if pe > end {
                    self.ranges.insert(end, pe);
                    return;
                }
            }
        }
        let inside: Vec<(u64, u64)> =
            self.ranges.range(start..end).map(|(&a, &b)| (a, b)).collect();
        for (a, b) in inside {
            self.ranges.remove(&a);
            if b > end {
                self.ranges.insert(end, b);
            }
        }
    }

    /// The first marked address in `[start, end)`.
    pub(crate) fn first_in(&self, start: u64, end: u64) -> Option<u64> {
        if start >= end {
            return None;
        }
        if let Some((_, &pe)) = self.ranges.range(..=start).next_back() {
            if pe > start {
                return Some(start);
            }
        }
        self.ranges.range(start..end).next().map(|(&a, _)| a)
    }

    /// The marked parts of `[start, end)`.
    pub(crate) fn parts(&self, start: u64, end: u64) -> Vec<(u64, u64)> {
        let mut out = Vec::new();
        if start >= end {
            return out;
        }
        if let Some((_, &pe)) = self.ranges.range(..start).next_back() {
            if pe > start {
                out.push((start, pe.min(end)));
            }
        }
        for (&a, &b) in self.ranges.range(start..end) {
            out.push((a, b.min(end)));
        }
        out
    }

    /// Moves the marks of `[old, old + len)` to `[new, new + len)` (`move_ptes()`); the
    /// target's own marks are replaced.
    pub(crate) fn move_range(&mut self, old: u64, new: u64, len: u64) {
        let (Some(old_end), Some(new_end)) = (old.checked_add(len), new.checked_add(len)) else {
            return;
        };
        let parts = self.parts(old, old_end);
        self.remove(old, old_end);
        self.remove(new, new_end);
        for (a, b) in parts {
            self.insert(a - old + new, b - old + new);
        }
    }
}

impl AddressSpace {
    /// True if `addr` lies in a page with a guard marker (MADV_GUARD_INSTALL): an access
    /// there is SIGSEGV (`handle_pte_marker()`).
    pub fn is_guard_page(&self, addr: u64) -> bool {
        self.guards.first_in(addr & crate::addr::PAGE_MASK, addr.saturating_add(1)).is_some()
    }

    /// The guarded ranges, in address order; for tests and the simulator's fault handler.
    #[doc(hidden)]
    pub fn guard_ranges(&self) -> Vec<(u64, u64)> {
        self.guards.parts(0, u64::MAX)
    }

    /// The first address of `[from, to)` (inside `vma`) whose page cannot be faulted in: a
    /// guard marker (SIGSEGV) or, for a shmem object, a page at or beyond the object's size
    /// (`shmem_fault()` past `i_size` → SIGBUS). `__get_user_pages()` turns either into
    /// EFAULT.
    pub(crate) fn first_unfaultable(&self, vma: &Vma, from: u64, to: u64) -> Option<u64> {
        let from = from.max(vma.start);
        let to = to.min(vma.end);
        if from >= to {
            return None;
        }
        let mut bad = self.guards.first_in(from, to);
        if let Backing::Shmem { size_pages, .. } = vma.backing {
            // Pages of `vma` whose object index is below the size.
            let inside = size_pages.saturating_sub(vma.pgoff).min(vma.pages());
            let limit = vma.start + (inside << PAGE_SHIFT);
            if limit < to {
                let b = limit.max(from);
                bad = Some(bad.map_or(b, |g| g.min(b)));
            }
        }
        bad
    }
}

#[cfg(test)]
mod tests {
    use super::GuardSet;

    fn v(g: &GuardSet) -> alloc::vec::Vec<(u64, u64)> {
        g.ranges.iter().map(|(&a, &b)| (a, b)).collect()
    }

    #[test]
    fn insert_remove_coalesce() {
        let mut g = GuardSet::default();
        g.insert(10, 20);
        g.insert(30, 40);
        g.insert(20, 30);
        assert_eq!(v(&g), [(10, 40)]);
        g.remove(15, 25);
        assert_eq!(v(&g), [(10, 15), (25, 40)]);
        assert_eq!(g.first_in(15, 30), Some(25));
        assert_eq!(g.first_in(12, 30), Some(12));
        assert_eq!(g.first_in(15, 25), None);
        g.insert(5, 50);
        assert_eq!(v(&g), [(5, 50)]);
        g.remove(0, 100);
        assert!(g.is_empty());
    }

    /// Each operation agrees with a per-page set, and the ranges stay disjoint, coalesced
    /// and non-empty.
    #[test]
    fn matches_a_page_set() {
        use alloc::collections::BTreeSet;
        use proptest::prelude::*;
        let op = (0u8..4, 0u64..40, 0u64..12, 0u64..40);
        proptest!(|(ops in proptest::collection::vec(op, 1..40))| {
            let mut g = GuardSet::default();
            let mut pages = BTreeSet::new();
            for (kind, a, n, b) in ops {
                match kind {
                    0 => {
                        g.insert(a, a + n);
                        pages.extend(a..a + n);
                    }
                    1 => {
                        g.remove(a, a + n);
                        pages.retain(|&p| !(a..a + n).contains(&p));
                    }
                    2 if a + n <= b || b + n <= a => {
                        g.move_range(a, b, n);
                        let moved: BTreeSet<u64> = pages
                            .iter()
                            .filter(|&&p| (a..a + n).contains(&p))
                            .map(|&p| p - a + b)
                            .collect();
                        pages.retain(|&p| !(a..a + n).contains(&p) && !(b..b + n).contains(&p));
                        pages.extend(moved);
                    }
                    _ => {
                        let want = pages.range(a..a + n).next().copied();
                        prop_assert_eq!(g.first_in(a, a + n), want);
                    }
                }
                let mut from_ranges = BTreeSet::new();
                let mut last_end = None;
                for (s, e) in v(&g) {
                    prop_assert!(s < e);
                    prop_assert!(last_end.is_none_or(|l| l < s), "not coalesced: {:?}", v(&g));
                    last_end = Some(e);
                    from_ranges.extend(s..e);
                }
                prop_assert_eq!(&from_ranges, &pages);
            }
        });
    }

    #[test]
    fn move_shifts_marks() {
        let mut g = GuardSet::default();
        g.insert(10, 12);
        g.insert(14, 16);
        g.insert(100, 110);
        g.move_range(8, 100, 10);
        assert_eq!(v(&g), [(102, 104), (106, 108)]);
    }
}
