//! Machine-level behaviour: concurrent CPUs, TLB replacement and flush accounting,
//! bounds-checked physical memory, bad input.

use std::sync::Arc;

use mmkit::paging::{Attrs, PageSize, PageTable, PteFlags, X86_64};
use mmkit::platform::{Asid, CpuMask, TlbFlush};
use mmkit::{PhysAddr, VirtAddr, PAGE_SIZE};
use mmkit_sim::{
    AccessKind, ArchKind, AsContext, FaultKind, Machine, MachineConfig, MachineError, Perm,
    PhysMemory, StopgapFrames, Tlb, Walk,
};

const VA: u64 = 0x1000_0000;

fn user_rw() -> Attrs {
    Attrs::new(PteFlags::READ | PteFlags::WRITE | PteFlags::USER)
}

#[test]
fn defaults_are_x86_64_four_level() {
    let m = Machine::new(MachineConfig::default()).unwrap();
    assert_eq!(m.arch(), ArchKind::X86_64);
    assert_eq!(ArchKind::default().levels(), 4);
    assert_eq!(m.cpu_count(), 2);
    assert!(m.cpu(2).is_none());
    assert_eq!(m.stats(99), Default::default());
    let bad = MachineConfig { cpus: 0, ..Default::default() };
    assert_eq!(Machine::new(bad).unwrap_err(), MachineError::BadCpuCount);
    let bad = MachineConfig { mem_size: 0, ..Default::default() };
    assert_eq!(Machine::new(bad).unwrap_err(), MachineError::NoMemory);
    // Flushing CPUs that do not exist is ignored.
    m.flush_all(&CpuMask::single(200));
}

/// Four host threads drive four CPUs writing disjoint words of the same pages; every
/// store lands, and the hardware's dirty/accessed updates race without losing bits.
#[test]
fn cpus_run_concurrently() {
    let cfg = MachineConfig { cpus: 4, mem_size: 8 << 20, ..Default::default() };
    let m = Machine::new(cfg).unwrap();
    let frames = StopgapFrames::new(Arc::clone(m.phys()), PhysAddr(PAGE_SIZE), PhysAddr(8 << 20));
    let pt = PageTable::<X86_64, _>::new(&frames).unwrap();
    let pages = 8u64;
    for i in 0..pages {
        let f = frames.alloc_frame().unwrap();
        pt.map(VirtAddr(VA + i * PAGE_SIZE), f, PageSize::Size4K, user_rw()).unwrap();
    }
    let ctx = AsContext { root: pt.root(), asid: Asid(3) };
    std::thread::scope(|s| {
        for cpu in 0..4u64 {
            let m = &m;
            s.spawn(move || {
                let mut c = m.cpu(cpu as usize).unwrap();
                for round in 0..50u64 {
                    for i in 0..pages {
                        let va = VA + i * PAGE_SIZE + cpu * 8;
                        c.store_u64(&ctx, VirtAddr(va), round << 8 | cpu).unwrap();
                    }
                }
            });
        }
    });
    let mut c = m.cpu(0).unwrap();
    for i in 0..pages {
        for cpu in 0..4u64 {
            let va = VA + i * PAGE_SIZE + cpu * 8;
            assert_eq!(c.load_u64(&ctx, VirtAddr(va)).unwrap(), 49 << 8 | cpu);
        }
        let f = pt.query(VirtAddr(VA + i * PAGE_SIZE)).unwrap().leaf.attrs.flags;
        assert!(f.contains(PteFlags::ACCESSED | PteFlags::DIRTY | PteFlags::WRITE));
    }
    for cpu in 0..4 {
        let s = m.stats(cpu);
        assert!(s.walks >= pages && s.tlb_hits > 0, "{s:?}");
    }
}

#[test]
fn flushes_are_counted_per_cpu() {
    let cfg = MachineConfig { cpus: 3, mem_size: 4 << 20, ..Default::default() };
    let m = Machine::new(cfg).unwrap();
    let mut two = CpuMask::single(0);
    two.insert(2);
    m.flush_range(&two, Asid(1), VirtAddr(0), VirtAddr(PAGE_SIZE));
    m.flush_asid(&CpuMask::single(1), Asid(1));
    m.flush_all(&m.all_cpus());
    let s: Vec<_> = (0..3).map(|c| m.stats(c)).collect();
    assert_eq!((s[0].flush_range, s[0].flush_asid, s[0].flush_all), (1, 0, 1));
    assert_eq!((s[1].flush_range, s[1].flush_asid, s[1].flush_all), (0, 1, 1));
    assert_eq!((s[2].flush_range, s[2].flush_asid, s[2].flush_all), (1, 0, 1));
    assert_eq!(s[1].flushes(), 2);
}

fn walk(pa: u64, global: bool) -> Walk {
    Walk {
        pa: PhysAddr(pa),
        leaf_size: PAGE_SIZE,
        user: Perm(Perm::R),
        kernel: Perm(Perm::R | Perm::W),
        dirty: false,
        global,
    }
}

#[test]
fn tlb_replacement_and_flush_paths() {
    let mut t = Tlb::new(4);
    for i in 0..6u64 {
        t.insert(Asid(1), i * PAGE_SIZE, &walk(0x10_0000 + i * PAGE_SIZE, false));
    }
    assert_eq!(t.len(), 4);
    // FIFO: the two oldest went.
    assert!(t.lookup(Asid(1), 0).is_none() && t.lookup(Asid(1), PAGE_SIZE).is_none());
    assert_eq!(t.lookup(Asid(1), 5 * PAGE_SIZE + 7).unwrap().pa_page, 0x10_5000);
    assert!(t.lookup(Asid(2), 5 * PAGE_SIZE).is_none());
    // Small range: per-page path; huge range: scan path. Both take only ASID 1 + global.
    let mut t = Tlb::new(64);
    for i in 0..8u64 {
        t.insert(Asid(1), i * PAGE_SIZE, &walk(i * PAGE_SIZE, false));
        t.insert(Asid(2), i * PAGE_SIZE, &walk(i * PAGE_SIZE, false));
    }
    t.insert(Asid(9), 100 * PAGE_SIZE, &walk(0, true));
    assert_eq!(t.flush_range(Asid(1), 0, 2 * PAGE_SIZE), 2);
    assert_eq!(t.flush_range(Asid(1), 0, u64::MAX), 7);
    assert_eq!(t.len(), 8);
    assert!(t.lookup(Asid(2), 100 * PAGE_SIZE).is_none());
    assert_eq!(t.flush_range(Asid(1), 5, 5), 0);
    assert_eq!(t.flush_asid(Asid(2)), 8);
    assert_eq!(t.flush_all(), 0);
}

#[test]
fn physical_memory_is_bounds_checked() {
    let p = PhysMemory::new(10_000).unwrap();
    assert_eq!(p.size(), 3 * PAGE_SIZE);
    assert_eq!(p.frames(), 3);
    let end = PhysAddr(p.size());
    assert!(p.read_u64(PhysAddr(end.0 - 8)).is_ok());
    assert!(p.read_u64(PhysAddr(end.0 - 7)).is_err());
    assert!(p.write(PhysAddr(u64::MAX - 1), &[1, 2, 3]).is_err());
    assert!(p.fill(PhysAddr(4), p.size(), 0).is_err());
    assert!(p.entry(PhysAddr(4)).is_none());
    assert!(p.entry(end).is_none());
    // Unaligned and straddling accesses round-trip.
    p.write_u64(PhysAddr(PAGE_SIZE - 3), 0x0102_0304_0506_0708).unwrap();
    assert_eq!(p.read_u64(PhysAddr(PAGE_SIZE - 3)).unwrap(), 0x0102_0304_0506_0708);
    let data: Vec<u8> = (0..100).collect();
    p.write(PhysAddr(13), &data).unwrap();
    let mut back = vec![0; 100];
    p.read(PhysAddr(13), &mut back).unwrap();
    assert_eq!(back, data);
    p.fill(PhysAddr(5), 20, 0xaa).unwrap();
    assert_eq!(p.read_u64(PhysAddr(8)).unwrap(), 0xaaaa_aaaa_aaaa_aaaa);
    use mmkit::platform::PhysAccess;
    assert!(p.phys_to_ptr(end).is_null());
    assert!(!p.phys_to_ptr(PhysAddr(0)).is_null());
    assert!(PhysMemory::new(0).is_none());
    assert!(PhysMemory::new(u64::MAX).is_none());
}

#[test]
fn stopgap_frames_recycle_and_stop_at_the_end() {
    let p = Arc::new(PhysMemory::new(6 * PAGE_SIZE).unwrap());
    let f = StopgapFrames::new(Arc::clone(&p), PhysAddr(PAGE_SIZE), PhysAddr(6 * PAGE_SIZE));
    let a: Vec<_> = (0..5).map(|_| f.alloc_frame().unwrap()).collect();
    assert!(f.alloc_frame().is_none());
    assert_eq!(f.live(), 5);
    p.fill(a[2], PAGE_SIZE, 0xff).unwrap();
    f.free_frame(a[2]);
    f.free_frame(PhysAddr(123)); // ignored
    let again = f.alloc_frame().unwrap();
    assert_eq!(again, a[2]);
    assert_eq!(p.read_u64(again).unwrap(), 0, "recycled frames are zeroed");
    assert!(f.alloc_contiguous(2 << 20, 2 << 20).is_none());
}

#[test]
fn kernel_page_is_not_reachable_from_user_even_when_cached() {
    let m = Machine::new(MachineConfig { mem_size: 4 << 20, ..Default::default() }).unwrap();
    let frames = StopgapFrames::new(Arc::clone(m.phys()), PhysAddr(PAGE_SIZE), PhysAddr(4 << 20));
    let pt = PageTable::<X86_64, _>::new(&frames).unwrap();
    let f = frames.alloc_frame().unwrap();
    pt.map(VirtAddr(VA), f, PageSize::Size4K, Attrs::new(PteFlags::READ | PteFlags::WRITE))
        .unwrap();
    let ctx = AsContext { root: pt.root(), asid: Asid(1) };
    let mut k = m.cpu(0).unwrap().with_privilege(mmkit_sim::Privilege::Kernel);
    k.store_u64(&ctx, VirtAddr(VA), 5).unwrap();
    // The TLB entry is cached; a user access through it still faults (cached permissions).
    let mut u = m.cpu(0).unwrap();
    let e = u.load_u64(&ctx, VirtAddr(VA)).unwrap_err();
    assert_eq!(e.fault().kind, FaultKind::Protection);
    assert_eq!(e.fault().access, AccessKind::Read);
}
