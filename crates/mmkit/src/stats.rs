//! Counters an address space keeps about itself.

/// Per-address-space statistics.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SpaceStats {
    /// mmap calls (successful or not).
    pub mmap_calls: u64,
    /// munmap calls.
    pub munmap_calls: u64,
    /// mprotect calls.
    pub mprotect_calls: u64,
    /// mremap calls.
    pub mremap_calls: u64,
    /// brk calls.
    pub brk_calls: u64,
    /// madvise calls.
    pub madvise_calls: u64,
    /// VMA merges performed: each VMA (or new range) absorbed by a neighbour counts once, so
    /// a three-way merge (prev + range + next) counts 2.
    pub merges: u64,
    /// VMA splits performed (`__split_vma()` calls that succeeded).
    pub splits: u64,
    /// Bytes currently mapped (Linux's `total_vm` in bytes); kept in O(1) per change from
    /// the incrementally maintained `total_vm`.
    pub mapped_bytes: u64,
    /// Highest VMA count ever reached.
    pub peak_vma_count: u64,
}
