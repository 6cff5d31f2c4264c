//! The memory lines of `/proc/<pid>/status`, byte-identical to `task_mem()` of
//! fs/proc/task_mmu.c (Linux 6.18), which fs/proc/array.c `proc_pid_status()` calls between
//! `Kthread:` and `CoreDumping:`; `task_mem()` ends with `hugetlb_report_usage()`, so the
//! `HugetlbPages:` line is part of this block.
//!
//! Every line is `Name:\t%8lu kB` (`seq_put_decimal_ull_width(m, "Name:\t", kb, 8)`).
//! VMA-derived values come from the [`AddressSpace`] (`total_vm`, `locked_vm`, `data_vm`,
//! `stack_vm`, `exec_vm`); page-level values (the RSS counters, swap entries, page-table
//! bytes, the RSS high-water mark) come from the caller's [`RssCounts`]; the `mm_struct`
//! fields `AddressSpace` does not keep (`hiwater_vm`, `start_code`/`end_code`, `pinned_vm`,
//! `hugetlb_usage`) come from [`StatusMm`].

use core::fmt::{self, Write};

use crate::addr::{PAGE_SHIFT, PAGE_SIZE};
use crate::space::AddressSpace;

/// The mm's RSS counters (`get_mm_counter()`), in pages, plus the page-table bytes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RssCounts {
    /// `MM_ANONPAGES`: `RssAnon`.
    pub anon: u64,
    /// `MM_FILEPAGES`: `RssFile`.
    pub file: u64,
    /// `MM_SHMEMPAGES`: `RssShmem`.
    pub shmem: u64,
    /// `MM_SWAPENTS`: `VmSwap`.
    pub swap: u64,
    /// `mm_pgtables_bytes()`: `VmPTE` (bytes).
    pub pgtables_bytes: u64,
    /// `mm->hiwater_rss` in pages: Linux only updates it when RSS is about to drop, so
    /// `VmHWM` is `max(hiwater_rss, anon + file + shmem)`.
    pub hiwater_rss: u64,
}

/// `mm_struct` fields `task_mem()` reads that [`AddressSpace`] does not keep.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StatusMm {
    /// `mm->hiwater_vm` in pages (updated by Linux only when total_vm is about to drop, so
    /// `VmPeak` is `max(hiwater_vm, total_vm)`).
    pub hiwater_vm: u64,
    /// `mm->start_code`, set by the ELF loader (0 when nothing was exec'd).
    pub start_code: u64,
    /// `mm->end_code`.
    pub end_code: u64,
    /// `mm->pinned_vm` in pages: `VmPin`.
    pub pinned_vm: u64,
    /// `mm->hugetlb_usage` in pages: `HugetlbPages`.
    pub hugetlb_pages: u64,
}

/// One `Name:\t%8lu kB` line.
fn line<W: Write + ?Sized>(out: &mut W, name: &str, kb: u64) -> fmt::Result {
    writeln!(out, "{name}:\t{kb:>8} kB")
}

/// `VmExe` and `VmLib` in bytes: `task_mem()` splits `exec_vm` into the text segment
/// (`PAGE_ALIGN(end_code) - (start_code & PAGE_MASK)`, capped at `exec_vm`) and the rest.
/// Wrapping arithmetic as in C (a bogus `end_code < start_code` wraps and the `min` caps it).
pub fn text_and_lib_bytes(exec_vm_pages: u64, start_code: u64, end_code: u64) -> (u64, u64) {
    let exec = exec_vm_pages.wrapping_shl(PAGE_SHIFT);
    let aligned_end = end_code.wrapping_add(PAGE_SIZE - 1) & !(PAGE_SIZE - 1);
    let text = aligned_end.wrapping_sub(start_code & !(PAGE_SIZE - 1)).min(exec);
    (text, exec - text)
}

/// The `VmPeak:` .. `HugetlbPages:` lines of `/proc/<pid>/status` (`task_mem()` followed
/// by `hugetlb_report_usage()`), in Linux's order: VmPeak, VmSize, VmLck, VmPin, VmHWM,
/// VmRSS, RssAnon, RssFile, RssShmem, VmData, VmStk, VmExe, VmLib, VmPTE, VmSwap,
/// HugetlbPages.
pub fn write_status_vm<W: Write + ?Sized>(
    space: &AddressSpace,
    rss: &RssCounts,
    mm: &StatusMm,
    out: &mut W,
) -> fmt::Result {
    let to_kb = |pages: u64| pages.wrapping_shl(PAGE_SHIFT - 10);
    let total_vm = space.total_vm();
    let hiwater_vm = total_vm.max(mm.hiwater_vm);
    let total_rss = rss.anon.wrapping_add(rss.file).wrapping_add(rss.shmem);
    let hiwater_rss = total_rss.max(rss.hiwater_rss);
    let (text, lib) = text_and_lib_bytes(space.exec_vm(), mm.start_code, mm.end_code);
    line(out, "VmPeak", to_kb(hiwater_vm))?;
    line(out, "VmSize", to_kb(total_vm))?;
    line(out, "VmLck", to_kb(space.locked_vm()))?;
    line(out, "VmPin", to_kb(mm.pinned_vm))?;
    line(out, "VmHWM", to_kb(hiwater_rss))?;
    line(out, "VmRSS", to_kb(total_rss))?;
    line(out, "RssAnon", to_kb(rss.anon))?;
    line(out, "RssFile", to_kb(rss.file))?;
    line(out, "RssShmem", to_kb(rss.shmem))?;
    line(out, "VmData", to_kb(space.data_vm()))?;
    line(out, "VmStk", to_kb(space.stack_vm()))?;
    line(out, "VmExe", text >> 10)?;
    line(out, "VmLib", lib >> 10)?;
    line(out, "VmPTE", rss.pgtables_bytes >> 10)?;
    line(out, "VmSwap", to_kb(rss.swap))?;
    // hugetlb_report_usage(): "HugetlbPages:\t%8lu kB\n".
    line(out, "HugetlbPages", to_kb(mm.hugetlb_pages))
}

/// [`write_status_vm`] into a `String`.
pub fn status_vm_string(
    space: &AddressSpace,
    rss: &RssCounts,
    mm: &StatusMm,
) -> alloc::string::String {
    let mut s = alloc::string::String::new();
    // Writing into a String cannot fail.
    let _ = write_status_vm(space, rss, mm, &mut s);
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::MmConfig;
    use crate::vma::{Backing, VmFlags, Vma};

    fn vma(start: u64, end: u64, flags: VmFlags) -> Vma {
        Vma {
            start,
            end,
            flags,
            pgoff: start >> 12,
            backing: Backing::Anonymous,
            anon_vma: Default::default(),
            name: None,
        }
    }

    #[test]
    fn golden_block_from_host_figures() {
        // The counters of `cat /proc/self/status` on this host, fed back: VmSize 3060 kB
        // (765 pages), exec 1548 kB of which text 20 kB, data 360 kB, stack 132 kB.
        let mut sp = AddressSpace::new(MmConfig::default());
        let x = VmFlags::READ | VmFlags::EXEC | VmFlags::MAYREAD | VmFlags::MAYEXEC;
        let rw = VmFlags::READ | VmFlags::WRITE | VmFlags::MAYREAD | VmFlags::MAYWRITE;
        let r = VmFlags::READ | VmFlags::MAYREAD;
        sp.insert_vma_unmerged(vma(0x10_0000, 0x10_0000 + 1548 * 1024, x)).unwrap();
        sp.insert_vma_unmerged(vma(0x100_0000, 0x100_0000 + 360 * 1024, rw)).unwrap();
        let stk = rw | VmFlags::GROWSDOWN;
        sp.insert_vma_unmerged(vma(0x200_0000, 0x200_0000 + 132 * 1024, stk)).unwrap();
        let rest = 3060 - 1548 - 360 - 132;
        sp.insert_vma_unmerged(vma(0x300_0000, 0x300_0000 + rest * 1024, r)).unwrap();
        let rss = RssCounts {
            anon: 112 / 4,
            file: 1624 / 4,
            shmem: 0,
            swap: 0,
            pgtables_bytes: 44 * 1024,
            hiwater_rss: 0,
        };
        let mm = StatusMm {
            hiwater_vm: 0,
            start_code: 0x10_0123,
            end_code: 0x10_0000 + 19 * 1024 + 5,
            pinned_vm: 0,
            hugetlb_pages: 0,
        };
        assert_eq!(
            status_vm_string(&sp, &rss, &mm),
            "VmPeak:\t    3060 kB\nVmSize:\t    3060 kB\nVmLck:\t       0 kB\nVmPin:\t       0 kB\n\
             VmHWM:\t    1736 kB\nVmRSS:\t    1736 kB\nRssAnon:\t     112 kB\nRssFile:\t    1624 kB\n\
             RssShmem:\t       0 kB\nVmData:\t     360 kB\nVmStk:\t     132 kB\nVmExe:\t      20 kB\n\
             VmLib:\t    1528 kB\nVmPTE:\t      44 kB\nVmSwap:\t       0 kB\nHugetlbPages:\t       0 kB\n"
        );
    }

    #[test]
    fn peaks_and_text_cap() {
        let mut sp = AddressSpace::new(MmConfig::default());
        let x = VmFlags::READ | VmFlags::EXEC;
        sp.insert_vma_unmerged(vma(0x40_0000, 0x40_2000, x | VmFlags::LOCKED)).unwrap();
        let rss = RssCounts { anon: 1, hiwater_rss: 10, ..RssCounts::default() };
        let mm = StatusMm {
            hiwater_vm: 100,
            start_code: 0x40_0000,
            end_code: 0x80_0000,
            ..StatusMm::default()
        };
        let s = status_vm_string(&sp, &rss, &mm);
        assert!(s.starts_with("VmPeak:\t     400 kB\nVmSize:\t       8 kB\nVmLck:\t       8 kB\n"));
        assert!(s.contains("\nVmHWM:\t      40 kB\nVmRSS:\t       4 kB\n"));
        // The text range is larger than exec_vm: VmExe is capped, VmLib 0.
        assert!(s.contains("\nVmExe:\t       8 kB\nVmLib:\t       0 kB\n"));
        // end_code below start_code wraps in C and is capped by the min().
        assert_eq!(text_and_lib_bytes(2, 0x5000, 0x1000), (8192, 0));
        assert_eq!(text_and_lib_bytes(4, 0, 0), (0, 16384));
    }
}
