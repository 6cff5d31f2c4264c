//! `/proc/<pid>/smaps` and `/proc/<pid>/smaps_rollup`, byte-identical to fs/proc/task_mmu.c of
//! Linux 6.18 (`show_smap()`, `__show_smap()`, `show_smaps_rollup()`,
//! `show_smap_vma_flags()`).
//!
//! # Where the numbers come from
//! Linux fills a `struct mem_size_stats` per VMA by walking its page tables
//! (`smap_gather_stats()`), then prints it. Here the walk belongs to the page layer: the caller
//! passes a closure that returns a [`SmapsCounts`] (the same fields, in the same units) for a
//! VMA, and this module prints it. [`SmapsCounts::account_page`] and
//! [`SmapsCounts::account_swap`] apply Linux's per-entry rules (`smaps_account()`,
//! `smaps_page_accumulate()`, the swap branch of `smaps_pte_entry()`), so a page walker only
//! has to report what each PTE maps.
//!
//! # Derived fields
//! - `Size` is `vm_end - vm_start`; `KernelPageSize`/`MMUPageSize` are 4 kB (no hugetlb VMAs).
//! - `Locked` is `pss_locked`, which Linux accumulates exactly like `pss` but only for pages of
//!   a VM_LOCKED VMA (`locked = vma->vm_flags & VM_LOCKED` in `smaps_pte_entry()`): so it is
//!   the VMA's `Pss` when the VMA is VM_LOCKED and 0 otherwise — never a caller input.
//! - `THPeligible` is [`thp_eligible`].
//! - `ProtectionKey:` is printed only when `arch_pkeys_enabled()`; the host (and our default)
//!   has no PKU, so [`write_smaps`] omits it; [`write_smaps_with`] can print it.
//! - `VmFlags:` is [`super::write_vm_flags`]: every mnemonic followed by a space, so the line
//!   ends in a space before the newline.

use core::fmt::{self, Write};

use super::maps::{write_maps_line, write_vm_flags};
use crate::addr::PAGE_SIZE;
use crate::space::AddressSpace;
use crate::vma::{Backing, VmFlags, Vma};

/// Linux's `PSS_SHIFT`: PSS figures are kept in bytes << 12 so that dividing a page among
/// its mappers loses (almost) nothing; the printed value is `pss >> PSS_SHIFT >> 10`.
pub const PSS_SHIFT: u32 = 12;

/// 2 MiB: `HPAGE_PMD_SIZE` on x86-64.
pub const HPAGE_PMD_SIZE: u64 = 2 << 20;

/// Linux's `struct mem_size_stats` for one VMA (or summed over all, for `smaps_rollup`).
///
/// Units are Linux's: byte counts, and for the `pss*`/`swap_pss` fields bytes shifted left
/// by [`PSS_SHIFT`]. There is no `pss_locked`: it is derived from VM_LOCKED (module docs).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SmapsCounts {
    /// `Rss`: bytes of present pages (the zero page and PFN-mapped pages are not counted:
    /// `vm_normal_page()` returns no page for them).
    pub resident: u64,
    /// `Pss`, bytes << [`PSS_SHIFT`].
    pub pss: u64,
    /// `Pss_Dirty`, bytes << [`PSS_SHIFT`].
    pub pss_dirty: u64,
    /// `Pss_Anon` (printed by `smaps_rollup` only), bytes << [`PSS_SHIFT`].
    pub pss_anon: u64,
    /// `Pss_File` (`smaps_rollup` only), bytes << [`PSS_SHIFT`].
    pub pss_file: u64,
    /// `Pss_Shmem` (`smaps_rollup` only), bytes << [`PSS_SHIFT`].
    pub pss_shmem: u64,
    /// `Shared_Clean`, bytes.
    pub shared_clean: u64,
    /// `Shared_Dirty`, bytes.
    pub shared_dirty: u64,
    /// `Private_Clean`, bytes.
    pub private_clean: u64,
    /// `Private_Dirty`, bytes.
    pub private_dirty: u64,
    /// `Referenced`, bytes.
    pub referenced: u64,
    /// `Anonymous`, bytes (anonymous folios only: 0 for shared anonymous memory, which is
    /// shmem).
    pub anonymous: u64,
    /// `KSM`, bytes.
    pub ksm: u64,
    /// `LazyFree`, bytes (MADV_FREE'd anonymous pages not dirtied since).
    pub lazyfree: u64,
    /// `AnonHugePages`, bytes.
    pub anonymous_thp: u64,
    /// `ShmemPmdMapped`, bytes.
    pub shmem_thp: u64,
    /// `FilePmdMapped`, bytes.
    pub file_thp: u64,
    /// `Shared_Hugetlb`, bytes.
    pub shared_hugetlb: u64,
    /// `Private_Hugetlb`, bytes.
    pub private_hugetlb: u64,
    /// `Swap`, bytes.
    pub swap: u64,
    /// `SwapPss`, bytes << [`PSS_SHIFT`].
    pub swap_pss: u64,
}

/// What one present (or migrating) page-table entry maps, as `smaps_account()` sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SmapsPage {
    /// Pages covered: 1 for a PTE, 512 for a PMD-mapped THP.
    pub nr_pages: u64,
    /// Mapped by a PMD (adds to `AnonHugePages`/`ShmemPmdMapped`/`FilePmdMapped`, as
    /// `smaps_pmd_entry()` does).
    pub pmd_mapped: bool,
    /// `folio_test_anon()`.
    pub anon: bool,
    /// `folio_test_swapbacked()` (anonymous pages are, until MADV_FREE clears it; shmem
    /// pages are).
    pub swapbacked: bool,
    /// `folio_test_ksm()`.
    pub ksm: bool,
    /// `pte_young() || folio_test_young() || folio_test_referenced()`.
    pub young: bool,
    /// `pte_dirty() || folio_test_dirty()`.
    pub dirty: bool,
    /// The entry is present (false for a migration entry: counted as "maybe shared").
    pub present: bool,
    /// `folio_ref_count() == 1`: mapped exactly once, no other reference.
    pub sole_reference: bool,
    /// `folio_precise_page_mapcount()` of each page (used when not `sole_reference`).
    pub mapcount: u32,
}

impl SmapsCounts {
    /// `smaps_page_accumulate()`.
    fn accumulate(&mut self, page: &SmapsPage, size: u64, pss: u64, private: bool) {
        self.pss = self.pss.wrapping_add(pss);
        if page.anon {
            self.pss_anon = self.pss_anon.wrapping_add(pss);
        } else if page.swapbacked {
            self.pss_shmem = self.pss_shmem.wrapping_add(pss);
        } else {
            self.pss_file = self.pss_file.wrapping_add(pss);
        }
        let field = if page.dirty {
            self.pss_dirty = self.pss_dirty.wrapping_add(pss);
            if private {
                &mut self.private_dirty
            } else {
                &mut self.shared_dirty
            }
        } else if private {
            &mut self.private_clean
        } else {
            &mut self.shared_clean
        };
        *field = field.wrapping_add(size);
    }

    /// Accounts one mapped page (or PMD-mapped folio) by `smaps_account()`'s rules. Callers
    /// must not report the shared zero page or PFN-mapped memory (Linux's
    /// `vm_normal_page()` yields no page for them, so they are not in Rss).
    pub fn account_page(&mut self, page: SmapsPage) {
        let nr = page.nr_pages.max(1);
        let size = nr.wrapping_mul(PAGE_SIZE);
        if page.pmd_mapped {
            let thp = if page.anon {
                &mut self.anonymous_thp
            } else if page.swapbacked {
                &mut self.shmem_thp
            } else {
                &mut self.file_thp
            };
            *thp = thp.wrapping_add(HPAGE_PMD_SIZE);
        }
        if page.anon {
            self.anonymous = self.anonymous.wrapping_add(size);
            if !page.swapbacked && !page.dirty {
                self.lazyfree = self.lazyfree.wrapping_add(size);
            }
        }
        if page.ksm {
            self.ksm = self.ksm.wrapping_add(size);
        }
        self.resident = self.resident.wrapping_add(size);
        if page.young {
            self.referenced = self.referenced.wrapping_add(size);
        }
        if page.sole_reference || !page.present {
            let private = page.present;
            self.accumulate(&page, size, size << PSS_SHIFT, private);
            return;
        }
        for _ in 0..nr {
            let mut pss = PAGE_SIZE << PSS_SHIFT;
            if page.mapcount >= 2 {
                pss /= u64::from(page.mapcount);
            }
            self.accumulate(&page, PAGE_SIZE, pss, page.mapcount < 2);
        }
    }

    /// Accounts one swap PTE whose swap slot has `swapcount` users (`swp_swapcount()`), as
    /// the swap branch of `smaps_pte_entry()` does.
    pub fn account_swap(&mut self, swapcount: u32) {
        self.swap = self.swap.wrapping_add(PAGE_SIZE);
        let mut pss = PAGE_SIZE << PSS_SHIFT;
        if swapcount >= 2 {
            pss /= u64::from(swapcount);
        }
        self.swap_pss = self.swap_pss.wrapping_add(pss);
    }

    /// Adds `other` field by field (what `smap_gather_stats()` does across VMAs for
    /// `smaps_rollup`).
    pub fn add(&mut self, o: &SmapsCounts) {
        macro_rules! sum {
            ($($f:ident),*) => { $( self.$f = self.$f.wrapping_add(o.$f); )* };
        }
        sum!(
            resident,
            pss,
            pss_dirty,
            pss_anon,
            pss_file,
            pss_shmem,
            shared_clean,
            shared_dirty,
            private_clean,
            private_dirty,
            referenced,
            anonymous,
            ksm,
            lazyfree,
            anonymous_thp,
            shmem_thp,
            file_thp,
            shared_hugetlb,
            private_hugetlb,
            swap,
            swap_pss
        );
    }
}

/// `vma_is_anonymous()` as Linux decides it: no `vm_ops`. Special mappings (`[vdso]`, ...)
/// have `vm_ops`; a private mapping of `/dev/zero` is made anonymous by `mmap_zero()`
/// (`vma_set_anonymous()`) although it keeps its `vm_file`.
fn linux_vma_is_anonymous(vma: &Vma) -> bool {
    match &vma.backing {
        Backing::Anonymous => !vma.name.as_deref().is_some_and(|n| n.starts_with('[')),
        Backing::File(f) => f.path == "/dev/zero" && !vma.flags.contains(VmFlags::MAYSHARE),
        Backing::Shmem { .. } | Backing::Device { .. } => false,
    }
}

/// `THPeligible:` — `thp_vma_allowable_orders(vma, vm_flags, TVA_SMAPS, THP_ORDERS_ALL) != 0`
/// for the host's settings: `transparent_hugepage/enabled` = `madvise` when
/// `cfg.thp_enabled` (`never` otherwise), only the PMD size (2 MiB) set to `inherit`, all
/// other mTHP sizes `never`, `shmem_enabled` = `never`, no DAX, no `READ_ONLY_THP_FOR_FS`
/// effect (a read-only file mapping with MADV_HUGEPAGE shows 0 on the host), no
/// `PR_SET_THP_DISABLE`.
///
/// Under those settings the chain of checks reduces to:
/// 1. an anonymous VMA only (`thp_vma_allowable_orders()` keeps the inherit PMD order only
///    with VM_HUGEPAGE; a file VMA fails the sysfs check without VM_HUGEPAGE and has no
///    `huge_fault`/`file_thp_enabled()` path with it; shmem gets no order from
///    `shmem_allowable_huge_orders()`);
/// 2. with a `vm_mm` (the gate VMA has none: pass `space = None`);
/// 3. not VM_NOHUGEPAGE (`vma_thp_disabled()`; MAP_STACK sets it);
/// 4. the VMA holds a naturally aligned 2 MiB block (`thp_vma_suitable_order()` at
///    `vm_end - HPAGE_PMD_SIZE`);
/// 5. a missing anon_vma does not matter for smaps.
pub fn thp_eligible(space: Option<&AddressSpace>, vma: &Vma) -> bool {
    let Some(space) = space else {
        return false;
    };
    if !space.config().thp_enabled || !linux_vma_is_anonymous(vma) {
        return false;
    }
    if !vma.flags.contains(VmFlags::HUGEPAGE) || vma.flags.contains(VmFlags::NOHUGEPAGE) {
        return false;
    }
    let Some(addr) = vma.end.checked_sub(HPAGE_PMD_SIZE) else {
        return false;
    };
    let haddr = addr & !(HPAGE_PMD_SIZE - 1);
    haddr >= vma.start && haddr.checked_add(HPAGE_PMD_SIZE).is_some_and(|e| e <= vma.end)
}

/// `seq_put_decimal_ull_width(m, label, bytes >> 10, width)` followed by `" kB\n"`.
fn kb<W: Write + ?Sized>(out: &mut W, label: &str, bytes: u64, width: usize) -> fmt::Result {
    writeln!(out, "{label}{:>width$} kB", bytes >> 10)
}

/// `__show_smap()`: the lines from `Rss:` to `Locked:`. `locked` is the VMA's (or for the
/// rollup, the sum over locked VMAs') `pss_locked`.
fn write_show_smap<W: Write + ?Sized>(
    out: &mut W,
    c: &SmapsCounts,
    pss_locked: u64,
    rollup: bool,
) -> fmt::Result {
    kb(out, "Rss:            ", c.resident, 8)?;
    kb(out, "Pss:            ", c.pss >> PSS_SHIFT, 8)?;
    kb(out, "Pss_Dirty:      ", c.pss_dirty >> PSS_SHIFT, 8)?;
    if rollup {
        kb(out, "Pss_Anon:       ", c.pss_anon >> PSS_SHIFT, 8)?;
        kb(out, "Pss_File:       ", c.pss_file >> PSS_SHIFT, 8)?;
        kb(out, "Pss_Shmem:      ", c.pss_shmem >> PSS_SHIFT, 8)?;
    }
    kb(out, "Shared_Clean:   ", c.shared_clean, 8)?;
    kb(out, "Shared_Dirty:   ", c.shared_dirty, 8)?;
    kb(out, "Private_Clean:  ", c.private_clean, 8)?;
    kb(out, "Private_Dirty:  ", c.private_dirty, 8)?;
    kb(out, "Referenced:     ", c.referenced, 8)?;
    kb(out, "Anonymous:      ", c.anonymous, 8)?;
    kb(out, "KSM:            ", c.ksm, 8)?;
    kb(out, "LazyFree:       ", c.lazyfree, 8)?;
    kb(out, "AnonHugePages:  ", c.anonymous_thp, 8)?;
    kb(out, "ShmemPmdMapped: ", c.shmem_thp, 8)?;
    kb(out, "FilePmdMapped:  ", c.file_thp, 8)?;
    kb(out, "Shared_Hugetlb: ", c.shared_hugetlb, 8)?;
    // Linux prints this one with width 7: its label is one character longer.
    kb(out, "Private_Hugetlb: ", c.private_hugetlb, 7)?;
    kb(out, "Swap:           ", c.swap, 8)?;
    kb(out, "SwapPss:        ", c.swap_pss >> PSS_SHIFT, 8)?;
    kb(out, "Locked:         ", pss_locked >> PSS_SHIFT, 8)
}

/// `pss_locked` of one VMA: its `pss` if VM_LOCKED, else 0 (see the module docs).
fn pss_locked(vma: &Vma, c: &SmapsCounts) -> u64 {
    if vma.flags.contains(VmFlags::LOCKED) {
        c.pss
    } else {
        0
    }
}

/// How [`write_smaps_with`] prints.
#[derive(Clone, Copy, Debug, Default)]
pub struct SmapsOptions<'a> {
    /// The gate VMA to list last (e.g. [`super::x86_64_vsyscall_gate`]); its counts are all
    /// zero, as it has no page tables in the mm.
    pub gate: Option<&'a Vma>,
    /// `arch_pkeys_enabled()`: print `ProtectionKey:` (bits 32..=35 of `vm_flags`, x86's
    /// `vma_pkey()`). False on the host (no PKU).
    pub pkeys_enabled: bool,
}

/// One smaps entry (`show_smap()`): the maps line, sizes, `__show_smap()`, `THPeligible`,
/// `ProtectionKey` (if enabled) and `VmFlags`. `space` is `None` for the gate VMA.
pub fn write_smaps_entry<W: Write + ?Sized>(
    space: Option<&AddressSpace>,
    vma: &Vma,
    counts: &SmapsCounts,
    pkeys_enabled: bool,
    out: &mut W,
) -> fmt::Result {
    write_maps_line(space, vma, out)?;
    kb(out, "Size:           ", vma.end.wrapping_sub(vma.start), 8)?;
    kb(out, "KernelPageSize: ", PAGE_SIZE, 8)?;
    kb(out, "MMUPageSize:    ", PAGE_SIZE, 8)?;
    write_show_smap(out, counts, pss_locked(vma, counts), false)?;
    writeln!(out, "THPeligible:    {:>8}", u32::from(thp_eligible(space, vma)))?;
    if pkeys_enabled {
        writeln!(out, "ProtectionKey:  {:>8}", (vma.flags.bits() >> 32) & 0xf)?;
    }
    out.write_str("VmFlags: ")?;
    write_vm_flags(vma.flags, out)?;
    out.write_char('\n')
}

/// `/proc/<pid>/smaps` of `space` (no gate VMA, no protection keys), with the per-VMA
/// figures from `counts`.
pub fn write_smaps<W: Write + ?Sized>(
    space: &AddressSpace,
    counts: impl Fn(&Vma) -> SmapsCounts,
    out: &mut W,
) -> fmt::Result {
    write_smaps_with(space, SmapsOptions::default(), counts, out)
}

/// `/proc/<pid>/smaps` of `space` with options (gate VMA, protection keys).
pub fn write_smaps_with<W: Write + ?Sized>(
    space: &AddressSpace,
    opts: SmapsOptions<'_>,
    counts: impl Fn(&Vma) -> SmapsCounts,
    out: &mut W,
) -> fmt::Result {
    for vma in space.vmas().iter() {
        write_smaps_entry(Some(space), vma, &counts(vma), opts.pkeys_enabled, out)?;
    }
    if let Some(g) = opts.gate {
        write_smaps_entry(None, g, &SmapsCounts::default(), opts.pkeys_enabled, out)?;
    }
    Ok(())
}

/// The smaps text as a `String`.
pub fn smaps_string(
    space: &AddressSpace,
    vsyscall: bool,
    counts: impl Fn(&Vma) -> SmapsCounts,
) -> alloc::string::String {
    let mut s = alloc::string::String::new();
    let gate = vsyscall.then(super::x86_64_vsyscall_gate);
    let opts = SmapsOptions { gate: gate.as_ref(), pkeys_enabled: false };
    // Writing into a String cannot fail.
    let _ = write_smaps_with(space, opts, counts, &mut s);
    s
}

/// `/proc/<pid>/smaps_rollup` (`show_smaps_rollup()`): a header spanning the first VMA's
/// start to the last VMA's end, printed by `show_vma_header_prefix()` with zero flags, device
/// and inode (`---p 00000000 00:00 0`) and padded like a maps name, then `[rollup]`, then
/// the summed figures with the `Pss_Anon`/`Pss_File`/`Pss_Shmem` lines. No gate VMA. With
/// no VMA at all the range is `00000000-00000000`.
pub fn write_smaps_rollup<W: Write + ?Sized>(
    space: &AddressSpace,
    counts: impl Fn(&Vma) -> SmapsCounts,
    out: &mut W,
) -> fmt::Result {
    let mut total = SmapsCounts::default();
    let mut locked = 0u64;
    let (mut first, mut last) = (0u64, 0u64);
    for (i, vma) in space.vmas().iter().enumerate() {
        if i == 0 {
            first = vma.start;
        }
        last = vma.end;
        let c = counts(vma);
        locked = locked.wrapping_add(pss_locked(vma, &c));
        total.add(&c);
    }
    let header = alloc::format!("{first:08x}-{last:08x} ---p 00000000 00:00 0 ");
    out.write_str(&header)?;
    for _ in header.len()..super::MAPS_NAME_COLUMN - 1 {
        out.write_char(' ')?;
    }
    out.write_str(" [rollup]\n")?;
    write_show_smap(out, &total, locked, true)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::MmConfig;
    use alloc::string::String;

    const RW: VmFlags = VmFlags::READ.union(VmFlags::WRITE);
    const MAY: VmFlags = VmFlags::MAYREAD.union(VmFlags::MAYWRITE).union(VmFlags::MAYEXEC);

    fn anon(start: u64, end: u64, flags: VmFlags) -> Vma {
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

    fn entry(sp: &AddressSpace, v: &Vma, c: &SmapsCounts) -> String {
        let mut s = String::new();
        write_smaps_entry(Some(sp), v, c, false, &mut s).unwrap();
        s
    }

    fn page(mapcount: u32, dirty: bool) -> SmapsPage {
        SmapsPage {
            nr_pages: 1,
            pmd_mapped: false,
            anon: true,
            swapbacked: true,
            ksm: false,
            young: true,
            dirty,
            present: true,
            sole_reference: mapcount == 1,
            mapcount,
        }
    }

    #[test]
    fn golden_locked_entry_from_host() {
        // From this host's smaps: 2 pages mmap(MAP_LOCKED), populated by the lock, one of
        // them written.
        let sp = AddressSpace::new(MmConfig::default());
        let v =
            anon(0x7f1c_8eb8_0000, 0x7f1c_8eb8_2000, RW | MAY | VmFlags::LOCKED | VmFlags::ACCOUNT);
        let mut c = SmapsCounts::default();
        c.account_page(page(1, true));
        c.account_page(page(1, true));
        assert_eq!(
            entry(&sp, &v, &c),
            "7f1c8eb80000-7f1c8eb82000 rw-p 00000000 00:00 0 \n\
             Size:                  8 kB\n\
             KernelPageSize:        4 kB\n\
             MMUPageSize:           4 kB\n\
             Rss:                   8 kB\n\
             Pss:                   8 kB\n\
             Pss_Dirty:             8 kB\n\
             Shared_Clean:          0 kB\n\
             Shared_Dirty:          0 kB\n\
             Private_Clean:         0 kB\n\
             Private_Dirty:         8 kB\n\
             Referenced:            8 kB\n\
             Anonymous:             8 kB\n\
             KSM:                   0 kB\n\
             LazyFree:              0 kB\n\
             AnonHugePages:         0 kB\n\
             ShmemPmdMapped:        0 kB\n\
             FilePmdMapped:         0 kB\n\
             Shared_Hugetlb:        0 kB\n\
             Private_Hugetlb:       0 kB\n\
             Swap:                  0 kB\n\
             SwapPss:               0 kB\n\
             Locked:                8 kB\n\
             THPeligible:           0\n\
             VmFlags: rd wr mr mw me lo ac \n"
        );
    }

    #[test]
    fn pss_is_fixed_point_like_linux() {
        // Three pages each mapped by 3 processes: Linux adds 4096<<12/3 three times and
        // truncates once: 4095 bytes -> 3 kB, not 3 * 1 kB rounded separately.
        let mut c = SmapsCounts::default();
        for _ in 0..3 {
            c.account_page(page(3, false));
        }
        assert_eq!(c.pss, 3 * ((4096u64 << 12) / 3));
        assert_eq!(c.pss >> PSS_SHIFT, 4095);
        assert_eq!(c.shared_clean, 3 * 4096);
        assert_eq!(c.private_clean, 0);
        // Mapcount 1 without being the sole reference is still private.
        let mut d = SmapsCounts::default();
        d.account_page(SmapsPage { sole_reference: false, ..page(1, true) });
        assert_eq!((d.private_dirty, d.pss >> PSS_SHIFT), (4096, 4096));
        // A migration entry counts as shared, full PSS.
        let mut m = SmapsCounts::default();
        m.account_page(SmapsPage { present: false, mapcount: 5, ..page(5, false) });
        assert_eq!((m.shared_clean, m.pss >> PSS_SHIFT), (4096, 4096));
        // Swap: SwapPss divides by the swap count.
        let mut s = SmapsCounts::default();
        s.account_swap(2);
        s.account_swap(1);
        assert_eq!((s.swap, s.swap_pss >> PSS_SHIFT), (8192, 6144));
        // MADV_FREE'd clean anonymous page: lazyfree.
        let mut l = SmapsCounts::default();
        l.account_page(SmapsPage { swapbacked: false, ..page(1, false) });
        assert_eq!(l.lazyfree, 4096);
        // A PMD-mapped anonymous THP.
        let mut t = SmapsCounts::default();
        t.account_page(SmapsPage { nr_pages: 512, pmd_mapped: true, ..page(1, true) });
        assert_eq!((t.anonymous_thp, t.resident, t.private_dirty), (2 << 20, 2 << 20, 2 << 20));
    }

    #[test]
    fn locked_is_pss_of_locked_vmas_only() {
        let sp = AddressSpace::new(MmConfig::default());
        let mut c = SmapsCounts::default();
        c.account_page(page(2, true));
        let locked = anon(0x1000_0000, 0x1000_1000, RW | MAY | VmFlags::LOCKED);
        let unlocked = anon(0x1000_0000, 0x1000_1000, RW | MAY);
        assert!(entry(&sp, &locked, &c).contains("\nLocked:                2 kB\n"));
        assert!(entry(&sp, &unlocked, &c).contains("\nLocked:                0 kB\n"));
    }

    #[test]
    fn thp_eligibility_follows_madvise_mode() {
        let sp = AddressSpace::new(MmConfig::default());
        let hg = RW | MAY | VmFlags::ACCOUNT | VmFlags::HUGEPAGE;
        // Observed on the host: a 4 MiB 2 MiB-aligned VMA with MADV_HUGEPAGE is eligible...
        assert!(thp_eligible(Some(&sp), &anon(0x7f1c_8e60_0000, 0x7f1c_8ea0_0000, hg)));
        // ...a 2 MiB VMA starting one page past a 2 MiB boundary is not...
        assert!(!thp_eligible(Some(&sp), &anon(0x7f1c_8e20_1000, 0x7f1c_8e40_1000, hg)));
        // ...nor one without VM_HUGEPAGE, nor one with VM_NOHUGEPAGE.
        let plain = anon(0x7f1c_8e60_0000, 0x7f1c_8ea0_0000, RW | MAY);
        assert!(!thp_eligible(Some(&sp), &plain));
        let nh = anon(0x7f1c_8e60_0000, 0x7f1c_8ea0_0000, hg | VmFlags::NOHUGEPAGE);
        assert!(!thp_eligible(Some(&sp), &nh));
        // No mm (gate VMA), THP off, a special mapping: never.
        assert!(!thp_eligible(None, &anon(0x20_0000, 0x40_0000, hg)));
        let off = AddressSpace::new(MmConfig { thp_enabled: false, ..MmConfig::default() });
        assert!(!thp_eligible(Some(&off), &anon(0x20_0000, 0x40_0000, hg)));
        let mut vdso = anon(0x20_0000, 0x40_0000, hg);
        vdso.name = Some(alloc::sync::Arc::from("[vdso]"));
        assert!(!thp_eligible(Some(&sp), &vdso));
        // An exactly aligned 2 MiB VMA is eligible; a shmem one is not.
        assert!(thp_eligible(Some(&sp), &anon(0x20_0000, 0x40_0000, hg)));
        let mut sh = anon(0x20_0000, 0x40_0000, hg | VmFlags::SHARED | VmFlags::MAYSHARE);
        sh.backing = Backing::shmem_unsized(3);
        assert!(!thp_eligible(Some(&sp), &sh));
    }

    #[test]
    fn rollup_header_and_pss_lines() {
        let mut sp = AddressSpace::new(MmConfig::default());
        let mut s = String::new();
        write_smaps_rollup(&sp, |_| SmapsCounts::default(), &mut s).unwrap();
        // The name starts at column 73, as in maps.
        let head =
            alloc::format!("{:<73}[rollup]\nRss:", "00000000-00000000 ---p 00000000 00:00 0");
        assert!(s.starts_with(&head), "{s}");
        sp.insert_vma_unmerged(anon(0x40_0000, 0x40_2000, RW | MAY | VmFlags::LOCKED)).unwrap();
        sp.insert_vma_unmerged(anon(0x50_0000, 0x50_1000, RW | MAY)).unwrap();
        let mut c = SmapsCounts::default();
        c.account_page(page(1, true));
        let mut s = String::new();
        write_smaps_rollup(&sp, |_| c, &mut s).unwrap();
        let mut want =
            alloc::format!("{:<73}[rollup]\n", "00400000-00501000 ---p 00000000 00:00 0");
        want += "Rss:                   8 kB\nPss:                   8 kB\n";
        want += "Pss_Dirty:             8 kB\nPss_Anon:              8 kB\n";
        want += "Pss_File:              0 kB\nPss_Shmem:             0 kB\n";
        assert!(s.starts_with(&want), "{s}");
        assert!(s.ends_with("SwapPss:               0 kB\nLocked:                4 kB\n"));
    }

    #[test]
    fn gate_entry_and_pkeys() {
        let sp = AddressSpace::new(MmConfig::default());
        let s = smaps_string(&sp, true, |_| SmapsCounts::default());
        assert!(s.starts_with(
            "ffffffffff600000-ffffffffff601000 --xp 00000000 00:00 0                  [vsyscall]\nSize:                  4 kB\n"
        ));
        assert!(
            s.ends_with("Locked:                0 kB\nTHPeligible:           0\nVmFlags: ex \n")
        );
        let v = anon(0x1000, 0x2000, VmFlags::READ | VmFlags::from_bits_retain(5 << 32));
        let mut p = String::new();
        write_smaps_entry(Some(&sp), &v, &SmapsCounts::default(), true, &mut p).unwrap();
        assert!(p.ends_with("THPeligible:           0\nProtectionKey:         5\nVmFlags: rd \n"));
    }
}
