//! [`PageLayer`]: the page half of an address space behind a trait object, so that
//! `AddressSpace` (not generic) can own one whatever the architecture and host.

use alloc::boxed::Box;
use core::any::Any;
use core::fmt;

use super::{Access, FaultError, FaultOutcome, FaultStats, Host, PageStats, Pages, Rss};
use crate::addr::{PhysAddr, VirtAddr};
use crate::errno::Errno;
use crate::paging::{Arch, PteFlags};
use crate::platform::Asid;
use crate::vma::{VmFlags, Vma};

/// The operations `AddressSpace` needs from its page layer (object-safe). Each mirrors the
/// [`Pages`] method of the same name; see there for the Linux function it stands for.
pub trait PageLayer: fmt::Debug + Send + Sync {
    /// [`Pages::fault`] (shared borrow: mmap_lock held for read).
    fn fault(
        &self,
        vma: &Vma,
        addr: VirtAddr,
        access: Access,
        cpu: usize,
    ) -> Result<FaultOutcome, FaultError>;
    /// [`Pages::zap`].
    fn zap(&mut self, start: u64, end: u64) -> Result<(), Errno>;
    /// [`Pages::protect`].
    fn protect(&mut self, start: u64, end: u64, flags: VmFlags) -> Result<(), Errno>;
    /// [`Pages::move_range`].
    fn move_range(&mut self, old: u64, new: u64, len: u64) -> Result<(), Errno>;
    /// [`Pages::populate`].
    fn populate(&self, vma: &Vma, start: u64, end: u64, write: bool) -> Result<u64, Errno>;
    /// [`Pages::madvise_dontneed`].
    fn madvise_dontneed(&mut self, start: u64, end: u64) -> Result<(), Errno>;
    /// [`Pages::madvise_free`].
    fn madvise_free(&self, start: u64, end: u64) -> Result<(), Errno>;
    /// [`Pages::writeback`].
    fn writeback(&self, start: u64, end: u64) -> Result<u64, Errno>;
    /// An empty page layer for a fork child, tagged `asid`, over the same host
    /// (`mm_alloc()` in `dup_mm()`).
    fn new_child(&self, asid: Asid) -> Result<Box<dyn PageLayer>, Errno>;
    /// [`Pages::fork_into`] for one VMA; `child` must come from [`PageLayer::new_child`] of
    /// this layer (EINVAL otherwise).
    fn fork_into(&mut self, child: &mut dyn PageLayer, vma: &Vma) -> Result<(), Errno>;
    /// [`Pages::teardown`].
    fn teardown(self: Box<Self>);
    /// [`Pages::walk_stats`].
    fn walk_stats(&self, start: u64, end: u64) -> PageStats;
    /// [`Pages::rss`].
    fn rss(&self) -> Rss;
    /// [`Pages::fault_stats`].
    fn fault_stats(&self) -> FaultStats;
    /// [`Pages::pte_pages`].
    fn pte_pages(&self) -> u64;
    /// [`Pages::asid`].
    fn asid(&self) -> Asid;
    /// [`Pages::activate`].
    fn activate(&self, cpu: usize);
    /// What the MMU would find for `va`: the physical address and the leaf's flags
    /// (`None` if nothing is mapped).
    fn translate(&self, va: u64) -> Option<(PhysAddr, PteFlags)>;
    /// Physical address of the root table (what the MMU loads into CR3 / `satp` / `TTBR0`).
    fn root(&self) -> PhysAddr;
    /// This layer as `Any` (for [`PageLayer::fork_into`] to find the concrete child type).
    fn as_any_mut(&mut self) -> &mut dyn Any;
}

impl<A, H> PageLayer for Pages<A, H>
where
    A: Arch + 'static,
    H: Host + Clone + Send + Sync + 'static,
    Pages<A, H>: Send + Sync,
{
    fn fault(
        &self,
        vma: &Vma,
        addr: VirtAddr,
        access: Access,
        cpu: usize,
    ) -> Result<FaultOutcome, FaultError> {
        Pages::fault(self, vma, addr, access, cpu)
    }
    fn zap(&mut self, start: u64, end: u64) -> Result<(), Errno> {
        Pages::zap(self, start, end)
    }
    fn protect(&mut self, start: u64, end: u64, flags: VmFlags) -> Result<(), Errno> {
        Pages::protect(self, start, end, flags)
    }
    fn move_range(&mut self, old: u64, new: u64, len: u64) -> Result<(), Errno> {
        Pages::move_range(self, old, new, len)
    }
    fn populate(&self, vma: &Vma, start: u64, end: u64, write: bool) -> Result<u64, Errno> {
        Pages::populate(self, vma, start, end, write)
    }
    fn madvise_dontneed(&mut self, start: u64, end: u64) -> Result<(), Errno> {
        Pages::madvise_dontneed(self, start, end)
    }
    fn madvise_free(&self, start: u64, end: u64) -> Result<(), Errno> {
        Pages::madvise_free(self, start, end)
    }
    fn writeback(&self, start: u64, end: u64) -> Result<u64, Errno> {
        Pages::writeback(self, start, end)
    }
    fn new_child(&self, asid: Asid) -> Result<Box<dyn PageLayer>, Errno> {
        let p = Pages::<A, H>::new(self.host().clone(), asid).map_err(|_| Errno::ENOMEM)?;
        Ok(Box::new(p))
    }
    fn fork_into(&mut self, child: &mut dyn PageLayer, vma: &Vma) -> Result<(), Errno> {
        let child = child.as_any_mut().downcast_mut::<Pages<A, H>>().ok_or(Errno::EINVAL)?;
        Pages::fork_into(self, child, vma)
    }
    fn teardown(self: Box<Self>) {
        Pages::teardown(*self)
    }
    fn walk_stats(&self, start: u64, end: u64) -> PageStats {
        Pages::walk_stats(self, start, end)
    }
    fn rss(&self) -> Rss {
        Pages::rss(self)
    }
    fn fault_stats(&self) -> FaultStats {
        Pages::fault_stats(self)
    }
    fn pte_pages(&self) -> u64 {
        Pages::pte_pages(self)
    }
    fn asid(&self) -> Asid {
        Pages::asid(self)
    }
    fn activate(&self, cpu: usize) {
        Pages::activate(self, cpu)
    }
    fn translate(&self, va: u64) -> Option<(PhysAddr, PteFlags)> {
        self.table.query(VirtAddr(va)).ok().map(|t| (t.pa, t.leaf.attrs.flags))
    }
    fn root(&self) -> PhysAddr {
        self.table.root()
    }
    fn as_any_mut(&mut self) -> &mut dyn Any {
        self
    }
}
