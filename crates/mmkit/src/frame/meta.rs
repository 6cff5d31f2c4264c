//! `PageMeta`, the per-frame descriptor (Linux's `struct page`), and the flat array that maps
//! a frame number to its descriptor in O(1) (Linux's FLATMEM `pfn_to_page`).
//!
//! Every field is an atomic so that a `&PageMeta` can be shared freely: page faults running in
//! parallel under a shared borrow of the address space bump `refcount` and `mapcount` without
//! a lock, exactly as Linux does with `page_ref_inc` / `atomic_inc(&page->_mapcount)`. Fields
//! that only change under a lock (the buddy and slab links, `order`) are still atomics, used
//! with `Relaxed` ordering: the lock provides the ordering, the atomic type only makes the
//! shared access sound without `unsafe`.
//!
//! Layout follows Asterinas' `ostd/src/mm/frame/meta.rs`: one 64-byte, cache-line-aligned slot
//! per frame, its size asserted at compile time, so the array costs 64 / 4096 = 1.6 % of RAM
//! (Linux's `struct page` is also 64 bytes).

use core::ptr::NonNull;
use core::sync::atomic::{AtomicI32, AtomicU32, AtomicU64, AtomicU8, AtomicUsize, Ordering};

use bitflags::bitflags;

use crate::addr::Pfn;

bitflags! {
    /// Page flags (include/linux/page-flags.h `PG_*`, plus the page types Linux keeps in
    /// `page_type`: buddy and the per-CPU-list marker).
    #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
    pub struct PageFlags: u32 {
        /// PG_locked: the page is locked for I/O or migration.
        const LOCKED = 1 << 0;
        /// PG_referenced: recently accessed (second-chance LRU).
        const REFERENCED = 1 << 1;
        /// PG_uptodate: contents are valid.
        const UPTODATE = 1 << 2;
        /// PG_dirty: contents differ from backing store.
        const DIRTY = 1 << 3;
        /// PG_lru: on an LRU list (the `lru` link is in use by reclaim).
        const LRU = 1 << 4;
        /// PG_active: on the active LRU list.
        const ACTIVE = 1 << 5;
        /// PG_slab: owned by the slab allocator (Linux's `PageSlab`).
        const SLAB = 1 << 6;
        /// PG_reserved: never handed to the buddy allocator (holes, firmware, this array).
        const RESERVED = 1 << 7;
        /// PG_private: `private` carries filesystem or swap data.
        const PRIVATE = 1 << 8;
        /// PG_writeback: being written back.
        const WRITEBACK = 1 << 9;
        /// PG_head: first page of a compound page; `order` holds its order.
        const HEAD = 1 << 10;
        /// Tail page of a compound page (Linux: bit 0 of `compound_head`); `private` holds the
        /// head's frame number.
        const TAIL = 1 << 11;
        /// PG_swapbacked: anonymous or shmem page backed by swap.
        const SWAPBACKED = 1 << 12;
        /// PG_unevictable.
        const UNEVICTABLE = 1 << 13;
        /// PG_mlocked.
        const MLOCKED = 1 << 14;
        /// PageBuddy: first page of a free block on a buddy free list; `order` is the block's.
        const BUDDY = 1 << 15;
        /// Free order-0 page sitting on a per-CPU list (Linux has no flag for this; it lets
        /// mmkit detect a double free that would otherwise corrupt a PCP list).
        const PCP = 1 << 16;
    }
}

/// Sentinel for "no frame" in the 32-bit list links (indices into the descriptor array).
pub(crate) const NIL: u32 = u32::MAX;

/// The descriptor of one physical frame: Linux's `struct page`.
///
/// Field by field (the Linux field it mirrors in parentheses):
/// - `flags` (Linux: `flags`): [`PageFlags`].
/// - `refcount` (Linux: `_refcount`): references; 0 while free, 1 after allocation.
/// - `mapcount` (Linux: `_mapcount`): page-table mappings **minus one** (-1 = unmapped), Linux's
///   convention so that "first map" is the transition -1 → 0 detected by `atomic_inc_and_test`.
/// - `order` (Linux: `compound_order` / `buddy_order`): order of a free buddy block, or of an
///   allocated block's head.
/// - `zone` (Linux: `page_zonenum`): fixed at boot.
/// - `lru_prev` / `lru_next` (Linux: `lru`): list links, used by exactly one owner at a time: the
///   buddy free list (BUDDY), a per-CPU list (PCP), a slab cache's partial/full/free list
///   (SLAB), or, later, reclaim's LRU lists (LRU). Stored as 32-bit array indices (`NIL` = none).
/// - `mapping` / `index` (Linux: `mapping`, `index`): owning object and page offset in it, for the
///   reverse map. `mapping` is an opaque token the owner chooses; 0 means none.
/// - `private` (Linux: `private`): owner data; for a tail page the head's frame number, for a slab
///   the cache id.
/// - `slab_free` / `slab_inuse` (Linux: `struct slab`'s `freelist` / `inuse`): a slab's first free
///   object (byte offset, `NIL` = none) and its count of objects handed out.
#[derive(Debug)]
#[repr(C, align(64))]
pub struct PageMeta {
    flags: AtomicU32,
    refcount: AtomicI32,
    mapcount: AtomicI32,
    order: AtomicU8,
    zone: AtomicU8,
    lru_prev: AtomicU32,
    lru_next: AtomicU32,
    mapping: AtomicUsize,
    index: AtomicU64,
    private: AtomicU64,
    slab_free: AtomicU32,
    slab_inuse: AtomicU32,
}

/// Size of one descriptor slot, as in Asterinas' `META_SLOT_SIZE`.
pub const PAGE_META_SIZE: usize = 64;
const _: () = assert!(core::mem::size_of::<PageMeta>() == PAGE_META_SIZE);
const _: () = assert!(core::mem::align_of::<PageMeta>() == PAGE_META_SIZE);

impl PageMeta {
    #[inline]
    /// A reserved, unlinked descriptor in `zone`.
    pub(crate) const fn new_reserved(zone: u8) -> Self {
        Self {
            flags: AtomicU32::new(PageFlags::RESERVED.bits()),
            refcount: AtomicI32::new(1),
            mapcount: AtomicI32::new(-1),
            order: AtomicU8::new(0),
            zone: AtomicU8::new(zone),
            lru_prev: AtomicU32::new(NIL),
            lru_next: AtomicU32::new(NIL),
            mapping: AtomicUsize::new(0),
            index: AtomicU64::new(0),
            private: AtomicU64::new(0),
            slab_free: AtomicU32::new(NIL),
            slab_inuse: AtomicU32::new(0),
        }
    }

    /// Current flags.
    #[inline]
    pub fn flags(&self) -> PageFlags {
        PageFlags::from_bits_retain(self.flags.load(Ordering::Acquire))
    }
    /// Atomically sets `f` (Linux's `SetPageXxx`).
    #[inline]
    pub fn set_flags(&self, f: PageFlags) {
        self.flags.fetch_or(f.bits(), Ordering::AcqRel);
    }
    /// Atomically clears `f` (Linux's `ClearPageXxx`).
    #[inline]
    pub fn clear_flags(&self, f: PageFlags) {
        self.flags.fetch_and(!f.bits(), Ordering::AcqRel);
    }
    /// Replaces all flags; only for the owner of a page that nobody else can see.
    #[inline]
    pub(crate) fn store_flags(&self, f: PageFlags) {
        self.flags.store(f.bits(), Ordering::Release);
    }

    /// Reference count (Linux's `page_ref_count`).
    #[inline]
    pub fn refcount(&self) -> i32 {
        self.refcount.load(Ordering::Acquire)
    }
    /// Takes a reference (Linux's `get_page`). The caller must already hold one.
    #[inline]
    pub fn get(&self) {
        self.refcount.fetch_add(1, Ordering::Relaxed);
    }
    #[inline]
    /// Takes a reference unless the count is zero (Linux's `get_page_unless_zero`), for
    /// lookups that race with the final put.
    pub fn get_unless_zero(&self) -> bool {
        let mut cur = self.refcount.load(Ordering::Relaxed);
        while cur > 0 {
            match self.refcount.compare_exchange_weak(
                cur,
                cur + 1,
                Ordering::Acquire,
                Ordering::Relaxed,
            ) {
                Ok(_) => return true,
                Err(v) => cur = v,
            }
        }
        false
    }
    #[inline]
    /// Drops a reference; true when it was the last (Linux's `put_page_testzero`). Never goes
    /// below zero: a put on a free page returns false.
    pub(crate) fn put_testzero(&self) -> bool {
        let mut cur = self.refcount.load(Ordering::Relaxed);
        while cur > 0 {
            match self.refcount.compare_exchange_weak(
                cur,
                cur - 1,
                Ordering::AcqRel,
                Ordering::Relaxed,
            ) {
                Ok(_) => return cur == 1,
                Err(v) => cur = v,
            }
        }
        false
    }
    #[inline]
    pub(crate) fn set_refcount(&self, v: i32) {
        self.refcount.store(v, Ordering::Release);
    }

    /// Number of page-table mappings (Linux's `page_mapcount`, i.e. `_mapcount + 1`).
    #[inline]
    pub fn mapcount(&self) -> i32 {
        self.mapcount.load(Ordering::Acquire) + 1
    }
    /// Records one more mapping; true if it is the first (Linux's `atomic_inc_and_test` on
    /// `_mapcount` in `page_add_*_rmap`).
    #[inline]
    pub fn inc_mapcount(&self) -> bool {
        self.mapcount.fetch_add(1, Ordering::AcqRel) == -1
    }
    /// Records one mapping fewer; true if it was the last (Linux's `atomic_add_negative(-1)`
    /// in `page_remove_rmap`).
    #[inline]
    pub fn dec_mapcount(&self) -> bool {
        self.mapcount.fetch_sub(1, Ordering::AcqRel) == 0
    }
    #[inline]
    pub(crate) fn reset_mapcount(&self) {
        self.mapcount.store(-1, Ordering::Relaxed);
    }

    /// Order of the block this page heads (buddy or allocated).
    #[inline]
    pub fn order(&self) -> u8 {
        self.order.load(Ordering::Relaxed)
    }
    #[inline]
    pub(crate) fn set_order(&self, o: u8) {
        self.order.store(o, Ordering::Relaxed);
    }
    /// Index of the zone the frame belongs to (fixed at boot).
    #[inline]
    pub fn zone_index(&self) -> u8 {
        self.zone.load(Ordering::Relaxed)
    }

    /// Owner token for the reverse map (0 = none).
    #[inline]
    pub fn mapping(&self) -> usize {
        self.mapping.load(Ordering::Acquire)
    }
    /// Page offset inside the owner.
    #[inline]
    pub fn index(&self) -> u64 {
        self.index.load(Ordering::Acquire)
    }
    #[inline]
    /// Sets owner and offset (Linux's `page->mapping = ...; page->index = ...`).
    pub fn set_mapping(&self, mapping: usize, index: u64) {
        self.index.store(index, Ordering::Relaxed);
        self.mapping.store(mapping, Ordering::Release);
    }
    /// Owner-private word.
    #[inline]
    pub fn private(&self) -> u64 {
        self.private.load(Ordering::Acquire)
    }
    /// Sets the owner-private word.
    #[inline]
    pub fn set_private(&self, v: u64) {
        self.private.store(v, Ordering::Release);
    }

    #[inline]
    pub(crate) fn prev(&self) -> u32 {
        self.lru_prev.load(Ordering::Relaxed)
    }
    #[inline]
    pub(crate) fn next(&self) -> u32 {
        self.lru_next.load(Ordering::Relaxed)
    }
    #[inline]
    pub(crate) fn set_prev(&self, i: u32) {
        self.lru_prev.store(i, Ordering::Relaxed);
    }
    #[inline]
    pub(crate) fn set_next(&self, i: u32) {
        self.lru_next.store(i, Ordering::Relaxed);
    }
    #[inline]
    pub(crate) fn slab_free(&self) -> u32 {
        self.slab_free.load(Ordering::Relaxed)
    }
    #[inline]
    pub(crate) fn set_slab_free(&self, v: u32) {
        self.slab_free.store(v, Ordering::Relaxed);
    }
    /// Objects of this slab handed out (including those parked on per-CPU freelists).
    #[inline]
    pub fn slab_inuse(&self) -> u32 {
        self.slab_inuse.load(Ordering::Relaxed)
    }
    #[inline]
    pub(crate) fn set_slab_inuse(&self, v: u32) {
        self.slab_inuse.store(v, Ordering::Relaxed);
    }
}

/// The descriptor array for frames `[base_pfn, base_pfn + len)`: Linux's `mem_map` with
/// FLATMEM's O(1) `pfn_to_page` / `page_to_pfn` (one subtraction each way).
///
/// Holes inside the span get descriptors too (marked RESERVED), as with FLATMEM; a machine with
/// huge holes pays 64 bytes per hole frame. SPARSEMEM-style sections are a possible refinement.
#[derive(Debug)]
pub struct MetaArray {
    base: NonNull<PageMeta>,
    len: u32,
    base_pfn: u64,
}

// SAFETY: the array is only reached through `&PageMeta`, whose fields are all atomics; the
// memory stays reserved for as long as the `MetaArray` exists (see `MetaArray::new`).
unsafe impl Send for MetaArray {}
// SAFETY: as above; shared access only ever goes through atomics.
unsafe impl Sync for MetaArray {}

impl MetaArray {
    /// Initialises `len` descriptors at `base`, all RESERVED in zone `zone_of(pfn)`.
    ///
    /// # Safety
    /// `base` must point to `len * 64` writable bytes, 64-byte aligned, that nothing else uses
    /// for as long as the returned array (and every reference obtained from it) lives.
    pub(crate) unsafe fn new(
        base: NonNull<PageMeta>,
        len: u32,
        base_pfn: u64,
        mut zone_of: impl FnMut(u64) -> u8,
    ) -> Self {
        for i in 0..len as usize {
            // SAFETY: `i < len`, inside the region the caller guarantees is ours and aligned.
            unsafe {
                base.as_ptr().add(i).write(PageMeta::new_reserved(zone_of(base_pfn + i as u64)))
            };
        }
        Self { base, len, base_pfn }
    }

    /// Number of descriptors.
    #[inline]
    pub fn len(&self) -> usize {
        self.len as usize
    }
    /// Never empty once built; present for API symmetry.
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
    /// First frame number covered.
    #[inline]
    pub fn base_pfn(&self) -> Pfn {
        Pfn(self.base_pfn)
    }

    /// Array index of `pfn`, if covered.
    #[inline]
    pub(crate) fn idx(&self, pfn: u64) -> Option<u32> {
        let i = pfn.checked_sub(self.base_pfn)?;
        if i < self.len as u64 {
            Some(i as u32)
        } else {
            None
        }
    }
    /// Frame number of index `i`.
    #[inline]
    pub(crate) fn pfn_of_idx(&self, i: u32) -> u64 {
        self.base_pfn + i as u64
    }

    /// Descriptor at index `i` (`i < len`, checked in debug builds; out-of-range indices are
    /// clamped so that a logic error cannot read outside the array).
    #[inline]
    pub(crate) fn at(&self, i: u32) -> &PageMeta {
        debug_assert!(i < self.len);
        let i = if i < self.len { i } else { self.len - 1 };
        // SAFETY: `i < len`; the slot was initialised in `new` and lives as long as `self`.
        unsafe { &*self.base.as_ptr().add(i as usize) }
    }

    /// Linux's `pfn_to_page`: the descriptor of `pfn`, or `None` outside the array.
    #[inline]
    pub fn get(&self, pfn: Pfn) -> Option<&PageMeta> {
        self.idx(pfn.0).map(|i| self.at(i))
    }

    #[inline]
    /// Linux's `page_to_pfn`: the frame a descriptor from this array describes.
    pub fn pfn_of(&self, meta: &PageMeta) -> Option<Pfn> {
        let off = (meta as *const PageMeta as usize).checked_sub(self.base.as_ptr() as usize)?;
        let i = off / PAGE_META_SIZE;
        if off % PAGE_META_SIZE == 0 && i < self.len as usize {
            Some(Pfn(self.base_pfn + i as u64))
        } else {
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_follow_linux_conventions() {
        let m = PageMeta::new_reserved(1);
        assert_eq!(m.zone_index(), 1);
        assert!(m.flags().contains(PageFlags::RESERVED));
        // _mapcount starts at -1: page_mapcount() == 0.
        assert_eq!(m.mapcount(), 0);
        assert!(m.inc_mapcount());
        assert!(!m.inc_mapcount());
        assert_eq!(m.mapcount(), 2);
        assert!(!m.dec_mapcount());
        assert!(m.dec_mapcount(), "last unmap");
        assert_eq!(m.mapcount(), 0);
        // refcount: put to zero reports the last reference, never goes negative.
        m.set_refcount(2);
        assert!(!m.put_testzero());
        assert!(m.put_testzero());
        assert!(!m.put_testzero());
        assert_eq!(m.refcount(), 0);
        assert!(!m.get_unless_zero());
        m.set_refcount(1);
        assert!(m.get_unless_zero());
        assert_eq!(m.refcount(), 2);
        m.set_flags(PageFlags::DIRTY | PageFlags::LRU);
        m.clear_flags(PageFlags::RESERVED | PageFlags::LRU);
        assert_eq!(m.flags(), PageFlags::DIRTY);
    }
}
