//! [`PhysMemory`]: the machine's physical memory, one page-aligned host buffer.

use std::alloc::{alloc_zeroed, dealloc, Layout};
use std::fmt;
use std::ptr::NonNull;
use std::sync::atomic::{AtomicU64, AtomicU8, Ordering};

use mmkit::platform::PhysAccess;
use mmkit::{PhysAddr, PAGE_SIZE};

/// An access outside physical memory (the hardware would raise a bus error / machine check).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OutOfBounds {
    /// First physical address of the offending access.
    pub pa: PhysAddr,
    /// Its length in bytes.
    pub len: u64,
}

/// Physical memory `[0, size)` backed by one zero-filled, 4 KiB-aligned host allocation.
///
/// Several CPUs (host threads) and the kernel under test access it at once, so the
/// simulator's own accessors go through atomics (relaxed, like plain loads and stores on the
/// simulated hardware): a racing simulated access is then well-defined in Rust, as it is on
/// a real machine. Page-table entries are read and updated as `AtomicU64`, the same view the
/// page-table engine uses through [`PhysAccess`].
pub struct PhysMemory {
    base: NonNull<u8>,
    size: u64,
}

// SAFETY: the buffer is only ever accessed through atomics (here) or through raw pointers
// handed out by `phys_to_ptr`, whose users follow mmkit's own synchronisation; the pointer
// itself is never reallocated while `self` lives.
unsafe impl Send for PhysMemory {}
// SAFETY: as above; `&PhysMemory` gives no unsynchronised access to the contents.
unsafe impl Sync for PhysMemory {}

impl fmt::Debug for PhysMemory {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PhysMemory").field("size", &self.size).finish()
    }
}

impl PhysMemory {
    /// `size` bytes of zeroed physical memory (rounded up to whole pages); `None` if the
    /// size is zero, does not fit the host's address space, or the host is out of memory.
    pub fn new(size: u64) -> Option<Self> {
        let size = mmkit::addr::page_align_up(size)?;
        if size == 0 {
            return None;
        }
        let layout =
            Layout::from_size_align(usize::try_from(size).ok()?, PAGE_SIZE as usize).ok()?;
        // SAFETY: `layout` has non-zero size.
        let p = unsafe { alloc_zeroed(layout) };
        Some(PhysMemory { base: NonNull::new(p)?, size })
    }

    /// Bytes of physical memory.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// Number of 4 KiB frames.
    pub fn frames(&self) -> u64 {
        self.size / PAGE_SIZE
    }

    /// True if `[pa, pa + len)` lies inside memory.
    pub fn contains(&self, pa: PhysAddr, len: u64) -> bool {
        pa.0.checked_add(len).is_some_and(|end| end <= self.size)
    }

    fn check(&self, pa: PhysAddr, len: u64) -> Result<(), OutOfBounds> {
        if self.contains(pa, len) {
            Ok(())
        } else {
            Err(OutOfBounds { pa, len })
        }
    }

    fn byte(&self, off: u64) -> &AtomicU8 {
        debug_assert!(off < self.size);
        // SAFETY: callers checked `off < size`; the buffer lives as long as `self` and is
        // only accessed atomically through these references.
        unsafe { &*(self.base.as_ptr().add(off as usize) as *const AtomicU8) }
    }

    fn word(&self, off: u64) -> &AtomicU64 {
        debug_assert!(off & 7 == 0 && off + 8 <= self.size);
        // SAFETY: callers checked bounds and 8-byte alignment (the base is page-aligned);
        // the buffer lives as long as `self`.
        unsafe { &*(self.base.as_ptr().add(off as usize) as *const AtomicU64) }
    }

    /// The 8-byte word at `pa` as an atomic (a page-table entry), if it is 8-byte aligned
    /// and inside memory.
    pub fn entry(&self, pa: PhysAddr) -> Option<&AtomicU64> {
        if pa.0 & 7 != 0 || !self.contains(pa, 8) {
            return None;
        }
        Some(self.word(pa.0))
    }

    /// Copies `buf.len()` bytes from `pa`.
    pub fn read(&self, pa: PhysAddr, buf: &mut [u8]) -> Result<(), OutOfBounds> {
        self.check(pa, buf.len() as u64)?;
        let mut off = pa.0;
        let mut rest = buf;
        while !rest.is_empty() {
            if off & 7 == 0 && rest.len() >= 8 {
                let v = self.word(off).load(Ordering::Relaxed).to_le_bytes();
                rest[..8].copy_from_slice(&v);
                rest = &mut rest[8..];
                off += 8;
            } else {
                rest[0] = self.byte(off).load(Ordering::Relaxed);
                rest = &mut rest[1..];
                off += 1;
            }
        }
        Ok(())
    }

    /// Copies `data` to `pa`.
    pub fn write(&self, pa: PhysAddr, data: &[u8]) -> Result<(), OutOfBounds> {
        self.check(pa, data.len() as u64)?;
        let mut off = pa.0;
        let mut rest = data;
        while !rest.is_empty() {
            if off & 7 == 0 && rest.len() >= 8 {
                let mut w = [0u8; 8];
                w.copy_from_slice(&rest[..8]);
                self.word(off).store(u64::from_le_bytes(w), Ordering::Relaxed);
                rest = &rest[8..];
                off += 8;
            } else {
                self.byte(off).store(rest[0], Ordering::Relaxed);
                rest = &rest[1..];
                off += 1;
            }
        }
        Ok(())
    }

    /// Little-endian `u64` at `pa` (any alignment).
    pub fn read_u64(&self, pa: PhysAddr) -> Result<u64, OutOfBounds> {
        let mut b = [0u8; 8];
        self.read(pa, &mut b)?;
        Ok(u64::from_le_bytes(b))
    }

    /// Stores a little-endian `u64` at `pa` (any alignment).
    pub fn write_u64(&self, pa: PhysAddr, v: u64) -> Result<(), OutOfBounds> {
        self.write(pa, &v.to_le_bytes())
    }

    /// Sets `[pa, pa + len)` to `byte`.
    pub fn fill(&self, pa: PhysAddr, len: u64, byte: u8) -> Result<(), OutOfBounds> {
        self.check(pa, len)?;
        let word = u64::from_ne_bytes([byte; 8]);
        let mut off = pa.0;
        let end = pa.0 + len;
        while off < end {
            if off & 7 == 0 && end - off >= 8 {
                self.word(off).store(word, Ordering::Relaxed);
                off += 8;
            } else {
                self.byte(off).store(byte, Ordering::Relaxed);
                off += 1;
            }
        }
        Ok(())
    }
}

impl Drop for PhysMemory {
    fn drop(&mut self) {
        // The layout was valid when the buffer was allocated with it.
        if let Ok(layout) = Layout::from_size_align(self.size as usize, PAGE_SIZE as usize) {
            // SAFETY: `base` came from `alloc_zeroed(layout)` and is freed once.
            unsafe { dealloc(self.base.as_ptr(), layout) }
        }
    }
}

impl PhysAccess for PhysMemory {
    /// The host address of `pa`. Out-of-range addresses give a null pointer (the caller's
    /// contract is to pass frames it allocated from this memory; a kernel bug then crashes
    /// loudly instead of scribbling on the host heap).
    fn phys_to_ptr(&self, pa: PhysAddr) -> *mut u8 {
        if pa.0 < self.size {
            // SAFETY: `pa < size`, so the result stays inside the allocation.
            unsafe { self.base.as_ptr().add(pa.0 as usize) }
        } else {
            std::ptr::null_mut()
        }
    }
}
