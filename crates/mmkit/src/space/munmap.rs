//! `munmap`: do_vmi_munmap() of mm/vma.c.

use super::AddressSpace;
use crate::errno::Errno;

impl AddressSpace {
    /// `munmap(addr, len)`.
    pub fn sys_munmap(&mut self, addr: u64, len: u64) -> Result<u64, Errno> {
        let _ = (addr, len);
        Err(Errno::ENOSYS)
    }
}
