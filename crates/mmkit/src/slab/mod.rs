//! Slab allocator: kmalloc size classes and typed caches on top of the frame allocator.
//!
//! - [`SlabCache`] is one cache (Linux's `kmem_cache`): slabs of `1 << order` frames from the
//!   [`FrameAllocator`], kept on partial/full/free lists, fronted by per-CPU freelists.
//! - [`Kmalloc`] holds the generic caches kmalloc-8 … kmalloc-4096 (Linux's
//!   `kmalloc_caches[KMALLOC_NORMAL]`, including the 96 and 192 byte classes) and sends larger
//!   requests straight to the frame allocator (`kmalloc_large`). It implements
//!   [`GlobalAlloc`]; [`GlobalKmalloc`] wraps it for a `#[global_allocator]` static.
//! - [`TypedCache`] is a cache for one kernel type (VMA nodes, page-table pages, …): Linux's
//!   `KMEM_CACHE(struct, flags)`.
//!
//! Every object access goes through pointers obtained from the frame allocator's
//! `PhysAccess`, which must map each memory region linearly (checked at boot).
//!
//! # Differences from Linux's SLUB
//! - The per-CPU layer is SLAB-style (mm/slab.c before 6.8): a bounded list of free objects
//!   from any slab of the cache, refilled and flushed in batches, rather than SLUB's per-CPU
//!   slab with a lockless `cmpxchg_double` freelist, which needs preemption control that
//!   [`CpuId`] cannot promise. The per-CPU list is a spin lock's worth slower and holds at
//!   most `limit` objects (120 / 54 / 24 by size, as `enable_cpucache`).
//! - One node, no debugging (red zones, poisoning, tracking), no memcg accounting, no
//!   `SLAB_TYPESAFE_BY_RCU`; one empty slab is kept per cache, the rest go back at once.
//! - `kfree` of a pointer that is not an object is refused (`BadObject`) instead of a BUG.
//! - Cost of the objects: [`Kmalloc`] holds 12 caches with 64 per-CPU slots each (about
//!   50 KiB); build it in a static ([`GlobalKmalloc`]) on a boot stack that can hold it.
//!
//! # Locking
//! Lock order: slab per-CPU list lock → slab node lock → frame per-CPU list lock → zone lock.
//! The per-CPU list guards its objects' link words; the node lock guards the slab lists and
//! the slab fields of the head descriptors (`slab_free`, `slab_inuse`, `lru`).

mod cache;

use core::alloc::{GlobalAlloc, Layout};
use core::fmt;
use core::marker::PhantomData;
use core::ptr::{self, NonNull};
use core::sync::atomic::{AtomicU64, Ordering};

use crate::addr::{Pfn, PAGE_SIZE};
use crate::frame::{AllocError, FaultInjector, FrameAllocator, Gfp, GfpFlags, MAX_ORDER};
use crate::platform::{CpuId, PhysAccess};

pub use cache::SlabCache;

/// Ids 1..=12 name the kmalloc classes; typed caches are numbered from here.
pub(crate) const FIRST_TYPED_ID: u32 = 64;

/// Why a slab operation failed. Allocation failures become `ENOMEM` at the syscall boundary.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SlabError {
    /// The frame allocator had no memory for a new slab.
    OutOfMemory,
    /// Failed on purpose by a fault injector (slab's or the frame allocator's).
    Injected,
    /// Size or alignment no cache (nor the page allocator) can serve.
    BadLayout,
    /// A free of a pointer that is not an object of this cache / allocator.
    BadObject,
}

impl From<AllocError> for SlabError {
    fn from(e: AllocError) -> Self {
        match e {
            AllocError::Injected => SlabError::Injected,
            AllocError::BadOrder => SlabError::BadLayout,
            AllocError::OutOfMemory => SlabError::OutOfMemory,
        }
    }
}

impl From<SlabError> for crate::errno::Errno {
    fn from(_: SlabError) -> Self {
        crate::errno::Errno::ENOMEM
    }
}

impl fmt::Display for SlabError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            SlabError::OutOfMemory => "out of memory",
            SlabError::Injected => "injected allocation failure",
            SlabError::BadLayout => "unsupported size or alignment",
            SlabError::BadObject => "not an object of this cache",
        })
    }
}

/// Per-cache statistics (the columns of /proc/slabinfo plus counters).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SlabStats {
    /// Cache name.
    pub name: &'static str,
    /// Object stride.
    pub object_size: usize,
    /// Objects per slab.
    pub objects_per_slab: u32,
    /// Slab order.
    pub slab_order: u8,
    /// Slabs held.
    pub slabs: u64,
    /// Slabs with some objects free.
    pub slabs_partial: u64,
    /// Slabs with no object free.
    pub slabs_full: u64,
    /// Empty slabs kept for reuse.
    pub slabs_free: u64,
    /// Objects handed out and not yet freed (a leak check asserts 0).
    pub objects_in_use: u64,
    /// Free objects parked on per-CPU freelists.
    pub objects_cached: u64,
    /// Successful allocations.
    pub allocs: u64,
    /// Frees.
    pub frees: u64,
    /// Failed allocations.
    pub failures: u64,
    /// Slabs ever allocated.
    pub slabs_allocated: u64,
    /// Slabs ever given back.
    pub slabs_released: u64,
}

/// kmalloc size classes (Linux's `kmalloc_info[]` from 8 to 4096).
pub const KMALLOC_SIZES: [usize; 12] = [8, 16, 32, 64, 96, 128, 192, 256, 512, 1024, 2048, 4096];
/// Largest size served by a slab cache; larger requests go to the frame allocator.
pub const KMALLOC_MAX_CACHE_SIZE: usize = 4096;

const KMALLOC_NAMES: [&str; 12] = [
    "kmalloc-8",
    "kmalloc-16",
    "kmalloc-32",
    "kmalloc-64",
    "kmalloc-96",
    "kmalloc-128",
    "kmalloc-192",
    "kmalloc-256",
    "kmalloc-512",
    "kmalloc-1k",
    "kmalloc-2k",
    "kmalloc-4k",
];

/// Linux's `kmalloc_size_index[]`: class for sizes 1..=192 by `(size - 1) / 8`.
const SIZE_INDEX: [u8; 24] =
    [0, 1, 2, 2, 3, 3, 3, 3, 4, 4, 4, 4, 5, 5, 5, 5, 6, 6, 6, 6, 6, 6, 6, 6];

/// The kmalloc class serving `layout`, or `None` if it needs whole pages (Linux's
/// `kmalloc_index` plus the rule that a class must satisfy the alignment).
#[inline]
pub fn kmalloc_class(layout: Layout) -> Option<usize> {
    let size = layout.size().max(1);
    let align = layout.align();
    if size > KMALLOC_MAX_CACHE_SIZE || align > KMALLOC_MAX_CACHE_SIZE {
        return None;
    }
    let mut c = if size <= 192 {
        SIZE_INDEX[(size - 1) / 8] as usize
    } else {
        // 256 → 7, 512 → 8, … 4096 → 11.
        (usize::BITS - (size - 1).leading_zeros()) as usize - 1
    };
    // 96 is only 32-aligned and 192 only 64-aligned inside a slab; skip them when more is
    // needed (any power-of-two class is aligned to its size).
    while KMALLOC_SIZES[c] & (align - 1) != 0 {
        c += 1;
    }
    Some(c)
}

/// Order of the page block for a large allocation.
fn large_order(layout: Layout) -> Option<u32> {
    let bytes = layout.size().max(layout.align()).max(1);
    let pages = bytes.div_ceil(PAGE_SIZE as usize);
    let order = pages.next_power_of_two().trailing_zeros();
    (order as usize <= MAX_ORDER).then_some(order)
}

/// The generic kmalloc caches over one frame allocator.
pub struct Kmalloc<'f, P: PhysAccess, C: CpuId> {
    frames: &'f FrameAllocator<P, C>,
    caches: [SlabCache; 12],
    inject: FaultInjector,
    large_pages: AtomicU64,
    large_live: AtomicU64,
}

impl<P: PhysAccess, C: CpuId> fmt::Debug for Kmalloc<'_, P, C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Kmalloc")
            .field("large_pages", &self.large_pages.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

impl<'f, P: PhysAccess, C: CpuId> Kmalloc<'f, P, C> {
    /// Sets up the kmalloc caches (Linux's `create_kmalloc_caches`). Takes no memory yet.
    pub fn new(frames: &'f FrameAllocator<P, C>) -> Self {
        let caches = core::array::from_fn(|i| {
            // Every class has a valid power-of-two alignment and a size ≤ 4096.
            let align = KMALLOC_SIZES[i] & KMALLOC_SIZES[i].wrapping_neg();
            match SlabCache::with_id(KMALLOC_NAMES[i], i as u32 + 1, KMALLOC_SIZES[i], align) {
                Ok(c) => c,
                Err(_) => unreachable!("kmalloc class {i} is a valid layout"),
            }
        });
        Self {
            frames,
            caches,
            inject: FaultInjector::new(),
            large_pages: AtomicU64::new(0),
            large_live: AtomicU64::new(0),
        }
    }

    /// The frame allocator underneath.
    pub fn frames(&self) -> &'f FrameAllocator<P, C> {
        self.frames
    }
    /// The fault injector for kmalloc calls (frame allocations have their own).
    pub fn fault_injector(&self) -> &FaultInjector {
        &self.inject
    }
    /// The cache of class `i` (index into [`KMALLOC_SIZES`]).
    pub fn cache(&self, i: usize) -> Option<&SlabCache> {
        self.caches.get(i)
    }

    /// Allocates `layout` (Linux's `kmalloc`): a slab object up to 4096 bytes, whole pages
    /// above. Never panics; `BadLayout` if it needs more than an order-10 block.
    #[inline]
    pub fn alloc(&self, layout: Layout) -> Result<NonNull<u8>, SlabError> {
        match kmalloc_class(layout) {
            Some(c) => {
                let p = self.caches[c].alloc(self.frames, &self.inject)?;
                NonNull::new(p).ok_or(SlabError::OutOfMemory)
            }
            None => self.alloc_large(layout),
        }
    }

    fn alloc_large(&self, layout: Layout) -> Result<NonNull<u8>, SlabError> {
        let order = large_order(layout).ok_or(SlabError::BadLayout)?;
        if self.inject.should_fail() {
            return Err(SlabError::Injected);
        }
        let pfn = self.frames.alloc(Gfp::KERNEL.with(GfpFlags::COMP), order)?;
        let p = self.frames.frame_ptr(pfn);
        if p.is_null() || (p as usize) & (layout.align() - 1) != 0 {
            let _ = self.frames.free(pfn, order);
            return Err(SlabError::BadLayout);
        }
        self.large_pages.fetch_add(1 << order, Ordering::Relaxed);
        self.large_live.fetch_add(1, Ordering::Relaxed);
        NonNull::new(p).ok_or(SlabError::OutOfMemory)
    }

    /// Frees memory from [`Self::alloc`] (Linux's `kfree`): finds the slab, or the page block
    /// of a large allocation, from the descriptor of the frame `ptr` lies in.
    ///
    /// # Safety
    /// `ptr` came from this allocator and is not used afterwards.
    #[inline]
    pub unsafe fn free(&self, ptr: NonNull<u8>) -> Result<(), SlabError> {
        let fa = self.frames;
        let (i, off, id) =
            cache::block_of(fa, ptr.as_ptr() as usize).ok_or(SlabError::BadObject)?;
        if let Some(id) = id {
            let cache = (id as usize).checked_sub(1).and_then(|c| self.caches.get(c));
            let cache = cache.ok_or(SlabError::BadObject)?;
            // Kmalloc class `c` has id `c + 1` by construction (`Kmalloc::new`).
            if !cache.valid_offset(off) {
                return Err(SlabError::BadObject);
            }
            // SAFETY: `ptr` is an object boundary in one of `cache`'s slabs (checked above)
            // and our caller gives it up.
            unsafe { cache.free_validated(fa, ptr.as_ptr()) };
            return Ok(());
        }
        // A large allocation: must be the first byte of a block head.
        if off != 0 {
            return Err(SlabError::BadObject);
        }
        let meta = fa.meta_array();
        let pfn = Pfn(meta.pfn_of_idx(i));
        let order = meta.at(i).order() as u32;
        fa.free(pfn, order).map_err(|_| SlabError::BadObject)?;
        self.large_pages.fetch_sub(1 << order, Ordering::Relaxed);
        self.large_live.fetch_sub(1, Ordering::Relaxed);
        Ok(())
    }

    /// Frees memory from [`Self::alloc`] given the layout it was allocated with (the
    /// `GlobalAlloc::dealloc` case): the class comes from the layout, and the object is still
    /// checked against that cache's slabs.
    ///
    /// # Safety
    /// As for [`Self::free`]; `layout` is the one passed to `alloc`.
    #[inline]
    pub unsafe fn free_layout(&self, ptr: NonNull<u8>, layout: Layout) -> Result<(), SlabError> {
        match kmalloc_class(layout) {
            // SAFETY: forwarded from our caller; the cache validates the object.
            Some(c) => unsafe { self.caches[c].free(self.frames, ptr.as_ptr()) },
            // SAFETY: forwarded from our caller.
            None => unsafe { self.free(ptr) },
        }
    }

    /// Statistics of every kmalloc cache.
    pub fn stats(&self) -> [SlabStats; 12] {
        core::array::from_fn(|i| self.caches[i].stats())
    }
    /// Frames held by live large allocations.
    pub fn large_pages(&self) -> u64 {
        self.large_pages.load(Ordering::Relaxed)
    }
    /// Objects (and large allocations) in use across all classes: 0 when nothing leaked.
    pub fn objects_in_use(&self) -> u64 {
        let slab: u64 = self.caches.iter().map(|c| c.stats().objects_in_use).sum();
        slab + self.large_live.load(Ordering::Relaxed)
    }
    /// Empties per-CPU freelists and frees empty slabs of every class.
    pub fn shrink(&self) {
        for c in &self.caches {
            c.shrink(self.frames);
        }
    }
    /// Checks every cache's invariants; for tests.
    pub fn check(&self) -> Result<(), &'static str> {
        self.caches.iter().try_for_each(|c| c.check(self.frames))
    }
}

impl<P: PhysAccess, C: CpuId> Drop for Kmalloc<'_, P, C> {
    /// Returns every empty slab; slabs with live objects stay allocated (a leak the frame
    /// allocator's statistics show).
    fn drop(&mut self) {
        self.shrink();
    }
}

// SAFETY (for both impls): `alloc` returns memory from a slab object or page block at least
// `layout.size()` bytes long and aligned to `layout.align()` (classes are chosen for the
// alignment; large blocks are checked), or null on failure. `dealloc` hands the pointer back to
// the allocator it came from.
unsafe impl<P: PhysAccess, C: CpuId> GlobalAlloc for Kmalloc<'_, P, C> {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        match Kmalloc::alloc(self, layout) {
            Ok(p) => p.as_ptr(),
            Err(_) => ptr::null_mut(),
        }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        if let Some(p) = NonNull::new(ptr) {
            // SAFETY: GlobalAlloc's contract: `ptr` came from `alloc` on this allocator with
            // `layout`.
            let _ = unsafe { self.free_layout(p, layout) };
        }
    }
}

/// A `#[global_allocator]`-ready wrapper: constructible in a `static`, initialised once at
/// boot; returns null before that.
pub struct GlobalKmalloc<P: PhysAccess + 'static, C: CpuId + 'static> {
    inner: spin::Once<Kmalloc<'static, P, C>>,
}

impl<P: PhysAccess, C: CpuId> fmt::Debug for GlobalKmalloc<P, C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GlobalKmalloc").field("ready", &self.inner.is_completed()).finish()
    }
}

impl<P: PhysAccess, C: CpuId> GlobalKmalloc<P, C> {
    /// An uninitialised heap.
    pub const fn new() -> Self {
        Self { inner: spin::Once::new() }
    }
    /// Installs the heap over `frames` (the first call wins).
    pub fn init(&self, frames: &'static FrameAllocator<P, C>) -> &Kmalloc<'static, P, C> {
        self.inner.call_once(|| Kmalloc::new(frames))
    }
    /// The heap, once initialised.
    pub fn get(&self) -> Option<&Kmalloc<'static, P, C>> {
        self.inner.get()
    }
}

impl<P: PhysAccess, C: CpuId> Default for GlobalKmalloc<P, C> {
    fn default() -> Self {
        Self::new()
    }
}

// SAFETY: forwards to `Kmalloc`'s implementation, which upholds the contract; before
// initialisation every allocation fails with null and nothing can be deallocated.
unsafe impl<P: PhysAccess + Sync + Send, C: CpuId + Sync + Send> GlobalAlloc
    for GlobalKmalloc<P, C>
{
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        match self.inner.get() {
            // SAFETY: forwarded.
            Some(k) => unsafe { GlobalAlloc::alloc(k, layout) },
            None => ptr::null_mut(),
        }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        if let Some(k) = self.inner.get() {
            // SAFETY: forwarded.
            unsafe { GlobalAlloc::dealloc(k, ptr, layout) }
        }
    }
}

/// A cache for one kernel type (Linux's `KMEM_CACHE`), e.g. VMA nodes or page-table pages.
/// Dropping it returns its empty slabs; objects still allocated then stay allocated (and show
/// up in the frame allocator's leak check), as `kmem_cache_destroy` refuses a busy cache.
pub struct TypedCache<'f, T, P: PhysAccess, C: CpuId> {
    frames: &'f FrameAllocator<P, C>,
    cache: SlabCache,
    inject: FaultInjector,
    _t: PhantomData<fn(T) -> T>,
}

impl<T, P: PhysAccess, C: CpuId> fmt::Debug for TypedCache<'_, T, P, C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TypedCache").field("cache", &self.cache.name()).finish_non_exhaustive()
    }
}

impl<'f, T, P: PhysAccess, C: CpuId> TypedCache<'f, T, P, C> {
    /// A cache named `name` for `T`.
    pub fn new(frames: &'f FrameAllocator<P, C>, name: &'static str) -> Result<Self, SlabError> {
        let cache = SlabCache::new(name, core::mem::size_of::<T>(), core::mem::align_of::<T>())?;
        Ok(Self { frames, cache, inject: FaultInjector::new(), _t: PhantomData })
    }
    /// The underlying cache.
    pub fn cache(&self) -> &SlabCache {
        &self.cache
    }
    /// The fault injector for this cache.
    pub fn fault_injector(&self) -> &FaultInjector {
        &self.inject
    }
    /// Allocates an object and moves `value` into it.
    pub fn alloc(&self, value: T) -> Result<NonNull<T>, SlabError> {
        let p = self.cache.alloc(self.frames, &self.inject)? as *mut T;
        // SAFETY: `p` is a fresh object of at least size_of::<T>() bytes aligned for T.
        unsafe { p.write(value) };
        NonNull::new(p).ok_or(SlabError::OutOfMemory)
    }
    /// Drops the object and returns its memory.
    ///
    /// # Safety
    /// `obj` came from [`Self::alloc`] on this cache and is not used afterwards.
    pub unsafe fn free(&self, obj: NonNull<T>) -> Result<(), SlabError> {
        let raw = obj.as_ptr() as *mut u8;
        // Validate before dropping, so a foreign pointer is refused untouched.
        self.cache.owns(self.frames, raw)?;
        // SAFETY: the caller guarantees `obj` is a live T from this cache, not used again.
        unsafe {
            ptr::drop_in_place(obj.as_ptr());
            self.cache.free(self.frames, raw)
        }
    }
    /// Statistics.
    pub fn stats(&self) -> SlabStats {
        self.cache.stats()
    }
    /// Empties per-CPU lists and frees empty slabs.
    pub fn shrink(&self) {
        self.cache.shrink(self.frames)
    }
}

impl<T, P: PhysAccess, C: CpuId> Drop for TypedCache<'_, T, P, C> {
    fn drop(&mut self) {
        self.cache.shrink(self.frames);
    }
}
