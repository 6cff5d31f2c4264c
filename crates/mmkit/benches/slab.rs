//! Slab benchmarks: alloc+free of a 64-byte object through the per-CPU freelist (target
//! ≤ 15 ns), against the host's malloc/free (`std::alloc::System`) in the same run.
use std::alloc::{GlobalAlloc, Layout, System};
use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion};
use mmkit::frame::FaultInjector;
use mmkit::slab::{Kmalloc, SlabCache};

mod common;
use common::{both, mmkit_frames};

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
