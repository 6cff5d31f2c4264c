//! Helpers shared by the conformance tests: constants with Linux's values, a test
//! descriptor table, and shorthands for the syscalls and for reading the VMA list.
//!
//! Stable and additive: other test files `mod common;` this; add, never change.
#![allow(dead_code)]

use std::sync::Arc;

use mmkit::space::{FdTable, FileKind, NoFiles, OpenFile};
use mmkit::vma::{FileObject, VmFlags};
use mmkit::{AddressSpace, Errno, MmConfig};

/// Page size.
pub const P: u64 = 4096;

pub const PROT_NONE: u64 = 0;
pub const PROT_READ: u64 = 1;
pub const PROT_WRITE: u64 = 2;
pub const PROT_EXEC: u64 = 4;
pub const PROT_SEM: u64 = 8;
pub const PROT_GROWSDOWN: u64 = 0x0100_0000;
pub const PROT_GROWSUP: u64 = 0x0200_0000;
pub const RW: u64 = PROT_READ | PROT_WRITE;

pub const MAP_SHARED: u64 = 0x01;
pub const MAP_PRIVATE: u64 = 0x02;
pub const MAP_SHARED_VALIDATE: u64 = 0x03;
pub const MAP_DROPPABLE: u64 = 0x08;
pub const MAP_FIXED: u64 = 0x10;
pub const MAP_ANONYMOUS: u64 = 0x20;
pub const MAP_32BIT: u64 = 0x40;
pub const MAP_GROWSDOWN: u64 = 0x0100;
pub const MAP_LOCKED: u64 = 0x2000;
pub const MAP_NORESERVE: u64 = 0x4000;
pub const MAP_POPULATE: u64 = 0x8000;
pub const MAP_STACK: u64 = 0x2_0000;
pub const MAP_HUGETLB: u64 = 0x4_0000;
pub const MAP_SYNC: u64 = 0x8_0000;
pub const MAP_FIXED_NOREPLACE: u64 = 0x10_0000;
pub const ANON: u64 = MAP_PRIVATE | MAP_ANONYMOUS;
pub const SHANON: u64 = MAP_SHARED | MAP_ANONYMOUS;

/// `-1` as the fd register.
pub const NOFD: u64 = u64::MAX;

/// A free area used as a deterministic carve-out base (cases.md convention).
pub const BASE: u64 = 0x3000_0000;

/// A fresh address space with Linux x86-64 defaults.
pub fn space() -> AddressSpace {
    AddressSpace::new(MmConfig::default())
}

/// A fresh address space with a modified configuration.
pub fn space_with(f: impl FnOnce(&mut MmConfig)) -> AddressSpace {
    let mut cfg = MmConfig::default();
    f(&mut cfg);
    AddressSpace::new(cfg)
}

/// `mmap` without files.
pub fn mmap(
    s: &mut AddressSpace,
    addr: u64,
    len: u64,
    prot: u64,
    flags: u64,
) -> Result<u64, Errno> {
    s.sys_mmap(&NoFiles, addr, len, prot, flags, NOFD, 0)
}

/// Anonymous private mapping, must succeed.
pub fn anon(s: &mut AddressSpace, addr: u64, len: u64, prot: u64) -> u64 {
    let fixed = if addr != 0 { MAP_FIXED } else { 0 };
    mmap(s, addr, len, prot, ANON | fixed).expect("anonymous mmap")
}

/// `(start, end, "rwxp")` for every VMA.
pub fn layout(s: &AddressSpace) -> Vec<(u64, u64, String)> {
    s.vmas().iter().map(|v| (v.start, v.end, perms(v.flags))).collect()
}

/// The VMAs intersecting `[lo, hi)` as `(start, end, perms)`.
pub fn layout_in(s: &AddressSpace, lo: u64, hi: u64) -> Vec<(u64, u64, String)> {
    s.vmas().overlapping(lo, hi).map(|v| (v.start, v.end, perms(v.flags))).collect()
}

/// Number of VMAs intersecting `[lo, hi)` ("VMAs=n" in cases.md).
pub fn count_in(s: &AddressSpace, lo: u64, hi: u64) -> usize {
    s.vmas().overlapping(lo, hi).count()
}

/// The `rwxp`/`rwxs` column of maps.
pub fn perms(f: VmFlags) -> String {
    let mut p = String::new();
    p.push(if f.contains(VmFlags::READ) { 'r' } else { '-' });
    p.push(if f.contains(VmFlags::WRITE) { 'w' } else { '-' });
    p.push(if f.contains(VmFlags::EXEC) { 'x' } else { '-' });
    p.push(if f.contains(VmFlags::MAYSHARE) { 's' } else { 'p' });
    p
}

/// The VmFlags line of smaps for the flags that matter here, in Linux's order.
pub fn vmflags(f: VmFlags) -> String {
    const CODES: &[(VmFlags, &str)] = &[
        (VmFlags::READ, "rd"),
        (VmFlags::WRITE, "wr"),
        (VmFlags::EXEC, "ex"),
        (VmFlags::SHARED, "sh"),
        (VmFlags::MAYREAD, "mr"),
        (VmFlags::MAYWRITE, "mw"),
        (VmFlags::MAYEXEC, "me"),
        (VmFlags::MAYSHARE, "ms"),
        (VmFlags::GROWSDOWN, "gd"),
        (VmFlags::PFNMAP, "pf"),
        (VmFlags::LOCKED, "lo"),
        (VmFlags::IO, "io"),
        (VmFlags::SEQ_READ, "sr"),
        (VmFlags::RAND_READ, "rr"),
        (VmFlags::DONTCOPY, "dc"),
        (VmFlags::DONTEXPAND, "de"),
        (VmFlags::LOCKONFAULT, "lf"),
        (VmFlags::ACCOUNT, "ac"),
        (VmFlags::NORESERVE, "nr"),
        (VmFlags::HUGETLB, "ht"),
        (VmFlags::SYNC, "sf"),
        (VmFlags::WIPEONFORK, "wf"),
        (VmFlags::DONTDUMP, "dd"),
        (VmFlags::HUGEPAGE, "hg"),
        (VmFlags::NOHUGEPAGE, "nh"),
        (VmFlags::DROPPABLE, "dp"),
    ];
    CODES.iter().filter(|(b, _)| f.contains(*b)).map(|(_, c)| *c).collect::<Vec<_>>().join(" ")
}

/// The VMA containing `addr`.
pub fn vma_at(s: &AddressSpace, addr: u64) -> mmkit::Vma {
    s.vmas().find(addr).cloned().expect("a VMA at addr")
}

/// A descriptor table for file cases.
#[derive(Default)]
pub struct TestFiles {
    pub fds: Vec<(i32, OpenFile)>,
}

impl TestFiles {
    /// Adds `fd` as a file with identity `id`.
    pub fn add(&mut self, fd: i32, id: u64, kind: FileKind, readable: bool, writable: bool) {
        let path = match kind {
            FileKind::DevZero => "/dev/zero".to_string(),
            _ => format!("/tmp/file{id}"),
        };
        let file = Arc::new(FileObject { id, dev_major: 254, dev_minor: 0, inode: id, path });
        self.fds.push((fd, OpenFile { file, readable, writable, kind }));
    }

    /// A table with the usual test descriptors: 3 = O_RDONLY regular file, 4 = O_RDWR
    /// regular file, 5 = O_WRONLY regular file, 6 = /dev/zero O_RDWR, 7 = pipe read end,
    /// 8 = pipe write end, 9 = O_PATH, 10 = /dev/zero O_RDONLY.
    pub fn standard() -> Self {
        let mut t = TestFiles::default();
        t.add(3, 100, FileKind::Regular, true, false);
        t.add(4, 101, FileKind::Regular, true, true);
        t.add(5, 102, FileKind::Regular, false, true);
        t.add(6, 103, FileKind::DevZero, true, true);
        t.add(7, 104, FileKind::NotMappable, true, false);
        t.add(8, 105, FileKind::NotMappable, false, true);
        t.add(9, 106, FileKind::Path, false, false);
        t.add(10, 107, FileKind::DevZero, true, false);
        t
    }
}

impl FdTable for TestFiles {
    fn get(&self, fd: i32) -> Option<OpenFile> {
        self.fds.iter().find(|(f, _)| *f == fd).map(|(_, o)| o.clone())
    }
}

/// Asserts the address-space invariants (strict merge check).
pub fn check(s: &AddressSpace) {
    s.check_invariants(true);
}

/// One character per page of `[addr, addr + n pages)`, from a one-page MADV_POPULATE_READ
/// on each, as a probe program on the host prints it: `.` faulted in, `G` EFAULT (a guard
/// marker, or a shmem page past the object's end), `-` ENOMEM (unmapped), `?` any other
/// error. MADV_POPULATE_READ never changes the VMAs.
pub fn fault_map(s: &mut AddressSpace, addr: u64, n: u64) -> String {
    (0..n)
        .map(|i| match s.sys_madvise(addr + i * P, P, 22) {
            Ok(_) => '.',
            Err(Errno::EFAULT) => 'G',
            Err(Errno::ENOMEM) => '-',
            Err(_) => '?',
        })
        .collect()
}

/// A device mapping as `remap_pfn_range()` leaves it: VM_IO | VM_PFNMAP | VM_DONTEXPAND.
pub fn device_vma(start: u64, pages: u64) -> mmkit::Vma {
    let f = VmFlags::READ
        | VmFlags::WRITE
        | VmFlags::SHARED
        | VmFlags::MAYREAD
        | VmFlags::MAYWRITE
        | VmFlags::MAYSHARE
        | VmFlags::IO
        | VmFlags::PFNMAP
        | VmFlags::DONTEXPAND
        | VmFlags::DONTDUMP;
    mmkit::Vma {
        start,
        end: start + pages * P,
        flags: f,
        pgoff: 0,
        backing: mmkit::Backing::Device { phys_base: 0xfe00_0000 },
        anon_vma: Default::default(),
        name: None,
    }
}
