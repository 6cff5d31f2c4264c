//! Property test: after any sequence of map / protect / unmap done by `mmkit::paging`
//! (flushing as the tokens demand), the MMU's answer for every probed address and access
//! equals what `PageTable::query` says is mapped there, in every format.

use std::sync::Arc;

use mmkit::addr::PageRange;
use mmkit::paging::{
    Aarch64, Arch, Attrs, LoongArch64, PageSize, PageTable, PteFlags, Sv39, Sv48, Sv57, X86_64La57,
    X86_64,
};
use mmkit::platform::{Asid, TlbFlush};
use mmkit::{PhysAddr, VirtAddr, PAGE_SIZE};
use mmkit_sim::{
    AccessKind, ArchKind, AsContext, FaultKind, Machine, MachineConfig, Privilege, StopgapFrames,
};
use proptest::prelude::*;

const BASE: u64 = 0x4000_0000;
/// Two 2 MiB slots; 4 KiB maps land in the first 64 pages of either.
const SPAN: u64 = 4 << 20;
const MEM: u64 = 32 << 20;

#[derive(Clone, Debug)]
enum Op {
    Map4k { page: u64, perms: u8 },
    Map2m { slot: u64, perms: u8 },
    Protect { page: u64, pages: u64, perms: u8 },
    Unmap { page: u64, pages: u64 },
    Access { page: u64, cpu: usize, kind: u8 },
}

fn op() -> impl Strategy<Value = Op> {
    let page = (0u64..2, 0u64..64).prop_map(|(s, p)| s * 512 + p);
    prop_oneof![
        3 => (page.clone(), 0u8..16).prop_map(|(page, perms)| Op::Map4k { page, perms }),
        1 => (0u64..2, 0u8..16).prop_map(|(slot, perms)| Op::Map2m { slot, perms }),
        2 => (page.clone(), 1u64..600, 0u8..8).prop_map(|(page, pages, perms)| Op::Protect { page, pages, perms }),
        2 => (page.clone(), 1u64..600).prop_map(|(page, pages)| Op::Unmap { page, pages }),
        4 => (page, 0usize..2, 0u8..3).prop_map(|(page, cpu, kind)| Op::Access { page, cpu, kind }),
    ]
}

fn flags(bits: u8) -> PteFlags {
    let mut f = PteFlags::empty();
    for (i, fl) in
        [PteFlags::READ, PteFlags::WRITE, PteFlags::EXEC, PteFlags::USER].into_iter().enumerate()
    {
        if bits & (1 << i) != 0 {
            f |= fl;
        }
    }
    f
}

fn check<A: Arch>(arch: ArchKind, ops: &[Op]) -> Result<(), TestCaseError> {
    let m =
        Machine::new(MachineConfig { mem_size: MEM, cpus: 2, arch, ..Default::default() }).unwrap();
    let frames = StopgapFrames::new(Arc::clone(m.phys()), PhysAddr(PAGE_SIZE), PhysAddr(MEM));
    let mut pt = PageTable::<A, _>::new(&frames).unwrap();
    let ctx = AsContext { root: pt.root(), asid: Asid(7) };
    let all = m.all_cpus();
    for op in ops {
        match *op {
            Op::Map4k { page, perms } => {
                let f = frames.alloc_frame().unwrap();
                let a = Attrs::new(flags(perms) | PteFlags::USER);
                let _ = pt.map(VirtAddr(BASE + page * PAGE_SIZE), f, PageSize::Size4K, a);
            }
            Op::Map2m { slot, perms } => {
                let f = frames.alloc_contiguous(2 << 20, 2 << 20).unwrap();
                let a = Attrs::new(flags(perms) | PteFlags::USER);
                let _ = pt.map(VirtAddr(BASE + slot * (2 << 20)), f, PageSize::Size2M, a);
            }
            Op::Protect { page, pages, perms } => {
                let s = BASE + page * PAGE_SIZE;
                let e = (s + pages * PAGE_SIZE).min(BASE + SPAN);
                let r = PageRange::new(s, e).unwrap();
                if let Ok(fl) = pt.protect(r, flags(perms) & PteFlags::PERMS) {
                    m.flush(&all, ctx.asid, fl);
                }
            }
            Op::Unmap { page, pages } => {
                let s = BASE + page * PAGE_SIZE;
                let e = (s + pages * PAGE_SIZE).min(BASE + SPAN);
                let r = PageRange::new(s, e).unwrap();
                if let Ok(fl) = pt.unmap(r, |_| {}) {
                    m.flush(&all, ctx.asid, fl);
                }
            }
            Op::Access { page, cpu, kind } => {
                let va = BASE + page * PAGE_SIZE + 8;
                let kind =
                    [AccessKind::Read, AccessKind::Write, AccessKind::Execute][kind as usize];
                let mut c = m.cpu(cpu).unwrap().with_privilege(Privilege::User);
                let got = c.translate(&ctx, VirtAddr(va), kind);
                let want = pt.query(VirtAddr(va));
                match (got, want) {
                    (Ok(pa), Ok(t)) => {
                        prop_assert_eq!(pa, t.pa, "{} {:?}", arch.name(), op);
                        let f = t.leaf.attrs.flags;
                        let need = match kind {
                            AccessKind::Read => PteFlags::READ,
                            AccessKind::Write => PteFlags::WRITE,
                            AccessKind::Execute => PteFlags::EXEC,
                        };
                        prop_assert!(
                            f.contains(need | PteFlags::USER),
                            "{} {:?} {:?}",
                            arch.name(),
                            op,
                            f
                        );
                        if kind == AccessKind::Write {
                            prop_assert!(f.contains(PteFlags::DIRTY));
                        }
                        prop_assert!(f.contains(PteFlags::ACCESSED));
                    }
                    (Err(e), Ok(t)) => {
                        let f = t.leaf.attrs.flags;
                        let need = match kind {
                            AccessKind::Read => PteFlags::READ,
                            AccessKind::Write => PteFlags::WRITE,
                            AccessKind::Execute => PteFlags::EXEC,
                        };
                        prop_assert!(!f.contains(need), "{} {:?} {:?} {:?}", arch.name(), op, f, e);
                        let k = if f.is_protnone() {
                            FaultKind::NotPresent
                        } else {
                            FaultKind::Protection
                        };
                        prop_assert_eq!(e.fault().kind, k);
                    }
                    (Ok(pa), Err(_)) => {
                        prop_assert!(
                            false,
                            "{} {:?}: translated to {:?} but unmapped",
                            arch.name(),
                            op,
                            pa
                        );
                    }
                    (Err(e), Err(_)) => prop_assert_eq!(e.fault().kind, FaultKind::NotPresent),
                }
            }
        }
    }
    Ok(())
}

macro_rules! props {
    ($($name:ident: $ty:ty = $kind:expr;)*) => {
        proptest! {
            #![proptest_config(ProptestConfig { cases: 40, ..ProptestConfig::default() })]
            $(
                #[test]
                fn $name(ops in proptest::collection::vec(op(), 1..60)) {
                    check::<$ty>($kind, &ops)?;
                }
            )*
        }
    };
}

props! {
    x86_64: X86_64 = ArchKind::X86_64;
    x86_64_la57: X86_64La57 = ArchKind::X86_64La57;
    sv39: Sv39 = ArchKind::Sv39;
    sv48: Sv48 = ArchKind::Sv48;
    sv57: Sv57 = ArchKind::Sv57;
    aarch64: Aarch64 = ArchKind::Aarch64;
    loongarch64: LoongArch64 = ArchKind::LoongArch64;
}
