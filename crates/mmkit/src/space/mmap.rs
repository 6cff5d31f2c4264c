//! `mmap`: do_mmap() and mmap_region() of mm/mmap.c and mm/vma.c.

use super::{AddressSpace, FdTable};
use crate::errno::Errno;

impl AddressSpace {
    /// `mmap(addr, len, prot, flags, fd, off)` with raw register values.
    #[allow(clippy::too_many_arguments)]
    pub fn sys_mmap(
        &mut self,
        files: &dyn FdTable,
        addr: u64,
        len: u64,
        prot: u64,
        flags: u64,
        fd: u64,
        off: u64,
    ) -> Result<u64, Errno> {
        let _ = (files, addr, len, prot, flags, fd, off);
        Err(Errno::ENOSYS)
    }
}
