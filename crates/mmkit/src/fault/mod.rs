//! The page half of an address space: page-fault handling (demand zero, zero page, file pages,
//! copy-on-write) and the page-table effects of VMA changes.
//!
//! [`Pages`] owns one address space's [`PageTable`], its [`Asid`], the set of CPUs that ran it
//! (Linux's `mm_cpumask`, the targets of its TLB shootdowns), its RSS counters
//! (`MM_ANONPAGES` / `MM_FILEPAGES` / `MM_SHMEMPAGES`) and its page-table page count
//! (`VmPTE`). It reaches the kernel's services through a [`Host`].
//!
//! # Locking
//!
//! [`Pages::fault`] runs under a *shared* borrow, as Linux's `handle_mm_fault()` runs with
//! `mmap_lock` held for read: several CPUs may fault in the same space at once. Every PTE
//! change on that path is one compare-exchange (installing into an empty slot, or
//! `replace_leaf` for COW), the equivalent of Linux's `pte_same()` re-check under the PTE
//! lock; a loser undoes its work and returns [`FaultOutcome::Retry`] (Linux returns 0 and the
//! access is simply re-executed). Frame reference and map counts are atomics in
//! [`PageMeta`]. VMA changes (`zap`, `protect`, `move_range`, `fork_into`, `teardown`) take
//! `&mut self`: the caller holds `mmap_lock` for write.
//!
//! # Frame ownership rules
//!
//! * Each PTE mapping a frame holds one reference (`refcount`) and one map count
//!   (`mapcount`), except the shared zero page, which is never counted (Linux's
//!   `vm_normal_page()` returns NULL for it: `pte_special`).
//! * Anonymous frames are tagged as Linux tags them: `mapping` has bit 0 set
//!   (`PAGE_MAPPING_ANON`), `index` is the linear page index, `SWAPBACKED` is set. MADV_FREE
//!   clears `SWAPBACKED` (Linux's lazy-free state: anonymous but not swap-backed).
//! * Page-cache frames belong to the [`FilePages`] implementation, which keeps its own
//!   reference; the page layer adds one per mapping and writes `mapping` / `index` to
//!   identify the object and page for writeback (bit 0 clear). Shmem pages get `SWAPBACKED`
//!   (Linux counts them in `MM_SHMEMPAGES` by that flag).
//! * A PTE in a private mapping that maps a frame this mapping does not own exclusively (the
//!   zero page, a page-cache page, an anonymous page shared after fork) carries the software
//!   `COW` bit and is read-only, so that [`PageTable::protect`] never makes it writable
//!   (Linux: `can_change_pte_writable()` / `PageAnonExclusive`).
//!
//! # TLB
//!
//! Every operation that removes or downgrades a translation flushes it on the CPUs of the
//! `mm_cpumask` *before* the old frame's reference is dropped (Linux's `mmu_gather`: pages are
//! freed only after `tlb_flush_mmu_tlbonly()`), so no CPU can reach a frame once it is reused.

mod layer;
mod ops;
mod stats;

pub use layer::PageLayer;

pub use stats::{PageStats, PSS_SHIFT};

use core::fmt;
use core::sync::atomic::{AtomicU64, Ordering};

use crate::addr::{Pfn, PhysAddr, VirtAddr, PAGE_SHIFT, PAGE_SIZE};
use crate::frame::{FrameAllocator, Gfp, GfpFlags, PageFlags, PageMeta};
use crate::paging::{
    Arch, Attrs, Flush, MapError, Mapping, OutOfMemory, PageSize, PageTable, PteFlags,
    ReplaceError, TableMemory,
};
use crate::platform::{Asid, CpuId, CpuMask, PhysAccess, TlbFlush};
use crate::vma::{Backing, VmFlags, Vma, SHMEM_SIZE_UNKNOWN};

/// `mapping` value of anonymous frames (Linux's `PAGE_MAPPING_ANON` bit, no anon_vma pointer:
/// mmkit has no reverse map yet).
pub const MAPPING_ANON: usize = 1;

/// A page-cache object: a regular file or a shmem object (which Linux also keeps in a page
/// cache, `shmem_get_folio()`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum FileId {
    /// A regular file ([`Backing::File`]'s `FileObject::id`).
    File(u64),
    /// A shmem object ([`Backing::Shmem`]'s `id`).
    Shmem(u64),
}

impl FileId {
    /// The `PageMeta::mapping` token the page layer stores in page-cache frames (bit 0 clear;
    /// bit 1 tells shmem from file).
    pub fn token(self) -> usize {
        match self {
            FileId::File(id) => (id as usize) << 2,
            FileId::Shmem(id) => ((id as usize) << 2) | 2,
        }
    }

    /// The object a token names, if it is a page-cache token.
    pub fn from_token(t: usize) -> Option<FileId> {
        if t == 0 || t & 1 != 0 {
            return None;
        }
        let id = (t >> 2) as u64;
        Some(if t & 2 != 0 { FileId::Shmem(id) } else { FileId::File(id) })
    }
}

/// Why the page cache could not provide a page.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FileError {
    /// The page lies at or beyond end of file (`filemap_fault()` → `VM_FAULT_SIGBUS`).
    BeyondEof,
    /// No memory for the page (`VM_FAULT_OOM`).
    OutOfMemory,
    /// The object is unknown or the read failed (`VM_FAULT_SIGBUS`).
    Io,
}

/// The kernel's page cache as the fault path needs it (Linux's `vm_ops->fault` =
/// `filemap_fault()` / `shmem_fault()`, plus `->writepage`).
pub trait FilePages {
    /// Finds page `index` of `file`, reading it (or, for shmem, allocating it zeroed) on a
    /// miss, and returns its frame with one extra reference for the caller
    /// (`filemap_get_folio()` + `folio_get()`). The cache keeps its own reference.
    fn get_page(&self, file: FileId, index: u64) -> Result<Pfn, FileError>;
    /// Size of `file` in bytes (`i_size_read()`), for SIGBUS past the end; `None` if unknown.
    fn size(&self, file: FileId) -> Option<u64>;
    /// Writes back the dirty page `index` of `file`, held in `pfn` (`->writepage`).
    fn writeback(&self, file: FileId, index: u64, pfn: Pfn);
}

/// What the page layer needs from the kernel.
///
/// The frame allocator is the concrete [`FrameAllocator`] rather than a trait: the fault
/// paths need its per-frame descriptors ([`PageMeta`]: refcount, mapcount, flags, mapping)
/// as much as alloc/free, and a trait would have to mirror that whole surface; the allocator
/// is already generic over the kernel's `PhysAccess` and `CpuId`, which the page layer uses
/// through it ([`FrameAllocator::phys`], [`FrameAllocator::cpu`]).
pub trait Host {
    /// How physical memory is reached.
    type Phys: PhysAccess;
    /// The current CPU.
    type Cpu: CpuId;
    /// TLB shootdowns.
    type Tlb: TlbFlush;
    /// The page cache.
    type Files: FilePages;
    /// The frame allocator (also the source of page-table frames).
    fn frames(&self) -> &FrameAllocator<Self::Phys, Self::Cpu>;
    /// TLB maintenance.
    fn tlb(&self) -> &Self::Tlb;
    /// The page cache.
    fn files(&self) -> &Self::Files;
    /// The shared zero page (Linux's `ZERO_PAGE(0)`): one zero-filled frame that the host
    /// allocates once and never frees while any [`Pages`] exists. It is never written and
    /// never counted in RSS or reference counts.
    fn zero_page(&self) -> Pfn;
}

impl<T: Host + ?Sized> Host for &T {
    type Phys = T::Phys;
    type Cpu = T::Cpu;
    type Tlb = T::Tlb;
    type Files = T::Files;
    #[inline]
    fn frames(&self) -> &FrameAllocator<Self::Phys, Self::Cpu> {
        (**self).frames()
    }
    #[inline]
    fn tlb(&self) -> &Self::Tlb {
        (**self).tlb()
    }
    #[inline]
    fn files(&self) -> &Self::Files {
        (**self).files()
    }
    #[inline]
    fn zero_page(&self) -> Pfn {
        (**self).zero_page()
    }
}

/// Page-table frames for one address space: taken from the host's frame allocator and
/// counted, so that `VmPTE` (Linux's `mm_pgtables_bytes`) is known in O(1).
pub struct TableMem<H> {
    host: H,
    tables: AtomicU64,
}

impl<H> fmt::Debug for TableMem<H> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TableMem").field("tables", &self.tables.load(Ordering::Relaxed)).finish()
    }
}

impl<H: Host> PhysAccess for TableMem<H> {
    #[inline]
    fn phys_to_ptr(&self, pa: PhysAddr) -> *mut u8 {
        self.host.frames().phys_to_ptr(pa)
    }
}

impl<H: Host> TableMemory for TableMem<H> {
    fn alloc_table(&self) -> Result<PhysAddr, OutOfMemory> {
        let pa = self.host.frames().alloc_table()?;
        self.tables.fetch_add(1, Ordering::Relaxed);
        Ok(pa)
    }
    unsafe fn free_table(&self, pa: PhysAddr) {
        self.tables.fetch_sub(1, Ordering::Relaxed);
        // SAFETY: forwarded; the page-table engine upholds the contract, and every table of
        // this space came from the same allocator through `alloc_table` above.
        unsafe { self.host.frames().free_table(pa) }
    }
}

/// The kind of access that faulted.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Access {
    /// A load.
    Read,
    /// A store.
    Write,
    /// An instruction fetch.
    Exec,
}

/// How a fault was resolved.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum FaultOutcome {
    /// The shared zero page was mapped read-only (anonymous read fault).
    ZeroPage,
    /// A new zeroed anonymous frame was mapped (`do_anonymous_page()`).
    NewAnon,
    /// A page-cache page was mapped (`do_read_fault()` / `do_shared_fault()`).
    FilePage,
    /// A private copy was made (`wp_page_copy()` or `do_cow_fault()`).
    CowCopied,
    /// The frame was this mapping's alone and was made writable in place
    /// (`wp_can_reuse_anon_folio()` / `wp_page_reuse()`, or `wp_page_shared()`).
    Reused,
    /// The translation already allowed the access (another CPU resolved it, or a stale TLB
    /// entry faulted); accessed/dirty bits were set as Linux's `handle_pte_fault()` does.
    Spurious,
    /// The PTE changed under the handler (a concurrent fault won); nothing was done and the
    /// access should simply be retried.
    Retry,
}

/// Why a fault could not be resolved: the signal the faulting thread gets, or OOM.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum FaultError {
    /// SIGSEGV / SEGV_MAPERR: no mapping at that address.
    SegvMapErr,
    /// SIGSEGV / SEGV_ACCERR: the mapping forbids the access.
    SegvAccErr,
    /// SIGBUS / BUS_ADRERR: past the end of the file or object.
    SigBus,
    /// `VM_FAULT_OOM`: no frame (the kernel runs its OOM path; GUP reports ENOMEM).
    OutOfMemory,
    /// Not a signal: the fault lies below a VM_GROWSDOWN VMA, and growing the stack needs
    /// mmap_lock held for write (Linux 6.5+ drops the read lock and calls `expand_stack()`).
    /// The kernel calls [`crate::AddressSpace::expand_stack`] with an exclusive borrow and
    /// retries. Only [`crate::AddressSpace::handle_fault`] returns it.
    NeedsWriteLock,
}

/// Fault counters of one address space.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FaultStats {
    /// Faults handled (every call of [`Pages::fault`], Linux's `PERF_COUNT_SW_PAGE_FAULTS`).
    pub page_faults: u64,
    /// Faults that made a private copy (`wp_page_copy()`, `do_cow_fault()`).
    pub cow_faults: u64,
}

/// Resident pages by kind (`/proc/<pid>/status` RssAnon / RssFile / RssShmem, in pages).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Rss {
    /// `MM_ANONPAGES`.
    pub anon: u64,
    /// `MM_FILEPAGES`.
    pub file: u64,
    /// `MM_SHMEMPAGES`.
    pub shmem: u64,
}

impl Rss {
    /// All resident pages (`get_mm_rss()`).
    pub fn total(&self) -> u64 {
        self.anon + self.file + self.shmem
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    Anon,
    File,
    Shmem,
}

/// The page half of one address space. See the [module docs](self).
pub struct Pages<A: Arch, H: Host> {
    pub(crate) table: PageTable<A, TableMem<H>>,
    asid: Asid,
    cpus: [AtomicU64; 4],
    rss: [AtomicU64; 3],
    page_faults: AtomicU64,
    cow_faults: AtomicU64,
}

impl<A: Arch, H: Host> fmt::Debug for Pages<A, H> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Pages")
            .field("table", &self.table)
            .field("asid", &self.asid)
            .field("cpus", &self.cpumask())
            .field("rss", &self.rss())
            .finish()
    }
}

/// Linux's `access_error()` reduced to the VMA's access bits: a store needs VM_WRITE, a fetch
/// VM_EXEC, a load any access bit (x86 lets PROT_WRITE / PROT_EXEC imply read).
fn access_error(flags: VmFlags, access: Access) -> bool {
    match access {
        Access::Write => !flags.contains(VmFlags::WRITE),
        Access::Exec => !flags.contains(VmFlags::EXEC),
        Access::Read => !flags.intersects(VmFlags::READ | VmFlags::WRITE | VmFlags::EXEC),
    }
}

/// Linux's `is_cow_mapping()`: private and possibly writable.
#[inline]
pub(crate) fn is_cow_mapping(flags: VmFlags) -> bool {
    flags & (VmFlags::SHARED | VmFlags::MAYWRITE) == VmFlags::MAYWRITE
}

/// Leaf permissions for a VMA's access flags (`vm_get_page_prot()` without the write bit,
/// which each path adds itself).
#[inline]
pub(crate) fn base_flags(flags: VmFlags) -> PteFlags {
    let mut f = PteFlags::USER;
    if flags.intersects(VmFlags::READ | VmFlags::WRITE | VmFlags::EXEC) {
        f |= PteFlags::READ;
    }
    if flags.contains(VmFlags::EXEC) {
        f |= PteFlags::EXEC;
    }
    f
}

/// The page-cache object behind a VMA and the object's size in pages (`None` = unbounded).
fn file_of<H: Host>(host: &H, vma: &Vma) -> Option<(FileId, Option<u64>)> {
    match &vma.backing {
        Backing::File(f) => {
            let id = FileId::File(f.id);
            let pages = host.files().size(id).map(|b| b.div_ceil(PAGE_SIZE));
            Some((id, Some(pages.unwrap_or(0))))
        }
        Backing::Shmem { id, size_pages } => {
            let sz = (*size_pages != SHMEM_SIZE_UNKNOWN).then_some(*size_pages);
            Some((FileId::Shmem(*id), sz))
        }
        _ => None,
    }
}

impl<A: Arch, H: Host> Pages<A, H> {
    /// An empty address space tagged `asid` (allocates the root table: Linux's `mm_alloc()`
    /// → `pgd_alloc()`).
    pub fn new(host: H, asid: Asid) -> Result<Self, OutOfMemory> {
        let mem = TableMem { host, tables: AtomicU64::new(0) };
        Ok(Pages {
            table: PageTable::new(mem)?,
            asid,
            cpus: Default::default(),
            rss: Default::default(),
            page_faults: AtomicU64::new(0),
            cow_faults: AtomicU64::new(0),
        })
    }

    /// The kernel services.
    #[inline]
    pub fn host(&self) -> &H {
        &self.table.memory().host
    }

    /// The page table (for the MMU: its root goes to CR3 / `satp` / `TTBR0`).
    pub fn table(&self) -> &PageTable<A, TableMem<H>> {
        &self.table
    }

    /// The ASID the TLB tags this space's translations with.
    pub fn asid(&self) -> Asid {
        self.asid
    }

    /// Records that `cpu` runs this space (Linux's `switch_mm()` setting the CPU in
    /// `mm_cpumask`); CPUs are never removed (x86 without lazy-TLB trimming).
    pub fn activate(&self, cpu: usize) {
        if let Some(w) = self.cpus.get(cpu / 64) {
            let bit = 1u64 << (cpu % 64);
            if w.load(Ordering::Relaxed) & bit == 0 {
                w.fetch_or(bit, Ordering::AcqRel);
            }
        }
    }

    /// The CPUs that may hold this space's translations (`mm_cpumask`).
    pub fn cpumask(&self) -> CpuMask {
        let mut m = CpuMask::empty();
        for (i, w) in self.cpus.iter().enumerate() {
            let mut v = w.load(Ordering::Acquire);
            while v != 0 {
                m.insert(i * 64 + v.trailing_zeros() as usize);
                v &= v - 1;
            }
        }
        m
    }

    /// Resident pages by kind.
    pub fn rss(&self) -> Rss {
        Rss {
            anon: self.rss[0].load(Ordering::Relaxed),
            file: self.rss[1].load(Ordering::Relaxed),
            shmem: self.rss[2].load(Ordering::Relaxed),
        }
    }

    /// Page-table pages other than the top level (`VmPTE` = this × 4 KiB; Linux's
    /// `mm_pgtables_bytes` counts PTE, PMD and PUD tables but not the PGD).
    pub fn pte_pages(&self) -> u64 {
        self.table.memory().tables.load(Ordering::Relaxed).saturating_sub(1)
    }

    /// Fault counters.
    pub fn fault_stats(&self) -> FaultStats {
        FaultStats {
            page_faults: self.page_faults.load(Ordering::Relaxed),
            cow_faults: self.cow_faults.load(Ordering::Relaxed),
        }
    }

    #[inline]
    pub(crate) fn rss_add(&self, kind: Kind, n: i64) {
        let c = &self.rss[kind as usize];
        if n >= 0 {
            c.fetch_add(n as u64, Ordering::Relaxed);
        } else {
            c.fetch_sub(n.unsigned_abs(), Ordering::Relaxed);
        }
    }

    #[inline]
    pub(crate) fn meta(&self, pfn: Pfn) -> Option<&PageMeta> {
        self.host().frames().meta(pfn)
    }

    /// The kind of a mapped frame, `None` for the zero page or a frame without descriptor
    /// (Linux's `vm_normal_page()` returning NULL) and for non-4K leaves.
    #[inline]
    pub(crate) fn kind_of(&self, m: &Mapping) -> Option<(Kind, &PageMeta)> {
        let pfn = Pfn::containing(m.pa);
        if pfn == self.host().zero_page() || m.size != PageSize::Size4K {
            return None;
        }
        let meta = self.meta(pfn)?;
        let kind = if meta.mapping() & MAPPING_ANON != 0 {
            Kind::Anon
        } else if meta.flags().contains(PageFlags::SWAPBACKED) {
            Kind::Shmem
        } else {
            Kind::File
        };
        Some((kind, meta))
    }

    /// Flushes `token` on this space's CPUs.
    #[inline]
    pub(crate) fn flush(&self, token: Flush) {
        if token.is_needed() {
            // A space no CPU ever ran has nothing cached anywhere.
            let cpus = self.cpumask();
            if !cpus.is_empty() {
                self.host().tlb().flush(&cpus, self.asid, token);
            }
        }
    }

    // ------------------------------------------------------------------------------------
    // the fault handler

    /// Handles a page fault at `addr` inside `vma` by `access` on `cpu` (Linux's
    /// `handle_mm_fault()` → `handle_pte_fault()`), under a shared borrow.
    ///
    /// The caller (the `AddressSpace`) has found `vma` and checked the access against it
    /// (`access_error()`), and has given a private VMA its anon_vma (`anon_vma_prepare()`)
    /// before a write fault. The VMA's access bits are checked again here as a defence:
    /// an address outside `vma` is SEGV_MAPERR, a forbidden access (PROT_NONE included)
    /// SEGV_ACCERR.
    pub fn fault(
        &self,
        vma: &Vma,
        addr: VirtAddr,
        access: Access,
        cpu: usize,
    ) -> Result<FaultOutcome, FaultError> {
        self.page_faults.fetch_add(1, Ordering::Relaxed);
        self.activate(cpu);
        if addr.0 < vma.start || addr.0 >= vma.end {
            return Err(FaultError::SegvMapErr);
        }
        if access_error(vma.flags, access) {
            return Err(FaultError::SegvAccErr);
        }
        if vma.flags.intersects(VmFlags::PFNMAP | VmFlags::IO)
            || matches!(vma.backing, Backing::Device { .. })
        {
            // No `->fault` for raw PFN mappings: they are populated at mmap time.
            return Err(FaultError::SigBus);
        }
        let va = addr.0 & !(PAGE_SIZE - 1);
        match self.table.query(VirtAddr(va)) {
            Err(_) => self.do_pte_missing(vma, va, access),
            Ok(t) => self.handle_present(vma, t.leaf, access),
        }
    }

    /// A present leaf: spurious fault or write-protect fault (`handle_pte_fault()` tail).
    fn handle_present(
        &self,
        vma: &Vma,
        leaf: Mapping,
        access: Access,
    ) -> Result<FaultOutcome, FaultError> {
        let f = leaf.attrs.flags;
        if f.is_protnone() {
            // Only a PROT_NONE VMA has PROT_NONE leaves here (no NUMA hinting), and that was
            // refused above; a leftover means the VMA and table disagree: refuse too.
            return Err(FaultError::SegvAccErr);
        }
        if access == Access::Write && !f.contains(PteFlags::WRITE) {
            return self.do_wp_page(vma, leaf);
        }
        if access == Access::Exec && !f.contains(PteFlags::EXEC) {
            return Err(FaultError::SegvAccErr);
        }
        // Spurious: mark young (and dirty for a write), as `ptep_set_access_flags()` does.
        let want = if access == Access::Write {
            PteFlags::ACCESSED | PteFlags::DIRTY
        } else {
            PteFlags::ACCESSED
        };
        if !f.contains(want) {
            let r = self.table.update_leaf(VirtAddr(leaf.va), |m| {
                (m.pa == leaf.pa && !m.attrs.flags.contains(want)).then(|| {
                    let mut a = m.attrs;
                    a.flags |= want;
                    a
                })
            });
            // Setting A/D never needs a flush (Linux's `ptep_set_access_flags()`).
            if let Ok(fl) = r {
                fl.ignore();
            }
        }
        Ok(FaultOutcome::Spurious)
    }

    /// Allocates a user frame, zeroed or not (`vma_alloc_zeroed_movable_folio()` /
    /// `vma_alloc_folio()`), tagged anonymous, with one map count taken for the PTE about to
    /// be installed (Linux's `folio_add_new_anon_rmap()`).
    fn new_anon(&self, va: u64, zero: bool) -> Result<(Pfn, &PageMeta), FaultError> {
        let fa = self.host().frames();
        let gfp =
            if zero { Gfp::HIGHUSER_MOVABLE.with(GfpFlags::ZERO) } else { Gfp::HIGHUSER_MOVABLE };
        let pfn = fa.alloc(gfp, 0).map_err(|_| FaultError::OutOfMemory)?;
        let meta = fa.meta(pfn).ok_or(FaultError::OutOfMemory)?;
        meta.set_mapping(MAPPING_ANON, va >> PAGE_SHIFT);
        meta.set_flags(PageFlags::SWAPBACKED | PageFlags::UPTODATE);
        meta.inc_mapcount();
        Ok((pfn, meta))
    }

    /// Undoes [`Self::new_anon`] or a page-cache mapping reference when the PTE could not be
    /// installed: drops the map count and the reference.
    fn unmap_undo(&self, pfn: Pfn, meta: &PageMeta) {
        meta.dec_mapcount();
        let _ = self.host().frames().put_page(pfn);
    }

    /// `do_pte_missing()`: nothing is mapped at `va`.
    fn do_pte_missing(
        &self,
        vma: &Vma,
        va: u64,
        access: Access,
    ) -> Result<FaultOutcome, FaultError> {
        if vma.is_anonymous() {
            self.do_anonymous_page(vma, va, access)
        } else {
            self.do_file_fault(vma, va, access)
        }
    }

    /// Installs a leaf in an empty slot; `Ok(false)` if another CPU filled it first.
    fn install(&self, va: u64, pfn: Pfn, flags: PteFlags) -> Result<bool, FaultError> {
        match self.table.map(VirtAddr(va), pfn.addr(), PageSize::Size4K, Attrs::new(flags)) {
            Ok(()) => Ok(true),
            Err(MapError::AlreadyMapped) => Ok(false),
            Err(MapError::OutOfMemory) => Err(FaultError::OutOfMemory),
            Err(_) => Err(FaultError::SegvMapErr),
        }
    }

    /// `do_anonymous_page()`: the zero page for a read, a zeroed frame for a write.
    fn do_anonymous_page(
        &self,
        vma: &Vma,
        va: u64,
        access: Access,
    ) -> Result<FaultOutcome, FaultError> {
        let base = base_flags(vma.flags) | PteFlags::ACCESSED;
        if access != Access::Write {
            // `my_zero_pfn()`, `pte_mkspecial()`: read-only, and COW so that an mprotect
            // adding PROT_WRITE keeps it read-only.
            let zero = self.host().zero_page();
            return Ok(if self.install(va, zero, base | PteFlags::COW)? {
                FaultOutcome::ZeroPage
            } else {
                FaultOutcome::Retry
            });
        }
        let (pfn, meta) = self.new_anon(va, true)?;
        let flags = base | PteFlags::WRITE | PteFlags::DIRTY;
        match self.install(va, pfn, flags) {
            Ok(true) => {
                self.rss_add(Kind::Anon, 1);
                Ok(FaultOutcome::NewAnon)
            }
            r => {
                self.unmap_undo(pfn, meta);
                r.map(|_| FaultOutcome::Retry)
            }
        }
    }

    /// File and shmem faults: `do_read_fault()`, `do_cow_fault()`, `do_shared_fault()`.
    fn do_file_fault(
        &self,
        vma: &Vma,
        va: u64,
        access: Access,
    ) -> Result<FaultOutcome, FaultError> {
        let (file, size_pages) = file_of(self.host(), vma).ok_or(FaultError::SigBus)?;
        let index = vma.pgoff_at(va);
        if size_pages.is_some_and(|n| index >= n) {
            return Err(FaultError::SigBus);
        }
        let pfn = self.host().files().get_page(file, index).map_err(|e| match e {
            FileError::OutOfMemory => FaultError::OutOfMemory,
            FileError::BeyondEof | FileError::Io => FaultError::SigBus,
        })?;
        let fa = self.host().frames();
        let Some(meta) = fa.meta(pfn) else {
            return Err(FaultError::SigBus);
        };
        let shared = vma.flags.contains(VmFlags::SHARED);
        let base = base_flags(vma.flags) | PteFlags::ACCESSED;
        if access == Access::Write && !shared {
            // do_cow_fault(): copy the cache page into a new anonymous frame.
            let copied = self.new_anon(va, false);
            let (new, new_meta) = match copied {
                Ok(x) => x,
                Err(e) => {
                    let _ = fa.put_page(pfn);
                    return Err(e);
                }
            };
            self.copy_frame(pfn, new);
            let _ = fa.put_page(pfn);
            let flags = base | PteFlags::WRITE | PteFlags::DIRTY;
            return match self.install(va, new, flags) {
                Ok(true) => {
                    self.rss_add(Kind::Anon, 1);
                    self.cow_faults.fetch_add(1, Ordering::Relaxed);
                    Ok(FaultOutcome::CowCopied)
                }
                r => {
                    self.unmap_undo(new, new_meta);
                    r.map(|_| FaultOutcome::Retry)
                }
            };
        }
        meta.set_mapping(file.token(), index);
        let kind = match file {
            FileId::Shmem(_) => {
                meta.set_flags(PageFlags::SWAPBACKED);
                Kind::Shmem
            }
            FileId::File(_) => Kind::File,
        };
        let mut flags = base;
        if shared {
            if vma.flags.contains(VmFlags::WRITE) {
                flags |= PteFlags::WRITE;
            }
            if access == Access::Write {
                // do_shared_fault(): `folio_mark_dirty()` and a dirty PTE.
                flags |= PteFlags::DIRTY;
                meta.set_flags(PageFlags::DIRTY);
            }
        } else {
            flags |= PteFlags::COW;
        }
        meta.inc_mapcount();
        match self.install(va, pfn, flags) {
            Ok(true) => {
                self.rss_add(kind, 1);
                Ok(FaultOutcome::FilePage)
            }
            r => {
                self.unmap_undo(pfn, meta);
                r.map(|_| FaultOutcome::Retry)
            }
        }
    }

    /// Copies one frame (`copy_mc_user_highpage()`).
    fn copy_frame(&self, from: Pfn, to: Pfn) {
        let fa = self.host().frames();
        let (src, dst) = (fa.frame_ptr(from), fa.frame_ptr(to));
        // SAFETY: both frames are allocated and reachable through `PhysAccess` for a whole
        // page; `to` was just allocated by us and no one else can see it, so the regions do
        // not overlap. `from` may be read concurrently (it is mapped read-only), never
        // written while it is shared copy-on-write.
        unsafe { core::ptr::copy_nonoverlapping(src as *const u8, dst, PAGE_SIZE as usize) };
    }

    /// `do_wp_page()`: a write to a present read-only leaf in a writable VMA.
    fn do_wp_page(&self, vma: &Vma, leaf: Mapping) -> Result<FaultOutcome, FaultError> {
        let base = base_flags(vma.flags) | PteFlags::ACCESSED | PteFlags::WRITE | PteFlags::DIRTY;
        let kind = self.kind_of(&leaf);
        if vma.flags.contains(VmFlags::SHARED) {
            // wp_page_shared(): the page is the object's; make it writable and dirty.
            if let Some((_, meta)) = kind {
                meta.set_flags(PageFlags::DIRTY);
            }
            return self.make_writable(leaf, base);
        }
        if let Some((Kind::Anon, meta)) = kind {
            // wp_can_reuse_anon_folio(): the only reference is this PTE's (no swap cache,
            // no LRU or GUP pins in mmkit), so no one else can see the frame.
            if meta.refcount() == 1 && meta.mapcount() == 1 {
                return self.make_writable(leaf, base);
            }
        }
        // wp_page_copy(): a fresh frame (zeroed when breaking the zero page).
        //
        // Linux copies with a reference taken under the PTE lock. Here no lock is held:
        // another CPU of this space may break the same COW first and drop this space's
        // reference to the old frame while we copy. The copy is then stale, but it is
        // never used: `replace_leaf` succeeds only if the leaf still maps the old frame, and
        // a leaf can only return to that frame through a zap, which needs `&mut self`.
        let old = Pfn::containing(leaf.pa);
        let is_zero = kind.is_none();
        let (new, new_meta) = self.new_anon(leaf.va, is_zero)?;
        if !is_zero {
            self.copy_frame(old, new);
        }
        match self.table.replace_leaf(leaf, new.addr(), Attrs::new(base)) {
            Ok(fl) => {
                // Flush before dropping the old frame: no CPU may keep writing to or reading
                // through the old translation once its frame can be reused.
                self.flush(fl);
                self.cow_faults.fetch_add(1, Ordering::Relaxed);
                match kind {
                    Some((k, meta)) => {
                        if k != Kind::Anon {
                            self.rss_add(k, -1);
                            self.rss_add(Kind::Anon, 1);
                        }
                        meta.dec_mapcount();
                        let _ = self.host().frames().put_page(old);
                    }
                    None => self.rss_add(Kind::Anon, 1),
                }
                Ok(FaultOutcome::CowCopied)
            }
            Err(ReplaceError::Changed) | Err(ReplaceError::NotMapped) => {
                self.unmap_undo(new, new_meta);
                Ok(FaultOutcome::Retry)
            }
            Err(_) => {
                self.unmap_undo(new, new_meta);
                Err(FaultError::SegvMapErr)
            }
        }
    }

    /// `wp_page_reuse()`: makes the leaf writable in place if it still maps the same frame.
    fn make_writable(&self, leaf: Mapping, flags: PteFlags) -> Result<FaultOutcome, FaultError> {
        let mut done = false;
        let r = self.table.update_leaf(VirtAddr(leaf.va), |m| {
            if m.pa != leaf.pa || m.attrs.flags.is_protnone() {
                return None;
            }
            done = true;
            let keep = m.attrs.flags & (PteFlags::GLOBAL);
            Some(Attrs { flags: flags | keep, cache: m.attrs.cache })
        });
        match r {
            // Upgrading permissions needs no flush (a stale read-only entry just faults
            // again and is then spurious).
            Ok(fl) => fl.ignore(),
            Err(_) => return Ok(FaultOutcome::Retry),
        }
        Ok(if done { FaultOutcome::Reused } else { FaultOutcome::Retry })
    }
}
