//! `msync`: mm/msync.c.

use super::AddressSpace;
use crate::errno::Errno;

impl AddressSpace {
    /// `msync(addr, len, flags)`.
    pub fn sys_msync(&mut self, addr: u64, len: u64, flags: u64) -> Result<u64, Errno> {
        let _ = (addr, len, flags);
        Err(Errno::ENOSYS)
    }
}
