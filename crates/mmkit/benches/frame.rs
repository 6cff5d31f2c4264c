//! Frame allocator benchmarks, each against `buddy_system_allocator` (locked, as a kernel
//! would share it) in the same run.
//!
//! - order-0 alloc+free: mmkit goes through the per-CPU list (target ≤ 25 ns);
//! - order-3 alloc+free: mmkit goes through the zone's buddy lists (target ≤ 150 ns), both on
//!   a fresh allocator (the block is split from an order-10 block and merged back every time,
//!   the worst case) and with a free order-3 buddy at hand (no split).
use std::alloc::{alloc_zeroed, Layout};
use std::hint::black_box;
use std::sync::atomic::{AtomicUsize, Ordering};

use criterion::measurement::WallTime;
use criterion::{criterion_group, criterion_main, Criterion};
use mmkit::addr::PhysAddr;
use mmkit::frame::{FrameAllocator, FrameConfig, Gfp, MemKind, MemRegion};
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

/// The peer with its default `ORDER = 32`: with `ORDER = 11` (mmkit's 4 MiB maximum) its
/// `dealloc` drops a block whose top-order buddy is free (the merge loop leaves without
/// inserting), so it runs dry. Its blocks can therefore grow to the whole 64 MiB, which makes
/// its split/merge chains longer; the `no_split` variants compare like with like.
fn peer() -> buddy_system_allocator::LockedFrameAllocator {
    let fa = buddy_system_allocator::LockedFrameAllocator::<32>::new();
    fa.lock().add_frame(0, MEM >> 12);
    fa
}

fn order0(c: &mut Criterion) {
    let mut g = c.benchmark_group("frame_order0_alloc_free");
    let fa = mmkit_frames();
    both(&mut g, "mmkit_pcp", || {
        let p = fa.alloc(Gfp::KERNEL, 0).unwrap();
        fa.free(black_box(p), 0).unwrap();
    });
    let bsa = peer();
    both(&mut g, "buddy_system_allocator", || {
        let p = bsa.lock().alloc(1).unwrap();
        bsa.lock().dealloc(black_box(p), 1);
    });
    g.finish();
}

fn order3(c: &mut Criterion) {
    let mut g = c.benchmark_group("frame_order3_alloc_free");
    let fa = mmkit_frames();
    both(&mut g, "mmkit_buddy_split_merge", || {
        let p = fa.alloc(Gfp::KERNEL, 3).unwrap();
        fa.free(black_box(p), 3).unwrap();
    });
    // Keep one order-3 block so that its buddy waits on the order-3 list.
    let keep = fa.alloc(Gfp::KERNEL, 3).unwrap();
    both(&mut g, "mmkit_buddy_no_split", || {
        let p = fa.alloc(Gfp::KERNEL, 3).unwrap();
        fa.free(black_box(p), 3).unwrap();
    });
    fa.free(keep, 3).unwrap();
    let bsa = peer();
    both(&mut g, "buddy_system_allocator", || {
        let p = bsa.lock().alloc(8).unwrap();
        bsa.lock().dealloc(black_box(p), 8);
    });
    let keep = bsa.lock().alloc(8).unwrap();
    both(&mut g, "buddy_system_allocator_no_split", || {
        let p = bsa.lock().alloc(8).unwrap();
        bsa.lock().dealloc(black_box(p), 8);
    });
    bsa.lock().dealloc(keep, 8);
    g.finish();
}

criterion_group!(benches, order0, order3);
criterion_main!(benches);
