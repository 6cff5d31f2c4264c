//! The VMA-set primitives every syscall goes through, and the per-`mm` counters they keep.
//!
//! Linux updates `total_vm`, `data_vm`, `stack_vm`, `exec_vm` (`vm_stat_account()` in
//! mm/mmap.c), `locked_vm` and the overcommit charge (`vm_acct_memory()`) by hand at every
//! place that maps, unmaps or changes flags. Each of those updates keeps the counter equal to
//! a sum over the current VMAs; here the sums are kept by the only four functions that change
//! the VMA set ([`AddressSpace::idx_insert`], [`AddressSpace::idx_remove`],
//! [`AddressSpace::idx_set_range`], [`AddressSpace::idx_update`]; splits change no sum), so
//! they cannot drift and cost O(1) per change. Code outside this file must change VMAs only
//! through these (or through the merge engine built on them).

use super::AddressSpace;
use crate::addr::PAGE_SHIFT;
use crate::vma::index::Overlap;
use crate::vma::{VmFlags, Vma};

/// Page counters of one address space (fields of Linux's `mm_struct`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct VmCounters {
    /// `total_vm`: all mapped pages.
    pub(crate) total_vm: u64,
    /// `data_vm`: private writable non-stack pages (`is_data_mapping()`).
    pub(crate) data_vm: u64,
    /// `stack_vm`: VM_GROWSDOWN pages (`is_stack_mapping()`).
    pub(crate) stack_vm: u64,
    /// `exec_vm`: executable, non-writable, non-stack pages (`is_exec_mapping()`).
    pub(crate) exec_vm: u64,
    /// Pages of VM_ACCOUNT mappings (this space's share of `vm_committed_as`).
    pub(crate) committed: u64,
}

/// `VM_STACK` on x86-64.
const VM_STACK: VmFlags = VmFlags::GROWSDOWN;

/// `is_data_mapping()` (mm/internal.h): private, writable, not a stack.
pub(crate) fn is_data_mapping(flags: VmFlags) -> bool {
    flags & (VmFlags::WRITE | VmFlags::SHARED | VM_STACK) == VmFlags::WRITE
}

/// `is_exec_mapping()`.
fn is_exec_mapping(flags: VmFlags) -> bool {
    flags & (VmFlags::EXEC | VmFlags::WRITE | VM_STACK) == VmFlags::EXEC
}

/// `is_stack_mapping()`.
fn is_stack_mapping(flags: VmFlags) -> bool {
    flags.contains(VM_STACK)
}

impl AddressSpace {
    /// `vm_stat_account()` plus the locked and committed sums, for `pages` pages with
    /// `flags` entering (`add`) or leaving the space.
    fn account(&mut self, flags: VmFlags, pages: u64, add: bool) {
        let upd = |c: &mut u64| {
            *c = if add { c.wrapping_add(pages) } else { c.wrapping_sub(pages) };
        };
        upd(&mut self.acct.total_vm);
        if is_exec_mapping(flags) {
            upd(&mut self.acct.exec_vm);
        } else if is_stack_mapping(flags) {
            upd(&mut self.acct.stack_vm);
        } else if is_data_mapping(flags) {
            upd(&mut self.acct.data_vm);
        }
        if flags.contains(VmFlags::LOCKED) {
            upd(&mut self.locked_vm);
        }
        if flags.contains(VmFlags::ACCOUNT) {
            upd(&mut self.acct.committed);
        }
    }

    /// Inserts `vma` as is (no merging) and accounts it.
    pub(crate) fn idx_insert(&mut self, vma: Vma) -> Result<(), Overlap> {
        let (flags, pages) = (vma.flags, vma.pages());
        self.vmas.insert(vma)?;
        self.account(flags, pages, true);
        Ok(())
    }

    /// Removes the VMA starting at `start` and un-accounts it.
    pub(crate) fn idx_remove(&mut self, start: u64) -> Option<Vma> {
        let vma = self.vmas.remove(start)?;
        self.account(vma.flags, vma.pages(), false);
        Some(vma)
    }

    /// Moves the bounds of the VMA at `start` to `[new_start, new_end)` (into free space or
    /// shrinking). `vm_pgoff` is NOT adjusted: callers moving `start` set it themselves
    /// (through [`AddressSpace::idx_update`]).
    pub(crate) fn idx_set_range(
        &mut self,
        start: u64,
        new_start: u64,
        new_end: u64,
    ) -> Result<(), Overlap> {
        let (flags, old_pages) = match self.vmas.find(start) {
            Some(v) if v.start == start => (v.flags, v.pages()),
            _ => return Err(Overlap),
        };
        self.vmas.set_range(start, new_start, new_end)?;
        self.account(flags, old_pages, false);
        self.account(flags, (new_end - new_start) >> PAGE_SHIFT, true);
        Ok(())
    }

    /// [`AddressSpace::idx_set_range`] for a caller that already knows the VMA's flags and
    /// current length (saves a lookup on the merge paths).
    pub(crate) fn idx_set_range_known(
        &mut self,
        start: u64,
        flags: VmFlags,
        old_len: u64,
        new_start: u64,
        new_end: u64,
    ) -> Result<(), Overlap> {
        self.vmas.set_range(start, new_start, new_end)?;
        self.account(flags, old_len >> PAGE_SHIFT, false);
        self.account(flags, (new_end - new_start) >> PAGE_SHIFT, true);
        Ok(())
    }

    /// Changes the VMA at `start` in place (flags, pgoff, anon_vma, name, backing — never its
    /// range) and re-accounts it. Returns false if there is no VMA at `start`.
    pub(crate) fn idx_update(&mut self, start: u64, f: impl FnOnce(&mut Vma)) -> bool {
        let Some(v) = self.vmas.get_mut(start) else {
            return false;
        };
        let (old_flags, pages, end) = (v.flags, v.pages(), v.end);
        f(v);
        // Never let a caller move the range through here.
        v.start = start;
        v.end = end;
        let new_flags = v.flags;
        if new_flags != old_flags {
            self.account(old_flags, pages, false);
            self.account(new_flags, pages, true);
        }
        true
    }

    /// `__split_vma()` without the map_count check (callers do the check Linux does at their
    /// call site): `[start, at)` and `[at, end)`, the upper part's pgoff advanced.
    pub(crate) fn idx_split(&mut self, start: u64, at: u64) -> Result<(), Overlap> {
        self.vmas.split(start, at)?;
        self.stats.splits += 1;
        Ok(())
    }

    /// Recomputes every counter from the VMA list (O(n)); for invariant checks.
    pub(crate) fn recompute_counters(&self) -> (VmCounters, u64) {
        let mut c = VmCounters::default();
        let mut locked = 0;
        for v in self.vmas.iter() {
            let p = v.pages();
            c.total_vm += p;
            if is_exec_mapping(v.flags) {
                c.exec_vm += p;
            } else if is_stack_mapping(v.flags) {
                c.stack_vm += p;
            } else if is_data_mapping(v.flags) {
                c.data_vm += p;
            }
            if v.flags.contains(VmFlags::LOCKED) {
                locked += p;
            }
            if v.flags.contains(VmFlags::ACCOUNT) {
                c.committed += p;
            }
        }
        (c, locked)
    }
}
