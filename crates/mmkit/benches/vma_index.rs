//! VMA index benchmarks at 10^3, 10^5 and 10^6 VMAs: `VmaIndex` against (a) a plain
//! `BTreeMap<u64, Vma>` with linear gap search (the index's original placeholder) and (b) the
//! `memory_set` crate (ArceOS), where it can express the operation; plus mmap/munmap and
//! mprotect split + re-merge through `AddressSpace`'s syscalls.
//!
//! Layout: VMA `i` is 3 pages at `BASE + 4 i` pages (one free page between neighbours),
//! alternating PROT_READ and PROT_READ|PROT_WRITE so that nothing merges.
//!
//! Run: `cargo bench -p mmkit --bench vma_index -- --warm-up-time 1 --measurement-time 2`

use std::collections::BTreeMap;
use std::hint::black_box;

use criterion::{criterion_group, Criterion};
use memory_addr::{AddrRange, VirtAddr as MsAddr};
use memory_set::{MappingBackend, MemoryArea, MemorySet};
use mmkit::config::MmConfig;
use mmkit::space::NoFiles;
use mmkit::vma::index::{GapRequest, VmaIndex};
use mmkit::{AddressSpace, Backing, Errno, VmFlags, Vma};

const PG: u64 = 4096;
const GUARD: u64 = 256 * PG;
/// Top of the layout (below the default `mmap_base`, 0x7ffff7fff000).
const TOP: u64 = 0x7fff_0000_0000;
const SIZES: [usize; 3] = [1_000, 100_000, 1_000_000];

const PROT_NONE: u64 = 0;
const PROT_READ: u64 = 1;
const PROT_WRITE: u64 = 2;
const MAP_PRIVATE: u64 = 0x02;
const MAP_ANONYMOUS: u64 = 0x20;

fn base(n: usize) -> u64 {
    TOP - n as u64 * 4 * PG
}

fn layout(n: usize) -> impl Iterator<Item = Vma> {
    let b = base(n);
    (0..n as u64).map(move |i| {
        let start = b + i * 4 * PG;
        let mut flags = VmFlags::READ | VmFlags::MAYREAD | VmFlags::MAYWRITE | VmFlags::MAYEXEC;
        if i % 2 == 1 {
            flags |= VmFlags::WRITE | VmFlags::ACCOUNT;
        }
        Vma {
            start,
            end: start + 3 * PG,
            flags,
            pgoff: start / PG,
            backing: Backing::Anonymous,
            anon_vma: Default::default(),
            name: None,
        }
    })
}

/// Deterministic pseudo-random addresses inside the layout.
fn addrs(n: usize) -> Vec<u64> {
    let span = n as u64 * 4 * PG;
    let mut x = 0x9e37_79b9_7f4a_7c15u64;
    (0..4096)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            base(n) + x % span
        })
        .collect()
}

/// (a) The baseline: the `BTreeMap` placeholder the index replaced, with linear gap search.
mod baseline {
    use super::*;

    pub struct BaseIndex {
        pub guard: u64,
        pub map: BTreeMap<u64, Vma>,
    }

    impl BaseIndex {
        pub fn find(&self, addr: u64) -> Option<&Vma> {
            self.map.range(..=addr).next_back().map(|(_, v)| v).filter(|v| addr < v.end)
        }
        pub fn insert(&mut self, vma: Vma) -> bool {
            let clash =
                self.map.range(..vma.end).next_back().is_some_and(|(_, v)| v.end > vma.start);
            if !clash {
                self.map.insert(vma.start, vma);
            }
            !clash
        }
        pub fn split(&mut self, start: u64, at: u64) {
            let vma = self.map.get_mut(&start).unwrap();
            let mut upper = vma.clone();
            upper.pgoff = vma.pgoff_at(at);
            upper.start = at;
            vma.end = at;
            self.map.insert(at, upper);
        }
        pub fn unmapped_area(&self, req: &GapRequest) -> Option<u64> {
            let mut prev_end = 0u64;
            for v in self.map.values() {
                let gap_end = v.start_gap(self.guard).min(req.high_limit);
                let lo = prev_end.max(req.low_limit);
                if lo.checked_add(req.length).is_some_and(|e| e <= gap_end) {
                    return Some(lo);
                }
                prev_end = v.end;
                if prev_end >= req.high_limit {
                    return None;
                }
            }
            let lo = prev_end.max(req.low_limit);
            lo.checked_add(req.length).is_some_and(|e| e <= req.high_limit).then_some(lo)
        }
        pub fn unmapped_area_topdown(&self, req: &GapRequest) -> Option<u64> {
            let mut next_start = req.high_limit;
            for v in self.map.values().rev() {
                let lo = v.end.max(req.low_limit);
                if next_start.checked_sub(req.length).is_some_and(|a| a >= lo) {
                    return Some(next_start - req.length);
                }
                next_start = v.start_gap(self.guard).min(next_start);
                if next_start <= req.low_limit {
                    return None;
                }
            }
            next_start.checked_sub(req.length).filter(|&a| a >= req.low_limit)
        }
    }
}

/// (b) `memory_set` with a backend that does nothing.
#[derive(Clone)]
struct NopBackend;

impl MappingBackend for NopBackend {
    type Addr = MsAddr;
    type Flags = u64;
    type PageTable = ();
    fn map(&self, _: MsAddr, _: usize, _: u64, _: &mut ()) -> bool {
        true
    }
    fn unmap(&self, _: MsAddr, _: usize, _: &mut ()) -> bool {
        true
    }
    fn protect(&self, _: MsAddr, _: usize, _: u64, _: &mut ()) -> bool {
        true
    }
}

struct Fixtures {
    n: usize,
    ix: VmaIndex,
    base: baseline::BaseIndex,
    ms: MemorySet<NopBackend>,
}

fn fixtures(n: usize) -> Fixtures {
    let mut ix = VmaIndex::new(GUARD);
    let mut map = BTreeMap::new();
    let mut ms = MemorySet::new();
    for v in layout(n) {
        let area = MemoryArea::new(
            MsAddr::from(v.start as usize),
            v.len() as usize,
            v.flags.bits(),
            NopBackend,
        );
        ms.map(area, &mut (), false).unwrap();
        map.insert(v.start, v.clone());
        ix.insert(v).unwrap();
    }
    Fixtures { n, ix, base: baseline::BaseIndex { guard: GUARD, map }, ms }
}

fn group_for<'a>(
    c: &'a mut Criterion,
    name: &str,
    n: usize,
) -> criterion::BenchmarkGroup<'a, criterion::measurement::WallTime> {
    let mut g = c.benchmark_group(format!("{name}/{n}"));
    if n >= 1_000_000 {
        g.sample_size(10);
    }
    g
}

fn bench_find(c: &mut Criterion, f: &Fixtures) {
    let a = addrs(f.n);
    let mut g = group_for(c, "find", f.n);
    let mut i = 0;
    g.bench_function("vma_index", |b| {
        b.iter(|| {
            i = (i + 1) & 4095;
            black_box(f.ix.find(black_box(a[i])).is_some())
        })
    });
    g.bench_function("btreemap", |b| {
        b.iter(|| {
            i = (i + 1) & 4095;
            black_box(f.base.find(black_box(a[i])).is_some())
        })
    });
    g.bench_function("memory_set", |b| {
        b.iter(|| {
            i = (i + 1) & 4095;
            black_box(f.ms.find(MsAddr::from(black_box(a[i]) as usize)).is_some())
        })
    });
    // The same lookups, then a read of the VMA's flags: this index keeps payloads apart from
    // the keys, so this adds the payload's cache miss that `BTreeMap` pays inside its search.
    g.bench_function("vma_index/read_flags", |b| {
        b.iter(|| {
            i = (i + 1) & 4095;
            black_box(f.ix.find(black_box(a[i])).map(|v| v.flags))
        })
    });
    g.bench_function("btreemap/read_flags", |b| {
        b.iter(|| {
            i = (i + 1) & 4095;
            black_box(f.base.find(black_box(a[i])).map(|v| v.flags))
        })
    });
    g.finish();
}

/// A 2-page request in the layout's window: every 1-page hole is too small, so the only fit
/// is at the far end — the worst case for a linear scan.
fn bench_gap(c: &mut Criterion, f: &Fixtures) {
    let lo = base(f.n) - PG;
    let up = GapRequest {
        length: 2 * PG,
        low_limit: lo + PG,
        high_limit: TOP + 2 * PG,
        align_mask: 0,
        align_offset: 0,
        start_gap: 0,
    };
    let down = GapRequest { low_limit: lo - PG, high_limit: TOP, ..up };
    assert_eq!(f.ix.unmapped_area(&up), Some(TOP - PG));
    assert_eq!(f.ix.unmapped_area_topdown(&down), Some(lo - PG));
    assert_eq!(f.base.unmapped_area(&up), Some(TOP - PG));
    let mut g = group_for(c, "gap_search", f.n);
    g.bench_function("vma_index/bottom_up", |b| b.iter(|| f.ix.unmapped_area(black_box(&up))));
    g.bench_function("vma_index/top_down", |b| {
        b.iter(|| f.ix.unmapped_area_topdown(black_box(&down)))
    });
    g.bench_function("btreemap/bottom_up", |b| b.iter(|| f.base.unmapped_area(black_box(&up))));
    g.bench_function("btreemap/top_down", |b| {
        b.iter(|| f.base.unmapped_area_topdown(black_box(&down)))
    });
    let limit =
        AddrRange::new(MsAddr::from(up.low_limit as usize), MsAddr::from(up.high_limit as usize));
    let hint = MsAddr::from(up.low_limit as usize);
    assert_eq!(
        f.ms.find_free_area(hint, 2 * PG as usize, limit, PG as usize),
        Some(MsAddr::from((TOP - PG) as usize))
    );
    g.bench_function("memory_set/bottom_up", |b| {
        b.iter(|| f.ms.find_free_area(black_box(hint), 2 * PG as usize, limit, PG as usize))
    });
    g.finish();
}

/// Index-level mmap + munmap of one page: top-down search for the highest hole, insert,
/// remove.
fn bench_map_unmap_index(c: &mut Criterion, f: &mut Fixtures) {
    let req = GapRequest {
        length: PG,
        low_limit: 0x10000,
        high_limit: TOP,
        align_mask: 0,
        align_offset: 0,
        start_gap: 0,
    };
    let proto = layout(1).next().unwrap();
    let mk = |a: u64| Vma { start: a, end: a + PG, flags: VmFlags::empty(), ..proto.clone() };
    let mut g = group_for(c, "map_unmap_index", f.n);
    let ix = &mut f.ix;
    g.bench_function("vma_index", |b| {
        b.iter(|| {
            let a = ix.unmapped_area_topdown(&req).unwrap();
            ix.insert(mk(a)).unwrap();
            black_box(ix.remove(a))
        })
    });
    let base = &mut f.base;
    g.bench_function("btreemap", |b| {
        b.iter(|| {
            let a = base.unmapped_area_topdown(&req).unwrap();
            assert!(base.insert(mk(a)));
            black_box(base.map.remove(&a))
        })
    });
    let ms = &mut f.ms;
    let limit = AddrRange::new(MsAddr::from(0x10000), MsAddr::from(TOP as usize));
    let hint = MsAddr::from((TOP - 2 * PG) as usize);
    g.bench_function("memory_set", |b| {
        b.iter(|| {
            let a = ms.find_free_area(hint, PG as usize, limit, PG as usize).unwrap();
            ms.map(MemoryArea::new(a, PG as usize, 0, NopBackend), &mut (), false).unwrap();
            ms.unmap(a, PG as usize, &mut ()).unwrap();
        })
    });
    g.finish();
}

/// Index-level mprotect of the middle page of a 3-page VMA and back: two splits and a flag
/// change, then the re-merge (two removals and a range change). `memory_set` cannot merge, so
/// it measures its `protect` there and back (which splits once, then finds the page exact).
fn bench_protect_index(c: &mut Criterion, f: &mut Fixtures) {
    let s = base(f.n) + ((f.n as u64 / 2) & !1) * 4 * PG;
    let mut g = group_for(c, "mprotect_index", f.n);
    let ix = &mut f.ix;
    g.bench_function("vma_index", |b| {
        b.iter(|| {
            ix.split(s, s + PG).unwrap();
            ix.split(s + PG, s + 2 * PG).unwrap();
            ix.get_mut(s + PG).unwrap().flags -= VmFlags::READ;
            ix.get_mut(s + PG).unwrap().flags |= VmFlags::READ;
            ix.remove(s + 2 * PG).unwrap();
            ix.remove(s + PG).unwrap();
            ix.set_range(s, s, s + 3 * PG).unwrap();
        })
    });
    let base = &mut f.base;
    g.bench_function("btreemap", |b| {
        b.iter(|| {
            base.split(s, s + PG);
            base.split(s + PG, s + 2 * PG);
            base.map.get_mut(&(s + PG)).unwrap().flags -= VmFlags::READ;
            base.map.get_mut(&(s + PG)).unwrap().flags |= VmFlags::READ;
            base.map.remove(&(s + 2 * PG)).unwrap();
            base.map.remove(&(s + PG)).unwrap();
            base.map.get_mut(&s).unwrap().end = s + 3 * PG;
        })
    });
    let ms = &mut f.ms;
    let a = MsAddr::from((s + PG) as usize);
    g.bench_function("memory_set", |b| {
        b.iter(|| {
            ms.protect(a, PG as usize, |fl| Some(fl & !1), &mut ()).unwrap();
            ms.protect(a, PG as usize, |fl| Some(fl | 1), &mut ()).unwrap();
        })
    });
    g.finish();
}

/// mmap + munmap of one page and mprotect split + re-merge through the syscalls. Skipped
/// with a note while `sys_mmap`/`sys_mprotect` return ENOSYS.
fn bench_syscalls(c: &mut Criterion, n: usize) {
    let cfg = MmConfig { max_map_count: usize::MAX / 2, ..MmConfig::default() };
    let mut space = AddressSpace::new(cfg);
    for v in layout(n) {
        space.insert_vma_unmerged(v).unwrap();
    }
    let mmap = |s: &mut AddressSpace| {
        s.sys_mmap(&NoFiles, 0, PG, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, u64::MAX, 0)
    };
    let mut g = group_for(c, "syscalls", n);
    match mmap(&mut space) {
        Err(Errno::ENOSYS) => println!("note: sys_mmap returns ENOSYS; mmap+munmap skipped"),
        Err(e) => println!("note: sys_mmap failed with {e:?}; mmap+munmap skipped"),
        Ok(a) => {
            space.sys_munmap(a, PG).unwrap();
            g.bench_function("mmap_munmap", |b| {
                b.iter(|| {
                    let a = mmap(&mut space).unwrap();
                    space.sys_munmap(a, PG).unwrap()
                })
            });
        }
    }
    let s = base(n) + ((n as u64 / 2) & !1) * 4 * PG;
    let count = space.map_count();
    match space.sys_mprotect(s + PG, PG, PROT_NONE) {
        Err(e) => println!("note: sys_mprotect failed with {e:?}; mprotect split+merge skipped"),
        Ok(_) => {
            space.sys_mprotect(s + PG, PG, PROT_READ).unwrap();
            if space.map_count() != count {
                println!("note: mprotect did not re-merge ({} -> {})", count, space.map_count());
            }
            g.bench_function("mprotect_split_merge", |b| {
                b.iter(|| {
                    space.sys_mprotect(s + PG, PG, PROT_NONE).unwrap();
                    space.sys_mprotect(s + PG, PG, PROT_READ).unwrap()
                })
            });
        }
    }
    let _ = PROT_WRITE;
    g.finish();
}

fn benches(c: &mut Criterion) {
    for n in SIZES {
        let mut f = fixtures(n);
        bench_find(c, &f);
        bench_gap(c, &f);
        bench_map_unmap_index(c, &mut f);
        bench_protect_index(c, &mut f);
        drop(f);
        bench_syscalls(c, n);
    }
}

/// Instruction-count mode for `valgrind --tool=callgrind` (counts do not depend on machine
/// load, unlike criterion's times): `VMA_INDEX_PROFILE=OP,N,ITERS` builds the layout of `N`
/// VMAs and runs `ITERS` iterations of `OP` (`find`, `map_unmap`, `mprotect`, `gap`; through
/// `AddressSpace`'s syscalls: `sys_mmap_munmap`, `sys_mprotect`) without
/// criterion. Per-op cost = the count inside
/// `run_ops` divided by ITERS (see docs/benchmarks.md for the command).
fn profile(spec: &str) {
    let mut it = spec.split(',');
    let op = it.next().unwrap_or("find");
    let n: usize = it.next().and_then(|s| s.parse().ok()).unwrap_or(1000);
    let iters: usize = it.next().and_then(|s| s.parse().ok()).unwrap_or(0);
    if let Some(sys) = op.strip_prefix("sys_") {
        let cfg = MmConfig { max_map_count: usize::MAX / 2, ..MmConfig::default() };
        let mut space = AddressSpace::new(cfg);
        for v in layout(n) {
            space.insert_vma_unmerged(v).unwrap();
        }
        let acc = run_ops_syscalls(&mut space, sys, n, iters);
        println!("{op} n={n} iters={iters} acc={}", black_box(acc));
        return;
    }
    let mut ix = VmaIndex::new(GUARD);
    for v in layout(n) {
        ix.insert(v).unwrap();
    }
    let acc = run_ops(&mut ix, op, n, iters);
    println!("{op} n={n} iters={iters} acc={}", black_box(acc));
}

/// The measured loop of [`profile`], kept out of line so that callgrind can count it alone
/// (`--collect-atstart=no --toggle-collect=vma_index::run_ops`).
#[inline(never)]
fn run_ops(ix: &mut VmaIndex, op: &str, n: usize, iters: usize) -> u64 {
    let a = addrs(n);
    let req = GapRequest {
        length: PG,
        low_limit: 0x10000,
        high_limit: TOP,
        align_mask: 0,
        align_offset: 0,
        start_gap: 0,
    };
    let proto = layout(1).next().unwrap();
    let s = base(n) + ((n as u64 / 2) & !1) * 4 * PG;
    let mut acc = 0u64;
    for k in 0..iters {
        match op {
            "find" => acc += ix.find(black_box(a[k & 4095])).map_or(0, |v| v.start),
            "gap" => acc += ix.unmapped_area_topdown(black_box(&req)).unwrap(),
            "map_unmap" => {
                let a = ix.unmapped_area_topdown(&req).unwrap();
                let v = Vma { start: a, end: a + PG, flags: VmFlags::empty(), ..proto.clone() };
                ix.insert(v).unwrap();
                acc += ix.remove(a).unwrap().start;
            }
            "mprotect" => {
                ix.split(s, s + PG).unwrap();
                ix.split(s + PG, s + 2 * PG).unwrap();
                ix.get_mut(s + PG).unwrap().flags -= VmFlags::READ;
                ix.get_mut(s + PG).unwrap().flags |= VmFlags::READ;
                ix.remove(s + 2 * PG).unwrap();
                ix.remove(s + PG).unwrap();
                ix.set_range(s, s, s + 3 * PG).unwrap();
            }
            _ => panic!("unknown op {op}"),
        }
    }
    acc
}

/// [`run_ops`] for the `syscalls` group (`sys_mmap_munmap`, `sys_mprotect`), on an
/// `AddressSpace` holding the same layout (`--toggle-collect='vma_index::run_ops*'` counts it).
#[inline(never)]
fn run_ops_syscalls(space: &mut AddressSpace, op: &str, n: usize, iters: usize) -> u64 {
    let s = base(n) + ((n as u64 / 2) & !1) * 4 * PG;
    let mut acc = 0u64;
    for _ in 0..iters {
        match op {
            "mmap_munmap" => {
                let a = space
                    .sys_mmap(&NoFiles, 0, PG, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, u64::MAX, 0)
                    .unwrap();
                acc += space.sys_munmap(a, PG).unwrap() + a;
            }
            "mprotect" => {
                acc += space.sys_mprotect(s + PG, PG, PROT_NONE).unwrap();
                acc += space.sys_mprotect(s + PG, PG, PROT_READ).unwrap();
            }
            _ => panic!("unknown op sys_{op}"),
        }
    }
    acc
}

criterion_group!(vma_index, benches);

fn main() {
    if let Ok(spec) = std::env::var("VMA_INDEX_PROFILE") {
        profile(&spec);
        return;
    }
    vma_index();
    Criterion::default().configure_from_args().final_summary();
}
