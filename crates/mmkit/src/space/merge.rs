//! The merge and split rules in one place: vma_merge_new_range(), vma_merge_existing_range()
//! and vma_modify() of mm/vma.c, and split_vma().
//!
//! CONTRACT (used by every syscall file): the `pub(crate)` functions below keep these
//! signatures. Bodies are placeholders until the merge engine lands.

use super::AddressSpace;
use crate::errno::Errno;
use crate::vma::{VmFlags, Vma};

impl AddressSpace {
    /// Linux's `vma_modify()`: applies `change` to `[start, end)`, which lies inside the VMA
    /// starting at `vma_start`. Splits off the parts outside the range first (each split
    /// fails with ENOMEM at `map_count >= max_map_count`, and splits already made stay, as in
    /// Linux), then merges the result with its neighbours where the merge rules allow.
    /// Returns the start of the VMA that now holds `start`.
    pub(crate) fn vma_modify(
        &mut self,
        vma_start: u64,
        start: u64,
        end: u64,
        change: &mut dyn FnMut(&mut Vma),
    ) -> Result<u64, Errno> {
        let _ = (vma_start, start, end, change);
        Err(Errno::ENOSYS)
    }

    /// Linux's `do_vmi_munmap()` on an already validated, page-aligned `[start, end)`:
    /// removes every VMA part inside, splitting at the ends; ENOMEM when one VMA would be cut
    /// at both ends while `map_count >= max_map_count`. Nothing changes on failure.
    pub(crate) fn do_munmap(&mut self, start: u64, end: u64) -> Result<(), Errno> {
        let _ = (start, end);
        Err(Errno::ENOSYS)
    }

    /// Inserts `vma` into free space (its range must not overlap any VMA), merging with the
    /// neighbours as `vma_merge_new_range()` would. Returns the start of the VMA that now
    /// holds `vma.start`.
    pub(crate) fn insert_vma_merged(&mut self, vma: Vma) -> Result<u64, Errno> {
        let _ = vma;
        Err(Errno::ENOSYS)
    }

    /// `get_unmapped_area()`: where a new mapping of `len` bytes goes, given the caller's
    /// hint (0 = none), the MAP_* flags and whether it is file/shmem-backed (THP alignment
    /// applies only to anonymous mappings).
    pub(crate) fn get_unmapped_area(
        &self,
        hint: u64,
        len: u64,
        pgoff: u64,
        map_flags: u64,
        file_backed: bool,
    ) -> Result<u64, Errno> {
        let _ = (hint, len, pgoff, map_flags, file_backed);
        Err(Errno::ENOSYS)
    }

    /// `may_expand_vm()`: whether `npages` more pages with `flags` fit RLIMIT_AS and
    /// RLIMIT_DATA.
    pub(crate) fn may_expand_vm(&self, flags: VmFlags, npages: u64) -> bool {
        let _ = (flags, npages);
        true
    }
}
