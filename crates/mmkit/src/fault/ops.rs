//! Page-table effects of VMA changes: zap, change_protection, move, populate, madvise,
//! fork's copy, msync's writeback, exit's teardown.

use alloc::vec::Vec;

use super::{is_cow_mapping, Access, FaultError, FileId, FilePages, Host, Kind, Pages};
use crate::addr::{is_page_aligned, PageRange, Pfn, VirtAddr, PAGE_SIZE};
use crate::errno::Errno;
use crate::frame::PageFlags;
use crate::paging::{Arch, Flush, Mapping, PteFlags};
use crate::platform::{CpuId, TlbFlush};
use crate::vma::{VmFlags, Vma};

/// A page-aligned, non-empty range, or EINVAL.
fn range(start: u64, end: u64) -> Result<PageRange, Errno> {
    if !is_page_aligned(start) || !is_page_aligned(end) || start >= end {
        return Err(Errno::EINVAL);
    }
    PageRange::new(start, end).ok_or(Errno::EINVAL)
}

/// Linux's `vma_needs_copy()`: fork copies the page tables of a VMA only when a fault in the
/// child could not rebuild them: it has anonymous pages (an anon_vma), raw PFNs, guard
/// markers or uffd-wp state.
pub fn vma_needs_copy(vma: &Vma) -> bool {
    vma.flags
        .intersects(VmFlags::PFNMAP | VmFlags::MIXEDMAP | VmFlags::UFFD_WP | VmFlags::MAYBE_GUARD)
        || vma.anon_vma().is_some()
}

impl<A: Arch, H: Host> Pages<A, H> {
    /// Drops the frames of removed leaves, after their translations were flushed (the
    /// `tlb_finish_mmu()` half of `zap_pte_range()`): map count and reference down, RSS down,
    /// and a dirty PTE makes a file page dirty (`folio_mark_dirty()`), which is then written
    /// back at once (mmkit has no flusher thread).
    fn release(&self, removed: &[Mapping]) {
        for m in removed {
            let Some((kind, meta)) = self.kind_of(m) else { continue };
            if kind == Kind::File && m.attrs.flags.contains(PteFlags::DIRTY) {
                meta.set_flags(PageFlags::DIRTY);
            }
            if kind == Kind::File && meta.flags().contains(PageFlags::DIRTY) {
                if let Some(file) = FileId::from_token(meta.mapping()) {
                    self.host().files().writeback(file, meta.index(), Pfn::containing(m.pa));
                    meta.clear_flags(PageFlags::DIRTY);
                }
            }
            self.rss_add(kind, -1);
            meta.dec_mapcount();
            let _ = self.host().frames().put_page(Pfn::containing(m.pa));
        }
    }

    /// Unmaps `[start, end)` (Linux's `unmap_vmas()` + `free_pgtables()`): removes every
    /// leaf, frees the tables wholly inside, flushes the range on the `mm_cpumask`, then puts
    /// the frames (freeing those whose last reference this was).
    pub fn zap(&mut self, start: u64, end: u64) -> Result<(), Errno> {
        let r = range(start, end)?;
        let mut removed = Vec::new();
        let fl = self.table.unmap(r, |m| removed.push(m)).map_err(|_| Errno::ENOMEM)?;
        self.flush(fl);
        self.release(&removed);
        Ok(())
    }

    /// MADV_DONTNEED (`zap_page_range_single()`): like [`Self::zap`]; the next access faults
    /// afresh (zeros for anonymous memory, the file's data for a private file mapping).
    pub fn madvise_dontneed(&mut self, start: u64, end: u64) -> Result<(), Errno> {
        self.zap(start, end)
    }

    /// `change_protection()` for a VMA whose flags became `flags`: every leaf in the range
    /// gets the new access bits (none = PROT_NONE, kept mapped). Leaves marked `COW` stay
    /// read-only (Linux makes a PTE writable only for an exclusive anonymous page,
    /// `can_change_pte_writable()`). The range is flushed.
    pub fn protect(&mut self, start: u64, end: u64, flags: VmFlags) -> Result<(), Errno> {
        let r = range(start, end)?;
        let mut perms = PteFlags::empty();
        if flags.intersects(VmFlags::READ | VmFlags::WRITE | VmFlags::EXEC) {
            perms |= PteFlags::READ;
        }
        if flags.contains(VmFlags::WRITE) {
            perms |= PteFlags::WRITE;
        }
        if flags.contains(VmFlags::EXEC) {
            perms |= PteFlags::EXEC;
        }
        let fl = self.table.protect(r, perms).map_err(|_| Errno::ENOMEM)?;
        self.flush(fl);
        Ok(())
    }

    /// mremap's `move_page_tables()`: moves the leaves of `[old, old + len)` to
    /// `[new, new + len)` (the destination must be empty). Frames keep their counts and RSS
    /// does not change. All destination tables are built before the source is touched, so an
    /// allocation failure returns ENOMEM with the source intact and the destination empty.
    pub fn move_range(&mut self, old: u64, new: u64, len: u64) -> Result<(), Errno> {
        let src = range(old, old.checked_add(len).ok_or(Errno::EINVAL)?)?;
        let dst = range(new, new.checked_add(len).ok_or(Errno::EINVAL)?)?;
        if src.overlaps(&dst) {
            return Err(Errno::EINVAL);
        }
        let mut leaves = Vec::new();
        self.table.walk(src, |m| leaves.push(m)).map_err(|_| Errno::EINVAL)?;
        for (i, m) in leaves.iter().enumerate() {
            let to = VirtAddr(m.va - old + new);
            if self.table.map(to, m.pa, m.size, m.attrs).is_err() {
                // Undo the copies made so far; the source was not touched.
                let mut undone = Vec::new();
                let fl = self.table.unmap(dst, |x| undone.push(x)).map_err(|_| Errno::ENOMEM)?;
                self.flush(fl);
                debug_assert!(undone.len() == i);
                return Err(Errno::ENOMEM);
            }
        }
        let mut removed = Vec::new();
        let fl = self.table.unmap(src, |m| removed.push(m)).map_err(|_| Errno::ENOMEM)?;
        self.flush(fl);
        // Accessed/dirty bits the hardware set between the copy and the removal.
        for m in removed {
            let late = m.attrs.flags & (PteFlags::ACCESSED | PteFlags::DIRTY);
            if late.is_empty() {
                continue;
            }
            let to = VirtAddr(m.va - old + new);
            if let Ok(fl) = self.table.update_leaf(to, |x| {
                (x.pa == m.pa).then(|| {
                    let mut a = x.attrs;
                    a.flags |= late;
                    a
                })
            }) {
                fl.ignore();
            }
        }
        Ok(())
    }

    /// Faults in `[start, end)` of `vma` in address order, as GUP does for MAP_POPULATE,
    /// MADV_POPULATE_READ/WRITE and mlock (`populate_vma_page_range()` /
    /// `faultin_page()`): pages already mapped with the needed access are skipped, a write
    /// populate breaks COW. Stops at the first error with GUP's errno: ENOMEM for OOM,
    /// EFAULT for SIGBUS / SIGSEGV. Returns the number of pages faulted in.
    pub fn populate(&self, vma: &Vma, start: u64, end: u64, write: bool) -> Result<u64, Errno> {
        range(start, end)?;
        if start < vma.start || end > vma.end {
            return Err(Errno::EFAULT);
        }
        let cpu = self.host().frames().cpu().current_cpu();
        let access = if write { Access::Write } else { Access::Read };
        let mut faulted = 0;
        let mut va = start;
        while va < end {
            let ok = self.table.query(VirtAddr(va)).is_ok_and(|t| {
                let f = t.leaf.attrs.flags;
                !f.is_protnone() && (!write || f.contains(PteFlags::WRITE))
            });
            if !ok {
                match self.fault(vma, VirtAddr(va), access, cpu) {
                    Ok(super::FaultOutcome::Retry) => continue,
                    Ok(_) => faulted += 1,
                    Err(FaultError::OutOfMemory) => return Err(Errno::ENOMEM),
                    Err(_) => return Err(Errno::EFAULT),
                }
            }
            va += PAGE_SIZE;
        }
        Ok(faulted)
    }

    /// MADV_FREE (`madvise_free_pte_range()`): every anonymous page mapped only here becomes
    /// lazy-free: its PTE is made old and clean, the page loses `DIRTY` and `SWAPBACKED`
    /// (`folio_mark_lazyfree()`). Shared and file pages, and the zero page, are skipped.
    /// Reclaim may then drop such a page unless it is written again; mmkit has no reclaim,
    /// so the data stays.
    pub fn madvise_free(&self, start: u64, end: u64) -> Result<(), Errno> {
        let r = range(start, end)?;
        let mut leaves = Vec::new();
        self.table.walk(r, |m| leaves.push(m)).map_err(|_| Errno::EINVAL)?;
        let mut flush = Flush::none();
        for m in leaves {
            let Some((Kind::Anon, meta)) = self.kind_of(&m) else { continue };
            if meta.mapcount() != 1 {
                continue;
            }
            if let Ok(fl) = self.table.update_leaf(VirtAddr(m.va), |x| {
                (x.pa == m.pa).then(|| {
                    let mut a = x.attrs;
                    a.flags.remove(PteFlags::ACCESSED | PteFlags::DIRTY);
                    a
                })
            }) {
                flush = flush.merge(fl);
            }
            meta.clear_flags(PageFlags::DIRTY | PageFlags::SWAPBACKED);
        }
        self.flush(flush);
        Ok(())
    }

    /// msync(MS_SYNC) / writeback of `[start, end)`: every file page mapped here whose PTE or
    /// page is dirty is written back and cleaned (`folio_clear_dirty_for_io()` →
    /// `folio_mkclean()`; the PTE is cleaned, not write-protected, since the MMU keeps
    /// tracking dirtiness). Returns the number of pages written.
    pub fn writeback(&self, start: u64, end: u64) -> Result<u64, Errno> {
        let r = range(start, end)?;
        let mut dirty = Vec::new();
        self.table.walk(r, |m| dirty.push(m)).map_err(|_| Errno::EINVAL)?;
        let fl = self
            .table
            .test_and_clear(r, PteFlags::DIRTY, |m| {
                if let Some(x) = dirty.iter_mut().find(|x| x.va == m.va) {
                    x.attrs.flags |= PteFlags::DIRTY;
                }
            })
            .map_err(|_| Errno::EINVAL)?;
        self.flush(fl);
        let mut n = 0;
        for m in &dirty {
            let Some((Kind::File, meta)) = self.kind_of(m) else { continue };
            if m.attrs.flags.contains(PteFlags::DIRTY) {
                meta.set_flags(PageFlags::DIRTY);
            }
            if meta.flags().contains(PageFlags::DIRTY) {
                if let Some(file) = FileId::from_token(meta.mapping()) {
                    meta.clear_flags(PageFlags::DIRTY);
                    self.host().files().writeback(file, meta.index(), Pfn::containing(m.pa));
                    n += 1;
                }
            }
        }
        Ok(n)
    }

    /// Fork's `copy_page_range()` for one VMA into `child` (same addresses).
    ///
    /// Skipped as Linux skips it: VM_DONTCOPY VMAs are not in the child at all,
    /// VM_WIPEONFORK ones start empty, and VMAs whose pages a fault can rebuild
    /// (`vma_needs_copy()` false) are left to fault. In a COW mapping every leaf becomes
    /// read-only + `COW` in both parent and child (the parent's TLB is flushed): writable
    /// leaves as `copy_present_pte()` does, and read-only ones too, standing in for Linux
    /// clearing `PageAnonExclusive` so that a later mprotect cannot make a shared frame
    /// writable. Shared mappings share frames as they are. Each copied frame gains a
    /// reference and a map count, and the child's RSS grows.
    ///
    /// Takes `&mut self`: Linux's `dup_mmap()` holds the parent's `mmap_lock` for write.
    /// On ENOMEM nothing was copied (the parent may keep its new COW marks, as in Linux).
    pub fn fork_into(&mut self, child: &mut Self, vma: &Vma) -> Result<(), Errno> {
        if vma.flags.intersects(VmFlags::DONTCOPY | VmFlags::WIPEONFORK) || !vma_needs_copy(vma) {
            return Ok(());
        }
        let r = range(vma.start, vma.end)?;
        let cow = is_cow_mapping(vma.flags);
        if cow {
            let fl = self
                .table
                .change_attrs(r, |mut a| {
                    a.flags.remove(PteFlags::WRITE);
                    a.flags.insert(PteFlags::COW);
                    a
                })
                .map_err(|_| Errno::ENOMEM)?;
            self.flush(fl);
        }
        let mut copied = Vec::new();
        let fl = self.table.copy_range(&mut child.table, r, cow, |m| copied.push(m)).map_err(
            |e| match e {
                crate::paging::CopyError::OutOfMemory => Errno::ENOMEM,
                _ => Errno::EINVAL,
            },
        )?;
        self.flush(fl);
        for m in &copied {
            if let Some((kind, meta)) = child.kind_of(m) {
                meta.get();
                meta.inc_mapcount();
                child.rss_add(kind, 1);
            }
        }
        Ok(())
    }

    /// Exit's `exit_mmap()`: flushes the whole ASID on the `mm_cpumask`, frees every table
    /// and puts every mapped frame (dirty file pages are written back first).
    ///
    /// Dropping a [`Pages`] without calling this frees the tables but leaks the frames.
    pub fn teardown(self)
    where
        H: Clone,
    {
        let host = self.host().clone();
        let cpus = self.cpumask();
        let asid = self.asid();
        let mut removed = Vec::new();
        self.table.teardown(|m| removed.push(m));
        if !cpus.is_empty() {
            host.tlb().flush_asid(&cpus, asid);
        }
        let zero = host.zero_page();
        let fa = host.frames();
        for m in &removed {
            let pfn = Pfn::containing(m.pa);
            if pfn == zero {
                continue;
            }
            let Some(meta) = fa.meta(pfn) else { continue };
            let anon = meta.mapping() & super::MAPPING_ANON != 0;
            let shmem = !anon && meta.flags().contains(PageFlags::SWAPBACKED);
            if !anon && !shmem {
                if m.attrs.flags.contains(PteFlags::DIRTY) {
                    meta.set_flags(PageFlags::DIRTY);
                }
                if meta.flags().contains(PageFlags::DIRTY) {
                    if let Some(file) = FileId::from_token(meta.mapping()) {
                        host.files().writeback(file, meta.index(), pfn);
                        meta.clear_flags(PageFlags::DIRTY);
                    }
                }
            }
            meta.dec_mapcount();
            let _ = fa.put_page(pfn);
        }
    }
}
