//! The VMA index: areas ordered by address, never overlapping, with O(log n) lookup and
//! free-gap search (what Linux's maple tree and `vm_unmapped_area()` provide together).
//!
//! # Structure
//! A B+tree (module `tree`) of 16-wide nodes kept in an arena. Keys (`start`, `end`) live
//! in the nodes, packed in their own arrays, and each node is searched with a branch-free
//! binary search, so a lookup reads two or three cache lines per level and no payload; the
//! [`Vma`] payloads live in a slab addressed by a `u32` slot. Each internal entry also records
//! the largest free gap inside its child, and the gap between two neighbouring children is
//! `start[i] - end[i - 1]` in the parent, so a free-gap search descends only into subtrees
//! that can hold the request: O(log n), like the maple tree's `mas_empty_area()`.
//!
//! Leaves are chained both ways, so in-order iteration costs O(1) per step.
//!
//! # Updates
//! An update finds its leaf once (insert checks for overlap at the leaf, against the new
//! entry's neighbours), changes it, then walks the recorded path upwards refreshing each
//! parent's summary and stops at the first one that comes out unchanged — as the maple
//! tree's `mas_update_gap()` does. Every node caches its own largest inner gap, patched in
//! O(1) unless the largest gap itself shrinks, so a summary refresh does not rescan the
//! node. The path of the last update is remembered and tried first by the next one (Linux's
//! `ma_state` reuse; the old per-thread `vmacache`): a syscall's split, flag change and
//! re-merge touch neighbouring VMAs, so they skip the descent. The remembered path is only
//! used if its leaf is exactly where a descent would go, and is dropped on every node split,
//! merge, borrow or root change. Lookups through `&self` (`find`, …) always descend from
//! the root: they may run in parallel (faults under a shared borrow) and write nothing.
//!
//! # What callers must not do
//! [`VmaIndex::get_mut`] hands out `&mut Vma`. Everything except `start` and `end` may be
//! changed through it (flags — VM_GROWSDOWN included —, pgoff, anon_vma, name, backing): the
//! tree's gap summaries depend only on the keys, and the stack guard gap is applied at search
//! time exactly as Linux does. `start`/`end` must be changed with [`VmaIndex::set_range`] or
//! [`VmaIndex::split`]; changing them through `get_mut` is a logic error (the tree keeps
//! using its own copy of the keys; [`VmaIndex::check_invariants`] reports the mismatch) but
//! never undefined behaviour or a panic in the index.

mod tree;

use alloc::vec::Vec;
use core::fmt;

use self::tree::{Arena, Entry, MIN, NIL};
use super::{VmFlags, Vma};

/// Parameters of a free-gap search (Linux's `struct vm_unmapped_area_info`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GapRequest {
    /// Bytes needed (page-aligned, non-zero).
    pub length: u64,
    /// Lowest acceptable start address.
    pub low_limit: u64,
    /// Highest acceptable end address.
    pub high_limit: u64,
    /// Alignment mask: the result satisfies `(addr - align_offset) & align_mask == 0`.
    pub align_mask: u64,
    /// Offset for the alignment, as in Linux.
    pub align_offset: u64,
    /// Extra room to keep free before the area (`info->start_gap`, used for shadow stacks).
    pub start_gap: u64,
}

/// The index of one address space's VMAs.
#[derive(Clone)]
pub struct VmaIndex {
    stack_guard_gap: u64,
    arena: Arena,
    root: u32,
    /// Internal levels above the leaves (0: the root is a leaf).
    height: u32,
    slab: Vec<Vma>,
    free_slots: Vec<u32>,
    len: usize,
    mapped_bytes: u64,
    /// The path of the last update (see [`VmaIndex::locate`]); meaningful if `hint_ok`.
    hint: Path,
    hint_ok: bool,
}

/// Bound on `height`: every non-root node holds at least [`MIN`] = 4 entries and an internal
/// root at least 2, so height `h` needs at least `8 * 4^(h - 1)` VMAs; `h = 16` would need
/// more than 2^32, beyond the `u32` slab slots.
const MAX_HEIGHT: usize = 16;

/// A root-to-leaf path: `node[l]` is the node at level `l` (0 = the leaf, `height` = the
/// root) and `idx[l]` is the position of `node[l]` in `node[l + 1]`.
#[derive(Clone, Copy)]
struct Path {
    node: [u32; MAX_HEIGHT + 1],
    idx: [u8; MAX_HEIGHT],
}

/// `insert` refused a VMA that overlaps one already present.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Overlap;

impl fmt::Debug for VmaIndex {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VmaIndex")
            .field("stack_guard_gap", &self.stack_guard_gap)
            .field("len", &self.len)
            .field("height", &self.height)
            .field("vmas", &DebugVmas(self))
            .finish()
    }
}

struct DebugVmas<'a>(&'a VmaIndex);

impl fmt::Debug for DebugVmas<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.0.iter()).finish()
    }
}

/// A free gap `[start, last]` (inclusive) and the slab slot of the VMA right above it.
type Gap = (u64, u64, Option<u32>);

/// Location of a leaf entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Pos {
    leaf: u32,
    idx: usize,
}

/// What a recursive update did to a subtree, for its parent.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Up {
    /// Done; the subtree's summary may have changed.
    Changed,
    /// Done; the subtree's summary is unchanged, so no ancestor needs recomputing.
    Same,
    /// The subtree's root split; the new right sibling is returned.
    Split(u32),
}

/// A placeholder left in a freed slab slot.
fn vacant() -> Vma {
    Vma {
        start: 0,
        end: 0,
        flags: VmFlags::empty(),
        pgoff: 0,
        backing: super::Backing::Anonymous,
        anon_vma: Default::default(),
        name: None,
    }
}

impl VmaIndex {
    /// An empty index. `stack_guard_gap` is the room gap searches keep below VM_GROWSDOWN
    /// areas (`vm_start_gap()`).
    pub fn new(stack_guard_gap: u64) -> Self {
        let mut arena = Arena::default();
        let root = arena.alloc();
        VmaIndex {
            stack_guard_gap,
            arena,
            root,
            height: 0,
            slab: Vec::new(),
            free_slots: Vec::new(),
            len: 0,
            mapped_bytes: 0,
            hint: Path { node: [NIL; MAX_HEIGHT + 1], idx: [0; MAX_HEIGHT] },
            hint_ok: false,
        }
    }

    /// The guard gap this index honours below VM_GROWSDOWN areas.
    pub fn stack_guard_gap(&self) -> u64 {
        self.stack_guard_gap
    }

    /// Number of VMAs (Linux's `mm->map_count`).
    pub fn len(&self) -> usize {
        self.len
    }

    /// True if there are no VMAs.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Sum of the lengths of all VMAs in bytes, kept up to date in O(1) per change.
    pub fn mapped_bytes(&self) -> u64 {
        self.mapped_bytes
    }

    #[inline]
    fn at(&self, p: Pos) -> &Vma {
        &self.slab[self.arena.get(p.leaf).ptr[p.idx] as usize]
    }

    #[inline]
    fn slot_of(&self, p: Pos) -> u32 {
        self.arena.get(p.leaf).ptr[p.idx]
    }

    #[inline]
    fn key(&self, p: Pos) -> (u64, u64) {
        let n = self.arena.get(p.leaf);
        (n.start[p.idx], n.end[p.idx])
    }

    fn alloc_slot(&mut self, vma: Vma) -> u32 {
        if let Some(s) = self.free_slots.pop() {
            self.slab[s as usize] = vma;
            s
        } else {
            self.slab.push(vma);
            (self.slab.len() - 1) as u32
        }
    }

    /// The last entry whose start is `<= addr` (`strict`: `< addr`), descending by each
    /// child's lowest start.
    #[inline]
    fn last_start_le(&self, addr: u64, strict: bool) -> Option<Pos> {
        let mut node = self.root;
        let mut level = self.height;
        loop {
            let n = self.arena.get(node);
            let i = if strict { n.count_start_lt(addr) } else { n.count_start_le(addr) };
            if i == 0 {
                return None;
            }
            if level == 0 {
                return Some(Pos { leaf: node, idx: i - 1 });
            }
            node = n.ptr[i - 1];
            level -= 1;
        }
    }

    /// The first entry whose end is above `addr` (ends are sorted too, and each child's
    /// summary end is its highest).
    #[inline]
    fn first_end_above(&self, addr: u64) -> Option<Pos> {
        let mut node = self.root;
        let mut level = self.height;
        loop {
            let n = self.arena.get(node);
            let i = n.count_end_le(addr);
            if i == n.n() {
                return None;
            }
            if level == 0 {
                return Some(Pos { leaf: node, idx: i });
            }
            node = n.ptr[i];
            level -= 1;
        }
    }

    /// The last entry (the one with the highest start).
    fn last_pos(&self) -> Option<Pos> {
        let mut node = self.root;
        for _ in 0..self.height {
            let n = self.arena.get(node);
            node = n.ptr[n.n() - 1];
        }
        let n = self.arena.get(node).n();
        (n > 0).then(|| Pos { leaf: node, idx: n - 1 })
    }

    /// The entry starting exactly at `start`.
    #[inline]
    fn exact(&self, start: u64) -> Option<Pos> {
        self.exact_path(start).map(|(_, p)| p)
    }

    /// [`VmaIndex::exact`], with the path to its leaf.
    #[inline]
    fn exact_path(&self, start: u64) -> Option<(Path, Pos)> {
        let path = self.locate(start);
        let leaf = path.node[0];
        let n = self.arena.get(leaf);
        let i = n.count_start_lt(start);
        (i < n.n() && n.start[i] == start).then_some((path, Pos { leaf, idx: i }))
    }

    #[inline]
    fn next_pos(&self, p: Pos) -> Option<Pos> {
        let n = self.arena.get(p.leaf);
        if p.idx + 1 < n.n() {
            Some(Pos { leaf: p.leaf, idx: p.idx + 1 })
        } else if n.next != NIL {
            Some(Pos { leaf: n.next, idx: 0 })
        } else {
            None
        }
    }

    #[inline]
    fn prev_pos(&self, p: Pos) -> Option<Pos> {
        if p.idx > 0 {
            Some(Pos { leaf: p.leaf, idx: p.idx - 1 })
        } else {
            let prev = self.arena.get(p.leaf).prev;
            if prev == NIL {
                None
            } else {
                Some(Pos { leaf: prev, idx: self.arena.get(prev).n() - 1 })
            }
        }
    }

    /// The VMA containing `addr` (`vma_lookup()`). Reads only the tree's keys; the payload is
    /// not touched until the caller dereferences the result.
    #[inline]
    pub fn find(&self, addr: u64) -> Option<&Vma> {
        let p = self.last_start_le(addr, false)?;
        (addr < self.arena.get(p.leaf).end[p.idx]).then(|| self.at(p))
    }

    /// The first VMA that ends above `addr` (Linux's `find_vma()`): the one containing `addr`,
    /// else the next one above it.
    pub fn find_next(&self, addr: u64) -> Option<&Vma> {
        self.first_end_above(addr).map(|p| self.at(p))
    }

    /// The last VMA that starts below `addr` (`find_vma_prev()`'s prev when `addr` is not
    /// inside a VMA; the containing VMA's predecessor is `prev_of`).
    pub fn find_prev(&self, addr: u64) -> Option<&Vma> {
        self.last_start_le(addr, true).map(|p| self.at(p))
    }

    /// The VMA immediately before the VMA starting at `start`.
    pub fn prev_of(&self, start: u64) -> Option<&Vma> {
        self.find_prev(start)
    }

    /// The VMA immediately after the VMA starting at `start` (more generally: the first VMA
    /// starting above `start`).
    pub fn next_of(&self, start: u64) -> Option<&Vma> {
        let p = self.first_end_above(start)?;
        let p = if self.arena.get(p.leaf).start[p.idx] <= start { self.next_pos(p)? } else { p };
        Some(self.at(p))
    }

    /// [`VmaIndex::find_next`] of `addr` with its neighbours, in one descent: (the VMA before
    /// it — the last one ending at or below `addr` —, the first VMA ending above `addr`, the
    /// VMA after that). For `addr` in a free range, the first is `find_prev(addr)`; for the
    /// start of a VMA, the three are `prev_of`, the VMA itself and `next_of`.
    pub fn around(&self, addr: u64) -> (Option<&Vma>, Option<&Vma>, Option<&Vma>) {
        match self.first_end_above(addr) {
            Some(p) => (
                self.prev_pos(p).map(|q| self.at(q)),
                Some(self.at(p)),
                self.next_pos(p).map(|q| self.at(q)),
            ),
            None => (self.last_pos().map(|q| self.at(q)), None, None),
        }
    }

    /// The VMAs overlapping `[start, end)`, in address order: one descent for the first, then
    /// O(1) per step along the leaf chain.
    pub fn overlapping(&self, start: u64, end: u64) -> impl Iterator<Item = &Vma> + '_ {
        Overlapping { index: self, pos: self.first_end_above(start), end }
    }

    /// All VMAs in address order.
    pub fn iter(&self) -> impl DoubleEndedIterator<Item = &Vma> + '_ {
        let front = self.first_end_above(0);
        let back = self.last_pos();
        Iter { index: self, front, back, remaining: self.len }
    }

    /// Inserts a VMA; refuses one that overlaps an existing VMA (or an empty range). One
    /// descent: the overlap check is made at the leaf, against the new entry's neighbours
    /// (across the leaf chain where they sit in the next or previous leaf).
    pub fn insert(&mut self, vma: Vma) -> Result<(), Overlap> {
        if vma.start >= vma.end {
            return Err(Overlap);
        }
        let (s, e) = (vma.start, vma.end);
        let slot = self.alloc_slot(vma);
        if !self.insert_key(s, e, slot) {
            self.slab[slot as usize] = vacant();
            self.free_slots.push(slot);
            return Err(Overlap);
        }
        self.mapped_bytes = self.mapped_bytes.wrapping_add(e - s);
        self.len += 1;
        Ok(())
    }

    /// Inserts the key `[s, e)` for `slot`; false (and nothing changed) if it overlaps.
    fn insert_key(&mut self, s: u64, e: u64, slot: u32) -> bool {
        let entry = Entry { start: s, end: e, gap: 0, ptr: slot };
        let p = self.locate(s);
        let leaf = p.node[0];
        let n = self.arena.get(leaf);
        let i = n.count_start_lt(s);
        // `locate` picked the last leaf starting at or below `s` (or the first), so the
        // neighbours are entries i - 1 and i, or across the leaf chain.
        let prev_end = if i > 0 {
            n.end[i - 1]
        } else if n.prev != NIL {
            let q = self.arena.get(n.prev);
            q.end[q.n() - 1]
        } else {
            0
        };
        let next_start = if i < n.n() {
            n.start[i]
        } else if n.next != NIL {
            self.arena.get(n.next).start[0]
        } else {
            u64::MAX
        };
        if prev_end > s || next_start < e {
            self.set_hint(&p);
            return false;
        }
        let up = self.insert_into(leaf, i, entry, true);
        self.fix_up(&p, up);
        true
    }

    fn grow_root(&mut self, r: u32) {
        let old = self.root;
        let new_root = self.arena.alloc();
        let sl = self.arena.get(old).summary(old);
        let sr = self.arena.get(r).summary(r);
        let n = self.arena.get_mut(new_root);
        n.insert(0, sl);
        n.insert(1, sr);
        self.root = new_root;
        self.height += 1;
    }

    /// After child `i` of `node` reported `up`, refreshes the parent's entry for it (and adds
    /// the split-off sibling). Returns what `node` reports to its own parent.
    fn refresh(&mut self, node: u32, i: usize, up: Up) -> Up {
        let child = self.arena.get(node).ptr[i];
        match up {
            Up::Same => up,
            Up::Changed | Up::Split(_) => {
                let s = self.arena.get(child).summary(child);
                let n = self.arena.get_mut(node);
                let changed = n.entry(i) != s;
                if changed {
                    n.set(i, s);
                }
                if let Up::Split(r) = up {
                    let sr = self.arena.get(r).summary(r);
                    return self.insert_into(node, i + 1, sr, false);
                }
                if changed {
                    Up::Changed
                } else {
                    Up::Same
                }
            }
        }
    }

    /// Inserts `e` at position `i` of `node`, splitting it first if full. Appending at the
    /// end (or prepending at the start) splits unevenly, so address-ordered bulk inserts leave
    /// nodes three-quarters full instead of half.
    fn insert_into(&mut self, node: u32, i: usize, e: Entry, leaf: bool) -> Up {
        let n = self.arena.get(node).n();
        if n < tree::B {
            self.arena.get_mut(node).insert(i, e);
            return Up::Changed;
        }
        let mid = if i == n {
            n - MIN
        } else if i == 0 {
            MIN
        } else {
            n / 2
        };
        let r = self.arena.split(node, leaf, mid);
        if i <= mid {
            self.arena.get_mut(node).insert(i, e);
        } else {
            self.arena.get_mut(r).insert(i - mid, e);
        }
        Up::Split(r)
    }

    /// Removes the VMA starting exactly at `start`.
    pub fn remove(&mut self, start: u64) -> Option<Vma> {
        let slot = self.remove_key(start)?;
        let vma = core::mem::replace(&mut self.slab[slot as usize], vacant());
        self.free_slots.push(slot);
        self.len -= 1;
        self.mapped_bytes = self.mapped_bytes.wrapping_sub(vma.end.wrapping_sub(vma.start));
        Some(vma)
    }

    fn remove_key(&mut self, start: u64) -> Option<u32> {
        let p = self.locate(start);
        let leaf = p.node[0];
        let n = self.arena.get_mut(leaf);
        let i = n.count_start_lt(start);
        if i >= n.n() || n.start[i] != start {
            self.set_hint(&p);
            return None;
        }
        let slot = n.remove(i).ptr;
        self.fix_up(&p, Up::Changed);
        Some(slot)
    }

    /// Rewrites the keys of entry `i` of the leaf on path `p` to `[ns, ne)` and, if `extra`
    /// is given, inserts it right after that entry — no descent for a bounds change or a
    /// split. The caller guarantees the order of entries stays right.
    fn rekey_at(&mut self, p: &Path, i: usize, ns: u64, ne: u64, extra: Option<Entry>) {
        let leaf = p.node[0];
        self.arena.get_mut(leaf).set_key(i, ns, ne);
        let up = match extra {
            Some(e) => self.insert_into(leaf, i + 1, e, true),
            None => Up::Changed,
        };
        self.fix_up(p, up);
    }

    /// The root-to-leaf path to the leaf where `key` belongs (the last leaf whose lowest
    /// start is `<= key`, or the first leaf). The remembered path of the previous update is
    /// tried first — the idea of Linux's `ma_state` reuse and of the old per-thread
    /// `vmacache`: mmap, munmap and mprotect touch a few neighbouring VMAs in a row. It is
    /// used only if that leaf is where a descent would go (checked against the leaf's own
    /// first key and the next leaf's), and it is dropped on every split, merge or root
    /// change, so it is never stale.
    #[inline]
    fn locate(&self, key: u64) -> Path {
        if self.hint_ok {
            let n = self.arena.get(self.hint.node[0]);
            let after_first = key >= n.start[0] || n.prev == NIL;
            let before_next = n.next == NIL || key < self.arena.get(n.next).start[0];
            if n.n() > 0 && after_first && before_next {
                return self.hint;
            }
        }
        self.descend(key)
    }

    /// [`VmaIndex::locate`] without the remembered path: a descent from the root.
    fn descend(&self, key: u64) -> Path {
        let mut p = Path { node: [NIL; MAX_HEIGHT + 1], idx: [0; MAX_HEIGHT] };
        let mut node = self.root;
        let mut level = self.height as usize;
        p.node[level] = node;
        while level > 0 {
            let n = self.arena.get(node);
            let i = n.count_start_le(key).saturating_sub(1);
            node = n.ptr[i];
            level -= 1;
            p.node[level] = node;
            p.idx[level] = i as u8;
        }
        p
    }

    #[inline]
    fn set_hint(&mut self, p: &Path) {
        self.hint = *p;
        self.hint_ok = true;
    }

    /// After the leaf on path `p` changed as `up` says, refreshes the summaries above it,
    /// bottom-up, stopping as soon as one comes out unchanged; splits an overfull parent and
    /// rebalances an underfull child on the way, grows or shrinks the root. The remembered
    /// path survives only if no node was split, merged or rebalanced.
    fn fix_up(&mut self, p: &Path, mut up: Up) {
        let mut structural = matches!(up, Up::Split(_));
        for level in 1..=self.height as usize {
            if up == Up::Same {
                break;
            }
            let node = p.node[level];
            let i = p.idx[level - 1] as usize;
            let child = p.node[level - 1];
            if self.arena.get(child).n() < MIN {
                self.arena.rebalance(node, i, level == 1);
                structural = true;
                up = Up::Changed;
            } else {
                up = self.refresh(node, i, up);
                structural |= matches!(up, Up::Split(_));
            }
        }
        if let Up::Split(r) = up {
            self.grow_root(r);
        }
        while self.height > 0 && self.arena.get(self.root).n() == 1 {
            let old = self.root;
            self.root = self.arena.get(old).ptr[0];
            self.arena.free(old);
            self.height -= 1;
            structural = true;
        }
        if structural {
            self.hint_ok = false;
        } else {
            self.set_hint(p);
        }
    }

    /// Mutable access to the VMA starting exactly at `start`, for changes that keep its range
    /// (flags — VM_GROWSDOWN included —, pgoff, anon_vma, name, backing). The caller must not
    /// change `start` or `end` through it: use [`VmaIndex::set_range`] or
    /// [`VmaIndex::split`]. Gap searches read VM_GROWSDOWN from the VMA at search time, so
    /// toggling it here is always seen.
    pub fn get_mut(&mut self, start: u64) -> Option<&mut Vma> {
        let p = self.exact(start)?;
        let slot = self.slot_of(p);
        Some(&mut self.slab[slot as usize])
    }

    /// Changes the bounds of the VMA starting at `start` to `[new_start, new_end)`. The new
    /// range must not overlap any other VMA (shrinking is always allowed; growing only into
    /// free space). Returns `Err(Overlap)` and changes nothing otherwise (also for an empty
    /// new range or when there is no VMA at `start`).
    pub fn set_range(&mut self, start: u64, new_start: u64, new_end: u64) -> Result<(), Overlap> {
        if new_start >= new_end {
            return Err(Overlap);
        }
        let (path, p) = self.exact_path(start).ok_or(Overlap)?;
        let slot = self.slot_of(p);
        let old_end = self.key(p).1;
        let prev_end = self.prev_pos(p).map_or(0, |q| self.key(q).1);
        let next_start = self.next_pos(p).map(|q| self.key(q).0);
        if prev_end <= new_start && !matches!(next_start, Some(ns) if new_end > ns) {
            // Still between the same neighbours: rewrite the keys in place.
            self.rekey_at(&path, p.idx, new_start, new_end, None);
        } else {
            // The VMAs overlapping the new range form one run starting at the first VMA that
            // ends above new_start; the only one allowed in it is this VMA itself.
            let mut q = self.first_end_above(new_start);
            if q == Some(p) {
                q = self.next_pos(p);
            }
            if q.is_some_and(|q| self.key(q).0 < new_end) {
                return Err(Overlap);
            }
            self.remove_key(start);
            let inserted = self.insert_key(new_start, new_end, slot);
            debug_assert!(inserted, "overlap was checked above");
        }
        self.mapped_bytes = self
            .mapped_bytes
            .wrapping_sub(old_end.wrapping_sub(start))
            .wrapping_add(new_end - new_start);
        let v = &mut self.slab[slot as usize];
        v.start = new_start;
        v.end = new_end;
        Ok(())
    }

    /// Splits the VMA starting at `start` at `at` (page-aligned, strictly inside), producing
    /// `[start, at)` and `[at, end)`; the upper part's pgoff is advanced. Returns `Err` if
    /// there is no such VMA or `at` is not strictly inside.
    pub fn split(&mut self, start: u64, at: u64) -> Result<(), Overlap> {
        let (path, p) = self.exact_path(start).ok_or(Overlap)?;
        let slot = self.slot_of(p);
        let lower = &mut self.slab[slot as usize];
        if !(lower.start < at && at < lower.end) {
            return Err(Overlap);
        }
        let mut upper = lower.clone();
        upper.pgoff = lower.pgoff_at(at);
        upper.start = at;
        lower.end = at;
        let end = upper.end;
        let up = self.alloc_slot(upper);
        self.rekey_at(&path, p.idx, start, at, Some(Entry { start: at, end, gap: 0, ptr: up }));
        self.len += 1;
        Ok(())
    }

    // ---------------------------------------------------------------------------------
    // Free-gap search.

    /// The lowest free gap `[gs, ge]` (inclusive bounds; the gaps are the maximal ranges of
    /// `[0, u64::MAX]` not covered by a VMA) whose part inside `[lo, hi]` holds `size` bytes.
    /// This is `mas_empty_area()` of lib/maple_tree.c on the mm's maple tree.
    fn lowest_gap(&self, lo: u64, hi: u64, size: u64) -> Option<Gap> {
        if self.len == 0 {
            return fits(0, u64::MAX, lo, hi, size).then_some((0, u64::MAX, None));
        }
        let root = self.arena.get(self.root);
        let first = root.start[0];
        if first > 0 && fits(0, first - 1, lo, hi, size) {
            return Some((0, first - 1, Some(self.leftmost_slot(self.root, self.height))));
        }
        if let Some(g) = self.lowest_in(self.root, self.height, lo, hi, size) {
            return Some(g);
        }
        let last = root.end[root.n() - 1];
        fits(last, u64::MAX, lo, hi, size).then_some((last, u64::MAX, None))
    }

    /// The slab slot of the lowest VMA below `node`.
    fn leftmost_slot(&self, mut node: u32, level: u32) -> u32 {
        for _ in 0..level {
            node = self.arena.get(node).ptr[0];
        }
        self.arena.get(node).ptr[0]
    }

    /// The gap between entries `i - 1` and `i` of `node`, with the slot of the VMA above it.
    #[inline]
    fn gap_before(&self, node: u32, level: u32, i: usize) -> Option<Gap> {
        let n = self.arena.get(node);
        let (gs, ge) = (n.end[i - 1], n.start[i]);
        (ge > gs).then(|| {
            let next = if level == 0 { n.ptr[i] } else { self.leftmost_slot(n.ptr[i], level - 1) };
            (gs, ge - 1, Some(next))
        })
    }

    fn lowest_in(&self, node: u32, level: u32, lo: u64, hi: u64, size: u64) -> Option<Gap> {
        let n = self.arena.get(node);
        // Entries that end at or below `lo` hold no gap reaching `lo`; the gap after the last
        // of them may.
        let first = n.count_end_le(lo);
        for i in first..n.n() {
            if i > 0
                && n.start[i] > n.end[i - 1]
                && fits(n.end[i - 1], n.start[i] - 1, lo, hi, size)
            {
                return self.gap_before(node, level, i);
            }
            if n.start[i] > hi {
                return None;
            }
            if level > 0 && n.gap[i] >= size && n.end[i] > lo {
                if let Some(g) = self.lowest_in(n.ptr[i], level - 1, lo, hi, size) {
                    return Some(g);
                }
            }
        }
        None
    }

    /// The highest free gap whose part inside `[lo, hi]` holds `size` bytes
    /// (`mas_empty_area_rev()`).
    fn highest_gap(&self, lo: u64, hi: u64, size: u64) -> Option<Gap> {
        if self.len == 0 {
            return fits(0, u64::MAX, lo, hi, size).then_some((0, u64::MAX, None));
        }
        let root = self.arena.get(self.root);
        let last = root.end[root.n() - 1];
        if fits(last, u64::MAX, lo, hi, size) {
            return Some((last, u64::MAX, None));
        }
        if let Some(g) = self.highest_in(self.root, self.height, lo, hi, size) {
            return Some(g);
        }
        let first = root.start[0];
        (first > 0 && fits(0, first - 1, lo, hi, size))
            .then(|| (0, first - 1, Some(self.leftmost_slot(self.root, self.height))))
    }

    fn highest_in(&self, node: u32, level: u32, lo: u64, hi: u64, size: u64) -> Option<Gap> {
        let n = self.arena.get(node);
        // Entries starting above `hi` hold nothing at or below `hi`; the gap before the first
        // of them may still reach below `hi`.
        let end = n.count_start_le(hi);
        let stop = (end + 1).min(n.n());
        for i in (0..stop).rev() {
            if i < end {
                if n.end[i] <= lo {
                    return None;
                }
                if level > 0 && n.gap[i] >= size && n.start[i] <= hi {
                    if let Some(g) = self.highest_in(n.ptr[i], level - 1, lo, hi, size) {
                        return Some(g);
                    }
                }
            }
            if i > 0
                && n.start[i] > n.end[i - 1]
                && fits(n.end[i - 1], n.start[i] - 1, lo, hi, size)
            {
                return self.gap_before(node, level, i);
            }
        }
        None
    }

    /// Linux's `unmapped_area()` (mm/vma.c since 6.12, mm/mmap.c before): a free, aligned
    /// `[gap, gap + length)` inside `[low_limit, high_limit)` with `start_gap` free below it
    /// and clear of the stack guard gap of a VM_GROWSDOWN VMA above it — the address Linux
    /// returns, which is not always the lowest that would fit (see below); `None` where Linux
    /// returns `-ENOMEM`.
    ///
    /// Step for step as Linux: the tree is asked (`vma_iter_area_lowest()` →
    /// `mas_empty_area()`) for the lowest free range whose part inside
    /// `[low_limit, high_limit - 1]` holds `length + align_mask + start_gap` bytes (room for
    /// the worst-case alignment), the result starts at that part's start, plus `start_gap`,
    /// aligned up to `align_offset` modulo `align_mask + 1`. If the VMA right above the range
    /// grows down and its `vm_start_gap()` is below `gap + length - 1` (with the *adjusted*
    /// length, as Linux compares), the search restarts with `low_limit` at that VMA's end —
    /// each retry is another O(log n) search, as in Linux. Linux's other re-check
    /// (`vm_end_gap(prev) > gap`) needs VM_GROWSUP, which x86-64 lacks, and is omitted.
    ///
    /// The caller applies Linux's `mmap_min_addr` clamp of `low_limit` (the index does not
    /// know it). Deviations only for inputs no Linux caller produces: a `length`,
    /// `align_mask` and `start_gap` whose sum overflows, a `high_limit` of 0 (Linux's
    /// `high_limit - 1` would wrap to `ULONG_MAX`) and a retry that would not make progress
    /// all give `None`.
    pub fn unmapped_area(&self, req: &GapRequest) -> Option<u64> {
        let length = req.length.checked_add(req.align_mask)?.checked_add(req.start_gap)?;
        let mut low = req.low_limit;
        let high = req.high_limit;
        loop {
            let max = high.checked_sub(1)?;
            if length == 0 || low > max || max - low < length - 1 {
                return None;
            }
            let (gs, _, next) = self.lowest_gap(low, max, length)?;
            let addr = gs.max(low);
            let mut gap = addr.wrapping_add(req.start_gap);
            gap = gap.wrapping_add(req.align_offset.wrapping_sub(gap) & req.align_mask);
            let next = next.map(|slot| &self.slab[slot as usize]);
            match next {
                Some(t) if t.flags.contains(VmFlags::GROWSDOWN) => {
                    let bound = gap.wrapping_add(length).wrapping_sub(1);
                    if t.start_gap(self.stack_guard_gap) < bound {
                        if t.end <= low {
                            return None;
                        }
                        low = t.end;
                        continue;
                    }
                }
                // Linux's other branch re-checks the VMA below the gap: `vm_end_gap(prev) >
                // gap`. Without VM_GROWSUP `vm_end_gap()` is the end, which is `<= gs <= gap`
                // (no arithmetic above can wrap), so it never fires; the model in
                // tests/index_props.rs keeps it and agrees.
                _ => {}
            }
            return Some(gap);
        }
    }

    /// Linux's `unmapped_area_topdown()` (mm/vma.c since 6.12, mm/mmap.c before).
    ///
    /// The tree is asked (`vma_iter_area_highest()` → `mas_empty_area_rev()`) for the highest
    /// free range whose part inside `[low_limit, high_limit - 1]` holds
    /// `length + align_mask + start_gap` bytes; the result is that part's end minus `length`,
    /// aligned down to `align_offset` modulo `align_mask + 1`. If the VMA right above the
    /// range grows down and its `vm_start_gap()` is below that end, the search restarts with
    /// `high_limit = vm_start_gap()`. As in [`VmaIndex::unmapped_area`], the VM_GROWSUP-only
    /// re-check of the VMA below is omitted.
    /// Same caller duty (`mmap_min_addr`) and same `None` cases as
    /// [`VmaIndex::unmapped_area`].
    pub fn unmapped_area_topdown(&self, req: &GapRequest) -> Option<u64> {
        let length = req.length.checked_add(req.align_mask)?.checked_add(req.start_gap)?;
        let low = req.low_limit;
        let mut high = req.high_limit;
        loop {
            let max = high.checked_sub(1)?;
            if length == 0 || low > max || max - low < length - 1 {
                return None;
            }
            let (_, ge, next) = self.highest_gap(low, max, length)?;
            // max < u64::MAX, so this cannot wrap.
            let gap_end = ge.min(max) + 1;
            let mut gap = gap_end.wrapping_sub(req.length);
            gap = gap.wrapping_sub(gap.wrapping_sub(req.align_offset) & req.align_mask);
            let next = next.map(|slot| &self.slab[slot as usize]);
            match next {
                Some(t) if t.flags.contains(VmFlags::GROWSDOWN) => {
                    let sg = t.start_gap(self.stack_guard_gap);
                    if sg < gap_end {
                        high = sg;
                        continue;
                    }
                }
                // As in `unmapped_area`: `vm_end_gap(prev) <= gs <= gap` without VM_GROWSUP
                // (`gap_end - gap >= align_mask + start_gap + gap's part below`), so Linux's
                // prev re-check never fires.
                _ => {}
            }
            return Some(gap);
        }
    }

    // ---------------------------------------------------------------------------------
    // Self-check.

    /// Checks every structural invariant and panics with a description of the first one
    /// broken: entries sorted and non-overlapping, keys equal to the payloads' ranges, node
    /// fill within bounds, all leaves at one depth, each internal summary (lowest start,
    /// highest end, largest inner gap) equal to its recomputation, the leaf chain in order,
    /// and the counters. For tests; O(n).
    #[doc(hidden)]
    pub fn check_invariants(&self) {
        let mut leaves = Vec::new();
        let count = self.check_node(self.root, self.height, true, &mut leaves);
        assert_eq!(count, self.len, "len counter");
        // Leaf chain.
        let mut prev = NIL;
        for &l in &leaves {
            let n = self.arena.get(l);
            assert_eq!(n.prev, prev, "leaf chain prev");
            if prev != NIL {
                assert_eq!(self.arena.get(prev).next, l, "leaf chain next");
            }
            prev = l;
        }
        if prev != NIL {
            assert_eq!(self.arena.get(prev).next, NIL, "leaf chain end");
        }
        // Global order and payloads.
        let mut last_end = 0u64;
        let mut first = true;
        let mut bytes = 0u64;
        let mut slots = 0usize;
        let mut seen = alloc::vec![false; self.slab.len()];
        for &l in &leaves {
            let n = self.arena.get(l);
            for i in 0..n.n() {
                assert!(n.start[i] < n.end[i], "empty VMA key");
                assert!(first || n.start[i] >= last_end, "VMAs overlap or unsorted");
                first = false;
                last_end = n.end[i];
                let slot = n.ptr[i] as usize;
                assert!(slot < self.slab.len() && !seen[slot], "slot shared or out of range");
                seen[slot] = true;
                let v = &self.slab[slot];
                assert_eq!((v.start, v.end), (n.start[i], n.end[i]), "payload range");
                bytes = bytes.wrapping_add(v.end - v.start);
                slots += 1;
            }
        }
        assert_eq!(slots, self.len, "slot count");
        assert_eq!(bytes, self.mapped_bytes, "mapped_bytes counter");
        assert_eq!(self.slab.len() - self.free_slots.len(), self.len, "slab leak");
        for &f in &self.free_slots {
            assert!(!seen[f as usize], "a free slot is in use");
        }
        let live = self.arena.live();
        let mut reachable = leaves.len();
        self.count_internal(self.root, self.height, &mut reachable);
        assert_eq!(live, reachable, "node leak");
        // Iterators agree with the leaf walk.
        assert_eq!(self.iter().count(), self.len);
        assert_eq!(self.iter().rev().count(), self.len);
    }

    fn count_internal(&self, node: u32, level: u32, acc: &mut usize) {
        if level == 0 {
            return;
        }
        *acc += 1;
        let n = self.arena.get(node);
        for i in 0..n.n() {
            self.count_internal(n.ptr[i], level - 1, acc);
        }
    }

    fn check_node(&self, node: u32, level: u32, is_root: bool, leaves: &mut Vec<u32>) -> usize {
        let n = self.arena.get(node);
        if is_root {
            assert!(level == 0 || n.n() >= 2, "internal root with < 2 children");
        } else {
            assert!(n.n() >= MIN, "underfull node: {} < {}", n.n(), MIN);
        }
        assert!(n.n() <= tree::B);
        for i in n.n()..tree::B {
            assert_eq!((n.start[i], n.end[i]), (u64::MAX, u64::MAX), "filler key");
        }
        for i in 1..n.n() {
            assert!(n.start[i] >= n.end[i - 1], "node entries overlap or unsorted");
        }
        if level == 0 {
            leaves.push(node);
            for i in 0..n.n() {
                assert_eq!(n.gap[i], 0, "leaf gap");
            }
            return n.n();
        }
        let mut total = 0;
        for i in 0..n.n() {
            let c = n.ptr[i];
            total += self.check_node(c, level - 1, false, leaves);
            let s = self.arena.get(c).summary(c);
            assert_eq!(s, n.entry(i), "summary of child {i}");
            assert_eq!(s.gap, self.arena.get(c).inner_gap(), "cached gap of child {i}");
        }
        total
    }
}

/// True if the part of the gap `[gs, ge]` inside `[lo, hi]` holds `size` (> 0) bytes.
#[inline]
fn fits(gs: u64, ge: u64, lo: u64, hi: u64, size: u64) -> bool {
    let a = gs.max(lo);
    let b = ge.min(hi);
    a <= b && b - a >= size - 1
}

struct Iter<'a> {
    index: &'a VmaIndex,
    front: Option<Pos>,
    back: Option<Pos>,
    remaining: usize,
}

impl<'a> Iterator for Iter<'a> {
    type Item = &'a Vma;

    fn next(&mut self) -> Option<&'a Vma> {
        if self.remaining == 0 {
            return None;
        }
        let p = self.front?;
        self.remaining -= 1;
        self.front = self.index.next_pos(p);
        Some(self.index.at(p))
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.remaining, Some(self.remaining))
    }
}

impl<'a> DoubleEndedIterator for Iter<'a> {
    fn next_back(&mut self) -> Option<&'a Vma> {
        if self.remaining == 0 {
            return None;
        }
        let p = self.back?;
        self.remaining -= 1;
        self.back = self.index.prev_pos(p);
        Some(self.index.at(p))
    }
}

struct Overlapping<'a> {
    index: &'a VmaIndex,
    pos: Option<Pos>,
    end: u64,
}

impl<'a> Iterator for Overlapping<'a> {
    type Item = &'a Vma;

    fn next(&mut self) -> Option<&'a Vma> {
        let p = self.pos?;
        if self.index.arena.get(p.leaf).start[p.idx] >= self.end {
            self.pos = None;
            return None;
        }
        self.pos = self.index.next_pos(p);
        Some(self.index.at(p))
    }
}

#[cfg(test)]
mod tests;
