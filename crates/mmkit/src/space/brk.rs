//! `brk`: the brk syscall of mm/mmap.c.

use super::AddressSpace;

impl AddressSpace {
    /// `brk(addr)`: returns the new break, or the old one on failure (never an errno).
    pub fn sys_brk(&mut self, addr: u64) -> u64 {
        let _ = addr;
        self.brk
    }
}
