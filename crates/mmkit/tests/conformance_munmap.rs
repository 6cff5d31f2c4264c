//! Conformance: munmap (cases.md section B).

mod common;

use common::*;
use mmkit::Errno;

#[test]
fn b01_happy_case() {
    let mut s = space();
    let m = anon(&mut s, 0, P, RW);
    assert_eq!(s.sys_munmap(m, P), Ok(0));
    assert_eq!(s.map_count(), 0);
    assert_eq!(s.stats().mapped_bytes, 0);
    assert_eq!(s.stats().munmap_calls, 1);
    check(&s);
}

#[test]
fn b02_zero_length_einval() {
    let mut s = space();
    let m = anon(&mut s, 0, P, RW);
    assert_eq!(s.sys_munmap(m, 0), Err(Errno::EINVAL));
    assert_eq!(s.map_count(), 1);
}

#[test]
fn b03_last_page_round_up_einval() {
    let mut s = space();
    let m = anon(&mut s, 0, P, RW);
    assert_eq!(s.sys_munmap(m, P.wrapping_neg() + 1), Err(Errno::EINVAL));
    assert_eq!(s.map_count(), 1);
}

#[test]
fn b04_unaligned_start_einval() {
    let mut s = space();
    let m = anon(&mut s, 0, 2 * P, RW);
    assert_eq!(s.sys_munmap(m + 1, 2 * P), Err(Errno::EINVAL));
}

#[test]
fn b05_start_beyond_task_size_einval() {
    let mut s = space();
    assert_eq!(s.sys_munmap(u64::MAX, 2 * P), Err(Errno::EINVAL));
    assert_eq!(s.sys_munmap(0xffff_8000_0000_0000, P), Err(Errno::EINVAL));
}

#[test]
fn b06_unmapped_ranges_succeed() {
    let mut s = space();
    assert_eq!(s.sys_munmap(BASE, P), Ok(0));
    anon(&mut s, BASE, P, RW);
    anon(&mut s, BASE + 2 * P, P, PROT_READ);
    assert_eq!(s.sys_munmap(BASE, 4 * P), Ok(0));
    assert_eq!(s.map_count(), 0);
    assert_eq!(s.sys_munmap(BASE, 4 * P), Ok(0));
    check(&s);
}

#[test]
fn b07_partial_munmap_of_shared_anon() {
    let mut s = space();
    let m = mmap(&mut s, 0, 4 * P, RW, SHANON).unwrap();
    assert_eq!(s.sys_munmap(m + P, P), Ok(0));
    assert_eq!(s.write_fault(m + P), Err(Errno::EFAULT));
    assert_eq!(s.write_fault(m), Ok(()));
    // The upper piece keeps its shmem offset.
    assert_eq!(vma_at(&s, m + 2 * P).pgoff, 2);
    check(&s);
}

#[test]
fn b08_unaligned_length_rounds_up() {
    let mut s = space();
    let m = anon(&mut s, 0, 2 * P, RW);
    assert_eq!(s.sys_munmap(m, 1), Ok(0));
    assert_eq!(layout(&s), vec![(m + P, m + 2 * P, "rw-p".to_string())]);
}

/// Fills the space to `max` VMAs of 3 pages spaced 6 pages apart, as LTP munmap04 does.
fn fill(max: usize) -> mmkit::AddressSpace {
    let mut s = space_with(|c| c.max_map_count = max);
    let mut i = 0;
    while s.map_count() < max {
        let a = BASE + i * 6 * P;
        mmap(&mut s, a, 3 * P, PROT_NONE, ANON | MAP_FIXED_NOREPLACE).unwrap();
        i += 1;
    }
    s
}

#[test]
fn b09_cutting_a_hole_at_max_map_count_enomem() {
    let mut s = fill(16);
    let before = layout(&s);
    assert_eq!(s.sys_munmap(BASE + P, P), Err(Errno::ENOMEM));
    assert_eq!(layout(&s), before);
    check(&s);
}

#[test]
fn b10_trimming_at_max_map_count_succeeds() {
    let mut s = fill(16);
    assert_eq!(s.sys_munmap(BASE, P), Ok(0));
    assert_eq!(s.map_count(), 16);
}

#[test]
fn b11_cutting_end_and_start_of_two_vmas_at_max() {
    let mut s = space_with(|c| c.max_map_count = 4);
    for i in 0..4 {
        let prot = if i % 2 == 0 { PROT_READ } else { RW };
        anon(&mut s, BASE + i * 3 * P, 3 * P, prot);
    }
    assert_eq!(s.map_count(), 4);
    assert_eq!(s.sys_munmap(BASE + 2 * P, 2 * P), Ok(0));
    assert_eq!(s.map_count(), 4);
    check(&s);
}

#[test]
fn b_munmap_across_many_vmas_and_holes() {
    let mut s = space();
    for i in 0..10 {
        let prot = if i % 2 == 0 { PROT_READ } else { RW };
        anon(&mut s, BASE + i * 2 * P, P, prot);
    }
    assert_eq!(s.sys_munmap(BASE + 2 * P, 14 * P), Ok(0));
    assert_eq!(s.map_count(), 3);
    assert_eq!(s.stats().mapped_bytes, 3 * P);
    check(&s);
}

#[test]
fn b_munmap_len_beyond_task_size_minus_start() {
    let mut s = space();
    let ts = 0x7fff_ffff_f000u64;
    assert_eq!(s.sys_munmap(ts, 0), Err(Errno::EINVAL));
    assert_eq!(s.sys_munmap(ts, 1), Err(Errno::EINVAL));
    assert_eq!(s.sys_munmap(ts - P, P), Ok(0));
    assert_eq!(s.sys_munmap(ts - P, P + 1), Err(Errno::EINVAL));
}
