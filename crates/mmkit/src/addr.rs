//! Virtual and physical addresses, page numbers and page-aligned ranges.
//!
//! All arithmetic that user space can influence is checked: an `addr + len` that wraps is
//! reported as `None` (and turned into Linux's errno by the caller), never undefined
//! behaviour or a panic.

use core::fmt;

/// Bits in a base page offset (4 KiB pages on every architecture mmkit supports).
pub const PAGE_SHIFT: u32 = 12;
/// Size of a base page in bytes.
pub const PAGE_SIZE: u64 = 1 << PAGE_SHIFT;
/// Mask that clears the in-page offset (Linux's `PAGE_MASK`).
pub const PAGE_MASK: u64 = !(PAGE_SIZE - 1);

/// True if `x` is a multiple of [`PAGE_SIZE`] (Linux's `PAGE_ALIGNED`).
#[inline]
pub const fn is_page_aligned(x: u64) -> bool {
    x & (PAGE_SIZE - 1) == 0
}

/// Rounds down to a page boundary.
#[inline]
pub const fn page_align_down(x: u64) -> u64 {
    x & PAGE_MASK
}

/// Linux's `PAGE_ALIGN`: rounds up to a page boundary, wrapping to 0 exactly as the kernel's
/// macro does (callers that must treat wrap as an error check for 0, as `do_mmap` does).
#[inline]
pub const fn page_align_wrapping(x: u64) -> u64 {
    x.wrapping_add(PAGE_SIZE - 1) & PAGE_MASK
}

/// Rounds up to a page boundary, or `None` when that overflows.
#[inline]
pub const fn page_align_up(x: u64) -> Option<u64> {
    match x.checked_add(PAGE_SIZE - 1) {
        Some(v) => Some(v & PAGE_MASK),
        None => None,
    }
}

macro_rules! address_type {
    ($(#[$m:meta])* $name:ident) => {
        $(#[$m])*
        #[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
        #[repr(transparent)]
        pub struct $name(pub u64);

        impl $name {
            /// The raw address.
            #[inline]
            pub const fn as_u64(self) -> u64 {
                self.0
            }
            /// True if page-aligned.
            #[inline]
            pub const fn is_aligned(self) -> bool {
                is_page_aligned(self.0)
            }
            /// Rounds down to its page.
            #[inline]
            pub const fn align_down(self) -> Self {
                Self(page_align_down(self.0))
            }
            /// Adds `n` bytes, `None` on overflow.
            #[inline]
            pub const fn checked_add(self, n: u64) -> Option<Self> {
                match self.0.checked_add(n) {
                    Some(v) => Some(Self(v)),
                    None => None,
                }
            }
            /// Offset inside the page.
            #[inline]
            pub const fn page_offset(self) -> u64 {
                self.0 & (PAGE_SIZE - 1)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, concat!(stringify!($name), "({:#x})"), self.0)
            }
        }
        impl fmt::LowerHex for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::LowerHex::fmt(&self.0, f)
            }
        }
    };
}

address_type!(
    /// A user or kernel virtual address.
    VirtAddr
);
address_type!(
    /// A physical address.
    PhysAddr
);

/// A physical frame number (physical address >> [`PAGE_SHIFT`]).
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Debug)]
#[repr(transparent)]
pub struct Pfn(pub u64);

impl Pfn {
    /// The frame holding `pa`.
    #[inline]
    pub const fn containing(pa: PhysAddr) -> Self {
        Pfn(pa.0 >> PAGE_SHIFT)
    }
    /// The physical address of the frame's first byte.
    #[inline]
    pub const fn addr(self) -> PhysAddr {
        PhysAddr(self.0 << PAGE_SHIFT)
    }
}

/// A half-open, page-aligned range of virtual addresses `[start, end)`, never empty and never
/// wrapping: constructing one validates both.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct PageRange {
    start: u64,
    end: u64,
}

impl PageRange {
    /// `[start, end)`, if both are page-aligned and `start < end`.
    pub const fn new(start: u64, end: u64) -> Option<Self> {
        if is_page_aligned(start) && is_page_aligned(end) && start < end {
            Some(Self { start, end })
        } else {
            None
        }
    }
    /// `[start, start + len)` with `len` rounded up to pages; `None` if unaligned, empty or
    /// wrapping.
    pub const fn from_start_len(start: u64, len: u64) -> Option<Self> {
        let len = match page_align_up(len) {
            Some(l) => l,
            None => return None,
        };
        match start.checked_add(len) {
            Some(end) => Self::new(start, end),
            None => None,
        }
    }
    /// First byte.
    #[inline]
    pub const fn start(&self) -> u64 {
        self.start
    }
    /// One past the last byte.
    #[inline]
    pub const fn end(&self) -> u64 {
        self.end
    }
    /// Length in bytes.
    #[inline]
    pub const fn len(&self) -> u64 {
        self.end - self.start
    }
    /// Never true; present for API symmetry.
    #[inline]
    pub const fn is_empty(&self) -> bool {
        false
    }
    /// Number of pages.
    #[inline]
    pub const fn pages(&self) -> u64 {
        self.len() >> PAGE_SHIFT
    }
    /// True if `addr` lies inside.
    #[inline]
    pub const fn contains(&self, addr: u64) -> bool {
        self.start <= addr && addr < self.end
    }
    /// True if the two ranges share at least one byte.
    #[inline]
    pub const fn overlaps(&self, other: &PageRange) -> bool {
        self.start < other.end && other.start < self.end
    }
}

impl fmt::Debug for PageRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "[{:#x}, {:#x})", self.start, self.end)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn align_helpers() {
        assert_eq!(page_align_up(1), Some(PAGE_SIZE));
        assert_eq!(page_align_up(u64::MAX), None);
        assert_eq!(page_align_wrapping(u64::MAX - 100), 0);
        assert_eq!(page_align_down(0x1fff), 0x1000);
    }

    #[test]
    fn ranges_reject_bad_input() {
        assert!(PageRange::new(0x1000, 0x1000).is_none());
        assert!(PageRange::new(0x1001, 0x2000).is_none());
        assert!(PageRange::from_start_len(PAGE_MASK, PAGE_SIZE).is_none());
        let r = PageRange::from_start_len(0x1000, 1).unwrap();
        assert_eq!((r.start(), r.end(), r.pages()), (0x1000, 0x2000, 1));
    }
}
