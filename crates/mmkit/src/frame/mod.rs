//! Physical memory: zones, buddy allocator, per-CPU caches and the per-frame descriptor array.
//!
//! Data flows: [`FrameAllocator::alloc`] picks a zone from the GFP zone mask (Movable →
//! Normal → DMA32, Linux's zonelist order), checks its watermark, then takes an order-0 frame
//! from this CPU's [`pcp`] list (refilled in batches from the zone's buddy lists) or a larger
//! block straight from the zone's [`buddy`] lists. Every frame has a [`PageMeta`] descriptor
//! in a flat array ([`MetaArray`]), found from its frame number in O(1).
//!
//! # Where the descriptor array lives
//! It is carved from the managed memory itself at boot, as Linux's `memblock` carves
//! `mem_map`: the highest window of non-movable usable memory large enough to hold one 64-byte
//! slot per frame of the span is reserved (its descriptors are RESERVED) and accessed through
//! [`PhysAccess`]. Nothing is taken from the Rust heap, so the slab allocator built on top can
//! serve as the kernel's `GlobalAlloc` before any heap exists. Holes cost 64 bytes per frame
//! of hole (FLATMEM).
//!
//! # Locking
//! Lock order (outer first); never hold two locks of the same level:
//! 1. a per-CPU list lock `Zone::pcp[cpu]` (one zone, one CPU);
//! 2. a zone lock `Zone::free`.
//!
//! (The slab allocator's locks come before both: slab per-CPU lock → slab node lock → these.)
//!
//! What guards what:
//! - `Zone::free` (zone lock): the zone's buddy lists, `nr_free` per order, `free_pages`, and
//!   the `lru` link, `order` and BUDDY flag of every descriptor on those lists;
//!   `Zone::nr_free` is written under it and read without it.
//! - `Zone::pcp[cpu]`: that list, its counters, and the `lru` link and PCP flag of the frames on
//!   it.
//! - An allocated frame's descriptor belongs to its owner; `refcount` and `mapcount` are atomics
//!   and may be changed by anyone holding a reference (parallel page faults).
//! - Everything else in [`FrameAllocator`] and [`Zone`] is fixed after [`FrameAllocator::new`].
//!
//! A CPU id at or beyond [`MAX_CPUS`] (or `cpu_count()`) is not an error: such CPUs bypass the
//! per-CPU lists and use the zone lock directly.
//!
//! # Differences from Linux (mm/page_alloc.c) worth knowing
//! - One node (no NUMA), no migratetypes (so no pageblock stealing or CMA), no
//!   `lowmem_reserve`, no watermark boosting, no compaction or reclaim yet: when the watermark
//!   checks fail in both passes the allocation fails with [`AllocError::OutOfMemory`].
//! - Per-CPU lists cache order 0 only (Linux ≥ 5.13 also caches orders up to 3 and THP).
//! - Freed blocks always go to the head of their free list (no `buddy_merge_likely` tail
//!   placement).
//! - A CPU's list is protected by a spin lock, as Linux ≥ 6.0 does (`pcp->lock`,
//!   `pcp_spin_trylock`), but without disabling preemption: [`CpuId`] cannot promise that the
//!   caller stays on its CPU, and the lock keeps the list correct if it does not. Uncontended,
//!   that costs one atomic per operation.
//! - Frees are checked (`free_page_is_bad`-style) and refused with a [`FreeError`] instead of
//!   reporting a bad page and tainting the kernel.

pub mod buddy;
pub mod meta;
pub mod pcp;
pub mod zone;

use core::fmt;
use core::ptr::NonNull;
use core::sync::atomic::{AtomicU64, Ordering};

use bitflags::bitflags;

use crate::addr::{Pfn, PhysAddr, PAGE_SHIFT, PAGE_SIZE};
use crate::errno::Errno;
use crate::platform::{CpuId, PhysAccess};

pub use meta::{MetaArray, PageFlags, PageMeta, PAGE_META_SIZE};
pub use zone::{Watermarks, Zone, ZoneKind, NR_ZONES};

/// Largest order (Linux's `MAX_PAGE_ORDER`): blocks of up to 2^10 frames = 4 MiB.
pub const MAX_ORDER: usize = 10;
/// Number of orders, 0..=MAX_ORDER (Linux's `NR_PAGE_ORDERS`).
pub const NR_ORDERS: usize = MAX_ORDER + 1;
/// CPUs with their own per-CPU lists; others use the zone lock directly.
pub const MAX_CPUS: usize = 64;
/// Memory-map entries accepted by [`FrameAllocator::new`].
pub const MAX_REGIONS: usize = 64;

/// What a memory-map entry holds (from the firmware's map, e.g. e820).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MemKind {
    /// Ordinary RAM: DMA32 below `dma32_end`, Normal above.
    Usable,
    /// RAM for ZONE_MOVABLE (hot-pluggable memory, or `movablecore=`).
    Movable,
    /// Firmware, kernel image, MMIO…: never allocated. May overlap usable entries, which
    /// removes those frames from them (like `memblock_reserve`).
    Reserved,
}

/// One memory-map entry, `[start, end)` in bytes. Usable entries are shrunk inwards to whole
/// frames; anything not covered by an entry is a hole.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MemRegion {
    /// First byte.
    pub start: PhysAddr,
    /// One past the last byte.
    pub end: PhysAddr,
    /// What it is.
    pub kind: MemKind,
}

impl MemRegion {
    /// `[start, end)` of `kind`.
    pub const fn new(start: u64, end: u64, kind: MemKind) -> Self {
        Self { start: PhysAddr(start), end: PhysAddr(end), kind }
    }
}

/// Boot-time tunables.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FrameConfig {
    /// First byte above ZONE_DMA32 (4 GiB on x86-64).
    pub dma32_end: PhysAddr,
    /// `vm.min_free_kbytes`; `None` computes Linux's default
    /// (`calculate_min_free_kbytes`: sqrt(lowmem KiB * 16), clamped to 128 KiB..=256 MiB).
    pub min_free_kbytes: Option<u64>,
    /// `vm.watermark_scale_factor` in 1/10000 of a zone (default 10).
    pub watermark_scale_factor: u64,
}

impl Default for FrameConfig {
    fn default() -> Self {
        Self { dma32_end: PhysAddr(1 << 32), min_free_kbytes: None, watermark_scale_factor: 10 }
    }
}

/// Why [`FrameAllocator::new`] refused a memory map.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InitError {
    /// No whole usable frame in the map.
    NoUsableMemory,
    /// More than [`MAX_REGIONS`] entries.
    TooManyRegions,
    /// An entry with `end < start`, or two usable entries that overlap.
    BadRegion,
    /// The frame span needs more than 2^32 - 1 descriptors.
    SpanTooLarge,
    /// No usable window is large enough for the descriptor array.
    NoRoomForMeta,
    /// `PhysAccess` does not map a usable region linearly, or not page-aligned.
    NonLinearMap,
}

/// Why an allocation failed. Callers turn every variant into `ENOMEM` (or `VM_FAULT_OOM`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AllocError {
    /// No zone allowed by the GFP mask could satisfy the request above its watermark.
    OutOfMemory,
    /// `order > MAX_ORDER`.
    BadOrder,
    /// Failed on purpose by the fault injector.
    Injected,
}

impl From<AllocError> for Errno {
    fn from(_: AllocError) -> Errno {
        Errno::ENOMEM
    }
}

impl fmt::Display for AllocError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            AllocError::OutOfMemory => "out of memory",
            AllocError::BadOrder => "order above MAX_ORDER",
            AllocError::Injected => "injected allocation failure",
        })
    }
}

/// Why a free was refused (Linux's `bad_page()` reasons). The frame is left untouched.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FreeError {
    /// The frame is not managed by this allocator.
    OutOfRange,
    /// The frame is reserved (hole, firmware, descriptor array).
    Reserved,
    /// The frame is already free (on a buddy or per-CPU list).
    DoubleFree,
    /// The frame is a tail of a larger block; free the head.
    NotHead,
    /// The frame holds no reference: never allocated as a block head (an interior frame of a
    /// non-compound block, say).
    NotAllocated,
    /// `order` differs from the order the block was allocated with.
    OrderMismatch,
    /// Other references remain (`refcount > 1`).
    StillReferenced,
    /// The frame is still mapped by a page table (`mapcount != 0`).
    StillMapped,
}

bitflags! {
    /// GFP modifiers (include/linux/gfp_types.h).
    #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
    pub struct GfpFlags: u32 {
        /// __GFP_HIGH: may dip to half the min watermark.
        const HIGH = 1 << 0;
        /// ALLOC_NO_WATERMARKS (PF_MEMALLOC / __GFP_MEMALLOC): ignore watermarks entirely.
        const NO_WATERMARKS = 1 << 1;
        /// __GFP_COMP: mark the block as a compound page (HEAD + TAILs).
        const COMP = 1 << 2;
        /// __GFP_ZERO: zero the frames.
        const ZERO = 1 << 3;
    }
}

/// An allocation request's constraints: the highest zone it may use (Linux's `gfp_zone`) and
/// modifiers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Gfp {
    /// Highest zone allowed; lower zones are the fallbacks.
    pub zone: ZoneKind,
    /// Modifiers.
    pub flags: GfpFlags,
}

impl Gfp {
    /// GFP_KERNEL: Normal, falling back to DMA32.
    pub const KERNEL: Gfp = Gfp { zone: ZoneKind::Normal, flags: GfpFlags::empty() };
    /// GFP_ATOMIC: like KERNEL, may use reserves down to min/2.
    pub const ATOMIC: Gfp = Gfp { zone: ZoneKind::Normal, flags: GfpFlags::HIGH };
    /// GFP_DMA32: DMA32 only.
    pub const DMA32: Gfp = Gfp { zone: ZoneKind::Dma32, flags: GfpFlags::empty() };
    /// GFP_HIGHUSER_MOVABLE: user pages, Movable first.
    pub const HIGHUSER_MOVABLE: Gfp = Gfp { zone: ZoneKind::Movable, flags: GfpFlags::empty() };
    /// Adds modifiers.
    pub const fn with(self, f: GfpFlags) -> Gfp {
        Gfp { zone: self.zone, flags: self.flags.union(f) }
    }
}

/// Fails the N-th allocation on purpose (Linux's `fail_page_alloc` / `failslab`, one shot).
#[derive(Debug, Default)]
pub struct FaultInjector {
    /// Allocations left before the failing one; 0 = disarmed.
    countdown: AtomicU64,
    /// Failures injected so far.
    injected: AtomicU64,
}

impl FaultInjector {
    /// A disarmed injector.
    pub const fn new() -> Self {
        Self { countdown: AtomicU64::new(0), injected: AtomicU64::new(0) }
    }
    /// Makes the `n`-th allocation from now (1-based) fail; 0 disarms.
    pub fn fail_nth(&self, n: u64) {
        self.countdown.store(n, Ordering::Relaxed);
    }
    /// Disarms.
    pub fn disarm(&self) {
        self.fail_nth(0);
    }
    /// True if armed and not fired yet.
    pub fn armed(&self) -> bool {
        self.countdown.load(Ordering::Relaxed) != 0
    }
    /// Failures injected so far.
    pub fn injected(&self) -> u64 {
        self.injected.load(Ordering::Relaxed)
    }
    /// Counts one allocation; true if it must fail.
    #[inline]
    pub fn should_fail(&self) -> bool {
        if self.countdown.load(Ordering::Relaxed) == 0 {
            return false;
        }
        let prev = self
            .countdown
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |c| c.checked_sub(1))
            .unwrap_or(0);
        if prev == 1 {
            self.injected.fetch_add(1, Ordering::Relaxed);
            true
        } else {
            false
        }
    }
}

/// Per-zone statistics snapshot (the figures of /proc/zoneinfo and /proc/buddyinfo).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ZoneStats {
    /// Frames managed.
    pub managed: u64,
    /// Free frames on the buddy lists.
    pub free: u64,
    /// Free frames parked on per-CPU lists.
    pub pcp: u64,
    /// Free blocks per order (/proc/buddyinfo).
    pub free_blocks: [u64; NR_ORDERS],
    /// Watermarks.
    pub wmark: Watermarks,
    /// Allocations served (buddy lists + per-CPU lists).
    pub allocs: u64,
    /// Frees received.
    pub frees: u64,
}

/// Statistics snapshot of the whole allocator.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FrameStats {
    /// Per zone, indexed by `ZoneKind as usize`.
    pub zones: [ZoneStats; NR_ZONES],
    /// Free frames (buddy + per-CPU) right after boot.
    pub boot_free: u64,
    /// Allocation requests that failed (including injected ones).
    pub failures: u64,
}

impl FrameStats {
    /// Free frames now, buddy and per-CPU lists together.
    pub fn free_total(&self) -> u64 {
        self.zones.iter().map(|z| z.free + z.pcp).sum()
    }
    /// Frames allocated now relative to boot (0 when nothing leaked).
    pub fn in_use(&self) -> u64 {
        self.boot_free.saturating_sub(self.free_total())
    }
}

/// A usable region and where `PhysAccess` maps it, for pointer → frame lookups.
#[derive(Clone, Copy, Debug, Default)]
struct Linear {
    start_pfn: u64,
    end_pfn: u64,
    ptr: usize,
}

/// The physical frame allocator: zones with buddy lists and per-CPU caches, plus the
/// descriptor array. Thread-safe through `&self`.
pub struct FrameAllocator<P, C> {
    phys: P,
    cpu: C,
    meta: MetaArray,
    zones: [Zone; NR_ZONES],
    linear: [Linear; MAX_REGIONS],
    nr_linear: usize,
    meta_frames: (u64, u64),
    boot_free: u64,
    ncpus: usize,
    inject: FaultInjector,
    failures: AtomicU64,
}

impl<P, C> fmt::Debug for FrameAllocator<P, C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FrameAllocator")
            .field("base_pfn", &self.meta.base_pfn())
            .field("frames", &self.meta.len())
            .field("boot_free", &self.boot_free)
            .finish_non_exhaustive()
    }
}

/// Integer square root (Linux's `int_sqrt`).
fn int_sqrt(x: u64) -> u64 {
    if x < 2 {
        return x;
    }
    // Newton's method from above, as Linux's int_sqrt converges.
    let mut r = x;
    let mut y = (r + x / r) / 2;
    while y < r {
        r = y;
        y = (r + x / r) / 2;
    }
    r
}

impl<P: PhysAccess, C: CpuId> FrameAllocator<P, C> {
    /// Boots the allocator over `map` (Linux's `free_area_init` + `memblock_free_all`):
    /// places the descriptor array, assigns zones, hands every usable frame to the buddy
    /// lists in maximal aligned blocks, and computes watermarks and PCP sizes.
    pub fn new(map: &[MemRegion], config: FrameConfig, phys: P, cpu: C) -> Result<Self, InitError> {
        if map.len() > MAX_REGIONS {
            return Err(InitError::TooManyRegions);
        }
        // Whole-frame ranges: usable entries shrink inwards, reserved ones grow outwards.
        let mut usable = [(0u64, 0u64, false); MAX_REGIONS];
        let mut nu = 0;
        let mut reserved = [(0u64, 0u64); MAX_REGIONS + 1];
        let mut nr = 0;
        for r in map {
            if r.end.0 < r.start.0 {
                return Err(InitError::BadRegion);
            }
            match r.kind {
                MemKind::Usable | MemKind::Movable => {
                    let s = r.start.0.div_ceil(PAGE_SIZE);
                    let e = r.end.0 >> PAGE_SHIFT;
                    if s < e {
                        usable[nu] = (s, e, r.kind == MemKind::Movable);
                        nu += 1;
                    }
                }
                MemKind::Reserved => {
                    let s = r.start.0 >> PAGE_SHIFT;
                    let e = r.end.0.div_ceil(PAGE_SIZE);
                    if s < e {
                        reserved[nr] = (s, e);
                        nr += 1;
                    }
                }
            }
        }
        let usable = &mut usable[..nu];
        usable.sort_unstable_by_key(|u| u.0);
        if usable.is_empty() {
            return Err(InitError::NoUsableMemory);
        }
        if usable.windows(2).any(|w| w[0].1 > w[1].0) {
            return Err(InitError::BadRegion);
        }
        let base_pfn = usable[0].0;
        let end_pfn = usable[nu - 1].1;
        let span = end_pfn - base_pfn;
        if span >= u32::MAX as u64 {
            return Err(InitError::SpanTooLarge);
        }
        let is_reserved =
            |s: u64, e: u64, res: &[(u64, u64)]| res.iter().any(|&(rs, re)| rs < e && s < re);

        // Place the descriptor array: top-down (like memblock) in non-movable memory.
        let meta_pages = (span * PAGE_META_SIZE as u64).div_ceil(PAGE_SIZE);
        let mut best: Option<u64> = None;
        for &(s, e, movable) in usable.iter() {
            if movable || e - s < meta_pages {
                continue;
            }
            let mut cands = [0u64; MAX_REGIONS + 2];
            let mut nc = 0;
            cands[nc] = e - meta_pages;
            nc += 1;
            for &(rs, _) in &reserved[..nr] {
                if rs > s && rs <= e && rs - s >= meta_pages {
                    cands[nc] = rs - meta_pages;
                    nc += 1;
                }
            }
            for &c in &cands[..nc] {
                if c >= s && !is_reserved(c, c + meta_pages, &reserved[..nr]) {
                    best = Some(best.map_or(c, |b: u64| b.max(c)));
                }
            }
        }
        let meta_start = best.ok_or(InitError::NoRoomForMeta)?;

        // PhysAccess must map each usable region linearly (a direct map or a host buffer).
        let mut linear = [Linear::default(); MAX_REGIONS];
        for (l, &(s, e, _)) in linear.iter_mut().zip(usable.iter()) {
            let p0 = phys.phys_to_ptr(Pfn(s).addr()) as usize;
            let p1 = phys.phys_to_ptr(Pfn(e - 1).addr()) as usize;
            if p0 & (PAGE_SIZE as usize - 1) != 0
                || p1.wrapping_sub(p0) != ((e - 1 - s) << PAGE_SHIFT) as usize
            {
                return Err(InitError::NonLinearMap);
            }
            *l = Linear { start_pfn: s, end_pfn: e, ptr: p0 };
        }
        let meta_ptr = phys.phys_to_ptr(Pfn(meta_start).addr()) as *mut PageMeta;
        let meta_ptr = NonNull::new(meta_ptr).ok_or(InitError::NonLinearMap)?;
        reserved[nr] = (meta_start, meta_start + meta_pages);
        nr += 1;
        let reserved = &reserved[..nr];

        let dma32_end = config.dma32_end.0 >> PAGE_SHIFT;
        let zone_of = |pfn: u64| -> ZoneKind {
            let movable = usable.iter().any(|&(s, e, m)| m && s <= pfn && pfn < e);
            if movable {
                ZoneKind::Movable
            } else if pfn < dma32_end {
                ZoneKind::Dma32
            } else {
                ZoneKind::Normal
            }
        };
        // SAFETY: the window [meta_start, meta_start + meta_pages) lies in usable memory that
        // PhysAccess maps linearly (checked above) and 64-byte aligned; it is now reserved,
        // so nothing else will ever be allocated there while the allocator lives.
        let meta = unsafe { MetaArray::new(meta_ptr, span as u32, base_pfn, |p| zone_of(p) as u8) };

        let mut zones: [Zone; NR_ZONES] = core::array::from_fn(|i| Zone::new(ZoneKind::ALL[i]));
        let mut spans = [(u64::MAX, 0u64); NR_ZONES];
        // Hand every usable, unreserved frame to the buddy lists (`__free_pages_core`), cut
        // at zone boundaries and into maximal naturally aligned blocks.
        for &(s, e, _) in usable.iter() {
            let mut pfn = s;
            while pfn < e {
                if let Some(&(_, re)) = reserved.iter().find(|&&(rs, re)| rs <= pfn && pfn < re) {
                    pfn = re;
                    continue;
                }
                let mut run_end = e;
                for &(rs, _) in reserved {
                    if rs > pfn && rs < run_end {
                        run_end = rs;
                    }
                }
                if pfn < dma32_end && dma32_end < run_end {
                    run_end = dma32_end;
                }
                let z = zone_of(pfn) as usize;
                spans[z].0 = spans[z].0.min(pfn);
                spans[z].1 = spans[z].1.max(run_end);
                zones[z].managed += run_end - pfn;
                let mut fl = zones[z].free.lock();
                while pfn < run_end {
                    let align = if pfn == 0 { MAX_ORDER as u32 } else { pfn.trailing_zeros() };
                    let fit = 63 - (run_end - pfn).leading_zeros();
                    let order = align.min(fit).min(MAX_ORDER as u32) as usize;
                    for p in pfn..pfn + (1 << order) {
                        if let Some(m) = meta.get(Pfn(p)) {
                            m.store_flags(PageFlags::empty());
                            m.set_refcount(0);
                        }
                    }
                    fl.free_block(&meta, pfn, order);
                    pfn += 1 << order;
                }
                drop(fl);
            }
        }

        // Watermarks: mm/page_alloc.c `calculate_min_free_kbytes` + `__setup_per_zone_wmarks`.
        let lowmem: u64 =
            zones.iter().filter(|z| z.kind != ZoneKind::Movable).map(|z| z.managed).sum();
        let min_kb = config
            .min_free_kbytes
            .unwrap_or_else(|| int_sqrt((lowmem << (PAGE_SHIFT - 10)) * 16).clamp(128, 262_144));
        let pages_min = min_kb >> (PAGE_SHIFT - 10);
        let ncpus = cpu.cpu_count().clamp(1, MAX_CPUS);
        let mut boot_free = 0;
        for (z, sp) in zones.iter_mut().zip(spans) {
            if z.managed > 0 {
                (z.start_pfn, z.end_pfn) = sp;
            }
            let min = if z.kind == ZoneKind::Movable {
                // ZONE_MOVABLE is treated like highmem: a small fixed reserve.
                if min_kb == 0 {
                    0
                } else {
                    (z.managed / 1024).clamp(32, 128).min(z.managed)
                }
            } else {
                (pages_min * z.managed).checked_div(lowmem).unwrap_or(0)
            };
            let step = (min / 4).max(z.managed * config.watermark_scale_factor / 10_000);
            let step = if min_kb == 0 { 0 } else { step };
            z.wmark = Watermarks { min, low: min + step, high: min + 2 * step };
            // zone_batchsize() and zone_highsize().
            let mut batch = (z.managed >> 10).min((1 << 20) / PAGE_SIZE) / 4;
            batch = batch.max(1);
            batch = (1u64 << (63 - (batch + batch / 2).leading_zeros())) - 1;
            z.batch = batch.clamp(1, 63) as u32;
            z.high = (z.wmark.low / ncpus as u64).max(4 * z.batch as u64).min(1 << 20) as u32;
            let fl = z.free.lock();
            z.nr_free.store(fl.free_pages, Ordering::Relaxed);
            boot_free += fl.free_pages;
        }

        Ok(Self {
            phys,
            cpu,
            meta,
            zones,
            linear,
            nr_linear: nu,
            meta_frames: (meta_start, meta_pages),
            boot_free,
            ncpus,
            inject: FaultInjector::new(),
            failures: AtomicU64::new(0),
        })
    }

    /// The memory accessor.
    pub fn phys(&self) -> &P {
        &self.phys
    }
    /// The CPU-id provider.
    pub fn cpu(&self) -> &C {
        &self.cpu
    }
    /// The descriptor array.
    pub fn meta_array(&self) -> &MetaArray {
        &self.meta
    }
    /// Linux's `pfn_to_page`.
    #[inline]
    pub fn meta(&self, pfn: Pfn) -> Option<&PageMeta> {
        self.meta.get(pfn)
    }
    /// The frames holding the descriptor array: `(first pfn, count)`.
    pub fn meta_frames(&self) -> (Pfn, u64) {
        (Pfn(self.meta_frames.0), self.meta_frames.1)
    }
    /// A zone.
    pub fn zone(&self, kind: ZoneKind) -> &Zone {
        &self.zones[kind as usize]
    }
    /// The fault injector for frame allocations.
    pub fn fault_injector(&self) -> &FaultInjector {
        &self.inject
    }
    /// Pointer to the first byte of `pfn`.
    #[inline]
    pub fn frame_ptr(&self, pfn: Pfn) -> *mut u8 {
        self.phys.phys_to_ptr(pfn.addr())
    }
    /// The frame a pointer obtained from [`Self::frame_ptr`] (or `PhysAccess`) points into
    /// (Linux's `virt_to_pfn` on the direct map).
    #[inline]
    pub fn ptr_to_pfn(&self, ptr: *const u8) -> Option<Pfn> {
        let p = ptr as usize;
        for l in &self.linear[..self.nr_linear] {
            let off = p.wrapping_sub(l.ptr) as u64;
            if p >= l.ptr && (off >> PAGE_SHIFT) < l.end_pfn - l.start_pfn {
                return Some(Pfn(l.start_pfn + (off >> PAGE_SHIFT)));
            }
        }
        None
    }

    /// This CPU's per-CPU slot, `None` for CPUs beyond `cpu_count()` / [`MAX_CPUS`].
    #[inline]
    pub(crate) fn cpu_slot(&self) -> Option<usize> {
        let c = self.cpu.current_cpu();
        (c < self.ncpus).then_some(c)
    }

    /// Allocates `1 << order` contiguous frames (Linux's `alloc_pages` →
    /// `get_page_from_freelist`, then the slow path's retry at the min watermark; there is no
    /// reclaim yet). The block's head descriptor has refcount 1, mapcount 0 and `order`.
    pub fn alloc(&self, gfp: Gfp, order: u32) -> Result<Pfn, AllocError> {
        let order = order as usize;
        if order > MAX_ORDER {
            return Err(AllocError::BadOrder);
        }
        if self.inject.should_fail() {
            self.failures.fetch_add(1, Ordering::Relaxed);
            return Err(AllocError::Injected);
        }
        let top = gfp.zone as usize;
        // Fast path at the low watermark, then the slow path at min (or below).
        for pass in 0..2 {
            for z in self.zones[..=top].iter().rev() {
                if z.managed == 0 {
                    continue;
                }
                let mark = if gfp.flags.contains(GfpFlags::NO_WATERMARKS) {
                    None
                } else if pass == 0 {
                    Some(z.wmark.low)
                } else if gfp.flags.contains(GfpFlags::HIGH) {
                    Some(z.wmark.min / 2)
                } else {
                    Some(z.wmark.min)
                };
                if let Some(mark) = mark {
                    if !z.watermark_ok(order, mark) {
                        continue;
                    }
                }
                if let Some(i) = self.rmqueue(z, order) {
                    self.prep_new(i, order, gfp);
                    return Ok(Pfn(self.meta.pfn_of_idx(i)));
                }
            }
        }
        self.failures.fetch_add(1, Ordering::Relaxed);
        Err(AllocError::OutOfMemory)
    }

    /// One frame for the kernel (GFP_KERNEL, order 0).
    #[inline]
    pub fn alloc_frame(&self) -> Result<Pfn, AllocError> {
        self.alloc(Gfp::KERNEL, 0)
    }

    /// Linux's `rmqueue`: order 0 from this CPU's list, otherwise the buddy lists.
    #[inline]
    fn rmqueue(&self, z: &Zone, order: usize) -> Option<u32> {
        if order == 0 {
            if let Some(cpu) = self.cpu_slot() {
                let mut pcp = z.pcp[cpu].0.lock();
                if pcp.count == 0 && z.refill(&self.meta, &mut pcp) == 0 {
                    return None;
                }
                let i = pcp.pop(&self.meta)?;
                pcp.allocs += 1;
                return Some(i);
            }
        }
        z.take(&self.meta, order)
    }

    /// Linux's `prep_new_page` / `prep_compound_page`.
    #[inline]
    fn prep_new(&self, i: u32, order: usize, gfp: Gfp) {
        let m = self.meta.at(i);
        m.set_refcount(1);
        m.reset_mapcount();
        m.set_order(order as u8);
        // `mapping`, `index` and `private` are already 0: boot starts them so and
        // `free_unchecked` clears them (Linux's `free_pages_prepare` likewise).
        let comp = order > 0 && gfp.flags.contains(GfpFlags::COMP);
        m.store_flags(if comp { PageFlags::HEAD } else { PageFlags::empty() });
        if comp {
            let head = self.meta.pfn_of_idx(i);
            for t in 1..(1u32 << order) {
                let tm = self.meta.at(i + t);
                tm.store_flags(PageFlags::TAIL);
                tm.set_private(head);
            }
        }
        if gfp.flags.contains(GfpFlags::ZERO) {
            let pfn = self.meta.pfn_of_idx(i);
            for p in pfn..pfn + (1 << order) {
                let ptr = self.frame_ptr(Pfn(p));
                // SAFETY: the frame was just allocated to us, nobody else can reach it, and
                // PhysAccess makes the whole frame accessible through `ptr`.
                unsafe { core::ptr::write_bytes(ptr, 0, PAGE_SIZE as usize) };
            }
        }
    }

    /// Frees a block allocated with `order` (Linux's `__free_pages` when the caller holds the
    /// last reference). Order-0 frames go to this CPU's list, draining a batch to the buddy
    /// lists above the PCP high watermark; larger blocks merge straight back.
    pub fn free(&self, pfn: Pfn, order: u32) -> Result<(), FreeError> {
        let i = self.meta.idx(pfn.0).ok_or(FreeError::OutOfRange)?;
        let m = self.meta.at(i);
        let f = m.flags();
        owned_by_caller(f)?;
        if f.contains(PageFlags::TAIL) {
            return Err(FreeError::NotHead);
        }
        if m.order() as u32 != order {
            return Err(FreeError::OrderMismatch);
        }
        match m.refcount() {
            1 => {}
            r if r > 1 => return Err(FreeError::StillReferenced),
            _ => return Err(FreeError::NotAllocated),
        }
        if m.mapcount() != 0 {
            return Err(FreeError::StillMapped);
        }
        self.free_unchecked(i, order as usize, f);
        Ok(())
    }

    fn free_unchecked(&self, i: u32, order: usize, f: PageFlags) {
        let m = self.meta.at(i);
        m.set_refcount(0);
        m.set_mapping(0, 0);
        m.set_private(0);
        if f.contains(PageFlags::HEAD) {
            for t in 1..(1u32 << order) {
                let tm = self.meta.at(i + t);
                tm.store_flags(PageFlags::empty());
                tm.set_private(0);
            }
        }
        m.store_flags(PageFlags::empty());
        let z = &self.zones[(m.zone_index() as usize).min(NR_ZONES - 1)];
        if order == 0 {
            if let Some(cpu) = self.cpu_slot() {
                let mut pcp = z.pcp[cpu].0.lock();
                pcp.push(&self.meta, i);
                pcp.frees += 1;
                if pcp.count >= z.high {
                    z.drain(&self.meta, &mut pcp, z.batch);
                }
                return;
            }
        }
        z.give(&self.meta, self.meta.pfn_of_idx(i), order);
    }

    /// Linux's `compound_head`: the head frame's index for a tail, else `pfn`'s own.
    fn head_index(&self, pfn: Pfn) -> Result<u32, FreeError> {
        let i = self.meta.idx(pfn.0).ok_or(FreeError::OutOfRange)?;
        let m = self.meta.at(i);
        if m.flags().contains(PageFlags::TAIL) {
            self.meta.idx(m.private()).ok_or(FreeError::OutOfRange)
        } else {
            Ok(i)
        }
    }

    /// Takes a reference (Linux's `get_page`, which takes it on the compound head).
    pub fn get_page(&self, pfn: Pfn) -> Result<(), FreeError> {
        let m = self.meta.at(self.head_index(pfn)?);
        if m.flags().contains(PageFlags::RESERVED) {
            return Err(FreeError::Reserved);
        }
        if m.get_unless_zero() {
            Ok(())
        } else {
            Err(FreeError::NotAllocated)
        }
    }

    /// Drops a reference (Linux's `put_page`, on the compound head for a tail); frees the
    /// block with its recorded order when the last reference goes. Returns true if freed.
    pub fn put_page(&self, pfn: Pfn) -> Result<bool, FreeError> {
        let i = self.head_index(pfn)?;
        let m = self.meta.at(i);
        let f = m.flags();
        owned_by_caller(f)?;
        if m.refcount() <= 0 {
            return Err(FreeError::NotAllocated);
        }
        if m.refcount() == 1 && m.mapcount() != 0 {
            return Err(FreeError::StillMapped);
        }
        if m.put_testzero() {
            self.free_unchecked(i, m.order() as usize, f);
            Ok(true)
        } else {
            Ok(false)
        }
    }

    /// Returns every frame on `cpu`'s lists to the buddy lists (Linux's `drain_pages`).
    pub fn drain_cpu(&self, cpu: usize) {
        if cpu >= self.ncpus {
            return;
        }
        for z in &self.zones {
            let mut pcp = z.pcp[cpu].0.lock();
            let n = pcp.count;
            z.drain(&self.meta, &mut pcp, n);
        }
    }

    /// Drains every CPU's lists (Linux's `drain_all_pages`), so that every free frame is back
    /// on the buddy lists and merged.
    pub fn drain_all(&self) {
        for c in 0..self.ncpus {
            self.drain_cpu(c);
        }
    }

    /// Frames on `cpu`'s per-CPU list of `zone`.
    pub fn pcp_count(&self, cpu: usize, zone: ZoneKind) -> u32 {
        if cpu >= self.ncpus {
            return 0;
        }
        self.zones[zone as usize].pcp[cpu].0.lock().count
    }

    /// Free frames (buddy + per-CPU lists) right after boot.
    pub fn boot_free(&self) -> u64 {
        self.boot_free
    }

    /// Statistics snapshot (not atomic across zones).
    pub fn stats(&self) -> FrameStats {
        let mut s = FrameStats {
            boot_free: self.boot_free,
            failures: self.failures.load(Ordering::Relaxed),
            ..FrameStats::default()
        };
        for (zs, z) in s.zones.iter_mut().zip(&self.zones) {
            zs.managed = z.managed;
            zs.wmark = z.wmark;
            for p in &z.pcp[..self.ncpus] {
                let p = p.0.lock();
                zs.pcp += p.count as u64;
                zs.allocs += p.allocs;
                zs.frees += p.frees;
            }
            let fl = z.free.lock();
            zs.free = fl.free_pages;
            zs.free_blocks = fl.nr_free;
            zs.allocs += fl.allocs;
            zs.frees += fl.frees;
        }
        s
    }

    /// Free frames now, buddy and per-CPU lists together.
    pub fn free_pages_total(&self) -> u64 {
        self.stats().free_total()
    }

    /// Checks every structural invariant: list links and counters, per-CPU list marks, and
    /// that no two free blocks overlap. For tests and debugging; O(frames).
    pub fn check(&self) -> Result<(), &'static str> {
        for z in &self.zones {
            let fl = z.free.lock();
            fl.check(&self.meta)?;
            if z.nr_free.load(Ordering::Relaxed) != fl.free_pages {
                return Err("nr_free mirror out of date");
            }
        }
        // Free blocks and PCP frames must be disjoint: walk frames, skipping over free blocks.
        let mut i = 0u32;
        let mut pcp_total = 0u64;
        while (i as usize) < self.meta.len() {
            let m = self.meta.at(i);
            let f = m.flags();
            if f.contains(PageFlags::BUDDY) {
                let n = 1u32 << m.order();
                for t in 1..n {
                    let tf = self.meta.at(i + t).flags();
                    if tf.intersects(PageFlags::BUDDY | PageFlags::PCP | PageFlags::RESERVED) {
                        return Err("free block overlaps another frame's state");
                    }
                }
                i += n;
                continue;
            }
            if f.contains(PageFlags::PCP) {
                pcp_total += 1;
            }
            i += 1;
        }
        let counted: u64 = self
            .zones
            .iter()
            .map(|z| z.pcp[..self.ncpus].iter().map(|p| p.0.lock().count as u64).sum::<u64>())
            .sum();
        if counted != pcp_total {
            return Err("per-CPU counts do not match PCP frames");
        }
        Ok(())
    }
}

/// The allocator reaches frames the way its `PhysAccess` does, so it can be handed to code
/// that needs both (the page-table engine's table memory).
impl<P: PhysAccess, C: CpuId> PhysAccess for FrameAllocator<P, C> {
    #[inline]
    fn phys_to_ptr(&self, pa: PhysAddr) -> *mut u8 {
        self.phys.phys_to_ptr(pa)
    }
}

/// Page-table frames come from the frame allocator, zeroed (Linux's `pte_alloc_one` →
/// `__get_free_page(GFP_PGTABLE_USER)`, which is `GFP_KERNEL | __GFP_ZERO`).
impl<P: PhysAccess, C: CpuId> crate::paging::TableMemory for FrameAllocator<P, C> {
    fn alloc_table(&self) -> Result<PhysAddr, crate::paging::OutOfMemory> {
        self.alloc(Gfp::KERNEL.with(GfpFlags::ZERO), 0)
            .map(Pfn::addr)
            .map_err(|_| crate::paging::OutOfMemory)
    }

    unsafe fn free_table(&self, pa: PhysAddr) {
        // A table frame is an order-0 block we handed out; a refusal would mean the caller
        // broke the contract, and then leaving the frame alone is the safe choice.
        let _ = self.free(Pfn::containing(pa), 0);
    }
}

/// The checks `free` and `put_page` share before looking at order or refcount: a reserved
/// frame was never the allocator's to give (Linux `bad_page()` on `PG_reserved`), and one
/// already on a buddy or per-CPU list is being freed twice (`PageBuddy()` in
/// `free_pages_prepare()`).
fn owned_by_caller(f: PageFlags) -> Result<(), FreeError> {
    if f.contains(PageFlags::RESERVED) {
        return Err(FreeError::Reserved);
    }
    if f.intersects(PageFlags::BUDDY | PageFlags::PCP) {
        return Err(FreeError::DoubleFree);
    }
    Ok(())
}
