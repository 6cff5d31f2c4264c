//! The state the oracle compares: for each VMA in the free region, its range, `rwxp/s`
//! permissions, maps offset and the `VmFlags:` codes of smaps.

use std::fmt;

use mmkit::{AddressSpace, VmFlags};

use super::host;

/// `show_smap_vma_flags()` (fs/proc/task_mmu.c): the two-letter code of each VM_* bit, in
/// bit order, with the bit values of x86-64 Linux 6.18 (as `mmkit::VmFlags` defines them).
pub const FLAG_CODES: &[(VmFlags, &str)] = &[
    (VmFlags::READ, "rd"),
    (VmFlags::WRITE, "wr"),
    (VmFlags::EXEC, "ex"),
    (VmFlags::SHARED, "sh"),
    (VmFlags::MAYREAD, "mr"),
    (VmFlags::MAYWRITE, "mw"),
    (VmFlags::MAYEXEC, "me"),
    (VmFlags::MAYSHARE, "ms"),
    (VmFlags::GROWSDOWN, "gd"),
    (VmFlags::UFFD_MISSING, "um"),
    (VmFlags::PFNMAP, "pf"),
    (VmFlags::MAYBE_GUARD, "gu"),
    (VmFlags::UFFD_WP, "uw"),
    (VmFlags::LOCKED, "lo"),
    (VmFlags::IO, "io"),
    (VmFlags::SEQ_READ, "sr"),
    (VmFlags::RAND_READ, "rr"),
    (VmFlags::DONTCOPY, "dc"),
    (VmFlags::DONTEXPAND, "de"),
    (VmFlags::LOCKONFAULT, "lf"),
    (VmFlags::ACCOUNT, "ac"),
    (VmFlags::NORESERVE, "nr"),
    (VmFlags::HUGETLB, "ht"),
    (VmFlags::SYNC, "sf"),
    (VmFlags::ARCH_1, "ar"),
    (VmFlags::WIPEONFORK, "wf"),
    (VmFlags::DONTDUMP, "dd"),
    (VmFlags::SOFTDIRTY, "sd"),
    (VmFlags::MIXEDMAP, "mm"),
    (VmFlags::HUGEPAGE, "hg"),
    (VmFlags::NOHUGEPAGE, "nh"),
    (VmFlags::MERGEABLE, "mg"),
    (VmFlags::DROPPABLE, "dp"),
];

/// Sorts codes into `show_smap_vma_flags()` order (unknown codes last, alphabetically), so
/// two lists compare independent of how they were produced.
fn canonical(mut codes: Vec<String>) -> Vec<String> {
    let rank = |c: &str| {
        FLAG_CODES
            .iter()
            .find(|(b, n)| *n == c && !b.is_empty())
            .map(|(b, _)| b.bits().trailing_zeros() as u64)
            .unwrap_or(u64::MAX)
    };
    codes.sort_by(|a, b| rank(a).cmp(&rank(b)).then(a.cmp(b)));
    codes
}

/// The smaps codes of a model VMA's flags; bits without a code print as `??`, as Linux does.
pub fn model_codes(flags: VmFlags) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = flags;
    for &(b, n) in FLAG_CODES {
        if flags.contains(b) {
            out.push(n.to_string());
            rest.remove(b);
        }
    }
    for i in 0..64 {
        if rest.bits() & (1 << i) != 0 {
            out.push("??".to_string());
        }
    }
    canonical(out)
}

/// One VMA as compared.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    pub start: u64,
    pub end: u64,
    pub perms: String,
    pub offset: u64,
    pub codes: Vec<String>,
}

impl fmt::Display for Entry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{:x}-{:x} {} {:08x} [{}]",
            self.start,
            self.end,
            self.perms,
            self.offset,
            self.codes.join(" ")
        )
    }
}

/// The VMAs of one side intersecting the free region.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct Snapshot(pub Vec<Entry>);

impl fmt::Display for Snapshot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_empty() {
            return writeln!(f, "    (no VMAs)");
        }
        for e in &self.0 {
            writeln!(f, "    {e}")?;
        }
        Ok(())
    }
}

pub fn host_snapshot(lo: u64, hi: u64) -> Snapshot {
    Snapshot(
        host::host_vmas(lo, hi)
            .into_iter()
            .map(|v| Entry {
                start: v.start,
                end: v.end,
                perms: v.perms,
                offset: v.offset,
                codes: canonical(v.flags),
            })
            .collect(),
    )
}

/// The model's VMAs in `[lo, hi)`, printed the way `show_map_vma()` prints them: the offset
/// is `vm_pgoff << PAGE_SHIFT` only for VMAs with a file (shmem included), else 0.
pub fn model_snapshot(space: &AddressSpace, lo: u64, hi: u64) -> Snapshot {
    Snapshot(
        space
            .vmas()
            .iter()
            .filter(|v| v.start < hi && v.end > lo)
            .map(|v| {
                let fl = v.flags;
                let perms: String = [
                    if fl.contains(VmFlags::READ) { 'r' } else { '-' },
                    if fl.contains(VmFlags::WRITE) { 'w' } else { '-' },
                    if fl.contains(VmFlags::EXEC) { 'x' } else { '-' },
                    if fl.contains(VmFlags::MAYSHARE) { 's' } else { 'p' },
                ]
                .iter()
                .collect();
                Entry {
                    start: v.start,
                    end: v.end,
                    perms,
                    offset: if v.backing.has_file() { v.pgoff << 12 } else { 0 },
                    codes: model_codes(fl),
                }
            })
            .collect(),
    )
}

/// A short, stable description of the first difference (used to group mismatches).
pub fn diff_kind(host: &Snapshot, model: &Snapshot) -> Option<String> {
    if host == model {
        return None;
    }
    let ranges = |s: &Snapshot| s.0.iter().map(|e| (e.start, e.end)).collect::<Vec<_>>();
    if ranges(host) != ranges(model) {
        let hn = host.0.len();
        let mn = model.0.len();
        return Some(if hn != mn {
            format!("VMA boundaries differ (host {hn} VMAs, model {mn})")
        } else {
            "VMA boundaries differ (same count)".to_string()
        });
    }
    for (h, m) in host.0.iter().zip(&model.0) {
        if h.perms != m.perms {
            return Some(format!("perms host {} model {}", h.perms, m.perms));
        }
        if h.offset != m.offset {
            return Some("maps offset differs".to_string());
        }
        if h.codes != m.codes {
            let only_h: Vec<&str> =
                h.codes.iter().filter(|c| !m.codes.contains(c)).map(|s| s.as_str()).collect();
            let only_m: Vec<&str> =
                m.codes.iter().filter(|c| !h.codes.contains(c)).map(|s| s.as_str()).collect();
            return Some(format!(
                "VmFlags: host-only [{}] model-only [{}]",
                only_h.join(" "),
                only_m.join(" ")
            ));
        }
    }
    Some("snapshots differ".to_string())
}
