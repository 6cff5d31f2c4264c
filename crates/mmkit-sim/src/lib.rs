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

pub mod machine;
pub mod mmu;
pub mod phys;
pub mod stopgap;
pub mod tlb;

pub use machine::{
    AccessError, AsContext, CpuRef, CpuStats, FaultHandler, FnHandler, Machine, MachineConfig,
    MachineError, NoHandler, Unhandled, MAX_FAULT_RETRIES,
};
pub use mmu::{
    translate, AccessKind, ArchKind, Fault, FaultKind, MmuConfig, Perm, Privilege, Walk,
};
pub use phys::{OutOfBounds, PhysMemory};
pub use stopgap::StopgapFrames;
pub use tlb::{Tlb, TlbEntry};
