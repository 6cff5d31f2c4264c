//! Per-range page statistics for `/proc/<pid>/smaps` (Linux's `smaps_pte_entry()` and
//! `smaps_account()` in fs/proc/task_mmu.c).

use super::{Host, Kind, Pages};
use crate::addr::{PageRange, PAGE_SIZE};
use crate::frame::PageFlags;
use crate::paging::{Arch, PteFlags};

/// Linux's `PSS_SHIFT`: Pss is accumulated in 1/4096 bytes so that dividing by the map count
/// loses nothing before the final shift.
pub const PSS_SHIFT: u32 = 12;

/// The page figures of one range, in bytes (`struct mem_size_stats`). `Locked` is a VMA
/// property (VM_LOCKED ⇒ Locked = Pss) and is left to the caller; Swap is always 0.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PageStats {
    /// Rss: every mapped page except the zero page.
    pub resident: u64,
    /// Pss in bytes << [`PSS_SHIFT`]: each page's size divided by its map count.
    pub pss_shifted: u64,
    /// Pss_Anon, shifted likewise.
    pub pss_anon_shifted: u64,
    /// Pss_File, shifted likewise.
    pub pss_file_shifted: u64,
    /// Pss_Shmem, shifted likewise.
    pub pss_shmem_shifted: u64,
    /// Pss_Dirty, shifted likewise.
    pub pss_dirty_shifted: u64,
    /// Shared_Clean.
    pub shared_clean: u64,
    /// Shared_Dirty.
    pub shared_dirty: u64,
    /// Private_Clean.
    pub private_clean: u64,
    /// Private_Dirty.
    pub private_dirty: u64,
    /// Referenced: accessed PTE or referenced page.
    pub referenced: u64,
    /// Anonymous.
    pub anonymous: u64,
    /// LazyFree: anonymous pages that MADV_FREE made lazy-free.
    pub lazyfree: u64,
}

impl PageStats {
    /// Pss in bytes (smaps prints `pss >> PSS_SHIFT` in KiB).
    pub fn pss(&self) -> u64 {
        self.pss_shifted >> PSS_SHIFT
    }

    /// Adds another range's figures (smaps_rollup).
    pub fn add(&mut self, o: &PageStats) {
        self.resident += o.resident;
        self.pss_shifted += o.pss_shifted;
        self.pss_anon_shifted += o.pss_anon_shifted;
        self.pss_file_shifted += o.pss_file_shifted;
        self.pss_shmem_shifted += o.pss_shmem_shifted;
        self.pss_dirty_shifted += o.pss_dirty_shifted;
        self.shared_clean += o.shared_clean;
        self.shared_dirty += o.shared_dirty;
        self.private_clean += o.private_clean;
        self.private_dirty += o.private_dirty;
        self.referenced += o.referenced;
        self.anonymous += o.anonymous;
        self.lazyfree += o.lazyfree;
    }
}

impl<A: Arch, H: Host> Pages<A, H> {
    /// The smaps page figures of `[start, end)` (`walk_page_vma()` with `smaps_pte_entry()`).
    /// The zero page counts nowhere (`vm_normal_page()` is NULL for it). An unaligned or
    /// empty range gives zeros.
    pub fn walk_stats(&self, start: u64, end: u64) -> PageStats {
        let mut s = PageStats::default();
        let Some(r) = PageRange::new(start, end) else { return s };
        let _ = self.table.walk(r, |m| {
            let Some((kind, meta)) = self.kind_of(&m) else { return };
            let size = PAGE_SIZE;
            let flags = meta.flags();
            let young = m.attrs.flags.contains(PteFlags::ACCESSED);
            let dirty = m.attrs.flags.contains(PteFlags::DIRTY) || flags.contains(PageFlags::DIRTY);
            s.resident += size;
            if kind == Kind::Anon {
                s.anonymous += size;
                if !flags.contains(PageFlags::SWAPBACKED) {
                    s.lazyfree += size;
                }
            }
            if young || flags.contains(PageFlags::REFERENCED) {
                s.referenced += size;
            }
            // smaps_page_accumulate(): a page mapped more than once is shared, and its size
            // is divided among the mappers for Pss.
            let mapcount = meta.mapcount().max(1) as u64;
            let pss = (size << PSS_SHIFT) / mapcount;
            if mapcount >= 2 {
                if dirty {
                    s.shared_dirty += size;
                } else {
                    s.shared_clean += size;
                }
            } else if dirty {
                s.private_dirty += size;
            } else {
                s.private_clean += size;
            }
            s.pss_shifted += pss;
            if dirty {
                s.pss_dirty_shifted += pss;
            }
            match kind {
                Kind::Anon => s.pss_anon_shifted += pss,
                Kind::File => s.pss_file_shifted += pss,
                Kind::Shmem => s.pss_shmem_shifted += pss,
            }
        });
        s
    }
}
