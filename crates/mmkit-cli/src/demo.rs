//! `mmkit demo`: a narrated tour of the address-space model.
//!
//! It starts from the layout an `execve` of a small dynamically linked program leaves (as
//! `/proc/<pid>/maps` would show it), then makes the calls a real process makes and prints
//! what Linux would print. Every call goes through the same raw-argument entry points a
//! kernel calls (`AddressSpace::sys_*`).
//!
//! This tour works on VMAs only; pages, faults and the simulated machine join it with the
//! simulator (see docs/design.md).

use std::fmt::Write as _;
use std::sync::Arc;

use mmkit::space::{FdTable, FileKind, OpenFile};
use mmkit::vma::FileObject;
use mmkit::{procfs, AddressSpace, Errno, MmConfig};

use crate::maps::load_space;

const PROT_NONE: u64 = 0;
const PROT_READ: u64 = 1;
const PROT_WRITE: u64 = 2;
const PROT_EXEC: u64 = 4;
const MAP_PRIVATE: u64 = 0x02;
const MAP_SHARED: u64 = 0x01;
const MAP_FIXED: u64 = 0x10;
const MAP_ANONYMOUS: u64 = 0x20;
const MAP_FIXED_NOREPLACE: u64 = 0x10_0000;
const MAP_DENYWRITE: u64 = 0x800;
const P: u64 = 4096;

/// What the ELF loader left: the program, its bss, the vDSO, ld.so and the stack.
const EXEC_LAYOUT: &str = "\
555555554000-555555555000 r--p 00000000 fe:00 1001                       /usr/bin/demo
555555555000-555555556000 r-xp 00001000 fe:00 1001                       /usr/bin/demo
555555556000-555555557000 r--p 00002000 fe:00 1001                       /usr/bin/demo
555555557000-555555559000 rw-p 00002000 fe:00 1001                       /usr/bin/demo
555555559000-55555555a000 rw-p 00000000 00:00 0                          [heap]
7ffff7fc2000-7ffff7fc6000 r--p 00000000 00:00 0                          [vvar]
7ffff7fc6000-7ffff7fc8000 r-xp 00000000 00:00 0                          [vdso]
7ffff7fc8000-7ffff7fc9000 r--p 00000000 fe:00 2002                       /usr/lib/ld-linux-x86-64.so.2
7ffff7fc9000-7ffff7fef000 r-xp 00001000 fe:00 2002                       /usr/lib/ld-linux-x86-64.so.2
7ffff7fef000-7ffff7ff9000 r--p 00027000 fe:00 2002                       /usr/lib/ld-linux-x86-64.so.2
7ffff7ff9000-7ffff7fff000 rw-p 00031000 fe:00 2002                       /usr/lib/ld-linux-x86-64.so.2
7ffffffde000-7ffffffff000 rw-p 00000000 00:00 0                          [stack]
";

/// Descriptor 3 is a shared library, 4 a data file opened read-only.
struct DemoFiles {
    lib: OpenFile,
    data: OpenFile,
}

impl FdTable for DemoFiles {
    fn get(&self, fd: i32) -> Option<OpenFile> {
        match fd {
            3 => Some(self.lib.clone()),
            4 => Some(self.data.clone()),
            _ => None,
        }
    }
}

struct Tour {
    out: String,
}

impl Tour {
    fn say(&mut self, text: &str) {
        let _ = writeln!(self.out, "\n## {text}");
    }

    fn call(&mut self, what: &str, r: Result<u64, Errno>) -> u64 {
        match r {
            Ok(v) if v > 0xffff => {
                let _ = writeln!(self.out, "  {what} = {v:#x}");
                v
            }
            Ok(v) => {
                let _ = writeln!(self.out, "  {what} = {v}");
                v
            }
            Err(e) => {
                let _ = writeln!(self.out, "  {what} = -1 {e}");
                0
            }
        }
    }

    fn maps(&mut self, space: &AddressSpace, from: u64, to: u64) {
        let text = procfs::maps_string(space, false);
        for line in text.lines() {
            let start = u64::from_str_radix(line.split('-').next().unwrap_or("0"), 16).unwrap_or(0);
            if start >= from && start < to {
                let _ = writeln!(self.out, "    {line}");
            }
        }
    }
}

/// Runs the tour and returns its text.
pub fn run() -> Result<String, String> {
    let (mut space, _) = load_space(EXEC_LAYOUT, MmConfig::default()).map_err(|e| e.to_string())?;
    let file = |id: u64, path: &str| {
        Arc::new(FileObject { id, dev_major: 0xfe, dev_minor: 0, inode: id, path: path.into() })
    };
    let files = DemoFiles {
        lib: OpenFile {
            file: file(3003, "/usr/lib/libdemo.so.1"),
            readable: true,
            writable: false,
            kind: FileKind::Regular,
        },
        data: OpenFile {
            file: file(4004, "/var/lib/demo/table.dat"),
            readable: true,
            writable: false,
            kind: FileKind::Regular,
        },
    };
    let mut t = Tour { out: String::new() };
    let _ = writeln!(
        t.out,
        "mmkit demo: one process's address space, driven through the raw syscall entry points.\n\
         Every result and every maps line below is what Linux 6.18 (x86-64) gives for the same calls."
    );

    t.say("1. After execve: the ELF loader's layout (/proc/<pid>/maps)");
    t.maps(&space, 0, u64::MAX);

    t.say("2. The heap grows with brk (the [heap] VMA is extended in place)");
    let b0 = space.sys_brk(0);
    t.call("brk(NULL)", Ok(b0));
    t.call("brk(+132 KiB)", Ok(space.sys_brk(b0 + 0x21000)));
    t.maps(&space, 0x5555_5555_0000, 0x5555_5600_0000);

    t.say("3. ld.so maps a library: one reservation, then its segments with MAP_FIXED");
    let lib = t.call(
        "mmap(NULL, 0x5000, PROT_READ, MAP_PRIVATE|MAP_DENYWRITE, 3</usr/lib/libdemo.so.1>, 0)",
        space.sys_mmap(&files, 0, 0x5000, PROT_READ, MAP_PRIVATE | MAP_DENYWRITE, 3, 0),
    );
    t.call(
        "mmap(lib+0x1000, 0x2000, PROT_READ|PROT_EXEC, MAP_PRIVATE|MAP_FIXED, 3, 0x1000)",
        space.sys_mmap(
            &files,
            lib + P,
            2 * P,
            PROT_READ | PROT_EXEC,
            MAP_PRIVATE | MAP_FIXED,
            3,
            P,
        ),
    );
    t.call(
        "mmap(lib+0x4000, 0x1000, PROT_READ|PROT_WRITE, MAP_PRIVATE|MAP_FIXED, 3, 0x3000)",
        space.sys_mmap(
            &files,
            lib + 4 * P,
            P,
            PROT_READ | PROT_WRITE,
            MAP_PRIVATE | MAP_FIXED,
            3,
            3 * P,
        ),
    );
    t.maps(&space, lib, lib + 5 * P);

    t.say("4. Anonymous mmaps go top-down below the lowest mapping and merge with their neighbour");
    let a = t.call(
        "mmap(NULL, 64 KiB, PROT_READ|PROT_WRITE, MAP_PRIVATE|MAP_ANONYMOUS, -1, 0)",
        space.sys_mmap(
            &files,
            0,
            16 * P,
            PROT_READ | PROT_WRITE,
            MAP_PRIVATE | MAP_ANONYMOUS,
            !0,
            0,
        ),
    );
    let b = t.call(
        "mmap(NULL, 64 KiB, PROT_READ|PROT_WRITE, MAP_PRIVATE|MAP_ANONYMOUS, -1, 0)",
        space.sys_mmap(
            &files,
            0,
            16 * P,
            PROT_READ | PROT_WRITE,
            MAP_PRIVATE | MAP_ANONYMOUS,
            !0,
            0,
        ),
    );
    let _ = writeln!(t.out, "  (the second lies directly below the first: one VMA of 128 KiB)");
    t.maps(&space, b, a + 16 * P);

    t.say("5. mprotect in the middle splits the VMA in three; restoring it merges them again");
    t.call(
        "mprotect(b+0x4000, 0x4000, PROT_READ)",
        space.sys_mprotect(b + 4 * P, 4 * P, PROT_READ),
    );
    t.maps(&space, b, a + 16 * P);
    t.call(
        "mprotect(b+0x4000, 0x4000, PROT_READ|PROT_WRITE)",
        space.sys_mprotect(b + 4 * P, 4 * P, PROT_READ | PROT_WRITE),
    );
    t.maps(&space, b, a + 16 * P);

    t.say("6. A shared read-only file mapping cannot be made writable");
    let d = t.call(
        "mmap(NULL, 0x3000, PROT_READ, MAP_SHARED, 4</var/lib/demo/table.dat>, 0)",
        space.sys_mmap(&files, 0, 3 * P, PROT_READ, MAP_SHARED, 4, 0),
    );
    t.call(
        "mprotect(d, 0x3000, PROT_READ|PROT_WRITE)",
        space.sys_mprotect(d, 3 * P, PROT_READ | PROT_WRITE),
    );
    t.maps(&space, d, d + 3 * P);

    t.say("7. Bad input gets Linux's errno and changes nothing");
    t.call("munmap(b+1, 0x1000)", space.sys_munmap(b + 1, P));
    t.call(
        "mmap(b, 0x1000, PROT_READ, MAP_PRIVATE|MAP_ANONYMOUS|MAP_FIXED_NOREPLACE, -1, 0)",
        space.sys_mmap(
            &files,
            b,
            P,
            PROT_READ,
            MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE,
            !0,
            0,
        ),
    );
    t.call("mprotect(b, 0x1000, 0x100)", space.sys_mprotect(b, P, 0x100));
    t.call("mremap(b, 0x1000, 0x2000, 0x8, 0)", space.sys_mremap(b, P, 2 * P, 8, 0));
    t.call("madvise(b, 0x1000, 1212)", space.sys_madvise(b, P, 1212));
    t.call(
        "mmap(0, 0x1000, PROT_READ, MAP_PRIVATE|MAP_ANONYMOUS|MAP_FIXED, -1, 0)",
        space.sys_mmap(&files, 0, P, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, !0, 0),
    );

    t.say("8. A partial munmap punches a hole; mprotect across the hole fails after changing the part before it");
    t.call("munmap(b+0x8000, 0x2000)", space.sys_munmap(b + 8 * P, 2 * P));
    t.call(
        "mprotect(b+0x4000, 0x8000, PROT_NONE)",
        space.sys_mprotect(b + 4 * P, 8 * P, PROT_NONE),
    );
    t.maps(&space, b, a + 16 * P);

    t.say("9. mremap grows a mapping; where there is no room it moves (MREMAP_MAYMOVE)");
    let m = t.call(
        "mremap(a+0x8000, 0x8000, 0x20000, MREMAP_MAYMOVE)",
        space.sys_mremap(a + 8 * P, 8 * P, 32 * P, 1, 0),
    );
    t.maps(&space, m, m + 32 * P);

    t.say("10. fork: the child gets a copy of every VMA; after the parent wrote its heap, the child's new brk area cannot merge with it");
    space.write_fault(b0).map_err(|e| format!("write fault on the heap: {e}"))?;
    let mut child = space.fork();
    let cb = child.sys_brk(0);
    t.call("child: brk(+8 KiB)", Ok(child.sys_brk(cb + 2 * P)));
    t.maps(&child, 0x5555_5555_0000, 0x5555_5600_0000);
    let _ = writeln!(
        t.out,
        "  (Linux shows two [heap] lines here too: the forked anon_vma blocks the merge)"
    );

    t.say("11. mlock needs CAP_IPC_LOCK beyond RLIMIT_MEMLOCK (8 MiB)");
    t.call("mlock(b, 0x4000)", space.sys_mlock(b, 4 * P));
    let big = space
        .sys_mmap(&files, 0, 16 << 20, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, !0, 0)
        .unwrap_or(0);
    t.call("mlock(16 MiB mapping)", space.sys_mlock(big, 16 << 20));

    t.say("12. Statistics");
    let s = space.stats();
    let _ = writeln!(
        t.out,
        "  mmap calls {}, munmap calls {}, mprotect calls {}, merges {}, splits {}\n  \
         mapped {} KiB in {} VMAs (peak {}), locked {} KiB",
        s.mmap_calls,
        s.munmap_calls,
        s.mprotect_calls,
        s.merges,
        s.splits,
        space.total_vm() * 4,
        space.map_count(),
        s.peak_vma_count,
        space.locked_vm() * 4,
    );
    Ok(t.out)
}
