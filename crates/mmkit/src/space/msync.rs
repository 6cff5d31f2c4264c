//! `msync`: the msync syscall of mm/msync.c.
//!
//! msync never changes a VMA. What user space can observe is the validation order, the
//! ENOMEM for unmapped parts (reported at the end, after the mapped parts were synced), and
//! EBUSY for `MS_INVALIDATE` on locked memory. Writing dirty file pages back becomes real
//! with the simulator's files; here a shared file mapping's sync always succeeds.

use super::AddressSpace;
use crate::addr::{is_page_aligned, page_align_wrapping};
use crate::errno::Errno;
use crate::vma::{Backing, VmFlags};

/// `MS_ASYNC`: schedule the write-back (a no-op since 2.6.19).
pub const MS_ASYNC: u32 = 1;
/// `MS_INVALIDATE`: refused on locked memory.
pub const MS_INVALIDATE: u32 = 2;
/// `MS_SYNC`: write back and wait.
pub const MS_SYNC: u32 = 4;

impl AddressSpace {
    /// `msync(addr, len, flags)`, exactly as `SYSCALL_DEFINE3(msync)` of mm/msync.c.
    ///
    /// `flags` is a C `int` in Linux, so only its low 32 bits count.
    pub fn sys_msync(&mut self, addr: u64, len: u64, flags: u64) -> Result<u64, Errno> {
        let flags = flags as u32;
        if flags & !(MS_ASYNC | MS_INVALIDATE | MS_SYNC) != 0 {
            return Err(Errno::EINVAL);
        }
        if !is_page_aligned(addr) {
            return Err(Errno::EINVAL);
        }
        if flags & MS_ASYNC != 0 && flags & MS_SYNC != 0 {
            return Err(Errno::EINVAL);
        }
        // `len = (len + ~PAGE_MASK) & PAGE_MASK`: a length within a page of 2^64 rounds to
        // 0 and the call succeeds without looking at the address space.
        let len = page_align_wrapping(len);
        let mut start = addr;
        let end = start.wrapping_add(len);
        if end < start {
            return Err(Errno::ENOMEM);
        }
        if end == start {
            return Ok(0);
        }
        let mut unmapped_error = false;
        let mut cursor =
            self.vmas.find_next(start).map(|v| (v.start, v.end, v.flags, v.backing.clone()));
        loop {
            let Some((vm_start, vm_end, vm_flags, backing)) = cursor else {
                return Err(Errno::ENOMEM);
            };
            if start < vm_start {
                // A hole: with plain MS_ASYNC there is nothing left to do, so Linux returns
                // ENOMEM at once; otherwise it carries on and reports ENOMEM at the end.
                if flags == MS_ASYNC {
                    return Err(Errno::ENOMEM);
                }
                start = vm_start;
                if start >= end {
                    return Err(Errno::ENOMEM);
                }
                unmapped_error = true;
            }
            if flags & MS_INVALIDATE != 0 && vm_flags.contains(VmFlags::LOCKED) {
                return Err(Errno::EBUSY);
            }
            let from = start;
            start = vm_end;
            if flags & MS_SYNC != 0 && backing.has_file() && vm_flags.contains(VmFlags::SHARED) {
                // vfs_fsync_range(): a device file has no ->fsync and fails with EINVAL;
                // regular files and shmem succeed. An error ends the call at once.
                if matches!(backing, Backing::Device { .. }) {
                    return Err(Errno::EINVAL);
                }
                self.writeback_range(from, vm_end.min(end));
                if start >= end {
                    break;
                }
            } else if start >= end {
                break;
            }
            cursor =
                self.vmas.find_next(start).map(|v| (v.start, v.end, v.flags, v.backing.clone()));
        }
        if unmapped_error {
            Err(Errno::ENOMEM)
        } else {
            Ok(0)
        }
    }
}
