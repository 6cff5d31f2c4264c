//! The few traits a kernel implements to host mmkit.
//!
//! All are instance traits taking `&self` — no globals — so several machines (or several
//! simulated machines in one test process) can coexist.

use core::fmt;

use crate::addr::{PhysAddr, VirtAddr};
use crate::paging::Flush;

/// Access to physical memory: where a physical address can be read and written from the
/// kernel (Linux's direct map, `__va()`); in the simulator, an offset into a host buffer.
pub trait PhysAccess {
    /// A pointer through which the byte at `pa` can be accessed. Valid for the whole frame
    /// containing `pa` for as long as the frame is allocated.
    fn phys_to_ptr(&self, pa: PhysAddr) -> *mut u8;
}

/// Lets a shared reference to a memory serve several users (a parent page table and its
/// fork child, a frame allocator and the tables it feeds).
impl<T: PhysAccess + ?Sized> PhysAccess for &T {
    #[inline]
    fn phys_to_ptr(&self, pa: PhysAddr) -> *mut u8 {
        (**self).phys_to_ptr(pa)
    }
}

/// The current CPU, for per-CPU caches and TLB bookkeeping.
pub trait CpuId {
    /// Index of the CPU this code runs on, `< cpu_count()`.
    fn current_cpu(&self) -> usize;
    /// Number of CPUs.
    fn cpu_count(&self) -> usize;
}

/// An address-space identifier as the TLB tags it: x86 PCID (12 bits), RISC-V `satp.ASID`
/// (16 bits), AArch64 `TTBR0_EL1.ASID` (16 bits), LoongArch `ASID.ASID` (10 bits). The kernel
/// chooses how many it uses; values above the hardware width are the kernel's bug.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct Asid(pub u16);

/// A set of CPUs (Linux's `struct cpumask`; `mm_cpumask(mm)` names the CPUs that may hold
/// an address space's translations and so must receive its shootdowns).
///
/// Fixed size, no allocation: up to [`CpuMask::MAX_CPUS`] CPUs. Operations on a CPU number
/// outside that range do nothing (insert) or answer `false` (contains): never a panic.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct CpuMask {
    words: [u64; CpuMask::WORDS],
}

impl CpuMask {
    const WORDS: usize = 4;
    /// Highest CPU count a mask can describe.
    pub const MAX_CPUS: usize = Self::WORDS * 64;

    /// No CPU.
    pub const fn empty() -> Self {
        CpuMask { words: [0; Self::WORDS] }
    }

    /// CPUs `0..n` (clamped to [`CpuMask::MAX_CPUS`]), Linux's `cpu_online_mask` for `n`
    /// online CPUs.
    pub fn first(n: usize) -> Self {
        let mut m = Self::empty();
        for cpu in 0..n.min(Self::MAX_CPUS) {
            m.insert(cpu);
        }
        m
    }

    /// Just `cpu` (empty if out of range).
    pub fn single(cpu: usize) -> Self {
        let mut m = Self::empty();
        m.insert(cpu);
        m
    }

    /// Adds `cpu`; returns false (and changes nothing) if it is out of range.
    pub fn insert(&mut self, cpu: usize) -> bool {
        match self.words.get_mut(cpu / 64) {
            Some(w) => {
                *w |= 1 << (cpu % 64);
                true
            }
            None => false,
        }
    }

    /// Removes `cpu`.
    pub fn remove(&mut self, cpu: usize) {
        if let Some(w) = self.words.get_mut(cpu / 64) {
            *w &= !(1 << (cpu % 64));
        }
    }

    /// True if `cpu` is in the set.
    pub fn contains(&self, cpu: usize) -> bool {
        self.words.get(cpu / 64).is_some_and(|w| w & (1 << (cpu % 64)) != 0)
    }

    /// True if no CPU is in the set.
    pub fn is_empty(&self) -> bool {
        self.words.iter().all(|&w| w == 0)
    }

    /// Number of CPUs in the set.
    pub fn count(&self) -> usize {
        self.words.iter().map(|w| w.count_ones() as usize).sum()
    }

    /// Both sets.
    pub fn union(mut self, other: CpuMask) -> CpuMask {
        for (a, b) in self.words.iter_mut().zip(other.words) {
            *a |= b;
        }
        self
    }

    /// The CPUs in the set, ascending.
    pub fn iter(&self) -> impl Iterator<Item = usize> + '_ {
        (0..Self::MAX_CPUS).filter(move |&c| self.contains(c))
    }
}

impl fmt::Debug for CpuMask {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_set().entries(self.iter()).finish()
    }
}

/// TLB maintenance on a set of CPUs: what the kernel provides as `flush_tlb_range()`,
/// `flush_tlb_mm()` and `flush_tlb_all()` (Linux's IPI shootdowns on x86, `TLBI` broadcast on
/// AArch64, `SBI remote_sfence_vma_asid` on RISC-V, `INVTLB` on LoongArch).
///
/// Each call returns only when no CPU in `cpus` can use an invalidated translation any more
/// (Linux's `flush_tlb_mm_range()` waits for the IPIs; `TLBI` is followed by `DSB ISH`).
pub trait TlbFlush {
    /// Invalidates the translations of `[start, end)` tagged with `asid`, and global ones in
    /// that range, on every CPU in `cpus` (`flush_tlb_range()`; x86 `INVLPG` per page).
    fn flush_range(&self, cpus: &CpuMask, asid: Asid, start: VirtAddr, end: VirtAddr);
    /// Invalidates every non-global translation tagged with `asid` on `cpus`
    /// (`flush_tlb_mm()`; x86 `INVPCID` single-context).
    fn flush_asid(&self, cpus: &CpuMask, asid: Asid);
    /// Invalidates every translation, global ones included, on `cpus` (`flush_tlb_all()`).
    fn flush_all(&self, cpus: &CpuMask);

    /// Performs the invalidation a page-table operation owes. A token that names a global
    /// translation is flushed everywhere (global entries match every ASID).
    fn flush(&self, cpus: &CpuMask, asid: Asid, token: Flush) {
        if let Some((start, end)) = token.range() {
            if token.global() {
                self.flush_all(cpus);
            } else {
                self.flush_range(cpus, asid, VirtAddr(start), VirtAddr(end));
            }
        }
    }
}

impl<T: TlbFlush + ?Sized> TlbFlush for &T {
    fn flush_range(&self, cpus: &CpuMask, asid: Asid, start: VirtAddr, end: VirtAddr) {
        (**self).flush_range(cpus, asid, start, end)
    }
    fn flush_asid(&self, cpus: &CpuMask, asid: Asid) {
        (**self).flush_asid(cpus, asid)
    }
    fn flush_all(&self, cpus: &CpuMask) {
        (**self).flush_all(cpus)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::vec::Vec;

    #[test]
    fn cpu_mask_basics() {
        let mut m = CpuMask::empty();
        assert!(m.is_empty());
        assert!(m.insert(0) && m.insert(63) && m.insert(64) && m.insert(255));
        assert!(!m.insert(256), "out of range is refused, not a panic");
        assert!(!m.contains(256) && !m.contains(usize::MAX));
        assert_eq!(m.count(), 4);
        assert_eq!(m.iter().collect::<Vec<_>>(), [0, 63, 64, 255]);
        m.remove(63);
        m.remove(1000);
        assert_eq!(m.count(), 3);
        assert_eq!(CpuMask::first(3).iter().collect::<Vec<_>>(), [0, 1, 2]);
        assert_eq!(CpuMask::first(10_000).count(), CpuMask::MAX_CPUS);
        assert_eq!(CpuMask::single(5).union(CpuMask::single(7)).count(), 2);
        assert!(CpuMask::single(300).is_empty());
        assert_eq!(std::format!("{:?}", CpuMask::first(2)), "{0, 1}");
    }
}
