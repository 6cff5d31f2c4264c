//! The page layer of an address space: construction, the fault entry point
//! (`do_user_addr_fault()` → `lock_mm_and_find_vma()` → `access_error()` →
//! `handle_mm_fault()`), stack growth, fork of the page tables and exit.

use alloc::boxed::Box;

use super::AddressSpace;
use crate::addr::VirtAddr;
use crate::config::MmConfig;
use crate::errno::Errno;
use crate::fault::{Access, FaultError, FaultOutcome, PageLayer};
use crate::platform::Asid;
use crate::vma::VmFlags;

/// x86's `access_error()` for the VMA's flags: a store needs VM_WRITE; a load any access bit
/// (`vma_is_accessible()`); an instruction fetch VM_EXEC (Linux maps the page and then takes
/// a protection fault on the NX bit: the same SEGV_ACCERR).
fn access_error(flags: VmFlags, access: Access) -> bool {
    match access {
        Access::Write => !flags.contains(VmFlags::WRITE),
        Access::Read => flags.access().is_empty(),
        Access::Exec => !flags.contains(VmFlags::EXEC),
    }
}

impl AddressSpace {
    /// An empty address space whose pages live in `layer` (a [`crate::fault::Pages`] over
    /// the kernel's frame allocator, page cache and TLB).
    pub fn with_pages(cfg: MmConfig, layer: Box<dyn PageLayer>) -> Self {
        let mut s = AddressSpace::new(cfg);
        s.pages = Some(layer);
        s
    }

    /// The page layer, if any.
    pub fn pages(&self) -> Option<&dyn PageLayer> {
        self.pages.as_deref()
    }

    /// Handles a user page fault at `addr` by `access` on `cpu`, under a shared borrow
    /// (mmap_lock held for read), as `do_user_addr_fault()` does:
    ///
    /// - no VMA at or above `addr`, or a gap below a VMA that does not grow down:
    ///   SEGV_MAPERR; a gap below a VM_GROWSDOWN VMA: [`FaultError::NeedsWriteLock`] (call
    ///   [`AddressSpace::expand_stack`] with an exclusive borrow, then retry);
    /// - the VMA forbids the access (`access_error()`): SEGV_ACCERR;
    /// - a guard marker (MADV_GUARD_INSTALL): `VM_FAULT_SIGSEGV`, reported as SEGV_MAPERR
    ///   (`bad_area_nosemaphore()`); a shmem page past the object's end: SIGBUS;
    /// - a write to a private mapping first gets the VMA its anon_vma
    ///   (`anon_vma_prepare()`, through the set-once cell);
    /// - then the page layer resolves it ([`crate::fault::Pages::fault`]).
    ///
    /// Without a page layer only the VMA effects happen and the outcome is `Spurious`.
    pub fn handle_fault(
        &self,
        addr: u64,
        access: Access,
        cpu: usize,
    ) -> Result<FaultOutcome, FaultError> {
        let Some(vma) = self.vmas.find_next(addr) else {
            return Err(FaultError::SegvMapErr);
        };
        if addr < vma.start {
            return Err(if vma.flags.contains(VmFlags::GROWSDOWN) {
                FaultError::NeedsWriteLock
            } else {
                FaultError::SegvMapErr
            });
        }
        if access_error(vma.flags, access) {
            return Err(FaultError::SegvAccErr);
        }
        if self.guards.first_in(addr, addr + 1).is_some() {
            return Err(FaultError::SegvMapErr);
        }
        if self.first_unfaultable(vma, addr, addr + 1).is_some() {
            return Err(FaultError::SigBus);
        }
        if access == Access::Write && !vma.flags.contains(VmFlags::SHARED) {
            self.anon_vma_prepare(vma.start);
        }
        match &self.pages {
            Some(p) => p.fault(vma, VirtAddr(addr), access, cpu),
            None => Ok(FaultOutcome::Spurious),
        }
    }

    /// Linux's `expand_stack()` (6.5+, mmap_lock held for write): grows the VM_GROWSDOWN VMA
    /// above `addr` down to `addr`'s page (`expand_downwards()`: the stack guard gap above
    /// an accessible neighbour, RLIMIT_STACK / RLIMIT_AS / RLIMIT_MEMLOCK and overcommit as
    /// `acct_stack_growth()` checks them). SEGV_MAPERR when it cannot grow; `Ok` also when
    /// `addr` is already mapped (another thread grew it).
    pub fn expand_stack(&mut self, addr: u64) -> Result<(), FaultError> {
        let Some(vma) = self.vmas.find_next(addr) else {
            return Err(FaultError::SegvMapErr);
        };
        if vma.start <= addr {
            return Ok(());
        }
        let vma = vma.clone();
        self.expand_downwards(&vma, addr).map_err(|_| FaultError::SegvMapErr)
    }

    /// `fork()` with the page tables: the VMAs as [`AddressSpace::fork`] copies them, and a
    /// child page layer tagged `child_asid` into which every copied VMA's pages are forked
    /// (`copy_page_range()`: COW for private mappings, shared frames for shared ones;
    /// VM_DONTCOPY and VM_WIPEONFORK VMAs and those `vma_needs_copy()` leaves to faults are
    /// skipped). ENOMEM if a table or the child's root could not be allocated: the partial
    /// child is torn down and the parent keeps its (now COW-marked) pages, as in Linux.
    pub fn try_fork(&mut self, child_asid: Asid) -> Result<AddressSpace, Errno> {
        let mut child = self.fork_vmas();
        if let Some(p) = self.pages.as_mut() {
            let mut cp = p.new_child(child_asid)?;
            for v in self.vmas.iter() {
                if let Err(e) = p.fork_into(&mut *cp, v) {
                    cp.teardown();
                    return Err(e);
                }
            }
            child.pages = Some(cp);
        }
        Ok(child)
    }

    /// `exit_mmap()`: tears the page layer down (every frame put, dirty shared file pages
    /// written back, the tables freed, the ASID flushed). Dropping the space does the same.
    pub fn exit(self) {
        drop(self);
    }
}

impl Drop for AddressSpace {
    fn drop(&mut self) {
        if let Some(p) = self.pages.take() {
            p.teardown();
        }
    }
}
