//! The buddy free lists of one zone (Linux's `struct free_area[NR_PAGE_ORDERS]`) and the
//! split/merge algorithms of mm/page_alloc.c: `__rmqueue_smallest` + `expand` to allocate,
//! `__free_one_page` to free and coalesce.
//!
//! The lists are intrusive and doubly linked through the `lru` link of each free block's first
//! descriptor (as Linux links `page->buddy_list`), so removing a buddy from the middle of its
//! list while merging is O(1) and the free lists need no memory of their own.
//!
//! Everything here runs under the zone lock (`Zone::free`), which `&mut FreeLists` proves.

use super::meta::{MetaArray, PageFlags, PageMeta, NIL};
use super::{MAX_ORDER, NR_ORDERS};

/// One zone's free lists and counters. Guarded by the zone lock.
#[derive(Debug)]
pub(crate) struct FreeLists {
    /// Head (array index) of the free list of each order, [`NIL`] when empty.
    head: [u32; NR_ORDERS],
    /// Blocks on each list (Linux's `free_area[order].nr_free`).
    pub(crate) nr_free: [u64; NR_ORDERS],
    /// Free pages in the buddy lists (Linux's `NR_FREE_PAGES`).
    pub(crate) free_pages: u64,
    /// Blocks handed out straight from the buddy lists (order > 0, or order 0 without a
    /// per-CPU cache); per-CPU refills are counted separately.
    pub(crate) allocs: u64,
    /// Blocks returned straight to the buddy lists.
    pub(crate) frees: u64,
}

impl FreeLists {
    pub(crate) const fn new() -> Self {
        Self { head: [NIL; NR_ORDERS], nr_free: [0; NR_ORDERS], free_pages: 0, allocs: 0, frees: 0 }
    }

    /// Links block `i` of `order` at the head of its list and marks it BUDDY
    /// (`__add_to_free_list` + `set_buddy_order`).
    fn push(&mut self, meta: &MetaArray, i: u32, order: usize) {
        let m = meta.at(i);
        m.set_order(order as u8);
        m.store_flags(PageFlags::BUDDY);
        m.set_prev(NIL);
        let old = self.head[order];
        m.set_next(old);
        if old != NIL {
            meta.at(old).set_prev(i);
        }
        self.head[order] = i;
        self.nr_free[order] += 1;
        self.free_pages += 1 << order;
    }

    /// Unlinks block `i` of `order` (`__del_page_from_free_list`).
    fn unlink(&mut self, meta: &MetaArray, i: u32, order: usize) {
        let m = meta.at(i);
        let (p, n) = (m.prev(), m.next());
        if p != NIL {
            meta.at(p).set_next(n);
        } else {
            self.head[order] = n;
        }
        if n != NIL {
            meta.at(n).set_prev(p);
        }
        m.set_prev(NIL);
        m.set_next(NIL);
        m.store_flags(PageFlags::empty());
        self.nr_free[order] -= 1;
        self.free_pages -= 1 << order;
    }

    /// Linux's `page_is_buddy`: `b` heads a free block of exactly `order` in the same zone.
    fn is_buddy(b: &PageMeta, order: usize, zone: u8) -> bool {
        b.flags().contains(PageFlags::BUDDY)
            && b.order() as usize == order
            && b.zone_index() == zone
    }

    /// Linux's `__free_one_page`: returns the block at `pfn` of `order` to the lists, merging
    /// with its buddy (`pfn ^ (1 << order)`) for as long as the buddy is free and of the same
    /// order and zone. Frames outside the array or in holes are never BUDDY, so they stop the
    /// merge as Linux's `pfn_valid` / zone checks do.
    pub(crate) fn free_block(&mut self, meta: &MetaArray, mut pfn: u64, mut order: usize) {
        let zone = match meta.idx(pfn) {
            Some(i) => meta.at(i).zone_index(),
            None => return,
        };
        while order < MAX_ORDER {
            let buddy_pfn = pfn ^ (1u64 << order);
            let Some(bi) = meta.idx(buddy_pfn) else { break };
            if !Self::is_buddy(meta.at(bi), order, zone) {
                break;
            }
            self.unlink(meta, bi, order);
            pfn &= !(1u64 << order);
            order += 1;
        }
        if let Some(i) = meta.idx(pfn) {
            self.push(meta, i, order);
        }
    }

    /// Linux's `__rmqueue_smallest` + `expand`: takes the first block of the smallest order
    /// `>= order` and splits it, returning the upper halves to the lower lists. Returns the
    /// array index of the block; its descriptor is left with empty flags and the caller preps
    /// it.
    pub(crate) fn take(&mut self, meta: &MetaArray, order: usize) -> Option<u32> {
        let mut cur = order;
        while cur < NR_ORDERS && self.head[cur] == NIL {
            cur += 1;
        }
        if cur >= NR_ORDERS {
            return None;
        }
        let i = self.head[cur];
        self.unlink(meta, i, cur);
        // expand(): the high halves go back, the low half is split further.
        while cur > order {
            cur -= 1;
            self.push(meta, i + (1u32 << cur), cur);
        }
        Some(i)
    }

    /// Walks every list and checks links, flags and counters; used by tests.
    pub(crate) fn check(&self, meta: &MetaArray) -> Result<(), &'static str> {
        let mut pages = 0u64;
        for (o, &h) in self.head.iter().enumerate() {
            let mut n = 0u64;
            let mut prev = NIL;
            let mut cur = h;
            while cur != NIL {
                let m = meta.at(cur);
                if m.prev() != prev {
                    return Err("broken prev link");
                }
                if m.flags() != PageFlags::BUDDY || m.order() as usize != o {
                    return Err("non-buddy block on a free list");
                }
                if meta.pfn_of_idx(cur) & ((1u64 << o) - 1) != 0 {
                    return Err("misaligned free block");
                }
                n += 1;
                if n > meta.len() as u64 {
                    return Err("cycle in free list");
                }
                prev = cur;
                cur = m.next();
            }
            if n != self.nr_free[o] {
                return Err("nr_free mismatch");
            }
            pages += n << o;
        }
        if pages != self.free_pages {
            return Err("free_pages mismatch");
        }
        Ok(())
    }
}
