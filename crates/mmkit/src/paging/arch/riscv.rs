//! RISC-V Sv39, Sv48 and Sv57.
//!
//! The RISC-V Instruction Set Manual, Volume II: Privileged Architecture (20211203 and later),
//! §4.4.1 "Addressing and Memory Protection" (Sv39 PTE, Figure 4.21; Table 4.5 for the
//! R/W/X encodings), §4.5 (Sv48), §4.6 (Sv57); Svpbmt: §"Svpbmt" (PBMT field, Table
//! "Encodings for PBMT field").
//!
//! ```text
//!  bit 0 V   bit 4 U        bits 8..9  RSW (software): bit 8 mmkit COW, bit 9 mmkit PROT_NONE
//!  bit 1 R   bit 5 G        bits 10..53 PPN (physical address >> 12)
//!  bit 2 W   bit 6 A        bits 61..62 PBMT (Svpbmt): 0 PMA, 1 NC, 2 IO
//!  bit 3 X   bit 7 D        bit 63 N (Svnapot, unused)
//! ```
//!
//! A valid entry with R = W = X = 0 points to the next level; any other valid entry is a leaf
//! at any level (Sv39 2 MiB "megapages" and 1 GiB "gigapages"; mmkit stops at 1 GiB).
//! W without R is reserved and decodes as [`Decoded::Unknown`].
//!
//! `PROT_NONE`: V = 0 and RSW bit 9 set (the hardware ignores every other bit of an invalid
//! PTE). Linux reuses G for `_PAGE_PROT_NONE` with `_PAGE_READ` set
//! (arch/riscv/include/asm/pgtable-bits.h); mmkit uses an RSW bit instead.

use core::marker::PhantomData;

use super::{bits, write_implies_read, Arch, Decoded};
use crate::paging::{Attrs, CacheMode, PteFlags};

/// A RISC-V format with `L` levels; `PBMT` selects whether Svpbmt memory types are encoded
/// (without it every leaf is PMA, i.e. write-back).
#[derive(Clone, Copy, Debug, Default)]
pub struct RiscV<const L: usize, const PBMT: bool>(PhantomData<()>);
/// Sv39 with Svpbmt.
pub type Sv39 = RiscV<3, true>;
/// Sv48 with Svpbmt.
pub type Sv48 = RiscV<4, true>;
/// Sv57 with Svpbmt.
pub type Sv57 = RiscV<5, true>;
/// Sv39 without Svpbmt.
pub type Sv39NoPbmt = RiscV<3, false>;
/// Sv48 without Svpbmt.
pub type Sv48NoPbmt = RiscV<4, false>;
/// Sv57 without Svpbmt.
pub type Sv57NoPbmt = RiscV<5, false>;

/// Valid.
pub const V: u64 = 1 << 0;
/// Readable.
pub const R: u64 = 1 << 1;
/// Writable.
pub const W: u64 = 1 << 2;
/// Executable.
pub const X: u64 = 1 << 3;
/// User.
pub const U: u64 = 1 << 4;
/// Global.
pub const G: u64 = 1 << 5;
/// Accessed.
pub const A: u64 = 1 << 6;
/// Dirty.
pub const D: u64 = 1 << 7;
/// RSW bit 8: copy-on-write.
pub const SW_COW: u64 = 1 << 8;
/// RSW bit 9: present but `PROT_NONE`.
pub const SW_PROTNONE: u64 = 1 << 9;
/// Shift of the PPN field.
pub const PPN_SHIFT: u32 = 10;
/// PPN field (bits 10..53).
pub const PPN_MASK: u64 = bits(10, 54);
/// PBMT = NC: non-cacheable, idempotent, weakly ordered.
pub const PBMT_NC: u64 = 1 << 61;
/// PBMT = IO: non-cacheable, non-idempotent, strongly ordered.
pub const PBMT_IO: u64 = 2 << 61;
/// PBMT field.
pub const PBMT_MASK: u64 = 3 << 61;

// The one-shift encoding in `encode_leaf`/`decode` relies on this correspondence.
const _: () = assert!(
    (PteFlags::READ.bits() as u64) << 1 == R
        && (PteFlags::WRITE.bits() as u64) << 1 == W
        && (PteFlags::EXEC.bits() as u64) << 1 == X
        && (PteFlags::USER.bits() as u64) << 1 == U
        && (PteFlags::GLOBAL.bits() as u64) << 1 == G
        && (PteFlags::ACCESSED.bits() as u64) << 1 == A
        && (PteFlags::DIRTY.bits() as u64) << 1 == D
        && (PteFlags::COW.bits() as u64) << 1 == SW_COW
);

#[inline]
fn pa_of(raw: u64) -> u64 {
    ((raw & PPN_MASK) >> PPN_SHIFT) << 12
}

impl<const L: usize, const PBMT: bool> Arch for RiscV<L, PBMT> {
    const NAME: &'static str = match (L, PBMT) {
        (3, true) => "sv39",
        (4, true) => "sv48",
        (5, true) => "sv57",
        (3, false) => "sv39-nopbmt",
        (4, false) => "sv48-nopbmt",
        _ => "sv57-nopbmt",
    };
    const LEVELS: usize = L;
    const SIGN_EXTENDED: bool = true;
    const PA_BITS: u32 = 56;
    const MAX_LEAF_LEVEL: usize = 2;

    #[inline]
    fn normalize(a: Attrs) -> Attrs {
        let mut a = write_implies_read(a);
        a.cache = match (PBMT, a.cache) {
            (false, _) => CacheMode::WriteBack,
            // No write-through type: non-cacheable is the safe substitute.
            (true, CacheMode::WriteThrough) => CacheMode::WriteCombining,
            (true, c) => c,
        };
        a
    }

    #[inline]
    fn encode_leaf(pa: u64, a: Attrs, _level: usize) -> u64 {
        let f = a.flags;
        let mut v = (pa >> 12) << PPN_SHIFT & PPN_MASK;
        v |= if f.is_protnone() { SW_PROTNONE } else { V };
        // PteFlags READ..DIRTY, COW are bits 0..7, in the same order as R W X U G A D RSW0
        // in bits 1..8 of the PTE: one shift encodes them all.
        v |= (f.bits() as u64 & 0xff) << 1;
        if PBMT {
            v |= match a.cache {
                CacheMode::WriteBack => 0,
                CacheMode::WriteCombining | CacheMode::WriteThrough => PBMT_NC,
                CacheMode::Uncached => PBMT_IO,
            };
        }
        v
    }

    #[inline]
    fn encode_table(pa: u64, _level: usize) -> u64 {
        // Linux's `_PAGE_TABLE` is `_PAGE_PRESENT` alone.
        (pa >> 12) << PPN_SHIFT & PPN_MASK | V
    }

    #[inline]
    fn decode(raw: u64, level: usize) -> Decoded {
        if raw == 0 {
            return Decoded::Empty;
        }
        let valid = raw & V != 0;
        if !valid && raw & SW_PROTNONE == 0 {
            return Decoded::Unknown;
        }
        if valid && raw & (R | W | X) == 0 {
            return if level > 0 { Decoded::Table(pa_of(raw)) } else { Decoded::Unknown };
        }
        if level > 2 || (valid && raw & (R | W) == W) {
            return Decoded::Unknown;
        }
        // See encode_leaf: R W X U G A D RSW0 map onto PteFlags bits 0..7 by one shift.
        let mut f = PteFlags::from_bits_truncate(((raw >> 1) & 0xff) as u16);
        if !valid {
            f.remove(PteFlags::PERMS);
        }
        let cache = if !PBMT {
            CacheMode::WriteBack
        } else {
            match raw & PBMT_MASK {
                0 => CacheMode::WriteBack,
                PBMT_NC => CacheMode::WriteCombining,
                _ => CacheMode::Uncached,
            }
        };
        Decoded::Leaf(
            pa_of(raw) & !(crate::paging::level_size(level) - 1),
            Attrs { flags: f, cache },
        )
    }
}
