//! `munmap`: `__vm_munmap()` → `do_vmi_munmap()` of mm/vma.c.

use super::AddressSpace;
use crate::addr::{is_page_aligned, page_align_wrapping};
use crate::errno::Errno;

impl AddressSpace {
    /// `munmap(addr, len)`: EINVAL for an unaligned start, a start above TASK_SIZE, a length
    /// beyond `TASK_SIZE - start` or one that rounds to 0; 0 for a range with nothing mapped;
    /// ENOMEM only when one VMA would be cut at both ends at `map_count >= max_map_count`.
    pub fn sys_munmap(&mut self, addr: u64, len: u64) -> Result<u64, Errno> {
        self.stats.munmap_calls += 1;
        let task_size = self.cfg.task_size;
        if !is_page_aligned(addr) || addr > task_size || len > task_size - addr {
            return Err(Errno::EINVAL);
        }
        let end = addr + page_align_wrapping(len);
        if end == addr {
            return Err(Errno::EINVAL);
        }
        self.do_munmap(addr, end)?;
        Ok(0)
    }
}
