//! `brk`: the brk syscall of mm/mmap.c and `do_brk_flags()` of mm/vma.c (Linux 6.18).

use super::AddressSpace;
use crate::addr::{page_align_wrapping, PAGE_SHIFT, PAGE_SIZE};
use crate::config::RLIM_INFINITY;
use crate::errno::Errno;
use crate::vma::{Backing, VmFlags, Vma};

impl AddressSpace {
    /// `brk(addr)`: returns the new break, or the old one on failure (never an errno).
    ///
    /// Fails below `start_brk` (no CONFIG_COMPAT_BRK), over RLIMIT_DATA
    /// (`check_data_rlimit()`), outside TASK_SIZE or below `mmap_min_addr`
    /// (`check_brk_limits()`), over RLIMIT_MEMLOCK after `mlockall(MCL_FUTURE)`, when the
    /// grown heap would come closer than one page (plus the guard gap of a VM_GROWSDOWN
    /// mapping) to the next VMA, or when `do_brk_flags()` fails. The value is stored
    /// unaligned; the heap VMA ends at its page-aligned value. Shrinking unmaps, across
    /// several VMAs if needed.
    pub fn sys_brk(&mut self, brk: u64) -> u64 {
        self.stats.brk_calls += 1;
        let origbrk = self.brk;
        match self.do_brk_syscall(brk) {
            Ok(()) => {
                self.after_change();
                brk
            }
            Err(()) => {
                self.brk = origbrk;
                self.after_change();
                origbrk
            }
        }
    }

    fn do_brk_syscall(&mut self, brk: u64) -> Result<(), ()> {
        let min_brk = self.start_brk;
        if brk < min_brk {
            return Err(());
        }
        // check_data_rlimit()
        if self.cfg.rlimit_data < RLIM_INFINITY {
            let used = brk
                .wrapping_sub(self.start_brk)
                .wrapping_add(self.end_data.wrapping_sub(self.start_data));
            if used > self.cfg.rlimit_data {
                return Err(());
            }
        }
        let newbrk = page_align_wrapping(brk);
        let oldbrk = page_align_wrapping(self.brk);
        if oldbrk == newbrk {
            self.brk = brk;
            return Ok(());
        }
        if brk <= self.brk {
            // Always allow shrinking brk: the first VMA in [newbrk, oldbrk) must start
            // below oldbrk.
            let ok = self.vmas.find_next(newbrk).is_some_and(|v| v.start < oldbrk);
            if !ok {
                return Err(());
            }
            self.brk = brk;
            self.do_munmap(newbrk, oldbrk).map_err(|_| ())?;
            return Ok(());
        }
        // check_brk_limits(): get_unmapped_area(NULL, oldbrk, len, 0, MAP_FIXED) and
        // mlock_future_ok().
        let len = newbrk.wrapping_sub(oldbrk);
        self.get_unmapped_area(oldbrk, len, 0, super::merge::MAP_FIXED, false).map_err(|_| ())?;
        if !self.mlock_future_ok(self.def_flags, len) {
            return Err(());
        }
        // The next VMA must stay at least a page (plus its guard gap) above the new break.
        if let Some(next) = self.vmas.find_next(oldbrk) {
            let limit = newbrk.saturating_add(PAGE_SIZE).saturating_add(self.cfg.stack_guard_gap);
            if next.start < limit
                && newbrk.saturating_add(PAGE_SIZE) > next.start_gap(self.cfg.stack_guard_gap)
            {
                return Err(());
            }
        }
        self.do_brk_flags(oldbrk, len).map_err(|_| ())?;
        self.brk = brk;
        if self.def_flags.contains(VmFlags::LOCKED) {
            self.populate_range(oldbrk, newbrk);
        }
        Ok(())
    }

    /// `do_brk_flags()`: map `[addr, addr+len)` as heap, expanding the VMA just below (the
    /// brk VMA found by `vma_prev_limit(start_brk)`) when `vma_merge_new_range()` with
    /// `just_expand` allows — which it does not when that VMA's anon_vma was inherited
    /// through fork.
    fn do_brk_flags(&mut self, addr: u64, len: u64) -> Result<(), Errno> {
        // VM_DATA_DEFAULT_FLAGS | VM_ACCOUNT | def_flags
        let flags = VmFlags::READ
            | VmFlags::WRITE
            | VmFlags::MAYREAD
            | VmFlags::MAYWRITE
            | VmFlags::MAYEXEC
            | VmFlags::ACCOUNT
            | self.def_flags;
        let pages = len >> PAGE_SHIFT;
        if !self.may_expand_vm(flags, pages) {
            return Err(Errno::ENOMEM);
        }
        if self.vmas.len() > self.cfg.max_map_count {
            return Err(Errno::ENOMEM);
        }
        if !self.vm_enough_memory(pages) {
            return Err(Errno::ENOMEM);
        }
        let vma = Vma {
            start: addr,
            end: addr + len,
            flags,
            pgoff: addr >> PAGE_SHIFT,
            backing: Backing::Anonymous,
            anon_vma: Default::default(),
            name: None,
        };
        // Only a VMA at or above start_brk may be expanded (vma_prev_limit()).
        let brkvma_ok =
            self.vmas.find_prev(addr).is_some_and(|p| p.end == addr && p.end > self.start_brk);
        if brkvma_ok {
            self.insert_vma_merged_inner(vma, true)?;
        } else {
            self.idx_insert(vma).map_err(|_| Errno::ENOMEM)?;
        }
        Ok(())
    }
}
