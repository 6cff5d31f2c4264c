//! Copying an address space for fork: `dup_mmap()` (mm/mmap.c in 6.18) and
//! `anon_vma_fork()` (mm/rmap.c).

use core::sync::atomic::{AtomicU64, Ordering};

use super::merge::VM_LOCKED_MASK;
use super::AddressSpace;
use crate::vma::{AnonVma, VmFlags};

impl AddressSpace {
    /// The child's address space after `fork()`.
    ///
    /// - VM_DONTCOPY (MADV_DONTFORK) VMAs are not copied.
    /// - VM_LOCKED / VM_LOCKONFAULT are cleared (`vm_flags_clear(tmp, VM_LOCKED_MASK)`), so
    ///   the child's `locked_vm` is 0; `def_flags` keeps only VM_NOHUGEPAGE
    ///   (`VM_INIT_DEF_MASK`), so MCL_FUTURE is not inherited.
    /// - VM_WIPEONFORK VMAs keep range and flags but get no anon_vma (they read zeros).
    /// - Guard markers are copied, except in VM_WIPEONFORK VMAs.
    /// - A VMA whose parent had an anon_vma gets a fresh one of its own, chained to the
    ///   parent's (`anon_vma_fork()`): `chain_inherited` is set, which blocks merges with
    ///   VMAs that have none (`is_mergeable_anon_vma()`).
    ///
    /// Takes `&mut self` because Linux holds the parent's mmap_lock for write in
    /// `dup_mmap()`; the parent is not changed.
    ///
    /// # Panics
    /// If this space has a page layer: its child needs an ASID of its own, use
    /// [`AddressSpace::try_fork`].
    pub fn fork(&mut self) -> AddressSpace {
        assert!(self.pages.is_none(), "a space with a page layer is forked with try_fork");
        self.fork_vmas()
    }

    /// The VMA half of fork (everything [`AddressSpace::fork`] documents).
    pub(crate) fn fork_vmas(&mut self) -> AddressSpace {
        let mut child = AddressSpace::new(self.cfg.clone());
        child.start_brk = self.start_brk;
        child.brk = self.brk;
        child.start_stack = self.start_stack;
        child.start_data = self.start_data;
        child.end_data = self.end_data;
        child.def_flags = self.def_flags & VmFlags::NOHUGEPAGE;
        child.next_id = AtomicU64::new(self.next_id.load(Ordering::Relaxed));
        for v in self.vmas.iter() {
            if v.flags.contains(VmFlags::DONTCOPY) {
                continue;
            }
            // Guard markers are copied with the page tables, which VM_WIPEONFORK VMAs do
            // not get (`copy_page_range()` is skipped for them).
            if !v.flags.contains(VmFlags::WIPEONFORK) {
                for (a, b) in self.guards.parts(v.start, v.end) {
                    child.guards.insert(a, b);
                }
            }
            let mut c = v.clone();
            c.flags.remove(VM_LOCKED_MASK);
            c.set_anon_vma(if c.flags.contains(VmFlags::WIPEONFORK) {
                None
            } else {
                v.anon_vma().map(|_| AnonVma { id: child.alloc_id(), chain_inherited: true })
            });
            // The parent's VMAs never overlap, so this cannot fail.
            let _ = child.idx_insert(c);
        }
        child.after_change();
        child
    }
}
