//! A hosted machine for mmkit: physical memory is a host buffer, a software MMU walks the real
//! page-table bytes, per-CPU TLBs keep stale entries until the core flushes them.
//!
//! * [`PhysMemory`] — physical memory `[0, size)`, implementing
//!   [`mmkit::platform::PhysAccess`].
//! * [`mmu`] — one walker per page-table format, written from the manuals (not from
//!   `mmkit::paging`), setting accessed/dirty bits as the hardware does.
//! * [`Tlb`] — per-CPU, ASID-tagged, flushed only through [`mmkit::platform::TlbFlush`],
//!   which [`Machine`] implements (and counts per CPU).
//! * [`Machine`] / [`CpuRef`] — loads, stores and fetches: TLB → walk → [`FaultHandler`] →
//!   retry.
//! * [`StopgapFrames`] — a temporary frame source for page tables and test pages, until the
//!   simulator uses `mmkit::frame`.
//!
//! ```
//! use mmkit::paging::{Attrs, PageSize, PageTable, PteFlags, X86_64};
//! use mmkit::platform::{Asid, TlbFlush};
//! use mmkit::VirtAddr;
//! use mmkit_sim::{AsContext, FaultKind, Machine, MachineConfig};
//!
//! let m = Machine::new(MachineConfig::default()).unwrap(); // x86-64 4-level, 2 CPUs
//! let frames = m.stopgap_frames();
//! let mut pt = PageTable::<X86_64, _>::new(&frames).unwrap();
//! let page = frames.alloc_frame().unwrap();
//! let rw = Attrs::new(PteFlags::READ | PteFlags::WRITE | PteFlags::USER);
//! pt.map(VirtAddr(0x40_0000), page, PageSize::Size4K, rw).unwrap();
//!
//! let ctx = AsContext { root: pt.root(), asid: Asid(1) };
//! let mut cpu = m.cpu(0).unwrap();
//! cpu.store_u64(&ctx, VirtAddr(0x40_0008), 42).unwrap();
//! assert_eq!(m.phys().read_u64(mmkit::PhysAddr(page.0 + 8)).unwrap(), 42);
//!
//! let (_, flush) = pt.unmap_page(VirtAddr(0x40_0000)).unwrap();
//! m.flush(&m.all_cpus(), ctx.asid, flush); // without this, CPU 0 would still reach `page`
//! let err = cpu.load_u64(&ctx, VirtAddr(0x40_0008)).unwrap_err();
//! assert_eq!(err.fault().kind, FaultKind::NotPresent);
//! ```

#![warn(missing_docs, missing_debug_implementations)]

pub mod kernel;
pub mod machine;
pub mod mmu;
pub mod phys;
pub mod process;
pub mod stopgap;
pub mod tlb;

pub use kernel::{
    BootError, KernelRef, MemFiles, SimCpus, SimFrames, SimKernel, SimPhys, SpaceHandler,
};
pub use machine::{
    AccessError, AsContext, CpuRef, CpuStats, FaultHandler, FnHandler, Machine, MachineConfig,
    MachineError, NoHandler, Unhandled, MAX_FAULT_RETRIES,
};
pub use mmu::{
    translate, AccessKind, ArchKind, Fault, FaultKind, MmuConfig, Perm, Privilege, Walk,
};
pub use phys::{OutOfBounds, PhysMemory};
pub use process::{read_space, write_space, Pid, ProcInfo, ProcState, ProcessTable, SharedSpace};
pub use stopgap::StopgapFrames;
pub use tlb::{Tlb, TlbEntry};
