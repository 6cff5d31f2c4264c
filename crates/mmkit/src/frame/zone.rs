//! Zones (Linux's `struct zone`): a range of frames with its own buddy lists, watermarks and
//! per-CPU caches.

use core::sync::atomic::{AtomicU64, Ordering};

use spin::Mutex;

use super::buddy::FreeLists;
use super::meta::MetaArray;
use super::pcp::{CachePadded, PcpList};
use super::MAX_CPUS;

/// Zone types, in Linux's order (include/linux/mmzone.h `enum zone_type`); the index is the
/// value stored in each descriptor.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ZoneKind {
    /// ZONE_DMA32: frames below `FrameConfig::dma32_end` (4 GiB by default), for 32-bit DMA.
    Dma32 = 0,
    /// ZONE_NORMAL: the rest of the ordinary memory.
    Normal = 1,
    /// ZONE_MOVABLE: memory whose pages must stay migratable (hot-pluggable or
    /// `movablecore=`-style regions); only `__GFP_MOVABLE` allocations may use it.
    Movable = 2,
}

/// Number of zone types.
pub const NR_ZONES: usize = 3;

impl ZoneKind {
    /// All zones, lowest first.
    pub const ALL: [ZoneKind; NR_ZONES] = [ZoneKind::Dma32, ZoneKind::Normal, ZoneKind::Movable];
    /// Linux's zone name as printed in /proc/zoneinfo.
    pub const fn name(self) -> &'static str {
        match self {
            ZoneKind::Dma32 => "DMA32",
            ZoneKind::Normal => "Normal",
            ZoneKind::Movable => "Movable",
        }
    }
}

/// A zone's watermarks in pages (Linux's `_watermark[WMARK_MIN..=WMARK_HIGH]`). Below `low`
/// the allocator's fast path skips the zone (Linux would wake kswapd); below `min` only
/// high-priority allocations succeed; reclaim stops once free pages are back above `high`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Watermarks {
    /// WMARK_MIN.
    pub min: u64,
    /// WMARK_LOW.
    pub low: u64,
    /// WMARK_HIGH.
    pub high: u64,
}

/// One zone. Fields without a lock are fixed at boot.
#[derive(Debug)]
pub struct Zone {
    pub(crate) kind: ZoneKind,
    /// First frame of the zone's span (Linux's `zone_start_pfn`).
    pub(crate) start_pfn: u64,
    /// One past the last frame of the span.
    pub(crate) end_pfn: u64,
    /// Frames given to the buddy allocator at boot (Linux's `managed_pages`).
    pub(crate) managed: u64,
    pub(crate) wmark: Watermarks,
    /// PCP refill/drain batch (Linux's `pcp->batch`).
    pub(crate) batch: u32,
    /// PCP high watermark (Linux's `pcp->high`).
    pub(crate) high: u32,
    /// Buddy lists and counters. Guarded by the zone lock (this mutex).
    pub(crate) free: Mutex<FreeLists>,
    /// Mirror of `free.free_pages`, written under the zone lock, read without it by the
    /// watermark checks (Linux reads `NR_FREE_PAGES` the same way).
    pub(crate) nr_free: AtomicU64,
    /// Per-CPU order-0 lists, one per CPU, each guarded by its own mutex.
    pub(crate) pcp: [CachePadded<Mutex<PcpList>>; MAX_CPUS],
}

impl Zone {
    pub(crate) fn new(kind: ZoneKind) -> Self {
        Self {
            kind,
            start_pfn: 0,
            end_pfn: 0,
            managed: 0,
            wmark: Watermarks::default(),
            batch: 1,
            high: 4,
            free: Mutex::new(FreeLists::new()),
            nr_free: AtomicU64::new(0),
            pcp: core::array::from_fn(|_| CachePadded(Mutex::new(PcpList::new()))),
        }
    }

    /// The zone's type.
    pub fn kind(&self) -> ZoneKind {
        self.kind
    }
    /// Frames managed by the buddy allocator.
    pub fn managed_pages(&self) -> u64 {
        self.managed
    }
    /// `[start, end)` frame span (including holes).
    pub fn span(&self) -> (u64, u64) {
        (self.start_pfn, self.end_pfn)
    }
    /// The watermarks.
    pub fn watermarks(&self) -> Watermarks {
        self.wmark
    }
    /// Free pages on the buddy lists (not counting per-CPU lists), read without the lock.
    pub fn free_pages(&self) -> u64 {
        self.nr_free.load(Ordering::Relaxed)
    }
    /// PCP batch and high watermark.
    pub fn pcp_batch_high(&self) -> (u32, u32) {
        (self.batch, self.high)
    }

    /// Linux's `__zone_watermark_ok` without `lowmem_reserve`: would allocating `1 << order`
    /// pages leave more than `mark` free?
    #[inline]
    pub(crate) fn watermark_ok(&self, order: usize, mark: u64) -> bool {
        let free = self.nr_free.load(Ordering::Relaxed);
        free.saturating_sub((1u64 << order) - 1) > mark
    }

    fn publish(&self, fl: &FreeLists) {
        self.nr_free.store(fl.free_pages, Ordering::Relaxed);
    }

    /// Takes a block of `order` from the buddy lists (`rmqueue_buddy`).
    pub(crate) fn take(&self, meta: &MetaArray, order: usize) -> Option<u32> {
        let mut fl = self.free.lock();
        let r = fl.take(meta, order);
        if r.is_some() {
            fl.allocs += 1;
            self.publish(&fl);
        }
        r
    }

    /// Returns a block to the buddy lists (`__free_pages_ok` → `__free_one_page`).
    pub(crate) fn give(&self, meta: &MetaArray, pfn: u64, order: usize) {
        let mut fl = self.free.lock();
        fl.free_block(meta, pfn, order);
        fl.frees += 1;
        self.publish(&fl);
    }

    /// Linux's `rmqueue_bulk`: moves up to `batch` order-0 frames to `pcp` under one zone
    /// lock acquisition. Returns how many moved.
    pub(crate) fn refill(&self, meta: &MetaArray, pcp: &mut PcpList) -> u32 {
        let mut fl = self.free.lock();
        let mut n = 0;
        // Pushing at the head reverses the order; pushing the frames in reverse keeps the
        // list ascending, so consecutive allocations are physically contiguous (Linux adds
        // them at the list tail for the same reason).
        let mut got = [0u32; 64];
        while n < self.batch.min(got.len() as u32) {
            match fl.take(meta, 0) {
                Some(i) => {
                    got[n as usize] = i;
                    n += 1;
                }
                None => break,
            }
        }
        self.publish(&fl);
        drop(fl);
        for &i in got[..n as usize].iter().rev() {
            pcp.push(meta, i);
        }
        n
    }

    /// Linux's `free_pcppages_bulk`: returns up to `count` frames from `pcp` to the buddy
    /// lists under one zone lock acquisition.
    pub(crate) fn drain(&self, meta: &MetaArray, pcp: &mut PcpList, count: u32) {
        if pcp.count == 0 {
            return;
        }
        let mut fl = self.free.lock();
        let mut n = 0;
        while n < count {
            let Some(i) = pcp.pop_cold(meta) else { break };
            fl.free_block(meta, meta.pfn_of_idx(i), 0);
            n += 1;
        }
        self.publish(&fl);
    }
}
