//! `mlock`, `mlock2`, `munlock`, `mlockall`, `munlockall`: mm/mlock.c.
//!
//! Locking is a VMA-flag change (`VM_LOCKED`, plus `VM_LOCKONFAULT` for `MLOCK_ONFAULT` /
//! `MCL_ONFAULT`) made with the same split/merge machinery as mprotect (`mlock_fixup()` →
//! `vma_modify_flags()`), followed by a populate pass that faults the pages in. The populate
//! pass is what user space can see beyond the flags: a PROT_NONE mapping cannot be faulted,
//! so mlock reports ENOMEM *after* marking it locked, and a write fault on a private writable
//! mapping gives it an anon_vma (which decides later merges).
//!
//! `mm->locked_vm` is kept by the VMA-set primitives (the pages of VM_LOCKED VMAs, which is
//! what mlock_fixup()'s incremental updates amount to, plus mremap's DONTUNMAP skew).

use super::merge::{VM_LOCKED_MASK, VM_SPECIAL};
use super::AddressSpace;
use crate::addr::{page_align_wrapping, PAGE_MASK, PAGE_SHIFT};
use crate::errno::Errno;
use crate::vma::VmFlags;

/// `MLOCK_ONFAULT` for mlock2.
pub const MLOCK_ONFAULT: u32 = 1;
/// `MCL_CURRENT`: lock everything mapped now.
pub const MCL_CURRENT: u32 = 1;
/// `MCL_FUTURE`: lock everything mapped from now on (`mm->def_flags`).
pub const MCL_FUTURE: u32 = 2;
/// `MCL_ONFAULT`: lock pages as they are faulted in.
pub const MCL_ONFAULT: u32 = 4;

impl AddressSpace {
    /// `mlock(addr, len)`: `do_mlock(start, len, VM_LOCKED)`.
    pub fn sys_mlock(&mut self, addr: u64, len: u64) -> Result<u64, Errno> {
        self.do_mlock(addr, len, VmFlags::LOCKED)
    }

    /// `mlock2(addr, len, flags)`: unknown flags are refused before anything else.
    /// `flags` is a C `int`: only its low 32 bits count.
    pub fn sys_mlock2(&mut self, addr: u64, len: u64, flags: u64) -> Result<u64, Errno> {
        let flags = flags as u32;
        if flags & !MLOCK_ONFAULT != 0 {
            return Err(Errno::EINVAL);
        }
        let mut vm_flags = VmFlags::LOCKED;
        if flags & MLOCK_ONFAULT != 0 {
            vm_flags |= VmFlags::LOCKONFAULT;
        }
        self.do_mlock(addr, len, vm_flags)
    }

    /// `munlock(addr, len)`: no permission or limit checks, only the walk.
    pub fn sys_munlock(&mut self, addr: u64, len: u64) -> Result<u64, Errno> {
        let len = page_align_wrapping(len.wrapping_add(addr & !PAGE_MASK));
        let start = addr & PAGE_MASK;
        self.apply_vma_lock_flags(start, len, VmFlags::empty())?;
        Ok(0)
    }

    /// `mlockall(flags)`. `flags` is a C `int`.
    pub fn sys_mlockall(&mut self, flags: u64) -> Result<u64, Errno> {
        let flags = flags as u32;
        if flags == 0
            || flags & !(MCL_CURRENT | MCL_FUTURE | MCL_ONFAULT) != 0
            || flags == MCL_ONFAULT
        {
            return Err(Errno::EINVAL);
        }
        if !self.can_do_mlock() {
            return Err(Errno::EPERM);
        }
        let lock_limit = self.cfg.rlimit_memlock >> PAGE_SHIFT;
        if flags & MCL_CURRENT != 0 && self.total_vm() > lock_limit && !self.cfg.cap_ipc_lock {
            return Err(Errno::ENOMEM);
        }
        self.apply_mlockall_flags(flags);
        if flags & MCL_CURRENT != 0 {
            // mm_populate(0, TASK_SIZE): errors ignored.
            let _ = self.populate_locked(0, self.cfg.task_size, true);
        }
        Ok(0)
    }

    /// `munlockall()`: `apply_mlockall_flags(0)`, which also clears `def_flags`.
    pub fn sys_munlockall(&mut self) -> Result<u64, Errno> {
        self.apply_mlockall_flags(0);
        Ok(0)
    }

    /// `do_mlock()` of mm/mlock.c.
    fn do_mlock(&mut self, addr: u64, len: u64, flags: VmFlags) -> Result<u64, Errno> {
        if !self.can_do_mlock() {
            return Err(Errno::EPERM);
        }
        // `len = PAGE_ALIGN(len + offset_in_page(start))`, wrapping as C does: mlock(p+1, 0)
        // locks one page, mlock(p, SIZE_MAX) locks nothing.
        let len = page_align_wrapping(len.wrapping_add(addr & !PAGE_MASK));
        let start = addr & PAGE_MASK;
        let lock_limit = self.cfg.rlimit_memlock >> PAGE_SHIFT;
        let mut locked = (len >> PAGE_SHIFT).wrapping_add(self.locked_vm());
        if locked > lock_limit && !self.cfg.cap_ipc_lock {
            // Pages already locked inside the range do not count twice
            // (count_mm_mlocked_page_nr()).
            locked = locked.wrapping_sub(self.count_mlocked_pages(start, len));
        }
        if locked > lock_limit && !self.cfg.cap_ipc_lock {
            return Err(Errno::ENOMEM);
        }
        self.apply_vma_lock_flags(start, len, flags)?;
        // __mm_populate(start, len, 0), then __mlock_posix_error_return().
        match self.populate_locked(start, len, false) {
            Ok(()) => Ok(0),
            Err(Errno::EFAULT) => Err(Errno::ENOMEM),
            Err(Errno::ENOMEM) => Err(Errno::EAGAIN),
            Err(e) => Err(e),
        }
    }

    /// `count_mm_mlocked_page_nr()`: pages of VM_LOCKED VMAs inside `[start, start+len)`,
    /// the end clamped at 2^64 - 1.
    fn count_mlocked_pages(&self, start: u64, len: u64) -> u64 {
        let end = start.saturating_add(len);
        self.vmas
            .overlapping(start, end)
            .filter(|v| v.flags.contains(VmFlags::LOCKED))
            .map(|v| (v.end.min(end) - v.start.max(start)) >> PAGE_SHIFT)
            .sum()
    }

    /// `apply_vma_lock_flags()`: sets the lock bits on every VMA part in `[start, start+len)`.
    /// A range that starts in a hole, or has one, fails with ENOMEM; parts before the hole
    /// keep their new flags.
    pub(crate) fn apply_vma_lock_flags(
        &mut self,
        start: u64,
        len: u64,
        flags: VmFlags,
    ) -> Result<(), Errno> {
        let end = start.wrapping_add(len);
        if end < start {
            return Err(Errno::EINVAL);
        }
        if end == start {
            return Ok(());
        }
        let Some(first) = self.vmas.find(start) else {
            return Err(Errno::ENOMEM);
        };
        let mut tmp = first.start;
        let mut nstart = start;
        while let Some(vma) = self.vmas.find_next(nstart).filter(|v| v.start < end) {
            if vma.start != tmp {
                return Err(Errno::ENOMEM);
            }
            let (vm_start, vm_end) = (vma.start, vma.end);
            let newflags = (vma.flags - VM_LOCKED_MASK) | flags;
            let seg_end = vm_end.min(end);
            tmp = self.mlock_fixup(vm_start, nstart, seg_end, newflags)?;
            nstart = tmp;
        }
        if tmp < end {
            return Err(Errno::ENOMEM);
        }
        Ok(())
    }

    /// `mlock_fixup()`: applies `newflags` to `[start, end)` of the VMA at `vma_start`.
    /// Returns the end of the VMA that now holds `start` (Linux's `vma_iter_end()`).
    fn mlock_fixup(
        &mut self,
        vma_start: u64,
        start: u64,
        end: u64,
        newflags: VmFlags,
    ) -> Result<u64, Errno> {
        let vma = self.vmas.find(vma_start).ok_or(Errno::ENOMEM)?;
        if newflags == vma.flags || !vma_supports_mlock(vma.flags) {
            // Don't set VM_LOCKED or VM_LOCKONFAULT and don't count.
            return Ok(vma.end);
        }
        let now = self.vma_modify(vma_start, start, end, &mut |v| v.flags = newflags)?;
        Ok(self.vmas.find(now).map_or(end, |v| v.end))
    }

    /// `apply_mlockall_flags()`: updates `def_flags`, then (for MCL_CURRENT, or for
    /// munlockall) sets the lock bits of every VMA; split failures are ignored.
    fn apply_mlockall_flags(&mut self, flags: u32) {
        self.def_flags -= VM_LOCKED_MASK;
        if flags & MCL_FUTURE != 0 {
            self.def_flags |= VmFlags::LOCKED;
            if flags & MCL_ONFAULT != 0 {
                self.def_flags |= VmFlags::LOCKONFAULT;
            }
            if flags & MCL_CURRENT == 0 {
                return;
            }
        }
        let mut to_add = VmFlags::empty();
        if flags & MCL_CURRENT != 0 {
            to_add |= VmFlags::LOCKED;
            if flags & MCL_ONFAULT != 0 {
                to_add |= VmFlags::LOCKONFAULT;
            }
        }
        let mut cursor = 0u64;
        while let Some(vma) = self.vmas.find_next(cursor) {
            let (vm_start, vm_end) = (vma.start, vma.end);
            let newflags = (vma.flags - VM_LOCKED_MASK) | to_add;
            cursor = self.mlock_fixup(vm_start, vm_start, vm_end, newflags).unwrap_or(vm_end);
        }
    }

    /// `__mm_populate(start, len, ignore_errors)`: faults in the VMAs of a range the way
    /// `populate_vma_page_range()` does. VM_IO/VM_PFNMAP and VM_LOCKONFAULT VMAs are
    /// skipped; an inaccessible (PROT_NONE) VMA cannot be faulted (EFAULT); a private
    /// writable VMA is write-faulted, which gives it an anon_vma.
    pub(crate) fn populate_locked(
        &mut self,
        start: u64,
        len: u64,
        ignore_errors: bool,
    ) -> Result<(), Errno> {
        let end = start.saturating_add(len);
        let mut nstart = start;
        while nstart < end {
            let Some(vma) = self.vmas.find_next(nstart).filter(|v| v.start < end) else {
                break;
            };
            let (vm_start, vm_end, flags) = (vma.start, vma.end, vma.flags);
            let from = nstart.max(vm_start);
            nstart = vm_end.min(end);
            if flags.intersects(VmFlags::IO | VmFlags::PFNMAP) {
                continue;
            }
            if flags.contains(VmFlags::LOCKONFAULT) {
                continue;
            }
            if flags.access().is_empty() {
                if ignore_errors {
                    continue;
                }
                return Err(Errno::EFAULT);
            }
            // A guard marker or a shmem page past the object's end: the pages before it are
            // faulted in, then `__get_user_pages()` fails with EFAULT.
            let write = flags & (VmFlags::WRITE | VmFlags::SHARED) == VmFlags::WRITE;
            if let Err(e) = self.populate_vma(vma, from, nstart, write) {
                if ignore_errors {
                    continue;
                }
                return Err(e);
            }
        }
        Ok(())
    }
}

/// `vma_supports_mlock()`: special mappings (IO, PFN, mixed, dont-expand) and droppable
/// ones are never locked (mlock succeeds but leaves them as they are).
fn vma_supports_mlock(flags: VmFlags) -> bool {
    !flags.intersects(VM_SPECIAL | VmFlags::DROPPABLE | VmFlags::HUGETLB)
}
