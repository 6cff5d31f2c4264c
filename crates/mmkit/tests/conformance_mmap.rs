//! Conformance: mmap of anonymous memory (cases.md section A) and file mappings (F1–F10,
//! F15), one test per case. Expected values are Linux 6.18's (cases.md, checked on the host
//! kernel where marked [V] there).

mod common;

use common::*;
use mmkit::space::NoFiles;
use mmkit::vma::{Backing, VmFlags};
use mmkit::Errno;

const TOP: u64 = 0x7fff_f7ff_f000; // mmap_base without ASLR

#[test]
fn a01_map_anything() {
    let mut s = space();
    let a = mmap(&mut s, 0, P, PROT_NONE, ANON).unwrap();
    assert!(a > 0);
    assert_eq!(layout(&s), vec![(a, a + P, "---p".to_string())]);
    check(&s);
}

#[test]
fn a02_small_map_rounds_up_to_a_page() {
    let mut s = space();
    let a = mmap(&mut s, 0, 128, PROT_NONE, ANON).unwrap();
    assert_eq!(vma_at(&s, a).len(), P);
}

#[test]
fn a03_zero_length_einval() {
    let mut s = space();
    assert_eq!(mmap(&mut s, 0, 0, RW, ANON), Err(Errno::EINVAL));
    assert_eq!(s.map_count(), 0);
}

#[test]
fn a04_neither_private_nor_shared_einval() {
    let mut s = space();
    assert_eq!(mmap(&mut s, 0, P, RW, MAP_ANONYMOUS), Err(Errno::EINVAL));
}

#[test]
fn a05_private_and_shared_anon_einval() {
    let mut s = space();
    assert_eq!(
        mmap(&mut s, 0, P, RW, MAP_SHARED | MAP_PRIVATE | MAP_ANONYMOUS),
        Err(Errno::EINVAL)
    );
}

#[test]
fn a06_shared_validate_anon_einval() {
    let mut s = space();
    assert_eq!(mmap(&mut s, 0, P, RW, MAP_SHARED_VALIDATE | MAP_ANONYMOUS), Err(Errno::EINVAL));
}

#[test]
fn a07_fixed_unaligned_einval() {
    let mut s = space();
    assert_eq!(mmap(&mut s, 0x3000_0001, P, RW, ANON | MAP_FIXED), Err(Errno::EINVAL));
}

#[test]
fn a08_unaligned_hint_is_masked() {
    let mut s = space();
    assert_eq!(mmap(&mut s, 0x3000_0001, P, RW, ANON), Ok(0x3000_0000));
}

#[test]
fn a09_map_fixed_returns_address() {
    let mut s = space();
    assert_eq!(mmap(&mut s, 0x3000_0000, P, RW, ANON | MAP_FIXED), Ok(0x3000_0000));
    assert_eq!(mmap(&mut s, 0x3000_0000_0000, P, RW, ANON | MAP_FIXED), Ok(0x3000_0000_0000));
    check(&s);
}

#[test]
fn a10_free_hint_is_used() {
    let mut s = space();
    assert_eq!(mmap(&mut s, 0x3000_0000, P, RW, ANON), Ok(0x3000_0000));
}

#[test]
fn a11_occupied_hint_falls_back_to_top_down() {
    let mut s = space();
    anon(&mut s, 0x3000_0000, P, RW);
    let a = mmap(&mut s, 0x3000_0000, P, PROT_READ, ANON).unwrap();
    assert_eq!(a, TOP - P);
}

#[test]
fn a12_low_hint_raised_to_mmap_min_addr() {
    let mut s = space();
    assert_eq!(mmap(&mut s, 0x1000, P, RW, ANON), Ok(0x10000));
}

#[test]
fn a13_fixed_at_zero_without_cap_sys_rawio_eperm() {
    let mut s = space();
    assert_eq!(mmap(&mut s, 0, P, RW, ANON | MAP_FIXED), Err(Errno::EPERM));
    assert_eq!(s.map_count(), 0);
}

#[test]
fn a14_noreplace_at_zero_with_cap_sys_rawio() {
    let mut s = space_with(|c| c.cap_sys_rawio = true);
    assert_eq!(mmap(&mut s, 0, P, RW, ANON | MAP_FIXED_NOREPLACE), Ok(0));
}

#[test]
fn a15_length_wrapping_to_zero_enomem() {
    let mut s = space();
    assert_eq!(mmap(&mut s, 0, P.wrapping_neg() + 1, RW, ANON), Err(Errno::ENOMEM));
}

#[test]
fn a16_length_above_task_size_enomem() {
    let mut s = space();
    assert_eq!(mmap(&mut s, 0, 1 << 62, RW, ANON), Err(Errno::ENOMEM));
}

#[test]
fn a17_fixed_at_minus_page_enomem() {
    let mut s = space();
    assert_eq!(mmap(&mut s, P.wrapping_neg(), P, RW, ANON | MAP_FIXED), Err(Errno::ENOMEM));
}

#[test]
fn a18_fixed_crossing_task_size_enomem() {
    let mut s = space();
    assert_eq!(mmap(&mut s, 0x7fff_ffff_f000, 2 * P, RW, ANON | MAP_FIXED), Err(Errno::ENOMEM));
}

#[test]
fn a19_fixed_in_last_page_errno_4095() {
    let mut s = space();
    assert_eq!(mmap(&mut s, P.wrapping_neg() + 1, P, RW, ANON | MAP_FIXED), Err(Errno(4095)));
    assert_eq!(s.map_count(), 0);
}

#[test]
fn a20_unaligned_offset_einval_even_for_anon() {
    let mut s = space();
    assert_eq!(s.sys_mmap(&NoFiles, 0, P, RW, ANON, NOFD, 1), Err(Errno::EINVAL));
}

#[test]
fn a21_aligned_offset_ignored_for_anon() {
    let mut s = space();
    let a = s.sys_mmap(&NoFiles, 0, P, RW, ANON, NOFD, 1 << 40).unwrap();
    assert_eq!(vma_at(&s, a).pgoff, a >> 12);
}

#[test]
fn a22_bad_fd_ebadf() {
    let mut s = space();
    assert_eq!(s.sys_mmap(&NoFiles, 0, P, RW, MAP_PRIVATE, 999, 0), Err(Errno::EBADF));
}

#[test]
fn a23_shared_growsdown_anon_einval() {
    let mut s = space();
    assert_eq!(mmap(&mut s, 0, P, RW, SHANON | MAP_GROWSDOWN), Err(Errno::EINVAL));
}

#[test]
fn a24_unknown_prot_bits_ignored() {
    let mut s = space();
    let a = mmap(&mut s, 0, P, 0xfff1, ANON).unwrap();
    assert_eq!(perms(vma_at(&s, a).flags), "r--p");
}

#[test]
fn a25_noreplace_on_free_area() {
    let mut s = space();
    assert_eq!(mmap(&mut s, BASE, P, RW, ANON | MAP_FIXED_NOREPLACE), Ok(BASE));
}

#[test]
fn a26_noreplace_over_existing_eexist() {
    let mut s = space();
    anon(&mut s, BASE, P, RW);
    s.write_fault(BASE).unwrap();
    let before = s.vmas().iter().cloned().collect::<Vec<_>>();
    assert_eq!(mmap(&mut s, BASE, P, RW, ANON | MAP_FIXED_NOREPLACE), Err(Errno::EEXIST));
    assert_eq!(s.vmas().iter().cloned().collect::<Vec<_>>(), before);
}

#[test]
fn a27_noreplace_partial_overlap_eexist() {
    let mut s = space();
    anon(&mut s, BASE + P, P, RW);
    assert_eq!(mmap(&mut s, BASE, 2 * P, RW, ANON | MAP_FIXED_NOREPLACE), Err(Errno::EEXIST));
}

#[test]
fn a28_fixed_and_noreplace_over_existing_eexist() {
    let mut s = space();
    anon(&mut s, BASE, P, RW);
    let r = mmap(&mut s, BASE, P, RW, ANON | MAP_FIXED | MAP_FIXED_NOREPLACE);
    assert_eq!(r, Err(Errno::EEXIST));
}

#[test]
fn a29_noreplace_unaligned_einval() {
    let mut s = space();
    assert_eq!(mmap(&mut s, BASE + 1, P, RW, ANON | MAP_FIXED_NOREPLACE), Err(Errno::EINVAL));
}

#[test]
fn a30_noreplace_collision_precedes_map_type_check() {
    let mut s = space();
    anon(&mut s, BASE, P, RW);
    assert_eq!(mmap(&mut s, BASE, P, RW, MAP_ANONYMOUS | MAP_FIXED_NOREPLACE), Err(Errno::EEXIST));
}

#[test]
fn a31_fixed_without_map_type_einval_and_untouched() {
    let mut s = space();
    anon(&mut s, BASE, P, RW);
    assert_eq!(mmap(&mut s, BASE, P, PROT_READ, MAP_ANONYMOUS | MAP_FIXED), Err(Errno::EINVAL));
    assert_eq!(layout(&s), vec![(BASE, BASE + P, "rw-p".to_string())]);
}

#[test]
fn a32_map_fixed_noreplace_selftest_sequence() {
    let mut s = space();
    let b = BASE;
    let nr =
        |s: &mut mmkit::AddressSpace, a: u64, l: u64| mmap(s, a, l, RW, ANON | MAP_FIXED_NOREPLACE);
    assert_eq!(nr(&mut s, b, 5 * P), Ok(b));
    assert_eq!(s.sys_munmap(b, 5 * P), Ok(0));
    assert_eq!(nr(&mut s, b + P, 3 * P), Ok(b + P));
    assert_eq!(nr(&mut s, b, 5 * P), Err(Errno::EEXIST));
    assert_eq!(nr(&mut s, b + 2 * P, P), Err(Errno::EEXIST));
    assert_eq!(nr(&mut s, b + 3 * P, 2 * P), Err(Errno::EEXIST));
    assert_eq!(nr(&mut s, b, 2 * P), Err(Errno::EEXIST));
    assert_eq!(nr(&mut s, b, P), Ok(b));
    assert_eq!(nr(&mut s, b + 4 * P, P), Ok(b + 4 * P));
    assert_eq!(s.sys_munmap(b, 5 * P), Ok(0));
    assert_eq!(s.map_count(), 0);
    check(&s);
}

#[test]
fn a33_map_stack_sets_nohugepage() {
    let mut s = space();
    let a = mmap(&mut s, 0, P, RW, ANON | MAP_STACK).unwrap();
    assert_eq!(vmflags(vma_at(&s, a).flags), "rd wr mr mw me ac nh");
}

#[test]
fn a34_map_locked_is_locked_and_counted() {
    let mut s = space();
    let a = mmap(&mut s, 0, 2 * P, RW, ANON | MAP_LOCKED).unwrap();
    let v = vma_at(&s, a);
    assert!(v.flags.contains(VmFlags::LOCKED));
    assert_eq!(s.locked_vm(), 2);
    // Populated with write faults: the anon_vma exists.
    assert!(v.anon_vma().is_some());
}

#[test]
fn a35_map_32bit_below_2gib() {
    let mut s = space();
    let a = mmap(&mut s, 0, P, RW, ANON | MAP_32BIT).unwrap();
    assert!((0x4000_0000..0x8000_0000).contains(&a), "{a:#x}");
    assert_eq!(a, 0x4000_0000);
}

#[test]
fn a36_second_page_below_first_and_merged() {
    let mut s = space();
    let a = mmap(&mut s, 0, P, RW, ANON).unwrap();
    let b = mmap(&mut s, 0, P, RW, ANON).unwrap();
    assert_eq!(b, a - P);
    assert_eq!(count_in(&s, b, a + P), 1);
    assert_eq!(s.stats().merges, 1);
    check(&s);
}

#[test]
fn a37_two_mib_anon_is_thp_aligned() {
    let mut s = space();
    let a = mmap(&mut s, 0, P, RW, ANON).unwrap();
    let b = mmap(&mut s, 0, 2 << 20, RW, ANON).unwrap();
    assert_eq!(b % (2 << 20), 0);
    assert!(b + (2 << 20) < a, "not adjacent");
    // A 3 MiB mapping is not aligned.
    let c = mmap(&mut s, 0, 3 << 20, RW, ANON).unwrap();
    assert_eq!(c + (3 << 20), b);
}

#[test]
fn a38_write_only_mapping_lacks_rd() {
    let mut s = space();
    let a = mmap(&mut s, 0, P, PROT_WRITE, ANON).unwrap();
    assert_eq!(vmflags(vma_at(&s, a).flags), "wr mr mw me ac");
    assert_eq!(s.write_fault(a), Ok(()));
}

#[test]
fn a39_write_to_read_only_faults() {
    let mut s = space();
    let a = mmap(&mut s, 0, P, PROT_READ, ANON).unwrap();
    assert_eq!(s.write_fault(a), Err(Errno::EFAULT));
    let n = mmap(&mut s, 0, P, PROT_NONE, ANON).unwrap();
    assert_eq!(s.write_fault(n), Err(Errno::EFAULT));
}

#[test]
fn a40_exec_flag_follows_prot() {
    let mut s = space();
    let a = mmap(&mut s, 0, P, RW | PROT_EXEC, ANON).unwrap();
    assert_eq!(perms(vma_at(&s, a).flags), "rwxp");
    let b = mmap(&mut s, 0, P, RW, ANON).unwrap();
    assert_eq!(perms(vma_at(&s, b).flags), "rw-p");
}

#[test]
fn a41_rlimit_as_enomem() {
    let mut s = space_with(|c| c.rlimit_as = 64 << 20);
    assert_eq!(mmap(&mut s, 0, 128 << 20, PROT_NONE, ANON), Err(Errno::ENOMEM));
    assert!(mmap(&mut s, 0, 32 << 20, PROT_NONE, ANON).is_ok());
}

#[test]
fn a42_noreserve_has_nr_not_ac() {
    let mut s = space();
    let a = mmap(&mut s, 0, 10 << 20, RW, ANON | MAP_NORESERVE).unwrap();
    assert_eq!(vmflags(vma_at(&s, a).flags), "rd wr mr mw me nr");
    assert_eq!(s.committed_pages(), 0);
}

#[test]
fn a43_droppable_flags() {
    let mut s = space();
    let a = mmap(&mut s, 0, P, RW, MAP_DROPPABLE | MAP_ANONYMOUS).unwrap();
    assert_eq!(vmflags(vma_at(&s, a).flags), "rd wr mr mw me nr wf dd dp");
}

#[test]
fn a44_droppable_locked_einval() {
    let mut s = space();
    let r = mmap(&mut s, 0, P, RW, MAP_DROPPABLE | MAP_ANONYMOUS | MAP_LOCKED);
    assert_eq!(r, Err(Errno::EINVAL));
}

#[test]
fn a45_map_locked_with_zero_memlock_eperm() {
    let mut s = space_with(|c| c.rlimit_memlock = 0);
    assert_eq!(mmap(&mut s, 0, P, RW, ANON | MAP_LOCKED), Err(Errno::EPERM));
}

#[test]
fn a46_map_locked_over_memlock_eagain() {
    let mut s = space_with(|c| c.rlimit_memlock = P);
    assert_eq!(mmap(&mut s, 0, 2 * P, RW, ANON | MAP_LOCKED), Err(Errno::EAGAIN));
    assert!(mmap(&mut s, 0, P, RW, ANON | MAP_LOCKED).is_ok());
    assert_eq!(mmap(&mut s, 0, P, RW, ANON | MAP_LOCKED), Err(Errno::EAGAIN));
}

#[test]
fn a47_mcl_future_with_memlock_used_up_eagain() {
    const MCL_FUTURE: u64 = 2;
    let mut s = space_with(|c| c.rlimit_memlock = 2 * P);
    mmap(&mut s, 0, 2 * P, RW, ANON | MAP_LOCKED).unwrap();
    assert_eq!(s.sys_mlockall(MCL_FUTURE), Ok(0));
    assert_eq!(mmap(&mut s, 0, P, RW, ANON), Err(Errno::EAGAIN));
    assert_eq!(s.sys_munlockall(), Ok(0));
    let a = mmap(&mut s, 0, P, RW, ANON).unwrap();
    assert!(!vma_at(&s, a).flags.contains(VmFlags::LOCKED));
    check(&s);
}

#[test]
fn a_mcl_future_locks_new_mappings() {
    const MCL_FUTURE: u64 = 2;
    let mut s = space();
    assert_eq!(s.sys_mlockall(MCL_FUTURE), Ok(0));
    let a = mmap(&mut s, 0, 2 * P, RW, ANON).unwrap();
    assert!(vma_at(&s, a).flags.contains(VmFlags::LOCKED));
    assert_eq!(s.locked_vm(), 2);
    // Not inherited through fork.
    let mut c = s.fork();
    let b = mmap(&mut c, 0, P, RW, ANON).unwrap();
    assert!(!vma_at(&c, b).flags.contains(VmFlags::LOCKED));
}

#[test]
fn a48_rlimit_data_soft_zero_valgrind_workaround() {
    let mut s = space_with(|c| c.rlimit_data = 0);
    assert!(mmap(&mut s, 0, P, RW, ANON).is_ok());
    // With a finite hard limit the workaround stops there.
    let mut s = space_with(|c| {
        c.rlimit_data = 0;
        c.rlimit_data_max = 2 * P;
    });
    assert!(mmap(&mut s, 0, 2 * P, RW, ANON).is_ok());
    assert_eq!(mmap(&mut s, 0, P, RW, ANON), Err(Errno::ENOMEM));
    // Non-data mappings are not limited by RLIMIT_DATA.
    assert!(mmap(&mut s, 0, P, PROT_READ, ANON).is_ok());
}

#[test]
fn a49_fixed_over_middle_splits_in_three() {
    let mut s = space();
    anon(&mut s, BASE, 6 * P, PROT_READ);
    anon(&mut s, BASE + 2 * P, 2 * P, RW);
    assert_eq!(count_in(&s, BASE, BASE + 6 * P), 3);
    check(&s);
}

#[test]
fn a50_fixed_identical_over_written_mapping_remerges() {
    let mut s = space();
    anon(&mut s, BASE, 6 * P, RW);
    s.write_fault(BASE).unwrap();
    s.write_fault(BASE + 5 * P).unwrap();
    anon(&mut s, BASE + 2 * P, P, RW);
    assert_eq!(count_in(&s, BASE, BASE + 6 * P), 1);
    check(&s);
}

#[test]
fn a_fixed_replacement_keeps_accounting() {
    let mut s = space();
    anon(&mut s, BASE, 4 * P, RW);
    assert_eq!(s.committed_pages(), 4);
    anon(&mut s, BASE + P, 2 * P, PROT_READ);
    assert_eq!(s.committed_pages(), 2);
    assert_eq!(s.stats().mapped_bytes, 4 * P);
    check(&s);
}

#[test]
fn a_shared_anon_is_shmem_with_offset_zero() {
    let mut s = space();
    let a = mmap(&mut s, 0, 2 * P, RW, SHANON).unwrap();
    let v = vma_at(&s, a);
    assert!(matches!(v.backing, Backing::Shmem { .. }));
    assert_eq!(v.pgoff, 0);
    assert_eq!(vmflags(v.flags), "rd wr sh mr mw me ms");
}

#[test]
fn a_max_map_count_allows_one_more() {
    let mut s = space_with(|c| c.max_map_count = 3);
    for i in 0..4 {
        // Alternate protections so that nothing merges.
        let prot = if i % 2 == 0 { PROT_READ } else { RW };
        assert!(mmap(&mut s, BASE + i * P, P, prot, ANON | MAP_FIXED).is_ok(), "{i}");
    }
    assert_eq!(s.map_count(), 4);
    assert_eq!(mmap(&mut s, BASE + 10 * P, P, PROT_READ, ANON | MAP_FIXED), Err(Errno::ENOMEM));
}

#[test]
fn a_overcommit_heuristic_refuses_more_than_ram_plus_swap() {
    let mut s = space_with(|c| {
        c.total_ram_pages = 1024;
        c.total_swap_pages = 0;
    });
    assert_eq!(mmap(&mut s, 0, 1025 * P, RW, ANON), Err(Errno::ENOMEM));
    assert!(mmap(&mut s, 0, 1025 * P, PROT_READ, ANON).is_ok());
    assert!(mmap(&mut s, 0, 1025 * P, RW, ANON | MAP_NORESERVE).is_ok());
    assert!(mmap(&mut s, 0, 1024 * P, RW, ANON).is_ok());
}

#[test]
fn a_populate_writable_private_assigns_anon_vma() {
    let mut s = space();
    let a = mmap(&mut s, 0, P, RW, ANON | MAP_POPULATE).unwrap();
    assert!(vma_at(&s, a).anon_vma().is_some());
    let r = mmap(&mut s, 0, P, PROT_READ, ANON | MAP_POPULATE).unwrap();
    assert!(vma_at(&s, r).anon_vma().is_none());
    let sh = mmap(&mut s, 0, P, RW, SHANON | MAP_POPULATE).unwrap();
    assert!(vma_at(&s, sh).anon_vma().is_none());
}

#[test]
fn a_anon_hugetlb_without_huge_pages() {
    let mut s = space();
    assert_eq!(mmap(&mut s, 0, P, RW, ANON | MAP_HUGETLB), Err(Errno::ENOMEM));
    assert_eq!(mmap(&mut s, 0, 0, RW, ANON | MAP_HUGETLB), Err(Errno::EINVAL));
}

#[test]
fn a_map_sync_on_anon_sets_sf() {
    let mut s = space();
    let a = mmap(&mut s, 0, P, RW, ANON | MAP_SYNC).unwrap();
    assert_eq!(vmflags(vma_at(&s, a).flags), "rd wr mr mw me ac sf");
}

// ---------------------------------------------------------------------------------------
// File cases.

fn fmap(
    s: &mut mmkit::AddressSpace,
    len: u64,
    prot: u64,
    flags: u64,
    fd: u64,
    off: u64,
) -> Result<u64, Errno> {
    s.sys_mmap(&TestFiles::standard(), 0, len, prot, flags, fd, off)
}

#[test]
fn f01_write_only_fd_eacces() {
    let mut s = space();
    assert_eq!(fmap(&mut s, P, PROT_READ, MAP_PRIVATE, 5, 0), Err(Errno::EACCES));
    assert_eq!(fmap(&mut s, P, PROT_READ, MAP_SHARED, 5, 0), Err(Errno::EACCES));
    assert_eq!(fmap(&mut s, P, PROT_NONE, MAP_SHARED, 5, 0), Err(Errno::EACCES));
}

#[test]
fn f02_file_zero_length_einval() {
    let mut s = space();
    assert_eq!(fmap(&mut s, 0, PROT_READ, MAP_PRIVATE, 3, 0), Err(Errno::EINVAL));
}

#[test]
fn f03_file_without_map_type_einval() {
    let mut s = space();
    assert_eq!(fmap(&mut s, P, PROT_READ, 0, 3, 0), Err(Errno::EINVAL));
}

#[test]
fn f04_shared_write_on_read_only_fd_eacces() {
    let mut s = space();
    assert_eq!(fmap(&mut s, P, RW, MAP_SHARED, 3, 0), Err(Errno::EACCES));
}

#[test]
fn f05_private_write_on_read_only_fd_ok() {
    let mut s = space();
    let a = fmap(&mut s, P, RW, MAP_PRIVATE, 3, 0).unwrap();
    assert_eq!(vmflags(vma_at(&s, a).flags), "rd wr mr mw me ac");
    assert_eq!(s.write_fault(a), Ok(()));
    assert!(vma_at(&s, a).anon_vma().is_some());
}

#[test]
fn f06_shared_read_on_read_only_fd_then_mprotect_write_eacces() {
    let mut s = space();
    let a = fmap(&mut s, P, PROT_READ, MAP_SHARED, 3, 0).unwrap();
    let v = vma_at(&s, a);
    assert_eq!(perms(v.flags), "r--s");
    assert_eq!(vmflags(v.flags), "rd mr me ms");
    assert_eq!(s.sys_mprotect(a, P, RW), Err(Errno::EACCES));
    // /dev/zero opened read-only, shared (LTP mprotect01 #3).
    let z = fmap(&mut s, P, PROT_READ, MAP_SHARED, 10, 0).unwrap();
    assert_eq!(s.sys_mprotect(z, P, RW), Err(Errno::EACCES));
}

#[test]
fn f07_shared_validate_on_file_ok() {
    let mut s = space();
    let a = fmap(&mut s, P, RW, MAP_SHARED_VALIDATE, 4, 0).unwrap();
    assert_eq!(perms(vma_at(&s, a).flags), "rw-s");
}

#[test]
fn f08_shared_validate_unknown_flag_eopnotsupp() {
    let mut s = space();
    let unknown = 0x20_0000; // an undefined MAP_ bit
    assert_eq!(
        fmap(&mut s, P, PROT_READ, MAP_SHARED_VALIDATE | unknown, 4, 0),
        Err(Errno::EOPNOTSUPP)
    );
    assert!(fmap(&mut s, P, PROT_READ, MAP_SHARED | unknown, 4, 0).is_ok());
    // MAP_FIXED_NOREPLACE is not a legacy flag either [V].
    let r = s.sys_mmap(
        &TestFiles::standard(),
        BASE,
        P,
        PROT_READ,
        MAP_SHARED_VALIDATE | MAP_FIXED_NOREPLACE,
        4,
        0,
    );
    assert_eq!(r, Err(Errno::EOPNOTSUPP));
    // MAP_32BIT is [V].
    assert!(fmap(&mut s, P, PROT_READ, MAP_SHARED_VALIDATE | MAP_32BIT, 4, 0).is_ok());
    // MAP_SYNC on a non-DAX ext4 file [V].
    assert_eq!(fmap(&mut s, P, PROT_READ, MAP_SHARED | MAP_SYNC, 4, 0), Err(Errno::EOPNOTSUPP));
    assert_eq!(fmap(&mut s, P, PROT_READ, MAP_PRIVATE | MAP_SYNC, 4, 0), Err(Errno::EOPNOTSUPP));
}

#[test]
fn f09_offsets_near_llong_max_eoverflow() {
    let mut s = space();
    let llong_max = i64::MAX as u64;
    assert_eq!(
        fmap(&mut s, P, PROT_READ, MAP_PRIVATE, 3, llong_max & !(P - 1)),
        Err(Errno::EOVERFLOW)
    );
    assert_eq!(fmap(&mut s, P, PROT_READ, MAP_PRIVATE, 3, 1 << 63), Err(Errno::EOVERFLOW));
    assert_eq!(
        fmap(&mut s, P, PROT_READ, MAP_PRIVATE, 3, (2 * P).wrapping_neg()),
        Err(Errno::EOVERFLOW)
    );
    assert_eq!(fmap(&mut s, P, PROT_READ, MAP_PRIVATE, 3, P.wrapping_neg()), Err(Errno::EOVERFLOW));
    assert!(fmap(&mut s, P, PROT_READ, MAP_PRIVATE, 3, (llong_max - P) & !(P - 1)).is_ok());
}

#[test]
fn f10_file_growsdown_einval() {
    let mut s = space();
    assert_eq!(fmap(&mut s, P, PROT_READ, MAP_PRIVATE | MAP_GROWSDOWN, 3, 0), Err(Errno::EINVAL));
}

#[test]
fn f11_pipe_ends() {
    let mut s = space();
    assert_eq!(fmap(&mut s, P, PROT_READ, MAP_PRIVATE, 7, 0), Err(Errno::ENODEV));
    assert_eq!(fmap(&mut s, P, PROT_READ, MAP_PRIVATE, 8, 0), Err(Errno::EACCES));
}

#[test]
fn f13_o_path_ebadf() {
    let mut s = space();
    assert_eq!(fmap(&mut s, P, PROT_READ, MAP_PRIVATE, 9, 0), Err(Errno::EBADF));
}

#[test]
fn f14_invalid_fd_ebadf() {
    let mut s = space();
    assert_eq!(fmap(&mut s, P, PROT_READ, MAP_PRIVATE, 42, 0), Err(Errno::EBADF));
    assert_eq!(fmap(&mut s, P, PROT_READ, MAP_PRIVATE, NOFD, 0), Err(Errno::EBADF));
}

#[test]
fn f15_noreplace_over_file_mapping_eexist() {
    let mut s = space();
    let f = TestFiles::standard();
    let a = s.sys_mmap(&f, BASE, 2 * P, PROT_READ, MAP_PRIVATE | MAP_FIXED, 3, 0).unwrap();
    let r = s.sys_mmap(&f, a, P, PROT_READ, MAP_PRIVATE | MAP_FIXED_NOREPLACE, 3, 0);
    assert_eq!(r, Err(Errno::EEXIST));
}

#[test]
fn f18_dev_zero_shared_is_fresh_shmem_private_is_anonymous_memory() {
    let mut s = space();
    let a = fmap(&mut s, P, RW, MAP_SHARED, 6, 0).unwrap();
    let b = fmap(&mut s, P, RW, MAP_SHARED, 6, 0).unwrap();
    let (va, vb) = (vma_at(&s, a), vma_at(&s, b));
    match (&va.backing, &vb.backing) {
        (Backing::Shmem { id: x, .. }, Backing::Shmem { id: y, .. }) => assert_ne!(x, y),
        other => panic!("{other:?}"),
    }
    assert_eq!(count_in(&s, a.min(b), a.max(b) + P), 2);
    // Private: keeps the file offset as pgoff (maps prints it) [V].
    let c = fmap(&mut s, 2 * P, RW, MAP_PRIVATE, 6, 0x5000).unwrap();
    let vc = vma_at(&s, c);
    assert_eq!(vc.pgoff, 5);
    assert_eq!(vmflags(vc.flags), "rd wr mr mw me ac");
}

#[test]
fn f_adjacent_file_pieces_merge_only_with_continuous_offsets() {
    let mut s = space();
    let f = TestFiles::standard();
    s.sys_mmap(&f, BASE, P, PROT_READ, MAP_PRIVATE | MAP_FIXED, 3, 0).unwrap();
    s.sys_mmap(&f, BASE + P, P, PROT_READ, MAP_PRIVATE | MAP_FIXED, 3, P).unwrap();
    assert_eq!(count_in(&s, BASE, BASE + 2 * P), 1);
    s.sys_mmap(&f, BASE + 2 * P, P, PROT_READ, MAP_PRIVATE | MAP_FIXED, 3, 5 * P).unwrap();
    assert_eq!(count_in(&s, BASE, BASE + 3 * P), 2);
    // A different file never merges.
    s.sys_mmap(&f, BASE + 3 * P, P, PROT_READ, MAP_PRIVATE | MAP_FIXED, 4, 6 * P).unwrap();
    assert_eq!(count_in(&s, BASE, BASE + 4 * P), 3);
    check(&s);
}

#[test]
fn f_large_file_mapping_is_thp_aligned() {
    // [V] a 4 MiB private mapping of an ext4 file at offset 0 lands 2 MiB-aligned.
    let mut s = space();
    let a = fmap(&mut s, 4 << 20, PROT_READ, MAP_PRIVATE, 3, 0).unwrap();
    assert_eq!(a % (2 << 20), 0);
}

// ---------------------------------------------------------------------------------------
// M. Stack guard gap.

const G: u64 = 0x7000_0000_0000;

fn with_stack() -> mmkit::AddressSpace {
    let mut s = space();
    mmap(&mut s, G, 16 * P, RW, ANON | MAP_FIXED | MAP_GROWSDOWN).unwrap();
    s
}

#[test]
fn m01_hint_inside_guard_gap_ignored() {
    let mut s = with_stack();
    let a = mmap(&mut s, G - 4 * P, 4 * P, RW, ANON).unwrap();
    assert_ne!(a, G - 4 * P);
}

#[test]
fn m02_hint_ending_256_pages_below_honoured() {
    let mut s = with_stack();
    assert_eq!(mmap(&mut s, G - 260 * P, 4 * P, RW, ANON), Ok(G - 260 * P));
}

#[test]
fn m03_hint_ending_255_pages_below_ignored() {
    let mut s = with_stack();
    let a = mmap(&mut s, G - 259 * P, 4 * P, RW, ANON).unwrap();
    assert_ne!(a, G - 259 * P);
}

#[test]
fn m04_fixed_noreplace_ignores_guard_gap() {
    let mut s = with_stack();
    assert_eq!(mmap(&mut s, G - P, P, RW, ANON | MAP_FIXED_NOREPLACE), Ok(G - P));
}

#[test]
fn m05_stack_grows_on_access_unless_guard_gap_is_violated() {
    let mut s = with_stack();
    mmap(&mut s, G - 300 * P, P, RW, ANON | MAP_FIXED).unwrap();
    // 269 pages between the new stack bottom and the mapping: fine.
    assert_eq!(s.write_fault(G - 30 * P), Ok(()));
    let v = vma_at(&s, G - 30 * P);
    assert_eq!((v.start, v.end), (G - 30 * P, G + 16 * P));
    assert!(v.anon_vma().is_some());
    assert_eq!(s.stack_vm(), 46);
    // 249 pages: inside the guard gap, the access faults.
    assert_eq!(s.write_fault(G - 50 * P), Err(mmkit::Errno::EFAULT));
    check(&s);
}

#[test]
fn m_top_down_search_keeps_guard_gap_below_stack() {
    let mut s = space();
    // A stack right under mmap_base: a new mapping must stay 256 pages below it.
    mmap(&mut s, TOP - 16 * P, 16 * P, RW, ANON | MAP_FIXED | MAP_GROWSDOWN).unwrap();
    let a = mmap(&mut s, 0, P, RW, ANON).unwrap();
    assert_eq!(a, TOP - 16 * P - 256 * P - P);
}

#[test]
fn a_fixed_failing_after_split_keeps_the_split() {
    // [V] vms_gather_munmap_vmas() splits before may_expand_vm() refuses; the abort path
    // reattaches the pieces without re-merging them.
    let mut s = space_with(|c| c.rlimit_as = 24 * P);
    anon(&mut s, BASE, 8 * P, PROT_READ);
    anon(&mut s, BASE + 2 * P, 2 * P, RW);
    let r = mmap(&mut s, BASE + 5 * P, 64 * P, RW, ANON | MAP_FIXED);
    assert_eq!(r, Err(Errno::ENOMEM));
    assert_eq!(
        layout(&s),
        vec![
            (BASE, BASE + 2 * P, "r--p".to_string()),
            (BASE + 2 * P, BASE + 4 * P, "rw-p".to_string()),
            (BASE + 4 * P, BASE + 5 * P, "r--p".to_string()),
            (BASE + 5 * P, BASE + 8 * P, "r--p".to_string()),
        ]
    );
    s.check_invariants(false);
}

#[test]
fn a37_thp_placement_sequence_follows_linux_formula() {
    // The same sequence on the host (6.18, setarch -R) placed every mapping where
    // thp_get_unmapped_area()'s padded search puts it, relative to the gap it used:
    // anonymous 2 MiB (any flags, MAP_STACK and MAP_GROWSDOWN included) and private
    // /dev/zero of any length are aligned; shared /dev/zero and shared anonymous are not.
    let f = TestFiles::standard();
    let mut s = space();
    let a = mmap(&mut s, 0, P, RW, ANON).unwrap();
    assert_eq!(a, 0x7fff_f7ff_e000);
    let m = |s: &mut mmkit::AddressSpace, len: u64, flags: u64, fd: u64| {
        s.sys_mmap(&f, 0, len, RW, flags, fd, 0).unwrap()
    };
    assert_eq!(m(&mut s, 2 << 20, ANON | MAP_STACK, NOFD), 0x7fff_f7c0_0000);
    assert_eq!(m(&mut s, 2 << 20, ANON | MAP_NORESERVE, NOFD), 0x7fff_f7a0_0000);
    assert_eq!(m(&mut s, 2 << 20, ANON, NOFD), 0x7fff_f780_0000);
    assert_eq!(m(&mut s, 2 << 20, ANON | MAP_GROWSDOWN, NOFD), 0x7fff_f760_0000);
    // Below the stack's guard gap.
    assert_eq!(m(&mut s, 2 << 20, MAP_PRIVATE, 6), 0x7fff_f720_0000);
    assert_eq!(m(&mut s, 3 << 20, MAP_PRIVATE, 6), 0x7fff_f6e0_0000);
    assert_eq!(m(&mut s, 2 << 20, MAP_SHARED, 6), 0x7fff_f6c0_0000);
    assert_eq!(m(&mut s, 4 << 20, SHANON, NOFD), 0x7fff_f680_0000);
    check(&s);
}

#[test]
fn a_bottom_up_fallback_when_top_down_finds_nothing() {
    // arch_get_unmapped_area_topdown() falls back to the bottom-up search from
    // mmap_legacy_base (TASK_SIZE / 3) when nothing fits below mmap_base.
    let mut s = space_with(|c| c.mmap_base = 0x10_0000);
    let a = mmap(&mut s, 0, 16 * P, RW, ANON).unwrap();
    assert_eq!(a, 0x10_0000 - 16 * P);
    let b = mmap(&mut s, 0, 1 << 20, RW, ANON).unwrap();
    assert_eq!(b, s.config().legacy_mmap_base);
    let c = mmap(&mut s, 0, P, RW, ANON).unwrap();
    assert_eq!(c, a - P);
}

#[test]
fn a_private_dev_zero_is_anonymous_for_mprotect_accounting() {
    // mprotect_fixup() drops VM_ACCOUNT from a never-written anonymous VMA made read-only;
    // a private /dev/zero mapping is anonymous in that sense (vma_is_anonymous()).
    let mut s = space();
    let f = TestFiles::standard();
    let a = s.sys_mmap(&f, 0, 2 * P, RW, MAP_PRIVATE, 6, 0).unwrap();
    s.sys_mprotect(a, 2 * P, PROT_READ).unwrap();
    assert_eq!(vmflags(vma_at(&s, a).flags), "rd mr mw me");
}

#[test]
fn fixed_noreplace_overlap_is_checked_before_overcommit() {
    // Oracle seed 2005763 (host EEXIST from the test process's own mappings): do_mmap()
    // refuses an occupied MAP_FIXED_NOREPLACE range before mmap_region() charges memory.
    let mut s = space_with(|c| c.cap_sys_rawio = true);
    anon(&mut s, BASE, P, RW);
    let r = mmap(&mut s, 0, 0x7fff_ffff_f000, RW, ANON | MAP_FIXED_NOREPLACE);
    assert_eq!(r, Err(Errno::EEXIST));
}
