//! Page-table engine benchmarks (issue 3):
//! - map + unmap of one 4 KiB page in an existing 4-level table (target <= 60 ns);
//! - teardown of a table mapping 1 GiB of 4 KiB pages (target <= 10 ns per page).
//!
//! Run: `cargo bench -p mmkit --bench paging -- --warm-up-time 1 --measurement-time 2`

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use mmkit::paging::{
    Aarch64, Arch, Attrs, HeapTableMemory, LoongArch64, PageSize, PageTable, PteFlags, Sv39, Sv48,
    X86_64La57, X86_64,
};
use mmkit::{PhysAddr, VirtAddr};

const USER_RW: PteFlags = PteFlags::READ
    .union(PteFlags::WRITE)
    .union(PteFlags::USER)
    .union(PteFlags::ACCESSED)
    .union(PteFlags::DIRTY);

fn map_unmap<A: Arch>(c: &mut Criterion) {
    let mem = HeapTableMemory::new();
    let mut pt = PageTable::<A, _>::new(&mem).unwrap();
    let base = 0x40_0000_0000u64 & ((1 << (11 + 9 * A::LEVELS as u32)) - 1);
    let a = Attrs::new(USER_RW);
    // A neighbour keeps every level of the path populated, as in a running process.
    pt.map(VirtAddr(base), PhysAddr(0x1000), PageSize::Size4K, a).unwrap();
    let va = VirtAddr(base + 0x5000);
    c.bench_function(&format!("paging/map_unmap_4k/{}", A::NAME), |b| {
        b.iter(|| {
            pt.map(black_box(va), PhysAddr(0x2000), PageSize::Size4K, a).unwrap();
            let (m, f) = pt.unmap_page(black_box(va)).unwrap();
            f.ignore();
            black_box(m);
        })
    });
}

static TEARDOWN_MEM: HeapTableMemory = HeapTableMemory::new();

fn teardown_1g<A: Arch>(c: &mut Criterion) {
    const PAGES: u64 = 1 << 18; // 1 GiB / 4 KiB
    let mut g = c.benchmark_group("paging/teardown_1g_of_4k");
    g.throughput(Throughput::Elements(PAGES));
    g.sample_size(10);
    g.bench_function(A::NAME, |b| {
        b.iter_batched(
            || {
                let pt = PageTable::<A, &HeapTableMemory>::new(&TEARDOWN_MEM).unwrap();
                let a = Attrs::new(USER_RW);
                for i in 0..PAGES {
                    let va = (1 << 30) + i * 4096;
                    pt.map(VirtAddr(va), PhysAddr(va), PageSize::Size4K, a).unwrap();
                }
                pt
            },
            |pt| {
                let mut n = 0u64;
                pt.teardown(|m| n += m.pa.0 & 1);
                black_box(n);
            },
            BatchSize::PerIteration,
        )
    });
    g.finish();
}

fn benches(c: &mut Criterion) {
    map_unmap::<X86_64>(c);
    map_unmap::<X86_64La57>(c);
    map_unmap::<Sv39>(c);
    map_unmap::<Sv48>(c);
    map_unmap::<Aarch64>(c);
    map_unmap::<LoongArch64>(c);
    teardown_1g::<X86_64>(c);
    teardown_1g::<Aarch64>(c);
}

criterion_group!(paging, benches);
criterion_main!(paging);
