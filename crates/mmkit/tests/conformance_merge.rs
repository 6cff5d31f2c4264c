//! Conformance: VMA merging and splitting as /proc/self/maps shows it (cases.md section D,
//! the cases that need only mmap/munmap/mprotect/fork and write faults; D16–D22 use
//! madvise/mremap and live with those syscalls' tests).

mod common;

use common::*;
use mmkit::vma::VmFlags;

const NR: u64 = ANON | MAP_FIXED | MAP_NORESERVE;

#[test]
fn d01_mprotect_unfaulted_left() {
    let mut s = space();
    mmap(&mut s, BASE, 10 * P, RW, NR).unwrap();
    s.sys_mprotect(BASE, 5 * P, PROT_READ).unwrap();
    s.write_fault(BASE + 5 * P).unwrap();
    s.sys_mprotect(BASE + 5 * P, 5 * P, PROT_READ).unwrap();
    assert_eq!(layout(&s), vec![(BASE, BASE + 10 * P, "r--p".to_string())]);
    check(&s);
}

#[test]
fn d02_unfaulted_left_without_noreserve_loses_account() {
    let mut s = space();
    anon(&mut s, BASE, 10 * P, RW);
    s.sys_mprotect(BASE, 5 * P, PROT_READ).unwrap();
    s.write_fault(BASE + 5 * P).unwrap();
    s.sys_mprotect(BASE + 5 * P, 5 * P, PROT_READ).unwrap();
    assert_eq!(count_in(&s, BASE, BASE + 10 * P), 2);
    assert_eq!(vmflags(vma_at(&s, BASE).flags), "rd mr mw me");
    assert_eq!(vmflags(vma_at(&s, BASE + 5 * P).flags), "rd mr mw me ac");
    assert_eq!(s.committed_pages(), 5);
    check(&s);
}

#[test]
fn d03_mprotect_unfaulted_right() {
    let mut s = space();
    mmap(&mut s, BASE, 10 * P, RW, NR).unwrap();
    s.sys_mprotect(BASE + 5 * P, 5 * P, PROT_READ).unwrap();
    s.write_fault(BASE).unwrap();
    s.sys_mprotect(BASE, 5 * P, PROT_READ).unwrap();
    assert_eq!(count_in(&s, BASE, BASE + 10 * P), 1);
    check(&s);
}

#[test]
fn d04_mprotect_unfaulted_both() {
    let mut s = space();
    mmap(&mut s, BASE, 9 * P, RW, NR).unwrap();
    s.sys_mprotect(BASE, 3 * P, PROT_READ).unwrap();
    s.sys_mprotect(BASE + 6 * P, 3 * P, PROT_READ).unwrap();
    s.write_fault(BASE + 3 * P).unwrap();
    s.sys_mprotect(BASE + 3 * P, 3 * P, PROT_READ).unwrap();
    assert_eq!(count_in(&s, BASE, BASE + 9 * P), 1);
    assert!(vma_at(&s, BASE).anon_vma().is_some());
    check(&s);
}

#[test]
fn d05_mprotect_faulted_left_unfaulted_right() {
    // selftests/mm/merge.c: 9 pages RW NORESERVE; the last 3 made read-only; the first page
    // faulted; then the first 6 made read-only: one 9-page VMA.
    let mut s = space();
    mmap(&mut s, BASE, 9 * P, RW, NR).unwrap();
    s.sys_mprotect(BASE + 6 * P, 3 * P, PROT_READ).unwrap();
    s.write_fault(BASE).unwrap();
    s.sys_mprotect(BASE, 6 * P, PROT_READ).unwrap();
    assert_eq!(layout(&s), vec![(BASE, BASE + 9 * P, "r--p".to_string())]);
    check(&s);
}

#[test]
fn d06_mprotect_unfaulted_left_faulted_right() {
    let mut s = space();
    mmap(&mut s, BASE, 10 * P, RW, NR).unwrap();
    s.sys_mprotect(BASE, 5 * P, PROT_READ).unwrap();
    s.write_fault(BASE + 5 * P).unwrap();
    s.sys_mprotect(BASE + 5 * P, 5 * P, PROT_READ).unwrap();
    assert_eq!(count_in(&s, BASE, BASE + 10 * P), 1);
    check(&s);
}

#[test]
fn d07_split_and_restore_in_prot_none_area() {
    let mut s = space();
    anon(&mut s, BASE, 5 * P, PROT_NONE);
    s.sys_mprotect(BASE + P, 3 * P, PROT_READ).unwrap();
    assert_eq!(count_in(&s, BASE + P, BASE + 4 * P), 1);
    s.sys_mprotect(BASE + 2 * P, P, RW).unwrap();
    assert_eq!(count_in(&s, BASE, BASE + 5 * P), 5);
    s.sys_mprotect(BASE + 2 * P, P, PROT_READ).unwrap();
    assert_eq!(count_in(&s, BASE + P, BASE + 4 * P), 1);
    check(&s);
}

#[test]
fn d08_forked_target_vma_does_not_absorb_new_neighbour() {
    let mut parent = space();
    let p = anon(&mut parent, BASE, 5 * P, RW);
    parent.write_fault(p).unwrap();
    let mut child = parent.fork();
    for i in 0..5 {
        child.write_fault(p + i * P).unwrap();
    }
    anon(&mut child, p + 5 * P, 5 * P, RW);
    assert_eq!(count_in(&child, p, p + 10 * P), 2);
    anon(&mut parent, p + 5 * P, 5 * P, RW);
    assert_eq!(count_in(&parent, p, p + 10 * P), 1);
    check(&child);
    check(&parent);
}

#[test]
fn d09_forked_source_vma_does_not_merge_into_unfaulted() {
    let mut parent = space();
    let p = mmap(&mut parent, BASE, 5 * P, RW, NR).unwrap();
    parent.write_fault(p).unwrap();
    let mut child = parent.fork();
    mmap(&mut child, p + 5 * P, 5 * P, RW | PROT_EXEC, NR).unwrap();
    assert_eq!(child.sys_mprotect(p, 5 * P, RW | PROT_EXEC), Ok(0));
    assert_eq!(count_in(&child, p, p + 10 * P), 2);
    assert_eq!(vma_at(&child, p).end, p + 5 * P);
    check(&child);
}

#[test]
fn d10_split_and_restore_inside_forked_vma_remerges() {
    let mut parent = space();
    let p = anon(&mut parent, BASE, 5 * P, RW);
    parent.write_fault(p).unwrap();
    let mut child = parent.fork();
    child.sys_mprotect(p + 2 * P, P, PROT_READ).unwrap();
    assert_eq!(count_in(&child, p, p + 5 * P), 3);
    child.sys_mprotect(p + 2 * P, P, RW).unwrap();
    assert_eq!(count_in(&child, p, p + 5 * P), 1);
    check(&child);
}

#[test]
fn d11_adjacent_shared_anon_never_merge() {
    let mut s = space();
    mmap(&mut s, BASE, 2 * P, RW, SHANON | MAP_FIXED).unwrap();
    mmap(&mut s, BASE + 2 * P, 2 * P, RW, SHANON | MAP_FIXED).unwrap();
    assert_eq!(count_in(&s, BASE, BASE + 4 * P), 2);
    check(&s);
}

#[test]
fn d12_shared_anon_pieces_remerge() {
    let mut s = space();
    mmap(&mut s, BASE, 8 * P, RW, SHANON | MAP_FIXED).unwrap();
    s.sys_mprotect(BASE + 2 * P, 2 * P, PROT_READ).unwrap();
    let offs: Vec<u64> = s.vmas().iter().map(|v| v.pgoff << 12).collect();
    assert_eq!(offs, vec![0, 0x2000, 0x4000]);
    s.sys_mprotect(BASE + 2 * P, 2 * P, RW).unwrap();
    assert_eq!(count_in(&s, BASE, BASE + 8 * P), 1);
    check(&s);
}

#[test]
fn d13_map_stack_neighbour_does_not_merge() {
    let mut s = space();
    anon(&mut s, BASE, P, RW);
    mmap(&mut s, BASE + P, P, RW, ANON | MAP_FIXED | MAP_STACK).unwrap();
    assert_eq!(count_in(&s, BASE, BASE + 2 * P), 2);
}

#[test]
fn d14_noreserve_neighbour_does_not_merge() {
    let mut s = space();
    anon(&mut s, BASE, P, RW);
    mmap(&mut s, BASE + P, P, RW, NR).unwrap();
    assert_eq!(count_in(&s, BASE, BASE + 2 * P), 2);
}

#[test]
fn d15_mprotect_to_rw_adds_account_and_merges() {
    let mut s = space();
    anon(&mut s, BASE, P, PROT_READ);
    s.sys_mprotect(BASE, P, RW).unwrap();
    assert!(vma_at(&s, BASE).flags.contains(VmFlags::ACCOUNT));
    anon(&mut s, BASE + P, P, RW);
    assert_eq!(count_in(&s, BASE, BASE + 2 * P), 1);
    check(&s);
}

#[test]
fn d_written_neighbours_with_different_anon_vmas_do_not_merge() {
    let mut s = space();
    anon(&mut s, BASE, P, RW);
    s.write_fault(BASE).unwrap();
    anon(&mut s, BASE + 2 * P, P, RW);
    s.write_fault(BASE + 2 * P).unwrap();
    // Filling the hole: both neighbours have distinct anon_vmas, so the new page joins only
    // the lower one (Linux's can_vma_merge_right() refuses the three-way merge).
    anon(&mut s, BASE + P, P, RW);
    assert_eq!(count_in(&s, BASE, BASE + 3 * P), 2);
    assert_eq!(vma_at(&s, BASE).end, BASE + 2 * P);
    check(&s);
}

#[test]
fn d_write_fault_reuses_compatible_neighbours_anon_vma() {
    // find_mergeable_anon_vma(): a VMA first written next to a neighbour that differs only in
    // access bits shares the neighbour's anon_vma, so the two merge once their protections
    // agree again.
    let mut s = space();
    anon(&mut s, BASE, P, RW);
    anon(&mut s, BASE + P, P, RW | PROT_EXEC);
    assert_eq!(count_in(&s, BASE, BASE + 2 * P), 2);
    s.write_fault(BASE).unwrap();
    s.write_fault(BASE + P).unwrap();
    let (a, b) = (vma_at(&s, BASE).anon_vma().unwrap(), vma_at(&s, BASE + P).anon_vma().unwrap());
    assert_eq!(a.id, b.id);
    s.sys_mprotect(BASE + P, P, RW).unwrap();
    assert_eq!(count_in(&s, BASE, BASE + 2 * P), 1);
    // Not so across a fork boundary: the child's anon_vmas have inherited chains.
    let mut s = space();
    anon(&mut s, BASE, P, RW);
    s.write_fault(BASE).unwrap();
    let mut c = s.fork();
    anon(&mut c, BASE + P, P, RW | PROT_EXEC);
    c.write_fault(BASE + P).unwrap();
    let (a, b) = (vma_at(&c, BASE).anon_vma().unwrap(), vma_at(&c, BASE + P).anon_vma().unwrap());
    assert_ne!(a.id, b.id);
    c.sys_mprotect(BASE + P, P, RW).unwrap();
    assert_eq!(count_in(&c, BASE, BASE + 2 * P), 2);
    check(&c);
}

#[test]
fn d_pgoff_discontinuity_blocks_merge() {
    // A private anonymous mapping moved by MAP_FIXED elsewhere keeps pgoff = addr >> 12 of
    // its own creation, so it only merges with neighbours created in place.
    let mut s = space();
    anon(&mut s, BASE, P, RW);
    anon(&mut s, BASE + P, P, RW);
    assert_eq!(count_in(&s, BASE, BASE + 2 * P), 1);
    assert_eq!(vma_at(&s, BASE).pgoff, BASE >> 12);
}

#[test]
fn d_stats_count_merges_and_splits() {
    let mut s = space();
    anon(&mut s, BASE, 3 * P, RW);
    s.sys_mprotect(BASE + P, P, PROT_READ).unwrap();
    assert_eq!(s.stats().splits, 2);
    s.sys_mprotect(BASE + P, P, RW).unwrap();
    assert_eq!(s.stats().merges, 2);
    assert_eq!(s.stats().peak_vma_count, 3);
    check(&s);
}
