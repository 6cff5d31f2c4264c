//! AArch64 VMSAv8-64 stage 1, 4 KiB granule, 48-bit input addresses (TTBR0, four levels).
//!
//! Arm Architecture Reference Manual for A-profile (DDI 0487), §D8.3 "Translation table
//! descriptor formats" (D5.3 in issue F and earlier): table / block / page descriptors,
//! Figure D8-14 "Stage 1 attribute fields"; §D8.4.1 AP[2:1] data access permissions;
//! §D8.4.2 UXN/PXN; §D8.5.1 AF; §D8.5.2 DBM (hardware dirty state).
//!
//! mmkit level 0..3 = Arm lookup level 3..0 (a 4 KiB page at mmkit level 0 is an Arm level-3
//! page descriptor; 2 MiB and 1 GiB leaves are level-2 and level-1 block descriptors; Arm
//! level 0 has no blocks with a 4 KiB granule).
//!
//! ```text
//!  bits 1:0  0b11 table (L0-L2) or page (L3); 0b01 block (L1, L2)
//!  bits 4:2  AttrIndx (MAIR_EL1 index)   bit 51 DBM  (Linux PTE_WRITE)
//!  bits 7:6  AP[2:1]: bit 6 EL0 access,  bit 53 PXN
//!            bit 7 read-only ("RDONLY")  bit 54 UXN
//!  bits 9:8  SH (0b11 inner shareable)   bit 55 software: dirty (Linux PTE_DIRTY)
//!  bit 10    AF                          bit 56 software: mmkit COW (Linux PTE_SPECIAL)
//!  bit 11    nG                          bit 58 software: PROT_NONE (Linux <= 6.9 PTE_PROT_NONE)
//!  bits 47:12 output address
//! ```
//!
//! Writable and dirty follow Linux (arch/arm64/include/asm/pgtable.h): "writable" is DBM;
//! a writable page is hardware-writable (AP[2] = 0) only once dirty, so a CPU with
//! FEAT_HAFDBS records the first write by clearing AP[2], and one without takes a permission
//! fault that the fault handler resolves by marking the page dirty. Dirty = software dirty
//! (bit 55) or DBM with AP[2] = 0.
//!
//! Memory types index Linux's MAIR_EL1 layout (arch/arm64/include/asm/memory.h): 0 =
//! MT_NORMAL (write-back), 2 = MT_NORMAL_NC (write-combining), 3 = MT_DEVICE_nGnRnE
//! (uncached). There is no write-through index; write-through becomes write-combining.
//!
//! User execute permission is UXN (PXN is always set on user pages, as Linux does); kernel
//! pages use PXN and always set UXN. A user page that is executable but not readable is the
//! "execute-only" encoding AP = 0b10, UXN = 0 (Linux `PAGE_EXECONLY`).

use super::{bits, write_implies_read, Arch, Decoded};
use crate::paging::{level_size, Attrs, CacheMode, PteFlags};

/// AArch64 stage 1, 4 KiB granule, 48-bit VA (TTBR0 range `[0, 2^48)`).
#[derive(Clone, Copy, Debug, Default)]
pub struct Aarch64;

/// Valid.
pub const VALID: u64 = 1 << 0;
/// Table (L0-L2) / page (L3) descriptor type bit.
pub const TYPE_TABLE: u64 = 1 << 1;
/// AttrIndx shift.
pub const ATTRINDX_SHIFT: u32 = 2;
/// AP[1]: EL0 may access.
pub const AP_USER: u64 = 1 << 6;
/// AP[2]: read-only.
pub const AP_RDONLY: u64 = 1 << 7;
/// SH = inner shareable.
pub const SH_INNER: u64 = 3 << 8;
/// Access flag.
pub const AF: u64 = 1 << 10;
/// Not global.
pub const NG: u64 = 1 << 11;
/// Dirty bit modifier (hardware dirty tracking; Linux's PTE_WRITE).
pub const DBM: u64 = 1 << 51;
/// Privileged execute-never.
pub const PXN: u64 = 1 << 53;
/// Unprivileged execute-never.
pub const UXN: u64 = 1 << 54;
/// Software: dirty.
pub const SW_DIRTY: u64 = 1 << 55;
/// Software: copy-on-write.
pub const SW_COW: u64 = 1 << 56;
/// Software: present but `PROT_NONE` (descriptor invalid).
pub const SW_PROTNONE: u64 = 1 << 58;
/// MAIR index of Normal write-back memory (MT_NORMAL).
pub const MT_NORMAL: u64 = 0;
/// MAIR index of Normal non-cacheable memory (MT_NORMAL_NC).
pub const MT_NORMAL_NC: u64 = 2;
/// MAIR index of Device-nGnRnE memory (MT_DEVICE_nGnRnE).
pub const MT_DEVICE_NGNRNE: u64 = 3;
/// Output-address bits of a table or page descriptor.
pub const ADDR_4K: u64 = bits(12, 48);

impl Arch for Aarch64 {
    const NAME: &'static str = "aarch64";
    const LEVELS: usize = 4;
    const SIGN_EXTENDED: bool = false;
    const PA_BITS: u32 = 48;
    const MAX_LEAF_LEVEL: usize = 2;

    #[inline]
    fn normalize(a: Attrs) -> Attrs {
        let mut a = write_implies_read(a);
        // EL1 can always read a mapped kernel page.
        if !a.flags.contains(PteFlags::USER) && a.flags.contains(PteFlags::EXEC) {
            a.flags |= PteFlags::READ;
        }
        if a.cache == CacheMode::WriteThrough {
            a.cache = CacheMode::WriteCombining;
        }
        a
    }

    #[inline]
    fn encode_leaf(pa: u64, a: Attrs, level: usize) -> u64 {
        let f = a.flags;
        let protnone = f.is_protnone();
        let user = f.contains(PteFlags::USER);
        let write = f.contains(PteFlags::WRITE);
        let dirty = f.contains(PteFlags::DIRTY);
        let mut v = pa & bits(12 + 9 * level as u32, 48);
        v |= if level == 0 { TYPE_TABLE } else { 0 };
        v |= if protnone { SW_PROTNONE } else { VALID };
        let idx = match a.cache {
            CacheMode::WriteBack => MT_NORMAL,
            CacheMode::WriteCombining | CacheMode::WriteThrough => MT_NORMAL_NC,
            CacheMode::Uncached => MT_DEVICE_NGNRNE,
        };
        v |= idx << ATTRINDX_SHIFT | SH_INNER;
        if user && (protnone || f.contains(PteFlags::READ)) {
            v |= AP_USER;
        }
        if write {
            v |= DBM;
        }
        if !(write && dirty) {
            v |= AP_RDONLY;
        }
        if dirty {
            v |= SW_DIRTY;
        }
        if f.contains(PteFlags::ACCESSED) {
            v |= AF;
        }
        if !f.contains(PteFlags::GLOBAL) {
            v |= NG;
        }
        let exec = f.contains(PteFlags::EXEC);
        v |= if user { PXN | if exec { 0 } else { UXN } } else { UXN | if exec { 0 } else { PXN } };
        if f.contains(PteFlags::COW) {
            v |= SW_COW;
        }
        v
    }

    #[inline]
    fn encode_table(pa: u64, _level: usize) -> u64 {
        (pa & ADDR_4K) | TYPE_TABLE | VALID
    }

    #[inline]
    fn decode(raw: u64, level: usize) -> Decoded {
        if raw == 0 {
            return Decoded::Empty;
        }
        let valid = raw & VALID != 0;
        if !valid && raw & SW_PROTNONE == 0 {
            return Decoded::Unknown;
        }
        let table_bit = raw & TYPE_TABLE != 0;
        if valid && level > 0 && table_bit {
            return Decoded::Table(raw & ADDR_4K);
        }
        if level > 2 || (valid && level == 0 && !table_bit) {
            // A block at Arm level 0, or the reserved 0b01 at level 3.
            return Decoded::Unknown;
        }
        let mut f = PteFlags::empty();
        let user_rw = raw & AP_USER != 0;
        let (uxn, pxn) = (raw & UXN != 0, raw & PXN != 0);
        let user = user_rw || (valid && !uxn && pxn);
        if user {
            f |= PteFlags::USER;
        }
        if valid {
            if !user || user_rw {
                f |= PteFlags::READ;
            }
            if raw & DBM != 0 || raw & AP_RDONLY == 0 {
                f |= PteFlags::WRITE;
            }
            if (user && !uxn) || (!user && !pxn) {
                f |= PteFlags::EXEC;
            }
        }
        if raw & SW_DIRTY != 0 || (raw & DBM != 0 && raw & AP_RDONLY == 0) {
            f |= PteFlags::DIRTY;
        }
        if raw & AF != 0 {
            f |= PteFlags::ACCESSED;
        }
        if raw & NG == 0 {
            f |= PteFlags::GLOBAL;
        }
        if raw & SW_COW != 0 {
            f |= PteFlags::COW;
        }
        let cache = match (raw >> ATTRINDX_SHIFT) & 7 {
            0 | 1 => CacheMode::WriteBack,
            2 => CacheMode::WriteCombining,
            _ => CacheMode::Uncached,
        };
        let pa = raw & ADDR_4K & !(level_size(level) - 1);
        Decoded::Leaf(pa, Attrs { flags: f, cache })
    }
}
