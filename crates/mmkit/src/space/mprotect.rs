//! `mprotect`: do_mprotect_pkey() and mprotect_fixup() of mm/mprotect.c.

use super::AddressSpace;
use crate::errno::Errno;

impl AddressSpace {
    /// `mprotect(addr, len, prot)`.
    pub fn sys_mprotect(&mut self, addr: u64, len: u64, prot: u64) -> Result<u64, Errno> {
        let _ = (addr, len, prot);
        Err(Errno::ENOSYS)
    }
}
