//! Tunables of an address space, with Linux x86-64 defaults.
//!
//! Everything Linux reads from sysctls, rlimits, capabilities and the machine's size lives
//! here, so a kernel (or `mmkit replay`, from the host's `/proc/sys/vm`) can set each one.

use crate::addr::PAGE_SIZE;

/// `RLIM_INFINITY`.
pub const RLIM_INFINITY: u64 = u64::MAX;

/// Linux's `vm.overcommit_memory` modes (mm/util.c `__vm_enough_memory`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OvercommitMode {
    /// 0: heuristic — refuse only a single request larger than RAM + swap.
    Heuristic,
    /// 1: always succeed.
    Always,
    /// 2: strict — commit limit = swap + RAM × ratio / 100.
    Never,
}

/// Configuration of one address space.
#[derive(Clone, Debug)]
pub struct MmConfig {
    /// Highest user address + 1 (x86-64 4-level: `0x7ffffffff000`, arch/x86 `TASK_SIZE_MAX`).
    pub task_size: u64,
    /// `vm.mmap_min_addr`: MAP_FIXED below it needs CAP_SYS_RAWIO (security/min_addr.c).
    pub mmap_min_addr: u64,
    /// `CONFIG_LSM_MMAP_MIN_ADDR`-derived security minimum, used by `round_hint_to_min` for
    /// non-fixed hints (`dac_mmap_min_addr` vs `mmap_min_addr` in Linux; 65536 on our hosts).
    pub hint_min_addr: u64,
    /// Top of the top-down mmap area (`mm->mmap_base`); default computed as
    /// arch/x86/mm/mmap.c `mmap_base()` does without randomisation.
    pub mmap_base: u64,
    /// Where bottom-up search starts when top-down fails (`TASK_UNMAPPED_BASE`, TASK_SIZE/3).
    pub legacy_mmap_base: u64,
    /// `stack_guard_gap` in bytes (256 pages).
    pub stack_guard_gap: u64,
    /// `vm.max_map_count`.
    pub max_map_count: usize,
    /// RLIMIT_MEMLOCK soft limit in bytes.
    pub rlimit_memlock: u64,
    /// RLIMIT_DATA soft limit in bytes.
    pub rlimit_data: u64,
    /// RLIMIT_DATA hard limit in bytes (`may_expand_vm()`'s Valgrind workaround lets a soft
    /// limit of 0 through up to this).
    pub rlimit_data_max: u64,
    /// RLIMIT_AS soft limit in bytes.
    pub rlimit_as: u64,
    /// RLIMIT_STACK soft limit in bytes.
    pub rlimit_stack: u64,
    /// The process may map below `mmap_min_addr` (CAP_SYS_RAWIO).
    pub cap_sys_rawio: bool,
    /// The process may lock memory beyond RLIMIT_MEMLOCK (CAP_IPC_LOCK).
    pub cap_ipc_lock: bool,
    /// `vm.overcommit_memory`.
    pub overcommit: OvercommitMode,
    /// `vm.overcommit_ratio` (percent), used in strict mode.
    pub overcommit_ratio: u64,
    /// Machine RAM in pages, for overcommit accounting.
    pub total_ram_pages: u64,
    /// Swap in pages, for overcommit accounting.
    pub total_swap_pages: u64,
    /// THP is enabled (`always` or `madvise`): MAP_STACK then sets VM_NOHUGEPAGE (6.7+), and
    /// anonymous mappings whose length is a multiple of 2 MiB are 2 MiB-aligned.
    pub thp_enabled: bool,
    /// File mappings are placed by `thp_get_unmapped_area()` (the filesystem's
    /// `get_unmapped_area` is THP-aware, as ext4/xfs/tmpfs-with-huge are): a file mapping
    /// whose offset range covers a whole 2 MiB block gets an address congruent to its offset
    /// modulo 2 MiB. On by default: the host's ext4 does this (a 4 MiB file mapping lands
    /// 2 MiB-aligned on Linux 6.18).
    pub file_thp_align: bool,
}

/// x86-64 4-level `TASK_SIZE`: 2^47 minus one guard page.
pub const X86_64_TASK_SIZE: u64 = (1 << 47) - PAGE_SIZE;

impl MmConfig {
    /// `mmap_base()` of arch/x86/mm/mmap.c without randomisation: the stack rlimit plus the
    /// guard gap, clamped to [128 MiB, 5/6 of TASK_SIZE], below TASK_SIZE.
    pub fn compute_mmap_base(task_size: u64, rlimit_stack: u64, stack_guard_gap: u64) -> u64 {
        const SIZE_128M: u64 = 128 << 20;
        let gap_min = SIZE_128M;
        let gap_max = (task_size / 6) * 5;
        let pad = stack_guard_gap; // + stack_maxrandom_size, which is 0 without ASLR
        let mut gap = rlimit_stack.saturating_add(pad);
        if gap < gap_min {
            gap = gap_min;
        } else if gap > gap_max {
            gap = gap_max;
        }
        crate::addr::page_align_wrapping(task_size - gap)
    }
}

impl Default for MmConfig {
    fn default() -> Self {
        let task_size = X86_64_TASK_SIZE;
        let stack_guard_gap = 256 * PAGE_SIZE;
        let rlimit_stack = 8 << 20;
        MmConfig {
            task_size,
            mmap_min_addr: 4096,
            hint_min_addr: 65536,
            mmap_base: Self::compute_mmap_base(task_size, rlimit_stack, stack_guard_gap),
            legacy_mmap_base: crate::addr::page_align_wrapping(task_size / 3),
            stack_guard_gap,
            max_map_count: 65530,
            rlimit_memlock: 8 << 20,
            rlimit_data: RLIM_INFINITY,
            rlimit_data_max: RLIM_INFINITY,
            rlimit_as: RLIM_INFINITY,
            rlimit_stack,
            cap_sys_rawio: false,
            cap_ipc_lock: false,
            overcommit: OvercommitMode::Heuristic,
            overcommit_ratio: 50,
            total_ram_pages: (16u64 << 30) / PAGE_SIZE,
            total_swap_pages: 0,
            thp_enabled: true,
            file_thp_align: true,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_mmap_base_matches_linux_without_aslr() {
        // Observed in every shared trace: ld.so ends at 0x7ffff7fff000 = mmap_base.
        assert_eq!(MmConfig::default().mmap_base, 0x7fff_f7ff_f000);
        assert_eq!(MmConfig::default().task_size, 0x7fff_ffff_f000);
    }
}
