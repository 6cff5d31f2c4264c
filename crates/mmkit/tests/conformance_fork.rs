//! Conformance: fork as the VMA list sees it (cases.md section K, VMA-level parts, and the
//! fork rules of semantics.md).

mod common;

use common::*;
use mmkit::vma::{Backing, VmFlags};

#[test]
fn k01_shared_mapping_is_the_same_object_in_the_child() {
    let mut parent = space();
    let a = mmap(&mut parent, 0, P, RW, SHANON).unwrap();
    let child = parent.fork();
    let (pv, cv) = (vma_at(&parent, a), vma_at(&child, a));
    assert!(matches!(pv.backing, Backing::Shmem { .. }));
    assert_eq!(pv.backing, cv.backing);
    assert_eq!(cv.anon_vma(), None);
}

#[test]
fn k02_private_mapping_gets_its_own_inherited_anon_vma() {
    let mut parent = space();
    let a = anon(&mut parent, 0, P, RW);
    parent.write_fault(a).unwrap();
    let child = parent.fork();
    let (pa, ca) = (vma_at(&parent, a).anon_vma().unwrap(), vma_at(&child, a).anon_vma().unwrap());
    assert!(!pa.chain_inherited);
    assert!(ca.chain_inherited);
    assert_ne!(pa.id, ca.id);
    // An unwritten private mapping has none in either.
    let b = anon(&mut parent, 0, P, PROT_READ);
    let child = parent.fork();
    assert_eq!(vma_at(&child, b).anon_vma(), None);
}

#[test]
fn k03_nested_forks_are_independent() {
    let mut p = space();
    let a = anon(&mut p, BASE, 2 * P, RW);
    p.write_fault(a).unwrap();
    let mut c = p.fork();
    let mut g = c.fork();
    g.sys_munmap(a, P).unwrap();
    assert_eq!(count_in(&c, a, a + 2 * P), 1);
    assert_eq!(vma_at(&c, a).len(), 2 * P);
    assert_eq!(count_in(&g, a, a + P), 0);
    c.sys_mprotect(a, P, PROT_READ).unwrap();
    assert_eq!(count_in(&p, a, a + 2 * P), 1);
    check(&p);
    check(&c);
    check(&g);
}

#[test]
fn k07_child_mmaps() {
    let mut parent = space();
    anon(&mut parent, BASE, P, RW);
    let mut child = parent.fork();
    assert!(mmap(&mut child, 0, P, RW, ANON).is_ok());
    assert_eq!(child.map_count(), 2);
    assert_eq!(parent.map_count(), 1);
    assert_eq!(child.stats().mmap_calls, 1);
}

#[test]
fn k_locks_not_inherited() {
    let mut parent = space();
    let a = mmap(&mut parent, 0, 2 * P, RW, ANON | MAP_LOCKED).unwrap();
    assert_eq!(parent.locked_vm(), 2);
    let child = parent.fork();
    assert!(!vma_at(&child, a).flags.intersects(VmFlags::LOCKED | VmFlags::LOCKONFAULT));
    assert_eq!(child.locked_vm(), 0);
    assert_eq!(parent.locked_vm(), 2);
    check(&child);
}

#[test]
fn k_wipeonfork_kept_without_anon_vma() {
    let mut parent = space();
    let a = mmap(&mut parent, 0, P, RW, MAP_DROPPABLE | MAP_ANONYMOUS).unwrap();
    parent.write_fault(a).unwrap();
    assert!(vma_at(&parent, a).anon_vma().is_some());
    let child = parent.fork();
    let v = vma_at(&child, a);
    assert!(v.flags.contains(VmFlags::WIPEONFORK));
    assert_eq!(v.anon_vma(), None);
}

#[test]
fn k_child_keeps_brk_and_counters() {
    let mut parent = space();
    parent.set_brk_base(0x5555_0000_0000, 0x5555_0000_0000);
    parent.sys_brk(0x5555_0000_3000);
    anon(&mut parent, BASE, 3 * P, RW);
    let child = parent.fork();
    assert_eq!(child.brk_range(), parent.brk_range());
    assert_eq!(child.total_vm(), parent.total_vm());
    assert_eq!(child.data_vm(), parent.data_vm());
    assert_eq!(child.stats().mapped_bytes, parent.stats().mapped_bytes);
    check(&child);
}

#[test]
fn k_fork_clears_locks_without_merging_neighbours() {
    // [V] the child keeps the formerly locked VMA separate from its now identical neighbour.
    let mut parent = space();
    mmap(&mut parent, BASE, 2 * P, PROT_READ, ANON | MAP_FIXED | MAP_LOCKED).unwrap();
    anon(&mut parent, BASE + 2 * P, 2 * P, PROT_READ);
    let mut child = parent.fork();
    assert_eq!(count_in(&child, BASE, BASE + 4 * P), 2);
    assert_eq!(child.sys_mprotect(BASE, 4 * P, PROT_READ), Ok(0));
    assert_eq!(count_in(&child, BASE, BASE + 4 * P), 2);
    child.sys_mprotect(BASE, P, RW).unwrap();
    child.sys_mprotect(BASE, P, PROT_READ).unwrap();
    assert_eq!(
        layout(&child),
        vec![
            (BASE, BASE + 2 * P, "r--p".to_string()),
            (BASE + 2 * P, BASE + 4 * P, "r--p".to_string())
        ]
    );
    child.check_invariants(false);
}

#[test]
fn fork_copies_guard_markers_except_wipeonfork() {
    for flags in [ANON, SHANON] {
        let mut parent = space();
        let p = mmap(&mut parent, BASE, 8 * P, RW, flags | MAP_FIXED).unwrap();
        assert_eq!(parent.sys_madvise(p + 2 * P, 2 * P, 102), Ok(0));
        let mut child = parent.fork();
        assert_eq!(fault_map(&mut child, p, 8), "..GG....");
        // MADV_WIPEONFORK (private only) on page 2: its page tables are not copied.
        let wipe = parent.sys_madvise(p + 2 * P, P, 18);
        let mut child = parent.fork();
        if flags == ANON {
            assert_eq!(wipe, Ok(0));
            assert_eq!(fault_map(&mut child, p, 8), "...G....");
        } else {
            assert_eq!(fault_map(&mut child, p, 8), "..GG....");
        }
        // MADV_DONTFORK: nothing copied at all.
        assert_eq!(parent.sys_madvise(p, 8 * P, 10), Ok(0));
        let mut child = parent.fork();
        assert_eq!(fault_map(&mut child, p, 8), "--------");
        child.check_invariants(false);
    }
}
