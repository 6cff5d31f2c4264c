//! `AddressSpace`: one process's virtual address space (Linux's `mm_struct`) and its memory
//! syscalls, with Linux's argument checks, errno and VMA merge/split rules.
//!
//! # Locking
//! The kernel wraps an `AddressSpace` in its mmap_lock. Calls that change VMAs take
//! `&mut self` (mmap_lock held for write); the fault handler (simulator issue) takes `&self`
//! (mmap_lock held for read), so faults on different CPUs run in parallel and update page
//! tables under their own finer locks.
//!
//! What a fault changes in the VMA state is small and monotonic, as in Linux: the first
//! write to a private VMA assigns its anon_vma (`anon_vma_prepare()`, done under the
//! anon_vma lock + `page_table_lock` while mmap_lock is only read-held), and a fault below a
//! VM_GROWSDOWN VMA grows it (Linux 6.5+ upgrades to the write lock for that). Identities
//! come from an atomic counter (`alloc_id(&self)`) so they can be allocated under a shared
//! borrow, and `Vma::anon_vma` is a set-once cell (`AnonVmaCell`), so
//! [`AddressSpace::handle_fault`] does all of this under `&self`; stack growth returns
//! `FaultError::NeedsWriteLock` and [`AddressSpace::expand_stack`] does it under `&mut self`.
//! [`AddressSpace::write_fault`] is the VMA-only model of a write (used by replay and the
//! conformance tests); it takes `&mut self` because it also grows the stack.
//!
//! # Page layer
//! An optional `Box<dyn PageLayer>` (`pages.rs`, [`AddressSpace::with_pages`]) holds the
//! page tables and frames; the page-level hooks of `merge.rs` dispatch to it, and without
//! one they are no-ops (replay, VMA-only tests).
//!
//! # Layout of this module
//! One file per syscall (`mmap.rs`, `munmap.rs`, `mprotect.rs`, `mremap.rs`, `brk.rs`,
//! `madvise.rs`, `mlock.rs`, `msync.rs`); the merge and split rules, address selection and
//! the limits in one place (`merge.rs`); the only functions that change the VMA set, and
//! the counters they keep, in `accounting.rs`; `fork.rs` copies a space; `pages.rs` holds the
//! page layer, the fault entry point, stack growth, page-table fork and exit. Each `sys_*` entry point takes the raw `u64`
//! arguments a kernel receives, validates them in Linux's order, and then calls typed
//! internal operations.

mod accounting;
mod brk;
mod fork;
mod guard;
mod madvise;
mod merge;
mod mlock;
mod mmap;
mod mprotect;
mod mremap;
mod msync;
mod munmap;
mod pages;

use alloc::sync::Arc;

use crate::config::MmConfig;
use crate::stats::SpaceStats;
use crate::vma::index::VmaIndex;
use crate::vma::{FileObject, Vma};

/// How the file behind a descriptor can be mapped: what `mmap` sees after `fdget()`.
#[derive(Clone, Debug)]
pub struct OpenFile {
    /// The file.
    pub file: Arc<FileObject>,
    /// Opened with read access (FMODE_READ).
    pub readable: bool,
    /// Opened with write access (FMODE_WRITE).
    pub writable: bool,
    /// What kind of object it is; decides whether it can be mapped at all.
    pub kind: FileKind,
}

/// The kind of object behind a descriptor, as far as `mmap` cares.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FileKind {
    /// A regular file: mappable.
    Regular,
    /// `/dev/zero`: MAP_SHARED gives a new shmem object, MAP_PRIVATE anonymous memory.
    DevZero,
    /// A pipe, socket, directory or device without `mmap` (`ENODEV`).
    NotMappable,
    /// An `O_PATH` descriptor (`EBADF`).
    Path,
}

/// The process's descriptor table, as `mmap` needs it.
pub trait FdTable {
    /// The open file behind `fd`, or `None` if `fd` is not open (EBADF).
    fn get(&self, fd: i32) -> Option<OpenFile>;
}

/// A descriptor table with nothing open; for anonymous-only callers.
#[derive(Clone, Copy, Debug, Default)]
pub struct NoFiles;

impl FdTable for NoFiles {
    fn get(&self, _fd: i32) -> Option<OpenFile> {
        None
    }
}

/// One process's address space.
#[derive(Debug)]
pub struct AddressSpace {
    /// Tunables (sysctls, rlimits, capabilities).
    pub(crate) cfg: MmConfig,
    /// The VMAs.
    pub(crate) vmas: VmaIndex,
    /// `mm->start_brk`: where the heap starts.
    pub(crate) start_brk: u64,
    /// `mm->brk`: the current break, as user space last set it (may be unaligned).
    pub(crate) brk: u64,
    /// `mm->start_stack`: the initial stack pointer; the VMA holding it is `[stack]`.
    pub(crate) start_stack: u64,
    /// `mm->def_flags`: VM_LOCKED (| VM_LOCKONFAULT) after `mlockall(MCL_FUTURE)`.
    pub(crate) def_flags: crate::vma::VmFlags,
    /// `mm->locked_vm` in pages. Maintained automatically by the VMA-set primitives of
    /// `accounting.rs` (it always equals the pages of VM_LOCKED VMAs, which is what Linux's
    /// incremental updates in mmap/mlock_fixup/munmap/mremap amount to): never adjust by hand.
    pub(crate) locked_vm: u64,
    /// Pages Linux's `mm->locked_vm` counts beyond the VM_LOCKED VMAs: mremap with
    /// MREMAP_DONTUNMAP clears VM_LOCKED on the source without uncharging it
    /// (`dontunmap_complete()`: "we won't unmap we don't need to touch locked_vm"), so
    /// VmLck stays inflated. Added by mremap through [`AddressSpace::locked_vm_skew_add`].
    pub(crate) locked_vm_skew: u64,
    /// `total_vm`/`data_vm`/`stack_vm`/`exec_vm` and committed (VM_ACCOUNT) pages, kept
    /// incrementally by the same primitives.
    pub(crate) acct: accounting::VmCounters,
    /// `mm->start_data` / `mm->end_data`, for brk's RLIMIT_DATA check (`check_data_rlimit`).
    pub(crate) start_data: u64,
    /// See `start_data`.
    pub(crate) end_data: u64,
    /// Source of fresh anon_vma and shmem identities. Ids only need to be unique within one
    /// space; a fork continues from the parent's counter, so ids inherited by the child
    /// never collide with ones it allocates later. Atomic so that the fault handler can
    /// allocate an anon_vma under a shared borrow (mmap_lock held for read).
    pub(crate) next_id: core::sync::atomic::AtomicU64,
    /// Counters.
    pub(crate) stats: SpaceStats,
    /// The pages holding guard markers (MADV_GUARD_INSTALL), see `guard.rs`.
    pub(crate) guards: guard::GuardSet,
    /// The page half (page tables, frames, RSS), if any: without one (replay, VMA-only
    /// tests) the page-level hooks of `merge.rs` are no-ops. See `pages.rs`.
    pub(crate) pages: Option<alloc::boxed::Box<dyn crate::fault::PageLayer>>,
}

impl AddressSpace {
    /// An empty address space.
    pub fn new(cfg: MmConfig) -> Self {
        let vmas = VmaIndex::new(cfg.stack_guard_gap);
        AddressSpace {
            cfg,
            vmas,
            start_brk: 0,
            brk: 0,
            start_stack: 0,
            def_flags: crate::vma::VmFlags::empty(),
            locked_vm: 0,
            locked_vm_skew: 0,
            acct: accounting::VmCounters::default(),
            start_data: 0,
            end_data: 0,
            next_id: core::sync::atomic::AtomicU64::new(1),
            stats: SpaceStats::default(),
            guards: guard::GuardSet::default(),
            pages: None,
        }
    }

    /// The tunables.
    pub fn config(&self) -> &MmConfig {
        &self.cfg
    }

    /// The VMAs, in address order.
    pub fn vmas(&self) -> &VmaIndex {
        &self.vmas
    }

    /// Number of VMAs (`mm->map_count`).
    pub fn map_count(&self) -> usize {
        self.vmas.len()
    }

    /// Counters.
    pub fn stats(&self) -> &SpaceStats {
        &self.stats
    }

    /// `(start_brk, brk)`.
    pub fn brk_range(&self) -> (u64, u64) {
        (self.start_brk, self.brk)
    }

    /// Sets the heap start and current break, as the ELF loader does at exec.
    pub fn set_brk_base(&mut self, start_brk: u64, brk: u64) {
        self.start_brk = start_brk;
        self.brk = brk;
    }

    /// The initial stack pointer (the VMA containing it is printed as `[stack]`).
    pub fn start_stack(&self) -> u64 {
        self.start_stack
    }

    /// Sets the initial stack pointer, as exec does.
    pub fn set_start_stack(&mut self, sp: u64) {
        self.start_stack = sp;
    }

    /// A fresh identity for an anon_vma or shmem object.
    pub(crate) fn alloc_id(&self) -> u64 {
        self.next_id.fetch_add(1, core::sync::atomic::Ordering::Relaxed)
    }

    /// Inserts a VMA exactly as given, without merging: for building an exec layout or
    /// seeding from a `/proc/<pid>/maps` snapshot.
    pub fn insert_vma_unmerged(&mut self, vma: Vma) -> Result<(), crate::errno::Errno> {
        if vma.start >= vma.end
            || !crate::addr::is_page_aligned(vma.start)
            || !crate::addr::is_page_aligned(vma.end)
        {
            return Err(crate::errno::Errno::EINVAL);
        }
        // Ids seeded from outside must not collide with ones allocated later.
        let mut top = 0;
        if let Some(a) = vma.anon_vma() {
            top = a.id;
        }
        if let crate::vma::Backing::Shmem { id, .. } = vma.backing {
            top = top.max(id);
        }
        self.next_id.fetch_max(top.saturating_add(1), core::sync::atomic::Ordering::Relaxed);
        self.idx_insert(vma).map_err(|_| crate::errno::Errno::EEXIST)?;
        self.after_change();
        Ok(())
    }

    /// Sets `mm->start_data`/`mm->end_data` (the ELF loader's data segment), used by brk's
    /// RLIMIT_DATA check.
    pub fn set_data_segment(&mut self, start_data: u64, end_data: u64) {
        self.start_data = start_data;
        self.end_data = end_data;
    }

    /// `mm->total_vm` in pages.
    pub fn total_vm(&self) -> u64 {
        self.acct.total_vm
    }

    /// `mm->data_vm` in pages (private writable non-stack mappings: VmData).
    pub fn data_vm(&self) -> u64 {
        self.acct.data_vm
    }

    /// `mm->stack_vm` in pages (VM_GROWSDOWN mappings: VmStk).
    pub fn stack_vm(&self) -> u64 {
        self.acct.stack_vm
    }

    /// `mm->exec_vm` in pages (executable, non-writable, non-stack mappings: VmExe+VmLib).
    pub fn exec_vm(&self) -> u64 {
        self.acct.exec_vm
    }

    /// `mm->locked_vm` in pages (VmLck): the VM_LOCKED VMAs plus Linux's MREMAP_DONTUNMAP
    /// over-count. Limit checks (`mlock_future_ok()`, mlock's) use this value, as Linux
    /// uses `mm->locked_vm`.
    pub fn locked_vm(&self) -> u64 {
        self.locked_vm.wrapping_add(self.locked_vm_skew)
    }

    /// Records locked pages that Linux keeps charged in `mm->locked_vm` although no VMA is
    /// VM_LOCKED any more (the source of an MREMAP_DONTUNMAP move of a locked VMA).
    #[allow(dead_code)] // for mremap (S2)
    pub(crate) fn locked_vm_skew_add(&mut self, pages: u64) {
        self.locked_vm_skew = self.locked_vm_skew.wrapping_add(pages);
    }

    /// Pages charged to overcommit accounting (VM_ACCOUNT mappings).
    pub fn committed_pages(&self) -> u64 {
        self.acct.committed
    }

    /// `mm->def_flags` (VM_LOCKED / VM_LOCKONFAULT after `mlockall(MCL_FUTURE)`).
    pub fn def_flags(&self) -> crate::vma::VmFlags {
        self.def_flags
    }

    /// Book-keeping after any change to the VMA set.
    pub(crate) fn after_change(&mut self) {
        let n = self.vmas.len() as u64;
        if n > self.stats.peak_vma_count {
            self.stats.peak_vma_count = n;
        }
        self.stats.mapped_bytes = self.acct.total_vm << crate::addr::PAGE_SHIFT;
    }
}
