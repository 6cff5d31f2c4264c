//! Golden entry encodings for every format, checked against the architecture manuals and
//! Linux's own `pgprot` constants, plus encode/decode round trips.

use mmkit::paging::HeapTableMemory;
use mmkit::paging::{
    Aarch64, Arch, Attrs, CacheMode, Decoded, LoongArch64, PageSize, PageTable, PteFlags, Sv39,
    Sv39NoPbmt, Sv48, Sv57, X86_64La57, X86_64,
};
use mmkit::{PhysAddr, VirtAddr};
use proptest::prelude::*;

const R: PteFlags = PteFlags::READ;
const W: PteFlags = PteFlags::WRITE;
const X: PteFlags = PteFlags::EXEC;
const U: PteFlags = PteFlags::USER;
const G: PteFlags = PteFlags::GLOBAL;
const A: PteFlags = PteFlags::ACCESSED;
const D: PteFlags = PteFlags::DIRTY;
const COW: PteFlags = PteFlags::COW;

fn at(flags: PteFlags, cache: CacheMode) -> Attrs {
    Attrs { flags, cache }
}
fn wb(flags: PteFlags) -> Attrs {
    Attrs::new(flags)
}

/// Encodes, checks the golden value, and checks that decoding gives the attributes back.
fn golden<Ar: Arch>(pa: u64, a: Attrs, level: usize, expect: u64) {
    let a = Ar::normalize(a);
    let raw = Ar::encode_leaf(pa, a, level);
    assert_eq!(
        raw,
        expect,
        "{}: encode {a:?} level {level}: got {raw:#x}, want {expect:#x}",
        Ar::NAME
    );
    assert_eq!(Ar::decode(raw, level), Decoded::Leaf(pa, a), "{}: decode {raw:#x}", Ar::NAME);
}

// ---------------------------------------------------------------------------------------
// x86-64: Intel SDM Vol. 3A Table 4-19 (PTE), 4-18 (2 MiB PDE), 4-16 (1 GiB PDPTE);
// Linux values from arch/x86/include/asm/pgtable_types.h.

#[test]
fn x86_64_golden() {
    // Linux PAGE_SHARED = _PAGE_PRESENT|_PAGE_RW|_PAGE_USER|_PAGE_ACCESSED|_PAGE_NX
    //                   = 0x8000000000000027.
    golden::<X86_64>(0x1234_5000, wb(R | W | U | A), 0, 0x8000_0000_1234_5027);
    // Linux PAGE_READONLY_EXEC = P|USER|ACCESSED = 0x25.
    golden::<X86_64>(0x1000, wb(R | X | U | A), 0, 0x1025);
    // Linux PAGE_KERNEL = P|RW|A|D|G|NX = 0x8000000000000163.
    golden::<X86_64>(0xf_ffff_f000, wb(R | W | A | D | G), 0, 0x8000_000f_ffff_f163);
    // Linux PAGE_KERNEL_LARGE (2 MiB) = PAGE_KERNEL | _PAGE_PSE (bit 7) = ...1e3.
    golden::<X86_64>(0x20_0000, wb(R | W | A | D | G), 1, 0x8000_0000_0020_01e3);
    // 1 GiB user read-write-exec, accessed+dirty: P|RW|US|A|D|PS = 0xe7, no NX.
    golden::<X86_64>(0x4000_0000, wb(R | W | X | U | A | D), 2, 0x4000_00e7);
    // Memory types with Linux's PAT layout (pat_bp_init: 0 WB, 1 WC, 3 UC, 7 WT):
    // WC = PWT (bit 3); UC = PCD|PWT (bits 4,3); WT = PAT(bit 7 in a PTE)|PCD|PWT.
    golden::<X86_64>(0x5000, at(R | A, CacheMode::WriteCombining), 0, 0x8000_0000_0000_5029);
    golden::<X86_64>(0x5000, at(R | A, CacheMode::Uncached), 0, 0x8000_0000_0000_5039);
    golden::<X86_64>(0x5000, at(R | A, CacheMode::WriteThrough), 0, 0x8000_0000_0000_50b9);
    // In a 2 MiB PDE the PAT bit is bit 12 (SDM Table 4-18): PS|PAT12|PCD|PWT.
    golden::<X86_64>(0x20_0000, at(R | A, CacheMode::WriteThrough), 1, 0x8000_0000_0020_10b9);
    // Software bits: COW = AVL bit 9.
    golden::<X86_64>(0x7000, wb(R | U | A | D | COW), 0, 0x8000_0000_0000_7265);
    // PROT_NONE: P clear, AVL bit 10, NX: 0x400|US|A|NX.
    golden::<X86_64>(0x9000, wb(U | A), 0, 0x8000_0000_0000_9424);
    // Table pointer: Linux _PAGE_TABLE = P|RW|USER|ACCESSED|DIRTY = 0x67.
    assert_eq!(X86_64::encode_table(0xabc_d000, 3), 0xabc_d067);
    assert_eq!(X86_64::decode(0xabc_d067, 3), Decoded::Table(0xabc_d000));
    assert_eq!(X86_64La57::decode(0xabc_d067, 4), Decoded::Table(0xabc_d000));
    // PS in a PML4E is reserved: not a leaf.
    assert_eq!(X86_64::decode(0x80_0000_00e7, 3), Decoded::Unknown);
    // Non-present without the PROT_NONE marker (e.g. a swap entry) is not ours.
    assert_eq!(X86_64::decode(0x1234_5000, 0), Decoded::Unknown);
    // Highest physical address: bits 51..12 (MAXPHYADDR 52).
    golden::<X86_64>(0x000f_ffff_ffff_f000, wb(R | X | A), 0, 0x000f_ffff_ffff_f021);
}

// ---------------------------------------------------------------------------------------
// RISC-V: Privileged spec §4.4.1 Figure 4.21 (Sv39 PTE), Table 4.5 (R/W/X), Svpbmt;
// Linux values from arch/riscv/include/asm/pgtable.h / pgtable-bits.h.

#[test]
fn riscv_golden() {
    // Linux PAGE_SHARED = _PAGE_BASE(PRESENT|ACCESSED|USER)|READ|WRITE = V|R|W|U|A = 0x57;
    // PPN = pa >> 12 in bits 10.. : 0x8020_0000 >> 12 << 10 = 0x2008_0000.
    golden::<Sv39>(0x8020_0000, wb(R | W | U | A), 0, 0x2008_0057);
    // Linux PAGE_KERNEL = READ|WRITE|PRESENT|ACCESSED|DIRTY|GLOBAL = 0xe7.
    golden::<Sv48>(0x8000_0000, wb(R | W | A | D | G), 0, 0x2000_00e7);
    // Linux PAGE_KERNEL_EXEC = PAGE_KERNEL|EXEC = 0xef; as a 2 MiB megapage.
    golden::<Sv57>(0x8020_0000, wb(R | W | X | A | D | G), 1, 0x2008_00ef);
    // 1 GiB gigapage, user read-exec: V|R|X|U|A = 0x5b.
    golden::<Sv39>(0x4000_0000, wb(R | X | U | A), 2, 0x1000_005b);
    // Svpbmt: NC = 1 (bits 62:61 = 01), IO = 2 (= 10).
    golden::<Sv39>(0x1000, at(R | W | A | D, CacheMode::WriteCombining), 0, 0x2000_0000_0000_04c7);
    golden::<Sv39>(0x1000, at(R | W | A | D, CacheMode::Uncached), 0, 0x4000_0000_0000_04c7);
    // Without Svpbmt the PBMT bits stay zero (they are reserved).
    golden::<Sv39NoPbmt>(0x1000, at(R | W | A | D, CacheMode::Uncached), 0, 0x4c7);
    // RSW bit 8 = COW (PPN 2 << 10 = 0x800); RSW bit 9 + V = 0 = PROT_NONE.
    golden::<Sv39>(0x2000, wb(R | U | A | COW), 0, 0x953);
    golden::<Sv39>(0x2000, wb(U | A), 0, 0xa50);
    // Non-leaf: V alone (Linux _PAGE_TABLE = _PAGE_PRESENT).
    assert_eq!(Sv39::encode_table(0x8000_1000, 2), 0x2000_0401);
    assert_eq!(Sv39::decode(0x2000_0401, 2), Decoded::Table(0x8000_1000));
    // W without R is reserved (Table 4.5).
    assert_eq!(Sv39::decode(0x2000_0405, 0), Decoded::Unknown);
    // A pointer at level 0 is invalid.
    assert_eq!(Sv39::decode(0x2000_0401, 0), Decoded::Unknown);
}

// ---------------------------------------------------------------------------------------
// AArch64: Arm ARM DDI 0487 §D8.3 descriptor formats; Linux values from
// arch/arm64/include/asm/pgtable-prot.h and pgtable-hwdef.h.

#[test]
fn aarch64_golden() {
    // Linux PAGE_SHARED = _PAGE_DEFAULT(PTE_TYPE_PAGE 3|PTE_AF 0x400|PTE_SHARED 0x300|
    // MT_NORMAL 0) | PTE_USER 0x40 | PTE_RDONLY 0x80 | PTE_NG 0x800 | PTE_PXN (53) |
    // PTE_UXN (54) | PTE_WRITE (= DBM, 51) = 0x0068000000000fc3: clean and writable, so
    // hardware read-only until DBM (or the fault handler) marks it dirty.
    golden::<Aarch64>(0x4000_1000, wb(R | W | U | A), 0, 0x0068_0000_4000_1fc3);
    // Linux PAGE_READONLY = _PAGE_DEFAULT|PTE_USER|PTE_RDONLY|PTE_NG|PTE_PXN|PTE_UXN.
    golden::<Aarch64>(0x1000, wb(R | U | A), 0, 0x0060_0000_0000_1fc3);
    // Linux PAGE_EXECONLY = _PAGE_DEFAULT|PTE_RDONLY|PTE_NG|PTE_PXN (no PTE_USER, UXN = 0).
    golden::<Aarch64>(0x1000, wb(X | U | A), 0, 0x0020_0000_0000_1f83);
    // pte_mkdirty(PAGE_KERNEL): PROT_NORMAL = PTE_TYPE_PAGE|AF|SHARED|PXN|UXN|PTE_WRITE;
    // mkdirty sets PTE_DIRTY (55) and keeps PTE_RDONLY clear; global (nG = 0).
    golden::<Aarch64>(0x8000_0000, wb(R | W | A | D | G), 0, 0x00e8_0000_8000_0703);
    // The same as a 2 MiB level-2 block: descriptor type 0b01.
    golden::<Aarch64>(0x8020_0000, wb(R | W | A | D | G), 1, 0x00e8_0000_8020_0701);
    // Kernel text (PAGE_KERNEL_ROX): read-only, PXN clear, UXN set, 1 GiB level-1 block.
    golden::<Aarch64>(0x4000_0000, wb(R | X | A | G), 2, 0x0040_0000_4000_0781);
    // Device-nGnRnE (AttrIndx 3) and Normal-NC (AttrIndx 2), as Linux's MAIR layout.
    golden::<Aarch64>(
        0x9000_0000,
        at(R | W | A | D | G, CacheMode::Uncached),
        0,
        0x00e8_0000_9000_070f,
    );
    golden::<Aarch64>(
        0x9000_0000,
        at(R | W | A | D | G, CacheMode::WriteCombining),
        0,
        0x00e8_0000_9000_070b,
    );
    // COW (bit 56) on a write-protected dirty page: sw dirty (55), RDONLY.
    golden::<Aarch64>(0x3000, wb(R | U | A | D | COW), 0, 0x01e0_0000_0000_3fc3);
    // PROT_NONE: valid bit clear, software bit 58; type bit kept, AP[1] remembers "user".
    golden::<Aarch64>(0x3000, wb(U | A), 0, 0x0460_0000_0000_3fc2);
    // Table descriptor: 0b11 at levels 0-2.
    assert_eq!(Aarch64::encode_table(0x4000_2000, 3), 0x4000_2003);
    assert_eq!(Aarch64::decode(0x4000_2003, 1), Decoded::Table(0x4000_2000));
    // At level 3 (mmkit level 0) 0b01 is reserved; a block at level 0 (mmkit 3) invalid.
    assert_eq!(Aarch64::decode(0x4000_2001, 0), Decoded::Unknown);
    assert_eq!(Aarch64::decode(0x4000_0001, 3), Decoded::Unknown);
}

// ---------------------------------------------------------------------------------------
// LoongArch64: Reference Manual Vol. 1 §5.4 / §7.5.12 TLBELO; software bits from Linux
// arch/loongarch/include/asm/pgtable-bits.h.

#[test]
fn loongarch64_golden() {
    // User RW, accessed, clean, no exec = Linux protection_map[VM_SHARED|VM_WRITE|VM_READ]
    // (arch/loongarch/mm/cache.c): _CACHE_CC (0x10) | _PAGE_VALID (1) | _PAGE_USER (PLV 3,
    // 0xc) | _PAGE_PRESENT (0x80) | _PAGE_NO_EXEC (62) | _PAGE_WRITE (0x100) = 0x400..019d.
    // D (bit 1) stays clear until the page is modified.
    golden::<LoongArch64>(0x9000_0000, wb(R | W | U | A), 0, 0x4000_0000_9000_019d);
    // ...and once dirty: _PAGE_MODIFIED (0x200) and hardware D (0x2).
    golden::<LoongArch64>(0x9000_0000, wb(R | W | U | A | D), 0, 0x4000_0000_9000_039f);
    // Kernel RWX global, dirty: V|D|G(0x40)|P|W|M|CC = 0x3d3 (Linux PAGE_KERNEL is
    // 0x1d3: it sets D without _PAGE_MODIFIED).
    golden::<LoongArch64>(0x20_0000, wb(R | W | X | A | D | G), 0, 0x20_03d3);
    // 2 MiB huge leaf: _PAGE_HUGE (bit 6), global in _PAGE_HGLOBAL (bit 12).
    golden::<LoongArch64>(0x20_0000, wb(R | W | X | A | D | G), 1, 0x20_13d3);
    // Exec-only user page: _PAGE_NO_READ (61).
    golden::<LoongArch64>(0x1000, wb(X | U | A), 0, 0x2000_0000_0000_109d);
    // Linux protection_map[VM_NONE] = _CACHE_CC | _PAGE_USER | _PAGE_NO_EXEC |
    // _PAGE_NO_READ | _PAGE_PROTNONE (0x400) = 0x6000..041c.
    golden::<LoongArch64>(0x1000, wb(U), 0, 0x6000_0000_0000_141c);
    // MAT: SUC = 0, WUC = 2 (bits 5:4).
    golden::<LoongArch64>(0x1000, at(R | A, CacheMode::Uncached), 0, 0x4000_0000_0000_1081);
    golden::<LoongArch64>(0x1000, at(R | A, CacheMode::WriteCombining), 0, 0x4000_0000_0000_10a1);
    // COW: bit 11 (Linux's _PAGE_SPECIAL position).
    golden::<LoongArch64>(0x1000, wb(R | U | A | COW), 0, 0x4000_0000_0000_189d);
    // Directory entries hold the next table's physical address and nothing else.
    assert_eq!(LoongArch64::encode_table(0x9000_3000, 2), 0x9000_3000);
    assert_eq!(LoongArch64::decode(0x9000_3000, 2), Decoded::Table(0x9000_3000));
    // A huge bit above the PMD level is not supported.
    assert_eq!(LoongArch64::decode(0x4000_0000 | 0x40 | 0x80, 2), Decoded::Unknown);
}

// ---------------------------------------------------------------------------------------
// Round trips: decode(encode(a)) == normalize(a) for every flag combination, cache mode
// and leaf level, and normalize is idempotent.

fn all_attrs() -> impl Iterator<Item = Attrs> {
    (0u16..256).flat_map(|bits| {
        [
            CacheMode::WriteBack,
            CacheMode::WriteThrough,
            CacheMode::WriteCombining,
            CacheMode::Uncached,
        ]
        .into_iter()
        .map(move |cache| Attrs { flags: PteFlags::from_bits_truncate(bits), cache })
    })
}

fn roundtrip<Ar: Arch>() {
    for level in 0..=Ar::MAX_LEAF_LEVEL {
        let pa = 0x1234u64 << (12 + 9 * level as u32) & ((1u64 << Ar::PA_BITS) - 1);
        for a in all_attrs() {
            let n = Ar::normalize(a);
            assert_eq!(Ar::normalize(n), n, "{}: normalize not idempotent", Ar::NAME);
            assert_eq!(
                n.flags.is_protnone(),
                a.flags.is_protnone(),
                "{}: PROT_NONE changed",
                Ar::NAME
            );
            let raw = Ar::encode_leaf(pa, n, level);
            assert_ne!(raw, 0);
            assert_eq!(Ar::decode(raw, level), Decoded::Leaf(pa, n), "{} {a:?} {raw:#x}", Ar::NAME);
            if level > 0 {
                // A leaf above level 0 must never look like a table pointer.
                assert!(!matches!(Ar::decode(raw, level), Decoded::Table(_)));
            }
        }
    }
    for level in 1..Ar::LEVELS {
        assert_eq!(Ar::decode(Ar::encode_table(0x5000, level), level), Decoded::Table(0x5000));
    }
}

#[test]
fn roundtrip_all_formats() {
    roundtrip::<X86_64>();
    roundtrip::<X86_64La57>();
    roundtrip::<Sv39>();
    roundtrip::<Sv48>();
    roundtrip::<Sv57>();
    roundtrip::<Sv39NoPbmt>();
    roundtrip::<Aarch64>();
    roundtrip::<LoongArch64>();
}

fn prop_roundtrip<Ar: Arch>(
    pfn: u64,
    bits: u16,
    cache: u8,
    level: usize,
) -> Result<(), TestCaseError> {
    let level = level % (Ar::MAX_LEAF_LEVEL + 1);
    let shift = 12 + 9 * level as u32;
    let pa = (pfn << shift) & ((1u64 << Ar::PA_BITS) - 1);
    let cache = [
        CacheMode::WriteBack,
        CacheMode::WriteThrough,
        CacheMode::WriteCombining,
        CacheMode::Uncached,
    ][cache as usize % 4];
    let a = Ar::normalize(Attrs { flags: PteFlags::from_bits_truncate(bits), cache });
    prop_assert_eq!(Ar::decode(Ar::encode_leaf(pa, a, level), level), Decoded::Leaf(pa, a));
    Ok(())
}

proptest! {
    #[test]
    fn roundtrip_random_addresses(pfn in any::<u64>(), bits in any::<u16>(), cache in any::<u8>(), level in 0usize..3) {
        prop_roundtrip::<X86_64>(pfn, bits, cache, level)?;
        prop_roundtrip::<X86_64La57>(pfn, bits, cache, level)?;
        prop_roundtrip::<Sv39>(pfn, bits, cache, level)?;
        prop_roundtrip::<Sv57>(pfn, bits, cache, level)?;
        prop_roundtrip::<Aarch64>(pfn, bits, cache, level)?;
        prop_roundtrip::<LoongArch64>(pfn, bits, cache, level)?;
    }
}

// ---------------------------------------------------------------------------------------
// The engine writes exactly these encodings into real tables that a hardware walker could
// follow: walk them by hand with the manual's index arithmetic.

#[test]
fn x86_tables_walk_by_hand() {
    let mem = HeapTableMemory::new();
    let pt = PageTable::<X86_64, _>::new(&mem).unwrap();
    let va = 0x7fff_dead_b000u64;
    pt.map(VirtAddr(va), PhysAddr(0x1234_5000), PageSize::Size4K, wb(R | W | U | A)).unwrap();
    // CR3 → PML4[va 47:39] → PDPT[38:30] → PD[29:21] → PT[20:12] (SDM §4.5.4).
    let mut table = pt.root().as_u64();
    for level in (0..4).rev() {
        let idx = (va >> (12 + 9 * level)) & 511;
        // SAFETY: HeapTableMemory identity-maps its frames; `table` is live.
        let e = unsafe { *((table as usize as *const u64).add(idx as usize)) };
        if level == 0 {
            assert_eq!(e, 0x8000_0000_1234_5027);
        } else {
            assert_eq!(e & 0xfff, 0x67, "level {level} entry {e:#x}");
            table = e & 0x000f_ffff_ffff_f000;
        }
    }
}
