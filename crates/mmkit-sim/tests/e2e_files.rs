//! End to end with file-backed mappings: the core's fault path reads and writes back pages
//! through the simulator's page cache (`MemFiles`), and every frame comes back once the
//! spaces exit and the cache is dropped.

use std::sync::Arc;

use mmkit::fault::FaultError;
use mmkit::space::{FdTable, FileKind, OpenFile};
use mmkit::vma::FileObject;
use mmkit::{AddressSpace, VirtAddr};
use mmkit_sim::{AccessError, Machine, MachineConfig, SimKernel};

const P: u64 = 4096;
const PROT_READ: u64 = 1;
const PROT_WRITE: u64 = 2;
const MAP_SHARED: u64 = 0x01;
const MAP_PRIVATE: u64 = 0x02;
const MS_SYNC: u64 = 4;
const MADV_DONTNEED: u64 = 4;
const FILE: u64 = 7;

/// A descriptor table with file `FILE` open read-write as fd 3.
struct Fds;

impl FdTable for Fds {
    fn get(&self, fd: i32) -> Option<OpenFile> {
        (fd == 3).then(|| OpenFile {
            file: Arc::new(FileObject {
                id: FILE,
                dev_major: 8,
                dev_minor: 1,
                inode: FILE,
                path: "/data".into(),
            }),
            readable: true,
            writable: true,
            kind: FileKind::Regular,
        })
    }
}

fn kernel() -> Arc<SimKernel> {
    let m = Machine::new(MachineConfig { mem_size: 16 << 20, ..MachineConfig::default() }).unwrap();
    SimKernel::boot(m).unwrap()
}

/// File contents: byte `i` of the file is `pattern(i)`.
fn pattern(i: usize) -> u8 {
    (i % 251) as u8
}

fn file(len: usize) -> Vec<u8> {
    (0..len).map(pattern).collect()
}

fn mmap_file(s: &mut AddressSpace, len: u64, flags: u64) -> u64 {
    s.sys_mmap(&Fds, 0, len, PROT_READ | PROT_WRITE, flags, 3, 0).unwrap()
}

fn signal(e: AccessError<FaultError>) -> FaultError {
    match e {
        AccessError::Handler { error, .. } => error,
        AccessError::Unresolved(f) => panic!("fault not resolved: {f:?}"),
    }
}

fn load8(k: &SimKernel, cpu: usize, s: &AddressSpace, va: u64) -> Result<u8, FaultError> {
    k.cpu(cpu, s).load_u8(&SimKernel::context(s), VirtAddr(va)).map_err(signal)
}

fn store8(k: &SimKernel, cpu: usize, s: &AddressSpace, va: u64, v: u8) -> Result<(), FaultError> {
    k.cpu(cpu, s).store_u8(&SimKernel::context(s), VirtAddr(va), v).map_err(signal)
}

/// Every frame is back after the spaces exited and the page cache was dropped.
fn assert_no_leak(k: &SimKernel, boot: u64) {
    k.files().drop_cache(k.frames());
    assert_eq!(k.free_frames(), boot, "every frame freed");
}

#[test]
fn private_file_read_sees_the_file_and_writes_are_copy_on_write() {
    let k = kernel();
    let boot = k.free_frames();
    let len = 3 * P as usize;
    k.files().add_file(FILE, file(len));
    let mut s = k.new_space().unwrap();
    let a = mmap_file(&mut s, 3 * P, MAP_PRIVATE);
    for off in [0, 1, 100, P as usize, 2 * P as usize + 4095] {
        assert_eq!(load8(&k, 0, &s, a + off as u64), Ok(pattern(off)), "offset {off}");
        assert_eq!(load8(&k, 1, &s, a + off as u64), Ok(pattern(off)));
    }
    store8(&k, 0, &s, a + 1, 0xee).unwrap();
    store8(&k, 1, &s, a + P + 2, 0xdd).unwrap();
    for cpu in 0..2 {
        assert_eq!(load8(&k, cpu, &s, a + 1), Ok(0xee));
        assert_eq!(load8(&k, cpu, &s, a + P + 2), Ok(0xdd));
        assert_eq!(load8(&k, cpu, &s, a), Ok(pattern(0)), "the rest of the page is the file's");
    }
    // A second private mapping still sees the file, not the first one's private copies.
    let b = mmap_file(&mut s, 3 * P, MAP_PRIVATE);
    assert_eq!(load8(&k, 0, &s, b + 1), Ok(pattern(1)));
    assert_eq!(load8(&k, 1, &s, b + P + 2), Ok(pattern(P as usize + 2)));
    s.sys_msync(a, 3 * P, MS_SYNC).unwrap();
    s.sys_munmap(a, 3 * P).unwrap();
    s.exit();
    assert_eq!(k.files().disk(FILE).unwrap(), file(len), "the file is unchanged");
    assert_no_leak(&k, boot);
}

#[test]
fn shared_file_writes_are_seen_by_other_mappings_and_written_back() {
    let k = kernel();
    let boot = k.free_frames();
    let len = 2 * P as usize;
    k.files().add_file(FILE, file(len));
    let mut s = k.new_space().unwrap();
    let a = mmap_file(&mut s, 2 * P, MAP_SHARED);
    let b = mmap_file(&mut s, 2 * P, MAP_SHARED);
    // Another process maps the file too.
    let mut t = k.new_space().unwrap();
    let c = mmap_file(&mut t, 2 * P, MAP_SHARED);
    assert_eq!(load8(&k, 1, &s, b + 5), Ok(pattern(5)));
    assert_eq!(load8(&k, 1, &t, c + 5), Ok(pattern(5)));
    store8(&k, 0, &s, a + 5, 0xab).unwrap();
    for cpu in 0..2 {
        assert_eq!(load8(&k, cpu, &s, b + 5), Ok(0xab), "CPU {cpu}, second mapping");
        assert_eq!(load8(&k, cpu, &t, c + 5), Ok(0xab), "CPU {cpu}, other process");
    }
    assert_eq!(k.files().disk(FILE).unwrap()[5], pattern(5), "not written back yet");
    s.sys_msync(a, 2 * P, MS_SYNC).unwrap();
    assert_eq!(k.files().disk(FILE).unwrap()[5], 0xab, "msync(MS_SYNC) wrote it back");
    // A store through the other process's mapping, written back by its munmap.
    store8(&k, 1, &t, c + P + 9, 0xcd).unwrap();
    assert_eq!(load8(&k, 0, &s, a + P + 9), Ok(0xcd));
    t.sys_munmap(c, 2 * P).unwrap();
    assert_eq!(k.files().disk(FILE).unwrap()[P as usize + 9], 0xcd, "munmap wrote it back");
    // A store through the second mapping, written back by its munmap.
    store8(&k, 0, &s, b + 2 * P - 1, 0x11).unwrap();
    s.sys_munmap(b, 2 * P).unwrap();
    let disk = k.files().disk(FILE).unwrap();
    assert_eq!(disk[len - 1], 0x11);
    assert_eq!(disk.len(), len, "write-back does not change the file size");
    s.exit();
    t.exit();
    assert_no_leak(&k, boot);
}

#[test]
fn access_past_eof_is_sigbus() {
    let k = kernel();
    let boot = k.free_frames();
    let len = P as usize + 100;
    k.files().add_file(FILE, file(len));
    let mut s = k.new_space().unwrap();
    for flags in [MAP_PRIVATE, MAP_SHARED] {
        let a = mmap_file(&mut s, 4 * P, flags);
        // The last partial page is mapped, zero past EOF.
        assert_eq!(load8(&k, 0, &s, a + P + 99), Ok(pattern(len - 1)));
        assert_eq!(load8(&k, 0, &s, a + P + 100), Ok(0));
        assert_eq!(load8(&k, 1, &s, a + 2 * P - 1), Ok(0));
        // Pages wholly past EOF: SIGBUS on load and store, from every CPU.
        for cpu in 0..2 {
            for va in [a + 2 * P, a + 3 * P + 8] {
                assert_eq!(load8(&k, cpu, &s, va), Err(FaultError::SigBus), "{flags:#x}");
                assert_eq!(store8(&k, cpu, &s, va, 1), Err(FaultError::SigBus), "{flags:#x}");
            }
        }
        s.sys_munmap(a, 4 * P).unwrap();
    }
    s.exit();
    assert_eq!(k.files().disk(FILE).unwrap(), file(len));
    assert_no_leak(&k, boot);
}

#[test]
fn madv_dontneed_on_a_private_file_mapping_rereads_the_file() {
    let k = kernel();
    let boot = k.free_frames();
    let len = 2 * P as usize;
    k.files().add_file(FILE, file(len));
    let mut s = k.new_space().unwrap();
    let a = mmap_file(&mut s, 2 * P, MAP_PRIVATE);
    store8(&k, 0, &s, a + 3, 0x77).unwrap();
    store8(&k, 1, &s, a + P + 3, 0x78).unwrap();
    assert_eq!(load8(&k, 1, &s, a + 3), Ok(0x77));
    assert_eq!(load8(&k, 0, &s, a + P + 3), Ok(0x78));
    s.sys_madvise(a, P, MADV_DONTNEED).unwrap();
    for cpu in 0..2 {
        assert_eq!(load8(&k, cpu, &s, a + 3), Ok(pattern(3)), "CPU {cpu}: the file again");
        assert_eq!(load8(&k, cpu, &s, a + P + 3), Ok(0x78), "CPU {cpu}: untouched page");
    }
    s.sys_madvise(a, 2 * P, MADV_DONTNEED).unwrap();
    assert_eq!(load8(&k, 1, &s, a + P + 3), Ok(pattern(P as usize + 3)));
    s.exit();
    assert_eq!(k.files().disk(FILE).unwrap(), file(len));
    assert_no_leak(&k, boot);
}
