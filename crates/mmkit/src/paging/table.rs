//! The generic page-table engine.

use core::fmt;
use core::marker::PhantomData;
use core::sync::atomic::{AtomicU64, Ordering};

use super::arch::{va_bits, Arch, Decoded};
use super::{
    level_size, Attrs, CopyError, Flush, MapError, Mapping, OutOfMemory, PageSize, ProtectError,
    PteFlags, QueryError, ReplaceError, TableMemory, Translation, UnmapError, ENTRIES,
};
use crate::addr::{PageRange, PhysAddr, VirtAddr};

/// Marks a table whose frames were already returned by [`PageTable::teardown`].
const DEAD: u64 = u64::MAX;

#[inline]
const fn index(va: u64, level: usize) -> usize {
    ((va >> (12 + 9 * level as u32)) & (ENTRIES as u64 - 1)) as usize
}

/// A page table in format `A` whose table frames come from `M`.
///
/// Owns its table frames (all of them are freed by [`PageTable::teardown`] or on drop), not
/// the frames its leaves map: those are reported to the caller by unmap and teardown.
///
/// Invariant: every table frame reachable from `root` was allocated from `mem` by this
/// table and is owned by it; no other table references it.
pub struct PageTable<A: Arch, M: TableMemory> {
    root: u64,
    mem: M,
    _arch: PhantomData<A>,
}

impl<A: Arch, M: TableMemory> fmt::Debug for PageTable<A, M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PageTable").field("arch", &A::NAME).field("root", &self.root).finish()
    }
}

/// Table frames allocated up front for one operation, threaded into a list through their
/// first entry (`next | 1`, 0 = end) so that no heap allocation is needed. Unused frames go
/// back to the allocator on drop.
struct Pool<'m, M: TableMemory> {
    mem: &'m M,
    head: Option<u64>,
}

impl<'m, M: TableMemory> Pool<'m, M> {
    fn fill(mem: &'m M, n: usize) -> Result<Self, OutOfMemory> {
        let mut pool = Pool { mem, head: None };
        for _ in 0..n {
            let pa = mem.alloc_table()?.0;
            let next = pool.head.map_or(0, |h| h | 1);
            first_word(mem, pa).store(next, Ordering::Relaxed);
            pool.head = Some(pa);
        }
        Ok(pool)
    }

    /// A zeroed table frame, or `None` if the plan under-counted (a bug; callers then stop
    /// without corrupting anything).
    fn take(&mut self) -> Option<u64> {
        let pa = self.head?;
        let w = first_word(self.mem, pa);
        let next = w.load(Ordering::Relaxed);
        w.store(0, Ordering::Relaxed);
        self.head = if next == 0 { None } else { Some(next & !1) };
        Some(pa)
    }
}

impl<M: TableMemory> Drop for Pool<'_, M> {
    fn drop(&mut self) {
        while let Some(pa) = self.take() {
            // SAFETY: `pa` came from `alloc_table` in `fill`, was never linked into a table
            // (it was still in the pool) and is not used after this.
            unsafe { self.mem.free_table(PhysAddr(pa)) };
        }
    }
}

/// The first entry of a table frame owned by the caller.
#[inline]
fn first_word<M: TableMemory>(mem: &M, table: u64) -> &AtomicU64 {
    entry_of(mem, table, 0)
}

/// Entry `idx` of the table frame at `table`. Callers pass only frames they allocated from
/// `mem` and still own (the [`PageTable`] invariant), and never keep the reference across
/// the frame's release.
#[inline]
fn entry_of<M: TableMemory>(mem: &M, table: u64, idx: usize) -> &AtomicU64 {
    debug_assert!(idx < ENTRIES);
    let base = mem.phys_to_ptr(PhysAddr(table)) as *const AtomicU64;
    // SAFETY: `table` is a live 4 KiB table frame from `mem` (see above), which `PhysAccess`
    // maps to a pointer valid and 8-byte aligned for the whole frame; `idx < 512` keeps the
    // entry inside it. Entries are only ever accessed through atomics, so shared references
    // from several CPUs (and the hardware walker's atomic A/D updates) are sound.
    unsafe { &*base.add(idx & (ENTRIES - 1)) }
}

impl<A: Arch, M: TableMemory> PageTable<A, M> {
    /// An empty table: allocates the root.
    pub fn new(mem: M) -> Result<Self, OutOfMemory> {
        let root = mem.alloc_table()?.0;
        Ok(PageTable { root, mem, _arch: PhantomData })
    }

    /// Physical address of the root table (for CR3, `satp.PPN`, `TTBR0_EL1`, `PGDL`).
    pub fn root(&self) -> PhysAddr {
        PhysAddr(self.root)
    }

    /// The table-frame provider.
    pub fn memory(&self) -> &M {
        &self.mem
    }

    #[inline]
    fn slot(&self, table: u64, idx: usize) -> &AtomicU64 {
        entry_of(&self.mem, table, idx)
    }

    /// True if `va` is a canonical address this table can translate.
    #[inline]
    pub fn is_canonical(va: u64) -> bool {
        let bits = va_bits(A::LEVELS);
        if A::SIGN_EXTENDED {
            let top = (va as i64) >> (bits - 1);
            top == 0 || top == -1
        } else {
            va >> bits == 0
        }
    }

    /// `[start, end)` lies inside one canonical half.
    #[inline]
    fn range_ok(start: u64, end: u64) -> bool {
        Self::is_canonical(start) && Self::is_canonical(end - 1) && Self::same_half(start, end - 1)
    }

    #[inline]
    fn same_half(a: u64, b: u64) -> bool {
        let bits = va_bits(A::LEVELS);
        !A::SIGN_EXTENDED || ((a ^ b) >> (bits - 1)) == 0
    }

    /// Sign-extends an address rebuilt from table indices.
    #[inline]
    fn canonicalize(va: u64) -> u64 {
        let bits = va_bits(A::LEVELS);
        if A::SIGN_EXTENDED && va & (1 << (bits - 1)) != 0 {
            va | !((1u64 << bits) - 1)
        } else {
            va
        }
    }

    // ----------------------------------------------------------------------------------
    // map

    /// Maps `[va, va + size)` to the frame at `pa` with `attrs` (normalised for the format).
    ///
    /// Missing intermediate tables are allocated first and published with one
    /// compare-exchange, so this runs under `&self` (concurrent faults) and an allocation
    /// failure changes nothing. Never replaces an existing entry (Linux's `set_pte_at()` is
    /// only called on a `pte_none()` slot by the fault paths).
    pub fn map(
        &self,
        va: VirtAddr,
        pa: PhysAddr,
        size: PageSize,
        attrs: Attrs,
    ) -> Result<(), MapError> {
        let (va, pa) = (va.0, pa.0);
        let leaf_level = size.level();
        if leaf_level > A::MAX_LEAF_LEVEL {
            return Err(MapError::SizeNotSupported);
        }
        let sz = size.bytes();
        if va & (sz - 1) != 0 || pa & (sz - 1) != 0 {
            return Err(MapError::Misaligned);
        }
        if !Self::is_canonical(va) {
            return Err(MapError::OutOfRange);
        }
        if pa >> A::PA_BITS != 0 {
            return Err(MapError::BadPhysAddr);
        }
        let leaf = A::encode_leaf(pa, A::normalize(attrs), leaf_level);
        'retry: loop {
            let mut table = self.root;
            let mut level = A::LEVELS - 1;
            while level > leaf_level {
                let slot = self.slot(table, index(va, level));
                let raw = slot.load(Ordering::Acquire);
                match A::decode(raw, level) {
                    Decoded::Table(next) => {
                        table = next;
                        level -= 1;
                    }
                    Decoded::Empty => {
                        // Build the missing chain privately, then publish it at once.
                        let n = level - leaf_level;
                        let mut pool =
                            Pool::fill(&self.mem, n).map_err(|_| MapError::OutOfMemory)?;
                        let top = self.build_chain(&mut pool, va, level, leaf_level, leaf);
                        let Some(top) = top else { return Err(MapError::OutOfMemory) };
                        match slot.compare_exchange(
                            0,
                            A::encode_table(top, level),
                            Ordering::AcqRel,
                            Ordering::Acquire,
                        ) {
                            Ok(_) => return Ok(()),
                            Err(_) => {
                                // Someone else populated the slot: give our chain back
                                // (each frame is private; scrub it so it can be reused).
                                self.release_chain(top, level - 1, leaf_level);
                                continue 'retry;
                            }
                        }
                    }
                    Decoded::Leaf(..) | Decoded::Unknown => return Err(MapError::AlreadyMapped),
                }
            }
            let slot = self.slot(table, index(va, leaf_level));
            return match slot.compare_exchange(0, leaf, Ordering::AcqRel, Ordering::Acquire) {
                Ok(_) => Ok(()),
                Err(_) => Err(MapError::AlreadyMapped),
            };
        }
    }

    /// Links tables from `pool` for levels `level - 1 ..= leaf_level` and the leaf; returns
    /// the top table. All of them are private until the caller publishes the top one.
    fn build_chain(
        &self,
        pool: &mut Pool<'_, M>,
        va: u64,
        level: usize,
        leaf_level: usize,
        leaf: u64,
    ) -> Option<u64> {
        let top = pool.take()?;
        let mut table = top;
        let mut l = level - 1;
        while l > leaf_level {
            let next = pool.take()?;
            self.slot(table, index(va, l)).store(A::encode_table(next, l), Ordering::Relaxed);
            table = next;
            l -= 1;
        }
        self.slot(table, index(va, leaf_level)).store(leaf, Ordering::Relaxed);
        Some(top)
    }

    /// Frees a private chain built by [`Self::build_chain`] that lost the publish race.
    fn release_chain(&self, top: u64, level: usize, leaf_level: usize) {
        let mut table = top;
        let mut l = level;
        loop {
            // The chain has exactly one non-zero entry per table.
            let mut next = None;
            for i in 0..ENTRIES {
                let s = self.slot(table, i);
                let raw = s.swap(0, Ordering::Relaxed);
                if raw != 0 && l > leaf_level {
                    if let Decoded::Table(pa) = A::decode(raw, l) {
                        next = Some(pa);
                    }
                }
            }
            // SAFETY: `table` was allocated for this chain, never published, and is not
            // referenced any more.
            unsafe { self.mem.free_table(PhysAddr(table)) };
            match next {
                Some(n) if l > leaf_level => {
                    table = n;
                    l -= 1;
                }
                _ => return,
            }
        }
    }

    // ----------------------------------------------------------------------------------
    // lookups

    /// The leaf translating `va` (Linux's `follow_page`/`walk_page_range` for one address).
    /// A present-but-`PROT_NONE` leaf is reported too (its flags have no permissions).
    pub fn query(&self, va: VirtAddr) -> Result<Translation, QueryError> {
        let va = va.0;
        if !Self::is_canonical(va) {
            return Err(QueryError::OutOfRange);
        }
        let (_, level, raw) = self.find_leaf(va).ok_or(QueryError::NotMapped)?;
        match A::decode(raw, level) {
            Decoded::Leaf(pa, attrs) => {
                let size = PageSize::from_level(level).ok_or(QueryError::NotMapped)?;
                let off = va & (size.bytes() - 1);
                let leaf = Mapping { va: va - off, pa: PhysAddr(pa), size, attrs };
                Ok(Translation { leaf, pa: PhysAddr(pa + off) })
            }
            _ => Err(QueryError::NotMapped),
        }
    }

    /// The slot holding the leaf covering `va`, its level and raw value.
    #[inline]
    fn find_leaf(&self, va: u64) -> Option<(&AtomicU64, usize, u64)> {
        let mut table = self.root;
        let mut level = A::LEVELS - 1;
        loop {
            let slot = self.slot(table, index(va, level));
            let raw = slot.load(Ordering::Acquire);
            match A::decode(raw, level) {
                Decoded::Table(next) if level > 0 => {
                    table = next;
                    level -= 1;
                }
                Decoded::Leaf(..) => return Some((slot, level, raw)),
                _ => return None,
            }
        }
    }

    /// Calls `f` for every leaf (present or `PROT_NONE`) intersecting `range`, in address
    /// order. A huge leaf that straddles a boundary is reported whole.
    pub fn walk(&self, range: PageRange, mut f: impl FnMut(Mapping)) -> Result<(), QueryError> {
        let (s, e) = (range.start(), range.end());
        if !Self::range_ok(s, e) {
            return Err(QueryError::OutOfRange);
        }
        self.visit(self.root, A::LEVELS - 1, s, e, &mut |_, va, level, raw| {
            if let (Decoded::Leaf(pa, attrs), Some(size)) =
                (A::decode(raw, level), PageSize::from_level(level))
            {
                f(Mapping { va, pa: PhysAddr(pa), size, attrs });
            }
        });
        Ok(())
    }

    /// Visits every non-table entry intersecting `[start, end)` below `table`, with the
    /// canonical virtual address of the entry's first byte.
    fn visit<F: FnMut(&AtomicU64, u64, usize, u64)>(
        &self,
        table: u64,
        level: usize,
        start: u64,
        end: u64,
        f: &mut F,
    ) {
        let size = level_size(level);
        let mut va = start;
        loop {
            let slot_start = va & !(size - 1);
            let sub_end = match slot_start.checked_add(size) {
                Some(n) if n < end => n,
                _ => end,
            };
            let slot = self.slot(table, index(va, level));
            let raw = slot.load(Ordering::Acquire);
            if raw != 0 {
                match A::decode(raw, level) {
                    Decoded::Table(next) if level > 0 => {
                        self.visit(next, level - 1, va, sub_end, f);
                    }
                    _ => f(slot, slot_start, level, raw),
                }
            }
            if sub_end >= end {
                return;
            }
            va = sub_end;
        }
    }

    // ----------------------------------------------------------------------------------
    // accessed / dirty and single-leaf updates (shared borrow)

    /// Clears the `which` bits (normally `ACCESSED` and/or `DIRTY`) of every leaf in `range`,
    /// calling `f` with the leaf as it was for each leaf that had any of them — Linux's
    /// `ptep_test_and_clear_young()` / `ptep_clear_flush_young()` and `pte_mkclean()` for
    /// writeback. Atomic per entry, so a bit the hardware sets concurrently is never lost.
    pub fn test_and_clear(
        &self,
        range: PageRange,
        which: PteFlags,
        mut f: impl FnMut(Mapping),
    ) -> Result<Flush, QueryError> {
        let (s, e) = (range.start(), range.end());
        if !Self::range_ok(s, e) {
            return Err(QueryError::OutOfRange);
        }
        let mut flush = Flush::none();
        self.visit(self.root, A::LEVELS - 1, s, e, &mut |slot, va, level, _| {
            if let Some(old) = Self::cas_leaf(slot, level, va, &mut flush, |_, mut a| {
                if a.flags.intersects(which) {
                    a.flags.remove(which);
                    Some(a)
                } else {
                    None
                }
            }) {
                f(old);
            }
        });
        Ok(flush)
    }

    /// Atomically rewrites the attributes of the leaf containing `va`: `f` gets the leaf
    /// and returns new attributes, or `None` to leave it. Used by the fault handler to set
    /// accessed/dirty or make a page writable (`ptep_set_access_flags()`).
    pub fn update_leaf(
        &self,
        va: VirtAddr,
        mut f: impl FnMut(Mapping) -> Option<Attrs>,
    ) -> Result<Flush, QueryError> {
        if !Self::is_canonical(va.0) {
            return Err(QueryError::OutOfRange);
        }
        let (slot, level, _) = self.find_leaf(va.0).ok_or(QueryError::NotMapped)?;
        let mut flush = Flush::none();
        let base = va.0 & !(level_size(level) - 1);
        Self::cas_leaf(slot, level, base, &mut flush, |m, a| f(Mapping { attrs: a, ..m }));
        Ok(flush)
    }

    /// Replaces the leaf containing `va` by one for `new_pa` with `new_attrs` (same size),
    /// but only if it still is exactly `expected` — the compare-exchange form of Linux's
    /// `pte_same()` check under the PTE lock in `wp_page_copy()` (breaking COW) and
    /// `do_numa_page()`. Returns the flush owed for the old translation.
    pub fn replace_leaf(
        &self,
        expected: Mapping,
        new_pa: PhysAddr,
        new_attrs: Attrs,
    ) -> Result<Flush, ReplaceError> {
        if !Self::is_canonical(expected.va) {
            return Err(ReplaceError::OutOfRange);
        }
        let sz = expected.size.bytes();
        if new_pa.0 & (sz - 1) != 0 || new_pa.0 >> A::PA_BITS != 0 {
            return Err(ReplaceError::BadPhysAddr);
        }
        let (slot, level, raw) = self.find_leaf(expected.va).ok_or(ReplaceError::NotMapped)?;
        let old = A::encode_leaf(expected.pa.0, A::normalize(expected.attrs), level);
        if level != expected.size.level() || raw != old || expected.va & (sz - 1) != 0 {
            return Err(ReplaceError::Changed);
        }
        let new = A::encode_leaf(new_pa.0, A::normalize(new_attrs), level);
        slot.compare_exchange(old, new, Ordering::AcqRel, Ordering::Acquire)
            .map_err(|_| ReplaceError::Changed)?;
        let mut flush = Flush::none();
        let global = (expected.attrs.flags | new_attrs.flags).contains(PteFlags::GLOBAL);
        flush.add(expected.va, sz, global);
        Ok(flush)
    }

    /// Compare-exchange loop on one leaf slot: re-decodes after every lost race (the
    /// hardware may set A/D in between). Returns the leaf as it was if it changed.
    #[inline]
    fn cas_leaf(
        slot: &AtomicU64,
        level: usize,
        va: u64,
        flush: &mut Flush,
        mut f: impl FnMut(Mapping, Attrs) -> Option<Attrs>,
    ) -> Option<Mapping> {
        let size = PageSize::from_level(level)?;
        let mut cur = slot.load(Ordering::Acquire);
        loop {
            let Decoded::Leaf(pa, attrs) = A::decode(cur, level) else { return None };
            let old = Mapping { va, pa: PhysAddr(pa), size, attrs };
            let new_attrs = A::normalize(f(old, attrs)?);
            let new = A::encode_leaf(pa, new_attrs, level);
            if new == cur {
                return None;
            }
            match slot.compare_exchange(cur, new, Ordering::AcqRel, Ordering::Acquire) {
                Ok(_) => {
                    let global = (attrs.flags | new_attrs.flags).contains(PteFlags::GLOBAL);
                    flush.add(va, size.bytes(), global);
                    return Some(old);
                }
                Err(x) => cur = x,
            }
        }
    }

    // ----------------------------------------------------------------------------------
    // huge-leaf splitting

    /// Tables needed so that no leaf straddles `va`.
    fn split_need(&self, va: u64) -> usize {
        match self.find_leaf(va) {
            Some((_, level, _)) if level > 0 && va & (level_size(level) - 1) != 0 => {
                let mut k = level - 1;
                while k > 0 && va & (level_size(k) - 1) != 0 {
                    k -= 1;
                }
                level - k
            }
            _ => 0,
        }
    }

    /// Splits huge leaves until `va` is a leaf boundary, taking tables from `pool`. Each
    /// split replaces a leaf by a table of 512 leaves one level down with the same frame,
    /// attributes and accessed/dirty state (Linux's `__split_huge_pmd_locked()`).
    fn split_to(&self, va: u64, pool: &mut Pool<'_, M>, flush: &mut Flush) {
        while let Some((slot, level, _)) = self.find_leaf(va) {
            if level == 0 || va & (level_size(level) - 1) == 0 {
                return;
            }
            let Some(t) = pool.take() else {
                debug_assert!(false, "split plan under-counted");
                return;
            };
            let sub = level_size(level - 1);
            let base = va & !(level_size(level) - 1);
            let mut cur = slot.load(Ordering::Acquire);
            while let Decoded::Leaf(pa, attrs) = A::decode(cur, level) {
                for i in 0..ENTRIES {
                    let raw = A::encode_leaf(pa + i as u64 * sub, attrs, level - 1);
                    self.slot(t, i).store(raw, Ordering::Relaxed);
                }
                match slot.compare_exchange(
                    cur,
                    A::encode_table(t, level),
                    Ordering::AcqRel,
                    Ordering::Acquire,
                ) {
                    Ok(_) => {
                        flush.add(base, level_size(level), attrs.flags.contains(PteFlags::GLOBAL));
                        break;
                    }
                    Err(x) => cur = x,
                }
            }
        }
    }

    /// Makes `start` and `end` leaf boundaries, allocating every table needed first.
    fn split_boundaries(&self, start: u64, end: u64, flush: &mut Flush) -> Result<(), OutOfMemory> {
        let end_inside = Self::is_canonical(end) && Self::same_half(start, end);
        let need = self.split_need(start) + if end_inside { self.split_need(end) } else { 0 };
        if need == 0 {
            return Ok(());
        }
        // Upper bound (the two ends may share a split); the surplus goes back on drop.
        let mut pool = Pool::fill(&self.mem, need)?;
        self.split_to(start, &mut pool, flush);
        if end_inside {
            self.split_to(end, &mut pool, flush);
        }
        Ok(())
    }

    // ----------------------------------------------------------------------------------
    // unmap

    /// Unmaps every leaf in `range`, calling `f` with each removed leaf (frame, size and
    /// final attributes, including dirty bits the hardware set up to the moment of removal).
    ///
    /// Huge leaves cut by the range are split first (all needed tables are allocated before
    /// anything changes; on failure nothing changed). Intermediate tables that lie entirely
    /// inside the range are freed, like Linux's `free_pgtables()` after `unmap_vmas()`.
    /// Holes are skipped, as `zap_pte_range()` does.
    pub fn unmap(
        &mut self,
        range: PageRange,
        mut f: impl FnMut(Mapping),
    ) -> Result<Flush, UnmapError> {
        let (s, e) = (range.start(), range.end());
        if !Self::range_ok(s, e) {
            return Err(UnmapError::OutOfRange);
        }
        let mut flush = Flush::none();
        self.split_boundaries(s, e, &mut flush).map_err(|_| UnmapError::OutOfMemory)?;
        self.zap(self.root, A::LEVELS - 1, (s, e), &mut f, &mut flush, true);
        Ok(flush)
    }

    fn zap<F: FnMut(Mapping)>(
        &self,
        table: u64,
        level: usize,
        (start, end): (u64, u64),
        f: &mut F,
        flush: &mut Flush,
        leaves: bool,
    ) {
        let size = level_size(level);
        let mut va = start;
        loop {
            let slot_start = va & !(size - 1);
            let slot_end = slot_start.checked_add(size);
            let sub_end = match slot_end {
                Some(n) if n < end => n,
                _ => end,
            };
            let whole = va == slot_start && slot_end.is_some_and(|n| n <= end);
            let slot = self.slot(table, index(va, level));
            let raw = slot.load(Ordering::Acquire);
            match A::decode(raw, level) {
                Decoded::Table(next) if level > 0 => {
                    self.zap(next, level - 1, (va, sub_end), f, flush, leaves);
                    if whole && self.table_is_empty(next) {
                        slot.store(0, Ordering::Release);
                        flush.add(slot_start, size, false);
                        // SAFETY: `next` was a table of this PageTable, now unlinked; we
                        // hold `&mut self`, so no walker can be inside it.
                        unsafe { self.mem.free_table(PhysAddr(next)) };
                    }
                }
                Decoded::Leaf(..) if whole && leaves => {
                    let old = slot.swap(0, Ordering::AcqRel);
                    if let (Decoded::Leaf(pa, attrs), Some(sz)) =
                        (A::decode(old, level), PageSize::from_level(level))
                    {
                        flush.add(slot_start, size, attrs.flags.contains(PteFlags::GLOBAL));
                        f(Mapping { va: slot_start, pa: PhysAddr(pa), size: sz, attrs });
                    }
                }
                _ => {}
            }
            if sub_end >= end {
                return;
            }
            va = sub_end;
        }
    }

    /// Frees every intermediate table that covers only addresses inside `range` and maps
    /// nothing (Linux's `free_pgd_range()`): the clean-up after [`Self::unmap_page`] calls,
    /// which leave emptied tables in place. The flush covers the freed tables' ranges
    /// (paging-structure caches may still hold them).
    pub fn free_empty_tables(&mut self, range: PageRange) -> Result<Flush, UnmapError> {
        let (s, e) = (range.start(), range.end());
        if !Self::range_ok(s, e) {
            return Err(UnmapError::OutOfRange);
        }
        let mut flush = Flush::none();
        self.zap(self.root, A::LEVELS - 1, (s, e), &mut |_| {}, &mut flush, false);
        Ok(flush)
    }

    fn table_is_empty(&self, table: u64) -> bool {
        (0..ENTRIES).all(|i| self.slot(table, i).load(Ordering::Relaxed) == 0)
    }

    /// Unmaps the 4 KiB page at `va` and returns what was there. The fast path for the
    /// common case; a huge leaf is split (which may fail with `OutOfMemory`, changing
    /// nothing) and only the 4 KiB piece is removed.
    pub fn unmap_page(&mut self, va: VirtAddr) -> Result<(Mapping, Flush), UnmapError> {
        if !va.is_aligned() {
            return Err(UnmapError::Misaligned);
        }
        if !Self::is_canonical(va.0) {
            return Err(UnmapError::OutOfRange);
        }
        let (slot, level, _) = self.find_leaf(va.0).ok_or(UnmapError::NotMapped)?;
        if level == 0 {
            let old = slot.swap(0, Ordering::AcqRel);
            if let Decoded::Leaf(pa, attrs) = A::decode(old, 0) {
                let mut flush = Flush::none();
                flush.add(va.0, 4096, attrs.flags.contains(PteFlags::GLOBAL));
                let m = Mapping { va: va.0, pa: PhysAddr(pa), size: PageSize::Size4K, attrs };
                return Ok((m, flush));
            }
            return Err(UnmapError::NotMapped);
        }
        let range = PageRange::new(va.0, va.0 + 4096).ok_or(UnmapError::OutOfRange)?;
        let mut got = None;
        let flush = self.unmap(range, |m| got = Some(m))?;
        match got {
            Some(m) => Ok((m, flush)),
            None => {
                flush.ignore();
                Err(UnmapError::NotMapped)
            }
        }
    }

    // ----------------------------------------------------------------------------------
    // protection

    /// Rewrites the attributes of every leaf in `range` with `f` (Linux's
    /// `change_protection()`), splitting huge leaves the range cuts (allocating first; on
    /// failure nothing changed).
    pub fn change_attrs(
        &mut self,
        range: PageRange,
        mut f: impl FnMut(Attrs) -> Attrs,
    ) -> Result<Flush, ProtectError> {
        let (s, e) = (range.start(), range.end());
        if !Self::range_ok(s, e) {
            return Err(ProtectError::OutOfRange);
        }
        let mut flush = Flush::none();
        self.split_boundaries(s, e, &mut flush).map_err(|_| ProtectError::OutOfMemory)?;
        let mut fl = Flush::none();
        self.visit(self.root, A::LEVELS - 1, s, e, &mut |slot, va, level, _| {
            Self::cas_leaf(slot, level, va, &mut fl, |_, a| Some(f(a)));
        });
        Ok(flush.merge(fl))
    }

    /// Sets the read/write/exec permissions of every leaf in `range` to those in `perms`
    /// (other bits are ignored), keeping user/global/accessed/dirty/COW and the cache mode.
    /// `PROT_NONE` (no permission) keeps the frames mapped for mmkit but inaccessible.
    ///
    /// A `COW` leaf stays read-only even if `perms` has `WRITE`: the write fault breaks
    /// the sharing first (Linux's `change_pte_range()` only makes a PTE writable when
    /// `can_change_pte_writable()` says the page is exclusive).
    pub fn protect(&mut self, range: PageRange, perms: PteFlags) -> Result<Flush, ProtectError> {
        let perms = A::normalize(Attrs::new(perms & PteFlags::PERMS)).flags & PteFlags::PERMS;
        self.change_attrs(range, |mut a| {
            a.flags = (a.flags - PteFlags::PERMS) | perms;
            if a.flags.contains(PteFlags::COW) {
                a.flags.remove(PteFlags::WRITE);
            }
            a
        })
    }

    /// Write-protects every writable leaf in `range` and marks it `COW` (fork's
    /// `ptep_set_wrprotect()` in `copy_present_pte()`).
    pub fn write_protect(&mut self, range: PageRange) -> Result<Flush, ProtectError> {
        self.change_attrs(range, |mut a| {
            if a.flags.contains(PteFlags::WRITE) {
                a.flags.remove(PteFlags::WRITE);
                a.flags.insert(PteFlags::COW);
            }
            a
        })
    }

    // ----------------------------------------------------------------------------------
    // fork

    /// Copies every leaf of `range` into `dst` at the same addresses (Linux's
    /// `copy_page_range()`), calling `f` with each copied leaf as installed in the child so
    /// the caller can take frame references.
    ///
    /// With `cow` (a private writable mapping, `is_cow_mapping()`), writable leaves become
    /// read-only + `COW` in both tables. The child's copies are made old (`pte_mkold`), and
    /// clean when not `cow` (shared mappings: `pte_mkclean`), as `copy_present_pte()` does.
    /// Every table the child needs is allocated before either table changes, so failure
    /// leaves both untouched. The returned flush is for `self` (write-protected leaves).
    pub fn copy_range<M2: TableMemory>(
        &mut self,
        dst: &mut PageTable<A, M2>,
        range: PageRange,
        cow: bool,
        mut f: impl FnMut(Mapping),
    ) -> Result<Flush, CopyError> {
        let (s, e) = (range.start(), range.end());
        if !Self::range_ok(s, e) {
            return Err(CopyError::OutOfRange);
        }
        let end_inside = Self::is_canonical(e) && Self::same_half(s, e);
        if self.split_need(s) > 0 || (end_inside && self.split_need(e) > 0) {
            return Err(CopyError::SplitsHugeLeaf);
        }
        // Plan: count the child's missing tables and look for conflicts.
        let mut last = [u64::MAX; 8];
        let mut need = 0usize;
        let mut conflict = false;
        self.visit(self.root, A::LEVELS - 1, s, e, &mut |_, va, level, raw| {
            if let Decoded::Leaf(..) = A::decode(raw, level) {
                match dst.plan_install(va, level, &mut last) {
                    Some(n) => need += n,
                    None => conflict = true,
                }
            }
        });
        if conflict {
            return Err(CopyError::AlreadyMapped);
        }
        let mut pool = Pool::fill(&dst.mem, need).map_err(|_| CopyError::OutOfMemory)?;
        let mut flush = Flush::none();
        self.visit(self.root, A::LEVELS - 1, s, e, &mut |slot, va, level, _| {
            let mut child = None;
            let changed = Self::cas_leaf(slot, level, va, &mut flush, |m, mut a| {
                if cow && a.flags.contains(PteFlags::WRITE) {
                    a.flags.remove(PteFlags::WRITE);
                    a.flags.insert(PteFlags::COW);
                }
                child = Some(Mapping { attrs: a, ..m });
                Some(a)
            });
            let _ = changed;
            if let Some(mut m) = child {
                m.attrs.flags.remove(PteFlags::ACCESSED);
                if !cow {
                    m.attrs.flags.remove(PteFlags::DIRTY);
                }
                m.attrs = A::normalize(m.attrs);
                let raw = A::encode_leaf(m.pa.0, m.attrs, level);
                dst.install(m.va, level, raw, &mut pool);
                f(m);
            }
        });
        Ok(flush)
    }

    /// Tables missing on the path to a leaf at (`va`, `leaf_level`), not yet counted in
    /// `last` (the last table id counted per level; visits come in address order), or
    /// `None` if the slot is taken.
    fn plan_install(&self, va: u64, leaf_level: usize, last: &mut [u64; 8]) -> Option<usize> {
        let mut table = self.root;
        let mut level = A::LEVELS - 1;
        loop {
            let raw = self.slot(table, index(va, level)).load(Ordering::Acquire);
            if level == leaf_level {
                return if raw == 0 { Some(0) } else { None };
            }
            match A::decode(raw, level) {
                Decoded::Table(next) => {
                    table = next;
                    level -= 1;
                }
                Decoded::Empty => {
                    let mut n = 0;
                    for (k, seen) in last.iter_mut().enumerate().take(level).skip(leaf_level) {
                        let id = va >> (12 + 9 * (k as u32 + 1));
                        if *seen != id {
                            *seen = id;
                            n += 1;
                        }
                    }
                    return Some(n);
                }
                _ => return None,
            }
        }
    }

    /// Stores `raw` at (`va`, `leaf_level`), creating tables from `pool` (planned by
    /// [`Self::plan_install`]).
    fn install(&self, va: u64, leaf_level: usize, raw: u64, pool: &mut Pool<'_, M>) {
        let mut table = self.root;
        let mut level = A::LEVELS - 1;
        while level > leaf_level {
            let slot = self.slot(table, index(va, level));
            match A::decode(slot.load(Ordering::Acquire), level) {
                Decoded::Table(next) => table = next,
                Decoded::Empty => {
                    let Some(t) = pool.take() else {
                        debug_assert!(false, "copy plan under-counted");
                        return;
                    };
                    slot.store(A::encode_table(t, level), Ordering::Release);
                    table = t;
                }
                _ => return,
            }
            level -= 1;
        }
        let _ = self.slot(table, index(va, leaf_level)).compare_exchange(
            0,
            raw,
            Ordering::AcqRel,
            Ordering::Relaxed,
        );
    }

    // ----------------------------------------------------------------------------------
    // teardown and inspection

    /// Frees every table frame (Linux's `free_pgtables()` + `pgd_free()` at exit), calling
    /// `f` with each leaf still mapped so the caller can drop its frame references.
    pub fn teardown(mut self, mut f: impl FnMut(Mapping)) {
        let root = self.root;
        self.root = DEAD;
        self.free_tree(root, A::LEVELS - 1, 0, &mut f);
    }

    fn free_tree<F: FnMut(Mapping)>(&self, table: u64, level: usize, base: u64, f: &mut F) {
        let size = level_size(level);
        for i in 0..ENTRIES {
            let raw = self.slot(table, i).load(Ordering::Relaxed);
            if raw == 0 {
                continue;
            }
            let va = base + i as u64 * size;
            match A::decode(raw, level) {
                Decoded::Table(next) if level > 0 => self.free_tree(next, level - 1, va, f),
                Decoded::Leaf(pa, attrs) => {
                    if let Some(sz) = PageSize::from_level(level) {
                        let va = Self::canonicalize(va);
                        f(Mapping { va, pa: PhysAddr(pa), size: sz, attrs });
                    }
                }
                _ => {}
            }
        }
        // SAFETY: `table` belongs to this PageTable (invariant), its children were freed
        // above, and the table is being destroyed, so nothing references it any more.
        unsafe { self.mem.free_table(PhysAddr(table)) };
    }

    /// Calls `f(level, va, raw)` for every non-zero entry of every table, tables first
    /// (for invariant checks and debugging dumps).
    pub fn for_each_entry(&self, mut f: impl FnMut(usize, u64, u64)) {
        self.entries_rec(self.root, A::LEVELS - 1, 0, &mut f);
    }

    fn entries_rec<F: FnMut(usize, u64, u64)>(
        &self,
        table: u64,
        level: usize,
        base: u64,
        f: &mut F,
    ) {
        let size = level_size(level);
        for i in 0..ENTRIES {
            let raw = self.slot(table, i).load(Ordering::Acquire);
            if raw == 0 {
                continue;
            }
            let va = base + i as u64 * size;
            f(level, Self::canonicalize(va), raw);
            if let Decoded::Table(next) = A::decode(raw, level) {
                if level > 0 {
                    self.entries_rec(next, level - 1, va, f);
                }
            }
        }
    }

    /// Number of table frames, root included.
    pub fn table_count(&self) -> usize {
        let mut n = 1;
        self.for_each_entry(|level, _, raw| {
            if matches!(A::decode(raw, level), Decoded::Table(_)) {
                n += 1;
            }
        });
        n
    }
}

impl<A: Arch, M: TableMemory> Drop for PageTable<A, M> {
    fn drop(&mut self) {
        if self.root != DEAD {
            let root = self.root;
            self.root = DEAD;
            self.free_tree(root, A::LEVELS - 1, 0, &mut |_| {});
        }
    }
}
