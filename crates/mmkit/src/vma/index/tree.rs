//! The B+tree behind [`super::VmaIndex`]: wide nodes kept in an arena and addressed by index,
//! with each entry's key (`start`, `end`) stored apart from its payload.
//!
//! Every node, leaf or internal, has the same layout: parallel arrays `start[]`, `end[]`,
//! `gap[]` and `ptr[]`. In a leaf, entry `i` is one VMA (`ptr` is its slot in the payload slab,
//! `gap` is 0). In an internal node, entry `i` summarises child `ptr[i]`: the lowest start and
//! highest end below it and the largest free gap strictly between two of its VMAs. The gap
//! between two neighbouring children is not stored: it is `start[i] - end[i - 1]`, read
//! straight from the parent. So every summary depends only on its own subtree and a change
//! touches one root-to-leaf path — the same trick as the maple tree's per-slot `gaps[]`
//! (lib/maple_tree.c, `ma_gaps()` / `mas_update_gap()`).
//!
//! Gaps are raw (`next.start - prev.end`). The stack guard gap below VM_GROWSDOWN VMAs is not
//! folded in: Linux's maple tree does not do it either, and `unmapped_area()` corrects for it
//! afterwards with its retry loop. That keeps the summaries a function of the keys only, so
//! payload changes (flags included) never invalidate them.

use alloc::vec::Vec;

/// Entries per node. 16 × 8-byte keys = two cache lines per key array.
pub(super) const B: usize = 16;
/// A non-root node with fewer entries than this is rebalanced with a sibling.
pub(super) const MIN: usize = B / 4;
/// "No node" in the leaf chain.
pub(super) const NIL: u32 = u32::MAX;

/// One node. `repr(C)` keeps the layout a lookup reads in order: the starts it scans (two
/// cache lines), then the child/slot pointers it follows (the next line), then the rest;
/// `align(64)` makes those exactly three lines (unaligned, a 468-byte node's arrays would
/// straddle up to five), at the price of padding nodes to 512 bytes.
#[derive(Clone)]
#[repr(C, align(64))]
pub(super) struct Node {
    pub(super) start: [u64; B],
    pub(super) ptr: [u32; B],
    pub(super) end: [u64; B],
    pub(super) gap: [u64; B],
    /// [`Node::inner_gap`], kept up to date by every mutation (O(1) in the common case), so
    /// that a parent's summary of this node costs O(1) to refresh.
    pub(super) inner: u64,
    pub(super) len: u32,
    /// Leaf chain (leaves only).
    pub(super) prev: u32,
    pub(super) next: u32,
}

/// Number of keys `<= x` in a sorted array of `B` keys.
#[inline(always)]
fn count_le(keys: &[u64; B], x: u64) -> usize {
    let mut pos = 0;
    let mut step = B / 2;
    while step > 0 {
        pos += ((keys[pos + step - 1] <= x) as usize) * step;
        step /= 2;
    }
    pos + (keys[pos] <= x) as usize
}

/// Moves `a[i..n]` one slot up (`n < B`). An element loop over a fixed-size array: for these
/// short moves it is cheaper than the `memmove` call `copy_within` becomes.
#[inline(always)]
fn shift_right<T: Copy>(a: &mut [T; B], i: usize, n: usize) {
    let mut j = n;
    while j > i {
        a[j] = a[j - 1];
        j -= 1;
    }
}

/// Moves `a[i + 1..n]` one slot down and fills slot `n - 1` with `fill`.
#[inline(always)]
fn shift_left<T: Copy>(a: &mut [T; B], i: usize, n: usize, fill: T) {
    let mut j = i;
    while j + 1 < n {
        a[j] = a[j + 1];
        j += 1;
    }
    a[n - 1] = fill;
}

/// One entry as moved between nodes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Entry {
    pub(super) start: u64,
    pub(super) end: u64,
    pub(super) gap: u64,
    pub(super) ptr: u32,
}

impl Node {
    pub(super) fn empty() -> Node {
        Node {
            start: [u64::MAX; B],
            end: [u64::MAX; B],
            gap: [0; B],
            ptr: [NIL; B],
            inner: 0,
            len: 0,
            prev: NIL,
            next: NIL,
        }
    }

    #[inline]
    pub(super) fn n(&self) -> usize {
        self.len as usize
    }

    /// Number of entries whose start is `<= x`: a branch-free binary search over all `B`
    /// slots (unused slots hold `u64::MAX`, so the keys stay sorted), clamped for
    /// `x == u64::MAX`. Four halvings and a final probe, each a conditional move, so random
    /// lookups pay no branch mispredictions.
    #[inline]
    pub(super) fn count_start_le(&self, x: u64) -> usize {
        count_le(&self.start, x).min(self.n())
    }

    /// Number of entries whose start is `< x`.
    #[inline]
    pub(super) fn count_start_lt(&self, x: u64) -> usize {
        match x.checked_sub(1) {
            Some(y) => count_le(&self.start, y).min(self.n()),
            None => 0,
        }
    }

    /// Number of entries whose end is `<= x`.
    #[inline]
    pub(super) fn count_end_le(&self, x: u64) -> usize {
        count_le(&self.end, x).min(self.n())
    }

    #[inline]
    pub(super) fn entry(&self, i: usize) -> Entry {
        Entry { start: self.start[i], end: self.end[i], gap: self.gap[i], ptr: self.ptr[i] }
    }

    /// The free gap between entries `i - 1` and `i` (`1 <= i < n`).
    #[inline]
    fn between(&self, i: usize) -> u64 {
        self.start[i].saturating_sub(self.end[i - 1])
    }

    /// The largest of the gaps that entry `i` contributes to [`Node::inner`]: its own
    /// subtree's gap and the gaps to its neighbours in this node.
    #[inline]
    fn around(&self, i: usize) -> u64 {
        let n = self.n();
        let mut g = self.gap[i];
        if i > 0 {
            g = g.max(self.between(i));
        }
        if i + 1 < n {
            g = g.max(self.between(i + 1));
        }
        g
    }

    /// Updates the cached [`Node::inner`] after a change that removed gaps no larger than
    /// `removed` and added gaps no larger than `added`: O(1) unless the largest gap itself
    /// may have been removed, which needs a rescan (the maple tree's `mas_update_gap()`
    /// likewise rescans a node only when its maximum shrinks).
    #[inline]
    fn patch(&mut self, removed: u64, added: u64) {
        if added >= self.inner {
            // Everything left is at most the old maximum.
            self.inner = added;
        } else if removed >= self.inner {
            self.inner = self.inner_gap();
        }
    }

    /// Overwrites entry `i`.
    #[inline]
    pub(super) fn set(&mut self, i: usize, e: Entry) {
        let removed = self.around(i);
        self.start[i] = e.start;
        self.end[i] = e.end;
        self.gap[i] = e.gap;
        self.ptr[i] = e.ptr;
        let added = self.around(i);
        self.patch(removed, added);
    }

    /// Rewrites the keys of entry `i` (a leaf's VMA bounds), keeping the order.
    #[inline]
    pub(super) fn set_key(&mut self, i: usize, start: u64, end: u64) {
        let removed = self.around(i);
        self.start[i] = start;
        self.end[i] = end;
        let added = self.around(i);
        self.patch(removed, added);
    }

    /// Inserts `e` at `i`; the node must not be full.
    pub(super) fn insert(&mut self, i: usize, e: Entry) {
        let n = self.n();
        debug_assert!(n < B && i <= n);
        let removed = if i > 0 && i < n { self.between(i) } else { 0 };
        shift_right(&mut self.start, i, n);
        shift_right(&mut self.end, i, n);
        shift_right(&mut self.gap, i, n);
        shift_right(&mut self.ptr, i, n);
        self.start[i] = e.start;
        self.end[i] = e.end;
        self.gap[i] = e.gap;
        self.ptr[i] = e.ptr;
        self.len += 1;
        let added = self.around(i);
        self.patch(removed, added);
    }

    /// Removes and returns entry `i`.
    pub(super) fn remove(&mut self, i: usize) -> Entry {
        let n = self.n();
        let e = self.entry(i);
        let removed = self.around(i);
        shift_left(&mut self.start, i, n, u64::MAX);
        shift_left(&mut self.end, i, n, u64::MAX);
        shift_left(&mut self.gap, i, n, 0);
        shift_left(&mut self.ptr, i, n, NIL);
        self.len -= 1;
        let added = if i > 0 && i + 1 < n { self.between(i) } else { 0 };
        self.patch(removed, added);
        e
    }

    /// Largest gap strictly inside this node's range: the stored child gaps and the gaps
    /// between neighbouring entries.
    pub(super) fn inner_gap(&self) -> u64 {
        let n = self.n();
        let mut g = 0;
        for i in 0..n {
            g = g.max(self.gap[i]);
            if i > 0 {
                g = g.max(self.start[i].saturating_sub(self.end[i - 1]));
            }
        }
        g
    }

    /// This node as an entry of its parent (the node must not be empty).
    pub(super) fn summary(&self, me: u32) -> Entry {
        let n = self.n();
        Entry { start: self.start[0], end: self.end[n - 1], gap: self.inner, ptr: me }
    }
}

/// Arena of nodes with a free list.
#[derive(Clone, Default)]
pub(super) struct Arena {
    pub(super) nodes: Vec<Node>,
    free: Vec<u32>,
}

impl Arena {
    pub(super) fn alloc(&mut self) -> u32 {
        if let Some(i) = self.free.pop() {
            self.nodes[i as usize] = Node::empty();
            i
        } else {
            self.nodes.push(Node::empty());
            (self.nodes.len() - 1) as u32
        }
    }

    pub(super) fn free(&mut self, i: u32) {
        self.nodes[i as usize].len = 0;
        self.free.push(i);
    }

    #[inline]
    pub(super) fn get(&self, i: u32) -> &Node {
        &self.nodes[i as usize]
    }

    #[inline]
    pub(super) fn get_mut(&mut self, i: u32) -> &mut Node {
        &mut self.nodes[i as usize]
    }

    pub(super) fn live(&self) -> usize {
        self.nodes.len() - self.free.len()
    }

    /// Moves the upper half of node `i` into a new right sibling and returns it. Leaves are
    /// linked into the leaf chain.
    /// `mid` entries stay in the left node.
    pub(super) fn split(&mut self, i: u32, leaf: bool, mid: usize) -> u32 {
        let r = self.alloc();
        let mut moved = [Entry { start: 0, end: 0, gap: 0, ptr: 0 }; B];
        let mut k = 0;
        {
            let left = self.get_mut(i);
            while left.n() > mid {
                moved[k] = left.remove(mid);
                k += 1;
            }
        }
        let old_next = self.get(i).next;
        {
            let right = self.get_mut(r);
            for (j, e) in moved[..k].iter().enumerate() {
                right.insert(j, *e);
            }
            if leaf {
                right.prev = i;
                right.next = old_next;
            }
        }
        if leaf {
            self.get_mut(i).next = r;
            if old_next != NIL {
                self.get_mut(old_next).prev = r;
            }
        }
        r
    }

    /// Fixes child `i` of `parent` after it fell below [`MIN`] entries: merges it with a
    /// neighbour if both fit in one node, otherwise moves entries across so both are at least
    /// half full. Updates the parent's summaries of the children involved.
    pub(super) fn rebalance(&mut self, parent: u32, i: usize, leaf: bool) {
        let plen = self.get(parent).n();
        if plen < 2 {
            let c = self.get(parent).ptr[i];
            let s = self.get(c).summary(c);
            self.get_mut(parent).set(i, s);
            return;
        }
        let (li, ri) = if i + 1 < plen { (i, i + 1) } else { (i - 1, i) };
        let l = self.get(parent).ptr[li];
        let r = self.get(parent).ptr[ri];
        let ln = self.get(l).n();
        let rn = self.get(r).n();
        if ln + rn <= B {
            let right = self.get(r).clone();
            {
                let left = self.get_mut(l);
                for j in 0..rn {
                    left.insert(ln + j, right.entry(j));
                }
                if leaf {
                    left.next = right.next;
                }
            }
            if leaf && right.next != NIL {
                self.get_mut(right.next).prev = l;
            }
            self.free(r);
            self.get_mut(parent).remove(ri);
            let s = self.get(l).summary(l);
            self.get_mut(parent).set(li, s);
            return;
        }
        let target = (ln + rn) / 2;
        if ln < target {
            // Move the first (target - ln) entries of r to the end of l.
            for _ in 0..target - ln {
                let e = self.get_mut(r).remove(0);
                let left = self.get_mut(l);
                let n = left.n();
                left.insert(n, e);
            }
        } else {
            for _ in 0..ln - target {
                let left = self.get_mut(l);
                let n = left.n();
                let e = left.remove(n - 1);
                self.get_mut(r).insert(0, e);
            }
        }
        let sl = self.get(l).summary(l);
        let sr = self.get(r).summary(r);
        let p = self.get_mut(parent);
        p.set(li, sl);
        p.set(ri, sr);
    }
}
