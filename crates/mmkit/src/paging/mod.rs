//! Page tables in the real bit layouts of x86-64, RISC-V, AArch64 and LoongArch64.
//!
//! One engine, [`PageTable`], walks and edits radix page tables for every format; an
//! architecture is a zero-sized descriptor implementing [`Arch`] (number of levels, which
//! levels may hold leaves, how an entry is encoded and decoded). Every format is plain
//! integer arithmetic, so all of them compile and are tested on every host: nothing here is
//! `cfg(target_arch)`.
//!
//! | descriptor | format | levels | leaves |
//! |---|---|---|---|
//! | [`X86_64`] / [`X86_64La57`] | x86-64 4-level / 5-level (LA57) | 4 / 5 | 4K, 2M, 1G |
//! | [`Sv39`], [`Sv48`], [`Sv57`] (+ `…NoPbmt`) | RISC-V | 3 / 4 / 5 | 4K, 2M, 1G |
//! | [`Aarch64`] | AArch64 4 KiB granule, 48-bit, stage 1 | 4 | 4K, 2M, 1G |
//! | [`LoongArch64`] | LoongArch64, 4 KiB pages | 4 | 4K, 2M |
//!
//! Leaves carry arch-neutral [`Attrs`]: [`PteFlags`] (read/write/exec/user/global/accessed/
//! dirty and the software `COW` bit) and a [`CacheMode`]. A leaf with none of
//! read/write/exec is *present but `PROT_NONE`*: like Linux's `_PAGE_PROTNONE`, the hardware
//! sees an invalid entry, but the engine still knows which frame is mapped (it is reported by
//! [`PageTable::walk`], returned by unmap, copied by fork). Each format stores this in a
//! software-available bit (see the arch modules).
//!
//! # Locking
//!
//! The engine owns no lock; it states what the caller must hold (Linux's `mmap_lock` plus
//! `page_table_lock`, expressed through Rust borrows):
//!
//! * `&self` operations — [`PageTable::map`], [`PageTable::query`], [`PageTable::walk`],
//!   [`PageTable::test_and_clear`], [`PageTable::update_leaf`], [`PageTable::replace_leaf`] —
//!   may run on several CPUs at once (page faults under `mmap_lock` held for read). Every
//!   entry is an `AtomicU64`:
//!   leaves change only by compare-exchange, and a new intermediate table is built privately
//!   and published by one compare-exchange of an empty entry (the loser frees its copy), the
//!   lock-free equivalent of `__pte_alloc()` re-checking `pmd_none()` under the PMD lock.
//!   Intermediate tables are never freed under `&self`, so a concurrent walker can never
//!   step into a freed table.
//! * `&mut self` operations — unmap, protect, write-protect, copy, teardown — change the
//!   structure (split huge leaves, free tables) and need exclusive access: the kernel holds
//!   `mmap_lock` for write, or a page-table lock around the whole table. The hardware walker
//!   may still set accessed/dirty bits concurrently; leaf updates use compare-exchange so that
//!   such a hardware write is never lost.
//!
//! Lock order, for kernels that add a page-table lock: `mmap_lock` → page-table lock →
//! frame allocator lock (the [`TableMemory`] implementation).
//!
//! # Failure
//!
//! Operations return small per-operation error enums and never panic on bad input
//! (unaligned or non-canonical addresses, out-of-range physical addresses). Any operation that
//! needs table frames allocates all of them *before* touching the table, so an allocation
//! failure leaves the table bit-for-bit unchanged and every frame returned.
//!
//! # Freeing tables
//!
//! [`PageTable::unmap`] frees the intermediate tables that lie wholly inside the unmapped
//! range (Linux's `free_pgtables()` after `unmap_vmas()`); [`PageTable::unmap_page`], the
//! single-page fast path, never frees tables (like `zap_pte_range()` alone);
//! [`PageTable::free_empty_tables`] collects those afterwards. Everything is
//! freed by [`PageTable::teardown`] or when the table is dropped; leaf frames are never
//! freed by the engine — they are reported to the caller, who owns them.
//!
//! # TLB
//!
//! Operations that change or remove a valid translation return a `#[must_use]` [`Flush`]
//! token naming the range the kernel must invalidate (Linux's `mmu_gather` / `flush_tlb_range`).

mod arch;
mod flush;
mod heap;
mod table;

pub use arch::aarch64::Aarch64;
pub use arch::loongarch64::LoongArch64;
pub use arch::riscv::{RiscV, Sv39, Sv39NoPbmt, Sv48, Sv48NoPbmt, Sv57, Sv57NoPbmt};
pub use arch::x86_64::{X86Paging, X86_64La57, X86_64};
pub use arch::{Arch, Decoded};
pub use flush::Flush;
pub use heap::HeapTableMemory;
pub use table::PageTable;

use crate::addr::PhysAddr;
use crate::platform::PhysAccess;
use bitflags::bitflags;

/// Entries per table: every supported format uses 4 KiB tables of 512 eight-byte entries.
pub const ENTRIES: usize = 512;

/// Bytes mapped by one entry at `level` (level 0 = last-level table, 4 KiB per entry).
#[inline]
pub const fn level_size(level: usize) -> u64 {
    1u64 << (12 + 9 * level as u32)
}

/// Size of a leaf mapping.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum PageSize {
    /// 4 KiB, a last-level entry (level 0).
    Size4K,
    /// 2 MiB, a leaf one level up (level 1: x86 PDE with PS, RISC-V megapage, AArch64 L2 block).
    Size2M,
    /// 1 GiB, a leaf two levels up (level 2: x86 PDPTE with PS, RISC-V gigapage, AArch64 L1 block).
    Size1G,
}

impl PageSize {
    /// The level whose entries map this size.
    #[inline]
    pub const fn level(self) -> usize {
        match self {
            PageSize::Size4K => 0,
            PageSize::Size2M => 1,
            PageSize::Size1G => 2,
        }
    }
    /// The size mapped by a leaf at `level`, if there is one.
    #[inline]
    pub const fn from_level(level: usize) -> Option<PageSize> {
        match level {
            0 => Some(PageSize::Size4K),
            1 => Some(PageSize::Size2M),
            2 => Some(PageSize::Size1G),
            _ => None,
        }
    }
    /// Bytes.
    #[inline]
    pub const fn bytes(self) -> u64 {
        level_size(self.level())
    }
}

bitflags! {
    /// Arch-neutral leaf permissions and status bits.
    ///
    /// No read/write/exec at all means "present but `PROT_NONE`" (Linux's `_PAGE_PROTNONE`).
    /// `WRITE` implies `READ` on every format (normalised by [`Arch::normalize`]).
    #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
    pub struct PteFlags: u16 {
        /// Readable.
        const READ = 1 << 0;
        /// Writable.
        const WRITE = 1 << 1;
        /// Executable.
        const EXEC = 1 << 2;
        /// Accessible from user mode.
        const USER = 1 << 3;
        /// Global: survives address-space switches in the TLB.
        const GLOBAL = 1 << 4;
        /// Accessed ("young").
        const ACCESSED = 1 << 5;
        /// Dirty.
        const DIRTY = 1 << 6;
        /// Software: write-protected because the frame is shared copy-on-write.
        const COW = 1 << 7;
    }
}

impl PteFlags {
    /// The permission bits.
    pub const PERMS: PteFlags = PteFlags::READ.union(PteFlags::WRITE).union(PteFlags::EXEC);

    /// True if this leaf is present but inaccessible (`PROT_NONE`).
    #[inline]
    pub const fn is_protnone(self) -> bool {
        !self.intersects(PteFlags::PERMS)
    }
}

/// Memory type of a leaf.
///
/// Each format maps these onto its own mechanism (x86 PAT index as Linux programs the PAT,
/// RISC-V Svpbmt, AArch64 `AttrIndx` into Linux's MAIR layout, LoongArch `MAT`). A mode a
/// format cannot express is normalised to the closest *safe* one (never a more cached one).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum CacheMode {
    /// Normal cached memory.
    #[default]
    WriteBack,
    /// Write-through cached.
    WriteThrough,
    /// Uncached, write-combining (framebuffers).
    WriteCombining,
    /// Strongly uncached (device registers).
    Uncached,
}

/// Everything a leaf says apart from its frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Attrs {
    /// Permission and status bits.
    pub flags: PteFlags,
    /// Memory type.
    pub cache: CacheMode,
}

impl Attrs {
    /// Normal write-back memory with `flags`.
    pub const fn new(flags: PteFlags) -> Self {
        Attrs { flags, cache: CacheMode::WriteBack }
    }
}

/// One leaf as seen by a walk: the virtual start of the leaf, its frame, size and attributes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Mapping {
    /// First virtual address the leaf maps (aligned to `size`).
    pub va: u64,
    /// First physical address (aligned to `size`).
    pub pa: PhysAddr,
    /// Leaf size.
    pub size: PageSize,
    /// Attributes.
    pub attrs: Attrs,
}

/// The allocator could not provide a table frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OutOfMemory;

/// Where page-table frames come from and how they are reached.
///
/// The frame allocator implements this for the kernel; tests use [`HeapTableMemory`].
/// `phys_to_ptr` (from [`PhysAccess`]) must return a pointer valid for the whole 4 KiB
/// frame, 8-byte aligned, for as long as the frame stays allocated.
pub trait TableMemory: PhysAccess {
    /// A zero-filled, 4 KiB-aligned 4 KiB frame for a page table (Linux's
    /// `pte_alloc_one()` / `__get_free_page(GFP_PGTABLE_USER)`).
    fn alloc_table(&self) -> Result<PhysAddr, OutOfMemory>;
    /// Returns a table frame.
    ///
    /// # Safety
    /// `pa` came from [`TableMemory::alloc_table`] on this object, has not been freed since,
    /// and nobody accesses it afterwards.
    unsafe fn free_table(&self, pa: PhysAddr);
}

impl<T: TableMemory + ?Sized> TableMemory for &T {
    #[inline]
    fn alloc_table(&self) -> Result<PhysAddr, OutOfMemory> {
        (**self).alloc_table()
    }
    #[inline]
    unsafe fn free_table(&self, pa: PhysAddr) {
        // SAFETY: forwarded; the caller upholds the contract.
        unsafe { (**self).free_table(pa) }
    }
}

/// Errors of [`PageTable::map`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MapError {
    /// The virtual or physical address is not aligned to the page size.
    Misaligned,
    /// The virtual address is not canonical / outside the table's reach.
    OutOfRange,
    /// The physical address does not fit the format's output-address field.
    BadPhysAddr,
    /// This format has no leaves of that size.
    SizeNotSupported,
    /// Something is already mapped there (a leaf, a huge leaf covering it, or a table where
    /// a huge leaf was asked for).
    AlreadyMapped,
    /// An intermediate table could not be allocated; nothing was changed.
    OutOfMemory,
}

/// Errors of unmap operations.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UnmapError {
    /// Unaligned address.
    Misaligned,
    /// The range is not canonical or crosses from one half of the address space to the other.
    OutOfRange,
    /// [`PageTable::unmap_page`]: nothing is mapped there.
    NotMapped,
    /// Splitting a partially covered huge leaf needed a table that could not be allocated;
    /// nothing was changed.
    OutOfMemory,
}

/// Errors of protection changes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProtectError {
    /// The range is not canonical or crosses from one half of the address space to the other.
    OutOfRange,
    /// Splitting a partially covered huge leaf needed a table that could not be allocated;
    /// nothing was changed.
    OutOfMemory,
}

/// Errors of [`PageTable::copy_range`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CopyError {
    /// The range is not canonical or crosses from one half of the address space to the other.
    OutOfRange,
    /// The range cuts a huge leaf of the source. Linux never forks such a range: VMA
    /// boundaries always split huge leaves first (`split_huge_pmd()` in `vma_adjust`).
    SplitsHugeLeaf,
    /// The destination already has a mapping or table in the way.
    AlreadyMapped,
    /// The destination's tables could not be allocated; neither table was changed.
    OutOfMemory,
}

/// Errors of single-address lookups and updates.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum QueryError {
    /// The address is not canonical for this format.
    OutOfRange,
    /// Nothing is mapped there.
    NotMapped,
}

/// Errors of [`PageTable::replace_leaf`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReplaceError {
    /// The address is not canonical for this format.
    OutOfRange,
    /// The new frame is misaligned for the leaf size or outside the output-address field.
    BadPhysAddr,
    /// Nothing is mapped there.
    NotMapped,
    /// The leaf is no longer the expected one (another CPU or the hardware changed it);
    /// the caller re-reads and retries, as Linux does when `pte_same()` fails.
    Changed,
}

/// What [`PageTable::query`] finds for one address.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Translation {
    /// The leaf containing the address.
    pub leaf: Mapping,
    /// The physical address the virtual address translates to.
    pub pa: PhysAddr,
}
