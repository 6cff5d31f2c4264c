//! Conformance: mprotect (cases.md section C, and F6/F23 for files).

mod common;

use common::*;
use mmkit::Errno;

#[test]
fn c01_null_unmapped_enomem() {
    let mut s = space();
    assert_eq!(s.sys_mprotect(0, P + 1, PROT_READ), Err(Errno::ENOMEM));
}

#[test]
fn c02_unaligned_einval() {
    let mut s = space();
    let m = anon(&mut s, 0, P, RW);
    assert_eq!(s.sys_mprotect(m + 1, P, PROT_READ), Err(Errno::EINVAL));
}

#[test]
fn c03_zero_length_returns_before_prot_check() {
    let mut s = space();
    let m = anon(&mut s, 0, P, RW);
    assert_eq!(s.sys_mprotect(m, 0, PROT_READ), Ok(0));
    assert_eq!(s.sys_mprotect(m, 0, 0x100), Ok(0));
    assert_eq!(perms(vma_at(&s, m).flags), "rw-p");
}

#[test]
fn c04_unaligned_with_zero_length_einval() {
    let mut s = space();
    assert_eq!(s.sys_mprotect(BASE + 1, 0, PROT_READ), Err(Errno::EINVAL));
}

#[test]
fn c05_unknown_prot_bit_einval_sem_ok() {
    let mut s = space();
    let m = anon(&mut s, 0, P, RW);
    assert_eq!(s.sys_mprotect(m, P, 0x100), Err(Errno::EINVAL));
    assert_eq!(s.sys_mprotect(m, P, PROT_READ | PROT_SEM), Ok(0));
    assert_eq!(perms(vma_at(&s, m).flags), "r--p");
}

#[test]
fn c06_growsdown_and_growsup_einval() {
    let mut s = space();
    let m = anon(&mut s, 0, P, RW);
    assert_eq!(s.sys_mprotect(m, P, PROT_READ | PROT_GROWSDOWN | PROT_GROWSUP), Err(Errno::EINVAL));
}

#[test]
fn c07_growsdown_on_plain_vma_einval() {
    let mut s = space();
    let m = anon(&mut s, 0, P, RW);
    assert_eq!(s.sys_mprotect(m, P, PROT_READ | PROT_GROWSDOWN), Err(Errno::EINVAL));
    assert_eq!(s.sys_mprotect(m, P, PROT_READ | PROT_GROWSUP), Err(Errno::EINVAL));
}

#[test]
fn c08_huge_length_enomem() {
    let mut s = space();
    let m = anon(&mut s, 0, P, RW);
    assert_eq!(s.sys_mprotect(m, u64::MAX, PROT_READ), Err(Errno::ENOMEM));
}

#[test]
fn c09_hole_in_range_partial_effect() {
    let mut s = space();
    anon(&mut s, BASE, 8 * P, PROT_NONE);
    s.sys_munmap(BASE + 4 * P, P).unwrap();
    assert_eq!(s.sys_mprotect(BASE + 2 * P, 4 * P, RW), Err(Errno::ENOMEM));
    assert_eq!(
        layout(&s),
        vec![
            (BASE, BASE + 2 * P, "---p".to_string()),
            (BASE + 2 * P, BASE + 4 * P, "rw-p".to_string()),
            (BASE + 5 * P, BASE + 8 * P, "---p".to_string()),
        ]
    );
    check(&s);
}

#[test]
fn c10_range_starting_in_hole_changes_nothing() {
    let mut s = space();
    anon(&mut s, BASE + P, 2 * P, PROT_NONE);
    let before = layout(&s);
    assert_eq!(s.sys_mprotect(BASE, 3 * P, RW), Err(Errno::ENOMEM));
    assert_eq!(s.sys_mprotect(BASE + 8 * P, P, RW), Err(Errno::ENOMEM));
    assert_eq!(layout(&s), before);
}

#[test]
fn c11_growsdown_extends_to_vma_start() {
    let mut s = space();
    let g = mmap(&mut s, BASE, 16 * P, RW, ANON | MAP_FIXED | MAP_GROWSDOWN).unwrap();
    assert_eq!(s.sys_mprotect(g + 8 * P, 4 * P, PROT_READ | PROT_GROWSDOWN), Ok(0));
    assert_eq!(
        layout(&s),
        vec![(g, g + 12 * P, "r--p".to_string()), (g + 12 * P, g + 16 * P, "rw-p".to_string())]
    );
}

#[test]
fn c12_write_after_read_only_faults() {
    let mut s = space();
    let m = anon(&mut s, 0, P, RW);
    s.write_fault(m).unwrap();
    s.sys_mprotect(m, P, PROT_READ).unwrap();
    assert_eq!(s.write_fault(m), Err(Errno::EFAULT));
    s.sys_mprotect(m, P, PROT_NONE).unwrap();
    assert_eq!(s.write_fault(m), Err(Errno::EFAULT));
}

#[test]
fn c13_prot_none_keeps_anon_vma() {
    let mut s = space();
    let m = anon(&mut s, 0, P, RW);
    s.write_fault(m).unwrap();
    let av = vma_at(&s, m).anon_vma();
    s.sys_mprotect(m, P, PROT_NONE).unwrap();
    s.sys_mprotect(m, P, RW).unwrap();
    assert_eq!(vma_at(&s, m).anon_vma(), av);
}

#[test]
fn c14_prot_none_to_rw_then_write() {
    let mut s = space();
    let m = anon(&mut s, 0, P, PROT_NONE);
    s.sys_mprotect(m, P, RW).unwrap();
    assert_eq!(s.write_fault(m), Ok(()));
    assert_eq!(vmflags(vma_at(&s, m).flags), "rd wr mr mw me ac");
}

#[test]
fn c16_second_split_fails_at_limit_first_stays() {
    let mut s = space_with(|c| c.max_map_count = 3);
    anon(&mut s, BASE, P, PROT_READ);
    anon(&mut s, BASE + 4 * P, 3 * P, RW);
    assert_eq!(s.map_count(), 2);
    assert_eq!(s.sys_mprotect(BASE + 5 * P, P, PROT_READ), Err(Errno::ENOMEM));
    assert_eq!(
        layout_in(&s, BASE + 4 * P, BASE + 7 * P),
        vec![
            (BASE + 4 * P, BASE + 5 * P, "rw-p".to_string()),
            (BASE + 5 * P, BASE + 7 * P, "rw-p".to_string())
        ]
    );
    s.check_invariants(false);
}

#[test]
fn c17_split_at_limit_enomem() {
    let mut s = space_with(|c| c.max_map_count = 2);
    anon(&mut s, BASE, P, PROT_READ);
    anon(&mut s, BASE + 4 * P, 3 * P, RW);
    let before = layout(&s);
    assert_eq!(s.sys_mprotect(BASE + 4 * P, P, PROT_READ), Err(Errno::ENOMEM));
    assert_eq!(layout(&s), before);
    // A change that merges into a neighbour needs no split and no room.
    anon(&mut s, BASE + P, P, RW);
    assert_eq!(s.map_count(), 3);
}

#[test]
fn c_merge_needs_no_split_at_limit() {
    let mut s = space_with(|c| c.max_map_count = 2);
    anon(&mut s, BASE, P, PROT_READ);
    anon(&mut s, BASE + P, 3 * P, RW);
    assert_eq!(s.map_count(), 2);
    // The first page of the RW VMA joins the R VMA below: no split, so no ENOMEM.
    assert_eq!(s.sys_mprotect(BASE + P, P, PROT_READ), Ok(0));
    assert_eq!(
        layout(&s),
        vec![
            (BASE, BASE + 2 * P, "r--p".to_string()),
            (BASE + 2 * P, BASE + 4 * P, "rw-p".to_string())
        ]
    );
    check(&s);
}

#[test]
fn c_mprotect_across_several_vmas() {
    let mut s = space();
    anon(&mut s, BASE, P, PROT_READ);
    anon(&mut s, BASE + P, P, RW);
    anon(&mut s, BASE + 2 * P, P, PROT_EXEC);
    assert_eq!(s.sys_mprotect(BASE, 3 * P, PROT_READ), Ok(0));
    assert_eq!(layout(&s), vec![(BASE, BASE + 3 * P, "r--p".to_string())]);
    assert_eq!(s.stats().mprotect_calls, 1);
    check(&s);
}

#[test]
fn c_hole_after_last_vma_enomem_after_changes() {
    let mut s = space();
    anon(&mut s, BASE, 2 * P, PROT_READ);
    assert_eq!(s.sys_mprotect(BASE, 3 * P, RW), Err(Errno::ENOMEM));
    assert_eq!(layout(&s), vec![(BASE, BASE + 2 * P, "rw-p".to_string())]);
}

#[test]
fn c_eacces_stops_before_the_refusing_vma() {
    let mut s = space();
    let f = TestFiles::standard();
    anon(&mut s, BASE, P, PROT_READ);
    s.sys_mmap(&f, BASE + P, P, PROT_READ, MAP_SHARED | MAP_FIXED, 3, 0).unwrap();
    assert_eq!(s.sys_mprotect(BASE, 2 * P, RW), Err(Errno::EACCES));
    assert_eq!(perms(vma_at(&s, BASE).flags), "rw-p");
    assert_eq!(perms(vma_at(&s, BASE + P).flags), "r--s");
}

#[test]
fn f23_shared_file_split_and_merge_regression() {
    let mut s = space();
    let f = TestFiles::standard();
    let a = s.sys_mmap(&f, 0, 5 * P, PROT_READ, MAP_SHARED, 4, 0).unwrap();
    assert_eq!(s.sys_mprotect(a + P, P, PROT_EXEC), Ok(0));
    assert_eq!(s.sys_mprotect(a + 3 * P, P, PROT_WRITE), Ok(0));
    assert_eq!(s.sys_mprotect(a + P, 4 * P, PROT_READ), Ok(0));
    assert_eq!(count_in(&s, a, a + 5 * P), 1);
    // pgoffs stayed continuous.
    assert_eq!(vma_at(&s, a).pgoff, 0);
    check(&s);
}

#[test]
fn c_locked_private_made_writable_is_populated() {
    // [V] mprotect_fixup() populates a private VM_LOCKED VMA that becomes writable, which
    // assigns its anon_vma, so making it read-only again keeps VM_ACCOUNT.
    let mut s = space();
    mmap(&mut s, BASE, 2 * P, PROT_READ, ANON | MAP_FIXED | MAP_LOCKED).unwrap();
    s.sys_mprotect(BASE, P, RW).unwrap();
    assert!(vma_at(&s, BASE).anon_vma().is_some());
    s.sys_mprotect(BASE, P, PROT_READ).unwrap();
    assert_eq!(count_in(&s, BASE, BASE + 2 * P), 2);
    assert_eq!(s.locked_vm(), 2);
    check(&s);
}

#[test]
fn c_populated_rw_keeps_account_when_made_read_only() {
    // [V] MAP_POPULATE write-faults a private RW mapping: R then RW again re-merges.
    let mut s = space();
    mmap(&mut s, BASE, 2 * P, RW, ANON | MAP_FIXED | MAP_POPULATE).unwrap();
    s.sys_mprotect(BASE, P, PROT_READ).unwrap();
    assert_eq!(vmflags(vma_at(&s, BASE).flags), "rd mr mw me ac");
    s.sys_mprotect(BASE, P, RW).unwrap();
    assert_eq!(count_in(&s, BASE, BASE + 2 * P), 1);
    check(&s);
}

#[test]
fn mprotect_keeps_guard_markers() {
    let mut s = space();
    let p = anon(&mut s, BASE, 8 * P, RW);
    assert_eq!(s.sys_madvise(p + 2 * P, 2 * P, 102), Ok(0));
    assert_eq!(s.sys_mprotect(p, 8 * P, PROT_READ), Ok(0));
    assert_eq!(fault_map(&mut s, p, 8), "..GG....");
    assert_eq!(s.sys_mprotect(p + 2 * P, P, RW), Ok(0));
    assert_eq!(fault_map(&mut s, p, 8), "..GG....");
    check(&s);
}

#[test]
fn guard_install_on_private_dev_zero_keeps_vm_account_through_prot_none() {
    // Oracle seed 1003778: MADV_GUARD_INSTALL gives the (anonymous) private /dev/zero VMA an
    // anon_vma, so making the charged part PROT_NONE again keeps VM_ACCOUNT
    // (mprotect_fixup() drops it only for anonymous VMAs without an anon_vma).
    let mut s = space();
    let f = TestFiles::standard();
    let z = s.sys_mmap(&f, BASE, 21 * P, PROT_READ, MAP_PRIVATE | MAP_FIXED, 6, 0).unwrap();
    assert_eq!(s.sys_madvise(z + 19 * P, P, 102), Ok(0));
    assert!(vma_at(&s, z).anon_vma().is_some());
    assert_eq!(s.sys_mprotect(z + 17 * P, 4 * P, RW), Ok(0));
    assert_eq!(s.sys_mprotect(z + 17 * P, 3 * P, PROT_NONE), Ok(0));
    assert!(vma_at(&s, z + 17 * P).flags.contains(mmkit::vma::VmFlags::ACCOUNT));
    assert!(vma_at(&s, z + 20 * P).flags.contains(mmkit::vma::VmFlags::ACCOUNT));
    check(&s);
}
