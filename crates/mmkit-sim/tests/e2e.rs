//! End to end on x86-64 4-level: address spaces from the core run on the simulated machine,
//! faults go through `AddressSpace::handle_fault`, TLB shootdowns reach the per-CPU TLBs, and
//! every frame comes back at exit.

use std::sync::Arc;

use mmkit::fault::FaultError;
use mmkit::space::NoFiles;
use mmkit::{AddressSpace, VirtAddr};
use mmkit_sim::{AccessError, FaultKind, Machine, MachineConfig, SimKernel};

const P: u64 = 4096;
const PROT_READ: u64 = 1;
const PROT_WRITE: u64 = 2;
const MAP_PRIVATE: u64 = 0x02;
const MAP_ANONYMOUS: u64 = 0x20;
const MAP_FIXED: u64 = 0x10;
const MAP_GROWSDOWN: u64 = 0x0100;

fn kernel(mib: u64) -> Arc<SimKernel> {
    let m =
        Machine::new(MachineConfig { mem_size: mib << 20, ..MachineConfig::default() }).unwrap();
    SimKernel::boot(m).unwrap()
}

fn mmap_anon(s: &mut AddressSpace, len: u64) -> u64 {
    s.sys_mmap(&NoFiles, 0, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, u64::MAX, 0)
        .unwrap()
}

fn store(k: &SimKernel, cpu: usize, s: &AddressSpace, va: u64, v: u64) -> Result<(), FaultError> {
    k.cpu(cpu, s).store_u64(&SimKernel::context(s), VirtAddr(va), v).map_err(signal)
}

fn load(k: &SimKernel, cpu: usize, s: &AddressSpace, va: u64) -> Result<u64, FaultError> {
    k.cpu(cpu, s).load_u64(&SimKernel::context(s), VirtAddr(va)).map_err(signal)
}

fn signal(e: AccessError<FaultError>) -> FaultError {
    match e {
        AccessError::Handler { error, .. } => error,
        AccessError::Unresolved(f) => panic!("fault not resolved: {f:?}"),
    }
}

#[test]
fn demand_paging_zero_reads_and_stores() {
    let k = kernel(16);
    let boot = k.free_frames();
    let mut s = k.new_space().unwrap();
    let a = mmap_anon(&mut s, 8 * P);
    // Untouched pages read as zeros (the zero page), without allocating data frames.
    for i in 0..8 {
        assert_eq!(load(&k, 0, &s, a + i * P + 16), Ok(0));
    }
    assert_eq!(s.pages().unwrap().rss().total(), 0);
    for i in 0..8 {
        store(&k, 0, &s, a + i * P + 8, 0xa000 + i).unwrap();
    }
    for i in 0..8 {
        assert_eq!(load(&k, 0, &s, a + i * P + 8), Ok(0xa000 + i));
        assert_eq!(load(&k, 1, &s, a + i * P + 8), Ok(0xa000 + i), "CPU 1 sees CPU 0's store");
        assert_eq!(load(&k, 0, &s, a + i * P + 16), Ok(0));
    }
    assert_eq!(s.pages().unwrap().rss().anon, 8);
    assert!(k.free_frames() < boot);
    s.exit();
    assert_eq!(k.free_frames(), boot, "exit frees every frame");
}

#[test]
fn mprotect_flushes_every_cpu() {
    let k = kernel(16);
    let boot = k.free_frames();
    let mut s = k.new_space().unwrap();
    let a = mmap_anon(&mut s, 2 * P);
    store(&k, 0, &s, a, 1).unwrap();
    // CPU 1 caches a writable translation.
    store(&k, 1, &s, a + 8, 2).unwrap();
    assert!(k.machine().tlb_len(1) > 0);
    s.sys_mprotect(a, 2 * P, PROT_READ).unwrap();
    for cpu in 0..2 {
        assert_eq!(store(&k, cpu, &s, a + 16, 3), Err(FaultError::SegvAccErr), "CPU {cpu}");
        assert_eq!(load(&k, cpu, &s, a), Ok(1));
        assert_eq!(load(&k, cpu, &s, a + 8), Ok(2));
        assert_eq!(load(&k, cpu, &s, a + 16), Ok(0), "the refused store wrote nothing");
    }
    // The protection fault is reported with the MMU's fault.
    let e = k.cpu(1, &s).store_u64(&SimKernel::context(&s), VirtAddr(a), 9).unwrap_err();
    assert_eq!(e.fault().kind, FaultKind::Protection);
    s.exit();
    assert_eq!(k.free_frames(), boot);
}

#[test]
fn munmap_flushes_every_cpu() {
    let k = kernel(16);
    let boot = k.free_frames();
    let mut s = k.new_space().unwrap();
    let a = mmap_anon(&mut s, 4 * P);
    for i in 0..4 {
        store(&k, 0, &s, a + i * P, 10 + i).unwrap();
        assert_eq!(load(&k, 1, &s, a + i * P), Ok(10 + i));
    }
    s.sys_munmap(a, 4 * P).unwrap();
    for cpu in 0..2 {
        for i in 0..4 {
            assert_eq!(load(&k, cpu, &s, a + i * P), Err(FaultError::SegvMapErr), "CPU {cpu}");
            assert_eq!(store(&k, cpu, &s, a + i * P, 0), Err(FaultError::SegvMapErr));
        }
    }
    s.exit();
    assert_eq!(k.free_frames(), boot);
}

#[test]
fn fork_is_copy_on_write_both_ways() {
    let k = kernel(16);
    let boot = k.free_frames();
    let mut parent = k.new_space().unwrap();
    let a = mmap_anon(&mut parent, 4 * P);
    for i in 0..4 {
        store(&k, 0, &parent, a + i * P, 100 + i).unwrap();
        // Both CPUs cache the parent's writable translations before the fork.
        assert_eq!(load(&k, 1, &parent, a + i * P), Ok(100 + i));
    }
    let child = k.fork(&mut parent).unwrap();
    assert_ne!(SimKernel::context(&child).asid, SimKernel::context(&parent).asid);
    assert_eq!(load(&k, 1, &child, a), Ok(100));
    // The child writes page 0: the parent keeps its value.
    store(&k, 1, &child, a, 7).unwrap();
    assert_eq!(load(&k, 1, &child, a), Ok(7));
    for cpu in 0..2 {
        assert_eq!(load(&k, cpu, &parent, a), Ok(100), "CPU {cpu}");
    }
    // The parent writes page 1 (from the CPU that cached it writable): the child keeps its.
    store(&k, 1, &parent, a + P, 8).unwrap();
    store(&k, 0, &parent, a + 2 * P, 9).unwrap();
    for cpu in 0..2 {
        assert_eq!(load(&k, cpu, &parent, a + P), Ok(8));
        assert_eq!(load(&k, cpu, &child, a + P), Ok(101), "CPU {cpu}");
        assert_eq!(load(&k, cpu, &child, a + 2 * P), Ok(102), "CPU {cpu}");
        assert_eq!(load(&k, cpu, &child, a + 3 * P), Ok(103));
        assert_eq!(load(&k, cpu, &parent, a + 3 * P), Ok(103));
    }
    assert!(child.pages().unwrap().fault_stats().cow_faults >= 1);
    assert!(parent.pages().unwrap().fault_stats().cow_faults >= 1);
    parent.exit();
    // The child's pages survive the parent's exit.
    assert_eq!(load(&k, 0, &child, a + 3 * P), Ok(103));
    store(&k, 0, &child, a + 3 * P, 1).unwrap();
    child.exit();
    assert_eq!(k.free_frames(), boot, "no frame leaked");
}

#[test]
fn a_secret_never_reaches_the_next_process() {
    const SECRET: u8 = 0x5a;
    let k = kernel(8);
    let boot = k.free_frames();
    let ctx_len = 16 << 20; // more than the machine has
                            // Process A fills all the memory it can get with the secret, then exits.
    let mut a = k.new_space().unwrap();
    let base = mmap_anon(&mut a, ctx_len);
    let page = [SECRET; P as usize];
    let mut filled = 0;
    for i in 0..ctx_len / P {
        match k.cpu(0, &a).store(&SimKernel::context(&a), VirtAddr(base + i * P), &page) {
            Ok(()) => filled += 1,
            Err(e) => {
                assert_eq!(signal(e), FaultError::OutOfMemory);
                break;
            }
        }
    }
    assert!(filled > boot / 2, "A got most of memory ({filled} of {boot} frames)");
    a.exit();
    assert_eq!(k.free_frames(), boot);
    // Process B allocates all memory (one byte per page) and reads every page in full.
    let mut b = k.new_space().unwrap();
    let base = mmap_anon(&mut b, ctx_len);
    let mut got = 0;
    for i in 0..ctx_len / P {
        let va = VirtAddr(base + i * P);
        match k.cpu(1, &b).store(&SimKernel::context(&b), va, &[1]) {
            Ok(()) => got += 1,
            Err(e) => {
                assert_eq!(signal(e), FaultError::OutOfMemory);
                break;
            }
        }
    }
    assert!(got >= filled - 8, "B got as much memory as A ({got} vs {filled})");
    let mut buf = [0u8; P as usize];
    for i in 0..got {
        k.cpu(0, &b).load(&SimKernel::context(&b), VirtAddr(base + i * P), &mut buf).unwrap();
        assert_eq!(buf[0], 1);
        assert!(buf[1..].iter().all(|&x| x == 0), "page {i} of B holds old data");
    }
    b.exit();
    assert_eq!(k.free_frames(), boot);
}

/// `SimKernel::access` with a u64 store (the stack-growth retry loop).
fn push(
    k: &SimKernel,
    cpu: usize,
    s: &mut AddressSpace,
    va: u64,
    v: u64,
) -> Result<(), FaultError> {
    k.access(s, cpu, |c, ctx| c.store_u64(ctx, VirtAddr(va), v)).map_err(signal)
}

#[test]
fn growsdown_mapping_grows_on_a_store_below_it() {
    let k = kernel(16);
    let boot = k.free_frames();
    let mut s = k.new_space().unwrap();
    let flags = MAP_PRIVATE | MAP_ANONYMOUS | MAP_GROWSDOWN;
    let top = s.sys_mmap(&NoFiles, 0, P, PROT_READ | PROT_WRITE, flags, u64::MAX, 0).unwrap();
    // Under the read lock alone the fault below the stack asks for the write lock.
    assert_eq!(store(&k, 0, &s, top - 8, 1), Err(FaultError::NeedsWriteLock));
    assert_eq!(s.vmas().find(top - 8).map(|v| v.start), None);
    // Through the retry loop the stack grows and the store lands.
    push(&k, 0, &mut s, top - 8, 0x5ac).unwrap();
    assert_eq!(s.vmas().find(top - 8).map(|v| v.start), Some(top - P));
    push(&k, 1, &mut s, top - 3 * P + 16, 0x5ad).unwrap();
    assert_eq!(s.vmas().find(top - 3 * P).map(|v| (v.start, v.end)), Some((top - 3 * P, top + P)));
    assert_eq!(load(&k, 1, &s, top - 8), Ok(0x5ac));
    assert_eq!(load(&k, 0, &s, top - 3 * P + 16), Ok(0x5ad));
    assert_eq!(load(&k, 0, &s, top - 2 * P), Ok(0), "the page in between reads as zeros");
    // Accesses inside the stack go straight through (no growth, no retry needed).
    assert_eq!(store(&k, 0, &s, top + 8, 3), Ok(()));
    s.exit();
    assert_eq!(k.free_frames(), boot);
}

#[test]
fn stack_growth_into_the_guard_gap_is_segv_maperr() {
    // LTP mmap18 / cases.md M5: the stack may not grow within stack_guard_gap (256 pages)
    // of the accessible mapping below it.
    let k = kernel(16);
    let boot = k.free_frames();
    let mut s = k.new_space().unwrap();
    let rw = PROT_READ | PROT_WRITE;
    let low = 0x1000_0000;
    let fixed = MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED;
    assert_eq!(s.sys_mmap(&NoFiles, low, P, rw, fixed, u64::MAX, 0), Ok(low));
    let gap = 256 * P;
    let top = low + P + gap + 4 * P;
    assert_eq!(s.sys_mmap(&NoFiles, top, P, rw, fixed | MAP_GROWSDOWN, u64::MAX, 0), Ok(top));
    store(&k, 0, &s, low, 1).unwrap();
    // Growing down to exactly the gap's top is allowed...
    push(&k, 0, &mut s, low + P + gap, 2).unwrap();
    assert_eq!(s.vmas().find(low + P + gap).map(|v| v.start), Some(low + P + gap));
    // ...one page further lands inside the gap: SEGV_MAPERR, and the stack stays put.
    for cpu in 0..2 {
        for va in [low + P + gap - 8, low + P + 16, low + 2 * P] {
            assert_eq!(push(&k, cpu, &mut s, va, 3), Err(FaultError::SegvMapErr), "{va:#x}");
            assert_eq!(load(&k, cpu, &s, va), Err(FaultError::NeedsWriteLock));
        }
    }
    assert_eq!(s.vmas().find(low + P + gap).map(|v| v.start), Some(low + P + gap));
    assert_eq!(load(&k, 1, &s, low + P + gap), Ok(2));
    assert_eq!(load(&k, 1, &s, low), Ok(1));
    s.exit();
    assert_eq!(k.free_frames(), boot);
}
