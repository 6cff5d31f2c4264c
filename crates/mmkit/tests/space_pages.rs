//! `AddressSpace` with a real page layer (`Pages` over a `FrameAllocator`): the syscalls'
//! page effects, `handle_fault`, stack growth, fork and exit, with leak checks.

mod common;
mod fault_common;

use common::{mmap, vma_at, ANON, MAP_FIXED, MAP_GROWSDOWN, MAP_POPULATE, P, PROT_READ, RW};
use fault_common::TestHost;
use mmkit::addr::PhysAddr;
use mmkit::fault::{Access, FaultError, Pages};
use mmkit::paging::{PteFlags, X86_64};
use mmkit::platform::{Asid, PhysAccess};
use mmkit::{AddressSpace, Errno, MmConfig};

const MADV_DONTNEED: u64 = 4;
const MADV_FREE: u64 = 8;
const MADV_POPULATE_WRITE: u64 = 23;
const MADV_GUARD_INSTALL: u64 = 102;
const MREMAP_MAYMOVE: u64 = 1;
const MREMAP_FIXED: u64 = 2;

/// A host that lives for the rest of the test binary (the page layer is `'static`).
fn host(mib: usize) -> &'static TestHost {
    let (mem, h) = TestHost::new(mib, 2);
    Box::leak(Box::new(mem));
    Box::leak(Box::new(h))
}

fn space(h: &'static TestHost, asid: u16) -> AddressSpace {
    let pages = Pages::<X86_64, &'static TestHost>::new(h, Asid(asid)).unwrap();
    AddressSpace::with_pages(MmConfig::default(), Box::new(pages))
}

/// The software MMU: translate, faulting (and growing the stack) as the trap path would.
fn touch(s: &mut AddressSpace, va: u64, access: Access) -> Result<PhysAddr, FaultError> {
    for _ in 0..10 {
        if let Some((pa, f)) = s.pages().unwrap().translate(va) {
            let ok = !f.is_protnone()
                && match access {
                    Access::Read => f.contains(PteFlags::READ),
                    Access::Write => f.contains(PteFlags::WRITE),
                    Access::Exec => f.contains(PteFlags::EXEC),
                };
            if ok {
                return Ok(pa);
            }
        }
        match s.handle_fault(va, access, 0) {
            Err(FaultError::NeedsWriteLock) => s.expand_stack(va)?,
            r => {
                r?;
            }
        }
    }
    panic!("fault loop did not converge at {va:#x}");
}

fn write(h: &TestHost, s: &mut AddressSpace, va: u64, v: u64) -> Result<(), FaultError> {
    let pa = touch(s, va, Access::Write)?;
    // SAFETY: the translated address lies in host memory; callers use 8-byte aligned `va`.
    unsafe { (h.fa.phys_to_ptr(pa) as *mut u64).write_volatile(v) };
    Ok(())
}

fn read(h: &TestHost, s: &mut AddressSpace, va: u64) -> Result<u64, FaultError> {
    let pa = touch(s, va, Access::Read)?;
    // SAFETY: as above.
    Ok(unsafe { (h.fa.phys_to_ptr(pa) as *const u64).read_volatile() })
}

fn rss(s: &AddressSpace, start: u64, end: u64) -> u64 {
    s.pages().unwrap().walk_stats(start, end).resident / P
}

#[test]
fn anon_write_read_zero_page_and_munmap_frees() {
    let h = host(16);
    let boot = h.in_use();
    let mut s = space(h, 1);
    let a = mmap(&mut s, 0, 8 * P, RW, ANON).unwrap();
    // A read fault maps the zero page: reads 0, not resident.
    assert_eq!(read(h, &mut s, a), Ok(0));
    assert_eq!(rss(&s, a, a + 8 * P), 0);
    assert!(vma_at(&s, a).anon_vma().is_none(), "a read fault needs no anon_vma");
    // Write faults: data visible through PhysAccess, anon_vma assigned under &self.
    for i in 0..8 {
        write(h, &mut s, a + i * P + 8, 0x1000 + i).unwrap();
    }
    for i in 0..8 {
        assert_eq!(read(h, &mut s, a + i * P + 8), Ok(0x1000 + i));
    }
    assert!(vma_at(&s, a).anon_vma().is_some());
    assert_eq!(rss(&s, a, a + 8 * P), 8);
    assert_eq!(s.pages().unwrap().rss().anon, 8);
    assert!(h.in_use() >= boot + 8);
    // munmap gives the frames back (the page tables stay, as Linux's free_pgtables() keeps
    // tables shared with neighbours; exit frees them).
    s.sys_munmap(a, 8 * P).unwrap();
    assert_eq!(s.pages().unwrap().rss().total(), 0);
    // What is left is the page tables alone (root + VmPTE pages).
    let tables = s.pages().unwrap().pte_pages() + 1;
    assert_eq!(h.in_use(), boot + tables, "munmap freed the data frames");
    assert_eq!(s.handle_fault(a, Access::Read, 0), Err(FaultError::SegvMapErr));
    s.exit();
    assert_eq!(h.in_use(), boot, "exit frees everything");
}

#[test]
fn fork_shares_until_write_then_each_sees_its_own() {
    let h = host(16);
    let boot = h.in_use();
    let mut parent = space(h, 1);
    let a = mmap(&mut parent, 0, 4 * P, RW, ANON).unwrap();
    for i in 0..4 {
        write(h, &mut parent, a + i * P, 100 + i).unwrap();
    }
    let mut child = parent.try_fork(Asid(2)).unwrap();
    let (pp, cp) = (parent.pages().unwrap(), child.pages().unwrap());
    assert_eq!(pp.translate(a).unwrap().0, cp.translate(a).unwrap().0, "shared frame");
    assert!(!pp.translate(a).unwrap().1.contains(PteFlags::WRITE), "parent COW-marked");
    assert_eq!(cp.rss().anon, 4);
    // Reads share; writes copy.
    assert_eq!(read(h, &mut child, a), Ok(100));
    write(h, &mut child, a, 7).unwrap();
    write(h, &mut parent, a + P, 8).unwrap();
    assert_eq!(read(h, &mut parent, a), Ok(100));
    assert_eq!(read(h, &mut child, a), Ok(7));
    assert_eq!(read(h, &mut parent, a + P), Ok(8));
    assert_eq!(read(h, &mut child, a + P), Ok(101));
    assert_ne!(
        parent.pages().unwrap().translate(a).unwrap().0,
        child.pages().unwrap().translate(a).unwrap().0
    );
    assert!(child.pages().unwrap().fault_stats().cow_faults >= 1);
    // Untouched pages are still shared: Pss halves.
    let st = parent.pages().unwrap().walk_stats(a + 2 * P, a + 4 * P);
    assert_eq!(st.shared_dirty + st.shared_clean, 2 * P);
    parent.exit();
    assert_eq!(
        read(h, &mut child, a + 3 * P),
        Ok(103),
        "child keeps the data after the parent exits"
    );
    drop(child);
    assert_eq!(h.in_use(), boot);
}

#[test]
fn dontneed_free_mprotect_and_maperr() {
    let h = host(16);
    let boot = h.in_use();
    let mut s = space(h, 1);
    let a = mmap(&mut s, 0, 4 * P, RW, ANON | MAP_POPULATE).unwrap();
    assert_eq!(rss(&s, a, a + 4 * P), 4, "MAP_POPULATE write-faulted every page");
    write(h, &mut s, a, 42).unwrap();
    write(h, &mut s, a + P, 43).unwrap();
    s.sys_madvise(a, P, MADV_DONTNEED).unwrap();
    assert_eq!(read(h, &mut s, a), Ok(0), "MADV_DONTNEED: zeros on the next read");
    assert_eq!(rss(&s, a, a + 4 * P), 3);
    s.sys_madvise(a + P, P, MADV_FREE).unwrap();
    assert_eq!(s.pages().unwrap().walk_stats(a + P, a + 2 * P).lazyfree, P);
    // mprotect(PROT_READ): a write is SEGV_ACCERR, reads still work.
    s.sys_mprotect(a, 4 * P, PROT_READ).unwrap();
    assert_eq!(s.handle_fault(a + 2 * P, Access::Write, 0), Err(FaultError::SegvAccErr));
    assert!(!s.pages().unwrap().translate(a + 2 * P).unwrap().1.contains(PteFlags::WRITE));
    assert_eq!(read(h, &mut s, a + P), Ok(43));
    assert_eq!(write(h, &mut s, a + P, 1), Err(FaultError::SegvAccErr));
    // Unmapped addresses: SEGV_MAPERR.
    assert_eq!(s.handle_fault(0x1000, Access::Read, 0), Err(FaultError::SegvMapErr));
    assert_eq!(s.handle_fault(a + 4 * P, Access::Write, 0), Err(FaultError::SegvMapErr));
    // A guard marker: SIGSEGV (MAPERR), and its page is zapped.
    s.sys_mprotect(a, 4 * P, RW).unwrap();
    s.sys_madvise(a + 2 * P, P, MADV_GUARD_INSTALL).unwrap();
    assert_eq!(s.handle_fault(a + 2 * P, Access::Read, 0), Err(FaultError::SegvMapErr));
    assert_eq!(s.sys_madvise(a, 4 * P, MADV_POPULATE_WRITE), Err(Errno::EFAULT));
    drop(s);
    assert_eq!(h.in_use(), boot);
}

#[test]
fn mremap_moves_pages_with_their_data() {
    let h = host(16);
    let boot = h.in_use();
    let mut s = space(h, 1);
    let a = mmap(&mut s, 0, 4 * P, RW, ANON).unwrap();
    for i in 0..4 {
        write(h, &mut s, a + i * P, 10 + i).unwrap();
    }
    let dst = a + 64 * P;
    let r = s.sys_mremap(a, 4 * P, 4 * P, MREMAP_MAYMOVE | MREMAP_FIXED, dst).unwrap();
    assert_eq!(r, dst);
    assert!(s.pages().unwrap().translate(a).is_none());
    for i in 0..4 {
        assert_eq!(read(h, &mut s, dst + i * P), Ok(10 + i));
    }
    assert_eq!(s.pages().unwrap().rss().anon, 4);
    // Shrinking unmaps the tail's pages.
    s.sys_mremap(dst, 4 * P, 2 * P, 0, 0).unwrap();
    assert_eq!(s.pages().unwrap().rss().anon, 2);
    s.exit();
    assert_eq!(h.in_use(), boot);
}

#[test]
fn stack_grows_under_the_write_lock_and_respects_the_guard_gap() {
    const G: u64 = 0x7000_0000_0000;
    let h = host(16);
    let boot = h.in_use();
    let mut s = space(h, 1);
    mmap(&mut s, G, 16 * P, RW, ANON | MAP_FIXED | MAP_GROWSDOWN).unwrap();
    mmap(&mut s, G - 300 * P, P, RW, ANON | MAP_FIXED).unwrap();
    // Below the stack: the read-locked handler asks for the write lock.
    assert_eq!(s.handle_fault(G - 30 * P, Access::Write, 0), Err(FaultError::NeedsWriteLock));
    s.expand_stack(G - 30 * P).unwrap();
    let v = vma_at(&s, G - 30 * P);
    assert_eq!((v.start, v.end), (G - 30 * P, G + 16 * P));
    write(h, &mut s, G - 30 * P, 5).unwrap();
    assert_eq!(read(h, &mut s, G - 30 * P), Ok(5));
    // 249 pages above the neighbour: inside the guard gap.
    assert_eq!(s.handle_fault(G - 50 * P, Access::Read, 0), Err(FaultError::NeedsWriteLock));
    assert_eq!(s.expand_stack(G - 50 * P), Err(FaultError::SegvMapErr));
    assert_eq!(touch(&mut s, G - 50 * P, Access::Read), Err(FaultError::SegvMapErr));
    s.exit();
    assert_eq!(h.in_use(), boot);
}

#[test]
fn many_spaces_exit_back_to_boot() {
    let h = host(32);
    let boot_free = {
        h.fa.drain_all();
        h.fa.stats().free_total()
    };
    let mut p = space(h, 1);
    let a = mmap(&mut p, 0, 64 * P, RW, ANON).unwrap();
    for i in 0..64 {
        write(h, &mut p, a + i * P, i).unwrap();
    }
    let mut kids = Vec::new();
    for k in 0..4u16 {
        let mut c = p.try_fork(Asid(10 + k)).unwrap();
        for i in (0..64).step_by(k as usize + 1) {
            write(h, &mut c, a + i * P, 1000 * k as u64 + i).unwrap();
        }
        kids.push(c);
    }
    for (k, c) in kids.iter_mut().enumerate() {
        assert_eq!(read(h, c, a), Ok(1000 * k as u64));
    }
    p.exit();
    for c in kids {
        c.exit();
    }
    h.fa.drain_all();
    assert_eq!(h.fa.stats().free_total(), boot_free, "free frames back to boot value");
}

#[test]
fn fault_injection_leaves_no_leak() {
    let h = host(16);
    let boot = h.in_use();
    let mut any = false;
    for n in 1..40 {
        let mut s = space(h, 1);
        let a = mmap(&mut s, 0, 8 * P, RW, ANON).unwrap();
        for i in 0..4 {
            write(h, &mut s, a + i * P, i).unwrap();
        }
        h.fa.fault_injector().fail_nth(n);
        let r = (|| -> Result<(), String> {
            let mut c = s.try_fork(Asid(2)).map_err(|e| format!("fork: {e:?}"))?;
            for i in 0..8 {
                write(h, &mut c, a + i * P, 7).map_err(|e| format!("{e:?}"))?;
                write(h, &mut s, a + i * P, 9).map_err(|e| format!("{e:?}"))?;
            }
            s.sys_madvise(a, 8 * P, MADV_POPULATE_WRITE).map_err(|e| format!("{e:?}"))?;
            c.exit();
            Ok(())
        })();
        let fired = h.fa.fault_injector().injected() > 0;
        h.fa.fault_injector().disarm();
        if let Err(e) = &r {
            assert!(e.contains("OutOfMemory") || e.contains("ENOMEM"), "{e}");
        }
        any |= fired;
        s.exit();
        assert_eq!(h.in_use(), boot, "leak after injecting at allocation {n}");
    }
    assert!(any, "the injector never fired");
}

#[test]
fn file_mappings_msync_writeback_and_dontneed_rereads() {
    use common::{TestFiles, MAP_PRIVATE, MAP_SHARED};
    const MS_SYNC: u64 = 4;
    let h = host(16);
    let fds = TestFiles::standard();
    let mut data = vec![0u8; 2 * P as usize];
    data[..8].copy_from_slice(&11u64.to_le_bytes());
    h.add_file(101, data);
    let mut s = space(h, 1);
    // Shared: a write reaches the file at msync(MS_SYNC).
    let sh = s.sys_mmap(&fds, 0, 2 * P, RW, MAP_SHARED, 4, 0).unwrap();
    assert_eq!(read(h, &mut s, sh), Ok(11));
    write(h, &mut s, sh + P, 77).unwrap();
    s.sys_msync(sh, 2 * P, MS_SYNC).unwrap();
    assert_eq!(&h.disk(101)[P as usize..P as usize + 8], &77u64.to_le_bytes());
    // Private: a write is a private copy; MADV_DONTNEED drops it and the file shows again.
    let pv = s.sys_mmap(&fds, 0, 2 * P, RW, MAP_PRIVATE, 4, 0).unwrap();
    write(h, &mut s, pv, 5).unwrap();
    assert_eq!(read(h, &mut s, pv), Ok(5));
    assert_eq!(read(h, &mut s, sh), Ok(11), "the private write did not reach the file");
    s.sys_madvise(pv, 2 * P, MADV_DONTNEED).unwrap();
    assert_eq!(read(h, &mut s, pv), Ok(11));
    // mlock populates.
    let a = mmap(&mut s, 0, 4 * P, RW, ANON).unwrap();
    s.sys_mlock(a, 4 * P).unwrap();
    assert_eq!(rss(&s, a, a + 4 * P), 4);
    s.exit();
    h.assert_no_leak();
}

#[test]
fn parallel_faults_under_a_shared_borrow() {
    let h = host(16);
    let mut s = space(h, 1);
    let a = mmap(&mut s, 0, 64 * P, RW, ANON).unwrap();
    let sp = &s;
    std::thread::scope(|t| {
        for cpu in 0..2usize {
            t.spawn(move || {
                fault_common::THREAD_CPU.with(|c| c.set(Some(cpu)));
                // Both threads fault every page; the first write on each page wins, the
                // other is spurious or a retry. The anon_vma is installed once.
                for i in 0..64 {
                    sp.handle_fault(a + i * P, Access::Write, cpu).unwrap();
                }
            });
        }
    });
    let av = vma_at(&s, a).anon_vma().unwrap();
    assert!(!av.chain_inherited);
    assert_eq!(s.pages().unwrap().rss().anon, 64);
    assert_eq!(rss(&s, a, a + 64 * P), 64);
    s.exit();
    h.assert_no_leak();
}
