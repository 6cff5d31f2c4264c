//! `mremap`: mm/mremap.c as restructured in Linux 6.17/6.18 (`struct vma_remap_struct`,
//! `check_mremap_params()`, `check_prep_vma()`, `remap_move()`, `mremap_to()`,
//! `mremap_at()`, `expand_vma()`, `move_vma()`).
//!
//! The order matters because a failed call must change nothing that Linux would not have
//! changed:
//! 1. `check_mremap_params()` validates the raw arguments (lengths already page-aligned).
//! 2. A same-size `MREMAP_FIXED` move (`vrm_move_only()`) goes through `remap_move()`, which
//!    moves every VMA in the source range one by one, keeping the gaps between them (6.17+).
//! 3. Otherwise `check_prep_vma()` checks the VMA at the old address *before* anything is
//!    unmapped, then `mremap_to()` (FIXED / DONTUNMAP) or `mremap_at()` (shrink in place,
//!    grow in place, or move when MAYMOVE allows).
//!
//! A move copies the source VMA to its new place (`copy_vma()`, merging there; a never
//! written anonymous VMA gets its pgoff reset to the new address so that it can merge),
//! moves the page tables, then unmaps the source — or, with MREMAP_DONTUNMAP, leaves it
//! mapped, unlocked and (if wholly moved) without its anon_vma.

use super::merge::{MAP_FIXED, MAP_SHARED, VM_LOCKED_MASK, VM_SPECIAL};
use super::AddressSpace;
use crate::addr::{is_page_aligned, page_align_wrapping, PAGE_SHIFT};
use crate::errno::Errno;
use crate::vma::{VmFlags, Vma};

/// `MREMAP_MAYMOVE`: the mapping may move to grow.
pub const MREMAP_MAYMOVE: u64 = 1;
/// `MREMAP_FIXED`: move to `new_addr`, replacing what is there.
pub const MREMAP_FIXED: u64 = 2;
/// `MREMAP_DONTUNMAP`: move, but leave the source mapped (empty).
pub const MREMAP_DONTUNMAP: u64 = 4;

/// `enum mremap_type`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum RemapType {
    /// old_len == new_len.
    NoResize,
    /// old_len > new_len.
    Shrink,
    /// old_len < new_len.
    Expand,
}

/// `struct vma_remap_struct`: one remap operation, threaded through the helpers.
#[derive(Clone, Copy, Debug)]
struct Vrm {
    /// Source address (page-aligned).
    addr: u64,
    /// Source length (page-aligned; 0 = duplicate a shared mapping).
    old_len: u64,
    /// Target length (page-aligned, non-zero).
    new_len: u64,
    /// MREMAP_* flags.
    flags: u64,
    /// Target address (user-given for FIXED/DONTUNMAP, then the one chosen).
    new_addr: u64,
    /// `|old_len - new_len|`.
    delta: u64,
    /// What kind of resize this is.
    remap_type: RemapType,
    /// The mapping is mlocked and grows: populate the new part afterwards.
    populate_expand: bool,
}

impl Vrm {
    /// `vrm_set_delta()` and `vrm_remap_type()`.
    fn set_delta(&mut self) {
        self.delta = self.old_len.abs_diff(self.new_len);
        self.remap_type = if self.delta == 0 {
            RemapType::NoResize
        } else if self.old_len > self.new_len {
            RemapType::Shrink
        } else {
            RemapType::Expand
        };
    }

    /// `vrm_implies_new_addr()`: FIXED or DONTUNMAP always give a new address.
    fn implies_new_addr(&self) -> bool {
        self.flags & (MREMAP_FIXED | MREMAP_DONTUNMAP) != 0
    }

    /// `vrm_move_only()`: a same-size FIXED move, which may span several VMAs.
    fn move_only(&self) -> bool {
        self.flags & MREMAP_FIXED != 0 && self.old_len == self.new_len
    }

    /// `vrm_will_map_new()`: the operation grows or moves the mapping.
    fn will_map_new(&self) -> bool {
        self.remap_type == RemapType::Expand || self.implies_new_addr()
    }

    /// `vrm_overlaps()`: do source and target ranges intersect?
    fn overlaps(&self) -> bool {
        let end_old = self.addr.wrapping_add(self.old_len);
        let end_new = self.new_addr.wrapping_add(self.new_len);
        end_old > self.new_addr && end_new > self.addr
    }
}

impl AddressSpace {
    /// `mremap(old_addr, old_len, new_len, flags, new_addr)`: `do_mremap()`.
    pub fn sys_mremap(
        &mut self,
        old_addr: u64,
        old_len: u64,
        new_len: u64,
        flags: u64,
        new_addr: u64,
    ) -> Result<u64, Errno> {
        self.stats.mremap_calls += 1;
        let mut vrm = Vrm {
            addr: old_addr,
            old_len: page_align_wrapping(old_len),
            new_len: page_align_wrapping(new_len),
            flags,
            new_addr,
            delta: 0,
            remap_type: RemapType::NoResize,
            populate_expand: false,
        };
        vrm.set_delta();
        self.check_mremap_params(&vrm)?;

        let res = if vrm.move_only() {
            self.remap_move(&mut vrm)
        } else {
            self.check_prep_vma(&mut vrm)?;
            if vrm.implies_new_addr() {
                self.mremap_to(&mut vrm)
            } else {
                self.mremap_at(&mut vrm)
            }
        };
        let res = res?;
        // An mlocked mapping keeps all its pages in memory: fault in the part it grew by.
        if vrm.populate_expand && vrm.new_len > vrm.old_len {
            let start = vrm.new_addr.wrapping_add(vrm.old_len);
            self.populate_range(start, start.wrapping_add(vrm.delta));
        }
        self.after_change();
        Ok(res)
    }

    /// `check_mremap_params()`: the checks that need no VMA, in Linux's order.
    fn check_mremap_params(&self, vrm: &Vrm) -> Result<(), Errno> {
        if vrm.flags & !(MREMAP_FIXED | MREMAP_MAYMOVE | MREMAP_DONTUNMAP) != 0 {
            return Err(Errno::EINVAL);
        }
        if !is_page_aligned(vrm.addr) {
            return Err(Errno::EINVAL);
        }
        // A zero old_len is the "duplicate a shared mapping" special case; a zero new_len is
        // nonsense (this includes lengths that page-align to 0).
        if vrm.new_len == 0 {
            return Err(Errno::EINVAL);
        }
        let task_size = self.cfg.task_size;
        if vrm.new_len > task_size {
            return Err(Errno::EINVAL);
        }
        if !vrm.implies_new_addr() {
            return Ok(());
        }
        if vrm.new_addr > task_size - vrm.new_len {
            return Err(Errno::EINVAL);
        }
        if !is_page_aligned(vrm.new_addr) {
            return Err(Errno::EINVAL);
        }
        if vrm.flags & MREMAP_MAYMOVE == 0 {
            return Err(Errno::EINVAL);
        }
        if vrm.flags & MREMAP_DONTUNMAP != 0 && vrm.old_len != vrm.new_len {
            return Err(Errno::EINVAL);
        }
        if vrm.overlaps() {
            return Err(Errno::EINVAL);
        }
        // move_vma() wants to stay 4 maps below the limit; check before anything is unmapped
        // (worst case: both source and target get split in three).
        if self.map_count() as i64 + 2 >= self.cfg.max_map_count as i64 - 3 {
            return Err(Errno::ENOMEM);
        }
        Ok(())
    }

    /// `check_prep_vma()`: checks on the VMA at `vrm.addr`, made before anything changes.
    fn check_prep_vma(&self, vrm: &mut Vrm) -> Result<(), Errno> {
        let vma = self.vmas.find(vrm.addr).ok_or(Errno::EFAULT)?;
        vrm.set_delta();
        if !vrm.implies_new_addr() {
            vrm.new_addr = vrm.addr;
        }
        // Below only matters if the mapping grows or moves.
        if !vrm.will_map_new() {
            return Ok(());
        }
        let flags = vma.flags;
        // Duplicating a private mapping makes no sense (refused since 4.14).
        if vrm.old_len == 0 && !flags.intersects(VmFlags::SHARED | VmFlags::MAYSHARE) {
            return Err(Errno::EINVAL);
        }
        if vrm.flags & MREMAP_DONTUNMAP != 0
            && flags.intersects(VmFlags::DONTEXPAND | VmFlags::PFNMAP)
        {
            return Err(Errno::EINVAL);
        }
        // The part being shrunk away may cross VMA boundaries (it is unmapped anyway); the
        // part that is kept may not.
        let old_len = if vrm.remap_type == RemapType::Shrink { vrm.new_len } else { vrm.old_len };
        if old_len > vma.end - vrm.addr {
            return Err(Errno::EFAULT);
        }
        if vrm.new_len == old_len {
            return Ok(());
        }
        if flags.contains(VmFlags::LOCKED) {
            vrm.populate_expand = true;
        }
        let pgoff = vma.pgoff_at(vrm.addr);
        if pgoff.checked_add(vrm.new_len >> PAGE_SHIFT).is_none() {
            return Err(Errno::EINVAL);
        }
        if flags.intersects(VmFlags::DONTEXPAND | VmFlags::PFNMAP) {
            return Err(Errno::EFAULT);
        }
        if !self.mlock_future_ok(flags, vrm.delta) {
            return Err(Errno::EAGAIN);
        }
        if !self.may_expand_vm(flags, vrm.delta >> PAGE_SHIFT) {
            return Err(Errno::ENOMEM);
        }
        Ok(())
    }

    /// `remap_move()` (6.17+): a same-size FIXED move of every VMA in
    /// `[addr, addr + old_len)`, each to the same offset in the target, so the gaps between
    /// them are kept. The range may not start in a gap (EFAULT). A VMA that fails stops the
    /// move, the ones before it staying moved, as in Linux.
    fn remap_move(&mut self, vrm: &mut Vrm) -> Result<u64, Errno> {
        let start = vrm.addr;
        // Wraps only for a source above every VMA, where nothing is found (EFAULT).
        let end = vrm.addr.wrapping_add(vrm.old_len);
        let mut target_addr = vrm.new_addr;
        let mut res = Err(Errno::EFAULT);
        let mut seen_vma = false;
        let mut last_end = 0u64;
        let mut cursor = start;
        while let Some(vma) = self.vmas.find_next(cursor).filter(|v| v.start < end) {
            let (vm_start, vm_end) = (vma.start, vma.end);
            let addr = vm_start.max(start);
            let len = end.min(vm_end) - addr;
            if !seen_vma && start < vm_start {
                return Err(Errno::EFAULT);
            }
            // Wraps only if a merge at the destination grew a source VMA backwards over
            // `last_end`; Linux computes the same wrapped address and fails on it below.
            let offset = if seen_vma { vm_start.wrapping_sub(last_end) } else { 0 };
            last_end = vm_end;
            // vma_multi_allowed(): a VMA whose file has its own get_unmapped_area (private
            // /dev/zero: get_unmapped_area_zero) may only be moved alone.
            if !vma_multi_allowed(vma) && (seen_vma || vm_end < end) {
                return Err(Errno::EFAULT);
            }
            let mut sub = Vrm {
                addr,
                old_len: len,
                new_len: len,
                new_addr: target_addr.wrapping_add(offset),
                populate_expand: false,
                ..*vrm
            };
            self.check_prep_vma(&mut sub)?;
            let res_vma = self.mremap_to(&mut sub)?;
            if !seen_vma {
                res = Ok(res_vma);
                *vrm = Vrm { new_addr: res_vma, ..*vrm };
            }
            seen_vma = true;
            target_addr = res_vma + len;
            // The VMA iterator resumes after the VMA just handled (`mas_pause()`); if that
            // VMA reached the end of the range, the walk is over, whatever the move merged.
            if last_end >= end {
                break;
            }
            cursor = last_end;
        }
        res
    }

    /// `mremap_to()`: move to a given (FIXED) or chosen (DONTUNMAP) address.
    fn mremap_to(&mut self, vrm: &mut Vrm) -> Result<u64, Errno> {
        if vrm.flags & MREMAP_FIXED != 0 {
            // Unmap the target first, like a MAP_FIXED mmap; do_munmap() checks the range.
            let task_size = self.cfg.task_size;
            if vrm.new_addr > task_size || vrm.new_len > task_size - vrm.new_addr {
                return Err(Errno::EINVAL);
            }
            self.do_munmap(vrm.new_addr, vrm.new_addr + vrm.new_len)?;
            // Moving part of a VMA elsewhere inside the same VMA may have removed it.
            if self.vmas.find(vrm.addr).is_none() {
                return Err(Errno::EFAULT);
            }
        }
        if vrm.remap_type == RemapType::Shrink {
            self.shrink_vma(vrm)?;
            // Set up for the move now that the shrink is done.
            vrm.old_len = vrm.new_len;
        }
        if vrm.flags & MREMAP_DONTUNMAP != 0 {
            // The source stays, so the whole new length is extra address space.
            let flags = self.vmas.find(vrm.addr).ok_or(Errno::EFAULT)?.flags;
            if !self.may_expand_vm(flags, vrm.old_len >> PAGE_SHIFT) {
                return Err(Errno::ENOMEM);
            }
        }
        self.vrm_set_new_addr(vrm)?;
        self.move_vma(vrm)
    }

    /// `mremap_at()`: resize in place, or move when growing in place is impossible.
    fn mremap_at(&mut self, vrm: &mut Vrm) -> Result<u64, Errno> {
        match vrm.remap_type {
            RemapType::NoResize => Ok(vrm.addr),
            RemapType::Shrink => {
                self.shrink_vma(vrm)?;
                Ok(vrm.addr)
            }
            RemapType::Expand => self.expand_vma(vrm),
        }
    }

    /// `shrink_vma()`: unmap `[addr + new_len, addr + old_len)`, across VMAs and gaps, with
    /// `do_vmi_munmap()`'s own range check (an old_len reaching past TASK_SIZE is EINVAL).
    fn shrink_vma(&mut self, vrm: &Vrm) -> Result<(), Errno> {
        let unmap_start = vrm.addr + vrm.new_len;
        let task_size = self.cfg.task_size;
        if unmap_start > task_size || vrm.delta > task_size - unmap_start {
            return Err(Errno::EINVAL);
        }
        self.do_munmap(unmap_start, unmap_start + vrm.delta)?;
        if self.vmas.find(vrm.addr).is_none() {
            return Err(Errno::EFAULT);
        }
        Ok(())
    }

    /// `expand_vma()`: grow in place when `[addr, addr+old_len)` reaches the VMA's end and
    /// the space after it is free; else move if MAYMOVE allows (else ENOMEM).
    fn expand_vma(&mut self, vrm: &mut Vrm) -> Result<u64, Errno> {
        if self.vrm_can_expand_in_place(vrm) {
            self.expand_vma_in_place(vrm)?;
            return Ok(vrm.addr);
        }
        if vrm.flags & MREMAP_MAYMOVE == 0 {
            return Err(Errno::ENOMEM);
        }
        self.vrm_set_new_addr(vrm)?;
        self.move_vma(vrm)
    }

    /// `vrm_can_expand_in_place()` with `vma_expandable()`: the range ends at the VMA's end,
    /// nothing is mapped in `[vm_end, vm_end + delta)` (the stack guard gap of a VMA above
    /// does not count here), and the grown VMA passes a MAP_FIXED `get_unmapped_area()`.
    fn vrm_can_expand_in_place(&self, vrm: &Vrm) -> bool {
        let Some(vma) = self.vmas.find(vrm.addr) else {
            return false;
        };
        if vma.end - vrm.addr != vrm.old_len {
            return false;
        }
        let Some(end) = vma.end.checked_add(vrm.delta) else {
            return false;
        };
        if self.vmas.overlapping(vma.end, end).next().is_some() {
            return false;
        }
        self.get_unmapped_area(vma.start, end - vma.start, 0, MAP_FIXED, false).is_ok()
    }

    /// `expand_vma_in_place()` → `vma_merge_extend()`: the VMA absorbs `delta` bytes after
    /// its end (and merges with the VMA after that, if it now touches a compatible one).
    fn expand_vma_in_place(&mut self, vrm: &Vrm) -> Result<(), Errno> {
        let vma = self.vmas.find(vrm.addr).ok_or(Errno::EFAULT)?.clone();
        // vrm_calc_charge().
        if vma.flags.contains(VmFlags::ACCOUNT) && !self.vm_enough_memory(vrm.delta >> PAGE_SHIFT) {
            return Err(Errno::ENOMEM);
        }
        // vma_merge_new_range() never merges special mappings: vma_merge_extend() fails.
        if vma.flags.intersects(VM_SPECIAL) {
            return Err(Errno::ENOMEM);
        }
        let ext = Vma {
            start: vma.end,
            end: vma.end + vrm.delta,
            pgoff: vma.pgoff_at(vma.end),
            ..vma.clone()
        };
        let (ext_start, ext_end) = (ext.start, ext.end);
        self.insert_vma_merged(ext).map_err(|_| Errno::ENOMEM)?;
        // The extension must have become part of the VMA itself.
        if self.vmas.find(vma.start).map(|v| (v.start, v.end >= ext_end)) != Some((vma.start, true))
        {
            let _ = self.do_munmap(ext_start, ext_end);
            return Err(Errno::ENOMEM);
        }
        Ok(())
    }

    /// `vrm_set_new_addr()`: where the moved mapping goes. FIXED is a MAP_FIXED request;
    /// DONTUNMAP alone makes `new_addr` a hint; otherwise anywhere.
    fn vrm_set_new_addr(&self, vrm: &mut Vrm) -> Result<(), Errno> {
        let vma = self.vmas.find(vrm.addr).ok_or(Errno::EFAULT)?;
        let pgoff = vma.pgoff_at(vrm.addr);
        let hint = if vrm.implies_new_addr() { vrm.new_addr } else { 0 };
        let mut map_flags = 0;
        if vrm.flags & MREMAP_FIXED != 0 {
            map_flags |= MAP_FIXED;
        }
        if vma.flags.contains(VmFlags::MAYSHARE) {
            map_flags |= MAP_SHARED;
        }
        let file_backed = vma.backing.has_file();
        vrm.new_addr = self.get_unmapped_area(hint, vrm.new_len, pgoff, map_flags, file_backed)?;
        Ok(())
    }

    /// `move_vma()`: copy the VMA to `new_addr`, move the page tables, then unmap the
    /// source (or, with MREMAP_DONTUNMAP, leave it mapped and unlocked).
    fn move_vma(&mut self, vrm: &mut Vrm) -> Result<u64, Errno> {
        // prep_move_vma(): do_munmap() may split one VMA into three.
        if self.map_count() as i64 >= self.cfg.max_map_count as i64 - 3 {
            return Err(Errno::ENOMEM);
        }
        let vma = self.vmas.find(vrm.addr).ok_or(Errno::EFAULT)?.clone();
        // vrm_calc_charge(): the source stays with DONTUNMAP, so all of it is new.
        if vma.flags.contains(VmFlags::ACCOUNT) {
            let charged = if vrm.flags & MREMAP_DONTUNMAP != 0 {
                vrm.new_len >> PAGE_SHIFT
            } else {
                vrm.delta >> PAGE_SHIFT
            };
            if !self.vm_enough_memory(charged) {
                return Err(Errno::ENOMEM);
            }
        }
        // copy_vma(): a never-faulted anonymous VMA takes the pgoff of its new address, so
        // that it can merge there like a fresh mapping would.
        // Linux's `vma_is_anonymous()` (private /dev/zero included).
        let pgoff = if super::merge::vma_is_anonymous(&vma) && vma.anon_vma().is_none() {
            vrm.new_addr >> PAGE_SHIFT
        } else {
            vma.pgoff_at(vrm.addr)
        };
        let copy =
            Vma { start: vrm.new_addr, end: vrm.new_addr + vrm.new_len, pgoff, ..vma.clone() };
        let new_start = self.insert_vma_merged(copy).map_err(|_| Errno::ENOMEM)?;
        if self.move_page_tables(vrm.addr, vrm.new_addr, vrm.old_len).is_err() {
            // move_vma(): when move_page_tables() fails, Linux moves back what it moved and
            // unmaps the new VMA; ours moved nothing, so only the copy goes.
            let _ = self.do_munmap(vrm.new_addr, vrm.new_addr + vrm.new_len);
            return Err(Errno::ENOMEM);
        }

        if vrm.flags & MREMAP_DONTUNMAP != 0 {
            self.dontunmap_complete(vrm, new_start);
        } else if vrm.old_len != 0 {
            // unmap_source_vma(): best effort; a failure only fixes accounting in Linux.
            let _ = self.do_munmap(vrm.addr, vrm.addr + vrm.old_len);
        }
        Ok(vrm.new_addr)
    }

    /// `dontunmap_complete()`: the source VMA stays but is no longer locked (its pages
    /// moved away), though `mm->locked_vm` still counts it; if it was moved whole, its
    /// anon_vma links go too.
    fn dontunmap_complete(&mut self, vrm: &Vrm, new_start: u64) {
        let Some(src) = self.vmas.find(vrm.addr) else {
            return;
        };
        let (src_start, src_end) = (src.start, src.end);
        let was_locked = src.flags.contains(VmFlags::LOCKED);
        let whole = vrm.addr == src_start && vrm.addr + vrm.old_len == src_end;
        let unlink = whole && new_start != src_start;
        // "Because we won't unmap we don't need to touch locked_vm": Linux charged the copy
        // (vrm_stat_account()) and keeps charging the whole unlocked source, so VmLck stays
        // inflated by the source's size.
        if was_locked {
            self.locked_vm_skew_add((src_end - src_start) >> PAGE_SHIFT);
        }
        self.idx_update(src_start, |v| {
            v.flags -= VM_LOCKED_MASK;
            if unlink {
                v.set_anon_vma(None);
            }
        });
    }
}

/// `vma_multi_allowed()` (mm/mremap.c, 6.17+): may this VMA be one of several moved by one
/// same-size MREMAP_FIXED call? Not if its file brings a `get_unmapped_area` that might not
/// honour MAP_FIXED: of the model's backings that is the private `/dev/zero` mapping
/// (`get_unmapped_area_zero`); shmem (shared anonymous, shared /dev/zero) and regular files
/// (`thp_get_unmapped_area`) are known good.
fn vma_multi_allowed(vma: &Vma) -> bool {
    !matches!(&vma.backing, crate::vma::Backing::File(f) if f.path == "/dev/zero")
}
