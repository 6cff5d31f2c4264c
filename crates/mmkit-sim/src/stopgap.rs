//! [`StopgapFrames`]: a bump + free-list frame allocator over [`PhysMemory`], standing in for
//! `mmkit::frame` until the simulator is wired to the real frame allocator.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use mmkit::paging::{OutOfMemory, TableMemory};
use mmkit::platform::PhysAccess;
use mmkit::{PhysAddr, PAGE_SIZE};

use crate::phys::PhysMemory;

/// TEMPORARY frame source for page tables and test data pages: frames are handed out from
/// a bump pointer over `[start, end)` and recycled through a free list. It has none of the
/// buddy allocator's properties (no orders, zones or per-CPU caches); it exists so that the
/// simulator can be tested before the frame allocator is plugged in, and will be replaced
/// by `mmkit::frame`.
///
/// Every frame it returns is zero-filled. It implements [`TableMemory`], so a
/// `PageTable<A, &StopgapFrames>` keeps its tables inside the simulated physical memory,
/// where the software MMU walks them.
#[derive(Debug)]
pub struct StopgapFrames {
    phys: Arc<PhysMemory>,
    end: u64,
    state: Mutex<State>,
    live: AtomicUsize,
}

#[derive(Debug)]
struct State {
    next: u64,
    free: Vec<u64>,
}

impl StopgapFrames {
    /// Frames of `phys` in `[start, end)` (both rounded inwards to pages and clamped to the
    /// memory). Frame 0 is a legal start, but LoongArch tables must not live there (an
    /// empty directory entry is 0), so [`crate::Machine::stopgap_frames`] starts at frame 1.
    pub fn new(phys: Arc<PhysMemory>, start: PhysAddr, end: PhysAddr) -> Self {
        let start = mmkit::addr::page_align_up(start.0).unwrap_or(u64::MAX);
        let end = mmkit::addr::page_align_down(end.0.min(phys.size()));
        StopgapFrames {
            phys,
            end,
            state: Mutex::new(State { next: start, free: Vec::new() }),
            live: AtomicUsize::new(0),
        }
    }

    /// The memory the frames come from.
    pub fn phys(&self) -> &Arc<PhysMemory> {
        &self.phys
    }

    /// A zeroed 4 KiB frame, or `None` when memory is exhausted.
    pub fn alloc_frame(&self) -> Option<PhysAddr> {
        let pa = {
            let mut st = self.state.lock().unwrap_or_else(PoisonError::into_inner);
            match st.free.pop() {
                Some(pa) => pa,
                None if st.next < self.end => {
                    let pa = st.next;
                    st.next += PAGE_SIZE;
                    pa
                }
                None => return None,
            }
        };
        self.phys.fill(PhysAddr(pa), PAGE_SIZE, 0).ok()?;
        self.live.fetch_add(1, Ordering::Relaxed);
        Some(PhysAddr(pa))
    }

    /// `n` physically contiguous, `align`-aligned zeroed bytes from the bump region (for huge
    /// pages); never from the free list. `None` if they do not fit.
    pub fn alloc_contiguous(&self, len: u64, align: u64) -> Option<PhysAddr> {
        let len = mmkit::addr::page_align_up(len)?;
        if !align.is_power_of_two() || len == 0 {
            return None;
        }
        let pa = {
            let mut st = self.state.lock().unwrap_or_else(PoisonError::into_inner);
            let start = st.next.checked_add(align - 1)? & !(align - 1);
            let end = start.checked_add(len)?;
            if end > self.end {
                return None;
            }
            // Frames skipped for alignment go to the free list.
            let mut skipped = st.next;
            while skipped < start {
                st.free.push(skipped);
                skipped += PAGE_SIZE;
            }
            st.next = end;
            start
        };
        self.phys.fill(PhysAddr(pa), len, 0).ok()?;
        self.live.fetch_add((len / PAGE_SIZE) as usize, Ordering::Relaxed);
        Some(PhysAddr(pa))
    }

    /// Returns a frame. Frames outside the managed range or not page-aligned are ignored
    /// (never a panic); double frees are the caller's bug and are not detected.
    pub fn free_frame(&self, pa: PhysAddr) {
        if !pa.is_aligned() || pa.0 >= self.end {
            return;
        }
        self.state.lock().unwrap_or_else(PoisonError::into_inner).free.push(pa.0);
        self.live.fetch_sub(1, Ordering::Relaxed);
    }

    /// Frames currently handed out.
    pub fn live(&self) -> usize {
        self.live.load(Ordering::Relaxed)
    }
}

impl PhysAccess for StopgapFrames {
    fn phys_to_ptr(&self, pa: PhysAddr) -> *mut u8 {
        self.phys.phys_to_ptr(pa)
    }
}

impl TableMemory for StopgapFrames {
    fn alloc_table(&self) -> Result<PhysAddr, OutOfMemory> {
        self.alloc_frame().ok_or(OutOfMemory)
    }

    unsafe fn free_table(&self, pa: PhysAddr) {
        self.free_frame(pa)
    }
}
