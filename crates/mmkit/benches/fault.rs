//! Page-fault costs of the page layer (no trap, no simulated MMU: the handler itself, called
//! the way the trap path calls it), and the host kernel's anonymous write fault for scale.
//!
//! Each sample faults a batch of 512 pages (one PTE table, which stays allocated between
//! batches so that only page costs are measured) and reports the time per fault; the
//! clean-up (zap) is outside the timed part.

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion};
use mmkit::addr::VirtAddr;
use mmkit::fault::Access;
use mmkit::platform::PhysAccess;

#[path = "../tests/fault_common/mod.rs"]
mod fault_common;
use fault_common::*;

const N: u64 = 512;
const BASE: u64 = 0x4000_0000;

/// Runs `iters` faults in batches of `N`: `setup` before each batch (untimed), `fault` for
/// each page (timed), `clean` after (untimed).
fn batched(
    iters: u64,
    mut setup: impl FnMut(),
    mut fault: impl FnMut(u64),
    mut clean: impl FnMut(),
) -> Duration {
    let mut total = Duration::ZERO;
    let mut done = 0;
    while done < iters {
        let n = N.min(iters - done);
        setup();
        let t = Instant::now();
        for i in 0..n {
            fault(BASE + i * P);
        }
        total += t.elapsed();
        clean();
        done += n;
    }
    total
}

/// Times `iters` faults of `access` in batches of `N` pages, zapping (untimed) after each.
fn fault_batches(a: &mut Mm, v: &mmkit::Vma, access: Access, iters: u64) -> Duration {
    let mut total = Duration::ZERO;
    let mut done = 0;
    while done < iters {
        let n = N.min(iters - done);
        let t = Instant::now();
        for i in 0..n {
            black_box(a.fault(v, VirtAddr(BASE + i * P), access, 0).unwrap());
        }
        total += t.elapsed();
        a.zap(BASE, BASE + N * P).unwrap();
        a.host().tlb.take();
        done += n;
    }
    total
}

fn bench(c: &mut Criterion) {
    let (_m, h) = TestHost::new(64, 1);
    let v = anon(BASE, N, RW);
    let mut g = c.benchmark_group("fault");

    g.bench_function("anon_write_fault", |b| {
        let mut a = mm(&h, 1);
        // Keep the PTE table alive: one page stays mapped above the batch.
        a.fault(&anon(BASE, N + 1, RW), VirtAddr(BASE + N * P), Access::Write, 0).unwrap();
        b.iter_custom(|iters| fault_batches(&mut a, &v, Access::Write, iters));
        a.teardown();
    });

    // What zeroing alone costs per page on this machine (same frames, same pattern):
    // subtracted from the fault figure to give "excluding zeroing".
    g.bench_function("zero_4k_frame", |b| {
        let frames: Vec<_> = (0..N).map(|_| h.fa.alloc_frame().unwrap()).collect();
        b.iter_custom(|iters| {
            let mut k = 0usize;
            batched(
                iters,
                || {},
                |_| {
                    let p = h.fa.phys_to_ptr(frames[k % frames.len()].addr());
                    k += 1;
                    // SAFETY: a frame we allocated above, 4 KiB long.
                    unsafe { std::ptr::write_bytes(black_box(p), 0, P as usize) };
                },
                || {},
            )
        });
        for f in frames {
            h.fa.free(f, 0).unwrap();
        }
    });

    g.bench_function("zero_page_read_fault", |b| {
        let mut a = mm(&h, 1);
        a.fault(&anon(BASE, N + 1, RW), VirtAddr(BASE + N * P), Access::Write, 0).unwrap();
        b.iter_custom(|iters| fault_batches(&mut a, &v, Access::Read, iters));
        a.teardown();
    });

    g.bench_function("cow_fault_copy", |b| {
        let mut parent = mm(&h, 1);
        assert_eq!(parent.populate(&v, BASE, BASE + N * P, true), Ok(N));
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            let mut done = 0;
            while done < iters {
                let n = N.min(iters - done);
                let mut child = mm(&h, 2);
                parent.fork_into(&mut child, &v).unwrap();
                let t = Instant::now();
                for i in 0..n {
                    black_box(child.fault(&v, VirtAddr(BASE + i * P), Access::Write, 0).unwrap());
                }
                total += t.elapsed();
                child.teardown();
                h.tlb.take();
                done += n;
            }
            total
        });
        parent.teardown();
    });

    // The host kernel: trap + handle_mm_fault + zeroing, for the ratio.
    g.bench_function("native_anon_write_fault", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            let mut done = 0;
            while done < iters {
                let n = N.min(iters - done);
                let len = (N * P) as usize;
                // SAFETY: anonymous private mapping, checked below, unmapped after use.
                let p = unsafe {
                    libc::mmap(
                        std::ptr::null_mut(),
                        len,
                        libc::PROT_READ | libc::PROT_WRITE,
                        libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                        -1,
                        0,
                    )
                };
                assert_ne!(p, libc::MAP_FAILED);
                let base = p as *mut u8;
                let t = Instant::now();
                for i in 0..n as usize {
                    // SAFETY: inside the mapping just created.
                    unsafe { base.add(i * P as usize).write_volatile(1) };
                }
                total += t.elapsed();
                // SAFETY: the mapping created above.
                unsafe { libc::munmap(p, len) };
                done += n;
            }
            total
        });
    });
    g.finish();
    h.assert_no_leak();
}

criterion_group!(benches, bench);
criterion_main!(benches);
