//! [`Tlb`]: one CPU's translation cache, tagged by ASID, keeping entries until flushed.

use std::collections::{HashMap, VecDeque};
use std::hash::{BuildHasherDefault, Hasher};

use mmkit::platform::Asid;
use mmkit::PAGE_SIZE;

use crate::mmu::{Perm, Privilege, Walk};

/// A multiply-rotate hasher for the small integer keys of the TLB (SipHash's DoS
/// resistance buys nothing here and dominated the lookup cost).
#[derive(Default)]
struct KeyHasher(u64);

impl Hasher for KeyHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.write_u64(u64::from(b));
        }
    }
    fn write_u32(&mut self, v: u32) {
        self.write_u64(u64::from(v));
    }
    fn write_u64(&mut self, v: u64) {
        self.0 = (self.0.rotate_left(5) ^ v).wrapping_mul(0x517c_c1b7_2722_0a95);
    }
}

type Map<K, V> = HashMap<K, V, BuildHasherDefault<KeyHasher>>;

/// Tag of a global entry: matches every ASID.
const GLOBAL: u32 = u32::MAX;

/// One cached translation of a 4 KiB page (a huge leaf is cached per 4 KiB piece it was
/// used through, as TLBs that fracture large pages do; invalidation covers the range).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TlbEntry {
    /// Physical address of the page.
    pub pa_page: u64,
    /// Cached user permissions.
    pub user: Perm,
    /// Cached kernel permissions.
    pub kernel: Perm,
    /// Writes may use this entry without a walk (the leaf was dirty when cached).
    pub dirty: bool,
    /// Size of the leaf this came from.
    pub leaf_size: u64,
}

impl TlbEntry {
    /// The cached permissions for `p`.
    pub fn perms(&self, p: Privilege) -> Perm {
        match p {
            Privilege::User => self.user,
            Privilege::Kernel => self.kernel,
        }
    }
}

/// A fully associative TLB of bounded size with FIFO replacement.
///
/// Entries are never dropped because the page table changed — only by the flush calls, by
/// [`Tlb::invalidate_page`] when an access through an entry faults (x86 SDM §4.10.4.1: a
/// page fault invalidates the entries for the faulting address), or by replacement when full.
#[derive(Debug)]
pub struct Tlb {
    /// Entry and the sequence number of its insertion.
    map: Map<(u32, u64), (TlbEntry, u64)>,
    /// Insertion order; an item is live only while the map holds the same sequence number.
    order: VecDeque<((u32, u64), u64)>,
    seq: u64,
    capacity: usize,
}

impl Tlb {
    /// An empty TLB of `capacity` entries (at least 1).
    pub fn new(capacity: usize) -> Self {
        Tlb { map: Map::default(), order: VecDeque::new(), seq: 0, capacity: capacity.max(1) }
    }

    /// Number of cached entries.
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// True if empty.
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    /// The entry for `va` in `asid` (own or global).
    pub fn lookup(&self, asid: Asid, va: u64) -> Option<TlbEntry> {
        let vpn = va / PAGE_SIZE;
        let own = self.map.get(&(asid.0 as u32, vpn));
        own.or_else(|| self.map.get(&(GLOBAL, vpn))).map(|&(e, _)| e)
    }

    /// Caches the translation `w` of `va`.
    pub fn insert(&mut self, asid: Asid, va: u64, w: &Walk) {
        let tag = if w.global { GLOBAL } else { asid.0 as u32 };
        let key = (tag, va / PAGE_SIZE);
        let e = TlbEntry {
            pa_page: w.pa.0 & !(PAGE_SIZE - 1),
            user: w.user,
            kernel: w.kernel,
            dirty: w.dirty,
            leaf_size: w.leaf_size,
        };
        self.seq += 1;
        let seq = self.seq;
        if self.map.insert(key, (e, seq)).is_none() {
            while self.map.len() > self.capacity {
                let Some((k, s)) = self.order.pop_front() else { break };
                if self.map.get(&k).is_some_and(|&(_, live)| live == s) {
                    self.map.remove(&k);
                }
            }
        }
        self.order.push_back((key, seq));
        if self.order.len() > 2 * self.capacity {
            // Drop the records of flushed or replaced entries.
            let map = &self.map;
            self.order.retain(|(k, s)| map.get(k).is_some_and(|&(_, live)| live == *s));
        }
    }

    /// Drops the entries for `va` (own ASID and global). Returns how many.
    pub fn invalidate_page(&mut self, asid: Asid, va: u64) -> usize {
        let vpn = va / PAGE_SIZE;
        self.map.remove(&(asid.0 as u32, vpn)).is_some() as usize
            + self.map.remove(&(GLOBAL, vpn)).is_some() as usize
    }

    /// Drops the entries of `asid` and global ones in `[start, end)`. Returns how many.
    pub fn flush_range(&mut self, asid: Asid, start: u64, end: u64) -> usize {
        if start >= end {
            return 0;
        }
        let (first, last) = (start / PAGE_SIZE, (end - 1) / PAGE_SIZE);
        if last - first < self.map.len() as u64 {
            (first..=last).map(|vpn| self.invalidate_page(asid, vpn * PAGE_SIZE)).sum()
        } else {
            let before = self.map.len();
            let tag = asid.0 as u32;
            self.map.retain(|&(t, vpn), _| {
                !((t == tag || t == GLOBAL) && (first..=last).contains(&vpn))
            });
            before - self.map.len()
        }
    }

    /// Drops every non-global entry of `asid`. Returns how many.
    pub fn flush_asid(&mut self, asid: Asid) -> usize {
        let before = self.map.len();
        let tag = asid.0 as u32;
        self.map.retain(|&(t, _), _| t != tag);
        before - self.map.len()
    }

    /// Drops everything. Returns how many.
    pub fn flush_all(&mut self) -> usize {
        let n = self.map.len();
        self.map.clear();
        self.order.clear();
        n
    }
}
