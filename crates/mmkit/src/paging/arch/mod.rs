//! The architecture descriptor trait and one module per entry format.

pub mod aarch64;
pub mod loongarch64;
pub mod riscv;
pub mod x86_64;

use super::Attrs;

/// What one raw entry means at a given level.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Decoded {
    /// All zero: nothing here.
    Empty,
    /// Points at the next-level table at this physical address.
    Table(u64),
    /// A leaf (possibly present-but-`PROT_NONE`) mapping the frame at this physical address.
    Leaf(u64, Attrs),
    /// Non-zero but not something mmkit writes (a reserved encoding, or a future swap
    /// entry). Never overwritten by map; skipped by walks.
    Unknown,
}

/// An entry format: a zero-sized descriptor type, so that the engine compiles to straight-line
/// code per format.
///
/// Levels are numbered from the bottom: level 0 holds 4 KiB leaves, level `LEVELS - 1` is the
/// root. Every format uses 512 entries of 8 bytes per table and 4 KiB base pages.
pub trait Arch: Copy + Send + Sync + core::fmt::Debug + 'static {
    /// Name for messages and benchmark labels.
    const NAME: &'static str;
    /// Number of levels (translation covers `12 + 9 * LEVELS` virtual-address bits).
    const LEVELS: usize;
    /// Whether virtual addresses are sign-extended from the top translated bit (x86-64,
    /// RISC-V, LoongArch: a lower and an upper half) or must have all upper bits zero
    /// (AArch64 TTBR0: `[0, 2^48)`).
    const SIGN_EXTENDED: bool;
    /// Width of the physical output address.
    const PA_BITS: u32;
    /// Highest level that may hold a leaf (2 = up to 1 GiB, 1 = up to 2 MiB).
    const MAX_LEAF_LEVEL: usize;

    /// The attributes this format will actually store for `a` (what decoding an encoded leaf
    /// gives back): e.g. `WRITE` implies `READ`, unsupported cache modes become safe ones.
    fn normalize(a: Attrs) -> Attrs;
    /// Encodes a leaf at `level` for the frame at `pa` (aligned to the level's size, inside
    /// `PA_BITS`) with attributes `a` (already normalised).
    fn encode_leaf(pa: u64, a: Attrs, level: usize) -> u64;
    /// Encodes a pointer to a next-level table at `pa`, for an entry at `level` (> 0).
    fn encode_table(pa: u64, level: usize) -> u64;
    /// Decodes a raw entry found at `level`.
    fn decode(raw: u64, level: usize) -> Decoded;
}

/// Number of translated virtual-address bits of `A`.
#[inline]
pub const fn va_bits(levels: usize) -> u32 {
    12 + 9 * levels as u32
}

/// Mask of physical-address bits `[lo, hi)`.
#[inline]
pub(crate) const fn bits(lo: u32, hi: u32) -> u64 {
    ((1u64 << hi) - 1) & !((1u64 << lo) - 1)
}

/// `WRITE` implies `READ` on every format mmkit supports.
#[inline]
pub(crate) fn write_implies_read(mut a: Attrs) -> Attrs {
    use super::PteFlags;
    if a.flags.contains(PteFlags::WRITE) {
        a.flags |= PteFlags::READ;
    }
    a
}

/// `flag` if `raw` has `mask` set (branch-free building block for decoders).
#[inline(always)]
pub(crate) fn flag_if(raw: u64, mask: u64, flag: super::PteFlags) -> super::PteFlags {
    if raw & mask != 0 {
        flag
    } else {
        super::PteFlags::empty()
    }
}
