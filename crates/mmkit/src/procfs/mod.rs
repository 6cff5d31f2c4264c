//! Linux's `/proc/<pid>` memory files, byte-identical to Linux 6.18 (x86-64):
//! `maps` ([`maps`], fs/proc/task_mmu.c `show_map_vma()`), `smaps` and `smaps_rollup`
//! ([`smaps`], `show_smap()`/`show_smaps_rollup()`) and the `Vm*`/`Rss*` lines of `status`
//! ([`status`], `task_mem()`).
//!
//! The text is computed from an [`crate::AddressSpace`] plus per-page figures supplied by the
//! caller (the page layer), so the format and every derived field follow Linux's rules
//! whatever produces the numbers.

pub mod maps;
pub mod smaps;
pub mod status;

pub use maps::*;
pub use smaps::*;
pub use status::*;
