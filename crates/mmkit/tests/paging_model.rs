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
/// The window the operations work in: 2048 units (four leaves of the larger size). With
/// 4 KiB units that is 8 MiB mixing 4 KiB and 2 MiB leaves; with 2 MiB units, 4 GiB mixing
/// 2 MiB and 1 GiB leaves (all operations then 2 MiB-aligned, so the per-unit model stays
/// exact). Operation offsets and lengths are counted in units.
const SLOTS: u64 = 2048;

/// Per-unit model: unit va → (unit pa, attrs).
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
    let off = 0..SLOTS;
    prop_oneof![
        4 => (off.clone(), prop::bool::weighted(0.3), any::<u64>(), any::<u16>(), any::<u8>())
            .prop_map(|(o, huge, pfn, flags, cache)| Op::Map { off: o, huge, pfn, flags, cache }),
        2 => (off.clone(), 1..1024u64).prop_map(|(o, l)| Op::Unmap { off: o, len: l }),
        1 => off.clone().prop_map(|o| Op::UnmapPage { off: o }),
        2 => (off.clone(), 1..1024u64, any::<u16>())
            .prop_map(|(o, l, p)| Op::Protect { off: o, len: l, perms: p }),
        1 => (off.clone(), 1..1024u64).prop_map(|(o, l)| Op::WriteProtect { off: o, len: l }),
        1 => (0..4u64, 1..4u64, any::<u16>()).prop_map(|(o, n, w)| Op::ClearAd { off2m: o, n2m: n, which: w }),
        1 => (0..4u64, 1..4u64, any::<bool>()).prop_map(|(o, n, cow)| Op::Copy { off2m: o, n2m: n, cow }),
        1 => (off, 1..1024u64).prop_map(|(o, l)| Op::ChildUnmap { off: o, len: l }),
    ]
}

fn cache_of(c: u8) -> CacheMode {
    [CacheMode::WriteBack, CacheMode::WriteThrough, CacheMode::WriteCombining, CacheMode::Uncached]
        [c as usize % 4]
}

/// The window's base: low in the lower half, at the top of the lower half (so ranges end at
/// the non-canonical boundary), or in the upper half for sign-extended formats.
fn window_base<A: Arch>(sel: u8, window: u64) -> u64 {
    let bits = 12 + 9 * A::LEVELS as u32;
    let lower_top = if A::SIGN_EXTENDED { 1u64 << (bits - 1) } else { 1u64 << bits };
    match sel % 3 {
        0 => 1 << 30,
        1 => lower_top - window,
        _ if A::SIGN_EXTENDED => 0u64.wrapping_sub(4 * window),
        _ => 0x10_0000_0000,
    }
}

fn range(base: u64, unit: u64, off: u64, len: u64) -> PageRange {
    let end = (off + len).min(SLOTS);
    PageRange::new(base + off * unit, base + end * unit).unwrap()
}

/// Expands the table into the per-page view and checks structural invariants.
fn snapshot<A: Arch>(pt: &PageTable<A, &HeapTableMemory>, base: u64, unit: u64) -> Model {
    let mut m = Model::new();
    let r = PageRange::new(base, base + SLOTS * unit).unwrap();
    pt.walk(r, |l: Mapping| {
        assert_eq!(l.va % l.size.bytes(), 0, "leaf va aligned");
        assert_eq!(l.pa.0 % l.size.bytes(), 0, "leaf pa aligned");
        assert!(l.size.level() <= A::MAX_LEAF_LEVEL);
        assert_eq!(A::normalize(l.attrs), l.attrs, "stored attrs are normal");
        assert!(l.size.bytes() >= unit, "leaf smaller than the model's unit");
        for i in 0..l.size.bytes() / unit {
            assert!(m.insert(l.va + i * unit, (l.pa.0 + i * unit, l.attrs)).is_none());
        }
    })
    .unwrap();
    pt.for_each_entry(|level, _va, raw| {
        assert_ne!(A::decode(raw, level), Decoded::Unknown, "level {level} raw {raw:#x}");
    });
    m
}

/// True if a table sits at `level` in `[lo, hi)` (where a leaf of that level would go).
fn has_table_in<A: Arch>(
    pt: &PageTable<A, &HeapTableMemory>,
    level: usize,
    lo: u64,
    hi: u64,
) -> bool {
    let mut found = false;
    pt.for_each_entry(|l, va, raw| {
        if l == level && va >= lo && va < hi && matches!(A::decode(raw, l), Decoded::Table(_)) {
            found = true;
        }
    });
    found
}

fn expand(v: &mut Vec<(u64, u64, Attrs)>, unit: u64, l: Mapping) {
    for i in 0..l.size.bytes() / unit {
        v.push((l.va + i * unit, l.pa.0 + i * unit, l.attrs));
    }
}

fn run<A: Arch>(ops: &[Op], sel: u8, unit: u64) -> Result<(), TestCaseError> {
    let mem = HeapTableMemory::new();
    let base = window_base::<A>(sel, SLOTS * unit);
    let big_level = (unit.trailing_zeros() as usize - 12) / 9 + 1;
    let mut pt = PageTable::<A, _>::new(&mem).unwrap();
    let mut child = PageTable::<A, _>::new(&mem).unwrap();
    let mut model = Model::new();
    let mut cmodel = Model::new();
    let perms_of = |p: u16| PteFlags::from_bits_truncate(p) & PteFlags::PERMS;

    for op in ops {
        match *op {
            Op::Map { off, huge, pfn, flags, cache } => {
                let small =
                    PageSize::from_level((unit.trailing_zeros() as usize - 12) / 9).unwrap();
                let size =
                    if huge { PageSize::from_level(small.level() + 1).unwrap() } else { small };
                let sz = size.bytes();
                let va = base + off * unit / sz * sz;
                let pa = (pfn % (1 << 20)) * unit / sz * sz;
                let attrs =
                    Attrs { flags: PteFlags::from_bits_truncate(flags), cache: cache_of(cache) };
                let occupied = (0..sz / unit).any(|i| model.contains_key(&(va + i * unit)));
                let r = pt.map(VirtAddr(va), PhysAddr(pa), size, attrs);
                if occupied {
                    prop_assert_eq!(r, Err(MapError::AlreadyMapped));
                } else if r == Err(MapError::AlreadyMapped) {
                    // Only an (empty) page table left where the 2 MiB leaf would go.
                    prop_assert!(huge && has_table_in(&pt, small.level() + 1, va, va + 1));
                } else {
                    prop_assert_eq!(r, Ok(()));
                    let n = A::normalize(attrs);
                    for i in 0..sz / unit {
                        model.insert(va + i * unit, (pa + i * unit, n));
                    }
                }
            }
            Op::Unmap { off, .. } | Op::UnmapPage { off } => {
                let len = if let Op::Unmap { len, .. } = *op { len } else { 1 };
                let r = range(base, unit, off, len);
                let mut got = Vec::new();
                if matches!(op, Op::UnmapPage { .. }) && unit == K4 {
                    match pt.unmap_page(VirtAddr(r.start())) {
                        Ok((m, f)) => {
                            prop_assert!(f.is_needed());
                            f.ignore();
                            expand(&mut got, unit, m);
                        }
                        Err(e) => {
                            prop_assert_eq!(e, mmkit::paging::UnmapError::NotMapped);
                        }
                    }
                } else {
                    let f = pt.unmap(r, |m| expand(&mut got, unit, m)).unwrap();
                    // Freeing an emptied table also needs a flush (paging-structure caches).
                    prop_assert!(got.is_empty() || f.is_needed());
                    f.ignore();
                }
                let mut want: Vec<_> = (r.start()..r.end())
                    .step_by(unit as usize)
                    .filter_map(|va| model.remove(&va).map(|(pa, a)| (va, pa, a)))
                    .collect();
                got.sort_by_key(|e| e.0);
                want.sort_by_key(|e| e.0);
                prop_assert_eq!(got, want);
            }
            Op::Protect { off, len, perms } => {
                let r = range(base, unit, off, len);
                let p = A::normalize(Attrs::new(perms_of(perms))).flags & PteFlags::PERMS;
                pt.protect(r, perms_of(perms)).unwrap().ignore();
                for va in (r.start()..r.end()).step_by(unit as usize) {
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
                let r = range(base, unit, off, len);
                pt.write_protect(r).unwrap().ignore();
                for va in (r.start()..r.end()).step_by(unit as usize) {
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
                let which =
                    PteFlags::from_bits_truncate(which) & (PteFlags::ACCESSED | PteFlags::DIRTY);
                let r = range(base, unit, off2m * 512, n2m * 512);
                let mut seen = 0;
                pt.test_and_clear(r, which, |m| {
                    assert!(m.attrs.flags.intersects(which));
                    seen += 1;
                })
                .unwrap()
                .ignore();
                let _ = seen;
                for va in (r.start()..r.end()).step_by(unit as usize) {
                    if let Some((_, a)) = model.get_mut(&va) {
                        a.flags.remove(which);
                        *a = A::normalize(*a);
                    }
                }
            }
            Op::Copy { off2m, n2m, cow } => {
                let r = range(base, unit, off2m * 512, n2m * 512);
                // A conflict: the child already maps a page the parent would copy there.
                let child_busy = (r.start()..r.end())
                    .step_by(unit as usize)
                    .any(|va| cmodel.contains_key(&va) && model.contains_key(&va));
                let mut copied = Vec::new();
                let res = pt.copy_range(&mut child, r, cow, |m| expand(&mut copied, unit, m));
                match res {
                    Ok(f) => {
                        f.ignore();
                        prop_assert!(!child_busy);
                        for va in (r.start()..r.end()).step_by(unit as usize) {
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
                            .step_by(unit as usize)
                            .filter(|va| model.contains_key(va))
                            .filter_map(|va| cmodel.get(&va).map(|&(pa, a)| (va, pa, a)))
                            .collect();
                        want.sort_by_key(|e| e.0);
                        copied.sort_by_key(|e| e.0);
                        prop_assert_eq!(copied, want);
                    }
                    Err(CopyError::AlreadyMapped) => {
                        prop_assert!(
                            child_busy || has_table_in(&child, big_level, r.start(), r.end())
                        );
                    }
                    Err(e) => prop_assert!(false, "copy failed: {:?}", e),
                }
            }
            Op::ChildUnmap { off, len } => {
                let r = range(base, unit, off, len);
                child.unmap(r, |_| {}).unwrap().ignore();
                for va in (r.start()..r.end()).step_by(unit as usize) {
                    cmodel.remove(&va);
                }
            }
        }
        prop_assert_eq!(&snapshot(&pt, base, unit), &model, "parent after {:?}", op);
        prop_assert_eq!(&snapshot(&child, base, unit), &cmodel, "child after {:?}", op);
    }

    // Teardown reports exactly the model's leaves and returns every table frame.
    for (pt, model) in [(pt, model), (child, cmodel)] {
        let mut got = Vec::new();
        pt.teardown(|m| expand(&mut got, unit, m));
        let mut want: Vec<_> = model.iter().map(|(&va, &(pa, a))| (va, pa, a)).collect();
        got.sort_by_key(|e| e.0);
        want.sort_by_key(|e| e.0);
        prop_assert_eq!(got, want);
    }
    prop_assert_eq!(mem.live(), 0, "table frames leaked");
    Ok(())
}

/// 48 cases per format by default; `PROPTEST_CASES=n` runs more.
fn cases() -> u32 {
    std::env::var("PROPTEST_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(48)
}

macro_rules! model_test {
    ($name:ident, $arch:ty) => {
        proptest! {
            #![proptest_config(ProptestConfig { cases: cases(), ..ProptestConfig::default() })]
            #[test]
            fn $name(ops in prop::collection::vec(op(), 1..40), sel in any::<u8>()) {
                run::<$arch>(&ops, sel, K4)?;
            }
        }
    };
    ($name:ident, $arch:ty, huge) => {
        proptest! {
            #![proptest_config(ProptestConfig { cases: cases() / 2, ..ProptestConfig::default() })]
            /// 2 MiB units: 1 GiB leaves, split into 2 MiB ones by partial unmap/protect.
            #[test]
            fn $name(ops in prop::collection::vec(op(), 1..30), sel in any::<u8>()) {
                run::<$arch>(&ops, sel, 2 << 20)?;
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

model_test!(model_1g_x86_64, X86_64, huge);
model_test!(model_1g_x86_64_la57, X86_64La57, huge);
model_test!(model_1g_sv39, Sv39, huge);
model_test!(model_1g_sv48, Sv48, huge);
model_test!(model_1g_sv57, Sv57, huge);
model_test!(model_1g_aarch64, Aarch64, huge);
