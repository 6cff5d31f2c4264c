//! Host memory and CPU ids shared by the `frame_alloc` and `slab_alloc` tests.

use std::alloc::{alloc_zeroed, dealloc, Layout};
use std::sync::atomic::{AtomicUsize, Ordering};

use mmkit::addr::PhysAddr;
use mmkit::platform::{CpuId, PhysAccess};

/// Host memory standing in for physical memory `[pa0, pa0 + len)`.
pub struct HostMem {
    pub ptr: *mut u8,
    pub len: usize,
    pub pa0: u64,
}

// SAFETY: the buffer is plain memory owned by this struct; access goes through `Host`.
unsafe impl Send for HostMem {}
// SAFETY: as above.
unsafe impl Sync for HostMem {}

impl HostMem {
    pub fn new(pa0: u64, len: usize) -> Self {
        let layout = Layout::from_size_align(len, 1 << 22).unwrap();
        // SAFETY: non-zero size.
        let ptr = unsafe { alloc_zeroed(layout) };
        assert!(!ptr.is_null());
        Self { ptr, len, pa0 }
    }
    pub fn access(&self) -> Host {
        Host { base: self.ptr as usize, pa0: self.pa0, len: self.len as u64 }
    }
}

impl Drop for HostMem {
    fn drop(&mut self) {
        // SAFETY: allocated in `new` with this layout.
        unsafe { dealloc(self.ptr, Layout::from_size_align(self.len, 1 << 22).unwrap()) };
    }
}

#[derive(Clone, Copy)]
pub struct Host {
    base: usize,
    pa0: u64,
    len: u64,
}

impl PhysAccess for Host {
    fn phys_to_ptr(&self, pa: PhysAddr) -> *mut u8 {
        let off = pa.0.wrapping_sub(self.pa0);
        assert!(off < self.len, "access outside host memory: {pa:?}");
        (self.base + off as usize) as *mut u8
    }
}

thread_local! {
    /// Set by threads that act as one CPU each, so that per-CPU lists really run in parallel.
    pub static THREAD_CPU: std::cell::Cell<Option<usize>> = const { std::cell::Cell::new(None) };
}

/// A settable CPU id (a thread's own id wins when set).
pub struct Cpus {
    pub cur: AtomicUsize,
    n: usize,
}

impl Cpus {
    pub fn new(n: usize) -> Self {
        Self { cur: AtomicUsize::new(0), n }
    }
}

impl CpuId for Cpus {
    fn current_cpu(&self) -> usize {
        THREAD_CPU.with(|c| c.get()).unwrap_or_else(|| self.cur.load(Ordering::Relaxed))
    }
    fn cpu_count(&self) -> usize {
        self.n
    }
}
