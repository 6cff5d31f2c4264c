//! `mmap`: x86-64 `sys_mmap`, `ksys_mmap_pgoff()`, `do_mmap()` (mm/mmap.c) and
//! `mmap_region()` / `__mmap_region()` (mm/vma.c) of Linux 6.18.

use super::merge::{AreaKind, MAP_FIXED, MAP_SHARED, VM_LOCKED_MASK, VM_SPECIAL};
use super::{AddressSpace, FdTable, FileKind, OpenFile};
use crate::addr::{is_page_aligned, page_align_wrapping, PAGE_SHIFT};
use crate::errno::Errno;
use crate::vma::{Backing, VmFlags, Vma};

/// `MAP_PRIVATE`.
pub(crate) const MAP_PRIVATE: u64 = 0x02;
/// `MAP_SHARED_VALIDATE`.
pub(crate) const MAP_SHARED_VALIDATE: u64 = 0x03;
/// `MAP_DROPPABLE`.
pub(crate) const MAP_DROPPABLE: u64 = 0x08;
/// `MAP_TYPE`: the mask of the mapping type.
pub(crate) const MAP_TYPE: u64 = 0x0f;
/// `MAP_ANONYMOUS`.
pub(crate) const MAP_ANONYMOUS: u64 = 0x20;
/// `MAP_GROWSDOWN`.
pub(crate) const MAP_GROWSDOWN: u64 = 0x0100;
/// `MAP_DENYWRITE` (ignored).
pub(crate) const MAP_DENYWRITE: u64 = 0x0800;
/// `MAP_EXECUTABLE` (ignored).
pub(crate) const MAP_EXECUTABLE: u64 = 0x1000;
/// `MAP_LOCKED`.
pub(crate) const MAP_LOCKED: u64 = 0x2000;
/// `MAP_NORESERVE`.
pub(crate) const MAP_NORESERVE: u64 = 0x4000;
/// `MAP_POPULATE`.
pub(crate) const MAP_POPULATE: u64 = 0x8000;
/// `MAP_NONBLOCK`.
pub(crate) const MAP_NONBLOCK: u64 = 0x1_0000;
/// `MAP_STACK`.
pub(crate) const MAP_STACK: u64 = 0x2_0000;
/// `MAP_HUGETLB`.
pub(crate) const MAP_HUGETLB: u64 = 0x4_0000;
/// `MAP_SYNC`.
pub(crate) const MAP_SYNC: u64 = 0x8_0000;
/// `MAP_FIXED_NOREPLACE`.
pub(crate) const MAP_FIXED_NOREPLACE: u64 = 0x10_0000;

/// `LEGACY_MAP_MASK` (include/linux/mman.h): the flags plain MAP_SHARED accepted before
/// MAP_SHARED_VALIDATE existed.
const LEGACY_MAP_MASK: u64 = MAP_SHARED
    | MAP_PRIVATE
    | MAP_FIXED
    | MAP_ANONYMOUS
    | MAP_DENYWRITE
    | MAP_EXECUTABLE
    | 0x400_0000 // MAP_UNINITIALIZED
    | super::merge::MAP_32BIT
    | (21 << 26) // MAP_HUGE_2MB
    | (30 << 26) // MAP_HUGE_1GB
    | MAP_GROWSDOWN
    | MAP_LOCKED
    | MAP_NORESERVE
    | MAP_POPULATE
    | MAP_NONBLOCK
    | MAP_STACK
    | MAP_HUGETLB;

/// `MAX_LFS_FILESIZE` on 64-bit.
const MAX_LFS_FILESIZE: u64 = i64::MAX as u64;

/// `round_hint_to_min()` (mm/mmap.c): a non-zero hint below the security minimum is raised
/// to it.
fn round_hint_to_min(hint: u64, min: u64) -> u64 {
    let hint = hint & crate::addr::PAGE_MASK;
    if hint != 0 && hint < min {
        return page_align_wrapping(min);
    }
    hint
}

/// `file_mmap_ok()`: the offset range fits the file type's maximum size.
fn file_mmap_ok(file: &OpenFile, pgoff: u64, len: u64) -> bool {
    let maxsize = match file.kind {
        FileKind::Regular => MAX_LFS_FILESIZE,
        _ => u64::MAX,
    };
    if len > maxsize {
        return false;
    }
    pgoff <= (maxsize - len) >> PAGE_SHIFT
}

impl AddressSpace {
    /// `mmap(addr, len, prot, flags, fd, off)` with raw register values: x86-64 `sys_mmap`
    /// (offset alignment), `ksys_mmap_pgoff()` (descriptor lookup) and `vm_mmap_pgoff()`
    /// (`do_mmap()`, then `mm_populate()`), each check in Linux's order.
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
        self.stats.mmap_calls += 1;
        if off & (crate::addr::PAGE_SIZE - 1) != 0 {
            return Err(Errno::EINVAL);
        }
        let pgoff = off >> PAGE_SHIFT;
        let file = if flags & MAP_ANONYMOUS == 0 {
            // fget() takes an `unsigned int`.
            let fd32 = fd as u32;
            let f = if fd32 > i32::MAX as u32 { None } else { files.get(fd32 as i32) };
            let f = match f {
                Some(f) if f.kind != FileKind::Path => f,
                _ => return Err(Errno::EBADF),
            };
            if flags & MAP_HUGETLB != 0 {
                return Err(Errno::EINVAL);
            }
            Some(f)
        } else {
            None
        };
        let (addr, populate) = self.do_mmap(file.as_ref(), addr, len, prot, flags, pgoff)?;
        if populate != 0 {
            self.populate_range(addr, addr + populate);
        }
        Ok(addr)
    }

    /// `do_mmap()` and `mmap_region()`: returns the address and the length to populate.
    fn do_mmap(
        &mut self,
        file: Option<&OpenFile>,
        addr: u64,
        len: u64,
        prot: u64,
        mut flags: u64,
        mut pgoff: u64,
    ) -> Result<(u64, u64), Errno> {
        if len == 0 {
            return Err(Errno::EINVAL);
        }
        if flags & MAP_FIXED_NOREPLACE != 0 {
            flags |= MAP_FIXED;
        }
        let addr = if flags & MAP_FIXED == 0 {
            round_hint_to_min(addr, self.cfg.hint_min_addr)
        } else {
            addr
        };
        let len = page_align_wrapping(len);
        if len == 0 {
            return Err(Errno::ENOMEM);
        }
        if pgoff.checked_add(len >> PAGE_SHIFT).is_none() {
            return Err(Errno::EOVERFLOW);
        }
        if self.vmas.len() > self.cfg.max_map_count {
            return Err(Errno::ENOMEM);
        }

        // calc_vm_prot_bits() | calc_vm_flag_bits() | def_flags | VM_MAY*.
        let mut vm_flags = VmFlags::from_bits_truncate(prot & 0x7)
            | self.def_flags
            | VmFlags::MAYREAD
            | VmFlags::MAYWRITE
            | VmFlags::MAYEXEC;
        if flags & MAP_GROWSDOWN != 0 {
            vm_flags |= VmFlags::GROWSDOWN;
        }
        if flags & MAP_LOCKED != 0 {
            vm_flags |= VmFlags::LOCKED;
        }
        if flags & MAP_SYNC != 0 {
            vm_flags |= VmFlags::SYNC;
        }
        if flags & MAP_STACK != 0 && self.cfg.thp_enabled {
            vm_flags |= VmFlags::NOHUGEPAGE;
        }

        let kind = match file {
            None => AreaKind::Anon,
            Some(f) if f.kind == FileKind::DevZero => AreaKind::DevZero,
            Some(_) => AreaKind::File,
        };
        let addr = self.get_unmapped_area_kind(addr, len, pgoff, flags, kind)?;

        if flags & MAP_FIXED_NOREPLACE != 0
            && self.vmas.overlapping(addr, addr + len).next().is_some()
        {
            return Err(Errno::EEXIST);
        }
        if flags & MAP_LOCKED != 0 && !self.can_do_mlock() {
            return Err(Errno::EPERM);
        }
        if !self.mlock_future_ok(vm_flags, len) {
            return Err(Errno::EAGAIN);
        }

        let mut shmem = false;
        if let Some(f) = file {
            if !file_mmap_ok(f, pgoff, len) {
                return Err(Errno::EOVERFLOW);
            }
            let ty = flags & MAP_TYPE;
            if ty == MAP_SHARED || ty == MAP_SHARED_VALIDATE {
                let check = if ty == MAP_SHARED { flags & LEGACY_MAP_MASK } else { flags };
                // ext4 and xfs set FOP_MMAP_SYNC: MAP_SYNC passes validation (their mmap hook
                // refuses it later unless the file is DAX).
                let mask = if f.kind == FileKind::Regular {
                    LEGACY_MAP_MASK | MAP_SYNC
                } else {
                    LEGACY_MAP_MASK
                };
                if check & !mask != 0 {
                    return Err(Errno::EOPNOTSUPP);
                }
                if prot & 0x2 != 0 && !f.writable {
                    return Err(Errno::EACCES);
                }
                vm_flags |= VmFlags::SHARED | VmFlags::MAYSHARE;
                if !f.writable {
                    vm_flags.remove(VmFlags::MAYWRITE | VmFlags::SHARED);
                }
            }
            if ty == MAP_SHARED || ty == MAP_SHARED_VALIDATE || ty == MAP_PRIVATE {
                if !f.readable {
                    return Err(Errno::EACCES);
                }
                if f.kind == FileKind::NotMappable {
                    return Err(Errno::ENODEV);
                }
                if vm_flags.contains(VmFlags::GROWSDOWN) {
                    return Err(Errno::EINVAL);
                }
            } else {
                return Err(Errno::EINVAL);
            }
            if f.kind == FileKind::DevZero && vm_flags.contains(VmFlags::MAYSHARE) {
                shmem = true;
            }
        } else {
            match flags & MAP_TYPE {
                MAP_SHARED => {
                    if vm_flags.contains(VmFlags::GROWSDOWN) {
                        return Err(Errno::EINVAL);
                    }
                    pgoff = 0;
                    vm_flags |= VmFlags::SHARED | VmFlags::MAYSHARE;
                    shmem = true;
                }
                MAP_DROPPABLE | MAP_PRIVATE => {
                    if flags & MAP_TYPE == MAP_DROPPABLE {
                        if flags & (MAP_LOCKED | MAP_HUGETLB) != 0 {
                            return Err(Errno::EINVAL);
                        }
                        if vm_flags.contains(VmFlags::GROWSDOWN) {
                            return Err(Errno::EINVAL);
                        }
                        vm_flags |= VmFlags::DROPPABLE
                            | VmFlags::NORESERVE
                            | VmFlags::WIPEONFORK
                            | VmFlags::DONTDUMP;
                    }
                    pgoff = addr >> PAGE_SHIFT;
                }
                _ => return Err(Errno::EINVAL),
            }
        }
        if flags & MAP_NORESERVE != 0 && self.cfg.overcommit != crate::config::OvercommitMode::Never
        {
            vm_flags |= VmFlags::NORESERVE;
        }

        let backing = match file {
            _ if shmem => None, // allocated after the checks below, so a failure wastes no id
            // A private /dev/zero mapping is anonymous memory (no vm_ops) but keeps its
            // vm_file, so maps prints `/dev/zero` and its file offset.
            Some(f) => Some(Backing::File(f.file.clone())),
            None => Some(Backing::Anonymous),
        };
        // ext4's mmap hook (`daxdev_mapping_supported()`) refuses VM_SYNC on non-DAX files,
        // after the old mappings of a MAP_FIXED were already torn down.
        let sync_refused =
            vm_flags.contains(VmFlags::SYNC) && file.is_some_and(|f| f.kind == FileKind::Regular);
        if file.is_none() && flags & MAP_HUGETLB != 0 {
            // Anonymous MAP_HUGETLB: no huge pages are configured, so the hugetlbfs
            // reservation fails (ENOMEM on the host, nr_hugepages = 0). The argument checks
            // above still come first, as they run before the hugetlbfs mmap hook.
            return Err(Errno::ENOMEM);
        }
        let fixed = flags & MAP_FIXED != 0;
        self.mmap_region(addr, len, vm_flags, pgoff, backing, sync_refused, fixed)?;
        let populate = if vm_flags.contains(VmFlags::LOCKED)
            || flags & (MAP_POPULATE | MAP_NONBLOCK) == MAP_POPULATE
        {
            len
        } else {
            0
        };
        Ok((addr, populate))
    }

    /// `__mmap_region()`: unmap what MAP_FIXED replaces (`vms_gather_munmap_vmas()`, whose
    /// splits stay if a later check fails, as Linux's abort path reattaches the split VMAs),
    /// check RLIMIT_AS/RLIMIT_DATA and overcommit, then merge or insert the new VMA.
    /// `backing` `None` means a fresh shmem object (`shmem_zero_setup()`); `hook_fails`
    /// models a file `mmap` hook that refuses the mapping (EOPNOTSUPP); `fixed` says whether
    /// the range may overlap existing VMAs (MAP_FIXED).
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn mmap_region(
        &mut self,
        addr: u64,
        len: u64,
        mut vm_flags: VmFlags,
        pgoff: u64,
        backing: Option<Backing>,
        hook_fails: bool,
        fixed: bool,
    ) -> Result<u64, Errno> {
        let end = addr + len;
        let pglen = len >> PAGE_SHIFT;
        // Only a MAP_FIXED range can hold VMAs; a chosen one is free by construction.
        let (nr_pages, nr_accounted) = if fixed { self.munmap_prepare(addr, end)? } else { (0, 0) };
        if !self.may_expand_vm(vm_flags, pglen - nr_pages) {
            return Err(Errno::ENOMEM);
        }
        // accountable_mapping(): private writable without NORESERVE.
        if vm_flags & (VmFlags::NORESERVE | VmFlags::SHARED | VmFlags::WRITE) == VmFlags::WRITE {
            let charged = pglen - nr_accounted.min(pglen);
            if charged != 0 && !self.vm_enough_memory(charged) {
                return Err(Errno::ENOMEM);
            }
            vm_flags |= VmFlags::ACCOUNT;
        }
        // shmem_zero_setup() charges the whole object unless VM_NORESERVE
        // (shmem_acct_size()); on failure the old mappings are reattached.
        if backing.is_none()
            && !vm_flags.contains(VmFlags::NORESERVE)
            && !self.vm_enough_memory(pglen)
        {
            return Err(Errno::ENOMEM);
        }
        // The old mappings go now (vms_complete_munmap_vmas() in __mmap_complete()).
        if nr_pages != 0 {
            self.munmap_complete(addr, end);
        }
        if hook_fails {
            return Err(Errno::EOPNOTSUPP);
        }
        let backing = match backing {
            Some(b) => b,
            None => Backing::Shmem { id: self.alloc_id(), size_pages: pglen },
        };
        // __mmap_complete(): special mappings are never locked.
        if vm_flags.intersects(VM_SPECIAL) {
            vm_flags.remove(VM_LOCKED_MASK);
        }
        let vma = Vma {
            start: addr,
            end,
            flags: vm_flags,
            pgoff,
            backing,
            anon_vma: Default::default(),
            name: None,
        };
        debug_assert!(is_page_aligned(addr));
        self.insert_vma_merged(vma)
    }
}
