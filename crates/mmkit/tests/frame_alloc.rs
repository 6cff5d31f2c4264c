//! Frame allocator: boot from memory maps with holes, buddy split/merge against a model,
//! per-CPU caches, zone fallback and watermarks, descriptors, fault injection.

use std::collections::BTreeMap;
use std::sync::atomic::Ordering;

use mmkit::addr::{Pfn, PhysAddr};
use mmkit::frame::{
    AllocError, FrameAllocator, FrameConfig, FreeError, Gfp, GfpFlags, InitError, MemKind,
    MemRegion, PageFlags, ZoneKind, MAX_ORDER, NR_ORDERS,
};
use mmkit::platform::PhysAccess;
use proptest::prelude::*;

mod alloc_common;
use alloc_common::{Cpus, Host, HostMem, THREAD_CPU};

const MIB: u64 = 1 << 20;

type Fa = FrameAllocator<Host, Cpus>;

fn no_wmark() -> FrameConfig {
    FrameConfig {
        dma32_end: PhysAddr(1 << 32),
        min_free_kbytes: Some(0),
        watermark_scale_factor: 0,
    }
}

/// One usable region `[pa0, pa0 + len)`.
fn simple(mem: &HostMem, cpus: usize) -> Fa {
    let map = [MemRegion::new(mem.pa0, mem.pa0 + mem.len as u64, MemKind::Usable)];
    FrameAllocator::new(&map, no_wmark(), mem.access(), Cpus::new(cpus)).unwrap()
}

fn leak_check(fa: &Fa) {
    fa.drain_all();
    fa.check().unwrap();
    let s = fa.stats();
    assert_eq!(s.free_total(), s.boot_free, "frames leaked");
}

#[test]
fn page_meta_is_one_cache_line() {
    assert_eq!(std::mem::size_of::<mmkit::frame::PageMeta>(), 64);
    assert_eq!(std::mem::align_of::<mmkit::frame::PageMeta>(), 64);
}

#[test]
fn boot_puts_everything_in_max_order_blocks() {
    let mem = HostMem::new(0x4000_0000, 16 * MIB as usize);
    let fa = simple(&mem, 1);
    let (mpfn, mcount) = fa.meta_frames();
    // 4096 frames * 64 B = 256 KiB = 64 frames of descriptors, at the top (memblock top-down).
    assert_eq!(mcount, 64);
    assert_eq!(mpfn.0 + mcount, (0x4000_0000 + 16 * MIB) >> 12);
    let s = fa.stats();
    assert_eq!(s.boot_free, 4096 - 64);
    let z = &s.zones[ZoneKind::Dma32 as usize];
    assert_eq!(z.managed, 4096 - 64);
    // 3 full 4 MiB blocks, then 4 MiB - 256 KiB = 2^9+2^8+2^7+2^6 frames.
    assert_eq!(z.free_blocks[MAX_ORDER], 3);
    assert_eq!(z.free_blocks[9], 1);
    assert_eq!(z.free_blocks[8], 1);
    assert_eq!(z.free_blocks[7], 1);
    assert_eq!(z.free_blocks[6], 1);
    fa.check().unwrap();
    // Descriptors of the array itself are reserved and cannot be freed.
    assert_eq!(fa.free(mpfn, 0), Err(FreeError::Reserved));
    assert!(fa.meta(mpfn).unwrap().flags().contains(PageFlags::RESERVED));
}

#[test]
fn pfn_descriptor_round_trip() {
    let mem = HostMem::new(0x10_0000, 4 * MIB as usize);
    let fa = simple(&mem, 1);
    let base = 0x10_0000 >> 12;
    for p in [base, base + 1, base + 1023] {
        let m = fa.meta(Pfn(p)).unwrap();
        assert_eq!(fa.meta_array().pfn_of(m), Some(Pfn(p)));
    }
    assert!(fa.meta(Pfn(base - 1)).is_none());
    assert!(fa.meta(Pfn(base + 1024)).is_none());
}

#[test]
fn split_and_merge() {
    let mem = HostMem::new(0, 4 * MIB as usize);
    let fa = simple(&mem, 1);
    let before = fa.stats().zones[0].free_blocks;
    let a = fa.alloc(Gfp::KERNEL, 3).unwrap();
    assert_eq!(a.0 % 8, 0, "blocks are naturally aligned");
    let m = fa.meta(a).unwrap();
    assert_eq!((m.refcount(), m.mapcount(), m.order()), (1, 0, 3));
    fa.check().unwrap();
    let b = fa.alloc(Gfp::KERNEL, 3).unwrap();
    assert_eq!(b.0, a.0 ^ 8, "second block is the first one's buddy");
    fa.free(a, 3).unwrap();
    fa.free(b, 3).unwrap();
    fa.check().unwrap();
    assert_eq!(fa.stats().zones[0].free_blocks, before, "everything merged back");
}

#[test]
fn bad_frees_are_refused_without_damage() {
    let mem = HostMem::new(0, 4 * MIB as usize);
    let fa = simple(&mem, 1);
    let a = fa.alloc(Gfp::KERNEL.with(GfpFlags::COMP), 2).unwrap();
    assert_eq!(fa.free(a, 1), Err(FreeError::OrderMismatch));
    assert_eq!(fa.free(Pfn(a.0 + 1), 0), Err(FreeError::NotHead));
    assert!(fa.meta(Pfn(a.0 + 3)).unwrap().flags().contains(PageFlags::TAIL));
    assert_eq!(fa.meta(Pfn(a.0 + 3)).unwrap().private(), a.0);
    assert_eq!(fa.free(Pfn(1 << 30), 0), Err(FreeError::OutOfRange));
    let plain = fa.alloc(Gfp::KERNEL, 1).unwrap();
    assert_eq!(fa.free(Pfn(plain.0 + 1), 0), Err(FreeError::NotAllocated), "interior frame");
    fa.free(plain, 1).unwrap();
    fa.get_page(Pfn(a.0 + 2)).unwrap();
    assert_eq!(fa.meta(a).unwrap().refcount(), 2, "a tail's reference goes to the head");
    assert_eq!(fa.free(a, 2), Err(FreeError::StillReferenced));
    assert_eq!(fa.put_page(Pfn(a.0 + 1)), Ok(false));
    fa.meta(a).unwrap().inc_mapcount();
    assert_eq!(fa.free(a, 2), Err(FreeError::StillMapped));
    fa.meta(a).unwrap().dec_mapcount();
    fa.free(a, 2).unwrap();
    assert_eq!(fa.free(a, 2), Err(FreeError::DoubleFree));
    let b = fa.alloc_frame().unwrap();
    assert_eq!(fa.put_page(b), Ok(true));
    assert_eq!(fa.free(b, 0), Err(FreeError::DoubleFree), "on the per-CPU list");
    assert_eq!(fa.put_page(b), Err(FreeError::DoubleFree));
    assert_eq!(fa.get_page(b), Err(FreeError::NotAllocated));
    assert_eq!(fa.alloc(Gfp::KERNEL, 11), Err(AllocError::BadOrder));
    leak_check(&fa);
}

#[test]
fn gfp_zero_and_descriptor_fields() {
    let mem = HostMem::new(0, 4 * MIB as usize);
    let fa = simple(&mem, 1);
    let a = fa.alloc(Gfp::KERNEL, 1).unwrap();
    let p = fa.frame_ptr(a);
    // SAFETY: the two frames are ours.
    unsafe { std::ptr::write_bytes(p, 0xAB, 8192) };
    fa.free(a, 1).unwrap();
    let b = fa.alloc(Gfp::KERNEL.with(GfpFlags::ZERO), 1).unwrap();
    let p = fa.frame_ptr(b);
    // SAFETY: the two frames are ours.
    let bytes = unsafe { std::slice::from_raw_parts(p, 8192) };
    assert!(bytes.iter().all(|&x| x == 0));
    let m = fa.meta(b).unwrap();
    m.set_mapping(0xdead0, 42);
    assert_eq!((m.mapping(), m.index()), (0xdead0, 42));
    assert!(m.inc_mapcount(), "first mapping");
    assert!(!m.inc_mapcount());
    assert_eq!(m.mapcount(), 2);
    assert!(!m.dec_mapcount());
    assert!(m.dec_mapcount(), "last mapping");
    assert_eq!(fa.ptr_to_pfn(p), Some(b));
    assert_eq!(fa.ptr_to_pfn(p.wrapping_add(4097)), Some(Pfn(b.0 + 1)));
    fa.free(b, 1).unwrap();
    leak_check(&fa);
}

#[test]
fn holes_and_reserved_ranges() {
    // 0..16 MiB of host memory; usable: [1 MiB, 6 MiB) and [8 MiB, 15.5 MiB) with a reserved
    // firmware range [10 MiB, 10 MiB + 12 KiB) inside; unaligned edges shrink inwards.
    let mem = HostMem::new(0, 16 * MIB as usize);
    let map = [
        MemRegion::new(MIB + 100, 6 * MIB, MemKind::Usable),
        MemRegion::new(8 * MIB, 15 * MIB + MIB / 2, MemKind::Usable),
        MemRegion::new(10 * MIB, 10 * MIB + 12 * 1024, MemKind::Reserved),
    ];
    let fa = FrameAllocator::new(&map, no_wmark(), mem.access(), Cpus::new(1)).unwrap();
    fa.check().unwrap();
    let usable = (5 * 256 - 1) + (7 * 256 + 128) - 3;
    let (_, meta) = fa.meta_frames();
    assert_eq!(fa.boot_free(), usable - meta);
    // Allocate everything: no frame from a hole, the reserved range or the array.
    let mut got = Vec::new();
    while let Ok(p) = fa.alloc(Gfp::KERNEL, 0) {
        got.push(p);
    }
    assert_eq!(got.len() as u64, fa.boot_free());
    let (mp, mc) = fa.meta_frames();
    for p in &got {
        let a = p.0 << 12;
        assert!((MIB + 4096..6 * MIB).contains(&a) || (8 * MIB..15 * MIB + MIB / 2).contains(&a));
        assert!(!(10 * MIB..10 * MIB + 12 * 1024).contains(&a), "reserved frame handed out");
        assert!(!(mp.0..mp.0 + mc).contains(&p.0), "descriptor frame handed out");
    }
    let mut sorted = got.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(sorted.len(), got.len(), "a frame was handed out twice");
    // The hole frame [6 MiB, 8 MiB) has a reserved descriptor.
    assert!(fa.meta(Pfn(7 * 256)).unwrap().flags().contains(PageFlags::RESERVED));
    for p in got {
        fa.free(p, 0).unwrap();
    }
    leak_check(&fa);
    assert_eq!(fa.stats().zones[0].free_blocks, {
        let fb = FrameAllocator::new(&map, no_wmark(), mem.access(), Cpus::new(1)).unwrap();
        fb.stats().zones[0].free_blocks
    });
}

#[test]
fn bad_maps_are_refused() {
    let mem = HostMem::new(0, 4 * MIB as usize);
    let cfg = no_wmark();
    let e = |map: &[MemRegion]| FrameAllocator::new(map, cfg, mem.access(), Cpus::new(1)).err();
    assert_eq!(e(&[]), Some(InitError::NoUsableMemory));
    assert_eq!(e(&[MemRegion::new(100, 4000, MemKind::Usable)]), Some(InitError::NoUsableMemory));
    assert_eq!(e(&[MemRegion::new(8192, 4096, MemKind::Usable)]), Some(InitError::BadRegion));
    assert_eq!(
        e(&[
            MemRegion::new(0, 2 * MIB, MemKind::Usable),
            MemRegion::new(MIB, 3 * MIB, MemKind::Usable)
        ]),
        Some(InitError::BadRegion)
    );
    // Everything reserved but one frame: no room for 16 descriptor pages... of a 4 MiB span.
    assert_eq!(
        e(&[
            MemRegion::new(0, 4 * MIB, MemKind::Usable),
            MemRegion::new(0, 4 * MIB - 4096, MemKind::Reserved)
        ]),
        Some(InitError::NoRoomForMeta)
    );
    let many = [MemRegion::new(0, 4096, MemKind::Reserved); 65];
    assert_eq!(e(&many), Some(InitError::TooManyRegions));
}

/// DMA32 = [0, 4 MiB), Normal = [4 MiB, 8 MiB), Movable = [8 MiB, 12 MiB).
fn three_zones(mem: &HostMem, cfg: FrameConfig) -> Fa {
    let map = [
        MemRegion::new(0, 8 * MIB, MemKind::Usable),
        MemRegion::new(8 * MIB, 12 * MIB, MemKind::Movable),
    ];
    let cfg = FrameConfig { dma32_end: PhysAddr(4 * MIB), ..cfg };
    FrameAllocator::new(&map, cfg, mem.access(), Cpus::new(1)).unwrap()
}

fn zone_of(p: Pfn) -> ZoneKind {
    match p.0 << 12 {
        a if a < 4 * MIB => ZoneKind::Dma32,
        a if a < 8 * MIB => ZoneKind::Normal,
        _ => ZoneKind::Movable,
    }
}

#[test]
fn zone_fallback_order() {
    let mem = HostMem::new(0, 12 * MIB as usize);
    let fa = three_zones(&mem, no_wmark());
    for z in ZoneKind::ALL {
        assert!(fa.zone(z).managed_pages() > 0, "{z:?}");
    }
    // Descriptors live in non-movable memory, top-down: the top of Normal.
    assert_eq!(zone_of(fa.meta_frames().0), ZoneKind::Normal);
    let mut seen = Vec::new();
    while let Ok(p) = fa.alloc(Gfp::HIGHUSER_MOVABLE, 2) {
        seen.push(zone_of(p));
    }
    // Movable first, then Normal, then DMA32, never back up.
    assert!(seen.windows(2).all(|w| w[0] >= w[1]));
    assert_eq!(seen.first(), Some(&ZoneKind::Movable));
    assert_eq!(seen.last(), Some(&ZoneKind::Dma32));
    let fa = three_zones(&mem, no_wmark());
    while let Ok(p) = fa.alloc(Gfp::KERNEL, 0) {
        assert_ne!(zone_of(p), ZoneKind::Movable, "GFP_KERNEL must not use ZONE_MOVABLE");
    }
    assert!(fa.zone(ZoneKind::Movable).free_pages() > 0);
    assert_eq!(fa.alloc(Gfp::DMA32, 0), Err(AllocError::OutOfMemory), "DMA32 used as fallback");
}

#[test]
fn watermarks_follow_linux_and_reserve_memory() {
    let mem = HostMem::new(0, 12 * MIB as usize);
    let fa = three_zones(&mem, FrameConfig::default());
    // lowmem = DMA32 + Normal managed; min_free_kbytes = sqrt(KiB * 16) clamped to >= 128.
    let dma = fa.zone(ZoneKind::Dma32);
    let normal = fa.zone(ZoneKind::Normal);
    let lowmem = dma.managed_pages() + normal.managed_pages();
    let min_kb = (((lowmem * 4 * 16) as f64).sqrt() as u64).max(128);
    let pages_min = min_kb / 4;
    let w = dma.watermarks();
    assert_eq!(w.min, pages_min * dma.managed_pages() / lowmem);
    assert_eq!(w.low - w.min, (w.min / 4).max(dma.managed_pages() * 10 / 10_000));
    assert_eq!(w.high - w.low, w.low - w.min);
    assert_eq!(fa.zone(ZoneKind::Movable).watermarks().min, 32);
    // A normal allocation stops at min; GFP_ATOMIC dips to min/2; NO_WATERMARKS takes all.
    let mut n = 0u64;
    while fa.alloc(Gfp::DMA32, 0).is_ok() {
        n += 1;
    }
    assert!(dma.free_pages() + fa.pcp_count(0, ZoneKind::Dma32) as u64 >= w.min);
    let atomic = Gfp { zone: ZoneKind::Dma32, flags: GfpFlags::HIGH };
    let mut m = 0u64;
    while fa.alloc(atomic, 0).is_ok() {
        m += 1;
    }
    assert!(m > 0, "GFP_HIGH may use part of the reserve");
    let all = Gfp { zone: ZoneKind::Dma32, flags: GfpFlags::NO_WATERMARKS };
    while fa.alloc(all, 0).is_ok() {}
    assert_eq!(dma.free_pages() + fa.pcp_count(0, ZoneKind::Dma32) as u64, 0);
    assert!(n + m < dma.managed_pages());
}

#[test]
fn per_cpu_lists_refill_and_drain() {
    let mem = HostMem::new(0, 32 * MIB as usize);
    let fa = simple(&mem, 2);
    let z = fa.zone(ZoneKind::Dma32);
    let (batch, high) = z.pcp_batch_high();
    // zone_batchsize(): 8192 frames >> 10 = 8, / 4 = 2, rounddown_pow_of_two(2 + 1) - 1 = 1.
    assert_eq!(batch, 1);
    assert_eq!(high, 4);
    let buddy0 = z.free_pages();
    let a = fa.alloc_frame().unwrap();
    assert_eq!(z.free_pages(), buddy0 - batch as u64, "refilled one batch");
    // Frees go to the per-CPU list until `high`, then a batch drains to the buddy lists.
    let more: Vec<_> = (0..8).map(|_| fa.alloc_frame().unwrap()).collect();
    fa.free(a, 0).unwrap();
    assert_eq!(fa.pcp_count(0, ZoneKind::Dma32), 1);
    for p in &more {
        fa.free(*p, 0).unwrap();
        assert!(fa.pcp_count(0, ZoneKind::Dma32) < high);
    }
    fa.check().unwrap();
    // LIFO: the most recently freed frame comes back first.
    let last = *more.last().unwrap();
    assert_eq!(fa.alloc_frame().unwrap(), last);
    fa.free(last, 0).unwrap();
    // CPU 1 frees into its own list; draining it returns the frames.
    fa.cpu().cur.store(1, Ordering::Relaxed);
    let b = fa.alloc_frame().unwrap();
    fa.free(b, 0).unwrap();
    assert_eq!(fa.pcp_count(1, ZoneKind::Dma32), 1);
    fa.drain_cpu(1);
    assert_eq!(fa.pcp_count(1, ZoneKind::Dma32), 0);
    // A CPU beyond cpu_count() bypasses the lists rather than failing.
    fa.cpu().cur.store(7, Ordering::Relaxed);
    let c = fa.alloc_frame().unwrap();
    fa.free(c, 0).unwrap();
    fa.cpu().cur.store(0, Ordering::Relaxed);
    leak_check(&fa);
    let s = fa.stats();
    assert!(s.zones[0].allocs >= 11 && s.zones[0].frees >= 11);
}

#[test]
fn larger_zones_get_linux_batch_sizes() {
    let mem = HostMem::new(0, 256 * MIB as usize);
    let fa = simple(&mem, 4);
    // 65536 frames: >> 10 = 64, / 4 = 16, rounddown_pow_of_two(24) - 1 = 15.
    let (batch, high) = fa.zone(ZoneKind::Dma32).pcp_batch_high();
    assert_eq!(batch, 15);
    assert_eq!(high, (fa.zone(ZoneKind::Dma32).watermarks().low / 4).max(60) as u32);
}

#[test]
fn parallel_alloc_free_keeps_invariants() {
    let mem = HostMem::new(0, 64 * MIB as usize);
    let fa = simple(&mem, 4);
    // Each thread is one CPU with its own per-CPU lists; frames freed by one CPU may have
    // been allocated by another, as in a kernel.
    std::thread::scope(|s| {
        for t in 0..4u32 {
            let fa = &fa;
            s.spawn(move || {
                THREAD_CPU.with(|c| c.set(Some(t as usize)));
                let mut held = Vec::new();
                for i in 0..2000u32 {
                    if (i * 7 + t) % 3 != 0 || held.is_empty() {
                        let order = i % 4;
                        if let Ok(p) = fa.alloc(Gfp::KERNEL, order) {
                            held.push((p, order));
                        }
                    } else {
                        let (p, o) = held.swap_remove((i as usize * 13) % held.len());
                        fa.free(p, o).unwrap();
                    }
                }
                for (p, o) in held {
                    fa.free(p, o).unwrap();
                }
            });
        }
    });
    leak_check(&fa);
}

/// Scenario for fault injection: a mix of orders, holding some, freeing others.
fn scenario(fa: &Fa) -> Result<Vec<(Pfn, u32)>, AllocError> {
    let mut held = Vec::new();
    let r = (|| {
        for i in 0..40u32 {
            let order = [0, 0, 1, 3, 0, 5, 0, 2][i as usize % 8];
            let p = fa.alloc(Gfp::KERNEL, order)?;
            held.push((p, order));
            if i % 3 == 2 {
                let (p, o) = held.remove(0);
                fa.free(p, o).unwrap();
            }
        }
        Ok(())
    })();
    match r {
        Ok(()) => Ok(held),
        Err(e) => {
            for (p, o) in held {
                fa.free(p, o).unwrap();
            }
            Err(e)
        }
    }
}

#[test]
fn fault_injection_fails_every_nth_allocation_cleanly() {
    let mem = HostMem::new(0, 8 * MIB as usize);
    let fa = simple(&mem, 1);
    // Count the scenario's allocations.
    let held = scenario(&fa).unwrap();
    let total = fa.stats().zones.iter().map(|z| z.allocs).sum::<u64>();
    for (p, o) in held {
        fa.free(p, o).unwrap();
    }
    leak_check(&fa);
    assert!(total >= 40);
    for n in 1..=40u64 {
        fa.fault_injector().fail_nth(n);
        let r = scenario(&fa);
        assert_eq!(r.err(), Some(AllocError::Injected), "allocation {n} must fail");
        assert!(!fa.fault_injector().armed());
        fa.check().unwrap();
        leak_check(&fa);
    }
    assert_eq!(fa.fault_injector().injected(), 40);
    fa.fault_injector().fail_nth(41);
    let held = scenario(&fa).unwrap();
    fa.fault_injector().disarm();
    for (p, o) in held {
        fa.free(p, o).unwrap();
    }
    leak_check(&fa);
    assert!(fa.stats().failures >= 40);
}

#[derive(Clone, Debug)]
enum Op {
    Alloc { order: u32, zone: u8 },
    Free(usize),
    Cpu(usize),
    Drain,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        5 => (0u32..=MAX_ORDER as u32 + 1, 0u8..3)
            .prop_map(|(order, zone)| Op::Alloc { order, zone }),
        4 => any::<usize>().prop_map(Op::Free),
        1 => (0usize..3).prop_map(Op::Cpu),
        1 => Just(Op::Drain),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// Random alloc/free of mixed orders against a model: no frame handed out twice, no
    /// overlap, block alignment, invariants after every step, and everything merges back to
    /// the boot free lists.
    #[test]
    fn buddy_matches_model(ops in proptest::collection::vec(op(), 1..200)) {
        let mem = HostMem::new(0, 12 * MIB as usize);
        let fa = three_zones(&mem, no_wmark());
        let boot_blocks: Vec<[u64; NR_ORDERS]> =
            fa.stats().zones.iter().map(|z| z.free_blocks).collect();
        // Model: start pfn → order of every allocated block.
        let mut model: BTreeMap<u64, u32> = BTreeMap::new();
        for op in ops {
            match op {
                Op::Alloc { order, zone } => {
                    let gfp = Gfp { zone: ZoneKind::ALL[zone as usize], flags: GfpFlags::empty() };
                    match fa.alloc(gfp, order) {
                        Ok(p) => {
                            prop_assert!(order as usize <= MAX_ORDER);
                            prop_assert_eq!(p.0 % (1 << order), 0);
                            prop_assert!(zone_of(p) <= gfp.zone);
                            let end = p.0 + (1 << order);
                            if let Some((&s, &o)) = model.range(..end).next_back() {
                                prop_assert!(s + (1u64 << o) <= p.0, "overlap with {:#x}", s);
                            }
                            model.insert(p.0, order);
                        }
                        Err(AllocError::BadOrder) => prop_assert!(order as usize > MAX_ORDER),
                        Err(e) => {
                            prop_assert_eq!(e, AllocError::OutOfMemory);
                        }
                    }
                }
                Op::Free(k) => {
                    if !model.is_empty() {
                        let (&p, &o) = model.iter().nth(k % model.len()).unwrap();
                        fa.free(Pfn(p), o).unwrap();
                        model.remove(&p);
                    }
                }
                Op::Cpu(c) => fa.cpu().cur.store(c, Ordering::Relaxed),
                Op::Drain => fa.drain_all(),
            }
            fa.check().map_err(TestCaseError::fail)?;
            let used: u64 = model.values().map(|&o| 1u64 << o).sum();
            prop_assert_eq!(fa.stats().free_total() + used, fa.boot_free());
        }
        for (p, o) in model {
            fa.free(Pfn(p), o).unwrap();
        }
        fa.drain_all();
        fa.check().map_err(TestCaseError::fail)?;
        let now: Vec<[u64; NR_ORDERS]> = fa.stats().zones.iter().map(|z| z.free_blocks).collect();
        prop_assert_eq!(now, boot_blocks);
    }
}

#[test]
fn page_table_frames_come_zeroed_and_go_back() {
    use mmkit::paging::TableMemory;
    let mem = HostMem::new(0, 4 * MIB as usize);
    let fa = simple(&mem, 1);
    let a = fa.alloc_frame().unwrap();
    // SAFETY: the frame is ours.
    unsafe { std::ptr::write_bytes(fa.frame_ptr(a), 0x5A, 4096) };
    fa.free(a, 0).unwrap();
    let t = fa.alloc_table().unwrap();
    assert_eq!(t, a.addr(), "the hot per-CPU frame is reused");
    // SAFETY: the table frame is ours.
    let bytes = unsafe { std::slice::from_raw_parts(fa.phys_to_ptr(t), 4096) };
    assert!(bytes.iter().all(|&b| b == 0), "table frames are zeroed");
    fa.fault_injector().fail_nth(1);
    assert!(fa.alloc_table().is_err());
    // SAFETY: `t` came from alloc_table and is not used again.
    unsafe { fa.free_table(t) };
    leak_check(&fa);
}

/// The page-table engine on top of the frame allocator: every table frame comes from the
/// buddy allocator and goes back on teardown, also when the N-th frame allocation fails.
#[test]
fn page_tables_on_the_frame_allocator_fail_cleanly() {
    use mmkit::addr::VirtAddr;
    use mmkit::paging::{Attrs, PageSize, PageTable, PteFlags, X86_64};
    let mem = HostMem::new(0, 8 * MIB as usize);
    let fa = simple(&mem, 1);
    let attrs = Attrs::new(PteFlags::READ | PteFlags::WRITE | PteFlags::USER);
    // Spread over different upper-level tables, so each map may need new tables.
    let vas: Vec<u64> = (0..24u64).map(|i| (i << 39) / 3 + (i << 30) + (i << 21)).collect();
    let run = |fa: &Fa| -> Result<(), ()> {
        let pt: PageTable<X86_64, &Fa> = PageTable::new(fa).map_err(|_| ())?;
        let mut r = Ok(());
        for (i, &va) in vas.iter().enumerate() {
            let data = match fa.alloc_frame() {
                Ok(p) => p,
                Err(_) => {
                    r = Err(());
                    break;
                }
            };
            let va = VirtAddr(va & !0xfff & ((1 << 47) - 1));
            if pt.map(va, data.addr(), PageSize::Size4K, attrs).is_err() {
                fa.free(data, 0).unwrap();
                r = Err(());
                break;
            }
            assert_eq!(pt.query(va).map(|t| t.pa.0 & !0xfff).ok(), Some(data.addr().0), "{i}");
        }
        pt.teardown(|m| fa.free(Pfn::containing(m.pa), 0).unwrap());
        r
    };
    run(&fa).unwrap();
    leak_check(&fa);
    let total = fa.stats().zones[0].allocs;
    for n in 1..=total {
        fa.fault_injector().fail_nth(n);
        assert!(run(&fa).is_err(), "allocation {n} of {total} must fail");
        leak_check(&fa);
    }
    fa.fault_injector().disarm();
}
