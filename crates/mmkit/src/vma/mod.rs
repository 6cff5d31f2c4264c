//! Virtual memory areas: Linux's `struct vm_area_struct`, reduced to what user space can see.

pub mod index;

use alloc::string::String;
use alloc::sync::Arc;
use bitflags::bitflags;
use core::sync::atomic::{AtomicU64, Ordering};

use crate::addr::{PageRange, PAGE_SHIFT};

bitflags! {
    /// `PROT_*` as passed to mmap/mprotect (include/uapi/asm-generic/mman-common.h).
    #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
    pub struct Prot: u64 {
        /// PROT_READ.
        const READ = 0x1;
        /// PROT_WRITE.
        const WRITE = 0x2;
        /// PROT_EXEC.
        const EXEC = 0x4;
        /// PROT_SEM (accepted and ignored on x86-64).
        const SEM = 0x8;
        /// PROT_GROWSDOWN (mprotect only): extend the range down to the mapping's start.
        const GROWSDOWN = 0x0100_0000;
        /// PROT_GROWSUP (mprotect only; no x86-64 mapping grows up).
        const GROWSUP = 0x0200_0000;
    }
}

bitflags! {
    /// `VM_*` flags with Linux's own bit values (include/linux/mm.h, 64-bit x86), so that
    /// the `VmFlags:` line of smaps can be produced by walking bits in order, as
    /// `show_smap_vma_flags()` does.
    #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
    pub struct VmFlags: u64 {
        /// VM_READ.
        const READ = 0x0000_0001;
        /// VM_WRITE.
        const WRITE = 0x0000_0002;
        /// VM_EXEC.
        const EXEC = 0x0000_0004;
        /// VM_SHARED: writes reach the backing object.
        const SHARED = 0x0000_0008;
        /// VM_MAYREAD: mprotect may add PROT_READ.
        const MAYREAD = 0x0000_0010;
        /// VM_MAYWRITE: mprotect may add PROT_WRITE.
        const MAYWRITE = 0x0000_0020;
        /// VM_MAYEXEC: mprotect may add PROT_EXEC.
        const MAYEXEC = 0x0000_0040;
        /// VM_MAYSHARE: a MAP_SHARED mapping (the `s` in maps).
        const MAYSHARE = 0x0000_0080;
        /// VM_GROWSDOWN: a stack that grows on faults below it.
        const GROWSDOWN = 0x0000_0100;
        /// VM_UFFD_MISSING.
        const UFFD_MISSING = 0x0000_0200;
        /// VM_PFNMAP: raw PFNs, no struct page (device memory).
        const PFNMAP = 0x0000_0400;
        /// VM_MAYBE_GUARD (6.18: guard regions installed by MADV_GUARD_INSTALL).
        const MAYBE_GUARD = 0x0000_0800;
        /// VM_UFFD_WP.
        const UFFD_WP = 0x0000_1000;
        /// VM_LOCKED: mlocked.
        const LOCKED = 0x0000_2000;
        /// VM_IO: memory-mapped I/O.
        const IO = 0x0000_4000;
        /// VM_SEQ_READ: MADV_SEQUENTIAL.
        const SEQ_READ = 0x0000_8000;
        /// VM_RAND_READ: MADV_RANDOM.
        const RAND_READ = 0x0001_0000;
        /// VM_DONTCOPY: MADV_DONTFORK.
        const DONTCOPY = 0x0002_0000;
        /// VM_DONTEXPAND: mremap may not grow it.
        const DONTEXPAND = 0x0004_0000;
        /// VM_LOCKONFAULT: mlock2(MLOCK_ONFAULT).
        const LOCKONFAULT = 0x0008_0000;
        /// VM_ACCOUNT: charged to overcommit accounting.
        const ACCOUNT = 0x0010_0000;
        /// VM_NORESERVE: MAP_NORESERVE.
        const NORESERVE = 0x0020_0000;
        /// VM_HUGETLB.
        const HUGETLB = 0x0040_0000;
        /// VM_SYNC: MAP_SYNC.
        const SYNC = 0x0080_0000;
        /// VM_ARCH_1 (x86: VM_PAT).
        const ARCH_1 = 0x0100_0000;
        /// VM_WIPEONFORK: MADV_WIPEONFORK.
        const WIPEONFORK = 0x0200_0000;
        /// VM_DONTDUMP: MADV_DONTDUMP.
        const DONTDUMP = 0x0400_0000;
        /// VM_SOFTDIRTY.
        const SOFTDIRTY = 0x0800_0000;
        /// VM_MIXEDMAP.
        const MIXEDMAP = 0x1000_0000;
        /// VM_HUGEPAGE: MADV_HUGEPAGE.
        const HUGEPAGE = 0x2000_0000;
        /// VM_NOHUGEPAGE: MADV_NOHUGEPAGE (and MAP_STACK since 6.7).
        const NOHUGEPAGE = 0x4000_0000;
        /// VM_MERGEABLE: MADV_MERGEABLE (KSM).
        const MERGEABLE = 0x8000_0000;
        /// VM_DROPPABLE (64-bit only, bit 40 on x86-64 6.18).
        const DROPPABLE = 1 << 40;
    }
}

impl VmFlags {
    /// The access bits (`VM_READ|VM_WRITE|VM_EXEC`) for a `PROT_*` value
    /// (`calc_vm_prot_bits`).
    pub fn from_prot(prot: Prot) -> VmFlags {
        VmFlags::from_bits_truncate(prot.bits() & 0x7)
    }

    /// The access part of these flags.
    pub fn access(self) -> VmFlags {
        self & (VmFlags::READ | VmFlags::WRITE | VmFlags::EXEC)
    }
}

/// A file as mmap sees it: identity, what `/proc/<pid>/maps` prints for it, and how the
/// descriptor that mapped it was opened.
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct FileObject {
    /// Identity of the file (Linux compares `vm_file` pointers; we compare ids).
    pub id: u64,
    /// Device major, as printed in maps.
    pub dev_major: u32,
    /// Device minor, as printed in maps.
    pub dev_minor: u32,
    /// Inode number, as printed in maps.
    pub inode: u64,
    /// Path, as printed in maps.
    pub path: String,
}

/// What backs a VMA's pages.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Backing {
    /// Private or shared anonymous memory that is not a shmem object: zero-filled on demand.
    Anonymous,
    /// A file (the VMA's `pgoff` says where in it the VMA starts).
    File(Arc<FileObject>),
    /// A shared-memory object: MAP_SHARED|MAP_ANONYMOUS (printed `/dev/zero (deleted)`) or a
    /// SysV segment; `id` doubles as its inode number.
    Shmem {
        /// Object identity and inode number.
        id: u64,
        /// The object's size in pages (the shmem file's `i_size`): the mmap length at
        /// creation (`shmem_zero_setup()`), which later mremap()s never change. A page at or
        /// beyond it cannot be faulted in (`shmem_fault()` → SIGBUS; MADV_POPULATE_* →
        /// EFAULT). [`SHMEM_SIZE_UNKNOWN`] when the size is not known (a VMA read back from
        /// `/proc/<pid>/maps`): no page is then refused.
        size_pages: u64,
    },
    /// Device memory (VM_IO|VM_PFNMAP) starting at a physical base.
    Device {
        /// Physical address mapped at the VMA's start.
        phys_base: u64,
    },
}

/// `Backing::Shmem { size_pages }` of an object whose size is not known: unbounded.
pub const SHMEM_SIZE_UNKNOWN: u64 = u64::MAX;

impl Backing {
    /// A shmem object of unknown size (see [`SHMEM_SIZE_UNKNOWN`]), e.g. one seen in a maps
    /// snapshot.
    pub fn shmem_unsized(id: u64) -> Backing {
        Backing::Shmem { id, size_pages: SHMEM_SIZE_UNKNOWN }
    }

    /// True for backings that are file-like in Linux (have a `vm_file`).
    pub fn has_file(&self) -> bool {
        !matches!(self, Backing::Anonymous)
    }
}

/// Linux's anon_vma identity, as far as merging can observe it.
///
/// An anonymous VMA gets an anon_vma on its first write fault (or COW). Two neighbours can
/// merge only if their anon_vmas are compatible (`is_mergeable_anon_vma()` in mm/vma.c): equal,
/// or one side has none and the side that has one is not a fork child's (whose
/// `anon_vma_chain` is not singular).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct AnonVma {
    /// Identity of the anon_vma.
    pub id: u64,
    /// The VMA's anon_vma_chain has more than one entry (it was inherited through fork).
    pub chain_inherited: bool,
}

impl AnonVma {
    const INHERITED: u64 = 1 << 63;

    fn encode(a: Option<AnonVma>) -> u64 {
        match a {
            None => 0,
            Some(a) => {
                debug_assert!(a.id != 0 && a.id < Self::INHERITED, "anon_vma id out of range");
                a.id | if a.chain_inherited { Self::INHERITED } else { 0 }
            }
        }
    }

    fn decode(v: u64) -> Option<AnonVma> {
        (v != 0).then_some(AnonVma {
            id: v & !Self::INHERITED,
            chain_inherited: v & Self::INHERITED != 0,
        })
    }
}

/// `vma->anon_vma`: none, or an [`AnonVma`] (id in the low 63 bits, never 0, and the
/// inherited bit on top), in one atomic word. Set once under a shared borrow by
/// [`AnonVmaCell::init`] (a compare-exchange from none, as `anon_vma_prepare()` sets it under
/// `page_table_lock`), or freely under an exclusive borrow. Clone copies the current value;
/// equality and `Debug` use the loaded value.
#[derive(Default)]
pub struct AnonVmaCell(AtomicU64);

impl AnonVmaCell {
    /// A cell holding `a`.
    pub fn new(a: Option<AnonVma>) -> Self {
        AnonVmaCell(AtomicU64::new(AnonVma::encode(a)))
    }

    /// The current value.
    #[inline]
    pub fn get(&self) -> Option<AnonVma> {
        AnonVma::decode(self.0.load(Ordering::Acquire))
    }

    /// Replaces the value (exclusive borrow: mmap_lock held for write).
    #[inline]
    pub fn set(&mut self, a: Option<AnonVma>) {
        *self.0.get_mut() = AnonVma::encode(a);
    }

    /// Sets `a` if the cell is empty and returns the value now held: `a`, or the one another
    /// CPU installed first.
    pub fn init(&self, a: AnonVma) -> AnonVma {
        match self.0.compare_exchange(
            0,
            AnonVma::encode(Some(a)),
            Ordering::AcqRel,
            Ordering::Acquire,
        ) {
            Ok(_) => a,
            Err(cur) => AnonVma::decode(cur).unwrap_or(a),
        }
    }
}

impl Clone for AnonVmaCell {
    fn clone(&self) -> Self {
        AnonVmaCell(AtomicU64::new(self.0.load(Ordering::Acquire)))
    }
}

impl PartialEq for AnonVmaCell {
    fn eq(&self, o: &Self) -> bool {
        self.get() == o.get()
    }
}

impl Eq for AnonVmaCell {}

impl core::fmt::Debug for AnonVmaCell {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        self.get().fmt(f)
    }
}

impl From<Option<AnonVma>> for AnonVmaCell {
    fn from(a: Option<AnonVma>) -> Self {
        AnonVmaCell::new(a)
    }
}

/// A virtual memory area.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Vma {
    /// First byte (page-aligned).
    pub start: u64,
    /// One past the last byte (page-aligned, `> start`).
    pub end: u64,
    /// `vm_flags`, access bits included.
    pub flags: VmFlags,
    /// `vm_pgoff`: for files, the file page at `start`; for private anonymous memory,
    /// `start >> PAGE_SHIFT` at creation (so fresh neighbours line up and merge).
    pub pgoff: u64,
    /// The backing object.
    pub backing: Backing,
    /// The anon_vma, once one was assigned: a set-once cell, so that a fault under a shared
    /// borrow can assign it (`anon_vma_prepare()` runs with mmap_lock only read-held). Read
    /// it with [`Vma::anon_vma`], set it with [`Vma::set_anon_vma`] / [`Vma::init_anon_vma`].
    pub anon_vma: AnonVmaCell,
    /// Name of a special mapping (`[vdso]`, `[vvar]`, ...), or an anon name set by prctl.
    /// `[heap]` and `[stack]` are not stored: procfs derives them as Linux does.
    pub name: Option<Arc<str>>,
}

impl Vma {
    /// The anon_vma, if one was assigned.
    #[inline]
    pub fn anon_vma(&self) -> Option<AnonVma> {
        self.anon_vma.get()
    }

    /// Sets (or clears) the anon_vma (exclusive borrow).
    #[inline]
    pub fn set_anon_vma(&mut self, a: Option<AnonVma>) {
        self.anon_vma.set(a);
    }

    /// Assigns `a` unless the VMA already has an anon_vma; returns the one it now has
    /// (`anon_vma_prepare()` under a shared borrow: the first CPU wins).
    #[inline]
    pub fn init_anon_vma(&self, a: AnonVma) -> AnonVma {
        self.anon_vma.init(a)
    }

    /// The VMA's range.
    #[inline]
    pub fn range(&self) -> PageRange {
        PageRange::new(self.start, self.end).expect("VMA range invariant")
    }

    /// Length in bytes.
    #[inline]
    pub fn len(&self) -> u64 {
        self.end - self.start
    }

    /// Never true: VMAs are never empty.
    #[inline]
    pub fn is_empty(&self) -> bool {
        false
    }

    /// Number of pages.
    #[inline]
    pub fn pages(&self) -> u64 {
        self.len() >> PAGE_SHIFT
    }

    /// `vm_pgoff` of the page that holds `addr` (`linear_page_index` without the huge-page
    /// case).
    #[inline]
    pub fn pgoff_at(&self, addr: u64) -> u64 {
        self.pgoff + ((addr - self.start) >> PAGE_SHIFT)
    }

    /// Linux's `vma_is_anonymous()`: no vm_ops / no file.
    #[inline]
    pub fn is_anonymous(&self) -> bool {
        matches!(self.backing, Backing::Anonymous)
    }

    /// The lowest address a search must keep free below this VMA (`vm_start_gap()`): the
    /// stack guard gap below a VM_GROWSDOWN mapping, clamped at 0.
    #[inline]
    pub fn start_gap(&self, stack_guard_gap: u64) -> u64 {
        if self.flags.contains(VmFlags::GROWSDOWN) {
            self.start.saturating_sub(stack_guard_gap)
        } else {
            self.start
        }
    }

    /// `vm_end_gap()`: no x86-64 mapping grows up, so this is `end`.
    #[inline]
    pub fn end_gap(&self) -> u64 {
        self.end
    }
}
