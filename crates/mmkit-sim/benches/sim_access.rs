//! Cost of a simulated access: a TLB hit, and a full page walk (TLB flushed each time),
//! per format. `cargo bench -p mmkit-sim --bench sim_access -- --warm-up-time 1
//! --measurement-time 2`

use std::hint::black_box;
use std::sync::Arc;

use criterion::{criterion_group, criterion_main, Criterion};
use mmkit::paging::{
    Aarch64, Arch, Attrs, LoongArch64, PageSize, PageTable, PteFlags, Sv39, X86_64,
};
use mmkit::platform::{Asid, TlbFlush};
use mmkit::{PhysAddr, VirtAddr, PAGE_SIZE};
use mmkit_sim::{ArchKind, AsContext, Machine, MachineConfig, StopgapFrames};

const VA: u64 = 0x4000_0000;

fn bench_arch<A: Arch>(c: &mut Criterion, arch: ArchKind) {
    let m = Machine::new(MachineConfig { mem_size: 8 << 20, cpus: 1, arch, ..Default::default() })
        .unwrap();
    let frames = StopgapFrames::new(Arc::clone(m.phys()), PhysAddr(PAGE_SIZE), PhysAddr(8 << 20));
    let pt = PageTable::<A, _>::new(&frames).unwrap();
    let f = frames.alloc_frame().unwrap();
    let a = Attrs::new(PteFlags::READ | PteFlags::WRITE | PteFlags::USER);
    pt.map(VirtAddr(VA), f, PageSize::Size4K, a).unwrap();
    let ctx = AsContext { root: pt.root(), asid: Asid(1) };
    let mut cpu = m.cpu(0).unwrap();
    let one = m.all_cpus();
    c.bench_function(&format!("sim/{}/load_u64_tlb_hit", arch.name()), |b| {
        b.iter(|| black_box(cpu.load_u64(&ctx, VirtAddr(black_box(VA + 8))).unwrap()))
    });
    c.bench_function(&format!("sim/{}/load_u64_walk", arch.name()), |b| {
        b.iter(|| {
            m.flush_asid(&one, ctx.asid);
            black_box(cpu.load_u64(&ctx, VirtAddr(black_box(VA + 8))).unwrap())
        })
    });
}

fn benches(c: &mut Criterion) {
    bench_arch::<X86_64>(c, ArchKind::X86_64);
    bench_arch::<Sv39>(c, ArchKind::Sv39);
    bench_arch::<Aarch64>(c, ArchKind::Aarch64);
    bench_arch::<LoongArch64>(c, ArchKind::LoongArch64);
}

criterion_group!(g, benches);
criterion_main!(g);
