//! Unit tests of the VMA index: directed cases; the randomized model comparison lives in
//! `tests/index_props.rs`.

use super::*;
use crate::vma::Backing;
use alloc::vec::Vec;

const PG: u64 = 4096;
const GUARD: u64 = 256 * PG;

fn vma(start: u64, end: u64) -> Vma {
    Vma {
        start,
        end,
        flags: VmFlags::READ,
        pgoff: start / PG,
        backing: Backing::Anonymous,
        anon_vma: Default::default(),
        name: None,
    }
}

fn req(length: u64, low: u64, high: u64) -> GapRequest {
    GapRequest {
        length,
        low_limit: low,
        high_limit: high,
        align_mask: 0,
        align_offset: 0,
        start_gap: 0,
    }
}

/// `n` one-page VMAs with one free page between neighbours, from `base`.
fn spaced(n: u64, base: u64) -> VmaIndex {
    let mut ix = VmaIndex::new(GUARD);
    for i in 0..n {
        let s = base + i * 2 * PG;
        ix.insert(vma(s, s + PG)).unwrap();
    }
    ix.check_invariants();
    ix
}

#[test]
fn empty_index() {
    let ix = VmaIndex::new(GUARD);
    assert!(ix.is_empty());
    assert!(ix.find(0).is_none());
    assert!(ix.find_next(0).is_none());
    assert!(ix.find_prev(u64::MAX).is_none());
    assert!(ix.next_of(u64::MAX).is_none());
    assert_eq!(ix.iter().count(), 0);
    assert_eq!(ix.unmapped_area(&req(PG, 0x10000, 0x20000)), Some(0x10000));
    assert_eq!(ix.unmapped_area_topdown(&req(PG, 0x10000, 0x20000)), Some(0x1f000));
    ix.check_invariants();
}

#[test]
fn lookups_across_levels() {
    let n = 5000;
    let ix = spaced(n, 0x10000);
    assert!(ix.height >= 2, "test must exercise internal levels");
    for i in 0..n {
        let s = 0x10000 + i * 2 * PG;
        assert_eq!(ix.find(s).unwrap().start, s);
        assert_eq!(ix.find(s + PG - 1).unwrap().start, s);
        assert!(ix.find(s + PG).is_none());
        assert_eq!(ix.find_next(s + PG).map(|v| v.start), (i + 1 < n).then_some(s + 2 * PG));
        assert_eq!(ix.find_prev(s).map(|v| v.start), (i > 0).then(|| s - 2 * PG));
        assert_eq!(ix.next_of(s).map(|v| v.start), (i + 1 < n).then_some(s + 2 * PG));
        assert_eq!(ix.prev_of(s).map(|v| v.start), (i > 0).then(|| s - 2 * PG));
    }
    let o: Vec<u64> =
        ix.overlapping(0x10000 + PG / 2, 0x10000 + 6 * PG + 1).map(|v| v.start).collect();
    assert_eq!(o, [0x10000, 0x12000, 0x14000, 0x16000]);
    assert_eq!(ix.iter().next_back().unwrap().start, 0x10000 + (n - 1) * 2 * PG);
}

#[test]
fn insert_refuses_overlap_and_empty() {
    let mut ix = spaced(10, 0x10000);
    assert_eq!(ix.insert(vma(0x10000, 0x11000)), Err(Overlap));
    assert_eq!(ix.insert(vma(0xf000, 0x10001)), Err(Overlap));
    assert_eq!(ix.insert(vma(0x11000, 0x11000)), Err(Overlap));
    assert_eq!(ix.insert(vma(0x12000, 0x11000)), Err(Overlap));
    assert_eq!(ix.insert(vma(0x11000, 0x12000)), Ok(()));
    ix.check_invariants();
}

#[test]
fn remove_everything_in_odd_orders() {
    let n = 3000;
    let mut ix = spaced(n, 0);
    // Remove every third, then the rest from the top down.
    for i in (0..n).step_by(3) {
        assert_eq!(ix.remove(i * 2 * PG).unwrap().start, i * 2 * PG);
    }
    ix.check_invariants();
    for i in (0..n).rev() {
        let got = ix.remove(i * 2 * PG);
        assert_eq!(got.is_some(), i % 3 != 0);
    }
    ix.check_invariants();
    assert!(ix.is_empty());
    assert_eq!(ix.height, 0);
    assert!(ix.remove(0).is_none());
}

#[test]
fn split_and_set_range() {
    let mut ix = VmaIndex::new(GUARD);
    ix.insert(vma(0x10000, 0x20000)).unwrap();
    assert_eq!(ix.split(0x10000, 0x10000), Err(Overlap));
    assert_eq!(ix.split(0x10000, 0x20000), Err(Overlap));
    ix.split(0x10000, 0x14000).unwrap();
    assert_eq!(ix.find(0x14000).unwrap().pgoff, 0x14);
    assert_eq!(ix.find(0x13fff).unwrap().end, 0x14000);
    assert_eq!(ix.len(), 2);
    // Grow the lower part into the upper one: refused.
    assert_eq!(ix.set_range(0x10000, 0x10000, 0x15000), Err(Overlap));
    // Move the upper part past free space (re-sorting).
    ix.set_range(0x14000, 0x30000, 0x31000).unwrap();
    ix.set_range(0x10000, 0x40000, 0x41000).unwrap();
    let all: Vec<(u64, u64)> = ix.iter().map(|v| (v.start, v.end)).collect();
    assert_eq!(all, [(0x30000, 0x31000), (0x40000, 0x41000)]);
    assert_eq!(ix.mapped_bytes(), 0x2000);
    assert_eq!(ix.set_range(0x30000, 0x3f000, 0x40001), Err(Overlap));
    assert_eq!(ix.set_range(0x30000, 0x31000, 0x31000), Err(Overlap));
    ix.check_invariants();
}

#[test]
fn gap_search_picks_lowest_and_highest() {
    // VMAs at [0x10000,0x11000) [0x13000,0x14000) [0x20000,0x21000): gaps 2 pages and 12.
    let mut ix = VmaIndex::new(GUARD);
    for (s, e) in [(0x10000, 0x11000), (0x13000, 0x14000), (0x20000, 0x21000)] {
        ix.insert(vma(s, e)).unwrap();
    }
    assert_eq!(ix.unmapped_area(&req(2 * PG, 0x10000, 0x100000)), Some(0x11000));
    assert_eq!(ix.unmapped_area(&req(3 * PG, 0x10000, 0x100000)), Some(0x14000));
    assert_eq!(ix.unmapped_area_topdown(&req(2 * PG, 0, 0x20000)), Some(0x1e000));
    assert_eq!(ix.unmapped_area_topdown(&req(2 * PG, 0, 0x13000)), Some(0x11000));
    // Too small a window.
    assert_eq!(ix.unmapped_area(&req(3 * PG, 0x11000, 0x13000)), None);
    // Alignment: 64 KiB aligned, worst-case overhead included in the search length as Linux
    // does, so a 64 KiB-aligned page is found only in a gap of 17 pages.
    let aligned = GapRequest { align_mask: 0xffff & !0xfff, ..req(PG, 0x10000, 0x100000) };
    assert_eq!(ix.unmapped_area(&aligned), Some(0x30000));
    assert_eq!(ix.unmapped_area_topdown(&aligned), Some(0xf0000));
}

#[test]
fn growsdown_guard_gap_retry() {
    let mut ix = VmaIndex::new(GUARD);
    let stack_lo = 0x1000_0000;
    ix.insert(vma(stack_lo, stack_lo + 0x10000)).unwrap();
    ix.get_mut(stack_lo).unwrap().flags |= VmFlags::GROWSDOWN;
    // Top-down below the stack: the result ends at vm_start_gap(stack).
    let r = req(PG, 0, stack_lo);
    assert_eq!(ix.unmapped_area_topdown(&r), Some(stack_lo - GUARD - PG));
    // Bottom-up in a window ending just above the stack's guard gap: must skip past it.
    let r = req(PG, stack_lo - GUARD, 0x2000_0000);
    assert_eq!(ix.unmapped_area(&r), Some(stack_lo + 0x10000));
    // Clearing VM_GROWSDOWN through get_mut is seen at once.
    ix.get_mut(stack_lo).unwrap().flags -= VmFlags::GROWSDOWN;
    assert_eq!(ix.unmapped_area(&r), Some(stack_lo - GUARD));
    assert_eq!(ix.unmapped_area_topdown(&req(PG, 0, stack_lo)), Some(stack_lo - PG));
}

#[test]
fn hostile_requests_never_panic() {
    let ix = spaced(100, 0x10000);
    let vals = [0, 1, PG - 1, PG, 0x10000, u64::MAX / 2, u64::MAX - PG, u64::MAX - 1, u64::MAX];
    for &length in &vals {
        for &low in &vals {
            for &high in &vals {
                for &mask in &[0, PG - 1, u64::MAX] {
                    for &sg in &[0, PG, u64::MAX] {
                        let r = GapRequest {
                            length,
                            low_limit: low,
                            high_limit: high,
                            align_mask: mask,
                            align_offset: low,
                            start_gap: sg,
                        };
                        let _ = ix.unmapped_area(&r);
                        let _ = ix.unmapped_area_topdown(&r);
                    }
                }
            }
        }
    }
    assert_eq!(ix.unmapped_area(&req(PG, 0x20000, 0x10000)), None);
    assert_eq!(ix.unmapped_area(&req(0, 0, u64::MAX)), None);
}

#[test]
fn extreme_addresses_never_panic() {
    let mut ix = VmaIndex::new(u64::MAX);
    let top = !(PG - 1);
    ix.insert(vma(top - PG, u64::MAX)).unwrap();
    ix.insert(vma(0, PG)).unwrap();
    ix.get_mut(0).unwrap().flags |= VmFlags::GROWSDOWN;
    ix.get_mut(top - PG).unwrap().flags |= VmFlags::GROWSDOWN;
    for a in [0, 1, PG, top - PG, top, u64::MAX - 1, u64::MAX] {
        let _ = (ix.find(a), ix.find_next(a), ix.find_prev(a), ix.next_of(a), ix.prev_of(a));
        let _ = ix.overlapping(a, u64::MAX).count();
        let _ = ix.overlapping(u64::MAX, a).count();
        assert!(ix.split(a, u64::MAX).is_err() || a == top - PG);
    }
    assert_eq!(ix.find(u64::MAX), None);
    assert_eq!(ix.find(u64::MAX - 1).map(|v| v.start), Some(top - PG));
    assert_eq!(ix.next_of(u64::MAX), None);
    assert_eq!(ix.set_range(0, u64::MAX - 1, u64::MAX), Err(Overlap));
    assert_eq!(ix.set_range(0, 2 * PG, u64::MAX), Err(Overlap));
    ix.set_range(0, PG, 2 * PG).unwrap();
    // A guard gap as large as the address space: every gap lies below a VM_GROWSDOWN VMA
    // whose vm_start_gap() clamps to 0, so Linux's retries run out of room.
    let r = req(PG, 0, u64::MAX);
    assert_eq!(ix.unmapped_area(&r), None);
    assert_eq!(ix.unmapped_area_topdown(&r), None);
    ix.get_mut(PG).unwrap().flags -= VmFlags::GROWSDOWN;
    ix.get_mut(top - PG).unwrap().flags -= VmFlags::GROWSDOWN;
    assert_eq!(ix.unmapped_area(&r), Some(0));
    assert_eq!(ix.unmapped_area_topdown(&r), Some(top - 2 * PG));
    ix.check_invariants();
}

/// The remembered path of the last update (`locate`) across the structural changes that
/// must drop it: a dense run of splits and inserts in one spot (leaf and internal splits,
/// root growth), then removals there in several orders (borrows, merges, root shrinks),
/// each step checked against a plain list and the tree's self-check.
#[test]
fn remembered_path_survives_local_churn() {
    for order in 0..3u64 {
        let mut ix = spaced(3000, 0);
        let mut model: Vec<(u64, u64)> = ix.iter().map(|v| (v.start, v.end)).collect();
        let check = |ix: &VmaIndex, model: &Vec<(u64, u64)>| {
            ix.check_invariants();
            assert!(ix.iter().map(|v| (v.start, v.end)).eq(model.iter().copied()));
        };
        // Carve one big VMA out of a hole made at the middle, then split it page by page.
        let base = 3000 * PG;
        for s in (base..base + 400 * 2 * PG).step_by(2 * PG as usize) {
            assert!(ix.remove(s).is_some());
            model.retain(|&(a, _)| a != s);
        }
        ix.insert(vma(base, base + 800 * PG)).unwrap();
        model.push((base, base + 800 * PG));
        model.sort();
        check(&ix, &model);
        for k in 1..800 {
            let at = base + k * PG;
            let start = at - PG;
            ix.split(start, at).unwrap();
            let pos = model.iter().position(|&(a, _)| a == start).unwrap();
            model[pos].1 = at;
            model.insert(pos + 1, (at, base + 800 * PG));
            assert_eq!(ix.find(at).map(|v| v.start), Some(at));
            assert_eq!(ix.find(start).map(|v| (v.start, v.end)), Some((start, at)));
            if k % 37 == 0 {
                check(&ix, &model);
            }
        }
        check(&ix, &model);
        let mut pages: Vec<u64> = (0..800).collect();
        match order {
            0 => {}
            1 => pages.reverse(),
            _ => pages.sort_by_key(|p| (p % 7, *p)),
        }
        for (k, p) in pages.iter().enumerate() {
            let s = base + p * PG;
            assert_eq!(ix.remove(s).map(|v| v.start), Some(s));
            assert!(ix.remove(s).is_none());
            model.retain(|&(a, _)| a != s);
            assert!(ix.find(s).is_none());
            // Re-insert there through the remembered leaf (insert's overlap check), grow or
            // shrink it in place, and remove it again.
            let free_above = !model.iter().any(|&(a, b)| a < s + 2 * PG && b > s + PG);
            assert_eq!(ix.insert(vma(s, s + 2 * PG)).is_ok(), free_above);
            if free_above {
                ix.set_range(s, s, s + PG).unwrap();
            } else {
                ix.insert(vma(s, s + PG)).unwrap();
            }
            assert_eq!(ix.find(s).map(|v| v.end), Some(s + PG));
            assert!(ix.remove(s).is_some());
            if k % 41 == 0 {
                check(&ix, &model);
            }
        }
        check(&ix, &model);
    }
}
