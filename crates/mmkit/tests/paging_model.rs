//! Property tests: random map / unmap / protect / write-protect / clear-A/D / copy /
//! teardown sequences against a `HashMap` model, for every format, with a leak check.

use std::collections::HashMap;

use mmkit::addr::PageRange;
use mmkit::paging::{
    Aarch64, Arch, Attrs, CacheMode, CopyError, Decoded, HeapTableMemory, LoongArch64, MapError,
    Mapping, PageSize, PageTable, PteFlags, Sv39, Sv39NoPbmt, Sv48, Sv57, X86_64La57, X86_64,
};
use mmkit::{PhysAddr, VirtAddr};
use proptest::prelude::*;

const K4: u64 = 4096;
const M2: u64 = 2 << 20;
/// The window the operations work in: 8 MiB (four 2 MiB slots).
const WINDOW: u64 = 8 << 20;

/// Per-4-KiB-page model: page va → (page pa, attrs).
type Model = HashMap<u64, (u64, Attrs)>;

#[derive(Clone, Debug)]
enum Op {
    Map { off: u64, huge: bool, pfn: u64, flags: u16, cache: u8 },
    Unmap { off: u64, len: u64 },
    UnmapPage { off: u64 },
    Protect { off: u64, len: u64, perms: u16 },
    WriteProtect { off: u64, len: u64 },
    ClearAd { off2m: u64, n2m: u64, which: u16 },
    Copy { off2m: u64, n2m: u64, cow: bool },
    ChildUnmap { off: u64, len: u64 },
}

fn op() -> impl Strategy<Value = Op> {
    let off = 0..WINDOW / K4;
    prop_oneof![
        4 => (off.clone(), prop::bool::weighted(0.3), any::<u64>(), any::<u16>(), any::<u8>())
            .prop_map(|(o, huge, pfn, flags, cache)| Op::Map { off: o * K4, huge, pfn, flags, cache }),
        2 => (off.clone(), 1..1024u64).prop_map(|(o, l)| Op::Unmap { off: o * K4, len: l * K4 }),
        1 => off.clone().prop_map(|o| Op::UnmapPage { off: o * K4 }),
        2 => (off.clone(), 1..1024u64, any::<u16>())
            .prop_map(|(o, l, p)| Op::Protect { off: o * K4, len: l * K4, perms: p }),
        1 => (off.clone(), 1..1024u64).prop_map(|(o, l)| Op::WriteProtect { off: o * K4, len: l * K4 }),
        1 => (0..4u64, 1..4u64, any::<u16>()).prop_map(|(o, n, w)| Op::ClearAd { off2m: o, n2m: n, which: w }),
        1 => (0..4u64, 1..4u64, any::<bool>()).prop_map(|(o, n, cow)| Op::Copy { off2m: o, n2m: n, cow }),
        1 => (off, 1..1024u64).prop_map(|(o, l)| Op::ChildUnmap { off: o * K4, len: l * K4 }),
    ]
}

fn cache_of(c: u8) -> CacheMode {
    [CacheMode::WriteBack, CacheMode::WriteThrough, CacheMode::WriteCombining, CacheMode::Uncached]
        [c as usize % 4]
}

/// The window's base: low in the lower half, at the top of the lower half (so ranges end at
/// the non-canonical boundary), or in the upper half for sign-extended formats.
fn window_base<A: Arch>(sel: u8) -> u64 {
    let bits = 12 + 9 * A::LEVELS as u32;
    let lower_top = if A::SIGN_EXTENDED { 1u64 << (bits - 1) } else { 1u64 << bits };
    match sel % 3 {
        0 => 1 << 30,
        1 => lower_top - WINDOW,
        _ if A::SIGN_EXTENDED => 0u64.wrapping_sub(4 * WINDOW),
        _ => 0x10_0000_0000,
    }
}

fn range(base: u64, off: u64, len: u64) -> PageRange {
    let end = (off + len).min(WINDOW);
    PageRange::new(base + off, base + end).unwrap()
}

/// Expands the table into the per-page view and checks structural invariants.
fn snapshot<A: Arch>(pt: &PageTable<A, &HeapTableMemory>, base: u64) -> Model {
    let mut m = Model::new();
    let r = PageRange::new(base, base + WINDOW).unwrap();
    pt.walk(r, |l: Mapping| {
        assert_eq!(l.va % l.size.bytes(), 0, "leaf va aligned");
        assert_eq!(l.pa.0 % l.size.bytes(), 0, "leaf pa aligned");
        assert!(l.size.level() <= A::MAX_LEAF_LEVEL);
        assert_eq!(A::normalize(l.attrs), l.attrs, "stored attrs are normal");
        for i in 0..l.size.bytes() / K4 {
            assert!(m.insert(l.va + i * K4, (l.pa.0 + i * K4, l.attrs)).is_none());
        }
    })
    .unwrap();
    pt.for_each_entry(|level, _va, raw| {
        assert_ne!(A::decode(raw, level), Decoded::Unknown, "level {level} raw {raw:#x}");
    });
    m
}

fn has_table_in<A: Arch>(pt: &PageTable<A, &HeapTableMemory>, lo: u64, hi: u64) -> bool {
    let mut found = false;
    pt.for_each_entry(|level, va, raw| {
        if level == 1 && va >= lo && va < hi && matches!(A::decode(raw, level), Decoded::Table(_)) {
            found = true;
        }
    });
    found
}

fn expand(v: &mut Vec<(u64, u64, Attrs)>, l: Mapping) {
    for i in 0..l.size.bytes() / K4 {
        v.push((l.va + i * K4, l.pa.0 + i * K4, l.attrs));
    }
}

fn run<A: Arch>(ops: &[Op], sel: u8) -> Result<(), TestCaseError> {
    let mem = HeapTableMemory::new();
    let base = window_base::<A>(sel);
    let mut pt = PageTable::<A, _>::new(&mem).unwrap();
    let mut child = PageTable::<A, _>::new(&mem).unwrap();
    let mut model = Model::new();
    let mut cmodel = Model::new();
    let perms_of = |p: u16| PteFlags::from_bits_truncate(p) & PteFlags::PERMS;

    for op in ops {
        match *op {
            Op::Map { off, huge, pfn, flags, cache } => {
                let size = if huge { PageSize::Size2M } else { PageSize::Size4K };
                let sz = size.bytes();
                let va = base + off / sz * sz;
                let pa = (pfn % (1 << 30)) * K4 / sz * sz;
                let attrs = Attrs { flags: PteFlags::from_bits_truncate(flags), cache: cache_of(cache) };
                let occupied = (0..sz / K4).any(|i| model.contains_key(&(va + i * K4)));
                let r = pt.map(VirtAddr(va), PhysAddr(pa), size, attrs);
                if occupied {
                    prop_assert_eq!(r, Err(MapError::AlreadyMapped));
                } else if r == Err(MapError::AlreadyMapped) {
                    // Only an (empty) page table left where the 2 MiB leaf would go.
                    prop_assert!(huge && has_table_in(&pt, va, va + 1));
                } else {
                    prop_assert_eq!(r, Ok(()));
                    let n = A::normalize(attrs);
                    for i in 0..sz / K4 {
                        model.insert(va + i * K4, (pa + i * K4, n));
                    }
                }
            }
            Op::Unmap { off, .. } | Op::UnmapPage { off } => {
                let len = if let Op::Unmap { len, .. } = *op { len } else { K4 };
                let r = range(base, off, len);
                let mut got = Vec::new();
                if let Op::UnmapPage { .. } = op {
                    match pt.unmap_page(VirtAddr(r.start())) {
                        Ok((m, f)) => {
                            prop_assert!(f.is_needed());
                            f.ignore();
                            expand(&mut got, m);
                        }
                        Err(e) => {
                            prop_assert_eq!(e, mmkit::paging::UnmapError::NotMapped);
                        }
                    }
                } else {
                    let f = pt.unmap(r, |m| expand(&mut got, m)).unwrap();
                    // Freeing an emptied table also needs a flush (paging-structure caches).
                    prop_assert!(got.is_empty() || f.is_needed());
                    f.ignore();
                }
                let mut want: Vec<_> = (r.start()..r.end())
                    .step_by(K4 as usize)
                    .filter_map(|va| model.remove(&va).map(|(pa, a)| (va, pa, a)))
                    .collect();
                got.sort_by_key(|e| e.0);
                want.sort_by_key(|e| e.0);
                prop_assert_eq!(got, want);
            }
            Op::Protect { off, len, perms } => {
                let r = range(base, off, len);
                let p = A::normalize(Attrs::new(perms_of(perms))).flags & PteFlags::PERMS;
                pt.protect(r, perms_of(perms)).unwrap().ignore();
                for va in (r.start()..r.end()).step_by(K4 as usize) {
                    if let Some((_, a)) = model.get_mut(&va) {
                        a.flags = (a.flags - PteFlags::PERMS) | p;
                        if a.flags.contains(PteFlags::COW) {
                            a.flags.remove(PteFlags::WRITE);
                        }
                        *a = A::normalize(*a);
                    }
                }
            }
            Op::WriteProtect { off, len } => {
                let r = range(base, off, len);
                pt.write_protect(r).unwrap().ignore();
                for va in (r.start()..r.end()).step_by(K4 as usize) {
                    if let Some((_, a)) = model.get_mut(&va) {
                        if a.flags.contains(PteFlags::WRITE) {
                            a.flags.remove(PteFlags::WRITE);
                            a.flags.insert(PteFlags::COW);
                        }
                        *a = A::normalize(*a);
                    }
                }
            }
            Op::ClearAd { off2m, n2m, which } => {
                let which = PteFlags::from_bits_truncate(which) & (PteFlags::ACCESSED | PteFlags::DIRTY);
                let r = range(base, off2m * M2, n2m * M2);
                let mut seen = 0;
                pt.test_and_clear(r, which, |m| {
                    assert!(m.attrs.flags.intersects(which));
                    seen += 1;
                })
                .unwrap()
                .ignore();
                let _ = seen;
                for va in (r.start()..r.end()).step_by(K4 as usize) {
                    if let Some((_, a)) = model.get_mut(&va) {
                        a.flags.remove(which);
                        *a = A::normalize(*a);
                    }
                }
            }
            Op::Copy { off2m, n2m, cow } => {
                let r = range(base, off2m * M2, n2m * M2);
                // A conflict: the child already maps a page the parent would copy there.
                let child_busy = (r.start()..r.end())
                    .step_by(K4 as usize)
                    .any(|va| cmodel.contains_key(&va) && model.contains_key(&va));
                let mut copied = Vec::new();
                let res = pt.copy_range(&mut child, r, cow, |m| expand(&mut copied, m));
                match res {
                    Ok(f) => {
                        f.ignore();
                        prop_assert!(!child_busy);
                        for va in (r.start()..r.end()).step_by(K4 as usize) {
                            if let Some((pa, a)) = model.get_mut(&va) {
                                if cow && a.flags.contains(PteFlags::WRITE) {
                                    a.flags.remove(PteFlags::WRITE);
                                    a.flags.insert(PteFlags::COW);
                                }
                                *a = A::normalize(*a);
                                let mut c = *a;
                                c.flags.remove(PteFlags::ACCESSED);
                                if !cow {
                                    c.flags.remove(PteFlags::DIRTY);
                                }
                                cmodel.insert(va, (*pa, A::normalize(c)));
                            }
                        }
                        let mut want: Vec<_> = (r.start()..r.end())
                            .step_by(K4 as usize)
                            .filter(|va| model.contains_key(va))
                            .filter_map(|va| cmodel.get(&va).map(|&(pa, a)| (va, pa, a)))
                            .collect();
                        want.sort_by_key(|e| e.0);
                        copied.sort_by_key(|e| e.0);
                        prop_assert_eq!(copied, want);
                    }
                    Err(CopyError::AlreadyMapped) => {
                        prop_assert!(child_busy || has_table_in(&child, r.start(), r.end()));
                    }
                    Err(e) => prop_assert!(false, "copy failed: {:?}", e),
                }
            }
            Op::ChildUnmap { off, len } => {
                let r = range(base, off, len);
                child.unmap(r, |_| {}).unwrap().ignore();
                for va in (r.start()..r.end()).step_by(K4 as usize) {
                    cmodel.remove(&va);
                }
            }
        }
        prop_assert_eq!(&snapshot(&pt, base), &model, "parent after {:?}", op);
        prop_assert_eq!(&snapshot(&child, base), &cmodel, "child after {:?}", op);
    }

    // Teardown reports exactly the model's leaves and returns every table frame.
    for (pt, model) in [(pt, model), (child, cmodel)] {
        let mut got = Vec::new();
        pt.teardown(|m| expand(&mut got, m));
        let mut want: Vec<_> = model.iter().map(|(&va, &(pa, a))| (va, pa, a)).collect();
        got.sort_by_key(|e| e.0);
        want.sort_by_key(|e| e.0);
        prop_assert_eq!(got, want);
    }
    prop_assert_eq!(mem.live(), 0, "table frames leaked");
    Ok(())
}

macro_rules! model_test {
    ($name:ident, $arch:ty) => {
        proptest! {
            #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]
            #[test]
            fn $name(ops in prop::collection::vec(op(), 1..40), sel in any::<u8>()) {
                run::<$arch>(&ops, sel)?;
            }
        }
    };
}

model_test!(model_x86_64, X86_64);
model_test!(model_x86_64_la57, X86_64La57);
model_test!(model_sv39, Sv39);
model_test!(model_sv39_nopbmt, Sv39NoPbmt);
model_test!(model_sv48, Sv48);
model_test!(model_sv57, Sv57);
model_test!(model_aarch64, Aarch64);
model_test!(model_loongarch64, LoongArch64);
