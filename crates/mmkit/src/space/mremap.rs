//! `mremap`: mm/mremap.c.

use super::AddressSpace;
use crate::errno::Errno;

impl AddressSpace {
    /// `mremap(old_addr, old_len, new_len, flags, new_addr)`.
    pub fn sys_mremap(
        &mut self,
        old_addr: u64,
        old_len: u64,
        new_len: u64,
        flags: u64,
        new_addr: u64,
    ) -> Result<u64, Errno> {
        let _ = (old_addr, old_len, new_len, flags, new_addr);
        Err(Errno::ENOSYS)
    }
}
