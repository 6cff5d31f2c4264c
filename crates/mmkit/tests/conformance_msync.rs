//! Conformance: msync, cases.md section I (and F26 on files). msync never changes a VMA;
//! these tests assert return values and errno. Write-back of dirty file pages comes with
//! the simulator.

mod common;

use common::*;
use mmkit::Errno;

const MS_ASYNC: u64 = 1;
const MS_INVALIDATE: u64 = 2;
const MS_SYNC: u64 = 4;

#[test]
fn i1_unmapped_address_zero_length_succeeds() {
    let mut s = space();
    for f in [MS_SYNC, MS_ASYNC, 0] {
        assert_eq!(s.sys_msync(0, 0, f), Ok(0));
    }
}

#[test]
fn i2_unmapped_address_nonzero_length_enomem() {
    let mut s = space();
    for f in [MS_SYNC, MS_ASYNC, 0, MS_INVALIDATE] {
        assert_eq!(s.sys_msync(0, P, f), Err(Errno::ENOMEM));
    }
}

#[test]
fn i3_sync_and_async_together_einval() {
    let mut s = space();
    let p = anon(&mut s, BASE, P, RW);
    assert_eq!(s.sys_msync(p, P, MS_SYNC | MS_ASYNC), Err(Errno::EINVAL));
    assert_eq!(s.sys_msync(0, 0, MS_SYNC | MS_ASYNC), Err(Errno::EINVAL));
}

#[test]
fn i4_normally_succeeds_anon_and_file_private_and_shared() {
    let mut s = space();
    let files = TestFiles::standard();
    let a = anon(&mut s, BASE, P, RW);
    let sh = mmap(&mut s, BASE + 8 * P, P, RW, SHANON | MAP_FIXED).unwrap();
    let fp = s.sys_mmap(&files, BASE + 16 * P, P, RW, MAP_PRIVATE | MAP_FIXED, 4, 0).unwrap();
    let fs = s.sys_mmap(&files, BASE + 24 * P, P, RW, MAP_SHARED | MAP_FIXED, 4, 0).unwrap();
    for m in [a, sh, fp, fs] {
        for f in [MS_SYNC, MS_ASYNC, 0] {
            assert_eq!(s.sys_msync(m, P, f), Ok(0));
            assert_eq!(s.sys_msync(m, P - 1, f), Ok(0), "unaligned length");
        }
    }
    assert_eq!(s.map_count(), 4);
}

#[test]
fn i5_unaligned_address_einval() {
    let mut s = space();
    let p = anon(&mut s, BASE, P, RW);
    assert_eq!(s.sys_msync(p + 1, P, MS_SYNC), Err(Errno::EINVAL));
}

#[test]
fn i6_invalidate_unlocked_succeeds() {
    let mut s = space();
    let p = anon(&mut s, BASE, P, RW);
    assert_eq!(s.sys_msync(p, P, MS_INVALIDATE), Ok(0));
    assert_eq!(s.sys_msync(p, P, MS_INVALIDATE | MS_SYNC), Ok(0));
    assert_eq!(s.sys_msync(p, P, MS_INVALIDATE | MS_ASYNC), Ok(0));
}

#[test]
fn i7_invalidate_on_locked_ebusy() {
    let mut s = space();
    let p = anon(&mut s, BASE, 2 * P, RW);
    assert_eq!(s.sys_mlock(p + P, P), Ok(0));
    assert_eq!(s.sys_msync(p + P, P, MS_INVALIDATE), Err(Errno::EBUSY));
    assert_eq!(s.sys_msync(p, 2 * P, MS_INVALIDATE | MS_SYNC), Err(Errno::EBUSY));
    assert_eq!(s.sys_msync(p, 2 * P, MS_SYNC), Ok(0));
}

#[test]
fn i8_unknown_flag_bit_einval() {
    let mut s = space();
    let p = anon(&mut s, BASE, P, RW);
    assert_eq!(s.sys_msync(p, P, 8), Err(Errno::EINVAL));
    assert_eq!(s.sys_msync(p, P, MS_SYNC | 0x10), Err(Errno::EINVAL));
    // Flags are checked before the address.
    assert_eq!(s.sys_msync(p + 1, P, 8), Err(Errno::EINVAL));
    // flags is a C int: the upper half of the register is ignored.
    assert_eq!(s.sys_msync(p, P, (1 << 32) | MS_SYNC), Ok(0));
}

#[test]
fn i9_address_all_ones_einval() {
    let mut s = space();
    assert_eq!(s.sys_msync(u64::MAX, P, MS_SYNC), Err(Errno::EINVAL));
}

#[test]
fn i10_range_with_hole_enomem() {
    let mut s = space();
    let q = anon(&mut s, BASE, 3 * P, RW);
    assert_eq!(s.sys_munmap(q + P, P), Ok(0));
    for f in [MS_SYNC, MS_ASYNC, 0, MS_INVALIDATE] {
        assert_eq!(s.sys_msync(q, 3 * P, f), Err(Errno::ENOMEM));
    }
    // [V] a range running past the last mapping, or starting in a hole.
    assert_eq!(s.sys_msync(q, 4 * P, MS_SYNC), Err(Errno::ENOMEM));
    assert_eq!(s.sys_msync(q - P, 2 * P, MS_ASYNC), Err(Errno::ENOMEM));
    assert_eq!(s.sys_msync(q - P, 2 * P, MS_INVALIDATE), Err(Errno::ENOMEM));
}

#[test]
fn i11_length_rounding_to_zero_succeeds() {
    let mut s = space();
    let p = anon(&mut s, BASE, P, RW);
    assert_eq!(s.sys_msync(p, 2048u64.wrapping_neg(), MS_SYNC), Ok(0));
    // A length that does not round to 0 but wraps the end: ENOMEM.
    assert_eq!(s.sys_msync(p, u64::MAX - 2 * P, MS_SYNC), Err(Errno::ENOMEM));
}

#[test]
fn f26_file_variants_of_i4_to_i6() {
    let mut s = space();
    let files = TestFiles::standard();
    let ro = s.sys_mmap(&files, BASE, 2 * P, PROT_READ, MAP_SHARED | MAP_FIXED, 3, 0).unwrap();
    for f in [MS_SYNC, MS_ASYNC, 0, MS_INVALIDATE] {
        assert_eq!(s.sys_msync(ro, 2 * P, f), Ok(0));
    }
    let zero = s.sys_mmap(&files, BASE + 8 * P, P, RW, MAP_SHARED | MAP_FIXED, 6, 0).unwrap();
    assert_eq!(s.sys_msync(zero, P, MS_SYNC), Ok(0));
}
