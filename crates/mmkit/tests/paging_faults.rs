//! Fault injection: every operation that allocates table frames is run with the N-th
//! allocation failing, for every N until it succeeds. A failed operation must report
//! `OutOfMemory`, leave every table bit-for-bit unchanged and return every frame; nothing may
//! panic or leak. Also: deterministic huge-leaf (1 GiB / 2 MiB) splitting checks.

use mmkit::addr::PageRange;
use mmkit::paging::{
    Aarch64, Arch, Attrs, CopyError, Decoded, HeapTableMemory, LoongArch64, MapError, Mapping,
    PageSize, PageTable, ProtectError, PteFlags, Sv39, Sv48, Sv57, UnmapError, X86_64La57, X86_64,
};
use mmkit::{PhysAddr, VirtAddr};

type Pt<'m, A> = PageTable<A, &'m HeapTableMemory>;

const RW: PteFlags = PteFlags::READ.union(PteFlags::WRITE).union(PteFlags::USER);
const G1: u64 = 1 << 30;
const M2: u64 = 2 << 20;
const K4: u64 = 4096;

fn raw_dump<A: Arch>(pt: &Pt<'_, A>) -> Vec<(usize, u64, u64)> {
    let mut v = Vec::new();
    pt.for_each_entry(|l, va, raw| v.push((l, va, raw)));
    v
}

fn leaves<A: Arch>(pt: &Pt<'_, A>) -> Vec<Mapping> {
    let mut v = Vec::new();
    let top = 1u64 << (11 + 9 * A::LEVELS as u32);
    pt.walk(PageRange::new(0, top).unwrap(), |m| v.push(m)).unwrap();
    v
}

fn check_invariants<A: Arch>(pt: &Pt<'_, A>, mem: &HeapTableMemory) {
    let mut tables = 1;
    pt.for_each_entry(|l, _, raw| match A::decode(raw, l) {
        Decoded::Table(_) => tables += 1,
        Decoded::Leaf(pa, _) => assert_eq!(pa % (1u64 << (12 + 9 * l as u32)), 0),
        d => panic!("unexpected entry {d:?} at level {l}"),
    });
    assert_eq!(tables, pt.table_count());
    // This test gives every table its own memory: all live frames belong to it.
    assert_eq!(tables, mem.live(), "frames allocated but not linked (leak)");
}

/// The largest leaf size the format has.
fn big<A: Arch>() -> PageSize {
    PageSize::from_level(A::MAX_LEAF_LEVEL).unwrap()
}

/// Runs `op` on a fresh `setup()` table with the N-th allocation failing (and, separately,
/// every allocation from the N-th on), for N = 1, 2, ... until it succeeds; then compares
/// the successful result with a run where nothing fails.
fn inject<A: Arch, E: core::fmt::Debug + PartialEq>(
    name: &str,
    oom: E,
    setup: impl Fn(&Pt<'_, A>),
    op: impl Fn(&mut Pt<'_, A>) -> Result<(), E>,
) {
    // Reference run.
    let ref_mem = HeapTableMemory::new();
    let mut reference = Pt::<A>::new(&ref_mem).unwrap();
    setup(&reference);
    op(&mut reference)
        .unwrap_or_else(|e| panic!("{}/{name}: reference run failed: {e:?}", A::NAME));
    let want = leaves(&reference);
    check_invariants(&reference, &ref_mem);

    for mode in 0..2 {
        let mut n = 1;
        loop {
            let mem = HeapTableMemory::new();
            let mut pt = Pt::<A>::new(&mem).unwrap();
            setup(&pt);
            let before = raw_dump(&pt);
            let live = mem.live();
            if mode == 0 {
                mem.fail_nth(n);
            } else {
                mem.fail_from(n);
            }
            match op(&mut pt) {
                Err(e) => {
                    assert_eq!(e, oom, "{}/{name}: N={n}: wrong error", A::NAME);
                    assert_eq!(raw_dump(&pt), before, "{}/{name}: N={n}: table changed", A::NAME);
                    assert_eq!(mem.live(), live, "{}/{name}: N={n}: frames leaked", A::NAME);
                    check_invariants(&pt, &mem);
                }
                Ok(()) => {
                    assert_eq!(leaves(&pt), want, "{}/{name}: N={n}: wrong result", A::NAME);
                    check_invariants(&pt, &mem);
                    // Every scenario allocates, so at least one injected failure happened.
                    assert!(n > 1, "{}/{name}: succeeded without allocating", A::NAME);
                    drop(pt);
                    assert_eq!(mem.live(), 0, "{}/{name}: teardown leaked", A::NAME);
                    break;
                }
            }
            drop(pt);
            assert_eq!(mem.live(), 0, "{}/{name}: drop leaked", A::NAME);
            n += 1;
            assert!(n < 64, "{}/{name}: never succeeded", A::NAME);
        }
    }
}

fn map<A: Arch>(pt: &Pt<'_, A>, va: u64, pa: u64, size: PageSize) -> Result<(), MapError> {
    pt.map(VirtAddr(va), PhysAddr(pa), size, Attrs::new(RW | PteFlags::ACCESSED))
}

fn scenarios<A: Arch>() {
    let bs = big::<A>().bytes();
    let base = 4 * G1; // 4 GiB: aligned to every leaf size.
                       // 1. A 4 KiB map into an empty table needs LEVELS - 1 tables.
    inject::<A, _>(
        "map-empty",
        MapError::OutOfMemory,
        |_| {},
        |pt| map(pt, base + 0x5000, 0x7000, PageSize::Size4K),
    );
    // 2. A 4 KiB map next to existing tables needs only the missing lower ones.
    inject::<A, _>(
        "map-partial-path",
        MapError::OutOfMemory,
        |pt| map(pt, base, 0x1000, PageSize::Size4K).unwrap(),
        |pt| map(pt, base + 5 * G1 / 2, 0x2000, PageSize::Size4K),
    );
    // 3. Unmapping the middle of the biggest leaf splits both ends (1 GiB → 2 MiB → 4 KiB).
    let setup_big = move |pt: &Pt<'_, A>| {
        map(pt, base, 0x4000_0000, big::<A>()).unwrap();
        map(pt, base + bs, 0x8000_0000, big::<A>()).unwrap();
    };
    inject::<A, _>("unmap-split", UnmapError::OutOfMemory, setup_big, |pt| {
        let r = PageRange::new(base + M2 + K4, base + bs + 3 * M2 - K4).unwrap();
        pt.unmap(r, |_| {}).map(Flush::ignore)
    });
    // 4. Protecting part of a huge leaf splits it.
    inject::<A, _>("protect-split", ProtectError::OutOfMemory, setup_big, |pt| {
        let r = PageRange::new(base + 3 * K4, base + 2 * M2 + 5 * K4).unwrap();
        pt.protect(r, PteFlags::READ).map(Flush::ignore)
    });
    inject::<A, _>("write-protect-split", ProtectError::OutOfMemory, setup_big, |pt| {
        let r = PageRange::new(base + bs - K4, base + bs + K4).unwrap();
        pt.write_protect(r).map(Flush::ignore)
    });
    // 5. unmap_page inside a huge leaf.
    inject::<A, _>("unmap-page-split", UnmapError::OutOfMemory, setup_big, |pt| {
        pt.unmap_page(VirtAddr(base + bs + 7 * K4)).map(|(m, f)| {
            f.ignore();
            assert_eq!(m.pa.0, 0x8000_0000 + 7 * K4);
            assert_eq!(m.size, PageSize::Size4K);
        })
    });
    // 6. Fork: copying a populated range into an empty child allocates the child's tables
    // (the "table" under test is the child; the parent must be unchanged too).
    let parent_mem = HeapTableMemory::new();
    let mut parent = Pt::<A>::new(&parent_mem).unwrap();
    for i in 0..8 {
        map(&parent, base + i * 3 * M2 + i * K4, 0x10_0000 + i * K4, PageSize::Size4K).unwrap();
    }
    map(&parent, base + 64 * M2, 0x4000_0000, PageSize::Size2M).unwrap();
    let parent_before = raw_dump(&parent);
    let r = PageRange::new(base, base + 128 * M2).unwrap();
    let mut n = 1;
    loop {
        let mem = HeapTableMemory::new();
        let mut child = Pt::<A>::new(&mem).unwrap();
        mem.fail_nth(n);
        match parent.copy_range(&mut child, r, true, |_| {}) {
            Err(e) => {
                assert_eq!(e, CopyError::OutOfMemory);
                assert_eq!(raw_dump(&parent), parent_before, "{}: parent changed", A::NAME);
                assert!(raw_dump(&child).is_empty(), "{}: child changed", A::NAME);
                assert_eq!(mem.live(), 1);
            }
            Ok(f) => {
                f.ignore();
                assert_eq!(leaves(&child).len(), 9);
                assert!(leaves(&parent).iter().all(|m| !m.attrs.flags.contains(PteFlags::WRITE)));
                assert!(leaves(&parent).iter().all(|m| m.attrs.flags.contains(PteFlags::COW)));
                check_invariants(&child, &mem);
                break;
            }
        }
        drop(child);
        assert_eq!(mem.live(), 0);
        n += 1;
        assert!(n < 64);
    }
    drop(parent);
    assert_eq!(parent_mem.live(), 0);
}

use mmkit::paging::Flush;

#[test]
fn fault_injection_all_formats() {
    scenarios::<X86_64>();
    scenarios::<X86_64La57>();
    scenarios::<Sv39>();
    scenarios::<Sv48>();
    scenarios::<Sv57>();
    scenarios::<Aarch64>();
    scenarios::<LoongArch64>();
}

/// Splitting a 1 GiB leaf keeps every other page's translation and attributes, and the
/// unmapped pieces come back as 4 KiB frames of the huge frame.
fn split_1g<A: Arch>() {
    let mem = HeapTableMemory::new();
    let mut pt = Pt::<A>::new(&mem).unwrap();
    let base = 2 * G1;
    let attrs = Attrs::new(RW | PteFlags::ACCESSED | PteFlags::DIRTY);
    pt.map(VirtAddr(base), PhysAddr(0x4000_0000), PageSize::Size1G, attrs).unwrap();
    let mut got = Vec::new();
    let r = PageRange::new(base + M2 - K4, base + M2 + K4).unwrap();
    let f = pt.unmap(r, |m| got.push((m.va, m.pa.0, m.size))).unwrap();
    assert!(f.is_needed());
    f.ignore();
    assert_eq!(
        got,
        vec![
            (base + M2 - K4, 0x4000_0000 + M2 - K4, PageSize::Size4K),
            (base + M2, 0x4000_0000 + M2, PageSize::Size4K)
        ]
    );
    // 1 root + the original path tables + one 2 MiB-level table + two 4 KiB tables.
    let ls = leaves(&pt);
    assert_eq!(ls.iter().filter(|m| m.size == PageSize::Size4K).count(), 2 * 511);
    assert_eq!(ls.iter().filter(|m| m.size == PageSize::Size2M).count(), 510);
    for m in &ls {
        assert_eq!(m.pa.0 - 0x4000_0000, m.va - base);
        assert_eq!(m.attrs, A::normalize(attrs));
    }
    for va in [base, base + M2 - 2 * K4, base + M2 + K4, base + G1 - K4] {
        let t = pt.query(VirtAddr(va + 0x123)).unwrap();
        assert_eq!(t.pa.0, 0x4000_0000 + va - base + 0x123);
    }
    assert!(pt.query(VirtAddr(base + M2)).is_err());
    // Unmapping everything frees the tables the split created.
    pt.unmap(PageRange::new(base, base + G1).unwrap(), |_| {}).unwrap().ignore();
    assert!(leaves(&pt).is_empty());
    pt.teardown(|_| panic!("nothing left"));
    assert_eq!(mem.live(), 0);
}

#[test]
fn split_1g_leaves() {
    split_1g::<X86_64>();
    split_1g::<X86_64La57>();
    split_1g::<Sv39>();
    split_1g::<Sv57>();
    split_1g::<Aarch64>();
}

#[test]
fn loongarch_has_no_1g_leaves() {
    let mem = HeapTableMemory::new();
    let pt = Pt::<LoongArch64>::new(&mem).unwrap();
    let r = pt.map(VirtAddr(G1), PhysAddr(G1), PageSize::Size1G, Attrs::new(RW));
    assert_eq!(r, Err(MapError::SizeNotSupported));
}

/// Bad input is reported, never a panic.
fn bad_input<A: Arch>() {
    let mem = HeapTableMemory::new();
    let mut pt = Pt::<A>::new(&mem).unwrap();
    let a = Attrs::new(RW);
    assert_eq!(
        pt.map(VirtAddr(0x1001), PhysAddr(0), PageSize::Size4K, a),
        Err(MapError::Misaligned)
    );
    assert_eq!(pt.map(VirtAddr(M2), PhysAddr(K4), PageSize::Size2M, a), Err(MapError::Misaligned));
    let non_canonical = 1u64 << (12 + 9 * A::LEVELS as u32);
    assert_eq!(
        pt.map(VirtAddr(non_canonical), PhysAddr(0), PageSize::Size4K, a),
        Err(MapError::OutOfRange)
    );
    assert_eq!(
        pt.map(VirtAddr(0), PhysAddr(1 << A::PA_BITS), PageSize::Size4K, a),
        Err(MapError::BadPhysAddr)
    );
    assert_eq!(
        pt.map(VirtAddr(0), PhysAddr(!0xfff), PageSize::Size4K, a),
        Err(MapError::BadPhysAddr)
    );
    pt.map(VirtAddr(0), PhysAddr(0), PageSize::Size4K, a).unwrap();
    assert_eq!(pt.map(VirtAddr(0), PhysAddr(0), PageSize::Size4K, a), Err(MapError::AlreadyMapped));
    if A::MAX_LEAF_LEVEL >= 1 {
        // A 2 MiB leaf over an existing page table.
        assert_eq!(
            pt.map(VirtAddr(0), PhysAddr(0), PageSize::Size2M, a),
            Err(MapError::AlreadyMapped)
        );
    }
    let bad = PageRange::new(non_canonical - K4, non_canonical + K4).unwrap();
    assert_eq!(pt.unmap(bad, |_| {}), Err(UnmapError::OutOfRange));
    assert_eq!(pt.protect(bad, PteFlags::READ), Err(ProtectError::OutOfRange));
    assert!(pt.walk(bad, |_| {}).is_err());
    assert_eq!(pt.unmap_page(VirtAddr(3)), Err(UnmapError::Misaligned));
    assert_eq!(pt.unmap_page(VirtAddr(K4)), Err(UnmapError::NotMapped));
    assert!(pt.query(VirtAddr(non_canonical)).is_err());
    if A::SIGN_EXTENDED {
        // A range crossing from the lower to the upper half.
        let top = 1u64 << (11 + 9 * A::LEVELS as u32);
        let cross = PageRange::new(top - K4, 0u64.wrapping_sub(K4)).unwrap();
        assert_eq!(pt.unmap(cross, |_| {}), Err(UnmapError::OutOfRange));
        // The upper half works and reports canonical addresses.
        let hi = 0u64.wrapping_sub(G1);
        pt.map(VirtAddr(hi), PhysAddr(0x3000), PageSize::Size4K, a).unwrap();
        assert_eq!(pt.query(VirtAddr(hi + 5)).unwrap().pa.0, 0x3005);
        let mut seen = Vec::new();
        pt.walk(PageRange::new(hi - G1, hi + (G1 - K4)).unwrap(), |m| seen.push(m.va)).unwrap();
        assert_eq!(seen, vec![hi]);
    }
    let mut n = 0;
    pt.teardown(|_| n += 1);
    assert_eq!(n, 1 + usize::from(A::SIGN_EXTENDED));
    assert_eq!(mem.live(), 0);
}

#[test]
fn bad_input_all_formats() {
    bad_input::<X86_64>();
    bad_input::<X86_64La57>();
    bad_input::<Sv39>();
    bad_input::<Sv48>();
    bad_input::<Sv57>();
    bad_input::<Aarch64>();
    bad_input::<LoongArch64>();
}

/// Accessed/dirty tracking: clearing reports the old state; a PROT_NONE round trip keeps the
/// frame and the A/D/COW state.
#[test]
fn accessed_dirty_and_protnone() {
    fn check<A: Arch>() {
        let mem = HeapTableMemory::new();
        let mut pt = Pt::<A>::new(&mem).unwrap();
        let a = Attrs::new(RW | PteFlags::ACCESSED | PteFlags::DIRTY);
        pt.map(VirtAddr(0x10000), PhysAddr(0x9000), PageSize::Size4K, a).unwrap();
        let r = PageRange::new(0x10000, 0x11000).unwrap();
        pt.protect(r, PteFlags::empty()).unwrap().ignore();
        let t = pt.query(VirtAddr(0x10000)).unwrap();
        assert!(t.leaf.attrs.flags.is_protnone(), "{}", A::NAME);
        assert_eq!(t.pa.0, 0x9000);
        pt.protect(r, PteFlags::READ | PteFlags::WRITE).unwrap().ignore();
        assert_eq!(pt.query(VirtAddr(0x10000)).unwrap().leaf.attrs, A::normalize(a));
        let mut old = Vec::new();
        let f = pt.test_and_clear(r, PteFlags::ACCESSED, |m| old.push(m.attrs.flags)).unwrap();
        assert!(f.is_needed());
        f.ignore();
        assert_eq!(old.len(), 1);
        let now = pt.query(VirtAddr(0x10000)).unwrap().leaf.attrs.flags;
        assert!(!now.contains(PteFlags::ACCESSED) && now.contains(PteFlags::DIRTY), "{}", A::NAME);
        // Nothing to clear the second time: no flush owed.
        let f = pt.test_and_clear(r, PteFlags::ACCESSED, |_| panic!()).unwrap();
        assert!(!f.is_needed());
        f.ignore();
        // The fault handler marks it young again.
        pt.update_leaf(VirtAddr(0x10000), |m| {
            let mut a = m.attrs;
            a.flags |= PteFlags::ACCESSED;
            Some(a)
        })
        .unwrap()
        .ignore();
        assert!(pt.query(VirtAddr(0x10000)).unwrap().leaf.attrs.flags.contains(PteFlags::ACCESSED));
        // COW pages stay read-only through mprotect(PROT_READ|PROT_WRITE).
        pt.write_protect(r).unwrap().ignore();
        pt.protect(r, PteFlags::READ | PteFlags::WRITE).unwrap().ignore();
        let f = pt.query(VirtAddr(0x10000)).unwrap().leaf.attrs.flags;
        assert!(f.contains(PteFlags::COW) && !f.contains(PteFlags::WRITE), "{}", A::NAME);
    }
    check::<X86_64>();
    check::<Sv39>();
    check::<Aarch64>();
    check::<LoongArch64>();
}

/// Concurrent faults under a shared borrow: many threads map disjoint and overlapping pages
/// at once; every page ends up mapped exactly once and no table frame is lost.
#[test]
fn concurrent_map_under_shared_borrow() {
    let mem = HeapTableMemory::new();
    let pt = Pt::<X86_64>::new(&mem).unwrap();
    let wins = std::sync::atomic::AtomicUsize::new(0);
    std::thread::scope(|s| {
        for t in 0..4u64 {
            let (pt, wins) = (&pt, &wins);
            s.spawn(move || {
                for i in 0..2048u64 {
                    // Every thread tries every page; spread across many tables.
                    let va = G1 + ((i * 7 + t) % 2048) * 256 * K4;
                    if pt.map(VirtAddr(va), PhysAddr(va), PageSize::Size4K, Attrs::new(RW)).is_ok()
                    {
                        wins.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    }
                }
            });
        }
    });
    assert_eq!(wins.into_inner(), 2048);
    assert_eq!(leaves(&pt).len(), 2048);
    assert_eq!(pt.table_count(), mem.live());
    drop(pt);
    assert_eq!(mem.live(), 0);
}

/// Breaking COW after fork: the child's leaf is replaced by a private copy only if it is
/// still the expected one (`pte_same()`), and a stale expectation is refused.
#[test]
fn cow_break_with_replace_leaf() {
    fn check<A: Arch>() {
        let (pm, cm) = (HeapTableMemory::new(), HeapTableMemory::new());
        let mut parent = Pt::<A>::new(&pm).unwrap();
        let mut child = Pt::<A>::new(&cm).unwrap();
        let a = Attrs::new(RW | PteFlags::ACCESSED | PteFlags::DIRTY);
        parent.map(VirtAddr(G1), PhysAddr(0x7000), PageSize::Size4K, a).unwrap();
        let r = PageRange::new(G1, G1 + K4).unwrap();
        let mut copied = Vec::new();
        parent.copy_range(&mut child, r, true, |m| copied.push(m)).unwrap().ignore();
        let leaf = child.query(VirtAddr(G1)).unwrap().leaf;
        assert_eq!(copied, vec![leaf]);
        assert!(leaf.attrs.flags.contains(PteFlags::COW));
        assert!(!leaf.attrs.flags.contains(PteFlags::WRITE | PteFlags::ACCESSED));
        let mut new = leaf.attrs;
        new.flags = (new.flags - PteFlags::COW) | PteFlags::WRITE | PteFlags::DIRTY;
        let f = child.replace_leaf(leaf, PhysAddr(0x9000), new).unwrap();
        assert!(f.is_needed());
        f.ignore();
        let now = child.query(VirtAddr(G1)).unwrap().leaf;
        assert_eq!((now.pa.0, now.attrs), (0x9000, A::normalize(new)));
        // The old expectation is stale now.
        assert_eq!(
            child.replace_leaf(leaf, PhysAddr(0xa000), new),
            Err(mmkit::paging::ReplaceError::Changed)
        );
        assert_eq!(
            child.replace_leaf(now, PhysAddr(0xa001), new),
            Err(mmkit::paging::ReplaceError::BadPhysAddr)
        );
        // The parent still maps the original frame, read-only + COW.
        let p = parent.query(VirtAddr(G1)).unwrap().leaf;
        assert_eq!(p.pa.0, 0x7000);
        assert!(p.attrs.flags.contains(PteFlags::COW) && !p.attrs.flags.contains(PteFlags::WRITE));
        drop((parent, child));
        assert_eq!(pm.live() + cm.live(), 0);
    }
    check::<X86_64>();
    check::<X86_64La57>();
    check::<Sv39>();
    check::<Aarch64>();
    check::<LoongArch64>();
}

/// `unmap_page` leaves emptied tables in place; `free_empty_tables` returns them, and only
/// those wholly inside the range.
#[test]
fn free_empty_tables_after_unmap_page() {
    fn check<A: Arch>() {
        let mem = HeapTableMemory::new();
        let mut pt = Pt::<A>::new(&mem).unwrap();
        let a = Attrs::new(RW);
        for i in 0..4 {
            pt.map(VirtAddr(G1 + i * M2), PhysAddr(i * K4), PageSize::Size4K, a).unwrap();
        }
        let tables = pt.table_count();
        assert_eq!(tables, A::LEVELS + 3);
        for i in 0..3 {
            pt.unmap_page(VirtAddr(G1 + i * M2)).unwrap().1.ignore();
        }
        assert_eq!(pt.table_count(), tables, "unmap_page frees no table");
        // A range that only partly covers the first 2 MiB table frees nothing there.
        let r = PageRange::new(G1 + K4, G1 + 2 * M2).unwrap();
        let f = pt.free_empty_tables(r).unwrap();
        assert!(f.is_needed());
        f.ignore();
        assert_eq!(pt.table_count(), tables - 1);
        let r = PageRange::new(G1, G1 + 4 * M2).unwrap();
        pt.free_empty_tables(r).unwrap().ignore();
        assert_eq!(pt.table_count(), tables - 3, "the still-used table stays");
        assert_eq!(pt.query(VirtAddr(G1 + 3 * M2)).unwrap().pa.0, 3 * K4);
        assert_eq!(mem.live(), pt.table_count());
    }
    check::<X86_64>();
    check::<Sv39>();
    check::<Aarch64>();
    check::<LoongArch64>();
}
