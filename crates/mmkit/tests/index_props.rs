//! Property tests of `VmaIndex` against a naive sorted-`Vec<Vma>` model: random
//! insert/remove/split/set_range/flag changes (VM_GROWSDOWN toggles included) interleaved with
//! every query, gap searches bottom-up and top-down with random limits, alignments, start
//! gaps and stack guard gaps, and the tree's structural self-check after every step. Sizes
//! run into thousands of VMAs so that several tree levels are split, merged and rebalanced.
//!
//! The model's gap search is Linux's `unmapped_area()` / `unmapped_area_topdown()` (mm/vma.c)
//! transcribed over an explicit list of free ranges — the maple tree's `mas_empty_area()` /
//! `mas_empty_area_rev()` reduced to their definition: the lowest (highest) free range whose
//! part inside `[low_limit, high_limit - 1]` holds the search length.

use mmkit::vma::index::{GapRequest, VmaIndex};
use mmkit::vma::{Backing, VmFlags, Vma};
use proptest::prelude::*;

const PG: u64 = 4096;

fn mk(start: u64, end: u64, growsdown: bool) -> Vma {
    let mut flags = VmFlags::READ | VmFlags::MAYREAD;
    if growsdown {
        flags |= VmFlags::GROWSDOWN;
    }
    Vma {
        start,
        end,
        flags,
        pgoff: start / PG,
        backing: Backing::Anonymous,
        anon_vma: Default::default(),
        name: None,
    }
}

/// The naive model: VMAs sorted by start.
#[derive(Clone, Debug, Default)]
struct Model {
    v: Vec<Vma>,
    guard: u64,
}

impl Model {
    fn pos(&self, start: u64) -> Option<usize> {
        self.v.iter().position(|x| x.start == start)
    }
    fn find(&self, a: u64) -> Option<&Vma> {
        self.v.iter().find(|x| x.start <= a && a < x.end)
    }
    fn find_next(&self, a: u64) -> Option<&Vma> {
        self.v.iter().find(|x| x.end > a)
    }
    fn find_prev(&self, a: u64) -> Option<&Vma> {
        self.v.iter().rev().find(|x| x.start < a)
    }
    fn next_of(&self, s: u64) -> Option<&Vma> {
        self.v.iter().find(|x| x.start > s)
    }
    fn overlapping(&self, s: u64, e: u64) -> Vec<Vma> {
        self.v.iter().filter(|x| x.start < e && x.end > s).cloned().collect()
    }
    fn overlaps_any(&self, s: u64, e: u64, except: Option<u64>) -> bool {
        self.v.iter().any(|x| Some(x.start) != except && x.start < e && x.end > s)
    }
    fn insert(&mut self, vma: Vma) -> bool {
        if vma.start >= vma.end || self.overlaps_any(vma.start, vma.end, None) {
            return false;
        }
        let i = self.v.partition_point(|x| x.start < vma.start);
        self.v.insert(i, vma);
        true
    }
    /// Free ranges `[gs, ge]` (inclusive) covering `[0, u64::MAX]` minus the VMAs.
    fn gaps(&self) -> Vec<(u64, u64)> {
        let mut out = Vec::new();
        let mut cur = 0u64;
        for x in &self.v {
            if x.start > cur {
                out.push((cur, x.start - 1));
            }
            cur = x.end;
        }
        // A VMA ending at u64::MAX leaves the single byte u64::MAX free.
        out.push((cur, u64::MAX));
        out
    }
    fn vma_at(&self, a: u64) -> Option<&Vma> {
        self.find(a)
    }
}

fn fits(g: (u64, u64), lo: u64, hi: u64, size: u64) -> bool {
    let a = g.0.max(lo);
    let b = g.1.min(hi);
    a <= b && (b - a) as u128 + 1 >= size as u128
}

/// Linux's `unmapped_area()` over the model (see the module comment).
fn model_unmapped_area(m: &Model, r: &GapRequest) -> Option<u64> {
    let length = r.length.checked_add(r.align_mask)?.checked_add(r.start_gap)?;
    let mut low = r.low_limit;
    let gaps = m.gaps();
    loop {
        let max = r.high_limit.checked_sub(1)?;
        if length == 0 || low > max || max - low < length - 1 {
            return None;
        }
        let &(gs, ge) = gaps.iter().find(|&&g| fits(g, low, max, length))?;
        let addr = gs.max(low);
        let mut gap = addr.wrapping_add(r.start_gap);
        gap = gap.wrapping_add(r.align_offset.wrapping_sub(gap) & r.align_mask);
        let next = if ge == u64::MAX { None } else { m.vma_at(ge + 1) };
        match next {
            Some(t) if t.flags.contains(VmFlags::GROWSDOWN) => {
                if t.start_gap(m.guard) < gap.wrapping_add(length).wrapping_sub(1) {
                    if t.end <= low {
                        return None;
                    }
                    low = t.end;
                    continue;
                }
            }
            _ => {
                if let Some(p) = if gs == 0 { None } else { m.vma_at(gs - 1) } {
                    if p.end > gap {
                        if p.end <= low {
                            return None;
                        }
                        low = p.end;
                        continue;
                    }
                }
            }
        }
        return Some(gap);
    }
}

/// Linux's `unmapped_area_topdown()` over the model.
fn model_unmapped_area_topdown(m: &Model, r: &GapRequest) -> Option<u64> {
    let length = r.length.checked_add(r.align_mask)?.checked_add(r.start_gap)?;
    let mut high = r.high_limit;
    let low = r.low_limit;
    let gaps = m.gaps();
    loop {
        let max = high.checked_sub(1)?;
        if length == 0 || low > max || max - low < length - 1 {
            return None;
        }
        let &(gs, ge) = gaps.iter().rev().find(|&&g| fits(g, low, max, length))?;
        let gap_end = ge.min(max) + 1;
        let mut gap = gap_end.wrapping_sub(r.length);
        gap = gap.wrapping_sub(gap.wrapping_sub(r.align_offset) & r.align_mask);
        let next = if ge == u64::MAX { None } else { m.vma_at(ge + 1) };
        match next {
            Some(t) if t.flags.contains(VmFlags::GROWSDOWN) => {
                let sg = t.start_gap(m.guard);
                if sg < gap_end {
                    high = sg;
                    continue;
                }
            }
            _ => {
                if let Some(p) = if gs == 0 { None } else { m.vma_at(gs - 1) } {
                    if p.end > gap {
                        high = p.start;
                        continue;
                    }
                }
            }
        }
        return Some(gap);
    }
}

/// What any answer of a gap search must satisfy, independently of the model: inside the
/// limits, aligned, free (with `start_gap` below it), and clear of the guard gap of a
/// VM_GROWSDOWN VMA above it.
fn check_answer(m: &Model, r: &GapRequest, a: u64) {
    let end = a.checked_add(r.length).expect("result wraps");
    assert!(a >= r.low_limit && end <= r.high_limit, "{a:#x} outside limits {r:?}");
    assert_eq!(a.wrapping_sub(r.align_offset) & r.align_mask, 0, "misaligned {a:#x} {r:?}");
    let lo = a - r.start_gap;
    assert!(!m.overlaps_any(lo, end, None), "{a:#x} not free for {r:?}");
    if let Some(t) = m.find_next(a) {
        if t.flags.contains(VmFlags::GROWSDOWN) {
            assert!(end <= t.start_gap(m.guard), "{a:#x} inside guard gap of {t:?}");
        }
    }
}

#[derive(Clone, Debug)]
enum Op {
    Insert { page: u64, pages: u64, growsdown: bool },
    Remove { pick: usize },
    RemoveAddr { page: u64 },
    Split { pick: usize, frac: u64 },
    SetRange { pick: usize, dstart: i64, pages: u64 },
    Flags { pick: usize, growsdown: bool, other: bool },
    Query { page: u64, off: u64, span: u64 },
    Gap { req: GapRequest },
}

const UNIVERSE: u64 = 1 << 14; // pages

fn gap_req() -> impl Strategy<Value = GapRequest> {
    let limit = prop_oneof![
        8 => (0..UNIVERSE + 64).prop_map(|p| p * PG),
        1 => Just(0u64),
        1 => Just(u64::MAX),
        1 => any::<u64>(),
    ];
    let length = prop_oneof![
        8 => (1u64..48).prop_map(|p| p * PG),
        1 => Just(0u64),
        1 => any::<u64>(),
    ];
    let mask = prop_oneof![
        4 => Just(0u64),
        2 => (1u32..6).prop_map(|k| ((1u64 << (12 + k)) - 1) & !(PG - 1)),
        1 => any::<u64>(),
    ];
    let start_gap = prop_oneof![4 => Just(0u64), 2 => Just(PG), 1 => any::<u64>()];
    (length, limit.clone(), limit, mask, (0u64..64).prop_map(|p| p * PG), start_gap).prop_map(
        |(length, low_limit, high_limit, align_mask, align_offset, start_gap)| GapRequest {
            length,
            low_limit,
            high_limit,
            align_mask,
            align_offset,
            start_gap,
        },
    )
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => (0..UNIVERSE, 1u64..12, prop::bool::weighted(0.2))
            .prop_map(|(page, pages, growsdown)| Op::Insert { page, pages, growsdown }),
        2 => any::<usize>().prop_map(|pick| Op::Remove { pick }),
        1 => (0..UNIVERSE).prop_map(|page| Op::RemoveAddr { page }),
        2 => (any::<usize>(), 0u64..16).prop_map(|(pick, frac)| Op::Split { pick, frac }),
        2 => (any::<usize>(), -20i64..20, 1u64..16)
            .prop_map(|(pick, dstart, pages)| Op::SetRange { pick, dstart, pages }),
        2 => (any::<usize>(), any::<bool>(), any::<bool>())
            .prop_map(|(pick, growsdown, other)| Op::Flags { pick, growsdown, other }),
        3 => (0..UNIVERSE + 16, 0..PG, 0u64..64)
            .prop_map(|(page, off, span)| Op::Query { page, off, span }),
        4 => gap_req().prop_map(|req| Op::Gap { req }),
    ]
}

fn pick_start(m: &Model, pick: usize) -> Option<u64> {
    (!m.v.is_empty()).then(|| m.v[pick % m.v.len()].start)
}

fn apply(ix: &mut VmaIndex, m: &mut Model, op: &Op) {
    match *op {
        Op::Insert { page, pages, growsdown } => {
            let v = mk(page * PG, (page + pages) * PG, growsdown);
            let ok = m.insert(v.clone());
            assert_eq!(ix.insert(v).is_ok(), ok);
        }
        Op::Remove { pick } => {
            if let Some(s) = pick_start(m, pick) {
                let i = m.pos(s).unwrap();
                let want = m.v.remove(i);
                assert_eq!(ix.remove(s), Some(want));
            }
        }
        Op::RemoveAddr { page } => {
            let s = page * PG;
            let want = m.pos(s).map(|i| m.v.remove(i));
            assert_eq!(ix.remove(s), want);
        }
        Op::Split { pick, frac } => {
            if let Some(s) = pick_start(m, pick) {
                let i = m.pos(s).unwrap();
                let pages = (m.v[i].end - s) / PG;
                let at = s + (frac % (pages + 1)) * PG;
                let ok = s < at && at < m.v[i].end;
                if ok {
                    let mut upper = m.v[i].clone();
                    upper.pgoff = m.v[i].pgoff_at(at);
                    upper.start = at;
                    m.v[i].end = at;
                    m.v.insert(i + 1, upper);
                }
                assert_eq!(ix.split(s, at).is_ok(), ok);
            }
        }
        Op::SetRange { pick, dstart, pages } => {
            if let Some(s) = pick_start(m, pick) {
                let ns = (s as i64 + dstart * PG as i64).max(0) as u64;
                let ne = ns + pages * PG;
                let ok = !m.overlaps_any(ns, ne, Some(s));
                if ok {
                    let i = m.pos(s).unwrap();
                    let mut v = m.v.remove(i);
                    v.start = ns;
                    v.end = ne;
                    m.insert(v);
                }
                assert_eq!(ix.set_range(s, ns, ne).is_ok(), ok);
            }
        }
        Op::Flags { pick, growsdown, other } => {
            if let Some(s) = pick_start(m, pick) {
                let i = m.pos(s).unwrap();
                let v = ix.get_mut(s).expect("get_mut of a present VMA");
                v.flags.set(VmFlags::GROWSDOWN, growsdown);
                v.flags.set(VmFlags::WRITE, other);
                v.pgoff ^= 1;
                m.v[i].flags.set(VmFlags::GROWSDOWN, growsdown);
                m.v[i].flags.set(VmFlags::WRITE, other);
                m.v[i].pgoff ^= 1;
            }
        }
        Op::Query { page, off, span } => {
            let a = page * PG + off;
            assert_eq!(ix.find(a), m.find(a));
            assert_eq!(ix.find_next(a), m.find_next(a));
            assert_eq!(ix.find_prev(a), m.find_prev(a));
            assert_eq!(ix.prev_of(a), m.find_prev(a));
            assert_eq!(ix.next_of(a), m.next_of(a));
            let e = a + span * PG;
            let got: Vec<Vma> = ix.overlapping(a, e).cloned().collect();
            assert_eq!(got, m.overlapping(a, e));
            if let Some(s) = pick_start(m, page as usize) {
                assert_eq!(ix.next_of(s), m.next_of(s));
                assert_eq!(ix.prev_of(s), m.find_prev(s));
                assert_eq!(ix.get_mut(s).cloned().as_ref(), m.find(s));
            }
        }
        Op::Gap { ref req } => {
            let up = ix.unmapped_area(req);
            assert_eq!(up, model_unmapped_area(m, req), "bottom-up {req:?}");
            let down = ix.unmapped_area_topdown(req);
            assert_eq!(down, model_unmapped_area_topdown(m, req), "top-down {req:?}");
            // What Linux's callers guarantee: page-aligned values, a mask of contiguous bits
            // above the page offset, no overflow.
            let aligned =
                [req.length, req.low_limit, req.high_limit, req.start_gap, req.align_offset]
                    .iter()
                    .all(|x| x % PG == 0);
            let mask = req.align_mask;
            let run = mask.checked_shr(mask.trailing_zeros()).unwrap_or(0);
            let contiguous = mask == 0 || run.wrapping_add(1) & run == 0;
            let sane = aligned
                && contiguous
                && mask % PG == 0
                && req.length > 0
                && req
                    .length
                    .checked_add(mask)
                    .and_then(|l| l.checked_add(req.start_gap))
                    .is_some()
                && req.high_limit > 0;
            if sane {
                for a in [up, down].into_iter().flatten() {
                    check_answer(m, req, a);
                }
            }
        }
    }
}

fn run(initial: &[(u64, u64, bool)], guard_pages: u64, ops: &[Op], check_every: usize) {
    let guard = guard_pages * PG;
    let mut ix = VmaIndex::new(guard);
    let mut m = Model { v: Vec::new(), guard };
    let mut page = 0;
    for &(skip, pages, gd) in initial {
        page += skip;
        let v = mk(page * PG, (page + pages) * PG, gd);
        page += pages;
        assert!(m.insert(v.clone()));
        ix.insert(v).unwrap();
    }
    ix.check_invariants();
    for (k, op) in ops.iter().enumerate() {
        apply(&mut ix, &mut m, op);
        if k % check_every == 0 {
            ix.check_invariants();
        }
        assert_eq!(ix.len(), m.v.len());
    }
    ix.check_invariants();
    assert!(ix.iter().eq(m.v.iter()));
    assert!(ix.iter().rev().eq(m.v.iter().rev()));
    assert_eq!(ix.mapped_bytes(), m.v.iter().map(|v| v.end - v.start).sum::<u64>());
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]

    /// Small spaces: many collisions, every path of insert/remove/split/set_range.
    #[test]
    fn small_spaces_match_model(
        guard in prop_oneof![Just(0u64), Just(1), Just(16), Just(256)],
        ops in prop::collection::vec(op(), 1..300),
    ) {
        run(&[], guard, &ops, 1);
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    /// Thousands of VMAs (three or more tree levels), then random changes and queries.
    #[test]
    fn large_spaces_match_model(
        guard in prop_oneof![Just(0u64), Just(16), Just(256)],
        initial in prop::collection::vec((0u64..4, 1u64..3, prop::bool::weighted(0.05)), 1000..4000),
        ops in prop::collection::vec(op(), 1..400),
    ) {
        run(&initial, guard, &ops, 37);
    }
}

/// Shrinking to nothing from thousands of VMAs, removing in a scattered order, exercises
/// every merge/borrow case of the rebalancing.
#[test]
fn drain_large_index() {
    let n = 6000u64;
    let mut ix = VmaIndex::new(0);
    for i in 0..n {
        ix.insert(mk(i * 3 * PG, (i * 3 + 1 + i % 2) * PG, false)).unwrap();
    }
    ix.check_invariants();
    let mut order: Vec<u64> = (0..n).collect();
    let mut x = 12345u64;
    for i in (1..order.len()).rev() {
        x = x.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        order.swap(i, (x >> 33) as usize % (i + 1));
    }
    for (k, i) in order.iter().enumerate() {
        assert_eq!(ix.remove(i * 3 * PG).map(|v| v.start), Some(i * 3 * PG));
        if k % 500 == 0 {
            ix.check_invariants();
        }
    }
    ix.check_invariants();
    assert!(ix.is_empty());
}

/// Moves an operation's addresses and picks into a narrow window around page `center`, so
/// that consecutive updates hit the same or neighbouring leaves — the case the index's
/// remembered path (`locate`) serves — while bursts of inserts and removals there split,
/// merge and rebalance those very leaves.
fn localize(op: &Op, m: &Model, center: u64) -> Op {
    let near = |page: u64| (center + page % 48).saturating_sub(24);
    let pick = |p: usize| {
        let i = m.v.partition_point(|v| v.start < center * PG);
        (i + p % 9).saturating_sub(4)
    };
    match *op {
        Op::Insert { page, pages, growsdown } => Op::Insert { page: near(page), pages, growsdown },
        Op::Remove { pick: p } => Op::Remove { pick: pick(p) },
        Op::RemoveAddr { page } => Op::RemoveAddr { page: near(page) },
        Op::Split { pick: p, frac } => Op::Split { pick: pick(p), frac },
        Op::SetRange { pick: p, dstart, pages } => Op::SetRange { pick: pick(p), dstart, pages },
        Op::Flags { pick: p, growsdown, other } => Op::Flags { pick: pick(p), growsdown, other },
        Op::Query { page, off, span } => Op::Query { page: near(page), off, span },
        Op::Gap { req } => Op::Gap { req },
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    /// Thousands of VMAs, then updates clustered around a slowly drifting address, with the
    /// structural self-check after every step: the remembered path must never give a stale
    /// answer after the splits, merges and root changes these cause.
    #[test]
    fn local_updates_match_model(
        guard in prop_oneof![Just(0u64), Just(16)],
        initial in prop::collection::vec((1u64..6, 1u64..3, prop::bool::weighted(0.05)), 1000..3000),
        ops in prop::collection::vec((op(), -8i64..9), 1..600),
        start in 0u64..4000,
    ) {
        let guard = guard * PG;
        let mut ix = VmaIndex::new(guard);
        let mut m = Model { v: Vec::new(), guard };
        let mut page = 0;
        for &(skip, pages, gd) in &initial {
            page += skip;
            let v = mk(page * PG, (page + pages) * PG, gd);
            page += pages;
            assert!(m.insert(v.clone()));
            ix.insert(v).unwrap();
        }
        let mut center = start;
        for (op, drift) in &ops {
            center = center.saturating_add_signed(*drift).min(UNIVERSE);
            let op = localize(op, &m, center);
            apply(&mut ix, &mut m, &op);
            ix.check_invariants();
            assert_eq!(ix.len(), m.v.len());
        }
        assert!(ix.iter().eq(m.v.iter()));
        assert_eq!(ix.mapped_bytes(), m.v.iter().map(|v| v.end - v.start).sum::<u64>());
    }
}
