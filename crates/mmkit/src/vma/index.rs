//! The VMA index: areas ordered by address, never overlapping, with O(log n) lookup and
//! free-gap search (what Linux's maple tree and `vm_unmapped_area()` provide together).
//!
//! PLACEHOLDER IMPLEMENTATION: a `BTreeMap` with linear gap search. The public API below is
//! the contract the rest of the crate uses; the B-tree with per-node max-gap replaces the
//! internals.

use alloc::collections::BTreeMap;

use super::Vma;

/// Parameters of a free-gap search (Linux's `struct vm_unmapped_area_info`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GapRequest {
    /// Bytes needed (page-aligned, non-zero).
    pub length: u64,
    /// Lowest acceptable start address.
    pub low_limit: u64,
    /// Highest acceptable end address.
    pub high_limit: u64,
    /// Alignment mask: the result satisfies `(addr - align_offset) & align_mask == 0`.
    pub align_mask: u64,
    /// Offset for the alignment, as in Linux.
    pub align_offset: u64,
    /// Extra room to keep free before the area (`info->start_gap`, used for shadow stacks).
    pub start_gap: u64,
}

/// The index of one address space's VMAs.
#[derive(Clone, Debug)]
pub struct VmaIndex {
    stack_guard_gap: u64,
    map: BTreeMap<u64, Vma>,
}

/// `insert` refused a VMA that overlaps one already present.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Overlap;

impl VmaIndex {
    /// An empty index. `stack_guard_gap` is the room gap searches keep below VM_GROWSDOWN
    /// areas (`vm_start_gap()`).
    pub fn new(stack_guard_gap: u64) -> Self {
        VmaIndex { stack_guard_gap, map: BTreeMap::new() }
    }

    /// The guard gap this index honours below VM_GROWSDOWN areas.
    pub fn stack_guard_gap(&self) -> u64 {
        self.stack_guard_gap
    }

    /// Number of VMAs (Linux's `mm->map_count`).
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// True if there are no VMAs.
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    /// The VMA containing `addr` (`vma_lookup()`).
    pub fn find(&self, addr: u64) -> Option<&Vma> {
        self.map.range(..=addr).next_back().map(|(_, v)| v).filter(|v| addr < v.end)
    }

    /// The first VMA that ends above `addr` (Linux's `find_vma()`): the one containing `addr`,
    /// else the next one above it.
    pub fn find_next(&self, addr: u64) -> Option<&Vma> {
        if let Some(v) = self.find(addr) {
            return Some(v);
        }
        self.map.range(addr..).next().map(|(_, v)| v)
    }

    /// The last VMA that starts below `addr` (`find_vma_prev()`'s prev when `addr` is not
    /// inside a VMA; the containing VMA's predecessor is `prev_of`).
    pub fn find_prev(&self, addr: u64) -> Option<&Vma> {
        self.map.range(..addr).next_back().map(|(_, v)| v)
    }

    /// The VMA immediately before the VMA starting at `start`.
    pub fn prev_of(&self, start: u64) -> Option<&Vma> {
        self.map.range(..start).next_back().map(|(_, v)| v)
    }

    /// The VMA immediately after the VMA starting at `start`.
    pub fn next_of(&self, start: u64) -> Option<&Vma> {
        self.map.range(start + 1..).next().map(|(_, v)| v)
    }

    /// The VMAs overlapping `[start, end)`, in address order.
    pub fn overlapping(&self, start: u64, end: u64) -> impl Iterator<Item = &Vma> + '_ {
        let first = self.find_next(start).map(|v| v.start).unwrap_or(u64::MAX);
        self.map.range(first..).map(|(_, v)| v).take_while(move |v| v.start < end)
    }

    /// All VMAs in address order.
    pub fn iter(&self) -> impl DoubleEndedIterator<Item = &Vma> + '_ {
        self.map.values()
    }

    /// Inserts a VMA; refuses one that overlaps an existing VMA.
    pub fn insert(&mut self, vma: Vma) -> Result<(), Overlap> {
        debug_assert!(vma.start < vma.end);
        if self.overlapping(vma.start, vma.end).next().is_some() {
            return Err(Overlap);
        }
        self.map.insert(vma.start, vma);
        Ok(())
    }

    /// Removes the VMA starting exactly at `start`.
    pub fn remove(&mut self, start: u64) -> Option<Vma> {
        self.map.remove(&start)
    }

    /// Mutable access to the VMA starting exactly at `start`, for changes that keep its range
    /// (flags, pgoff, anon_vma, name). Use [`VmaIndex::set_range`] to move its bounds.
    pub fn get_mut(&mut self, start: u64) -> Option<&mut Vma> {
        self.map.get_mut(&start)
    }

    /// Changes the bounds of the VMA starting at `start` to `[new_start, new_end)`. The new
    /// range must not overlap any other VMA (shrinking is always allowed; growing only into
    /// free space). Returns `Err(Overlap)` and changes nothing otherwise.
    pub fn set_range(&mut self, start: u64, new_start: u64, new_end: u64) -> Result<(), Overlap> {
        debug_assert!(new_start < new_end);
        let vma = self.map.get(&start).ok_or(Overlap)?;
        let _ = vma;
        if self.overlapping(new_start, new_end).any(|v| v.start != start) {
            return Err(Overlap);
        }
        let mut vma = self.map.remove(&start).ok_or(Overlap)?;
        vma.start = new_start;
        vma.end = new_end;
        self.map.insert(new_start, vma);
        Ok(())
    }

    /// Splits the VMA starting at `start` at `at` (page-aligned, strictly inside), producing
    /// `[start, at)` and `[at, end)`; the upper part's pgoff is advanced. Returns `Err` if
    /// there is no such VMA or `at` is not strictly inside.
    pub fn split(&mut self, start: u64, at: u64) -> Result<(), Overlap> {
        let vma = self.map.get_mut(&start).ok_or(Overlap)?;
        if !(vma.start < at && at < vma.end) {
            return Err(Overlap);
        }
        let mut upper = vma.clone();
        upper.pgoff = vma.pgoff_at(at);
        upper.start = at;
        vma.end = at;
        self.map.insert(at, upper);
        Ok(())
    }

    /// Linux's `unmapped_area()`: the lowest suitable address, or `None`.
    pub fn unmapped_area(&self, req: &GapRequest) -> Option<u64> {
        let mut prev_end = 0u64;
        for v in self.map.values().chain(core::iter::once(&self.sentinel())) {
            let gap_end = v.start_gap(self.stack_guard_gap);
            if let Some(a) = fit_low(prev_end.max(req.low_limit), gap_end.min(req.high_limit), req)
            {
                return Some(a);
            }
            prev_end = v.end_gap();
            if prev_end >= req.high_limit {
                break;
            }
        }
        None
    }

    /// Linux's `unmapped_area_topdown()`: the highest suitable address, or `None`.
    pub fn unmapped_area_topdown(&self, req: &GapRequest) -> Option<u64> {
        let mut next_start = u64::MAX;
        for v in self.map.values().rev() {
            let gap_start = v.end_gap();
            if let Some(a) =
                fit_high(gap_start.max(req.low_limit), next_start.min(req.high_limit), req)
            {
                return Some(a);
            }
            next_start = v.start_gap(self.stack_guard_gap);
            if next_start <= req.low_limit {
                return None;
            }
        }
        fit_high(req.low_limit, next_start.min(req.high_limit), req)
    }

    fn sentinel(&self) -> Vma {
        Vma {
            start: u64::MAX & crate::addr::PAGE_MASK,
            end: u64::MAX & crate::addr::PAGE_MASK,
            flags: super::VmFlags::empty(),
            pgoff: 0,
            backing: super::Backing::Anonymous,
            anon_vma: None,
            name: None,
        }
    }
}

fn fit_low(lo: u64, hi: u64, req: &GapRequest) -> Option<u64> {
    let lo = lo.checked_add(req.start_gap)?;
    let a = align_up(lo, req)?;
    (a.checked_add(req.length)? <= hi).then_some(a)
}

fn fit_high(lo: u64, hi: u64, req: &GapRequest) -> Option<u64> {
    let top = hi.checked_sub(req.length)?;
    let a = top.wrapping_sub(top.wrapping_sub(req.align_offset) & req.align_mask);
    (a >= lo.checked_add(req.start_gap)? && a <= top).then_some(a)
}

fn align_up(x: u64, req: &GapRequest) -> Option<u64> {
    let add = req.align_offset.wrapping_sub(x) & req.align_mask;
    x.checked_add(add)
}
