//! Conformance: brk (cases.md section J).

mod common;

use common::*;
use mmkit::AddressSpace;

const B0: u64 = 0x5555_5557_9000;

fn heap_space() -> AddressSpace {
    let mut s = space();
    // The executable's bss ends where the heap starts (as the ELF loader leaves it).
    anon(&mut s, B0 - 2 * P, 2 * P, RW);
    s.set_brk_base(B0, B0);
    s
}

#[test]
fn j01_failure_returns_old_brk() {
    let mut s = heap_space();
    assert_eq!(s.sys_brk(u64::MAX), B0);
    assert_eq!(s.brk_range(), (B0, B0));
    check(&s);
}

#[test]
fn j02_brk_zero_returns_current() {
    let mut s = heap_space();
    assert_eq!(s.sys_brk(0), B0);
    s.sys_brk(B0 + P);
    assert_eq!(s.sys_brk(0), B0 + P);
}

#[test]
fn j03_unaligned_value_kept() {
    let mut s = heap_space();
    assert_eq!(s.sys_brk(B0 + 1), B0 + 1);
    assert_eq!(s.brk_range().1, B0 + 1);
    let v = vma_at(&s, B0);
    assert_eq!((v.start, v.end), (B0, B0 + P));
    // The heap does not merge with the bss below start_brk.
    assert_eq!(count_in(&s, B0 - 2 * P, B0 + P), 2);
    check(&s);
}

#[test]
fn j04_grow_same_shrink_repeatedly() {
    let mut s = heap_space();
    let mut cur = B0;
    for _ in 0..11 {
        let up = cur + 2 * P - 1;
        assert_eq!(s.sys_brk(up), up);
        assert_eq!(s.sys_brk(up), up);
        assert_eq!(s.write_fault(up - 1), Ok(()));
        let down = up - (2 * P - 1);
        assert_eq!(s.sys_brk(down), down);
        cur = down;
        check(&s);
    }
}

#[test]
fn j05_shrink_unmaps_several_vmas() {
    let mut s = heap_space();
    assert_eq!(s.sys_brk(B0 + P), B0 + P);
    assert_eq!(s.sys_brk(B0 + 2 * P), B0 + 2 * P);
    assert_eq!(count_in(&s, B0, B0 + 2 * P), 1);
    assert_eq!(s.sys_mprotect(B0 + P, P, PROT_READ), Ok(0));
    assert_eq!(s.sys_brk(B0 + 3 * P), B0 + 3 * P);
    assert_eq!(count_in(&s, B0, B0 + 3 * P), 3);
    assert_eq!(s.sys_brk(B0), B0);
    assert_eq!(count_in(&s, B0, B0 + 3 * P), 0);
    check(&s);
}

#[test]
fn j06_heap_keeps_a_page_below_next_mapping() {
    let mut s = heap_space();
    anon(&mut s, B0 + 4 * P, P, PROT_READ);
    assert_eq!(s.sys_brk(B0 + 3 * P), B0 + 3 * P);
    assert_eq!(s.sys_brk(B0 + 4 * P), B0 + 3 * P);
    // Below a growsdown mapping the guard gap counts too.
    let mut s = heap_space();
    let g = B0 + 300 * P;
    mmap(&mut s, g, P, RW, ANON | MAP_FIXED | MAP_GROWSDOWN).unwrap();
    // vm_start_gap(next) = g - 256 pages = B0 + 44 pages; the heap must end a page below.
    assert_eq!(s.sys_brk(B0 + 43 * P), B0 + 43 * P);
    assert_eq!(s.sys_brk(B0 + 43 * P + 1), B0 + 43 * P);
    assert_eq!(s.sys_brk(B0 + 44 * P), B0 + 43 * P);
    check(&s);
}

#[test]
fn j07_rlimit_data_zero_blocks_growth() {
    let mut s = space_with(|c| c.rlimit_data = 0);
    s.set_brk_base(B0, B0);
    assert_eq!(s.sys_brk(B0 + 8192), B0);
    assert_eq!(s.map_count(), 0);
    // The data segment counts against the limit too.
    let mut s = space_with(|c| c.rlimit_data = 4 * P);
    s.set_brk_base(B0, B0);
    s.set_data_segment(B0 - 3 * P, B0 - P);
    assert_eq!(s.sys_brk(B0 + 2 * P), B0 + 2 * P);
    assert_eq!(s.sys_brk(B0 + 3 * P), B0 + 2 * P);
}

#[test]
fn j08_forked_child_heap_growth_gives_two_heap_vmas() {
    let mut parent = heap_space();
    assert_eq!(parent.sys_brk(B0 + 4 * P), B0 + 4 * P);
    parent.write_fault(B0).unwrap();
    let mut child = parent.fork();
    assert_eq!(child.sys_brk(B0 + 8 * P), B0 + 8 * P);
    assert_eq!(count_in(&child, B0, B0 + 8 * P), 2);
    assert_eq!(parent.sys_brk(B0 + 8 * P), B0 + 8 * P);
    assert_eq!(count_in(&parent, B0, B0 + 8 * P), 1);
    check(&child);
    check(&parent);
}

#[test]
fn j_below_start_brk_fails() {
    let mut s = heap_space();
    s.sys_brk(B0 + 2 * P);
    assert_eq!(s.sys_brk(B0 - P), B0 + 2 * P);
    assert_eq!(s.stats().brk_calls, 2);
}

#[test]
fn j_shrink_within_the_same_page_only_stores() {
    let mut s = heap_space();
    s.sys_brk(B0 + 2 * P);
    assert_eq!(s.sys_brk(B0 + P + 5), B0 + P + 5);
    assert_eq!(vma_at(&s, B0).end, B0 + 2 * P);
    assert_eq!(s.sys_brk(B0 + 2 * P - 7), B0 + 2 * P - 7);
    assert_eq!(vma_at(&s, B0).end, B0 + 2 * P);
}

#[test]
fn j_heap_growth_merges_and_is_accounted() {
    let mut s = heap_space();
    for i in 1..=10 {
        assert_eq!(s.sys_brk(B0 + i * P), B0 + i * P);
    }
    assert_eq!(count_in(&s, B0, B0 + 10 * P), 1);
    assert_eq!(vmflags(vma_at(&s, B0).flags), "rd wr mr mw me ac");
    assert_eq!(s.data_vm(), 12);
    check(&s);
}

#[test]
fn j_brk_over_memlock_after_mcl_future_style_def_flags() {
    // RLIMIT_AS also limits the heap.
    let mut s = space_with(|c| c.rlimit_as = 4 * P);
    s.set_brk_base(B0, B0);
    assert_eq!(s.sys_brk(B0 + 4 * P), B0 + 4 * P);
    assert_eq!(s.sys_brk(B0 + 5 * P), B0 + 4 * P);
}
