//! `mlock`, `mlock2`, `munlock`, `mlockall`, `munlockall`: mm/mlock.c.

use super::AddressSpace;
use crate::errno::Errno;

impl AddressSpace {
    /// `mlock(addr, len)`.
    pub fn sys_mlock(&mut self, addr: u64, len: u64) -> Result<u64, Errno> {
        self.sys_mlock2(addr, len, 0)
    }
    /// `mlock2(addr, len, flags)`.
    pub fn sys_mlock2(&mut self, addr: u64, len: u64, flags: u64) -> Result<u64, Errno> {
        let _ = (addr, len, flags);
        Err(Errno::ENOSYS)
    }
    /// `munlock(addr, len)`.
    pub fn sys_munlock(&mut self, addr: u64, len: u64) -> Result<u64, Errno> {
        let _ = (addr, len);
        Err(Errno::ENOSYS)
    }
    /// `mlockall(flags)`.
    pub fn sys_mlockall(&mut self, flags: u64) -> Result<u64, Errno> {
        let _ = flags;
        Err(Errno::ENOSYS)
    }
    /// `munlockall()`.
    pub fn sys_munlockall(&mut self) -> Result<u64, Errno> {
        Err(Errno::ENOSYS)
    }
}
