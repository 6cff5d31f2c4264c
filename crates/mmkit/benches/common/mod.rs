//! Shared set-up of the `frame` and `slab` benchmarks: a CPU-clock twin of every measurement
//! and a 64 MiB host-memory frame allocator.
use std::alloc::{alloc_zeroed, Layout};
use std::sync::atomic::{AtomicUsize, Ordering};

use criterion::measurement::WallTime;
use mmkit::addr::PhysAddr;
use mmkit::frame::{FrameAllocator, FrameConfig, MemKind, MemRegion};
use mmkit::platform::{CpuId, PhysAccess};

/// Thread CPU time (`CLOCK_THREAD_CPUTIME_ID`): immune to the time-slicing of a shared,
/// overloaded machine, unlike criterion's wall clock.
fn cpu_now() -> std::time::Duration {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: `ts` is a valid, writable timespec.
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    std::time::Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

/// Registers `f` twice: `name` on criterion's wall clock and `name/cpu` on thread CPU time.
pub fn both(g: &mut criterion::BenchmarkGroup<'_, WallTime>, name: &str, mut f: impl FnMut()) {
    g.bench_function(name, |b| b.iter(&mut f));
    g.bench_function(format!("{name}/cpu"), |b| {
        b.iter_custom(|iters| {
            let t = cpu_now();
            for _ in 0..iters {
                f();
            }
            cpu_now() - t
        })
    });
}

pub const MEM: usize = 64 << 20;

#[derive(Clone, Copy)]
pub struct Host(usize);

impl PhysAccess for Host {
    #[inline]
    fn phys_to_ptr(&self, pa: PhysAddr) -> *mut u8 {
        (self.0 + pa.0 as usize) as *mut u8
    }
}

pub struct Cpu(AtomicUsize);

impl CpuId for Cpu {
    #[inline]
    fn current_cpu(&self) -> usize {
        self.0.load(Ordering::Relaxed)
    }
    #[inline]
    fn cpu_count(&self) -> usize {
        4
    }
}

pub fn mmkit_frames() -> FrameAllocator<Host, Cpu> {
    let layout = Layout::from_size_align(MEM, 1 << 22).unwrap();
    // SAFETY: non-zero size; leaked for the benchmark's lifetime.
    let base = unsafe { alloc_zeroed(layout) } as usize;
    assert_ne!(base, 0);
    let map = [MemRegion::new(0, MEM as u64, MemKind::Usable)];
    FrameAllocator::new(&map, FrameConfig::default(), Host(base), Cpu(AtomicUsize::new(0))).unwrap()
}
