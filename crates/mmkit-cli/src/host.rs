//! Host defaults for the modelled address space: the sysctls of `/proc/sys/vm` and the machine
//! size of `/proc/meminfo`, read when running on Linux (missing or unreadable files leave
//! mmkit's built-in Linux defaults in place).

use mmkit::config::OvercommitMode;
use mmkit::{MmConfig, PAGE_SIZE};

fn read_u64(path: &str) -> Option<u64> {
    std::fs::read_to_string(path).ok()?.trim().parse().ok()
}

/// `MemTotal:` / `SwapTotal:` of a meminfo text, in kB.
pub fn meminfo_kb(text: &str, key: &str) -> Option<u64> {
    text.lines().find_map(|l| {
        let rest = l.strip_prefix(key)?.strip_prefix(':')?;
        rest.split_whitespace().next()?.parse().ok()
    })
}

/// `vm.overcommit_memory` as a mode.
pub fn overcommit_mode(v: u64) -> Option<OvercommitMode> {
    match v {
        0 => Some(OvercommitMode::Heuristic),
        1 => Some(OvercommitMode::Always),
        2 => Some(OvercommitMode::Never),
        _ => None,
    }
}

/// `cfg` with the host's values where it has them.
pub fn apply_host_defaults(mut cfg: MmConfig) -> MmConfig {
    if !cfg!(target_os = "linux") {
        return cfg;
    }
    if let Some(v) = read_u64("/proc/sys/vm/max_map_count") {
        cfg.max_map_count = v as usize;
    }
    if let Some(v) = read_u64("/proc/sys/vm/mmap_min_addr") {
        cfg.mmap_min_addr = v;
    }
    if let Some(m) = read_u64("/proc/sys/vm/overcommit_memory").and_then(overcommit_mode) {
        cfg.overcommit = m;
    }
    if let Some(v) = read_u64("/proc/sys/vm/overcommit_ratio") {
        cfg.overcommit_ratio = v;
    }
    if let Ok(text) = std::fs::read_to_string("/proc/meminfo") {
        if let Some(kb) = meminfo_kb(&text, "MemTotal") {
            cfg.total_ram_pages = kb.saturating_mul(1024) / PAGE_SIZE;
        }
        if let Some(kb) = meminfo_kb(&text, "SwapTotal") {
            cfg.total_swap_pages = kb.saturating_mul(1024) / PAGE_SIZE;
        }
    }
    if let Ok(t) = std::fs::read_to_string("/sys/kernel/mm/transparent_hugepage/enabled") {
        cfg.thp_enabled = !t.contains("[never]");
    }
    cfg
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn meminfo_parsing() {
        let t = "MemTotal:       24684092 kB\nMemFree:        24341304 kB\nSwapTotal:             0 kB\n";
        assert_eq!(meminfo_kb(t, "MemTotal"), Some(24684092));
        assert_eq!(meminfo_kb(t, "SwapTotal"), Some(0));
        assert_eq!(meminfo_kb(t, "Mem"), None);
        assert_eq!(overcommit_mode(2), Some(OvercommitMode::Never));
        assert_eq!(overcommit_mode(3), None);
    }
}
