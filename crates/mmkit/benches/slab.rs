//! Slab benchmarks: alloc+free of a 64-byte object through the per-CPU freelist (target
//! ≤ 15 ns), against the host's malloc/free (`std::alloc::System`) in the same run.
use std::alloc::{alloc_zeroed, GlobalAlloc, Layout, System};
use std::hint::black_box;
use std::sync::atomic::{AtomicUsize, Ordering};

use criterion::measurement::WallTime;
use criterion::{criterion_group, criterion_main, Criterion};
use mmkit::addr::PhysAddr;
use mmkit::frame::{FaultInjector, FrameAllocator, FrameConfig, MemKind, MemRegion};
use mmkit::platform::{CpuId, PhysAccess};
use mmkit::slab::{Kmalloc, SlabCache};

/// Thread CPU time (`CLOCK_THREAD_CPUTIME_ID`): immune to the time-slicing of a shared,
/// overloaded machine, unlike criterion's wall clock.
fn cpu_now() -> std::time::Duration {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: `ts` is a valid, writable timespec.
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    std::time::Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

/// Registers `f` twice: `name` on criterion's wall clock and `name/cpu` on thread CPU time.
fn both(g: &mut criterion::BenchmarkGroup<'_, WallTime>, name: &str, mut f: impl FnMut()) {
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

const MEM: usize = 64 << 20;

#[derive(Clone, Copy)]
struct Host(usize);

impl PhysAccess for Host {
    #[inline]
    fn phys_to_ptr(&self, pa: PhysAddr) -> *mut u8 {
        (self.0 + pa.0 as usize) as *mut u8
    }
}

struct Cpu(AtomicUsize);

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

fn mmkit_frames() -> FrameAllocator<Host, Cpu> {
    let layout = Layout::from_size_align(MEM, 1 << 22).unwrap();
    // SAFETY: non-zero size; leaked for the benchmark's lifetime.
    let base = unsafe { alloc_zeroed(layout) } as usize;
    assert_ne!(base, 0);
    let map = [MemRegion::new(0, MEM as u64, MemKind::Usable)];
    FrameAllocator::new(&map, FrameConfig::default(), Host(base), Cpu(AtomicUsize::new(0))).unwrap()
}

fn slab64(c: &mut Criterion) {
    let mut g = c.benchmark_group("slab_64B_alloc_free");
    let fa = mmkit_frames();
    let l = Layout::from_size_align(64, 8).unwrap();
    let cache = SlabCache::new("bench-64", 64, 8).unwrap();
    let inject = FaultInjector::new();
    both(&mut g, "mmkit_kmem_cache", || {
        let p = cache.alloc(&fa, &inject).unwrap();
        // SAFETY: allocated just above, freed once.
        unsafe { cache.free(&fa, black_box(p)).unwrap() };
    });
    let k = Kmalloc::new(&fa);
    both(&mut g, "mmkit_kmalloc", || {
        let p = k.alloc(black_box(l)).unwrap();
        // SAFETY: allocated just above, freed once.
        unsafe { k.free(black_box(p)).unwrap() };
    });
    both(&mut g, "mmkit_global_alloc", || {
        // SAFETY: non-zero size; freed right away with the same layout.
        unsafe {
            let p = GlobalAlloc::alloc(&k, black_box(l));
            GlobalAlloc::dealloc(&k, black_box(p), l);
        }
    });
    both(&mut g, "host_malloc", || {
        // SAFETY: non-zero size; freed right away with the same layout.
        unsafe {
            let p = System.alloc(black_box(l));
            System.dealloc(black_box(p), l);
        }
    });
    g.finish();
    cache.shrink(&fa);
}

criterion_group!(benches, slab64);
criterion_main!(benches);
