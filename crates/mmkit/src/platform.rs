//! The few traits a kernel implements to host mmkit.
//!
//! All are instance traits taking `&self` — no globals — so several machines (or several
//! simulated machines in one test process) can coexist.

use crate::addr::PhysAddr;

/// Access to physical memory: where a physical address can be read and written from the
/// kernel (Linux's direct map, `__va()`); in the simulator, an offset into a host buffer.
pub trait PhysAccess {
    /// A pointer through which the byte at `pa` can be accessed. Valid for the whole frame
    /// containing `pa` for as long as the frame is allocated.
    fn phys_to_ptr(&self, pa: PhysAddr) -> *mut u8;
}

/// The current CPU, for per-CPU caches and TLB bookkeeping.
pub trait CpuId {
    /// Index of the CPU this code runs on, `< cpu_count()`.
    fn current_cpu(&self) -> usize;
    /// Number of CPUs.
    fn cpu_count(&self) -> usize;
}
