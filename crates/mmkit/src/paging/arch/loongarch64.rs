//! LoongArch64, four levels of 4 KiB tables (48-bit virtual addresses).
//!
//! LoongArch Reference Manual Volume 1 (v1.10), §5.4 "Page Table Walking" (`LDDIR`/`LDPTE`,
//! huge-page directory entries) and §7.5.12-7.5.13 `TLBELO0/1` (V, D, PLV, MAT, G, PPN, NR,
//! NX, RPLV). The software bits follow Linux exactly
//! (arch/loongarch/include/asm/pgtable-bits.h):
//!
//! ```text
//!  bit 0  V  valid; Linux reuses it as "accessed"   bit 8  W  software: writable
//!  bit 1  D  hardware write enable (= W && M)        bit 9  M  software: modified (dirty)
//!  bits 3:2 PLV (3 = user, 0 = kernel)               bit 10 PROTNONE (software)
//!  bits 5:4 MAT: 0 SUC, 1 CC, 2 WUC                  bit 11 mmkit COW (Linux _PAGE_SPECIAL)
//!  bit 6  G (base pages) / H huge (directory level)  bit 12 HG: global of a huge leaf
//!  bit 7  P  software: present                       bits 12..47 PA; 61 NR; 62 NX; 63 RPLV
//! ```
//!
//! Directory entries hold just the physical address of the next table (Linux stores the
//! same table's direct-mapped virtual address; the refill handler runs in direct-address
//! mode where only the low PALEN bits count, so both walk identically). Two deviations
//! from Linux: an empty directory entry is 0 where Linux points it at `invalid_pte_table`,
//! so a kernel's TLB-refill handler must treat 0 as "no table" (or keep frame 0 zeroed); and
//! a table frame must not be physical frame 0.
//!
//! LoongArch has no hardware accessed/dirty bits: V doubles as "accessed" (a clear V makes
//! the first access fault) and D is granted only to writable pages already marked modified.
//! A `PROT_NONE` leaf is `PROTNONE | NR | NX` with P = 0; V may stay set since NR, NX and
//! D = 0 deny every access (Linux `PAGE_NONE`). Leaves: 4 KiB and 2 MiB (a huge PMD).

use super::{bits, flag_if, write_implies_read, Arch, Decoded};
use crate::paging::{level_size, Attrs, CacheMode, PteFlags};

/// LoongArch64 4-level, 4 KiB pages.
#[derive(Clone, Copy, Debug, Default)]
pub struct LoongArch64;

/// Valid (and Linux's "accessed").
pub const V: u64 = 1 << 0;
/// Hardware dirty = write enable.
pub const D: u64 = 1 << 1;
/// PLV = 3 (user).
pub const PLV_USER: u64 = 3 << 2;
/// MAT shift.
pub const MAT_SHIFT: u32 = 4;
/// MAT = strongly-ordered uncached.
pub const MAT_SUC: u64 = 0;
/// MAT = coherent cached.
pub const MAT_CC: u64 = 1 << MAT_SHIFT;
/// MAT = weakly-ordered uncached.
pub const MAT_WUC: u64 = 2 << MAT_SHIFT;
/// Global (4 KiB leaf).
pub const G: u64 = 1 << 6;
/// Huge (directory-level leaf).
pub const HUGE: u64 = 1 << 6;
/// Present (software).
pub const P: u64 = 1 << 7;
/// Writable (software).
pub const W: u64 = 1 << 8;
/// Modified (software dirty).
pub const M: u64 = 1 << 9;
/// Present but `PROT_NONE` (software).
pub const PROTNONE: u64 = 1 << 10;
/// Copy-on-write (software).
pub const SW_COW: u64 = 1 << 11;
/// Global of a huge leaf.
pub const HGLOBAL: u64 = 1 << 12;
/// Not readable.
pub const NR: u64 = 1 << 61;
/// Not executable.
pub const NX: u64 = 1 << 62;
/// Physical-address bits of a directory entry or 4 KiB leaf.
pub const ADDR_4K: u64 = bits(12, 48);

impl Arch for LoongArch64 {
    const NAME: &'static str = "loongarch64";
    const LEVELS: usize = 4;
    const SIGN_EXTENDED: bool = true;
    const PA_BITS: u32 = 48;
    const MAX_LEAF_LEVEL: usize = 1;

    #[inline]
    fn normalize(a: Attrs) -> Attrs {
        let mut a = write_implies_read(a);
        if a.cache == CacheMode::WriteThrough {
            a.cache = CacheMode::WriteCombining;
        }
        a
    }

    #[inline]
    fn encode_leaf(pa: u64, a: Attrs, level: usize) -> u64 {
        let f = a.flags;
        let protnone = f.is_protnone();
        let mut v = pa & bits(12 + 9 * level as u32, 48);
        v |= if protnone { PROTNONE } else { P };
        if f.contains(PteFlags::ACCESSED) {
            v |= V;
        }
        let write = f.contains(PteFlags::WRITE);
        let dirty = f.contains(PteFlags::DIRTY);
        if write {
            v |= W;
        }
        if dirty {
            v |= M;
        }
        if write && dirty {
            v |= D;
        }
        if f.contains(PteFlags::USER) {
            v |= PLV_USER;
        }
        v |= match a.cache {
            CacheMode::WriteBack => MAT_CC,
            CacheMode::WriteCombining | CacheMode::WriteThrough => MAT_WUC,
            CacheMode::Uncached => MAT_SUC,
        };
        if level > 0 {
            v |= HUGE;
        }
        if f.contains(PteFlags::GLOBAL) {
            v |= if level > 0 { HGLOBAL } else { G };
        }
        if f.contains(PteFlags::COW) {
            v |= SW_COW;
        }
        if !f.contains(PteFlags::READ) {
            v |= NR;
        }
        if !f.contains(PteFlags::EXEC) {
            v |= NX;
        }
        v
    }

    #[inline]
    fn encode_table(pa: u64, _level: usize) -> u64 {
        pa & ADDR_4K
    }

    #[inline]
    fn decode(raw: u64, level: usize) -> Decoded {
        if raw == 0 {
            return Decoded::Empty;
        }
        if level > 0 && raw & HUGE == 0 {
            return if raw & !ADDR_4K == 0 { Decoded::Table(raw) } else { Decoded::Unknown };
        }
        if level > 1 {
            return Decoded::Unknown;
        }
        let present = raw & P != 0;
        if !present && raw & PROTNONE == 0 {
            return Decoded::Unknown;
        }
        let mut f = PteFlags::empty();
        if present {
            if raw & NR == 0 {
                f |= PteFlags::READ;
            }
            if raw & W != 0 {
                f |= PteFlags::WRITE;
            }
            if raw & NX == 0 {
                f |= PteFlags::EXEC;
            }
        }
        let global = if level > 0 { HGLOBAL } else { G };
        f |= flag_if(raw, V, PteFlags::ACCESSED);
        f |= flag_if(raw, M, PteFlags::DIRTY);
        f |= flag_if(raw, global, PteFlags::GLOBAL);
        f |= flag_if(raw, SW_COW, PteFlags::COW);
        if raw & PLV_USER == PLV_USER {
            f |= PteFlags::USER;
        }
        let cache = match raw & (3 << MAT_SHIFT) {
            MAT_CC => CacheMode::WriteBack,
            MAT_WUC => CacheMode::WriteCombining,
            _ => CacheMode::Uncached,
        };
        Decoded::Leaf(raw & ADDR_4K & !(level_size(level) - 1), Attrs { flags: f, cache })
    }
}
