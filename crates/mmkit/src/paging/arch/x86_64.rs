//! x86-64 4-level and 5-level (LA57) paging.
//!
//! Intel SDM Vol. 3A §4.5 "4-Level Paging and 5-Level Paging", Tables 4-14 to 4-20 (format of
//! PML5E/PML4E/PDPTE/PDE/PTE); PAT: §13.12.3 "Selecting a Memory Type from the PAT".
//!
//! ```text
//!  bit  0 P      present              bit  7 PS (PDPTE/PDE: leaf) / PAT (PTE)
//!  bit  1 R/W    writable             bit  8 G  global
//!  bit  2 U/S    user                 bit  9 AVL: mmkit COW            (Linux: _PAGE_SPECIAL)
//!  bit  3 PWT                         bit 10 AVL: mmkit PROT_NONE      (Linux: _PAGE_UFFD_WP)
//!  bit  4 PCD                         bit 12 PAT (PDPTE/PDE leaves)
//!  bit  5 A      accessed             bits 12..51 physical address (M = 52)
//!  bit  6 D      dirty                bit 63 XD/NX
//! ```
//!
//! Memory types use Linux's PAT programming (arch/x86/mm/pat/memtype.c, `pat_bp_init()`):
//! index `PAT<<2 | PCD<<1 | PWT`: 0 = WB, 1 = WC, 3 = UC, 7 = WT.
//!
//! `PROT_NONE`: P = 0 and AVL bit 10 set; all other bits keep their meaning for mmkit. Linux
//! reuses the G bit for `_PAGE_PROTNONE` (`_PAGE_BIT_PROTNONE = _PAGE_BIT_GLOBAL`); mmkit uses
//! an AVL bit so that a `PROT_NONE` leaf can still remember `GLOBAL`. The hardware ignores both
//! in a not-present entry (SDM §4.5.4: "if P is 0, the other bits are ignored").

use super::{bits, flag_if, write_implies_read, Arch, Decoded};
use crate::paging::{Attrs, CacheMode, PteFlags};

/// x86-64 paging with `L` levels (4, or 5 with CR4.LA57).
#[derive(Clone, Copy, Debug, Default)]
pub struct X86Paging<const L: usize>;
/// x86-64 4-level paging (48-bit virtual addresses).
pub type X86_64 = X86Paging<4>;
/// x86-64 5-level paging, CR4.LA57 (57-bit virtual addresses).
pub type X86_64La57 = X86Paging<5>;

/// Present.
pub const P: u64 = 1 << 0;
/// Writable.
pub const RW: u64 = 1 << 1;
/// User.
pub const US: u64 = 1 << 2;
/// Page-level write-through.
pub const PWT: u64 = 1 << 3;
/// Page-level cache disable.
pub const PCD: u64 = 1 << 4;
/// Accessed.
pub const A: u64 = 1 << 5;
/// Dirty.
pub const D: u64 = 1 << 6;
/// Page size (leaf at PDPTE/PDE level); PAT bit in a PTE.
pub const PS: u64 = 1 << 7;
/// PAT bit of a 4 KiB PTE.
pub const PAT_4K: u64 = 1 << 7;
/// Global.
pub const G: u64 = 1 << 8;
/// Software (AVL): copy-on-write.
pub const SW_COW: u64 = 1 << 9;
/// Software (AVL): present but `PROT_NONE`.
pub const SW_PROTNONE: u64 = 1 << 10;
/// PAT bit of a 2 MiB / 1 GiB leaf.
pub const PAT_HUGE: u64 = 1 << 12;
/// Execute disable.
pub const NX: u64 = 1 << 63;
/// Linux's `_PAGE_TABLE` for a pointer to a lower table: P | RW | US | A | D (0x67).
pub const TABLE_FLAGS: u64 = P | RW | US | A | D;
/// Address bits of an entry pointing to a table or a 4 KiB frame.
pub const ADDR_4K: u64 = bits(12, 52);

#[inline]
fn addr_mask(level: usize) -> u64 {
    bits(12 + 9 * level as u32, 52)
}

impl<const L: usize> Arch for X86Paging<L> {
    const NAME: &'static str = if L == 5 { "x86_64-la57" } else { "x86_64" };
    const LEVELS: usize = L;
    const SIGN_EXTENDED: bool = true;
    const PA_BITS: u32 = 52;
    const MAX_LEAF_LEVEL: usize = 2;

    #[inline]
    fn normalize(a: Attrs) -> Attrs {
        let mut a = write_implies_read(a);
        // A present x86 entry is always readable (there is no "not readable" bit).
        if a.flags.contains(PteFlags::EXEC) {
            a.flags |= PteFlags::READ;
        }
        a
    }

    #[inline]
    fn encode_leaf(pa: u64, a: Attrs, level: usize) -> u64 {
        let f = a.flags;
        let mut v = pa & addr_mask(level);
        v |= if f.is_protnone() { SW_PROTNONE } else { P };
        if f.contains(PteFlags::WRITE) {
            v |= RW;
        }
        if f.contains(PteFlags::USER) {
            v |= US;
        }
        if f.contains(PteFlags::ACCESSED) {
            v |= A;
        }
        if f.contains(PteFlags::DIRTY) {
            v |= D;
        }
        if f.contains(PteFlags::GLOBAL) {
            v |= G;
        }
        if f.contains(PteFlags::COW) {
            v |= SW_COW;
        }
        if !f.contains(PteFlags::EXEC) {
            v |= NX;
        }
        let pat = if level == 0 { PAT_4K } else { PAT_HUGE };
        v |= match a.cache {
            CacheMode::WriteBack => 0,
            CacheMode::WriteCombining => PWT,
            CacheMode::Uncached => PCD | PWT,
            CacheMode::WriteThrough => pat | PCD | PWT,
        };
        if level > 0 {
            v |= PS;
        }
        v
    }

    #[inline]
    fn encode_table(pa: u64, _level: usize) -> u64 {
        (pa & ADDR_4K) | TABLE_FLAGS
    }

    #[inline]
    fn decode(raw: u64, level: usize) -> Decoded {
        if raw == 0 {
            return Decoded::Empty;
        }
        let present = raw & P != 0;
        if !present && raw & SW_PROTNONE == 0 {
            return Decoded::Unknown;
        }
        if level > 0 && raw & PS == 0 {
            // PS clear above level 0: a table pointer (PS is reserved in PML4E/PML5E).
            return if present { Decoded::Table(raw & ADDR_4K) } else { Decoded::Unknown };
        }
        if level > 2 {
            return Decoded::Unknown;
        }
        let mut f = PteFlags::empty();
        if present {
            f |= PteFlags::READ;
            if raw & RW != 0 {
                f |= PteFlags::WRITE;
            }
            if raw & NX == 0 {
                f |= PteFlags::EXEC;
            }
        }
        f |= flag_if(raw, US, PteFlags::USER);
        f |= flag_if(raw, A, PteFlags::ACCESSED);
        f |= flag_if(raw, D, PteFlags::DIRTY);
        f |= flag_if(raw, G, PteFlags::GLOBAL);
        f |= flag_if(raw, SW_COW, PteFlags::COW);
        let pat = if level == 0 { PAT_4K } else { PAT_HUGE };
        let idx =
            ((raw & pat != 0) as u8) << 2 | ((raw & PCD != 0) as u8) << 1 | (raw & PWT != 0) as u8;
        let cache = match idx {
            0 | 4 => CacheMode::WriteBack,
            1 => CacheMode::WriteCombining,
            7 => CacheMode::WriteThrough,
            // 2/6 = UC-, 3 = UC, 5 = WP: report as uncached (the safe reading).
            _ => CacheMode::Uncached,
        };
        Decoded::Leaf(raw & addr_mask(level), Attrs { flags: f, cache })
    }
}
