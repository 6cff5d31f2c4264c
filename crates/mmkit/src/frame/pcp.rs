//! Per-CPU page lists for order-0 frames (Linux's `struct per_cpu_pages`, mm/page_alloc.c
//! `rmqueue_pcplist` / `free_unref_page_commit`).
//!
//! Each CPU has one list per zone. Allocation pops from it and refills it with `batch` frames
//! from the buddy lists under one zone-lock acquisition when it runs dry (`rmqueue_bulk`);
//! freeing pushes onto it and returns `batch` frames to the buddy lists once it reaches `high`
//! (`free_pcppages_bulk`). The list is doubly linked through the descriptors' `lru` link:
//! allocation takes the most recently freed (cache-hot) frame from the head, a drain returns
//! the coldest frames from the tail, as in Linux.

use super::meta::{MetaArray, PageFlags, NIL};

/// One CPU's order-0 cache for one zone. Guarded by its own `spin::Mutex` (see the lock order
/// in `frame/mod.rs`).
#[derive(Debug)]
pub(crate) struct PcpList {
    /// Most recently freed frame (array index), [`NIL`] when empty.
    head: u32,
    /// Least recently freed frame.
    tail: u32,
    /// Frames on the list (Linux's `pcp->count`).
    pub(crate) count: u32,
    /// Frames handed out from this list.
    pub(crate) allocs: u64,
    /// Frames freed onto this list.
    pub(crate) frees: u64,
}

impl PcpList {
    pub(crate) const fn new() -> Self {
        Self { head: NIL, tail: NIL, count: 0, allocs: 0, frees: 0 }
    }

    /// Pushes free frame `i` at the head, marking it PCP.
    #[inline]
    pub(crate) fn push(&mut self, meta: &MetaArray, i: u32) {
        let m = meta.at(i);
        m.store_flags(PageFlags::PCP);
        m.set_prev(NIL);
        m.set_next(self.head);
        if self.head != NIL {
            meta.at(self.head).set_prev(i);
        } else {
            self.tail = i;
        }
        self.head = i;
        self.count += 1;
    }

    /// Pops the most recently freed frame, clearing its PCP mark.
    #[inline]
    pub(crate) fn pop(&mut self, meta: &MetaArray) -> Option<u32> {
        let i = self.head;
        if i == NIL {
            return None;
        }
        let m = meta.at(i);
        self.head = m.next();
        if self.head != NIL {
            meta.at(self.head).set_prev(NIL);
        } else {
            self.tail = NIL;
        }
        m.set_next(NIL);
        m.store_flags(PageFlags::empty());
        self.count -= 1;
        Some(i)
    }

    /// Pops the least recently freed frame (for draining), clearing its PCP mark.
    pub(crate) fn pop_cold(&mut self, meta: &MetaArray) -> Option<u32> {
        let i = self.tail;
        if i == NIL {
            return None;
        }
        let m = meta.at(i);
        self.tail = m.prev();
        if self.tail != NIL {
            meta.at(self.tail).set_next(NIL);
        } else {
            self.head = NIL;
        }
        m.set_prev(NIL);
        m.store_flags(PageFlags::empty());
        self.count -= 1;
        Some(i)
    }
}

/// Pads a value to its own cache line so that CPUs do not false-share their lists.
#[derive(Debug)]
#[repr(align(64))]
pub(crate) struct CachePadded<T>(pub(crate) T);
