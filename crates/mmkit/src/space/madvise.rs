//! `madvise`: mm/madvise.c (Linux 6.18), configured as the reference kernel is:
//! CONFIG_KSM=y, CONFIG_TRANSPARENT_HUGEPAGE=y, CONFIG_SWAP=y, CONFIG_MEMORY_FAILURE=n.
//!
//! The flow is Linux's: `madvise_should_skip()` validates (advice first, even for a zero
//! length), then `madvise_walk_vmas()` visits each VMA part of the range, an unmapped gap
//! only being remembered and reported as ENOMEM at the end, while an error from one VMA
//! stops the walk with earlier VMAs already changed. The advices that change VMA flags go
//! through `madvise_update_vma()` → [`AddressSpace::vma_modify`] (split and re-merge),
//! whose ENOMEM (a split at max_map_count) madvise reports as EAGAIN.
//!
//! Page-level effects (DONTNEED zeroing private pages, FREE, REMOVE punching shmem) call
//! the page hooks, which become real with the simulator. Guard markers are kept now
//! (`guard.rs`), and MADV_POPULATE_* fails with EFAULT on them and on shmem pages past the
//! object's size, as `__get_user_pages()` does.

use super::merge::VM_SPECIAL;
use super::AddressSpace;
use crate::addr::{is_page_aligned, page_align_wrapping, PAGE_SHIFT};
use crate::errno::Errno;
use crate::vma::{Backing, VmFlags};

/// `MADV_*` advice values (include/uapi/asm-generic/mman-common.h).
#[allow(missing_docs)]
pub mod advice {
    pub const MADV_NORMAL: u32 = 0;
    pub const MADV_RANDOM: u32 = 1;
    pub const MADV_SEQUENTIAL: u32 = 2;
    pub const MADV_WILLNEED: u32 = 3;
    pub const MADV_DONTNEED: u32 = 4;
    pub const MADV_FREE: u32 = 8;
    pub const MADV_REMOVE: u32 = 9;
    pub const MADV_DONTFORK: u32 = 10;
    pub const MADV_DOFORK: u32 = 11;
    pub const MADV_MERGEABLE: u32 = 12;
    pub const MADV_UNMERGEABLE: u32 = 13;
    pub const MADV_HUGEPAGE: u32 = 14;
    pub const MADV_NOHUGEPAGE: u32 = 15;
    pub const MADV_DONTDUMP: u32 = 16;
    pub const MADV_DODUMP: u32 = 17;
    pub const MADV_WIPEONFORK: u32 = 18;
    pub const MADV_KEEPONFORK: u32 = 19;
    pub const MADV_COLD: u32 = 20;
    pub const MADV_PAGEOUT: u32 = 21;
    pub const MADV_POPULATE_READ: u32 = 22;
    pub const MADV_POPULATE_WRITE: u32 = 23;
    pub const MADV_DONTNEED_LOCKED: u32 = 24;
    pub const MADV_COLLAPSE: u32 = 25;
    pub const MADV_HWPOISON: u32 = 100;
    pub const MADV_SOFT_OFFLINE: u32 = 101;
    pub const MADV_GUARD_INSTALL: u32 = 102;
    pub const MADV_GUARD_REMOVE: u32 = 103;
}
use advice::*;

/// CONFIG_KSM: MADV_MERGEABLE/UNMERGEABLE are valid advice.
const CONFIG_KSM: bool = true;
/// CONFIG_TRANSPARENT_HUGEPAGE: MADV_HUGEPAGE/NOHUGEPAGE/COLLAPSE are valid advice.
const CONFIG_TRANSPARENT_HUGEPAGE: bool = true;
/// CONFIG_MEMORY_FAILURE: MADV_HWPOISON/SOFT_OFFLINE are valid advice (then EPERM without
/// CAP_SYS_ADMIN, which the modelled process never has). Off on the reference kernel.
const CONFIG_MEMORY_FAILURE: bool = false;

/// PMD size: the unit MADV_COLLAPSE works in.
const HPAGE_PMD_SIZE: u64 = 2 << 20;

/// `madvise_behavior_valid()`.
fn madvise_behavior_valid(behavior: u32) -> bool {
    match behavior {
        MADV_DOFORK | MADV_DONTFORK | MADV_NORMAL | MADV_SEQUENTIAL | MADV_RANDOM | MADV_REMOVE
        | MADV_WILLNEED | MADV_DONTNEED | MADV_DONTNEED_LOCKED | MADV_FREE | MADV_COLD
        | MADV_PAGEOUT | MADV_POPULATE_READ | MADV_POPULATE_WRITE | MADV_DONTDUMP | MADV_DODUMP
        | MADV_WIPEONFORK | MADV_KEEPONFORK | MADV_GUARD_INSTALL | MADV_GUARD_REMOVE => true,
        MADV_MERGEABLE | MADV_UNMERGEABLE => CONFIG_KSM,
        MADV_HUGEPAGE | MADV_NOHUGEPAGE | MADV_COLLAPSE => CONFIG_TRANSPARENT_HUGEPAGE,
        MADV_HWPOISON | MADV_SOFT_OFFLINE => CONFIG_MEMORY_FAILURE,
        _ => false,
    }
}

/// The attributes of one VMA that the per-VMA advice handlers look at.
struct VmaView {
    start: u64,
    end: u64,
    flags: VmFlags,
    pgoff: u64,
    backing: Backing,
    has_anon_vma: bool,
}

impl VmaView {
    /// `vma_is_anonymous()`: no vm_ops. Shared anonymous memory is shmem and has them; a
    /// private /dev/zero mapping keeps its `vm_file` but has none (`mmap_zero_prepare()`).
    fn is_anonymous(&self) -> bool {
        match &self.backing {
            Backing::Anonymous => true,
            Backing::File(f) => f.path == "/dev/zero" && !self.flags.contains(VmFlags::MAYSHARE),
            _ => false,
        }
    }
    /// `vma->vm_file != NULL`.
    fn has_file(&self) -> bool {
        self.backing.has_file()
    }
}

impl AddressSpace {
    /// `madvise(addr, len, advice)`: `do_madvise()` of mm/madvise.c.
    ///
    /// `advice` is a C `int`: only its low 32 bits count.
    pub fn sys_madvise(&mut self, addr: u64, len: u64, advice: u64) -> Result<u64, Errno> {
        self.stats.madvise_calls += 1;
        let behavior = advice as u32;
        // madvise_should_skip() → is_valid_madvise().
        if !madvise_behavior_valid(behavior) {
            return Err(Errno::EINVAL);
        }
        if !is_page_aligned(addr) {
            return Err(Errno::EINVAL);
        }
        let len_aligned = page_align_wrapping(len);
        if len != 0 && len_aligned == 0 {
            return Err(Errno::EINVAL);
        }
        let end = addr.wrapping_add(len_aligned);
        if end < addr {
            return Err(Errno::EINVAL);
        }
        if end == addr {
            return Ok(0);
        }
        // madvise_do_behavior().
        if behavior == MADV_HWPOISON || behavior == MADV_SOFT_OFFLINE {
            // madvise_inject_error(): CAP_SYS_ADMIN only.
            return Err(Errno::EPERM);
        }
        if behavior == MADV_POPULATE_READ || behavior == MADV_POPULATE_WRITE {
            return self.madvise_populate(addr, end, behavior == MADV_POPULATE_WRITE).map(|_| 0);
        }
        self.madvise_walk_vmas(addr, end, behavior).map(|_| 0)
    }

    /// `madvise_walk_vmas()`: applies the advice to each VMA part; a gap is remembered and
    /// reported as ENOMEM once the walk is done.
    fn madvise_walk_vmas(&mut self, start: u64, last_end: u64, behavior: u32) -> Result<(), Errno> {
        let mut unmapped_error = false;
        let mut start = start;
        let mut next = self.vmas.find_next(start).map(|v| v.start);
        loop {
            let Some(vma_start) = next else {
                return Err(Errno::ENOMEM);
            };
            let vma = self.view(vma_start).ok_or(Errno::ENOMEM)?;
            if start < vma.start {
                unmapped_error = true;
                start = vma.start;
                if start >= last_end {
                    break;
                }
            }
            let end = vma.end.min(last_end);
            // The VMA that now holds `start` (a flag change may have merged it).
            let now = self.madvise_vma_behavior(&vma, start, end, behavior)?;
            let now_end = self.vmas.find(now).map_or(end, |v| v.end);
            let range_end = end.max(now_end);
            if range_end >= last_end {
                break;
            }
            next = self.vmas.find_next(now_end).map(|v| v.start);
            start = range_end;
        }
        if unmapped_error {
            Err(Errno::ENOMEM)
        } else {
            Ok(())
        }
    }

    /// A snapshot of the VMA at `vma_start`, so the handlers can change the index freely.
    fn view(&self, vma_start: u64) -> Option<VmaView> {
        self.vmas.find(vma_start).map(|v| VmaView {
            start: v.start,
            end: v.end,
            flags: v.flags,
            pgoff: v.pgoff,
            backing: v.backing.clone(),
            has_anon_vma: v.anon_vma().is_some(),
        })
    }

    /// `madvise_vma_behavior()`: one VMA part `[start, end)` of `vma`. Returns the start of
    /// the VMA that holds `start` afterwards.
    fn madvise_vma_behavior(
        &mut self,
        vma: &VmaView,
        start: u64,
        end: u64,
        behavior: u32,
    ) -> Result<u64, Errno> {
        let mut new_flags = vma.flags;
        match behavior {
            MADV_REMOVE => return self.madvise_remove(vma, start, end).map(|_| vma.start),
            // Anonymous memory: swap-in readahead; files: fadvise(WILLNEED). Both succeed.
            MADV_WILLNEED => return Ok(vma.start),
            MADV_COLD | MADV_PAGEOUT => {
                // can_madv_lru_vma().
                if vma.flags.intersects(VmFlags::LOCKED | VmFlags::PFNMAP | VmFlags::HUGETLB) {
                    return Err(Errno::EINVAL);
                }
                return Ok(vma.start);
            }
            MADV_FREE | MADV_DONTNEED | MADV_DONTNEED_LOCKED => {
                return self.madvise_dontneed_free(vma, start, end, behavior).map(|_| vma.start)
            }
            MADV_COLLAPSE => return madvise_collapse(vma).map(|_| vma.start),
            MADV_GUARD_INSTALL => return self.madvise_guard_install(vma, start, end),
            MADV_GUARD_REMOVE => {
                if !is_valid_guard_vma(vma.flags, true) {
                    return Err(Errno::EINVAL);
                }
                // madvise_guard_remove(): clears the markers (VM_MAYBE_GUARD stays).
                self.guards.remove(start, end);
                return Ok(vma.start);
            }
            MADV_NORMAL => new_flags -= VmFlags::RAND_READ | VmFlags::SEQ_READ,
            MADV_SEQUENTIAL => {
                new_flags = (new_flags - VmFlags::RAND_READ) | VmFlags::SEQ_READ;
            }
            MADV_RANDOM => new_flags = (new_flags - VmFlags::SEQ_READ) | VmFlags::RAND_READ,
            MADV_DONTFORK => new_flags |= VmFlags::DONTCOPY,
            MADV_DOFORK => {
                if new_flags.contains(VmFlags::IO) {
                    return Err(Errno::EINVAL);
                }
                new_flags -= VmFlags::DONTCOPY;
            }
            MADV_WIPEONFORK => {
                // Only on private anonymous memory.
                if vma.has_file() || new_flags.contains(VmFlags::SHARED) {
                    return Err(Errno::EINVAL);
                }
                new_flags |= VmFlags::WIPEONFORK;
            }
            MADV_KEEPONFORK => {
                if new_flags.contains(VmFlags::DROPPABLE) {
                    return Err(Errno::EINVAL);
                }
                new_flags -= VmFlags::WIPEONFORK;
            }
            MADV_DONTDUMP => new_flags |= VmFlags::DONTDUMP,
            MADV_DODUMP => {
                let special =
                    !new_flags.contains(VmFlags::HUGETLB) && new_flags.intersects(VM_SPECIAL);
                if special || new_flags.contains(VmFlags::DROPPABLE) {
                    return Err(Errno::EINVAL);
                }
                new_flags -= VmFlags::DONTDUMP;
            }
            MADV_MERGEABLE => {
                // ksm_madvise(): incompatible mappings silently ignore the advice.
                if !new_flags.contains(VmFlags::MERGEABLE) && vma_ksm_compatible(new_flags) {
                    new_flags |= VmFlags::MERGEABLE;
                }
            }
            MADV_UNMERGEABLE => new_flags -= VmFlags::MERGEABLE,
            MADV_HUGEPAGE => new_flags = (new_flags - VmFlags::NOHUGEPAGE) | VmFlags::HUGEPAGE,
            MADV_NOHUGEPAGE => new_flags = (new_flags - VmFlags::HUGEPAGE) | VmFlags::NOHUGEPAGE,
            _ => return Err(Errno::EINVAL),
        }
        // madvise_update_vma(): nothing to do (and no split) when the flags are unchanged.
        if new_flags == vma.flags {
            return Ok(vma.start);
        }
        match self.vma_modify(vma.start, start, end, &mut |v| v.flags = new_flags) {
            Ok(s) => Ok(s),
            // "madvise() returns EAGAIN if kernel resources, such as slab, are temporarily
            // unavailable": a split at max_map_count.
            Err(Errno::ENOMEM) => Err(Errno::EAGAIN),
            Err(e) => Err(e),
        }
    }

    /// `madvise_dontneed_free()`.
    fn madvise_dontneed_free(
        &mut self,
        vma: &VmaView,
        start: u64,
        end: u64,
        behavior: u32,
    ) -> Result<(), Errno> {
        // madvise_dontneed_free_valid_vma().
        let mut forbidden = VmFlags::PFNMAP;
        if behavior != MADV_DONTNEED_LOCKED {
            forbidden |= VmFlags::LOCKED;
        }
        if vma.flags.intersects(forbidden) {
            return Err(Errno::EINVAL);
        }
        if behavior == MADV_FREE {
            // madvise_free_single_vma(): anonymous memory only.
            if !vma.is_anonymous() {
                return Err(Errno::EINVAL);
            }
            // Lazy free: pages stay until reclaim wants them.
            self.free_range(start, end);
            return Ok(());
        }
        // madvise_dontneed_single_vma(): private pages go (read back as zero or file
        // contents), shared pages stay in their object.
        self.dontneed_range(start, end);
        Ok(())
    }

    /// `madvise_remove()`: punch a hole in the shared object behind the range.
    fn madvise_remove(&mut self, vma: &VmaView, start: u64, end: u64) -> Result<(), Errno> {
        if vma.flags.contains(VmFlags::LOCKED) {
            return Err(Errno::EINVAL);
        }
        if !vma.has_file() {
            return Err(Errno::EINVAL);
        }
        // vma_is_shared_maywrite().
        if !vma.flags.contains(VmFlags::SHARED | VmFlags::MAYWRITE) {
            return Err(Errno::EACCES);
        }
        // vfs_fallocate(PUNCH_HOLE): only regular files and shmem; a device file is ENODEV.
        if matches!(vma.backing, Backing::Device { .. }) {
            return Err(Errno::ENODEV);
        }
        self.zap_range(start, end);
        Ok(())
    }

    /// `madvise_guard_install()` (6.18): sets VM_MAYBE_GUARD on the whole VMA in place (no
    /// split: it is set under the read lock), gives it an anon_vma so that fork copies the
    /// markers, then installs the markers (page level).
    fn madvise_guard_install(&mut self, vma: &VmaView, start: u64, end: u64) -> Result<u64, Errno> {
        if !is_valid_guard_vma(vma.flags, false) {
            return Err(Errno::EINVAL);
        }
        self.idx_update(vma.start, |v| v.flags |= VmFlags::MAYBE_GUARD);
        if vma.is_anonymous() {
            self.anon_vma_prepare(vma.start);
        }
        // Installing a marker zaps whatever is mapped there first.
        self.zap_range(start, end);
        self.guards.insert(start, end);
        Ok(vma.start)
    }

    /// `madvise_populate()` → `faultin_page_range()`: faults every page of `[start, end)`
    /// in, as a read or a write. Per VMA (`__get_user_pages()` with FOLL_MADV_POPULATE): no
    /// VMA → ENOMEM; `check_vma_flags()` failing (IO/PFN mappings, no read permission for
    /// READ, no write permission for WRITE) → EINVAL. A write fault on a private mapping
    /// assigns its anon_vma. Pages done before an error stay populated.
    fn madvise_populate(&mut self, start: u64, end: u64, write: bool) -> Result<(), Errno> {
        let mut addr = start;
        while addr < end {
            let Some(vma) = self.vmas.find(addr) else {
                return Err(Errno::ENOMEM);
            };
            let (vm_end, flags) = (vma.end, vma.flags);
            if flags.intersects(VmFlags::IO | VmFlags::PFNMAP) {
                return Err(Errno::EINVAL);
            }
            let needed = if write { VmFlags::WRITE } else { VmFlags::READ };
            if !flags.contains(needed) {
                return Err(Errno::EINVAL);
            }
            // A guard marker (SIGSEGV) or a shmem page past the object's end (SIGBUS) stops
            // the walk with EFAULT; the pages before it stay populated.
            self.populate_vma(vma, addr, end.min(vm_end), write)?;
            addr = vm_end;
        }
        Ok(())
    }
}

/// `is_valid_guard_vma()`: not on special or hugetlb mappings, nor (for install) on locked
/// ones, whose pages must not be zapped.
fn is_valid_guard_vma(flags: VmFlags, allow_locked: bool) -> bool {
    let mut disallowed = VM_SPECIAL | VmFlags::HUGETLB;
    if !allow_locked {
        disallowed |= VmFlags::LOCKED;
    }
    !flags.intersects(disallowed)
}

/// `vma_ksm_compatible()`: KSM leaves shared, special, hugetlb and droppable mappings alone.
fn vma_ksm_compatible(flags: VmFlags) -> bool {
    !flags.intersects(
        VmFlags::SHARED
            | VmFlags::MAYSHARE
            | VmFlags::PFNMAP
            | VmFlags::IO
            | VmFlags::DONTEXPAND
            | VmFlags::HUGETLB
            | VmFlags::MIXEDMAP
            | VmFlags::DROPPABLE,
    )
}

/// `madvise_collapse()`'s VMA check, `thp_vma_allowable_order(TVA_FORCED_COLLAPSE,
/// PMD_ORDER)`, which ignores the sysfs THP setting: EINVAL for NOHUGEPAGE, special and
/// hugetlb mappings, regular files (no CONFIG_READ_ONLY_THP_FOR_FS), VMAs that hold no
/// PMD-aligned 2 MiB block (for shmem also with the file offset aligned), and anonymous
/// VMAs without an anon_vma. The collapse itself is page-level (simulator issue).
fn madvise_collapse(vma: &VmaView) -> Result<(), Errno> {
    let f = vma.flags;
    if f.intersects(VmFlags::NOHUGEPAGE | VM_SPECIAL | VmFlags::HUGETLB) {
        return Err(Errno::EINVAL);
    }
    let pmd_pages = HPAGE_PMD_SIZE >> PAGE_SHIFT;
    match vma.backing {
        // Private /dev/zero is anonymous memory to THP (`vma_is_anonymous()`).
        _ if vma.is_anonymous() => {}
        Backing::Shmem { .. } => {
            if !(vma.start >> PAGE_SHIFT).wrapping_sub(vma.pgoff).is_multiple_of(pmd_pages) {
                return Err(Errno::EINVAL);
            }
        }
        Backing::Anonymous | Backing::File(_) | Backing::Device { .. } => {
            return Err(Errno::EINVAL)
        }
    }
    // thp_vma_suitable_order(vma, vm_end - PMD_SIZE, PMD_ORDER).
    let Some(addr) = vma.end.checked_sub(HPAGE_PMD_SIZE) else {
        return Err(Errno::EINVAL);
    };
    let haddr = addr & !(HPAGE_PMD_SIZE - 1);
    if haddr < vma.start {
        return Err(Errno::EINVAL);
    }
    if vma.is_anonymous() && !vma.has_anon_vma {
        return Err(Errno::EINVAL);
    }
    Ok(())
}
