//! The page layer's fault paths and VMA-change effects, each checked against Linux's rules:
//! demand zero, zero page, COW after fork, do_wp_page reuse, file private/shared, SIGBUS,
//! zap + targeted TLB shootdown, DONTNEED, MADV_FREE, mprotect, mremap moves, populate,
//! smaps figures, fault injection and parallel faults.

mod fault_common;

use fault_common::*;
use mmkit::addr::VirtAddr;
use mmkit::fault::{Access, FaultError, FaultOutcome, FileId};
use mmkit::frame::PageFlags;
use mmkit::paging::PteFlags;
use mmkit::platform::CpuMask;
use mmkit::vma::VmFlags;
use mmkit::Errno;

const BASE: u64 = 0x4000_0000;

#[test]
fn demand_zero_read_maps_zero_page_then_write_allocates() {
    let (_m, h) = TestHost::new(16, 2);
    let a = mm(&h, 1);
    let v = anon(BASE, 4, RW);
    assert_eq!(a.fault(&v, VirtAddr(BASE + 8), Access::Read, 0), Ok(FaultOutcome::ZeroPage));
    assert_eq!(pfn_at(&a, BASE), Some(h.zero));
    let t = a.table().query(VirtAddr(BASE)).unwrap();
    assert!(!t.leaf.attrs.flags.contains(PteFlags::WRITE));
    assert_eq!(read_u64(&h, &a, &v, BASE).unwrap(), 0);
    assert_eq!(a.rss().total(), 0, "the zero page is not RSS");
    assert_eq!(a.walk_stats(BASE, BASE + 4 * P).resident, 0);
    assert_eq!(h.in_use(), a.pte_pages() + 1, "only tables (+ root) are allocated");
    // Write: do_wp_page on the zero page gives a fresh zeroed frame.
    assert_eq!(a.fault(&v, VirtAddr(BASE), Access::Write, 0), Ok(FaultOutcome::CowCopied));
    let p = pfn_at(&a, BASE).unwrap();
    assert_ne!(p, h.zero);
    assert!(h.frame_bytes(p).iter().all(|&b| b == 0));
    assert!(h.frame_bytes(h.zero).iter().all(|&b| b == 0), "zero page untouched");
    assert_eq!(a.rss().anon, 1);
    // A write fault on an empty slot: do_anonymous_page.
    assert_eq!(a.fault(&v, VirtAddr(BASE + P), Access::Write, 0), Ok(FaultOutcome::NewAnon));
    write_u64(&h, &a, &v, BASE + P, 77).unwrap();
    assert_eq!(read_u64(&h, &a, &v, BASE + P).unwrap(), 77);
    assert_eq!(a.rss().anon, 2);
    let st = a.fault_stats();
    assert_eq!((st.page_faults, st.cow_faults), (3, 1));
    let s = a.walk_stats(BASE, BASE + 4 * P);
    assert_eq!((s.resident, s.anonymous, s.private_dirty, s.pss()), (2 * P, 2 * P, 2 * P, 2 * P));
    // Spurious fault: already writable.
    assert_eq!(a.fault(&v, VirtAddr(BASE + P), Access::Write, 0), Ok(FaultOutcome::Spurious));
    a.teardown();
    h.assert_no_leak();
}

#[test]
fn signals_for_bad_accesses() {
    let (_m, h) = TestHost::new(16, 1);
    let a = mm(&h, 1);
    let none = anon(BASE, 2, VmFlags::MAYREAD | VmFlags::MAYWRITE);
    assert_eq!(a.fault(&none, VirtAddr(BASE), Access::Read, 0), Err(FaultError::SegvAccErr));
    let ro = anon(BASE, 2, RO);
    assert_eq!(a.fault(&ro, VirtAddr(BASE), Access::Write, 0), Err(FaultError::SegvAccErr));
    assert_eq!(a.fault(&ro, VirtAddr(BASE), Access::Exec, 0), Err(FaultError::SegvAccErr));
    assert_eq!(a.fault(&ro, VirtAddr(BASE + 2 * P), Access::Read, 0), Err(FaultError::SegvMapErr));
    assert_eq!(a.fault(&ro, VirtAddr(BASE - 1), Access::Read, 0), Err(FaultError::SegvMapErr));
    a.teardown();
    h.assert_no_leak();
}

fn filled(pages: usize, seed: u8) -> Vec<u8> {
    (0..pages * P as usize).map(|i| (i / 8) as u8 ^ seed).collect()
}

#[test]
fn cow_after_fork_shares_until_write_and_data_never_crosses() {
    let (_m, h) = TestHost::new(16, 4);
    let mut parent = mm(&h, 1);
    let mut child = mm(&h, 2);
    parent.activate(0);
    parent.activate(2);
    let v = anon(BASE, 4, RW);
    for i in 0..4 {
        write_u64(&h, &parent, &v, BASE + i * P, 100 + i).unwrap();
    }
    h.tlb.take();
    parent.fork_into(&mut child, &v).unwrap();
    // The parent's writable leaves were write-protected: its TLB was flushed on its CPUs.
    let calls = h.tlb.take();
    assert!(!calls.is_empty());
    for c in &calls {
        match c {
            TlbCall::Range { cpus, .. } => assert_eq!(*cpus, parent.cpumask()),
            other => panic!("unexpected {other:?}"),
        }
    }
    for i in 0..4 {
        let va = BASE + i * P;
        assert_eq!(pfn_at(&parent, va), pfn_at(&child, va), "shared after fork");
        let meta = h.fa.meta(pfn_at(&parent, va).unwrap()).unwrap();
        assert_eq!((meta.mapcount(), meta.refcount()), (2, 2));
        for x in [&parent, &child] {
            let f = x.table().query(VirtAddr(va)).unwrap().leaf.attrs.flags;
            assert!(!f.contains(PteFlags::WRITE) && f.contains(PteFlags::COW));
        }
    }
    assert_eq!(child.rss().anon, 4);
    let s = parent.walk_stats(BASE, BASE + 4 * P);
    assert_eq!((s.shared_dirty, s.private_dirty, s.pss()), (4 * P, 0, 2 * P));
    // Child writes page 0: it gets a copy, the parent keeps the original.
    let orig = pfn_at(&parent, BASE).unwrap();
    write_u64(&h, &child, &v, BASE, 555).unwrap();
    assert_ne!(pfn_at(&child, BASE), Some(orig));
    assert_eq!(pfn_at(&parent, BASE), Some(orig));
    assert_eq!(read_u64(&h, &parent, &v, BASE).unwrap(), 100);
    assert_eq!(read_u64(&h, &child, &v, BASE).unwrap(), 555);
    assert_eq!(child.fault_stats().cow_faults, 1);
    // The parent is now the sole user of page 0: do_wp_page reuses it in place.
    assert_eq!(parent.fault(&v, VirtAddr(BASE), Access::Write, 0), Ok(FaultOutcome::Reused));
    assert_eq!(pfn_at(&parent, BASE), Some(orig));
    // Parent writes page 1 (shared): copy; the child keeps the original and its data.
    write_u64(&h, &parent, &v, BASE + P, 999).unwrap();
    assert_eq!(read_u64(&h, &child, &v, BASE + P).unwrap(), 101);
    assert_eq!(read_u64(&h, &parent, &v, BASE + P).unwrap(), 999);
    // An mprotect that re-adds PROT_WRITE must not make shared COW leaves writable.
    child.protect(BASE, BASE + 4 * P, RO).unwrap();
    child.protect(BASE, BASE + 4 * P, RW).unwrap();
    let f = child.table().query(VirtAddr(BASE + 2 * P)).unwrap().leaf.attrs.flags;
    assert!(!f.contains(PteFlags::WRITE));
    assert_eq!(parent.rss().anon + child.rss().anon, 8);
    child.teardown();
    // After the child exits, the parent's remaining pages are its own again.
    let meta = h.fa.meta(pfn_at(&parent, BASE + 3 * P).unwrap()).unwrap();
    assert_eq!((meta.mapcount(), meta.refcount()), (1, 1));
    assert_eq!(
        parent.fault(&v, VirtAddr(BASE + 3 * P), Access::Write, 0),
        Ok(FaultOutcome::Reused)
    );
    parent.teardown();
    h.assert_no_leak();
}

#[test]
fn fork_skips_what_linux_skips_and_shares_shared_pages() {
    let (_m, h) = TestHost::new(16, 1);
    let mut parent = mm(&h, 1);
    let mut child = mm(&h, 2);
    // Read-only-faulted anon without anon_vma: vma_needs_copy() is false.
    let mut v = anon(BASE, 2, RW);
    v.set_anon_vma(None);
    read_u64(&h, &parent, &v, BASE).unwrap();
    parent.fork_into(&mut child, &v).unwrap();
    assert_eq!(pfn_at(&child, BASE), None);
    // DONTCOPY / WIPEONFORK: nothing copied.
    let w = anon(BASE + 0x10_0000, 1, RW | VmFlags::WIPEONFORK);
    write_u64(&h, &parent, &w, w.start, 5).unwrap();
    parent.fork_into(&mut child, &w).unwrap();
    assert_eq!(pfn_at(&child, w.start), None);
    // Shared anonymous memory (shmem): shared frames, writable in both.
    let mut s = shmem(BASE + 0x20_0000, 2, RW, 9);
    s.set_anon_vma(Some(mmkit::vma::AnonVma { id: 3, chain_inherited: false }));
    write_u64(&h, &parent, &s, s.start, 42).unwrap();
    parent.fork_into(&mut child, &s).unwrap();
    assert_eq!(pfn_at(&child, s.start), pfn_at(&parent, s.start));
    write_u64(&h, &child, &s, s.start, 43).unwrap();
    assert_eq!(read_u64(&h, &parent, &s, s.start).unwrap(), 43, "shared memory is shared");
    assert_eq!((parent.rss().shmem, child.rss().shmem), (1, 1));
    child.teardown();
    parent.teardown();
    h.assert_no_leak();
}

#[test]
fn private_file_read_maps_cache_and_write_copies() {
    let (_m, h) = TestHost::new(16, 1);
    h.add_file(7, filled(3, 0x5a));
    let a = mm(&h, 1);
    let v = file(BASE, 3, RW, 7, 0);
    assert_eq!(a.fault(&v, VirtAddr(BASE + P), Access::Read, 0), Ok(FaultOutcome::FilePage));
    let cache_pfn = h.cache.lock().unwrap()[&(FileId::File(7), 1)];
    assert_eq!(pfn_at(&a, BASE + P), Some(cache_pfn));
    assert_eq!(a.rss().file, 1);
    let expect =
        u64::from_le_bytes(filled(3, 0x5a)[P as usize..P as usize + 8].try_into().unwrap());
    assert_eq!(read_u64(&h, &a, &v, BASE + P).unwrap(), expect);
    // Write: COW from the page cache; the cache page is untouched.
    write_u64(&h, &a, &v, BASE + P, 1).unwrap();
    assert_ne!(pfn_at(&a, BASE + P), Some(cache_pfn));
    assert_eq!(&h.frame_bytes(cache_pfn)[..8], &expect.to_le_bytes());
    assert_eq!((a.rss().file, a.rss().anon), (0, 1));
    // A write fault on a not-present page copies directly (do_cow_fault).
    assert_eq!(a.fault(&v, VirtAddr(BASE), Access::Write, 0), Ok(FaultOutcome::CowCopied));
    assert_eq!(a.rss().anon, 2);
    assert_eq!(h.disk(7), filled(3, 0x5a), "private writes never reach the file");
    a.teardown();
    h.assert_no_leak();
}

#[test]
fn shared_file_write_marks_dirty_and_writes_back() {
    let (_m, h) = TestHost::new(16, 1);
    h.add_file(3, filled(2, 1));
    let mut a = mm(&h, 1);
    let v = file(BASE, 2, RW | SHARED, 3, 0);
    assert_eq!(a.fault(&v, VirtAddr(BASE), Access::Read, 0), Ok(FaultOutcome::FilePage));
    let f = a.table().query(VirtAddr(BASE)).unwrap().leaf.attrs.flags;
    assert!(f.contains(PteFlags::WRITE) && !f.contains(PteFlags::DIRTY), "writable, clean");
    write_u64(&h, &a, &v, BASE + P, 0xdead).unwrap();
    let pfn = pfn_at(&a, BASE + P).unwrap();
    assert!(h.fa.meta(pfn).unwrap().flags().contains(PageFlags::DIRTY));
    let s = a.walk_stats(BASE, BASE + 2 * P);
    assert_eq!((s.private_dirty, s.private_clean, s.anonymous), (P, P, 0));
    assert_eq!(a.writeback(BASE, BASE + 2 * P), Ok(1));
    assert_eq!(h.disk(3)[P as usize..P as usize + 8], 0xdead_u64.to_le_bytes());
    assert!(!h.fa.meta(pfn).unwrap().flags().contains(PageFlags::DIRTY));
    assert_eq!(a.writeback(BASE, BASE + 2 * P), Ok(0), "clean now");
    // munmap writes back pages dirtied since.
    write_u64(&h, &a, &v, BASE, 0xbeef).unwrap();
    a.zap(BASE, BASE + 2 * P).unwrap();
    assert_eq!(h.disk(3)[..8], 0xbeef_u64.to_le_bytes());
    assert_eq!(a.rss().total(), 0);
    a.teardown();
    h.assert_no_leak();
}

#[test]
fn sigbus_past_eof() {
    let (_m, h) = TestHost::new(16, 1);
    h.add_file(4, vec![1; 100]);
    let a = mm(&h, 1);
    let v = file(BASE, 4, RW, 4, 0);
    assert_eq!(a.fault(&v, VirtAddr(BASE + 50), Access::Read, 0), Ok(FaultOutcome::FilePage));
    assert_eq!(a.fault(&v, VirtAddr(BASE + P), Access::Read, 0), Err(FaultError::SigBus));
    assert_eq!(a.fault(&v, VirtAddr(BASE + 3 * P), Access::Write, 0), Err(FaultError::SigBus));
    let s = shmem(BASE + 0x10_0000, 2, RW, 5);
    let big = mmkit::vma::Vma { end: s.start + 4 * P, ..s.clone() };
    assert_eq!(a.fault(&big, VirtAddr(s.start + 2 * P), Access::Read, 0), Err(FaultError::SigBus));
    assert_eq!(a.populate(&v, BASE, BASE + 2 * P, false), Err(Errno::EFAULT));
    a.teardown();
    h.assert_no_leak();
}

#[test]
fn zap_frees_frames_and_flushes_exactly_the_mm_cpumask() {
    let (_m, h) = TestHost::new(16, 4);
    let mut a = mm(&h, 7);
    let v = anon(BASE, 8, RW);
    for i in 0..8 {
        touch(&a, &v, BASE + i * P, Access::Write, [1, 3][i as usize % 2]).unwrap();
    }
    let before = h.in_use();
    h.tlb.take();
    a.zap(BASE + 2 * P, BASE + 6 * P).unwrap();
    assert_eq!(before - h.in_use(), 4);
    let mut cpus = CpuMask::empty();
    cpus.insert(1);
    cpus.insert(3);
    let calls = h.tlb.take();
    assert_eq!(calls.len(), 1);
    match &calls[0] {
        TlbCall::Range { cpus: c, asid, start, end } => {
            assert_eq!(*c, cpus);
            assert_eq!(asid.0, 7);
            assert!(*start <= BASE + 2 * P && *end >= BASE + 6 * P);
        }
        other => panic!("unexpected {other:?}"),
    }
    assert_eq!(a.rss().anon, 4);
    a.teardown();
    assert!(matches!(h.tlb.take()[..], [TlbCall::Asid { .. }]));
    h.assert_no_leak();
}

#[test]
fn dontneed_then_read_gives_zeros_or_file_data() {
    let (_m, h) = TestHost::new(16, 1);
    h.add_file(1, filled(1, 9));
    let mut a = mm(&h, 1);
    let v = anon(BASE, 1, RW);
    write_u64(&h, &a, &v, BASE, 123).unwrap();
    a.madvise_dontneed(BASE, BASE + P).unwrap();
    assert_eq!(read_u64(&h, &a, &v, BASE).unwrap(), 0);
    assert_eq!(pfn_at(&a, BASE), Some(h.zero));
    let f = file(BASE + 0x10_0000, 1, RW, 1, 0);
    write_u64(&h, &a, &f, f.start, 123).unwrap();
    a.madvise_dontneed(f.start, f.end).unwrap();
    let expect = u64::from_le_bytes(filled(1, 9)[..8].try_into().unwrap());
    assert_eq!(read_u64(&h, &a, &f, f.start).unwrap(), expect, "re-read from the file");
    a.teardown();
    h.assert_no_leak();
}

#[test]
fn madvise_free_marks_lazyfree() {
    let (_m, h) = TestHost::new(16, 1);
    let mut a = mm(&h, 1);
    let mut b = mm(&h, 2);
    let v = anon(BASE, 3, RW);
    for i in 0..2 {
        write_u64(&h, &a, &v, BASE + i * P, 1).unwrap();
    }
    a.madvise_free(BASE, BASE + 3 * P).unwrap();
    let s = a.walk_stats(BASE, BASE + 3 * P);
    assert_eq!((s.lazyfree, s.private_clean, s.private_dirty, s.referenced), (2 * P, 2 * P, 0, 0));
    // Shared (after fork) pages are not made lazy-free.
    write_u64(&h, &a, &v, BASE + 2 * P, 1).unwrap();
    a.fork_into(&mut b, &v).unwrap();
    a.madvise_free(BASE + 2 * P, BASE + 3 * P).unwrap();
    assert_eq!(a.walk_stats(BASE + 2 * P, BASE + 3 * P).lazyfree, 0);
    b.teardown();
    a.teardown();
    h.assert_no_leak();
}

#[test]
fn mremap_move_keeps_frames_and_counts() {
    let (_m, h) = TestHost::new(16, 1);
    let mut a = mm(&h, 1);
    let v = anon(BASE, 4, RW);
    for i in 0..4 {
        write_u64(&h, &a, &v, BASE + i * P, 10 + i).unwrap();
    }
    let pfns: Vec<_> = (0..4).map(|i| pfn_at(&a, BASE + i * P)).collect();
    let to = BASE + 0x4000_0000;
    a.move_range(BASE, to, 4 * P).unwrap();
    let w = anon(to, 4, RW);
    for i in 0..4 {
        assert_eq!(pfn_at(&a, BASE + i * P), None);
        assert_eq!(pfn_at(&a, to + i * P), pfns[i as usize]);
        assert_eq!(read_u64(&h, &a, &w, to + i * P).unwrap(), 10 + i);
    }
    assert_eq!(a.rss().anon, 4);
    a.teardown();
    h.assert_no_leak();
}

#[test]
fn populate_write_and_read() {
    let (_m, h) = TestHost::new(16, 1);
    let a = mm(&h, 1);
    let v = anon(BASE, 8, RW);
    assert_eq!(a.populate(&v, BASE, BASE + 4 * P, false), Ok(4));
    assert_eq!(a.rss().anon, 0, "read populate maps the zero page");
    assert_eq!(a.populate(&v, BASE, BASE + 8 * P, true), Ok(8));
    assert_eq!(a.rss().anon, 8);
    assert_eq!(a.populate(&v, BASE, BASE + 8 * P, true), Ok(0), "already there");
    a.teardown();
    h.assert_no_leak();
}

/// A scenario touching every allocation site: tables, anon frames, COW copies, cache pages,
/// do_cow_fault copies, fork tables.
fn scenario(h: &TestHost) -> Result<(), String> {
    h.add_file(11, filled(2, 3));
    let mut a = match mmkit::fault::Pages::new(h, mmkit::platform::Asid(1)) {
        Ok(a) => a,
        Err(_) => return Err("oom".into()),
    };
    let mut b = match mmkit::fault::Pages::new(h, mmkit::platform::Asid(2)) {
        Ok(b) => b,
        Err(_) => {
            a.teardown();
            return Err("oom".into());
        }
    };
    let v = anon(BASE, 3, RW);
    let f = file(BASE + 0x20_0000, 2, RW, 11, 0);
    let r = (|| -> Result<(), String> {
        let e = |x: FaultError| format!("{x:?}");
        read_u64(h, &a, &v, BASE).map_err(e)?;
        write_u64(h, &a, &v, BASE, 1).map_err(e)?;
        write_u64(h, &a, &v, BASE + P, 2).map_err(e)?;
        read_u64(h, &a, &f, f.start).map_err(e)?;
        write_u64(h, &a, &f, f.start + P, 3).map_err(e)?;
        a.fork_into(&mut b, &v).map_err(|x| format!("{x:?}"))?;
        a.fork_into(&mut b, &f).map_err(|x| format!("{x:?}"))?;
        write_u64(h, &b, &v, BASE, 4).map_err(e)?;
        write_u64(h, &b, &f, f.start, 5).map_err(e)?;
        a.populate(&v, BASE, v.end, true).map_err(|x| format!("{x:?}"))?;
        // Invariant: whatever succeeded, the data is right.
        assert_eq!(read_u64(h, &a, &v, BASE).map_err(e)?, 1);
        assert_eq!(read_u64(h, &b, &v, BASE).map_err(e)?, 4);
        Ok(())
    })();
    // No half-updated PTE: whatever failed, counts and leaves agree.
    check_consistent(h, &[&a, &b]);
    b.teardown();
    a.teardown();
    r
}

#[test]
fn fault_injection_every_allocation() {
    let mut n = 1;
    loop {
        let (_m, h) = TestHost::new(16, 1);
        h.fa.fault_injector().fail_nth(n);
        let r = scenario(&h);
        let fired = h.fa.fault_injector().injected() > 0;
        h.fa.fault_injector().disarm();
        // No half-updated PTE: every leaf left is consistent with the frame counts, so the
        // teardown inside `scenario` returned everything.
        h.assert_no_leak();
        if !fired {
            assert!(r.is_ok(), "no failure injected yet the scenario failed: {r:?}");
            break;
        }
        assert!(r.is_err(), "allocation {n} failed silently");
        n += 1;
    }
    assert!(n > 10, "the scenario allocates at least 10 frames ({n})");
}

#[test]
fn parallel_faults_end_consistent() {
    let (_m, h) = TestHost::new(32, 4);
    let mut a = mm(&h, 1);
    let v = anon(BASE, 256, RW);
    std::thread::scope(|s| {
        for t in 0..4u64 {
            let (a, v, h) = (&a, &v, &h);
            s.spawn(move || {
                THREAD_CPU.with(|c| c.set(Some(t as usize)));
                // Every thread touches every page, in different orders, reading and writing.
                for k in 0..256u64 {
                    let i = (k * (2 * t + 1) + t * 17) % 256;
                    let va = BASE + i * P;
                    if (i + t) % 3 == 0 {
                        read_u64(h, a, v, va).unwrap();
                    } else {
                        let pa = touch(a, v, va + 8 * t, Access::Write, t as usize).unwrap();
                        // SAFETY: translated address in host memory, 8-byte aligned.
                        unsafe {
                            (mmkit::platform::PhysAccess::phys_to_ptr(&h.fa, pa) as *mut u64)
                                .write_volatile(i * 10 + t)
                        };
                    }
                }
            });
        }
    });
    // Every page was written by at least one thread; each thread's word survived.
    for i in 0..256u64 {
        let p = pfn_at(&a, BASE + i * P).unwrap();
        assert_ne!(p, h.zero);
        let meta = h.fa.meta(p).unwrap();
        assert_eq!((meta.mapcount(), meta.refcount()), (1, 1));
        for t in 0..4u64 {
            if (i + t) % 3 != 0 {
                assert_eq!(read_u64(&h, &a, &v, BASE + i * P + 8 * t).unwrap(), i * 10 + t);
            }
        }
    }
    assert_eq!(a.rss().anon, 256);
    check_consistent(&h, &[&a]);
    assert_eq!(h.in_use(), 256 + a.pte_pages() + 1);
    a.zap(BASE, BASE + 256 * P).unwrap();
    a.teardown();
    h.assert_no_leak();
}

#[test]
fn fork_of_read_only_private_pages_then_mprotect_keeps_them_cow() {
    let (_m, h) = TestHost::new(16, 1);
    let mut parent = mm(&h, 1);
    let mut child = mm(&h, 2);
    let v = anon(BASE, 1, RW);
    write_u64(&h, &parent, &v, BASE, 11).unwrap();
    // mprotect(PROT_READ), fork, mprotect(PROT_READ|PROT_WRITE) in both.
    parent.protect(BASE, BASE + P, RO).unwrap();
    parent.fork_into(&mut child, &anon(BASE, 1, RO)).unwrap();
    parent.protect(BASE, BASE + P, RW).unwrap();
    child.protect(BASE, BASE + P, RW).unwrap();
    write_u64(&h, &child, &v, BASE, 22).unwrap();
    assert_eq!(read_u64(&h, &parent, &v, BASE).unwrap(), 11, "no data crosses");
    assert_eq!(read_u64(&h, &child, &v, BASE).unwrap(), 22);
    check_consistent(&h, &[&parent, &child]);
    child.teardown();
    parent.teardown();
    h.assert_no_leak();
}

#[test]
fn shmem_pages_count_as_shmem_and_zero_fill() {
    let (_m, h) = TestHost::new(16, 1);
    let mut a = mm(&h, 1);
    let s = shmem(BASE, 2, RW, 4);
    assert_eq!(read_u64(&h, &a, &s, BASE).unwrap(), 0);
    write_u64(&h, &a, &s, BASE + P, 9).unwrap();
    assert_eq!(a.rss().shmem, 2);
    let st = a.walk_stats(BASE, BASE + 2 * P);
    assert_eq!((st.anonymous, st.resident, st.pss_shmem_shifted >> 12), (0, 2 * P, 2 * P));
    a.zap(BASE, BASE + 2 * P).unwrap();
    // The object keeps its data (the page cache holds it).
    assert_eq!(read_u64(&h, &a, &s, BASE + P).unwrap(), 9);
    a.teardown();
    h.assert_no_leak();
}

#[test]
fn parallel_cow_breaks_in_one_space_never_leak_into_the_other() {
    let (_m, h) = TestHost::new(32, 4);
    let mut parent = mm(&h, 1);
    let mut child = mm(&h, 2);
    let v = anon(BASE, 64, RW);
    for i in 0..64 {
        write_u64(&h, &parent, &v, BASE + i * P, i).unwrap();
    }
    parent.fork_into(&mut child, &v).unwrap();
    std::thread::scope(|s| {
        for t in 0..4u64 {
            let (a, v, h) = (&parent, &v, &h);
            s.spawn(move || {
                THREAD_CPU.with(|c| c.set(Some(t as usize)));
                for k in 0..64u64 {
                    let i = (k * 5 + t * 16) % 64;
                    let pa =
                        touch(a, v, BASE + i * P + 8 * (t + 1), Access::Write, t as usize).unwrap();
                    // SAFETY: translated address in host memory, 8-byte aligned.
                    unsafe {
                        (mmkit::platform::PhysAccess::phys_to_ptr(&h.fa, pa) as *mut u64)
                            .write_volatile(1000 + t)
                    };
                }
            });
        }
    });
    check_consistent(&h, &[&parent, &child]);
    for i in 0..64 {
        let va = BASE + i * P;
        assert_ne!(pfn_at(&parent, va), pfn_at(&child, va));
        assert_eq!(read_u64(&h, &child, &v, va).unwrap(), i);
        assert_eq!(read_u64(&h, &parent, &v, va).unwrap(), i);
        for t in 0..4 {
            assert_eq!(read_u64(&h, &child, &v, va + 8 * (t + 1)).unwrap(), 0);
            assert_eq!(read_u64(&h, &parent, &v, va + 8 * (t + 1)).unwrap(), 1000 + t);
        }
    }
    assert_eq!(parent.fault_stats().cow_faults, 64, "one copy per page, losers retried");
    child.teardown();
    parent.teardown();
    h.assert_no_leak();
}
