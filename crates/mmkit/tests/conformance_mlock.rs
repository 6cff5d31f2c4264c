//! Conformance: mlock, mlock2, munlock, mlockall, munlockall — cases.md section H. Each test
//! asserts the return value or errno and the resulting VMA flags; residency (Rss, Locked in
//! smaps) comes with the simulator and is skipped here.

mod common;

use common::*;
use mmkit::vma::VmFlags;
use mmkit::Errno;

const MLOCK_ONFAULT: u64 = 1;
const MCL_CURRENT: u64 = 1;
const MCL_FUTURE: u64 = 2;
const MCL_ONFAULT: u64 = 4;
const MS_INVALIDATE: u64 = 2;

fn locked(s: &mmkit::AddressSpace, a: u64) -> bool {
    vma_at(s, a).flags.contains(VmFlags::LOCKED)
}

fn flags_list(s: &mmkit::AddressSpace) -> Vec<(u64, u64, String)> {
    s.vmas().iter().map(|v| (v.start, v.end, vmflags(v.flags))).collect()
}

#[test]
fn h1_mlock_rw_page_then_msync_invalidate_ebusy() {
    let mut s = space();
    let p = anon(&mut s, BASE, P, RW);
    assert_eq!(s.sys_mlock(p, P), Ok(0));
    assert_eq!(vmflags(vma_at(&s, p).flags), "rd wr mr mw me lo ac");
    assert_eq!(s.locked_vm(), 1);
    assert_eq!(s.sys_msync(p, P, MS_INVALIDATE), Err(Errno::EBUSY));
    check(&s);
}

#[test]
fn h2_mlock_prot_none_enomem_yet_locked() {
    let mut s = space();
    let p = anon(&mut s, BASE, 8 * P, PROT_NONE);
    assert_eq!(s.sys_mlock(p, P), Err(Errno::ENOMEM));
    assert_eq!(
        flags_list(&s),
        vec![(p, p + P, "mr mw me lo".to_string()), (p + P, p + 8 * P, "mr mw me".to_string())]
    );
    assert_eq!(s.locked_vm(), 1);
    // [V] With MLOCK_ONFAULT nothing is faulted in, so there is no error.
    assert_eq!(s.sys_mlock2(p + 2 * P, P, MLOCK_ONFAULT), Ok(0));
    assert_eq!(vmflags(vma_at(&s, p + 2 * P).flags), "mr mw me lo lf");
    check(&s);
}

#[test]
fn h3_fork_child_not_locked() {
    let mut s = space();
    let p = anon(&mut s, BASE, 2 * P, RW);
    assert_eq!(s.sys_mlock(p, 2 * P), Ok(0));
    let child = s.fork();
    assert!(!locked(&child, p));
    assert_eq!(child.locked_vm(), 0);
    assert!(locked(&s, p));
}

#[test]
fn h4_zero_rlimit_unprivileged_eperm() {
    let mut s = space_with(|c| c.rlimit_memlock = 0);
    let p = anon(&mut s, BASE, P, RW);
    assert_eq!(s.sys_mlock(p, P), Err(Errno::EPERM));
    assert_eq!(s.sys_mlock2(p, P, 0), Err(Errno::EPERM));
    assert_eq!(s.sys_mlockall(MCL_CURRENT), Err(Errno::EPERM));
    // Flags are checked before permission.
    assert_eq!(s.sys_mlock2(p, P, 2), Err(Errno::EINVAL));
    assert!(!locked(&s, p));
    // munlock needs no permission.
    assert_eq!(s.sys_munlock(p, P), Ok(0));
    let mut s = space_with(|c| {
        c.rlimit_memlock = 0;
        c.cap_ipc_lock = true;
    });
    let p = anon(&mut s, BASE, P, RW);
    assert_eq!(s.sys_mlock(p, P), Ok(0));
}

#[test]
fn h5_rlimit_insufficient_enomem() {
    let mut s = space_with(|c| c.rlimit_memlock = P);
    let p = anon(&mut s, BASE, 2 * P, RW);
    assert_eq!(s.sys_mlock(p, 2 * P), Err(Errno::ENOMEM));
    assert!(!locked(&s, p));
    assert_eq!(s.sys_mlock(p, P), Ok(0));
    // Re-locking what is already locked does not count twice.
    assert_eq!(s.sys_mlock(p, P), Ok(0));
    assert_eq!(s.sys_mlock(p + P, P), Err(Errno::ENOMEM));
    check(&s);
}

#[test]
fn h6_unmapped_range_enomem() {
    let mut s = space();
    assert_eq!(s.sys_mlock(BASE, P), Err(Errno::ENOMEM));
    assert_eq!(s.sys_munlock(BASE, P), Err(Errno::ENOMEM));
    // [V] starting in a hole: nothing is locked even where mapped.
    let p = anon(&mut s, BASE + P, P, RW);
    assert_eq!(s.sys_mlock(BASE, 2 * P), Err(Errno::ENOMEM));
    assert!(!locked(&s, p));
}

#[test]
fn h6b_hole_in_the_middle_partial_effect() {
    // [V] mlock(m, 8P) with page 4 unmapped: [0,4P) locked, ENOMEM; munlock likewise.
    let mut s = space();
    let m = anon(&mut s, BASE, 8 * P, RW);
    assert_eq!(s.sys_munmap(m + 4 * P, P), Ok(0));
    assert_eq!(s.sys_mlock(m, 8 * P), Err(Errno::ENOMEM));
    assert_eq!(
        flags_list(&s),
        vec![
            (m, m + 4 * P, "rd wr mr mw me lo ac".to_string()),
            (m + 5 * P, m + 8 * P, "rd wr mr mw me ac".to_string())
        ]
    );
    assert_eq!(s.sys_munlock(m, 8 * P), Err(Errno::ENOMEM));
    assert!(!locked(&s, m));
    check(&s);
}

#[test]
fn h7_munlock_locked_and_unlocked() {
    let mut s = space();
    let p = anon(&mut s, BASE, 3 * P, RW);
    assert_eq!(s.sys_mlock(p + P, P), Ok(0));
    assert_eq!(s.map_count(), 3);
    assert_eq!(s.sys_munlock(p, 3 * P), Ok(0));
    // [V] the pieces merge back (mlock's populate gave the middle an anon_vma, which the
    // never-written neighbours can share).
    assert_eq!(layout(&s), vec![(p, p + 3 * P, "rw-p".to_string())]);
    assert_eq!(s.sys_munlock(p, 3 * P), Ok(0));
    assert_eq!(s.locked_vm(), 0);
    check(&s);
}

#[test]
fn h8_mlockall_future_locks_new_mappings() {
    let mut s = space();
    assert_eq!(s.sys_mlockall(MCL_FUTURE), Ok(0));
    assert_eq!(s.def_flags(), VmFlags::LOCKED);
    let a = anon(&mut s, BASE, P, RW);
    assert!(locked(&s, a));
    assert_eq!(s.sys_munlockall(), Ok(0));
    assert_eq!(s.def_flags(), VmFlags::empty());
    assert!(!locked(&s, a));
    let b = anon(&mut s, BASE + 16 * P, P, RW);
    assert!(!locked(&s, b));
    // [V] MCL_FUTURE|MCL_ONFAULT gives `lo lf` to new mappings.
    assert_eq!(s.sys_mlockall(MCL_FUTURE | MCL_ONFAULT), Ok(0));
    let c = anon(&mut s, BASE + 32 * P, P, PROT_READ);
    assert_eq!(vmflags(vma_at(&s, c).flags), "rd mr mw me lo lf");
    assert_eq!(s.sys_munlockall(), Ok(0));
    assert_eq!(vmflags(vma_at(&s, c).flags), "rd mr mw me");
    check(&s);
}

#[test]
fn h9_munlockall_unlocks_map_locked() {
    let mut s = space();
    let a = mmap(&mut s, BASE, 2 * P, RW, ANON | MAP_FIXED | MAP_LOCKED).unwrap();
    assert!(locked(&s, a));
    assert_eq!(s.sys_munlockall(), Ok(0));
    assert!(!locked(&s, a));
    assert_eq!(s.locked_vm(), 0);
}

#[test]
fn h10_mlock2_flags() {
    let mut s = space();
    let p = anon(&mut s, BASE, 4 * P, RW);
    assert_eq!(s.sys_mlock2(p, P, 0), Ok(0));
    assert_eq!(vmflags(vma_at(&s, p).flags), "rd wr mr mw me lo ac");
    assert_eq!(s.sys_mlock2(p + P, P, MLOCK_ONFAULT), Ok(0));
    assert_eq!(vmflags(vma_at(&s, p + P).flags), "rd wr mr mw me lo lf ac");
    assert_eq!(s.sys_mlock2(p, P, !0), Err(Errno::EINVAL));
    assert_eq!(s.sys_mlock2(p, P, 2), Err(Errno::EINVAL));
    // [V] re-locking without ONFAULT drops `lf`.
    assert_eq!(s.sys_mlock2(p + P, P, 0), Ok(0));
    assert_eq!(vmflags(vma_at(&s, p + P).flags), "rd wr mr mw me lo ac");
    // flags is a C int: the upper half of the register is ignored.
    assert_eq!(s.sys_mlock2(p + 2 * P, P, 1 << 32), Ok(0));
    check(&s);
}

#[test]
fn h11_mlockall_invalid_flags() {
    let mut s = space();
    assert_eq!(s.sys_mlockall(0), Err(Errno::EINVAL));
    assert_eq!(s.sys_mlockall(MCL_ONFAULT), Err(Errno::EINVAL));
    assert_eq!(s.sys_mlockall(8), Err(Errno::EINVAL));
    assert_eq!(s.sys_mlockall(MCL_CURRENT | 8), Err(Errno::EINVAL));
    assert_eq!(s.def_flags(), VmFlags::empty());
}

#[test]
fn h12_mlockall_current_limits() {
    let mut s = space_with(|c| c.rlimit_memlock = 0);
    anon(&mut s, BASE, 4 * P, RW);
    assert_eq!(s.sys_mlockall(MCL_CURRENT), Err(Errno::EPERM));
    let mut s = space_with(|c| c.rlimit_memlock = 2 * P);
    let a = anon(&mut s, BASE, 4 * P, RW);
    assert_eq!(s.sys_mlockall(MCL_CURRENT), Err(Errno::ENOMEM));
    assert!(!locked(&s, a));
    // MCL_FUTURE alone is not checked against the current size.
    assert_eq!(s.sys_mlockall(MCL_FUTURE), Ok(0));
    assert!(!locked(&s, a));
    let mut s = space_with(|c| c.rlimit_memlock = 4 * P);
    let a = anon(&mut s, BASE, 4 * P, RW);
    assert_eq!(s.sys_mlockall(MCL_CURRENT), Ok(0));
    assert!(locked(&s, a));
    assert!(vma_at(&s, a).anon_vma().is_some(), "populated with write faults");
}

#[test]
fn h13_mlock_zero_len_unaligned_start_locks_one_page() {
    let mut s = space();
    let p = anon(&mut s, BASE, 8 * P, RW);
    assert_eq!(s.sys_mlock(p + 2 * P + 1, 0), Ok(0));
    assert_eq!(
        flags_list(&s),
        vec![
            (p, p + 2 * P, "rd wr mr mw me ac".to_string()),
            (p + 2 * P, p + 3 * P, "rd wr mr mw me lo ac".to_string()),
            (p + 3 * P, p + 8 * P, "rd wr mr mw me ac".to_string()),
        ]
    );
    check(&s);
}

#[test]
fn h14_mlock_size_max_rounds_to_nothing() {
    let mut s = space();
    let p = anon(&mut s, BASE, 2 * P, RW);
    assert_eq!(s.sys_mlock(p, u64::MAX), Ok(0));
    assert!(!locked(&s, p));
    assert_eq!(s.sys_munlock(p, u64::MAX), Ok(0));
    assert_eq!(s.map_count(), 1);
}

#[test]
fn h15_split_at_map_limit_enomem() {
    let mut s = space_with(|c| c.max_map_count = 2);
    let a = anon(&mut s, BASE, 4 * P, RW);
    anon(&mut s, BASE + 16 * P, P, PROT_READ);
    assert_eq!(s.map_count(), 2);
    assert_eq!(s.sys_mlock(a + P, P), Err(Errno::ENOMEM));
    assert!(!locked(&s, a));
    assert_eq!(s.map_count(), 2);
    assert_eq!(s.sys_mlock(a, 4 * P), Ok(0), "no split needed");
}

#[test]
fn h16_mlock_fresh_region_locks_all_of_it() {
    let mut s = space();
    let p = anon(&mut s, BASE, 16 * P, RW);
    assert_eq!(s.sys_mlock(p, 16 * P), Ok(0));
    assert_eq!(s.locked_vm(), 16);
    // Rss == Locked == size: simulator issue. The populate write-faulted it.
    assert!(vma_at(&s, p).anon_vma().is_some());
    // A shared mapping is populated by read faults: no anon_vma.
    let q = mmap(&mut s, BASE + 32 * P, P, RW, SHANON | MAP_FIXED).unwrap();
    assert_eq!(s.sys_mlock(q, P), Ok(0));
    assert!(vma_at(&s, q).anon_vma().is_none());
    check(&s);
}

#[test]
fn h_special_mappings_are_never_locked() {
    // mlock_fixup(): VM_SPECIAL mappings keep their flags; the call still succeeds and the
    // populate pass skips VM_IO/VM_PFNMAP.
    let mut s = space();
    let dev = device_vma(BASE, 2);
    s.insert_vma_unmerged(dev).unwrap();
    assert_eq!(s.sys_mlock(BASE, 2 * P), Ok(0));
    assert!(!locked(&s, BASE));
    assert_eq!(s.locked_vm(), 0);
    assert_eq!(s.sys_mlockall(MCL_CURRENT), Ok(0));
    assert!(!locked(&s, BASE));
    assert_eq!(s.sys_munlockall(), Ok(0));
}

#[test]
fn h_droppable_mapping_is_never_locked() {
    // [V] mlock / mlock2 succeed on MAP_DROPPABLE memory but leave it unlocked.
    let mut s = space();
    let d = mmap(&mut s, BASE, 4 * P, RW, MAP_DROPPABLE | MAP_ANONYMOUS | MAP_FIXED).unwrap();
    assert_eq!(s.sys_mlock(d, P), Ok(0));
    assert_eq!(s.sys_mlock2(d, P, MLOCK_ONFAULT), Ok(0));
    assert_eq!(s.map_count(), 1);
    assert!(!locked(&s, d));
    assert_eq!(s.sys_msync(d, P, MS_INVALIDATE), Ok(0));
}

#[test]
fn mlock_over_guard_marker_enomem_but_locks() {
    // Oracle seeds 176/86: the populate after the flag change hits the marker (EFAULT),
    // which mlock reports as ENOMEM; the range is VM_LOCKED all the same.
    for flags in [ANON, SHANON] {
        let mut s = space();
        let p = mmap(&mut s, BASE, 8 * P, RW, flags | MAP_FIXED).unwrap();
        assert_eq!(s.sys_madvise(p + 2 * P, 2 * P, 102), Ok(0));
        assert_eq!(s.sys_mlock(p, 8 * P), Err(Errno::ENOMEM));
        assert!(vma_at(&s, p).flags.contains(VmFlags::LOCKED));
        assert_eq!(s.locked_vm(), 8);
        assert_eq!(s.sys_munlock(p, 8 * P), Ok(0));
        assert_eq!(s.sys_mlock2(p + 3 * P, 2 * P, 0), Err(Errno::ENOMEM));
        assert_eq!(s.sys_munlock(p, 8 * P), Ok(0));
        // Pages before the marker only: fine.
        assert_eq!(s.sys_mlock(p, 2 * P), Ok(0));
        // MLOCK_ONFAULT does not populate.
        assert_eq!(s.sys_mlock2(p, 8 * P, MLOCK_ONFAULT), Ok(0));
        // mlockall ignores populate errors.
        assert_eq!(s.sys_mlockall(MCL_CURRENT), Ok(0));
        check(&s);
    }
}

#[test]
fn mlock_past_shmem_object_size_enomem() {
    let mut s = space();
    let p = mmap(&mut s, BASE, 4 * P, RW, SHANON | MAP_FIXED).unwrap();
    assert_eq!(s.sys_mremap(p, 4 * P, 8 * P, 0, 0), Ok(p));
    assert_eq!(s.sys_mlock(p, 8 * P), Err(Errno::ENOMEM));
    assert_eq!(s.sys_munlock(p, 8 * P), Ok(0));
    assert_eq!(s.sys_mlock(p, 4 * P), Ok(0));
    assert_eq!(s.sys_mlock2(p, 8 * P, MLOCK_ONFAULT), Ok(0));
}
