//! The software MMU walking tables built by `mmkit::paging`, for every format: data reaches
//! the right frames, permissions fault as the hardware would, accessed/dirty bits are set,
//! huge leaves translate, and the TLB keeps stale translations until flushed.

use mmkit::addr::PageRange;
use mmkit::paging::{
    Aarch64, Arch, Attrs, LoongArch64, PageSize, PageTable, PteFlags, Sv39, Sv48, Sv57, X86_64La57,
    X86_64,
};
use mmkit::platform::{Asid, CpuMask, TlbFlush};
use mmkit::{PhysAddr, VirtAddr, PAGE_SIZE};
use mmkit_sim::{
    AccessError, AccessKind, ArchKind, AsContext, FaultKind, FnHandler, Machine, MachineConfig,
    MmuConfig, Privilege, StopgapFrames, MAX_FAULT_RETRIES,
};

const MEM: u64 = 16 << 20;
const VA: u64 = 0x40_0000;

type Pt<A> = PageTable<A, &'static StopgapFrames>;

struct Rig<A: Arch> {
    m: Machine,
    frames: &'static StopgapFrames,
    pt: Pt<A>,
    ctx: AsContext,
}

fn rig_cfg<A: Arch>(arch: ArchKind, cpus: usize, mmu: MmuConfig) -> Rig<A> {
    let m = Machine::new(MachineConfig { mem_size: MEM, cpus, arch, mmu, ..Default::default() })
        .unwrap();
    // Frame 0 stays unused (LoongArch: a directory entry of 0 means "no table").
    let frames: &'static StopgapFrames = Box::leak(Box::new(StopgapFrames::new(
        m.phys().clone(),
        PhysAddr(PAGE_SIZE),
        PhysAddr(MEM),
    )));
    let pt = Pt::<A>::new(frames).unwrap();
    let ctx = AsContext { root: pt.root(), asid: Asid(1) };
    Rig { m, frames, pt, ctx }
}

fn rig<A: Arch>(arch: ArchKind, cpus: usize) -> Rig<A> {
    rig_cfg(arch, cpus, MmuConfig::default())
}

fn user_rw() -> Attrs {
    Attrs::new(PteFlags::READ | PteFlags::WRITE | PteFlags::USER)
}

impl<A: Arch> Rig<A> {
    /// Maps a fresh zeroed 4 KiB frame at `va`.
    fn map4k(&self, va: u64, a: Attrs) -> PhysAddr {
        let pa = self.frames.alloc_frame().unwrap();
        self.pt.map(VirtAddr(va), pa, PageSize::Size4K, a).unwrap();
        pa
    }
    fn flags(&self, va: u64) -> PteFlags {
        self.pt.query(VirtAddr(va)).unwrap().leaf.attrs.flags
    }
    fn flush_everywhere(&self, token: mmkit::paging::Flush) {
        self.m.flush(&self.m.all_cpus(), self.ctx.asid, token);
    }
}

fn fault_kind<E>(r: Result<impl Sized, AccessError<E>>) -> FaultKind {
    match r {
        Ok(_) => panic!("access succeeded, expected a fault"),
        Err(e) => e.fault().kind,
    }
}

// ---------------------------------------------------------------------------------------

fn reads_and_writes_hit_the_right_bytes<A: Arch>(arch: ArchKind) {
    let r = rig::<A>(arch, 1);
    let f1 = r.map4k(VA, user_rw());
    let f2 = r.map4k(VA + PAGE_SIZE, user_rw());
    let phys = r.m.phys();
    phys.write_u64(PhysAddr(f1.0 + 0x10), 0x1122_3344_5566_7788).unwrap();
    let mut cpu = r.m.cpu(0).unwrap();
    assert_eq!(cpu.load_u64(&r.ctx, VirtAddr(VA + 0x10)).unwrap(), 0x1122_3344_5566_7788);
    cpu.store_u64(&r.ctx, VirtAddr(VA + PAGE_SIZE + 0x20), 0xdead_beef).unwrap();
    assert_eq!(phys.read_u64(PhysAddr(f2.0 + 0x20)).unwrap(), 0xdead_beef);
    // A store straddling the page boundary lands in both frames.
    cpu.store_u64(&r.ctx, VirtAddr(VA + PAGE_SIZE - 4), 0xaaaa_bbbb_cccc_dddd).unwrap();
    assert_eq!(phys.read_u64(PhysAddr(f1.0 + PAGE_SIZE - 8)).unwrap() >> 32, 0xcccc_dddd);
    assert_eq!(phys.read_u64(PhysAddr(f2.0)).unwrap() & 0xffff_ffff, 0xaaaa_bbbb);
    assert_eq!(cpu.load_u64(&r.ctx, VirtAddr(VA + PAGE_SIZE - 4)).unwrap(), 0xaaaa_bbbb_cccc_dddd);
    // Second access is a TLB hit.
    assert!(r.m.stats(0).tlb_hits > 0);
    // Nothing mapped next door.
    assert_eq!(
        fault_kind(cpu.load_u8(&r.ctx, VirtAddr(VA + 2 * PAGE_SIZE))),
        FaultKind::NotPresent
    );
    // A split store whose second page faults writes nothing.
    phys.write_u64(PhysAddr(f2.0 + PAGE_SIZE - 8), 0).unwrap();
    assert!(cpu.store_u64(&r.ctx, VirtAddr(VA + 2 * PAGE_SIZE - 4), u64::MAX).is_err());
    assert_eq!(phys.read_u64(PhysAddr(f2.0 + PAGE_SIZE - 8)).unwrap(), 0);
}

fn permissions_fault<A: Arch>(arch: ArchKind) {
    let r = rig::<A>(arch, 1);
    let ro = VA;
    let kernel = VA + PAGE_SIZE;
    let code = VA + 2 * PAGE_SIZE;
    let none = VA + 3 * PAGE_SIZE;
    r.map4k(ro, Attrs::new(PteFlags::READ | PteFlags::USER));
    r.map4k(kernel, Attrs::new(PteFlags::READ | PteFlags::WRITE));
    r.map4k(code, Attrs::new(PteFlags::READ | PteFlags::EXEC | PteFlags::USER));
    r.map4k(none, user_rw());
    let mut cpu = r.m.cpu(0).unwrap();
    let c = &r.ctx;
    // Read-only.
    cpu.load_u8(c, VirtAddr(ro)).unwrap();
    assert_eq!(fault_kind(cpu.store_u8(c, VirtAddr(ro), 1)), FaultKind::Protection);
    // NX: data pages do not execute, code pages do (and are not writable).
    assert_eq!(fault_kind(cpu.fetch_u64(c, VirtAddr(ro))), FaultKind::Protection);
    cpu.fetch_u64(c, VirtAddr(code)).unwrap();
    assert_eq!(fault_kind(cpu.store_u8(c, VirtAddr(code), 1)), FaultKind::Protection);
    // Kernel-only page: user accesses fault, kernel accesses work.
    assert_eq!(fault_kind(cpu.load_u8(c, VirtAddr(kernel))), FaultKind::Protection);
    assert_eq!(fault_kind(cpu.store_u8(c, VirtAddr(kernel), 1)), FaultKind::Protection);
    let mut k = r.m.cpu(0).unwrap().with_privilege(Privilege::Kernel);
    k.store_u8(c, VirtAddr(kernel), 7).unwrap();
    assert_eq!(k.load_u8(c, VirtAddr(kernel)).unwrap(), 7);
    // Kernel writes honour write protection; kernel fetches from user code fault
    // (SMEP / RISC-V / Arm), except on LoongArch, which has no such check.
    assert_eq!(fault_kind(k.store_u8(c, VirtAddr(ro), 1)), FaultKind::Protection);
    if arch == ArchKind::LoongArch64 {
        k.fetch_u64(c, VirtAddr(code)).unwrap();
    } else {
        assert_eq!(fault_kind(k.fetch_u64(c, VirtAddr(code))), FaultKind::Protection);
    }
    // PROT_NONE: present for mmkit, invalid for the hardware.
    cpu.store_u8(c, VirtAddr(none), 1).unwrap();
    let mut pt = r.pt;
    let fl =
        pt.protect(PageRange::new(none, none + PAGE_SIZE).unwrap(), PteFlags::empty()).unwrap();
    r.m.flush(&r.m.all_cpus(), c.asid, fl);
    assert!(pt.query(VirtAddr(none)).unwrap().leaf.attrs.flags.is_protnone());
    assert_eq!(fault_kind(cpu.load_u8(c, VirtAddr(none))), FaultKind::NotPresent);
    assert_eq!(fault_kind(k.load_u8(c, VirtAddr(none))), FaultKind::NotPresent);
    // Back to read-write: accessible again, contents kept.
    let fl = pt
        .protect(PageRange::new(none, none + PAGE_SIZE).unwrap(), PteFlags::READ | PteFlags::WRITE)
        .unwrap();
    r.m.flush(&r.m.all_cpus(), c.asid, fl);
    assert_eq!(cpu.load_u8(c, VirtAddr(none)).unwrap(), 1);
    // Outside the format's virtual range.
    let bad = if arch == ArchKind::Aarch64 { 1u64 << 48 } else { 1u64 << (arch.va_bits() - 1) };
    assert_eq!(fault_kind(cpu.load_u8(c, VirtAddr(bad))), FaultKind::NonCanonical);
}

fn accessed_and_dirty_are_set<A: Arch>(arch: ArchKind) {
    let r = rig::<A>(arch, 1);
    r.map4k(VA, user_rw());
    let ad = PteFlags::ACCESSED | PteFlags::DIRTY;
    assert!(!r.flags(VA).intersects(ad));
    let mut cpu = r.m.cpu(0).unwrap();
    cpu.load_u8(&r.ctx, VirtAddr(VA)).unwrap();
    assert!(r.flags(VA).contains(PteFlags::ACCESSED));
    assert!(!r.flags(VA).contains(PteFlags::DIRTY));
    // The write goes through a clean TLB entry: the MMU walks again to set dirty.
    cpu.store_u8(&r.ctx, VirtAddr(VA), 1).unwrap();
    assert!(r.flags(VA).contains(ad));
    // Clearing the bits without a flush: the TLB still holds a dirty entry, so further
    // accesses do not set them again (Linux flushes after clearing dirty for writeback).
    let range = PageRange::new(VA, VA + PAGE_SIZE).unwrap();
    let fl = r.pt.test_and_clear(range, ad, |_| {}).unwrap();
    cpu.store_u8(&r.ctx, VirtAddr(VA), 2).unwrap();
    assert!(!r.flags(VA).intersects(ad));
    r.flush_everywhere(fl);
    cpu.store_u8(&r.ctx, VirtAddr(VA), 3).unwrap();
    assert!(r.flags(VA).contains(ad));
    // The permissions survived the hardware updates.
    let f = r.flags(VA);
    assert!(f.contains(PteFlags::READ | PteFlags::WRITE | PteFlags::USER));
}

fn no_hardware_ad_faults<A: Arch>(arch: ArchKind) {
    let r = rig_cfg::<A>(arch, 1, MmuConfig { hw_access_dirty: false });
    r.map4k(VA, user_rw());
    let mut cpu = r.m.cpu(0).unwrap();
    let res = cpu.load_u8(&r.ctx, VirtAddr(VA));
    match arch {
        // x86 always updates in hardware; LoongArch's TLB handlers do it in software.
        ArchKind::X86_64 | ArchKind::X86_64La57 | ArchKind::LoongArch64 => {
            res.unwrap();
            cpu.store_u8(&r.ctx, VirtAddr(VA), 1).unwrap();
            assert!(r.flags(VA).contains(PteFlags::ACCESSED | PteFlags::DIRTY));
        }
        _ => {
            assert_eq!(fault_kind(res), FaultKind::AccessFlag);
            // The kernel marks the page young and retries; a write to the clean page then
            // faults (Svade: AccessFlag; Arm without DBM: permission fault).
            r.pt.update_leaf(VirtAddr(VA), |m| {
                let mut a = m.attrs;
                a.flags |= PteFlags::ACCESSED;
                Some(a)
            })
            .unwrap()
            .ignore();
            cpu.load_u8(&r.ctx, VirtAddr(VA)).unwrap();
            let want = if arch == ArchKind::Aarch64 {
                FaultKind::Protection
            } else {
                FaultKind::AccessFlag
            };
            assert_eq!(fault_kind(cpu.store_u8(&r.ctx, VirtAddr(VA), 1)), want);
            r.pt.update_leaf(VirtAddr(VA), |m| {
                let mut a = m.attrs;
                a.flags |= PteFlags::DIRTY;
                Some(a)
            })
            .unwrap()
            .ignore();
            cpu.store_u8(&r.ctx, VirtAddr(VA), 1).unwrap();
        }
    }
}

fn huge_leaves_translate<A: Arch>(arch: ArchKind) {
    let r = rig::<A>(arch, 1);
    let phys = r.m.phys();
    let two_m = 2 << 20;
    let f = r.frames.alloc_contiguous(two_m, two_m).unwrap();
    let va2 = 0x4000_0000;
    r.pt.map(VirtAddr(va2), f, PageSize::Size2M, user_rw()).unwrap();
    phys.write_u64(PhysAddr(f.0 + 0x12_3458), 42).unwrap();
    let mut cpu = r.m.cpu(0).unwrap();
    assert_eq!(cpu.load_u64(&r.ctx, VirtAddr(va2 + 0x12_3458)).unwrap(), 42);
    cpu.store_u64(&r.ctx, VirtAddr(va2 + two_m - 8), 43).unwrap();
    assert_eq!(phys.read_u64(PhysAddr(f.0 + two_m - 8)).unwrap(), 43);
    assert!(r.flags(va2).contains(PteFlags::ACCESSED | PteFlags::DIRTY));
    assert_eq!(r.pt.query(VirtAddr(va2)).unwrap().leaf.size, PageSize::Size2M);
    if A::MAX_LEAF_LEVEL >= 2 {
        // A 1 GiB leaf over physical [0, 1 GiB): only the accessed bytes must exist.
        let va1 = 0x8000_0000u64;
        r.pt.map(VirtAddr(va1), PhysAddr(0), PageSize::Size1G, user_rw()).unwrap();
        cpu.store_u64(&r.ctx, VirtAddr(va1 + f.0 + 0x100), 44).unwrap();
        assert_eq!(phys.read_u64(PhysAddr(f.0 + 0x100)).unwrap(), 44);
        assert_eq!(cpu.load_u64(&r.ctx, VirtAddr(va2 + 0x100)).unwrap(), 44);
        // Beyond physical memory: a bus error, not a wrong read.
        assert_eq!(fault_kind(cpu.load_u8(&r.ctx, VirtAddr(va1 + MEM))), FaultKind::Bus);
    } else {
        assert!(r.pt.map(VirtAddr(0x8000_0000), PhysAddr(0), PageSize::Size1G, user_rw()).is_err());
    }
}

fn stale_tlb_until_flushed<A: Arch>(arch: ArchKind) {
    let mut r = rig::<A>(arch, 2);
    let old = r.map4k(VA, user_rw());
    let phys = r.m.phys().clone();
    let c = r.ctx;
    let mut cpu0 = r.m.cpu(0).unwrap();
    let mut cpu1 = r.m.cpu(1).unwrap();
    // CPU 0 caches a dirty (writable) entry, CPU 1 a clean one.
    cpu0.store_u64(&c, VirtAddr(VA), 0x01d).unwrap();
    assert_eq!(cpu0.load_u64(&c, VirtAddr(VA)).unwrap(), 0x01d);
    assert_eq!(cpu1.load_u64(&c, VirtAddr(VA)).unwrap(), 0x01d);
    // Remap to a new frame, flushing only CPU 1.
    let (gone, fl) = r.pt.unmap_page(VirtAddr(VA)).unwrap();
    assert_eq!(gone.pa, old);
    let new = r.frames.alloc_frame().unwrap();
    phys.write_u64(new, 0x2e3).unwrap();
    r.pt.map(VirtAddr(VA), new, PageSize::Size4K, user_rw()).unwrap();
    r.m.flush(&CpuMask::single(1), c.asid, fl);
    assert_eq!(cpu0.load_u64(&c, VirtAddr(VA)).unwrap(), 0x01d, "CPU 0 was not flushed");
    assert_eq!(cpu1.load_u64(&c, VirtAddr(VA)).unwrap(), 0x2e3);
    // A stale writable entry even writes into the old frame.
    cpu0.store_u64(&c, VirtAddr(VA), 0x0bad).unwrap();
    assert_eq!(phys.read_u64(old).unwrap(), 0x0bad);
    assert_eq!(phys.read_u64(new).unwrap(), 0x2e3);
    r.m.flush(&CpuMask::single(0), c.asid, fl);
    assert_eq!(cpu0.load_u64(&c, VirtAddr(VA)).unwrap(), 0x2e3);
    assert_eq!((r.m.stats(0).flush_range, r.m.stats(1).flush_range), (1, 1));

    // A permission downgrade without a flush is not seen either.
    let range = PageRange::new(VA, VA + PAGE_SIZE).unwrap();
    cpu0.store_u64(&c, VirtAddr(VA), 5).unwrap();
    let fl = r.pt.protect(range, PteFlags::READ).unwrap();
    cpu0.store_u64(&c, VirtAddr(VA), 6).unwrap();
    r.m.flush_range(&r.m.all_cpus(), c.asid, VirtAddr(VA), VirtAddr(VA + PAGE_SIZE));
    fl.ignore();
    assert_eq!(fault_kind(cpu0.store_u64(&c, VirtAddr(VA), 7)), FaultKind::Protection);
    assert_eq!(phys.read_u64(new).unwrap(), 6);
    assert_eq!(r.m.stats(0).flush_range, 2);
    assert_eq!(r.m.stats(0).flushes(), 2);
}

fn asids_are_separate<A: Arch>(arch: ArchKind) {
    let r1 = rig::<A>(arch, 1);
    let m = &r1.m;
    // A second address space in the same machine, same VA, other frame.
    let frames = r1.frames;
    let pt2 = Pt::<A>::new(frames).unwrap();
    let ctx2 = AsContext { root: pt2.root(), asid: Asid(2) };
    let f1 = r1.map4k(VA, user_rw());
    let f2 = frames.alloc_frame().unwrap();
    pt2.map(VirtAddr(VA), f2, PageSize::Size4K, user_rw()).unwrap();
    m.phys().write_u64(f1, 1).unwrap();
    m.phys().write_u64(f2, 2).unwrap();
    let mut cpu = m.cpu(0).unwrap();
    assert_eq!(cpu.load_u64(&r1.ctx, VirtAddr(VA)).unwrap(), 1);
    assert_eq!(cpu.load_u64(&ctx2, VirtAddr(VA)).unwrap(), 2);
    assert_eq!(m.tlb_len(0), 2);
    m.flush_asid(&m.all_cpus(), Asid(2));
    assert_eq!(m.tlb_len(0), 1);
    assert_eq!(cpu.load_u64(&r1.ctx, VirtAddr(VA)).unwrap(), 1);
    // A global translation is used by every ASID until flushed from all of them.
    let g = VA + 16 * PAGE_SIZE;
    let fg = r1.map4k(g, Attrs::new(PteFlags::READ | PteFlags::WRITE | PteFlags::GLOBAL));
    m.phys().write_u64(fg, 3).unwrap();
    let mut k = m.cpu(0).unwrap().with_privilege(Privilege::Kernel);
    assert_eq!(k.load_u64(&r1.ctx, VirtAddr(g)).unwrap(), 3);
    assert_eq!(k.load_u64(&ctx2, VirtAddr(g)).unwrap(), 3, "global entry shared");
    m.flush_asid(&m.all_cpus(), Asid(1));
    assert_eq!(k.load_u64(&ctx2, VirtAddr(g)).unwrap(), 3, "ASID flush keeps globals");
    m.flush_all(&m.all_cpus());
    assert_eq!(fault_kind(k.load_u64(&ctx2, VirtAddr(g))), FaultKind::NotPresent);
}

fn fault_handler_loop<A: Arch>(arch: ArchKind) {
    let r = rig::<A>(arch, 1);
    let pt = &r.pt;
    let frames = r.frames;
    let mut seen = Vec::new();
    // Demand paging: map a zeroed frame on a not-present fault, then retry.
    let handler = FnHandler(|cpu: usize, _: &AsContext, f: &mmkit_sim::Fault| {
        seen.push((cpu, f.va, f.access, f.kind));
        if f.kind != FaultKind::NotPresent || f.va.0 >= VA + 4 * PAGE_SIZE {
            return Err("SIGSEGV");
        }
        let pa = frames.alloc_frame().ok_or("OOM")?;
        pt.map(f.va.align_down(), pa, PageSize::Size4K, user_rw()).map_err(|_| "map")
    });
    let mut cpu = r.m.cpu(0).unwrap().with_handler(handler);
    cpu.store_u64(&r.ctx, VirtAddr(VA + PAGE_SIZE - 4), 9).unwrap();
    assert_eq!(cpu.load_u64(&r.ctx, VirtAddr(VA + PAGE_SIZE - 4)).unwrap(), 9);
    let e = cpu.load_u8(&r.ctx, VirtAddr(VA + 8 * PAGE_SIZE)).unwrap_err();
    assert!(matches!(e, AccessError::Handler { error: "SIGSEGV", .. }));
    assert_eq!(seen.len(), 3);
    // The fault address is the byte that faulted (CR2 / stval / FAR), page by page.
    assert_eq!(
        seen[0],
        (0, VirtAddr(VA + PAGE_SIZE - 4), AccessKind::Write, FaultKind::NotPresent)
    );
    assert_eq!(seen[1].1, VirtAddr(VA + PAGE_SIZE));
    // A handler that claims success without fixing anything is caught.
    let mut n = 0;
    let mut cpu = r.m.cpu(0).unwrap().with_handler(FnHandler(
        |_: usize, _: &AsContext, _: &mmkit_sim::Fault| {
            n += 1;
            Ok::<(), ()>(())
        },
    ));
    let e = cpu.load_u8(&r.ctx, VirtAddr(VA + 9 * PAGE_SIZE)).unwrap_err();
    assert!(matches!(e, AccessError::Unresolved(_)));
    assert_eq!(n, MAX_FAULT_RETRIES);
}

fn high_addresses_translate<A: Arch>(arch: ArchKind) {
    let r = rig::<A>(arch, 1);
    let bits = arch.va_bits();
    // The last page of the lower half, and (sign-extended formats) the first and last pages
    // of the upper half: every top-level index bit is exercised.
    let mut vas = vec![(1u64 << (bits - 1)) - PAGE_SIZE, 0x1234_5000 << (bits - 36)];
    if arch == ArchKind::Aarch64 {
        vas.push((1 << 48) - PAGE_SIZE);
    } else {
        vas.push(!0u64 << (bits - 1));
        vas.push(!0u64 << 12);
    }
    let rw = Attrs::new(PteFlags::READ | PteFlags::WRITE);
    let frames: Vec<_> = vas.iter().map(|&va| r.map4k(va, rw)).collect();
    let mut k = r.m.cpu(0).unwrap().with_privilege(Privilege::Kernel);
    for (i, (&va, &pa)) in vas.iter().zip(&frames).enumerate() {
        k.store_u64(&r.ctx, VirtAddr(va + 8), i as u64 + 100).unwrap();
        assert_eq!(r.m.phys().read_u64(PhysAddr(pa.0 + 8)).unwrap(), i as u64 + 100, "{va:#x}");
    }
    for (i, &va) in vas.iter().enumerate() {
        assert_eq!(k.load_u64(&r.ctx, VirtAddr(va + 8)).unwrap(), i as u64 + 100);
    }
    // One past the lower half is outside the format (non-canonical / outside TTBR0).
    let hole = if arch == ArchKind::Aarch64 { 1u64 << 48 } else { 1u64 << (bits - 1) };
    assert_eq!(fault_kind(k.load_u8(&r.ctx, VirtAddr(hole))), FaultKind::NonCanonical);
}

macro_rules! per_arch {
    ($($test:ident),*) => {$(
        mod $test {
            use super::*;
            #[test] fn x86_64() { super::$test::<X86_64>(ArchKind::X86_64) }
            #[test] fn x86_64_la57() { super::$test::<X86_64La57>(ArchKind::X86_64La57) }
            #[test] fn sv39() { super::$test::<Sv39>(ArchKind::Sv39) }
            #[test] fn sv48() { super::$test::<Sv48>(ArchKind::Sv48) }
            #[test] fn sv57() { super::$test::<Sv57>(ArchKind::Sv57) }
            #[test] fn aarch64() { super::$test::<Aarch64>(ArchKind::Aarch64) }
            #[test] fn loongarch64() { super::$test::<LoongArch64>(ArchKind::LoongArch64) }
        }
    )*};
}

per_arch!(
    reads_and_writes_hit_the_right_bytes,
    permissions_fault,
    accessed_and_dirty_are_set,
    no_hardware_ad_faults,
    huge_leaves_translate,
    stale_tlb_until_flushed,
    asids_are_separate,
    fault_handler_loop,
    high_addresses_translate
);
