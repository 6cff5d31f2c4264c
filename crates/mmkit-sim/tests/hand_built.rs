//! The MMU against tables written by hand from the manuals (no mmkit encoder involved), and
//! mmkit's encoders against the MMU: for every permission combination, the hardware grants
//! exactly what `PageTable::query` says the leaf grants.

use std::sync::Arc;

use mmkit::paging::{
    Aarch64, Arch, Attrs, LoongArch64, PageSize, PageTable, PteFlags, Sv39, Sv48, Sv57, X86_64La57,
    X86_64,
};
use mmkit::{PhysAddr, VirtAddr};
use mmkit_sim::{
    translate, AccessKind, ArchKind, FaultKind, Machine, MachineConfig, MmuConfig, PhysMemory,
    Privilege, StopgapFrames,
};

const U: Privilege = Privilege::User;
const K: Privilege = Privilege::Kernel;
const R: AccessKind = AccessKind::Read;
const W: AccessKind = AccessKind::Write;
const X: AccessKind = AccessKind::Execute;

fn mem() -> PhysMemory {
    PhysMemory::new(8 << 20).unwrap()
}

fn tr(
    arch: ArchKind,
    p: &PhysMemory,
    root: u64,
    va: u64,
    k: AccessKind,
    pr: Privilege,
) -> Result<u64, FaultKind> {
    translate(arch, MmuConfig::default(), p, PhysAddr(root), VirtAddr(va), k, pr)
        .map(|w| w.pa.0)
        .map_err(|f| f.kind)
}

fn set(p: &PhysMemory, table: u64, idx: u64, v: u64) {
    p.write_u64(PhysAddr(table + idx * 8), v).unwrap();
}
fn get(p: &PhysMemory, table: u64, idx: u64) -> u64 {
    p.read_u64(PhysAddr(table + idx * 8)).unwrap()
}

/// SDM §4.5: PML4 at 0x1000, PDPT 0x2000, PD 0x3000, PT 0x4000, page 0x5000; VA 0x40_0000 =
/// indices 0/0/2/0.
#[test]
fn x86_by_hand() {
    let p = mem();
    let a = ArchKind::X86_64;
    let (pml4, pdpt, pd, pt) = (0x1000, 0x2000, 0x3000, 0x4000);
    set(&p, pml4, 0, pdpt | 0x7); // P RW US
    set(&p, pdpt, 0, pd | 0x7);
    set(&p, pd, 2, pt | 0x7);
    set(&p, pt, 0, 0x5000 | 0x7); // 4 KiB page, P RW US, executable
    assert_eq!(tr(a, &p, pml4, 0x40_0123, R, U), Ok(0x5123));
    // Accessed (bit 5) set in every entry used, dirty (bit 6) only in the PTE, on a write.
    assert_eq!(get(&p, pml4, 0) & 0x60, 0x20);
    assert_eq!(get(&p, pd, 2) & 0x60, 0x20);
    assert_eq!(get(&p, pt, 0) & 0x60, 0x20);
    tr(a, &p, pml4, 0x40_0000, W, U).unwrap();
    assert_eq!(get(&p, pt, 0) & 0x60, 0x60);
    assert_eq!(get(&p, pd, 2) & 0x40, 0);
    tr(a, &p, pml4, 0x40_0000, X, U).unwrap();
    // R/W and U/S combine over all levels (§4.6.1): a read-only PDE makes the page read-only,
    // a supervisor PDPTE makes it supervisor; XD in the PML4E forbids fetches.
    set(&p, pd, 2, pt | 0x5);
    assert_eq!(tr(a, &p, pml4, 0x40_0000, W, U), Err(FaultKind::Protection));
    assert_eq!(tr(a, &p, pml4, 0x40_0000, W, K), Err(FaultKind::Protection)); // CR0.WP
    set(&p, pd, 2, pt | 0x7);
    set(&p, pdpt, 0, pd | 0x3);
    assert_eq!(tr(a, &p, pml4, 0x40_0000, R, U), Err(FaultKind::Protection));
    assert_eq!(tr(a, &p, pml4, 0x40_0000, X, K), Ok(0x5000)); // now a supervisor page
    set(&p, pdpt, 0, pd | 0x7);
    set(&p, pml4, 0, pdpt | 0x7 | 1 << 63);
    assert_eq!(tr(a, &p, pml4, 0x40_0000, X, U), Err(FaultKind::Protection));
    assert_eq!(tr(a, &p, pml4, 0x40_0000, X, K), Err(FaultKind::Protection));
    set(&p, pml4, 0, pdpt | 0x7);
    // SMEP: the kernel never fetches from a user page.
    assert_eq!(tr(a, &p, pml4, 0x40_0000, X, K), Err(FaultKind::Protection));
    // 2 MiB page: PS (bit 7) in the PDE at index 3; bit 12 is PAT, bits 20:13 reserved.
    set(&p, pd, 3, 0x60_0000 | 0x87);
    assert_eq!(tr(a, &p, pml4, 0x61_2345, R, U), Ok(0x61_2345));
    set(&p, pd, 3, 0x60_0000 | 0x87 | 1 << 13);
    assert_eq!(tr(a, &p, pml4, 0x61_2345, R, U), Err(FaultKind::Reserved));
    // PS in a PML4E is reserved; P = 0 is not-present whatever else is set.
    set(&p, pml4, 1, pdpt | 0x87);
    assert_eq!(tr(a, &p, pml4, 1 << 39, R, U), Err(FaultKind::Reserved));
    set(&p, pt, 1, 0x5000 | 0x6);
    assert_eq!(tr(a, &p, pml4, 0x40_1000, R, U), Err(FaultKind::NotPresent));
    assert_eq!(tr(a, &p, pml4, 0x0000_8000_0000_0000, R, U), Err(FaultKind::NonCanonical));
    // A table pointer outside memory is a bus error, not a host crash.
    set(&p, pml4, 2, 0x7fff_0000_0000 | 0x7);
    assert_eq!(tr(a, &p, pml4, 2 << 39, R, U), Err(FaultKind::Bus));
}

/// Privileged spec §4.3.2 / §4.4.1, Sv39: root 0x1000, next 0x2000, leaf table 0x3000.
#[test]
fn riscv_by_hand() {
    let p = mem();
    let a = ArchKind::Sv39;
    let ptr = |pa: u64| (pa >> 12) << 10 | 1; // V only: pointer
    set(&p, 0x1000, 0, ptr(0x2000));
    set(&p, 0x2000, 2, ptr(0x3000));
    // V R W U, A/D clear: Svadu sets them.
    set(&p, 0x3000, 0, (0x5000 >> 12) << 10 | 0b10111);
    assert_eq!(tr(a, &p, 0x1000, 0x40_0042, R, U), Ok(0x5042));
    assert_eq!(get(&p, 0x3000, 0) & 0xc0, 0x40);
    tr(a, &p, 0x1000, 0x40_0042, W, U).unwrap();
    assert_eq!(get(&p, 0x3000, 0) & 0xc0, 0xc0);
    assert_eq!(tr(a, &p, 0x1000, 0x40_0042, X, U), Err(FaultKind::Protection));
    // S-mode may read U pages (SUM = 1) but never execute them.
    tr(a, &p, 0x1000, 0x40_0042, R, K).unwrap();
    // W without R is reserved.
    set(&p, 0x3000, 1, (0x6000 >> 12) << 10 | 0b10101);
    assert_eq!(tr(a, &p, 0x1000, 0x40_1000, R, U), Err(FaultKind::Reserved));
    // A misaligned megapage (PPN[0] != 0) faults; an aligned one translates.
    set(&p, 0x2000, 3, (0x60_1000 >> 12) << 10 | 0b10011);
    assert_eq!(tr(a, &p, 0x1000, 0x60_0000, R, U), Err(FaultKind::Reserved));
    set(&p, 0x2000, 3, (0x60_0000 >> 12) << 10 | 0b10011);
    assert_eq!(tr(a, &p, 0x1000, 0x61_2345, R, U), Ok(0x61_2345));
    // Execute-only user page: fetch yes, load no.
    set(&p, 0x3000, 2, (0x7000 >> 12) << 10 | 0b11001);
    assert_eq!(tr(a, &p, 0x1000, 0x40_2000, X, U), Ok(0x7000));
    assert_eq!(tr(a, &p, 0x1000, 0x40_2000, R, U), Err(FaultKind::Protection));
    // PBMT = 3 is reserved; PBMT in a pointer is reserved.
    set(&p, 0x3000, 3, (0x8000 >> 12) << 10 | 0b10011 | 3 << 61);
    assert_eq!(tr(a, &p, 0x1000, 0x40_3000, R, U), Err(FaultKind::Reserved));
    // Svade: no hardware update, a page fault instead.
    let cfg = MmuConfig { hw_access_dirty: false };
    set(&p, 0x3000, 4, (0x9000 >> 12) << 10 | 0b10011);
    let f = translate(a, cfg, &p, PhysAddr(0x1000), VirtAddr(0x40_4000), R, U).unwrap_err();
    assert_eq!(f.kind, FaultKind::AccessFlag);
    assert_eq!(get(&p, 0x3000, 4) & 0x40, 0);
    // Sv39 addresses must be sign-extended from bit 38.
    assert_eq!(tr(a, &p, 0x1000, 1 << 38, R, U), Err(FaultKind::NonCanonical));
}

/// DDI 0487 §D8.3-D8.5: L0 at 0x1000, L1 0x2000, L2 0x3000, L3 0x4000.
#[test]
fn aarch64_by_hand() {
    let p = mem();
    let a = ArchKind::Aarch64;
    set(&p, 0x1000, 0, 0x2000 | 3);
    set(&p, 0x2000, 0, 0x3000 | 3);
    set(&p, 0x3000, 2, 0x4000 | 3);
    // Page, AP = 01 (EL0+EL1 RW), AF, UXN=0 PXN=1.
    let page = 0x5000 | 3 | 1 << 6 | 1 << 10 | 1 << 53;
    set(&p, 0x4000, 0, page);
    assert_eq!(tr(a, &p, 0x1000, 0x40_0010, W, U), Ok(0x5010));
    assert_eq!(tr(a, &p, 0x1000, 0x40_0010, X, U), Ok(0x5010));
    assert_eq!(tr(a, &p, 0x1000, 0x40_0010, X, K), Err(FaultKind::Protection));
    // APTable[1] (bit 62) in the L2 table descriptor makes everything below read-only;
    // APTable[0] (bit 61) removes EL0 access; UXNTable (bit 60) removes EL0 execution.
    set(&p, 0x3000, 2, 0x4000 | 3 | 1 << 62);
    assert_eq!(tr(a, &p, 0x1000, 0x40_0010, W, U), Err(FaultKind::Protection));
    set(&p, 0x3000, 2, 0x4000 | 3 | 1 << 61);
    assert_eq!(tr(a, &p, 0x1000, 0x40_0010, R, U), Err(FaultKind::Protection));
    tr(a, &p, 0x1000, 0x40_0010, R, K).unwrap();
    set(&p, 0x3000, 2, 0x4000 | 3 | 1 << 60);
    assert_eq!(tr(a, &p, 0x1000, 0x40_0010, X, U), Err(FaultKind::Protection));
    set(&p, 0x3000, 2, 0x4000 | 3);
    // DBM: AP[2] = 1 with DBM = 1 is writable; the write clears AP[2] (HD = 1).
    set(&p, 0x4000, 1, 0x6000 | 3 | 1 << 6 | 1 << 7 | 1 << 10 | 1 << 51);
    tr(a, &p, 0x1000, 0x40_1000, W, U).unwrap();
    assert_eq!(get(&p, 0x4000, 1) & 1 << 7, 0);
    // Without DBM it is read-only.
    set(&p, 0x4000, 2, 0x7000 | 3 | 1 << 6 | 1 << 7 | 1 << 10);
    assert_eq!(tr(a, &p, 0x1000, 0x40_2000, W, U), Err(FaultKind::Protection));
    // AF clear: set by hardware (HA = 1), or an access-flag fault without it.
    set(&p, 0x4000, 3, 0x8000 | 3 | 1 << 6);
    let cfg = MmuConfig { hw_access_dirty: false };
    let f = translate(a, cfg, &p, PhysAddr(0x1000), VirtAddr(0x40_3000), R, U).unwrap_err();
    assert_eq!(f.kind, FaultKind::AccessFlag);
    tr(a, &p, 0x1000, 0x40_3000, R, U).unwrap();
    assert_ne!(get(&p, 0x4000, 3) & 1 << 10, 0);
    // 0b01 at level 3 is reserved; a 2 MiB block at level 2 works.
    set(&p, 0x4000, 4, 0x9000 | 1 | 1 << 6 | 1 << 10);
    assert_eq!(tr(a, &p, 0x1000, 0x40_4000, R, U), Err(FaultKind::Reserved));
    set(&p, 0x3000, 3, 0x60_0000 | 1 | 1 << 6 | 1 << 10);
    assert_eq!(tr(a, &p, 0x1000, 0x61_2345, R, U), Ok(0x61_2345));
    // Invalid descriptor; TTBR0 range.
    assert_eq!(tr(a, &p, 0x1000, 0x40_5000, R, U), Err(FaultKind::NotPresent));
    assert_eq!(tr(a, &p, 0x1000, 1 << 48, R, U), Err(FaultKind::NonCanonical));
}

/// LoongArch directory entries are plain table addresses; leaves use Linux's software bits.
#[test]
fn loongarch_by_hand() {
    let p = mem();
    let a = ArchKind::LoongArch64;
    set(&p, 0x1000, 0, 0x2000);
    set(&p, 0x2000, 0, 0x3000);
    set(&p, 0x3000, 2, 0x4000);
    // P (7) | W (8) | PLV3 | MAT CC, V/D/M clear.
    set(&p, 0x4000, 0, 0x5000 | 1 << 7 | 1 << 8 | 3 << 2 | 1 << 4);
    assert_eq!(tr(a, &p, 0x1000, 0x40_0008, R, U), Ok(0x5008));
    assert_eq!(get(&p, 0x4000, 0) & 0x203, 0x1); // V set, D and M not yet
    tr(a, &p, 0x1000, 0x40_0008, W, U).unwrap();
    assert_eq!(get(&p, 0x4000, 0) & 0x203, 0x203);
    // NR forbids loads, NX fetches; PLV 0 forbids user access.
    set(&p, 0x4000, 1, 0x6000 | 1 << 7 | 3 << 2 | 1 << 61);
    assert_eq!(tr(a, &p, 0x1000, 0x40_1000, R, U), Err(FaultKind::Protection));
    assert_eq!(tr(a, &p, 0x1000, 0x40_1000, X, U), Ok(0x6000));
    set(&p, 0x4000, 2, 0x7000 | 1 << 7 | 1 << 62);
    assert_eq!(tr(a, &p, 0x1000, 0x40_2000, R, U), Err(FaultKind::Protection));
    assert_eq!(tr(a, &p, 0x1000, 0x40_2000, X, K), Err(FaultKind::Protection));
    tr(a, &p, 0x1000, 0x40_2000, R, K).unwrap();
    // Huge PMD (bit 6), 2 MiB.
    set(&p, 0x3000, 3, 0x60_0000 | 1 << 6 | 1 << 7 | 3 << 2);
    assert_eq!(tr(a, &p, 0x1000, 0x61_2345, R, U), Ok(0x61_2345));
    // Not present (no P), and an empty directory entry.
    set(&p, 0x4000, 3, 0x8000 | 1 | 3 << 2);
    assert_eq!(tr(a, &p, 0x1000, 0x40_3000, R, U), Err(FaultKind::NotPresent));
    assert_eq!(tr(a, &p, 0x1000, 1 << 30, R, U), Err(FaultKind::NotPresent));
}

/// For every combination of READ/WRITE/EXEC/USER, the MMU grants a user access exactly when
/// the leaf mmkit encoded says so (after `Arch::normalize`, as read back by `query`).
fn encoder_agrees<A: Arch>(arch: ArchKind) {
    let m = Machine::new(MachineConfig { mem_size: 8 << 20, arch, ..Default::default() }).unwrap();
    let frames = StopgapFrames::new(Arc::clone(m.phys()), PhysAddr(0x1000), PhysAddr(8 << 20));
    let pt = PageTable::<A, _>::new(&frames).unwrap();
    for bits in 0u16..16 {
        let mut f = PteFlags::empty();
        for (i, flag) in [PteFlags::READ, PteFlags::WRITE, PteFlags::EXEC, PteFlags::USER]
            .into_iter()
            .enumerate()
        {
            if bits & (1 << i) != 0 {
                f |= flag;
            }
        }
        let va = 0x40_0000 + u64::from(bits) * 0x1000;
        let frame = frames.alloc_frame().unwrap();
        pt.map(VirtAddr(va), frame, PageSize::Size4K, Attrs::new(f)).unwrap();
        let got = pt.query(VirtAddr(va)).unwrap().leaf.attrs.flags;
        for (kind, flag) in [(R, PteFlags::READ), (W, PteFlags::WRITE), (X, PteFlags::EXEC)] {
            let want = got.contains(PteFlags::USER) && got.contains(flag);
            let res = translate(arch, m.mmu_config(), m.phys(), pt.root(), VirtAddr(va), kind, U);
            assert_eq!(res.is_ok(), want, "{}: {f:?} (stored {got:?}) {kind:?}", arch.name());
            if let Err(e) = res {
                let pn =
                    if got.is_protnone() { FaultKind::NotPresent } else { FaultKind::Protection };
                assert_eq!(e.kind, pn, "{}: {f:?} {kind:?}", arch.name());
            }
        }
    }
}

#[test]
fn encoders_agree_with_the_mmu() {
    encoder_agrees::<X86_64>(ArchKind::X86_64);
    encoder_agrees::<X86_64La57>(ArchKind::X86_64La57);
    encoder_agrees::<Sv39>(ArchKind::Sv39);
    encoder_agrees::<Sv48>(ArchKind::Sv48);
    encoder_agrees::<Sv57>(ArchKind::Sv57);
    encoder_agrees::<Aarch64>(ArchKind::Aarch64);
    encoder_agrees::<LoongArch64>(ArchKind::LoongArch64);
}
