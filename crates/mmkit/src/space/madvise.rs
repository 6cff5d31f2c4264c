//! `madvise`: mm/madvise.c.

use super::AddressSpace;
use crate::errno::Errno;

impl AddressSpace {
    /// `madvise(addr, len, advice)`.
    pub fn sys_madvise(&mut self, addr: u64, len: u64, advice: u64) -> Result<u64, Errno> {
        let _ = (addr, len, advice);
        Err(Errno::ENOSYS)
    }
}
