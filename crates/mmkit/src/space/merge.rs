//! The merge and split rules in one place: `vma_merge_new_range()`,
//! `vma_merge_existing_range()`, `vma_modify()` and `split_vma()` of mm/vma.c (Linux 6.18),
//! the anon_vma rules of mm/rmap.c, address selection (`__get_unmapped_area()`), and the
//! limits every syscall checks (`may_expand_vm()`, `mlock_future_ok()`,
//! `__vm_enough_memory()`).
//!
//! # Contract for the syscall files
//! - Change the VMA set only through these functions or the primitives of `accounting.rs`
//!   (`idx_insert`, `idx_remove`, `idx_set_range`, `idx_update`, `idx_split`): they keep
//!   `total_vm`, `data_vm`, `locked_vm` and the commit charge equal to sums over the VMAs, so
//!   no caller adjusts `locked_vm` by hand.
//! - [`AddressSpace::vma_modify`] is Linux's `vma_modify()`: it tries the merge *first*, with
//!   the changed attributes, and splits only when no merge is possible. Callers skip it when
//!   the change is a no-op (as `mprotect_fixup()` and `mlock_fixup()` do).
//! - Page-level effects go through the hooks at the end of this file (`zap_range`,
//!   `change_pte_protection`, `move_page_tables`, `populate_range`, `populate_vma`,
//!   `dontneed_range`, `free_range`, `writeback_range`): they dispatch to the page layer
//!   when there is one, and in any case keep the guard markers of `guard.rs` (moved by
//!   `move_page_tables`, dropped by `munmap_complete`) and the anon_vma assignment of
//!   populating.
//! - Limits: `may_expand_vm`, `mlock_future_ok` (uses [`AddressSpace::locked_vm`], which
//!   includes Linux's MREMAP_DONTUNMAP over-count: mremap must call `locked_vm_skew_add`
//!   with the pages of the source VMA whose VM_LOCKED `dontunmap_complete()` clears),
//!   `can_do_mlock`, `vm_enough_memory`.
//! - Placement for an existing mapping (mremap) should use `get_unmapped_area_for(backing,
//!   ..)`: shmem objects are placed without THP alignment, files and private /dev/zero with.

use core::sync::atomic::Ordering;

use super::AddressSpace;
use crate::addr::{is_page_aligned, PAGE_SHIFT, PAGE_SIZE};
use crate::config::OvercommitMode;
use crate::errno::Errno;
use crate::vma::index::GapRequest;
use crate::vma::{AnonVma, Backing, VmFlags, Vma};

/// `VM_SPECIAL`: mappings that never merge (include/linux/mm.h).
pub(crate) const VM_SPECIAL: VmFlags =
    VmFlags::IO.union(VmFlags::DONTEXPAND).union(VmFlags::PFNMAP).union(VmFlags::MIXEDMAP);

/// `VM_STICKY` (= `VM_IGNORE_MERGE`): flags that do not prevent a merge and are carried over
/// to the merged VMA if any part had them. The host kernel (6.18.y) treats VM_MAYBE_GUARD
/// this way (a guard-installed VMA merges with its plain neighbour and the result is `gu`).
pub(crate) const VM_STICKY: VmFlags = VmFlags::SOFTDIRTY.union(VmFlags::MAYBE_GUARD);

/// `VM_ACCESS_FLAGS`.
pub(crate) const VM_ACCESS: VmFlags = VmFlags::READ.union(VmFlags::WRITE).union(VmFlags::EXEC);

/// `VM_LOCKED_MASK`.
pub(crate) const VM_LOCKED_MASK: VmFlags = VmFlags::LOCKED.union(VmFlags::LOCKONFAULT);

/// 2 MiB: `PMD_SIZE` on x86-64.
pub(crate) const PMD_SIZE: u64 = 2 << 20;

/// `MAP_SHARED`.
pub(crate) const MAP_SHARED: u64 = 0x01;
/// `MAP_FIXED`.
pub(crate) const MAP_FIXED: u64 = 0x10;
/// `MAP_32BIT`.
pub(crate) const MAP_32BIT: u64 = 0x40;

/// What `__get_unmapped_area()` dispatches on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum AreaKind {
    /// No file: private anonymous (THP-aligned when the length is a multiple of 2 MiB and
    /// there is no hint) or, with MAP_SHARED, shmem (`shmem_get_unmapped_area()`, which
    /// does not align with the default `shmem_enabled=never`).
    Anon,
    /// A regular file: `thp_get_unmapped_area()` when `cfg.file_thp_align`.
    File,
    /// `/dev/zero` (`get_unmapped_area_zero()`): shared → shmem, private → THP-aware.
    DevZero,
    /// An existing shmem object (shared anonymous memory being mremap()ed):
    /// `shmem_get_unmapped_area()`, no alignment.
    Shmem,
}

impl AreaKind {
    /// The kind for an existing VMA's backing (for mremap's `get_unmapped_area()`).
    pub(crate) fn for_backing(b: &Backing) -> AreaKind {
        match b {
            Backing::Anonymous => AreaKind::Anon,
            Backing::Shmem { .. } => AreaKind::Shmem,
            Backing::File(f) if f.path == "/dev/zero" => AreaKind::DevZero,
            Backing::File(_) | Backing::Device { .. } => AreaKind::File,
        }
    }
}

/// Linux's `vma_is_anonymous()` (no `vm_ops`): private anonymous memory, and also a
/// private `/dev/zero` mapping, which keeps its `vm_file` (so maps prints it) but has no
/// vm_ops (`mmap_zero_prepare()`).
pub(crate) fn vma_is_anonymous(v: &Vma) -> bool {
    match &v.backing {
        Backing::Anonymous => true,
        Backing::File(f) => f.path == "/dev/zero" && !v.flags.contains(VmFlags::MAYSHARE),
        _ => false,
    }
}

/// Same backing object (`vma->vm_file == vmg->file`).
pub(crate) fn same_file(a: &Backing, b: &Backing) -> bool {
    match (a, b) {
        (Backing::Anonymous, Backing::Anonymous) => true,
        (Backing::File(x), Backing::File(y)) => x.id == y.id,
        (Backing::Shmem { id: x, .. }, Backing::Shmem { id: y, .. }) => x == y,
        (Backing::Device { phys_base: x }, Backing::Device { phys_base: y }) => x == y,
        _ => false,
    }
}

/// `is_mergeable_vma()`: flags equal except the sticky ones, same file, same anon name.
fn is_mergeable_vma(existing: &Vma, cand: &Vma) -> bool {
    (existing.flags ^ cand.flags).difference(VM_STICKY).is_empty()
        && same_file(&existing.backing, &cand.backing)
        && existing.name == cand.name
}

/// `vma_had_uncowed_parents()`: has an anon_vma whose chain is not singular (inherited
/// through fork).
fn had_uncowed_parents(a: Option<AnonVma>) -> bool {
    matches!(a, Some(x) if x.chain_inherited)
}

/// `is_mergeable_anon_vma()`: `tgt` is the neighbour's anon_vma, `src` the proposed one.
fn is_mergeable_anon_vma(tgt: Option<AnonVma>, src: Option<AnonVma>) -> bool {
    match (tgt, src) {
        // Case 1: src's anon_vma would be duplicated into tgt.
        (None, Some(_)) => !had_uncowed_parents(src),
        // Case 2: tgt's anon_vma would be used for the whole.
        (Some(_), None) => !had_uncowed_parents(tgt),
        (None, None) => true,
        // Case 3: already shared.
        (Some(t), Some(s)) => t.id == s.id,
    }
}

/// `can_vma_merge_after()`: `cand` may be appended to `prev` (adjacency checked by caller).
fn can_merge_after(prev: &Vma, cand: &Vma) -> bool {
    is_mergeable_vma(prev, cand)
        && is_mergeable_anon_vma(prev.anon_vma(), cand.anon_vma())
        && prev.pgoff.wrapping_add(prev.pages()) == cand.pgoff
}

/// `can_vma_merge_before()`: `cand` may be prepended to `next`.
fn can_merge_before(next: &Vma, cand: &Vma) -> bool {
    is_mergeable_vma(next, cand)
        && is_mergeable_anon_vma(next.anon_vma(), cand.anon_vma())
        && next.pgoff == cand.pgoff.wrapping_add(cand.pages())
}

/// The extra test of `can_vma_merge_right()` when both neighbours would be merged: their
/// anon_vmas must be compatible with each other.
fn both_anon_ok(prev: &Vma, next: &Vma) -> bool {
    match (prev.anon_vma(), next.anon_vma()) {
        (Some(p), Some(n)) => p.id == n.id,
        _ => true,
    }
}

/// `anon_vma_compatible()` of mm/rmap.c: `a` directly below `b`, same file, flags equal apart
/// from access bits (and soft-dirty), pgoff continuous.
fn anon_vma_compatible(a: &Vma, b: &Vma) -> bool {
    a.end == b.start
        && same_file(&a.backing, &b.backing)
        && (a.flags ^ b.flags).difference(VM_ACCESS | VM_STICKY).is_empty()
        && b.pgoff == a.pgoff.wrapping_add((b.start - a.start) >> PAGE_SHIFT)
}

/// `reusable_anon_vma()`: `old`'s anon_vma, if `a`/`b` are compatible and `old`'s chain is
/// singular.
fn reusable_anon_vma(old: &Vma, a: &Vma, b: &Vma) -> Option<AnonVma> {
    if anon_vma_compatible(a, b) {
        if let Some(av) = old.anon_vma() {
            if !av.chain_inherited {
                return Some(av);
            }
        }
    }
    None
}

/// What the merge code needs to remember about a neighbour once the decision is made
/// (copied out so that no `Vma` — with its `Arc`s — is cloned on the hot path).
#[derive(Clone, Copy)]
struct Nb {
    start: u64,
    end: u64,
    flags: VmFlags,
    pgoff: u64,
    anon_vma: Option<AnonVma>,
}

impl Nb {
    fn of(v: &Vma) -> Nb {
        Nb { start: v.start, end: v.end, flags: v.flags, pgoff: v.pgoff, anon_vma: v.anon_vma() }
    }

    fn anon_vma(&self) -> Option<AnonVma> {
        self.anon_vma
    }

    fn pgoff_at(&self, addr: u64) -> u64 {
        self.pgoff.wrapping_add((addr - self.start) >> PAGE_SHIFT)
    }
}

impl AddressSpace {
    /// Moves the neighbour `nb` (as it was before the merge) to `[lo, hi)` and re-accounts
    /// it, as `vma_expand()` / `vma_shrink()` (mm/vma.c) do with `vma_set_range()`. `[lo, hi)`
    /// only covers `nb` and the VMAs being merged into it, so the overlap error is ignored.
    fn nb_set_range(&mut self, nb: &Nb, lo: u64, hi: u64) {
        let _ = self.idx_set_range_known(nb.start, nb.flags, nb.end - nb.start, lo, hi);
    }

    /// Gives the merged VMA at `start` the surviving `anon_vma` and ORs in the sticky flags
    /// of the VMAs it absorbed (`vma_merge()`'s `anon_dup` / `VM_STICKY` handling, mm/vma.c).
    fn set_anon_sticky(&mut self, start: u64, anon: Option<AnonVma>, sticky: VmFlags) {
        self.idx_update(start, |v| {
            v.set_anon_vma(anon);
            v.flags |= sticky;
        });
    }

    // -----------------------------------------------------------------------------------
    // Merging into free space.

    /// Linux's `vma_merge_new_range()` plus the insert of `__mmap_new_vma()`: inserts `vma`
    /// into free space (its range must not overlap any VMA), merging with the neighbours
    /// where the rules allow. Returns the start of the VMA that now holds `vma.start`.
    pub(crate) fn insert_vma_merged(&mut self, vma: Vma) -> Result<u64, Errno> {
        self.insert_vma_merged_inner(vma, false)
    }

    /// `insert_vma_merged`, with Linux's `vmg.just_expand` (brk: only the VMA below may be
    /// expanded, the one above is never absorbed).
    pub(crate) fn insert_vma_merged_inner(
        &mut self,
        vma: Vma,
        just_expand: bool,
    ) -> Result<u64, Errno> {
        if vma.start >= vma.end || !is_page_aligned(vma.start) || !is_page_aligned(vma.end) {
            return Err(Errno::EINVAL);
        }
        let r = match self.merge_new_range(&vma, just_expand)? {
            Some(s) => s,
            None => {
                let s = vma.start;
                self.idx_insert(vma).map_err(|_| Errno::EEXIST)?;
                s
            }
        };
        self.after_change();
        Ok(r)
    }

    /// The merge half of `vma_merge_new_range()`: `Ok(None)` if `cand` merges with neither
    /// neighbour (nothing changed then), EEXIST if its range is not free.
    fn merge_new_range(&mut self, cand: &Vma, just_expand: bool) -> Result<Option<u64>, Errno> {
        // One descent: with the range free, the VMA before `find_next` is `find_prev`.
        let (prev, next, _) = self.vmas.around(cand.start);
        if next.is_some_and(|n| n.start < cand.end) {
            return Err(Errno::EEXIST);
        }
        if cand.flags.intersects(VM_SPECIAL) {
            return Ok(None);
        }
        let next = next.filter(|n| n.start == cand.end);
        let prev = prev.filter(|p| p.end == cand.start);
        let left = prev.is_some_and(|p| can_merge_after(p, cand));
        let right = !just_expand
            && next.is_some_and(|n| {
                can_merge_before(n, cand) && (!left || prev.is_some_and(|p| both_anon_ok(p, n)))
            });
        let (prev, next) = (prev.map(Nb::of), next.map(Nb::of));
        match (left, right, prev, next) {
            (true, true, Some(p), Some(n)) => {
                // vma_expand(): prev grows over the new range and next; next's anon_vma is
                // duplicated into prev if prev has none.
                let anon = p.anon_vma.or(n.anon_vma()).or(cand.anon_vma());
                let sticky = (p.flags | n.flags | cand.flags) & VM_STICKY;
                self.idx_remove(n.start);
                self.nb_set_range(&p, p.start, n.end);
                self.set_anon_sticky(p.start, anon, sticky);
                self.stats.merges += 2;
                Ok(Some(p.start))
            }
            (true, _, Some(p), _) => {
                let anon = p.anon_vma.or(cand.anon_vma());
                let sticky = cand.flags & VM_STICKY;
                self.nb_set_range(&p, p.start, cand.end);
                self.set_anon_sticky(p.start, anon, sticky);
                self.stats.merges += 1;
                Ok(Some(p.start))
            }
            (_, true, _, Some(n)) => {
                let anon = n.anon_vma.or(cand.anon_vma());
                let sticky = cand.flags & VM_STICKY;
                self.nb_set_range(&n, cand.start, n.end);
                self.idx_update(cand.start, |v| {
                    v.pgoff = cand.pgoff;
                    v.set_anon_vma(anon);
                    v.flags |= sticky;
                });
                self.stats.merges += 1;
                Ok(Some(cand.start))
            }
            _ => Ok(None),
        }
    }

    // -----------------------------------------------------------------------------------
    // Modifying part of an existing VMA.

    /// Linux's `vma_modify()`: applies `change` to `[start, end)`, which lies inside the VMA
    /// starting at `vma_start`.
    ///
    /// As in Linux the merge is tried first (`vma_merge_existing_range()`), with the changed
    /// attributes: when the range touches the VMA's start or end and the neighbour there
    /// matches, the neighbour absorbs the range and no split (and no map_count check) happens.
    /// Otherwise the parts outside the range are split off, each split failing with ENOMEM at
    /// `map_count >= max_map_count` (`split_vma()`), an earlier split staying in place as in
    /// Linux; then the change is applied to the piece. `change` is called exactly once, on a
    /// copy of the piece (its range changes are ignored). Returns the start of the VMA that
    /// now holds `start`.
    pub(crate) fn vma_modify(
        &mut self,
        vma_start: u64,
        start: u64,
        end: u64,
        change: &mut dyn FnMut(&mut Vma),
    ) -> Result<u64, Errno> {
        self.vma_modify_range(vma_start, start, end, change).map(|(s, _)| s)
    }

    /// [`AddressSpace::vma_modify`], returning the whole range of the VMA that now holds
    /// `start` (Linux's `vma_iter_end()` after `vma_modify()`).
    pub(crate) fn vma_modify_range(
        &mut self,
        vma_start: u64,
        start: u64,
        end: u64,
        change: &mut dyn FnMut(&mut Vma),
    ) -> Result<(u64, u64), Errno> {
        let cand = match self.vmas.find(vma_start) {
            Some(v) if v.start == vma_start => v.clone(),
            _ => return Err(Errno::EINVAL),
        };
        self.vma_modify_range_of(cand, start, end, change)
    }

    /// [`AddressSpace::vma_modify_range`] for a caller that already holds a copy of the VMA
    /// (`cand`, exactly as it is in the index): saves the lookup.
    pub(crate) fn vma_modify_range_of(
        &mut self,
        mut cand: Vma,
        start: u64,
        end: u64,
        change: &mut dyn FnMut(&mut Vma),
    ) -> Result<(u64, u64), Errno> {
        let middle = Nb::of(&cand);
        let inside = middle.start <= start && start < end && end <= middle.end;
        if !inside || !is_page_aligned(start) || !is_page_aligned(end) {
            return Err(Errno::EINVAL);
        }
        cand.pgoff = middle.pgoff_at(start);
        change(&mut cand);
        cand.start = start;
        cand.end = end;

        if let Some(r) = self.merge_existing_range(&middle, &cand) {
            self.after_change();
            return Ok(r);
        }
        let max = self.cfg.max_map_count;
        let mut piece = middle.start;
        if middle.start < start {
            if self.vmas.len() >= max {
                return Err(Errno::ENOMEM);
            }
            let _ = self.idx_split(piece, start);
            piece = start;
            self.after_change();
        }
        if end < middle.end {
            if self.vmas.len() >= max {
                return Err(Errno::ENOMEM);
            }
            let _ = self.idx_split(piece, end);
            self.after_change();
        }
        self.idx_update(start, |v| {
            let (s, e) = (v.start, v.end);
            *v = cand;
            v.start = s;
            v.end = e;
        });
        self.after_change();
        Ok((start, end))
    }

    /// `vma_merge_existing_range()`: `cand` is the changed `[start, end)` of `middle`.
    /// Returns the range of the merged VMA.
    fn merge_existing_range(&mut self, middle: &Nb, cand: &Vma) -> Option<(u64, u64)> {
        let left_side = cand.start == middle.start;
        let right_side = cand.end == middle.end;
        if cand.flags.intersects(VM_SPECIAL) || (!left_side && !right_side) {
            return None;
        }
        // One descent: `middle` is the first VMA ending above its start.
        let (prev, _, next) = self.vmas.around(middle.start);
        let prev = prev.filter(|p| left_side && p.end == cand.start);
        let next = next.filter(|n| right_side && n.start == cand.end);
        let merge_left = prev.is_some_and(|p| can_merge_after(p, cand));
        let merge_right = next.is_some_and(|n| {
            can_merge_before(n, cand) && (!merge_left || prev.is_some_and(|p| both_anon_ok(p, n)))
        });
        let (prev, next) = (prev.map(Nb::of), next.map(Nb::of));
        let pglen = cand.pages();
        match (merge_left, merge_right, prev, next) {
            (true, true, Some(p), Some(n)) => {
                // prev extends over middle and next; both deleted.
                let anon = p.anon_vma.or(if n.anon_vma().is_some() {
                    n.anon_vma
                } else {
                    middle.anon_vma
                });
                let sticky = (p.flags | n.flags | cand.flags) & VM_STICKY;
                self.idx_remove(n.start);
                self.idx_remove(middle.start);
                self.nb_set_range(&p, p.start, n.end);
                self.set_anon_sticky(p.start, anon, sticky);
                self.stats.merges += 2;
                Some((p.start, n.end))
            }
            (true, _, Some(p), _) => {
                // prev extends over [start, end); middle shrinks or is deleted.
                let anon = p.anon_vma.or(middle.anon_vma());
                if right_side {
                    self.idx_remove(middle.start);
                } else {
                    self.nb_set_range(middle, cand.end, middle.end);
                    let pg = middle.pgoff_at(cand.end);
                    self.idx_update(cand.end, |v| v.pgoff = pg);
                }
                let sticky = cand.flags & VM_STICKY;
                self.nb_set_range(&p, p.start, cand.end);
                self.set_anon_sticky(p.start, anon, sticky);
                self.stats.merges += 1;
                Some((p.start, cand.end))
            }
            (_, true, _, Some(n)) => {
                // next extends down over [start, end); middle shrinks or is deleted.
                let anon = n.anon_vma.or(middle.anon_vma());
                if left_side {
                    self.idx_remove(middle.start);
                } else {
                    self.nb_set_range(middle, middle.start, cand.start);
                }
                self.nb_set_range(&n, cand.start, n.end);
                let pg = n.pgoff.wrapping_sub(pglen);
                let sticky = cand.flags & VM_STICKY;
                self.idx_update(cand.start, |v| {
                    v.pgoff = pg;
                    v.set_anon_vma(anon);
                    v.flags |= sticky;
                });
                self.stats.merges += 1;
                Some((cand.start, n.end))
            }
            _ => None,
        }
    }

    // -----------------------------------------------------------------------------------
    // Unmapping.

    /// Linux's `do_vmi_munmap()` on an already validated, page-aligned `[start, end)`:
    /// removes every VMA part inside, splitting at the ends; ENOMEM when one VMA would be cut
    /// at both ends while `map_count >= max_map_count` (`vms_gather_munmap_vmas()`). Nothing
    /// changes on failure.
    pub(crate) fn do_munmap(&mut self, start: u64, end: u64) -> Result<(), Errno> {
        if start >= end {
            return Ok(());
        }
        if let Some(first) = self.munmap_split(start, end)? {
            self.munmap_complete_from(start, end, Some(first));
        }
        Ok(())
    }

    /// The split half of `vms_gather_munmap_vmas()` plus its counts: afterwards no VMA
    /// crosses `start` or `end`. Returns the pages and VM_ACCOUNT pages inside
    /// (`nr_pages`, `nr_accounted`).
    pub(crate) fn munmap_prepare(&mut self, start: u64, end: u64) -> Result<(u64, u64), Errno> {
        if self.munmap_split(start, end)?.is_none() {
            return Ok((0, 0));
        }
        let (mut pages, mut accounted) = (0, 0);
        for v in self.vmas.overlapping(start, end) {
            pages += v.pages();
            if v.flags.contains(VmFlags::ACCOUNT) {
                accounted += v.pages();
            }
        }
        Ok((pages, accounted))
    }

    /// Splits the VMAs crossing `start` and `end` (ENOMEM when one VMA would be cut at both
    /// ends at `map_count >= max_map_count`, before anything changes). Returns the range of
    /// the first VMA inside afterwards, `None` if no VMA lies inside.
    fn munmap_split(&mut self, start: u64, end: u64) -> Result<Option<(u64, u64)>, Errno> {
        let Some(first) = self.vmas.find_next(start).filter(|v| v.start < end).map(Nb::of) else {
            return Ok(None);
        };
        if first.start < start {
            if end < first.end && self.vmas.len() >= self.cfg.max_map_count {
                return Err(Errno::ENOMEM);
            }
            let _ = self.idx_split(first.start, start);
        }
        let last = if first.end >= end {
            Some(Nb { start: start.max(first.start), ..first })
        } else {
            self.vmas.find(end - 1).map(Nb::of)
        };
        if let Some(last) = last {
            if last.end > end {
                let _ = self.idx_split(last.start, end);
            }
        }
        self.after_change();
        Ok(Some((start.max(first.start), end.min(first.end))))
    }

    /// `vms_complete_munmap_vmas()`: removes every VMA inside `[start, end)` (which
    /// [`AddressSpace::munmap_prepare`] made split-free) and zaps their pages.
    pub(crate) fn munmap_complete(&mut self, start: u64, end: u64) {
        self.munmap_complete_from(start, end, None);
    }

    /// [`AddressSpace::munmap_complete`], given the range of the first VMA inside when the
    /// caller already knows it (saves its lookup).
    fn munmap_complete_from(&mut self, start: u64, end: u64, mut first: Option<(u64, u64)>) {
        debug_assert!(first.is_none_or(|(s, e)| {
            self.vmas.find_next(start).is_some_and(|v| v.start == s && v.end == e)
        }));
        // The guard markers go with the page tables (`free_pgtables()`).
        self.guards.remove(start, end);
        let mut zapped = false;
        let mut from = start;
        while from < end {
            let Some((s, e)) = first.take().or_else(|| {
                self.vmas.find_next(from).filter(|v| v.start < end).map(|v| (v.start, v.end))
            }) else {
                break;
            };
            if !zapped {
                self.zap_range(start, end);
                zapped = true;
            }
            self.idx_remove(s);
            from = e;
        }
        if zapped {
            self.after_change();
        }
    }

    // -----------------------------------------------------------------------------------
    // Placement.

    /// `__get_unmapped_area()` (mm/mmap.c) with x86-64's `arch_get_unmapped_area_topdown()`
    /// and bottom-up fallback (arch/x86/kernel/sys_x86_64.c), THP alignment for anonymous
    /// mappings whose length is a multiple of 2 MiB (`thp_get_unmapped_area_vmflags()`), and
    /// the final checks: range inside TASK_SIZE, page alignment and `mmap_min_addr`
    /// (`security_mmap_addr()`, EPERM without CAP_SYS_RAWIO). A MAP_FIXED address in the last
    /// page fails with errno `-addr`, as `IS_ERR_VALUE` makes it in Linux.
    ///
    /// `hint` must already have gone through `round_hint_to_min()` for non-fixed calls.
    pub(crate) fn get_unmapped_area(
        &self,
        hint: u64,
        len: u64,
        pgoff: u64,
        map_flags: u64,
        file_backed: bool,
    ) -> Result<u64, Errno> {
        let kind = if file_backed { AreaKind::File } else { AreaKind::Anon };
        self.get_unmapped_area_kind(hint, len, pgoff, map_flags, kind)
    }

    /// [`AddressSpace::get_unmapped_area`] for a mapping backed like `backing` (mremap's
    /// `get_unmapped_area(vma->vm_file, ...)`: shmem objects are not THP-aligned, files and
    /// private /dev/zero are).
    #[allow(dead_code)] // for mremap (S2)
    pub(crate) fn get_unmapped_area_for(
        &self,
        backing: &Backing,
        hint: u64,
        len: u64,
        pgoff: u64,
        map_flags: u64,
    ) -> Result<u64, Errno> {
        self.get_unmapped_area_kind(hint, len, pgoff, map_flags, AreaKind::for_backing(backing))
    }

    /// [`AddressSpace::get_unmapped_area`] with the backing kind spelled out.
    pub(crate) fn get_unmapped_area_kind(
        &self,
        hint: u64,
        len: u64,
        pgoff: u64,
        map_flags: u64,
        kind: AreaKind,
    ) -> Result<u64, Errno> {
        let task_size = self.cfg.task_size;
        if len > task_size {
            return Err(Errno::ENOMEM);
        }
        let shared = map_flags & MAP_SHARED != 0;
        let pgoff = if kind == AreaKind::Anon { 0 } else { pgoff };
        let thp = self.cfg.thp_enabled;
        let addr = if match kind {
            AreaKind::Anon => thp && !shared && hint == 0 && len.is_multiple_of(PMD_SIZE),
            AreaKind::File => self.cfg.file_thp_align,
            AreaKind::DevZero => thp && !shared,
            AreaKind::Shmem => false,
        } {
            self.thp_get_unmapped_area(hint, len, pgoff, map_flags)
        } else {
            self.arch_get_unmapped_area_topdown(hint, len, pgoff, map_flags)
        }?;
        if addr >= 4095u64.wrapping_neg() {
            return Err(Errno(addr.wrapping_neg() as u16));
        }
        if addr > task_size - len {
            return Err(Errno::ENOMEM);
        }
        if !is_page_aligned(addr) {
            return Err(Errno::EINVAL);
        }
        if addr < self.cfg.mmap_min_addr && !self.cfg.cap_sys_rawio {
            return Err(Errno::EPERM);
        }
        Ok(addr)
    }

    /// `thp_get_unmapped_area_vmflags()` of mm/huge_memory.c: search for `len + 2 MiB` and
    /// place the mapping so that file offset and address agree modulo 2 MiB; falls back to
    /// the plain search when the padded one fails.
    fn thp_get_unmapped_area(
        &self,
        hint: u64,
        len: u64,
        pgoff: u64,
        map_flags: u64,
    ) -> Result<u64, Errno> {
        // loff_t arithmetic, done in i128 so that nothing can wrap.
        let off = pgoff.wrapping_shl(PAGE_SHIFT) as i64 as i128;
        let size = PMD_SIZE as i128;
        let off_end = off + len as i128;
        let off_align = (off + size - 1) & !(size - 1);
        let padded = (|| {
            if off_end <= off_align || off_end - off_align < size {
                return None;
            }
            let len_pad = len.checked_add(PMD_SIZE)?;
            if off + len_pad as i128 > i64::MAX as i128 {
                return None;
            }
            let ret = self.arch_get_unmapped_area_topdown(hint, len_pad, pgoff, map_flags).ok()?;
            if ret >= 4095u64.wrapping_neg() {
                return None;
            }
            if ret == hint {
                return Some(hint);
            }
            let off_sub = ((off - ret as i128) & (size - 1)) as u64;
            if off_sub == 0 {
                return ret.checked_add(PMD_SIZE);
            }
            ret.checked_add(off_sub)
        })();
        match padded {
            Some(a) if a != 0 => Ok(a),
            _ => self.arch_get_unmapped_area_topdown(hint, len, pgoff, map_flags),
        }
    }

    /// `arch_get_unmapped_area_topdown()`: MAP_FIXED returns the address unchecked; a hint is
    /// taken if `[hint, hint+len)` is free up to the next VMA's `vm_start_gap()`; otherwise
    /// the highest fitting gap below `mmap_base`, then bottom-up from TASK_UNMAPPED_BASE.
    fn arch_get_unmapped_area_topdown(
        &self,
        hint: u64,
        len: u64,
        pgoff: u64,
        map_flags: u64,
    ) -> Result<u64, Errno> {
        let task_size = self.cfg.task_size;
        if len > task_size {
            return Err(Errno::ENOMEM);
        }
        if map_flags & MAP_FIXED != 0 {
            return Ok(hint);
        }
        if map_flags & MAP_32BIT != 0 {
            return self.arch_get_unmapped_area_bottomup(hint, len, pgoff, map_flags);
        }
        if hint != 0 {
            let addr = hint & crate::addr::PAGE_MASK;
            // mmap_address_hint_valid(): inside TASK_SIZE, not straddling the 47-bit window.
            if task_size - len >= addr && self.hint_is_free(addr, len) {
                return Ok(addr);
            }
        }
        let req = GapRequest {
            length: len,
            low_limit: PAGE_SIZE.max(self.cfg.hint_min_addr),
            high_limit: self.cfg.mmap_base,
            align_mask: 0,
            align_offset: pgoff.wrapping_shl(PAGE_SHIFT),
            start_gap: 0,
        };
        if let Some(a) = self.vmas.unmapped_area_topdown(&req) {
            return Ok(a);
        }
        self.arch_get_unmapped_area_bottomup(hint, len, pgoff, map_flags)
    }

    /// `find_vma(addr)` is absent or starts (with its guard gap) at or above `addr + len`.
    fn hint_is_free(&self, addr: u64, len: u64) -> bool {
        match self.vmas.find_next(addr) {
            None => true,
            Some(v) => addr + len <= v.start_gap(self.cfg.stack_guard_gap),
        }
    }

    /// `arch_get_unmapped_area_vmflags()`: bottom-up from `mmap_legacy_base` (or
    /// `[1 GiB, 2 GiB)` for MAP_32BIT, `find_start_end()`).
    fn arch_get_unmapped_area_bottomup(
        &self,
        hint: u64,
        len: u64,
        pgoff: u64,
        map_flags: u64,
    ) -> Result<u64, Errno> {
        let (begin, end) = if map_flags & MAP_32BIT != 0 {
            (0x4000_0000, 0x8000_0000)
        } else {
            (self.cfg.legacy_mmap_base, self.cfg.task_size)
        };
        if len > end {
            return Err(Errno::ENOMEM);
        }
        if hint != 0 {
            if let Some(addr) = crate::addr::page_align_up(hint) {
                if end - len >= addr && self.hint_is_free(addr, len) {
                    return Ok(addr);
                }
            }
        }
        let req = GapRequest {
            length: len,
            low_limit: begin.max(self.cfg.hint_min_addr),
            high_limit: end,
            align_mask: 0,
            align_offset: pgoff.wrapping_shl(PAGE_SHIFT),
            start_gap: 0,
        };
        self.vmas.unmapped_area(&req).ok_or(Errno::ENOMEM)
    }

    // -----------------------------------------------------------------------------------
    // Limits.

    /// `may_expand_vm()` (mm/mmap.c): `npages` more pages with `flags` fit RLIMIT_AS, and
    /// RLIMIT_DATA for data mappings — with Linux's Valgrind workaround (a soft RLIMIT_DATA
    /// of 0 is ignored below the hard limit).
    pub(crate) fn may_expand_vm(&self, flags: VmFlags, npages: u64) -> bool {
        let as_pages = self.cfg.rlimit_as >> PAGE_SHIFT;
        if self.acct.total_vm.saturating_add(npages) > as_pages {
            return false;
        }
        if super::accounting::is_data_mapping(flags) {
            let want = self.acct.data_vm.saturating_add(npages);
            if want > self.cfg.rlimit_data >> PAGE_SHIFT {
                if self.cfg.rlimit_data == 0 && want <= self.cfg.rlimit_data_max >> PAGE_SHIFT {
                    return true;
                }
                return false;
            }
        }
        true
    }

    /// `mlock_future_ok()` (mm/mmap.c): locking `bytes` more with `flags` stays within
    /// RLIMIT_MEMLOCK, or the process has CAP_IPC_LOCK, or `flags` has no VM_LOCKED.
    pub(crate) fn mlock_future_ok(&self, flags: VmFlags, bytes: u64) -> bool {
        if !flags.contains(VmFlags::LOCKED) || self.cfg.cap_ipc_lock {
            return true;
        }
        let locked = (bytes >> PAGE_SHIFT).saturating_add(self.locked_vm());
        locked <= self.cfg.rlimit_memlock >> PAGE_SHIFT
    }

    /// `can_do_mlock()` (mm/mlock.c): CAP_IPC_LOCK or a non-zero RLIMIT_MEMLOCK.
    pub(crate) fn can_do_mlock(&self) -> bool {
        self.cfg.cap_ipc_lock || self.cfg.rlimit_memlock != 0
    }

    /// `security_vm_enough_memory_mm()` → `__vm_enough_memory()` (mm/util.c): may `pages`
    /// more pages be committed? Heuristic mode refuses a single request larger than RAM +
    /// swap; strict mode compares with the commit limit (this space's own commitments stand
    /// in for the system-wide `vm_committed_as`).
    pub(crate) fn vm_enough_memory(&self, pages: u64) -> bool {
        let ram = self.cfg.total_ram_pages;
        let swap = self.cfg.total_swap_pages;
        match self.cfg.overcommit {
            OvercommitMode::Always => true,
            OvercommitMode::Heuristic => pages <= ram.saturating_add(swap),
            OvercommitMode::Never => {
                let mut allowed =
                    (ram.saturating_mul(self.cfg.overcommit_ratio) / 100).saturating_add(swap);
                // admin reserve (8 MiB default for the unprivileged) and user reserve
                // (min(total_vm / 32, 128 MiB)).
                allowed = allowed.saturating_sub((8 << 20) >> PAGE_SHIFT);
                allowed = allowed
                    .saturating_sub((self.acct.total_vm / 32).min((128 << 20) >> PAGE_SHIFT));
                self.acct.committed.saturating_add(pages) <= allowed
            }
        }
    }

    // -----------------------------------------------------------------------------------
    // anon_vma and faults.

    /// `anon_vma_prepare()` (mm/rmap.c): give the VMA at `vma_start` an anon_vma, as its
    /// first write fault (or COW) does. Like `find_mergeable_anon_vma()`, it first tries to
    /// reuse the anon_vma of the next, then of the previous neighbour when the two are
    /// `anon_vma_compatible()` and the neighbour's chain is singular; otherwise it allocates a
    /// fresh one. This decides whether the VMAs can merge later.
    ///
    /// Takes `&self`: Linux runs it with mmap_lock only read-held, and the VMA's anon_vma is
    /// a set-once cell (the first CPU to install one wins; a loser's fresh id is unused).
    pub(crate) fn anon_vma_prepare(&self, vma_start: u64) -> Option<AnonVma> {
        let vma = self.vmas.find(vma_start).filter(|v| v.start == vma_start)?;
        if let Some(a) = vma.anon_vma() {
            return Some(a);
        }
        let mut found = None;
        if let Some(next) = self.vmas.next_of(vma.start) {
            found = reusable_anon_vma(next, vma, next);
        }
        if found.is_none() {
            if let Some(prev) = self.vmas.prev_of(vma.start) {
                found = reusable_anon_vma(prev, prev, vma);
            }
        }
        let av = match found {
            Some(a) => AnonVma { id: a.id, chain_inherited: false },
            None => AnonVma { id: self.alloc_id(), chain_inherited: false },
        };
        Some(vma.init_anon_vma(av))
    }

    /// What a user write to `addr` does to the VMA state, until the real fault handler
    /// exists: EFAULT if nothing is mapped there (after trying to grow a VM_GROWSDOWN
    /// mapping down to it, `expand_stack()`) or the mapping is not writable; on a private
    /// mapping the first write assigns the anon_vma (`do_anonymous_page()` / `wp_page_copy()`
    /// call `anon_vma_prepare()`).
    pub fn write_fault(&mut self, addr: u64) -> Result<(), Errno> {
        let vma = match self.vmas.find(addr) {
            Some(v) => v.clone(),
            None => {
                let Some(next) = self.vmas.find_next(addr).cloned() else {
                    return Err(Errno::EFAULT);
                };
                if !next.flags.contains(VmFlags::GROWSDOWN) {
                    return Err(Errno::EFAULT);
                }
                self.expand_downwards(&next, addr).map_err(|_| Errno::EFAULT)?;
                match self.vmas.find(addr) {
                    Some(v) => v.clone(),
                    None => return Err(Errno::EFAULT),
                }
            }
        };
        // A guard marker (SIGSEGV) or a shmem page past the object's end (SIGBUS).
        if self.first_unfaultable(&vma, addr, addr.saturating_add(1)).is_some() {
            return Err(Errno::EFAULT);
        }
        if !vma.flags.contains(VmFlags::WRITE) {
            return Err(Errno::EFAULT);
        }
        if !vma.flags.contains(VmFlags::SHARED) {
            self.anon_vma_prepare(vma.start);
        }
        Ok(())
    }

    /// `expand_downwards()` (mm/mmap.c): grow the VM_GROWSDOWN `vma` down to the page of
    /// `addr`, keeping `stack_guard_gap` above a non-growsdown accessible neighbour below and
    /// within RLIMIT_AS / RLIMIT_STACK / RLIMIT_MEMLOCK and overcommit
    /// (`acct_stack_growth()`), never below `mmap_min_addr` (EPERM) or pgoff 0.
    pub(crate) fn expand_downwards(&mut self, vma: &Vma, addr: u64) -> Result<(), Errno> {
        if !vma.flags.contains(VmFlags::GROWSDOWN) {
            return Err(Errno::EFAULT);
        }
        let addr = addr & crate::addr::PAGE_MASK;
        // The global mmap_min_addr (the LSM minimum), with no capability override.
        if addr < self.cfg.hint_min_addr.max(self.cfg.mmap_min_addr) {
            return Err(Errno::EPERM);
        }
        if let Some(prev) = self.vmas.prev_of(vma.start) {
            if !prev.flags.contains(VmFlags::GROWSDOWN)
                && prev.flags.intersects(VM_ACCESS)
                && addr.wrapping_sub(prev.end) < self.cfg.stack_guard_gap
            {
                return Err(Errno::ENOMEM);
            }
        }
        // The anon_vma is prepared before the growth is accounted, so it stays even when
        // the growth is refused.
        self.anon_vma_prepare(vma.start);
        if addr >= vma.start {
            return Ok(());
        }
        let size = vma.end - addr;
        let grow = (vma.start - addr) >> PAGE_SHIFT;
        if grow > vma.pgoff {
            return Err(Errno::ENOMEM);
        }
        // acct_stack_growth()
        if !self.may_expand_vm(vma.flags, grow)
            || size > self.cfg.rlimit_stack
            || !self.mlock_future_ok(vma.flags, grow << PAGE_SHIFT)
            || !self.vm_enough_memory(grow)
        {
            return Err(Errno::ENOMEM);
        }
        let _ = self.idx_set_range(vma.start, addr, vma.end);
        let pg = vma.pgoff - grow;
        self.idx_update(addr, |v| v.pgoff = pg);
        self.after_change();
        Ok(())
    }

    // -----------------------------------------------------------------------------------
    // Page-level hooks (page contents come with the simulator issue; guard markers and
    // anon_vma assignment are modelled now).

    /// `zap_page_range` / `unmap_region()`: drop the pages of `[start, end)` (page layer:
    /// [`crate::fault::PageLayer::zap`]; Linux's zap cannot fail, and with 4 KiB leaves ours
    /// allocates nothing, so an error is not expected and is ignored).
    pub(crate) fn zap_range(&mut self, start: u64, end: u64) {
        if let Some(p) = self.pages.as_mut() {
            let _ = p.zap(start, end);
        }
    }

    /// MADV_DONTNEED's zap (`zap_page_range_single()`).
    pub(crate) fn dontneed_range(&mut self, start: u64, end: u64) {
        if let Some(p) = self.pages.as_mut() {
            let _ = p.madvise_dontneed(start, end);
        }
    }

    /// MADV_FREE (`madvise_free_pte_range()`): anonymous pages become lazy-free.
    pub(crate) fn free_range(&mut self, start: u64, end: u64) {
        if let Some(p) = self.pages.as_ref() {
            let _ = p.madvise_free(start, end);
        }
    }

    /// msync(MS_SYNC) of a shared file VMA's part `[start, end)`: dirty pages written back.
    pub(crate) fn writeback_range(&mut self, start: u64, end: u64) {
        if let Some(p) = self.pages.as_ref() {
            let _ = p.writeback(start, end);
        }
    }

    /// `change_protection()`: rewrite the PTEs of `[start, end)` for `flags` (4 KiB leaves
    /// are changed in place, so this allocates nothing and cannot fail).
    pub(crate) fn change_pte_protection(&mut self, start: u64, end: u64, flags: VmFlags) {
        if let Some(p) = self.pages.as_mut() {
            let _ = p.protect(start, end, flags);
        }
    }

    /// `move_page_tables()`: move the PTEs of `len` bytes from `old` to `new`. Guard markers
    /// move with them (`move_ptes()` moves every non-none PTE). ENOMEM if a destination
    /// table could not be allocated; nothing moved then.
    pub(crate) fn move_page_tables(&mut self, old: u64, new: u64, len: u64) -> Result<(), Errno> {
        if let Some(p) = self.pages.as_mut() {
            p.move_range(old, new, len)?;
        }
        self.guards.move_range(old, new, len);
        Ok(())
    }

    /// Faults in `[from, to)` of `vma` (which must hold it) as GUP does: stops before the
    /// first page that cannot be faulted (guard marker, shmem past the end) with EFAULT, and
    /// at a fault error with GUP's errno (ENOMEM, EFAULT). A write populate of a private
    /// mapping first assigns its anon_vma.
    pub(crate) fn populate_vma(
        &self,
        vma: &Vma,
        from: u64,
        to: u64,
        write: bool,
    ) -> Result<(), Errno> {
        let bad = self.first_unfaultable(vma, from, to);
        let stop = bad.unwrap_or(to);
        if write && !vma.flags.contains(VmFlags::SHARED) && stop > from {
            self.anon_vma_prepare(vma.start);
        }
        if let Some(p) = self.pages.as_ref() {
            if stop > from {
                p.populate(vma, from, stop, write)?;
            }
        }
        if bad.is_some() {
            return Err(Errno::EFAULT);
        }
        Ok(())
    }

    /// `populate_vma_page_range()` over `[start, end)` as `mm_populate()` does it: write
    /// faults on private writable mappings (which assigns their anon_vma), read faults
    /// elsewhere; VM_IO/VM_PFNMAP, lock-on-fault and inaccessible mappings are skipped.
    /// Errors are ignored, as `mm_populate()` ignores them.
    pub(crate) fn populate_range(&mut self, start: u64, end: u64) {
        for v in self.vmas.overlapping(start, end) {
            if v.flags.intersects(VmFlags::IO | VmFlags::PFNMAP | VmFlags::LOCKONFAULT)
                || v.flags.access().is_empty()
            {
                continue;
            }
            let write = v.flags & (VmFlags::WRITE | VmFlags::SHARED) == VmFlags::WRITE;
            let _ = self.populate_vma(v, start.max(v.start), end.min(v.end), write);
        }
    }

    // -----------------------------------------------------------------------------------
    // Self-check.

    /// Checks the address-space invariants and panics with a description of the first one
    /// broken: VMAs sorted, page-aligned, non-empty and non-overlapping; no two adjacent VMAs
    /// that Linux would have merged (same flags, file, name, continuous pgoff, compatible
    /// anon_vmas) — checked only when `strict_merge` is set, because Linux itself leaves such
    /// pairs after its documented partial failures (a `vma_modify()` whose second split hit
    /// max_map_count, a MAP_FIXED that failed after splitting), after a fork that cleared
    /// VM_LOCKED, and after a stack grew down next to a neighbour; the heap's boundary at
    /// `start_brk` is exempt. Counters equal to their recomputation. For tests; O(n).
    #[doc(hidden)]
    pub fn check_invariants(&self, strict_merge: bool) {
        let mut prev: Option<&Vma> = None;
        let mut n = 0usize;
        for v in self.vmas.iter() {
            n += 1;
            assert!(v.start < v.end, "empty VMA {v:?}");
            assert!(is_page_aligned(v.start) && is_page_aligned(v.end), "unaligned {v:?}");
            if let Some(p) = prev {
                assert!(p.end <= v.start, "overlap/unsorted: {p:?} / {v:?}");
                // The heap never merges with a VMA ending at start_brk (do_brk_flags() only
                // expands a VMA found by vma_prev_limit(start_brk)).
                if strict_merge && p.end == v.start && p.end != self.start_brk {
                    let mergeable = !p.flags.intersects(VM_SPECIAL)
                        && !v.flags.intersects(VM_SPECIAL)
                        && is_mergeable_vma(p, v)
                        && p.pgoff.wrapping_add(p.pages()) == v.pgoff
                        && is_mergeable_anon_vma(p.anon_vma(), v.anon_vma());
                    assert!(!mergeable, "mergeable neighbours left unmerged: {p:?} / {v:?}");
                }
            }
            prev = Some(v);
        }
        assert_eq!(n, self.vmas.len(), "map_count");
        let (c, locked) = self.recompute_counters();
        assert_eq!(c, self.acct, "vm counters");
        assert_eq!(locked, self.locked_vm, "locked_vm");
        assert_eq!(self.stats.mapped_bytes, c.total_vm << PAGE_SHIFT, "stats.mapped_bytes");
        assert_eq!(self.vmas.mapped_bytes(), c.total_vm << PAGE_SHIFT, "index mapped_bytes");
        assert!(self.stats.peak_vma_count >= n as u64, "peak VMA count");
        assert!(self.next_id.load(Ordering::Relaxed) > 0);
        // Guard markers live only in mapped pages.
        if !self.guards.is_empty() {
            for (a, b) in self.guards.parts(0, u64::MAX) {
                let mut at = a;
                while at < b {
                    let v = self.vmas.find(at);
                    assert!(v.is_some(), "guard marker at {at:#x} outside any VMA");
                    at = v.map_or(b, |v| v.end);
                }
            }
        }
    }
}
