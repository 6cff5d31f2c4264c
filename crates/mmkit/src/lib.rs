//! # mmkit — a Linux-exact virtual-memory subsystem for Rust kernels
//!
//! `mmkit` is `#![no_std]` + `alloc`. A kernel drops it in instead of writing its own VMA
//! list, page-table walker, frame allocator and fork. Every user-visible behaviour (return
//! values, errno, which VMAs split and merge, what `/proc` prints) follows Linux 6.x and is
//! tested against the running host kernel.
//!
//! Read it top-down in the order data flows:
//! syscall ([`space`]) → VMA ([`vma`]) → VMA index ([`vma::index`]) → page tables
//! ([`paging`]) → frames ([`frame`], [`slab`]) → the kernel's hooks ([`platform`]).
#![no_std]
#![forbid(unsafe_op_in_unsafe_fn)]
#![warn(missing_debug_implementations)]

extern crate alloc;
#[cfg(test)]
extern crate std;

pub mod addr;
pub mod config;
pub mod errno;
pub mod fault;
pub mod frame;
pub mod paging;
pub mod platform;
pub mod procfs;
pub mod slab;
pub mod space;
pub mod stats;
pub mod vma;

pub use addr::{PhysAddr, VirtAddr, PAGE_SIZE};
pub use config::MmConfig;
pub use errno::Errno;
pub use space::AddressSpace;
pub use vma::{Backing, VmFlags, Vma};
