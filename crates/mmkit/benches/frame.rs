//! Frame allocator benchmarks, each against `buddy_system_allocator` (locked, as a kernel
//! would share it) in the same run.
//!
//! - order-0 alloc+free: mmkit goes through the per-CPU list (target ≤ 25 ns);
//! - order-3 alloc+free: mmkit goes through the zone's buddy lists (target ≤ 150 ns), both on
//!   a fresh allocator (the block is split from an order-10 block and merged back every time,
//!   the worst case) and with a free order-3 buddy at hand (no split).
use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion};
use mmkit::frame::Gfp;

mod common;
use common::{both, mmkit_frames, MEM};

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
