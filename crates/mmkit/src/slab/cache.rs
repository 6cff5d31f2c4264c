//! One slab cache (Linux's `struct kmem_cache`): objects of one size carved from slabs of
//! `1 << order` frames, with per-CPU freelists in front of partial/full/free slab lists.
//!
//! A slab's state lives in its head frame's [`PageMeta`] (as Linux overlays `struct slab` on
//! `struct page`): SLAB flag, `private` = cache id, `slab_free` = first free object (byte
//! offset inside the slab; each free object stores the next offset in its first 4 bytes),
//! `slab_inuse` = objects taken from the slab, and the `lru` link for the node lists.
//!
//! The per-CPU freelists hold objects from any of the cache's slabs, linked through their first
//! 8 bytes (the address of the next object), like SLAB's per-CPU `array_cache`: allocation
//! and free touch only this CPU's list; a refill or flush moves `batch` objects between the
//! list and the slabs under the node lock (mm/slab.c `cache_alloc_refill` / `cache_flusharray`).

use core::sync::atomic::{AtomicU32, AtomicU64, Ordering};

use spin::Mutex;

use crate::addr::{Pfn, PAGE_SHIFT, PAGE_SIZE};
use crate::frame::meta::{MetaArray, PageFlags, NIL};
use crate::frame::pcp::CachePadded;
use crate::frame::{FaultInjector, FrameAllocator, Gfp, GfpFlags, MAX_CPUS};
use crate::platform::{CpuId, PhysAccess};

use super::{SlabError, SlabStats};

/// Empty slabs a cache keeps for reuse before returning them to the frame allocator.
const KEEP_FREE_SLABS: u64 = 1;

static NEXT_CACHE_ID: AtomicU32 = AtomicU32::new(super::FIRST_TYPED_ID);

/// Finds the block `obj` lies in: its head descriptor index, `obj`'s byte offset from the
/// block start (computed from frame numbers, valid because `PhysAccess` maps regions
/// linearly), and the owning cache id if the block is a slab (Linux's `virt_to_slab`).
#[inline]
pub(crate) fn block_of<P: PhysAccess, C: CpuId>(
    fa: &FrameAllocator<P, C>,
    obj: usize,
) -> Option<(u32, u32, Option<u32>)> {
    let meta = fa.meta_array();
    let pfn = fa.ptr_to_pfn(obj as *const u8)?;
    let mut i = meta.idx(pfn.0)?;
    let mut m = meta.at(i);
    let mut f = m.flags();
    if f.contains(PageFlags::TAIL) {
        i = meta.idx(m.private())?;
        m = meta.at(i);
        f = m.flags();
    }
    let frames = pfn.0.checked_sub(meta.pfn_of_idx(i))?;
    let off = (frames << PAGE_SHIFT) as usize + (obj & (PAGE_SIZE as usize - 1));
    let off = u32::try_from(off).ok()?;
    let id = f.contains(PageFlags::SLAB).then(|| m.private() as u32);
    Some((i, off, id))
}

/// A CPU's freelist: a stack of free objects linked through their first word.
#[derive(Debug)]
struct CpuList {
    /// Address of the top object, 0 when empty.
    head: usize,
    count: u32,
    allocs: u64,
    frees: u64,
}

/// The cache's slab lists (Linux's `struct kmem_cache_node`). Guarded by the node lock.
#[derive(Debug)]
struct Node {
    /// Heads (descriptor indices) of the partial, full and free lists.
    heads: [u32; 3],
    /// Slabs on each list.
    counts: [u64; 3],
    /// Objects taken out of slabs (handed out or on a per-CPU list).
    taken: u64,
}

const PARTIAL: usize = 0;
const FULL: usize = 1;
const FREE: usize = 2;

impl Node {
    fn list_of(inuse: u32, objects: u32) -> usize {
        if inuse == 0 {
            FREE
        } else if inuse >= objects {
            FULL
        } else {
            PARTIAL
        }
    }

    fn push(&mut self, meta: &MetaArray, i: u32, l: usize) {
        let m = meta.at(i);
        m.set_prev(NIL);
        m.set_next(self.heads[l]);
        if self.heads[l] != NIL {
            meta.at(self.heads[l]).set_prev(i);
        }
        self.heads[l] = i;
        self.counts[l] += 1;
    }

    fn unlink(&mut self, meta: &MetaArray, i: u32, l: usize) {
        let m = meta.at(i);
        let (p, n) = (m.prev(), m.next());
        if p != NIL {
            meta.at(p).set_next(n);
        } else {
            self.heads[l] = n;
        }
        if n != NIL {
            meta.at(n).set_prev(p);
        }
        m.set_prev(NIL);
        m.set_next(NIL);
        self.counts[l] -= 1;
    }
}

/// A cache of equally sized objects. Holds no reference to the frame allocator: every
/// operation takes it, so a cache can live in a `static` or inside a larger allocator.
///
/// Lock order: a per-CPU list lock, then the node lock, then the frame allocator's locks.
///
/// Layout: the read-mostly geometry shares the first cache line; each CPU's list has its own
/// line; the node lock and counters come last.
#[derive(Debug)]
#[repr(C)]
pub struct SlabCache {
    id: u32,
    /// Object stride: size rounded up to the alignment (and to at least 8 bytes).
    size: u32,
    /// `ceil(2^32 / size)`, for division-free object indexing.
    recip: u32,
    objects: u32,
    /// Per-CPU list limit and refill/flush batch (mm/slab.c `enable_cpucache`).
    limit: u32,
    batch: u32,
    align: u32,
    order: u8,
    name: &'static str,
    cpus: [CachePadded<Mutex<CpuList>>; MAX_CPUS],
    node: Mutex<Node>,
    /// Allocations that failed.
    failures: AtomicU64,
    /// Slabs ever allocated / freed, for statistics.
    slabs_alloced: AtomicU64,
    slabs_freed: AtomicU64,
}

impl SlabCache {
    /// A cache of objects of `size` bytes aligned to `align` (Linux's `kmem_cache_create`).
    /// `size` up to one order-3 slab; `align` a power of two up to 4096.
    pub fn new(name: &'static str, size: usize, align: usize) -> Result<Self, SlabError> {
        let id = NEXT_CACHE_ID.fetch_add(1, Ordering::Relaxed);
        Self::with_id(name, id, size, align)
    }

    pub(crate) fn with_id(
        name: &'static str,
        id: u32,
        size: usize,
        align: usize,
    ) -> Result<Self, SlabError> {
        if !align.is_power_of_two() || align > PAGE_SIZE as usize {
            return Err(SlabError::BadLayout);
        }
        let align = align.max(8);
        let size = size.max(8).checked_next_multiple_of(align).ok_or(SlabError::BadLayout)?;
        if size > (PAGE_SIZE as usize) << 3 {
            return Err(SlabError::BadLayout);
        }
        // Smallest slab holding 8 objects, at most order 3 (SLUB's `calculate_order` aims at
        // a similar minimum object count with bounded waste).
        let mut order = 0u8;
        while order < 3 && ((PAGE_SIZE as usize) << order) / size < 8 {
            order += 1;
        }
        let objects = (((PAGE_SIZE as usize) << order) / size) as u32;
        // mm/slab.c enable_cpucache(): limit by object size, batch = (limit + 1) / 2.
        let limit = if size > 1024 {
            24
        } else if size > 256 {
            54
        } else {
            120
        };
        Ok(Self {
            name,
            id,
            size: size as u32,
            recip: (1u64 << 32).div_ceil(size as u64) as u32,
            align: align as u32,
            order,
            objects,
            limit,
            batch: limit.div_ceil(2),
            node: Mutex::new(Node { heads: [NIL; 3], counts: [0; 3], taken: 0 }),
            cpus: core::array::from_fn(|_| {
                CachePadded(Mutex::new(CpuList { head: 0, count: 0, allocs: 0, frees: 0 }))
            }),
            failures: AtomicU64::new(0),
            slabs_alloced: AtomicU64::new(0),
            slabs_freed: AtomicU64::new(0),
        })
    }

    /// Cache name (as in /proc/slabinfo).
    pub fn name(&self) -> &'static str {
        self.name
    }
    /// Object stride in bytes.
    pub fn object_size(&self) -> usize {
        self.size as usize
    }
    /// Guaranteed alignment.
    pub fn align(&self) -> usize {
        self.align as usize
    }
    /// Objects per slab.
    pub fn objects_per_slab(&self) -> u32 {
        self.objects
    }
    /// Slab order.
    pub fn slab_order(&self) -> u8 {
        self.order
    }
    /// The id stored in each slab's descriptor.
    pub fn id(&self) -> u32 {
        self.id
    }

    /// This CPU's freelist slot; CPUs without a slot of their own share slot 0, whose lock
    /// keeps that correct.
    #[inline]
    fn cpu_slot<P: PhysAccess, C: CpuId>(&self, fa: &FrameAllocator<P, C>) -> usize {
        fa.cpu_slot().unwrap_or(0)
    }

    /// Allocates one object (Linux's `kmem_cache_alloc`). The memory is uninitialised.
    #[inline]
    pub fn alloc<P: PhysAccess, C: CpuId>(
        &self,
        fa: &FrameAllocator<P, C>,
        inject: &FaultInjector,
    ) -> Result<*mut u8, SlabError> {
        if inject.should_fail() {
            self.failures.fetch_add(1, Ordering::Relaxed);
            return Err(SlabError::Injected);
        }
        let mut cl = self.cpus[self.cpu_slot(fa)].0.lock();
        if cl.head == 0 {
            if let Err(e) = self.refill(fa, &mut cl) {
                self.failures.fetch_add(1, Ordering::Relaxed);
                return Err(e);
            }
        }
        let obj = cl.head;
        // SAFETY: `obj` is a free object of this cache on our list: at least 8 bytes,
        // 8-aligned, inside an allocated slab; its first word is the list link.
        cl.head = unsafe { (obj as *const usize).read() };
        cl.count -= 1;
        cl.allocs += 1;
        Ok(obj as *mut u8)
    }

    /// Returns an object (Linux's `kmem_cache_free`). Checks that `obj` lies in one of this
    /// cache's slabs at an object boundary; anything else is refused and left alone.
    ///
    /// # Safety
    /// If `obj` passes those checks it must be an object allocated from this cache that is
    /// not used afterwards (no double free: that is not detected, as in SLUB without debug).
    #[inline]
    pub unsafe fn free<P: PhysAccess, C: CpuId>(
        &self,
        fa: &FrameAllocator<P, C>,
        obj: *mut u8,
    ) -> Result<(), SlabError> {
        self.owns(fa, obj)?;
        // SAFETY: checked above; the caller gives the object up.
        unsafe { self.free_validated(fa, obj) };
        Ok(())
    }

    /// The slab head descriptor index and the object's offset in the slab.
    #[inline]
    fn locate<P: PhysAccess, C: CpuId>(
        &self,
        fa: &FrameAllocator<P, C>,
        obj: usize,
    ) -> Option<(u32, u32)> {
        let (i, off, id) = block_of(fa, obj)?;
        (id == Some(self.id)).then_some((i, off))
    }

    /// `Ok` if `obj` is an object boundary inside one of this cache's slabs.
    #[inline]
    pub fn owns<P: PhysAccess, C: CpuId>(
        &self,
        fa: &FrameAllocator<P, C>,
        obj: *mut u8,
    ) -> Result<(), SlabError> {
        match self.locate(fa, obj as usize) {
            Some((_, off)) if self.valid_offset(off) => Ok(()),
            _ => Err(SlabError::BadObject),
        }
    }

    /// True if `off` is the start of an object. Divides by multiplying with a precomputed
    /// reciprocal, as Linux's `obj_to_index` does (`reciprocal_divide`): exact because
    /// `off * size < 2^32` for every slab of at most 32 KiB.
    #[inline]
    pub(crate) fn valid_offset(&self, off: u32) -> bool {
        let idx = ((off as u64 * self.recip as u64) >> 32) as u32;
        idx < self.objects && idx * self.size == off
    }

    /// Pushes an object already validated by the caller onto this CPU's freelist.
    ///
    /// # Safety
    /// `obj` is an object of this cache (see [`Self::owns`]) that the caller gives up.
    #[inline]
    pub(crate) unsafe fn free_validated<P: PhysAccess, C: CpuId>(
        &self,
        fa: &FrameAllocator<P, C>,
        obj: *mut u8,
    ) {
        let mut cl = self.cpus[self.cpu_slot(fa)].0.lock();
        // SAFETY: `obj` is an object of this cache that the caller gives up; it is 8-aligned
        // and at least 8 bytes, so its first word can hold the list link.
        unsafe { (obj as *mut usize).write(cl.head) };
        cl.head = obj as usize;
        cl.count += 1;
        cl.frees += 1;
        if cl.count > self.limit {
            self.flush(fa, &mut cl, self.batch);
        }
    }

    /// Allocates and formats a new slab (Linux's `allocate_slab`), adding it to the free list.
    fn grow<P: PhysAccess, C: CpuId>(
        &self,
        fa: &FrameAllocator<P, C>,
        node: &mut Node,
    ) -> Result<(), SlabError> {
        let pfn = fa
            .alloc(Gfp::KERNEL.with(GfpFlags::COMP), self.order as u32)
            .map_err(SlabError::from)?;
        let meta = fa.meta_array();
        let Some(i) = meta.idx(pfn.0) else {
            return Err(SlabError::OutOfMemory);
        };
        let m = meta.at(i);
        m.set_flags(PageFlags::SLAB);
        m.set_private(self.id as u64);
        m.set_slab_inuse(0);
        let base = fa.frame_ptr(pfn);
        for k in 0..self.objects {
            let next = if k + 1 < self.objects { (k + 1) * self.size } else { NIL };
            // SAFETY: the slab's frames were just allocated to us and PhysAccess maps them
            // linearly (checked at boot); object k lies inside the slab and is 4-aligned.
            unsafe { (base.add((k * self.size) as usize) as *mut u32).write(next) };
        }
        m.set_slab_free(0);
        node.push(meta, i, FREE);
        self.slabs_alloced.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }

    /// Moves up to `batch` objects from the slabs to `cl` (mm/slab.c `cache_alloc_refill`),
    /// growing the cache by one slab if no slab has a free object.
    fn refill<P: PhysAccess, C: CpuId>(
        &self,
        fa: &FrameAllocator<P, C>,
        cl: &mut CpuList,
    ) -> Result<(), SlabError> {
        let meta = fa.meta_array();
        let mut node = self.node.lock();
        let mut moved = 0;
        while moved < self.batch {
            let mut i = node.heads[PARTIAL];
            if i == NIL {
                i = node.heads[FREE];
            }
            if i == NIL {
                if moved > 0 {
                    break;
                }
                self.grow(fa, &mut node)?;
                continue;
            }
            let m = meta.at(i);
            let before = m.slab_inuse();
            node.unlink(meta, i, Node::list_of(before, self.objects));
            let base = fa.frame_ptr(Pfn(meta.pfn_of_idx(i))) as usize;
            let mut inuse = before;
            let mut off = m.slab_free();
            while off != NIL && moved < self.batch {
                let obj = base + off as usize;
                // SAFETY: `obj` is a free object of this slab; its first 4 bytes hold the
                // next free offset, then its first word becomes our list link.
                unsafe {
                    off = (obj as *const u32).read();
                    (obj as *mut usize).write(cl.head);
                }
                cl.head = obj;
                cl.count += 1;
                inuse += 1;
                moved += 1;
            }
            m.set_slab_free(off);
            m.set_slab_inuse(inuse);
            node.taken += (inuse - before) as u64;
            node.push(meta, i, Node::list_of(inuse, self.objects));
        }
        Ok(())
    }

    /// Returns up to `n` objects from `cl` to their slabs (mm/slab.c `free_block`), releasing
    /// empty slabs beyond [`KEEP_FREE_SLABS`].
    fn flush<P: PhysAccess, C: CpuId>(&self, fa: &FrameAllocator<P, C>, cl: &mut CpuList, n: u32) {
        let meta = fa.meta_array();
        let mut node = self.node.lock();
        let mut k = 0;
        while k < n && cl.head != 0 {
            let obj = cl.head;
            // SAFETY: `obj` is a free object on our list; its first word is the link.
            cl.head = unsafe { (obj as *const usize).read() };
            cl.count -= 1;
            k += 1;
            let Some((i, off)) = self.locate(fa, obj) else { continue };
            let m = meta.at(i);
            let before = m.slab_inuse();
            // SAFETY: the object is free and ours; its first 4 bytes take the slab link.
            unsafe { (obj as *mut u32).write(m.slab_free()) };
            m.set_slab_free(off);
            m.set_slab_inuse(before - 1);
            node.taken -= 1;
            let (from, to) =
                (Node::list_of(before, self.objects), Node::list_of(before - 1, self.objects));
            if from != to {
                node.unlink(meta, i, from);
                node.push(meta, i, to);
            }
        }
        self.release_free_slabs(fa, &mut node, KEEP_FREE_SLABS);
    }

    /// Frees empty slabs until at most `keep` remain (Linux's `discard_slab`).
    fn release_free_slabs<P: PhysAccess, C: CpuId>(
        &self,
        fa: &FrameAllocator<P, C>,
        node: &mut Node,
        keep: u64,
    ) {
        let meta = fa.meta_array();
        while node.counts[FREE] > keep {
            let i = node.heads[FREE];
            node.unlink(meta, i, FREE);
            let m = meta.at(i);
            m.clear_flags(PageFlags::SLAB);
            m.set_private(0);
            m.set_slab_free(NIL);
            // A slab's frames came from `grow` with this order; freeing cannot fail.
            let _ = fa.free(Pfn(meta.pfn_of_idx(i)), self.order as u32);
            self.slabs_freed.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Empties every per-CPU list and frees every empty slab (Linux's `kmem_cache_shrink`).
    /// After it, the cache holds frames only for objects in use.
    pub fn shrink<P: PhysAccess, C: CpuId>(&self, fa: &FrameAllocator<P, C>) {
        for c in &self.cpus {
            let mut cl = c.0.lock();
            let n = cl.count;
            if n > 0 {
                self.flush(fa, &mut cl, n);
            }
        }
        let mut node = self.node.lock();
        self.release_free_slabs(fa, &mut node, 0);
    }

    /// Statistics snapshot.
    pub fn stats(&self) -> SlabStats {
        let mut cached = 0u64;
        let (mut allocs, mut frees) = (0u64, 0u64);
        for c in &self.cpus {
            let c = c.0.lock();
            cached += c.count as u64;
            allocs += c.allocs;
            frees += c.frees;
        }
        let node = self.node.lock();
        SlabStats {
            name: self.name,
            object_size: self.size as usize,
            objects_per_slab: self.objects,
            slab_order: self.order,
            slabs: node.counts.iter().sum(),
            slabs_partial: node.counts[PARTIAL],
            slabs_full: node.counts[FULL],
            slabs_free: node.counts[FREE],
            objects_in_use: node.taken.saturating_sub(cached),
            objects_cached: cached,
            allocs,
            frees,
            failures: self.failures.load(Ordering::Relaxed),
            slabs_allocated: self.slabs_alloced.load(Ordering::Relaxed),
            slabs_released: self.slabs_freed.load(Ordering::Relaxed),
        }
    }

    /// Checks list membership and counters against the slab descriptors; for tests.
    pub fn check<P: PhysAccess, C: CpuId>(
        &self,
        fa: &FrameAllocator<P, C>,
    ) -> Result<(), &'static str> {
        let meta = fa.meta_array();
        let node = self.node.lock();
        let mut taken = 0u64;
        for l in [PARTIAL, FULL, FREE] {
            let mut n = 0u64;
            let mut prev = NIL;
            let mut i = node.heads[l];
            while i != NIL {
                let m = meta.at(i);
                if m.prev() != prev {
                    return Err("broken slab list link");
                }
                if !m.flags().contains(PageFlags::SLAB) || m.private() != self.id as u64 {
                    return Err("foreign page on a slab list");
                }
                let inuse = m.slab_inuse();
                if Node::list_of(inuse, self.objects) != l {
                    return Err("slab on the wrong list");
                }
                // Count the slab's free objects.
                let base = fa.frame_ptr(Pfn(meta.pfn_of_idx(i))) as usize;
                let mut free = 0u32;
                let mut off = m.slab_free();
                while off != NIL {
                    if !self.valid_offset(off) {
                        return Err("corrupt slab freelist");
                    }
                    free += 1;
                    if free > self.objects {
                        return Err("cycle in slab freelist");
                    }
                    // SAFETY: `off` is a free object of this slab (checked in range).
                    off = unsafe { ((base + off as usize) as *const u32).read() };
                }
                if free + inuse != self.objects {
                    return Err("slab inuse + free != objects");
                }
                taken += inuse as u64;
                n += 1;
                prev = i;
                i = m.next();
            }
            if n != node.counts[l] {
                return Err("slab list count mismatch");
            }
        }
        if taken != node.taken {
            return Err("taken counter mismatch");
        }
        Ok(())
    }
}
