//! [`HeapTableMemory`]: table frames from the global allocator, for tests, benchmarks and
//! simulators.

use core::sync::atomic::{AtomicUsize, Ordering};

use alloc::alloc::{alloc_zeroed, dealloc, Layout};

use super::{OutOfMemory, TableMemory};
use crate::addr::PhysAddr;
use crate::platform::PhysAccess;

const LAYOUT: Layout = match Layout::from_size_align(4096, 4096) {
    Ok(l) => l,
    Err(_) => panic!("4096/4096 is a valid layout"),
};

/// Table frames taken from the global allocator, identity-mapped: a frame's "physical
/// address" is its host address (which fits every format's output-address field on
/// 48-bit hosts).
///
/// Counts live frames so that tests can assert no leak, and can be told to fail the N-th
/// allocation (fault injection).
#[derive(Debug, Default)]
pub struct HeapTableMemory {
    live: AtomicUsize,
    allocs: AtomicUsize,
    /// Fail the allocation whose 1-based sequence number equals this (0 = never).
    fail_at: AtomicUsize,
    /// Fail every allocation from `fail_at` on, not only that one.
    fail_after: AtomicUsize,
}

impl HeapTableMemory {
    /// A memory that never fails.
    pub const fn new() -> Self {
        HeapTableMemory {
            live: AtomicUsize::new(0),
            allocs: AtomicUsize::new(0),
            fail_at: AtomicUsize::new(0),
            fail_after: AtomicUsize::new(0),
        }
    }
    /// Frames currently allocated.
    pub fn live(&self) -> usize {
        self.live.load(Ordering::Relaxed)
    }
    /// Allocation attempts so far (successful or not).
    pub fn attempts(&self) -> usize {
        self.allocs.load(Ordering::Relaxed)
    }
    /// Makes the `n`-th allocation attempt from now (1-based) fail; 0 disarms.
    pub fn fail_nth(&self, n: usize) {
        let base = self.allocs.load(Ordering::Relaxed);
        self.fail_at.store(if n == 0 { 0 } else { base + n }, Ordering::Relaxed);
        self.fail_after.store(0, Ordering::Relaxed);
    }
    /// Makes every allocation from the `n`-th attempt from now (1-based) on fail; 0 disarms.
    pub fn fail_from(&self, n: usize) {
        self.fail_nth(n);
        self.fail_after.store(usize::from(n != 0), Ordering::Relaxed);
    }
}

impl PhysAccess for HeapTableMemory {
    #[inline]
    fn phys_to_ptr(&self, pa: PhysAddr) -> *mut u8 {
        pa.0 as usize as *mut u8
    }
}

impl TableMemory for HeapTableMemory {
    fn alloc_table(&self) -> Result<PhysAddr, OutOfMemory> {
        let n = self.allocs.fetch_add(1, Ordering::Relaxed) + 1;
        let at = self.fail_at.load(Ordering::Relaxed);
        if at != 0 && (n == at || (self.fail_after.load(Ordering::Relaxed) != 0 && n > at)) {
            return Err(OutOfMemory);
        }
        // SAFETY: LAYOUT has a non-zero size.
        let p = unsafe { alloc_zeroed(LAYOUT) };
        if p.is_null() {
            return Err(OutOfMemory);
        }
        self.live.fetch_add(1, Ordering::Relaxed);
        Ok(PhysAddr(p as usize as u64))
    }

    unsafe fn free_table(&self, pa: PhysAddr) {
        self.live.fetch_sub(1, Ordering::Relaxed);
        // SAFETY: by the trait contract `pa` is a frame alloc_table returned, i.e. a pointer
        // from alloc_zeroed(LAYOUT) that has not been freed.
        unsafe { dealloc(pa.0 as usize as *mut u8, LAYOUT) }
    }
}
