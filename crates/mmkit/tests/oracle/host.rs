//! The host side of the oracle: raw x86-64 Linux syscalls (no libc, so nothing but the test's
//! own calls touches the window) and readers for the host's `/proc` state.

use std::arch::asm;

use mmkit::config::{MmConfig, OvercommitMode};
use mmkit::Errno;

/// x86-64 syscall numbers (arch/x86/entry/syscalls/syscall_64.tbl).
pub mod nr {
    pub const MMAP: u64 = 9;
    pub const MPROTECT: u64 = 10;
    pub const MUNMAP: u64 = 11;
    pub const MREMAP: u64 = 25;
    pub const MSYNC: u64 = 26;
    pub const MADVISE: u64 = 28;
    pub const GETRLIMIT: u64 = 97;
    pub const GETEUID: u64 = 107;
    pub const MLOCK: u64 = 149;
    pub const MUNLOCK: u64 = 150;
    pub const MLOCKALL: u64 = 151;
    pub const MUNLOCKALL: u64 = 152;
    pub const MLOCK2: u64 = 325;
    pub const CAPGET: u64 = 125;
    pub const CAPSET: u64 = 126;
    pub const SETRLIMIT: u64 = 160;
}

/// Issues a raw `syscall` instruction with six arguments and returns `rax` unchanged.
///
/// # Safety
/// The caller must make sure the call cannot change memory the program relies on: the oracle
/// only passes ranges that its safety filter (`gen::host_safe`) proved to lie inside the
/// private window, or arguments that make the kernel fail before it touches anything.
#[inline(never)]
pub unsafe fn syscall6(n: u64, a1: u64, a2: u64, a3: u64, a4: u64, a5: u64, a6: u64) -> u64 {
    let ret: u64;
    // SAFETY: the x86-64 Linux syscall ABI: number in rax, arguments in rdi, rsi, rdx, r10,
    // r8, r9; the kernel clobbers rcx and r11 and returns in rax. Memory effects are the
    // caller's responsibility (see the function's safety section).
    unsafe {
        asm!(
            "syscall",
            inlateout("rax") n => ret,
            in("rdi") a1,
            in("rsi") a2,
            in("rdx") a3,
            in("r10") a4,
            in("r8") a5,
            in("r9") a6,
            lateout("rcx") _,
            lateout("r11") _,
            options(nostack),
        );
    }
    ret
}

/// Decodes a raw return value as `Errno::from_syscall_return` does (`IS_ERR_VALUE`).
pub fn decode(ret: u64) -> Result<u64, Errno> {
    Errno::from_syscall_return(ret)
}

/// `geteuid()`.
pub fn geteuid() -> u64 {
    // SAFETY: geteuid has no arguments and no memory effects.
    unsafe { syscall6(nr::GETEUID, 0, 0, 0, 0, 0, 0) }
}

/// `getrlimit(resource)`: the soft limit (`RLIM_INFINITY` is `u64::MAX`, as in MmConfig).
pub fn getrlimit_soft(resource: u64) -> u64 {
    let mut lim = [0u64; 2];
    // SAFETY: the kernel writes exactly one `struct rlimit` (two u64) to the pointer, which
    // points at a live, writable local array of that size.
    let ret = unsafe { syscall6(nr::GETRLIMIT, resource, lim.as_mut_ptr() as u64, 0, 0, 0, 0) };
    assert_eq!(ret, 0, "getrlimit({resource}) failed: {:?}", decode(ret));
    lim[0]
}

/// RLIMIT_* numbers (include/uapi/asm-generic/resource.h).
pub const RLIMIT_DATA: u64 = 2;
/// RLIMIT_STACK.
pub const RLIMIT_STACK: u64 = 3;
/// RLIMIT_MEMLOCK.
pub const RLIMIT_MEMLOCK: u64 = 8;
/// RLIMIT_AS.
pub const RLIMIT_AS: u64 = 9;

fn read_sysctl(path: &str) -> Option<u64> {
    std::fs::read_to_string(path).ok()?.trim().parse().ok()
}

fn meminfo_kb(key: &str) -> Option<u64> {
    let text = std::fs::read_to_string("/proc/meminfo").ok()?;
    text.lines()
        .find(|l| l.starts_with(key) && l[key.len()..].starts_with(':'))
        .and_then(|l| l[key.len() + 1..].trim().trim_end_matches("kB").trim().parse().ok())
}

/// An `MmConfig` describing this test process as the host kernel sees it: its effective
/// capabilities (CAP_SYS_RAWIO, CAP_IPC_LOCK; root has both), its rlimits, and the host's
/// `/proc/sys/vm` tunables, RAM and swap (for the overcommit heuristic) and THP mode.
pub fn host_config() -> MmConfig {
    let mut cfg = MmConfig::default();
    // CapEff of /proc/self/status (root in a container may lack some); euid 0 as fallback.
    let cap_eff = std::fs::read_to_string("/proc/self/status").ok().and_then(|t| {
        t.lines()
            .find_map(|l| l.strip_prefix("CapEff:"))
            .and_then(|v| u64::from_str_radix(v.trim(), 16).ok())
    });
    let has_cap = |bit: u32| cap_eff.map_or(geteuid() == 0, |c| c & (1 << bit) != 0);
    cfg.cap_sys_rawio = has_cap(17); // CAP_SYS_RAWIO
    cfg.cap_ipc_lock = has_cap(14); // CAP_IPC_LOCK
    cfg.rlimit_memlock = getrlimit_soft(RLIMIT_MEMLOCK);
    cfg.rlimit_data = getrlimit_soft(RLIMIT_DATA);
    cfg.rlimit_as = getrlimit_soft(RLIMIT_AS);
    cfg.rlimit_stack = getrlimit_soft(RLIMIT_STACK);
    cfg.mmap_base =
        MmConfig::compute_mmap_base(cfg.task_size, cfg.rlimit_stack, cfg.stack_guard_gap);
    if let Some(v) = read_sysctl("/proc/sys/vm/max_map_count") {
        cfg.max_map_count = v as usize;
    }
    if let Some(v) = read_sysctl("/proc/sys/vm/mmap_min_addr") {
        cfg.mmap_min_addr = v;
    }
    if let Some(v) = read_sysctl("/proc/sys/vm/overcommit_memory") {
        cfg.overcommit = match v {
            1 => OvercommitMode::Always,
            2 => OvercommitMode::Never,
            _ => OvercommitMode::Heuristic,
        };
    }
    if let Some(v) = read_sysctl("/proc/sys/vm/overcommit_ratio") {
        cfg.overcommit_ratio = v;
    }
    if let Some(kb) = meminfo_kb("MemTotal") {
        cfg.total_ram_pages = kb / 4;
    }
    if let Some(kb) = meminfo_kb("SwapTotal") {
        cfg.total_swap_pages = kb / 4;
    }
    if let Ok(t) = std::fs::read_to_string("/sys/kernel/mm/transparent_hugepage/enabled") {
        cfg.thp_enabled = !t.contains("[never]");
    }
    cfg
}

/// One VMA as `/proc/self/smaps` shows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HostVma {
    pub start: u64,
    pub end: u64,
    pub perms: String,
    pub offset: u64,
    pub name: String,
    /// The two-letter codes of the `VmFlags:` line, in the kernel's (bit) order.
    pub flags: Vec<String>,
}

fn parse_header(line: &str) -> Option<HostVma> {
    let mut it = line.split_whitespace();
    let range = it.next()?;
    let (s, e) = range.split_once('-')?;
    let start = u64::from_str_radix(s, 16).ok()?;
    let end = u64::from_str_radix(e, 16).ok()?;
    let perms = it.next()?.to_string();
    if perms.len() != 4 {
        return None;
    }
    let offset = u64::from_str_radix(it.next()?, 16).ok()?;
    let _dev = it.next()?;
    let _ino = it.next()?;
    let name = it.collect::<Vec<_>>().join(" ");
    Some(HostVma { start, end, perms, offset, name, flags: Vec::new() })
}

/// The host VMAs intersecting `[lo, hi)`, with their VmFlags, from `/proc/self/smaps`.
pub fn host_vmas(lo: u64, hi: u64) -> Vec<HostVma> {
    let text = std::fs::read_to_string("/proc/self/smaps").expect("read /proc/self/smaps");
    let mut out: Vec<HostVma> = Vec::new();
    let mut keep = false;
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("VmFlags:") {
            if keep {
                if let Some(v) = out.last_mut() {
                    v.flags = rest.split_whitespace().map(str::to_string).collect();
                }
            }
            continue;
        }
        if let Some(v) = parse_header(line) {
            keep = v.start < hi && v.end > lo;
            if keep {
                out.push(v);
            }
        }
    }
    out
}

/// `munmap` on the host for cleanup of mappings the oracle itself created.
pub fn munmap(addr: u64, len: u64) -> Result<u64, Errno> {
    // SAFETY: only called on ranges of mappings created by the oracle's own calls (inside
    // the private window, or at an address the kernel just returned for one of them).
    decode(unsafe { syscall6(nr::MUNMAP, addr, len, 0, 0, 0, 0) })
}

/// The `/proc/self/status` counters the oracle compares, in kB: VmLck (`locked_vm`), VmStk
/// (`stack_vm`) and VmExe + VmLib (`exec_vm`). VmSize and VmData are left out: the test
/// process's own heap (brk) moves them while the oracle runs.
pub fn status_counters() -> [u64; 3] {
    let text = std::fs::read_to_string("/proc/self/status").expect("read /proc/self/status");
    let get = |key: &str| -> u64 {
        text.lines()
            .find_map(|l| l.strip_prefix(key))
            .and_then(|r| r.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap_or_else(|| panic!("no {key} in /proc/self/status"))
    };
    [get("VmLck:"), get("VmStk:"), get("VmExe:") + get("VmLib:")]
}

/// `setrlimit(resource, {soft, hard})`.
pub fn setrlimit(resource: u64, soft: u64, hard: u64) -> Result<u64, Errno> {
    let lim = [soft, hard];
    // SAFETY: the kernel reads one `struct rlimit` (two u64) from a live local array.
    decode(unsafe { syscall6(nr::SETRLIMIT, resource, lim.as_ptr() as u64, 0, 0, 0, 0) })
}

/// The hard RLIMIT_MEMLOCK.
pub fn memlock_hard() -> u64 {
    let mut lim = [0u64; 2];
    // SAFETY: as in `getrlimit_soft`.
    let ret =
        unsafe { syscall6(nr::GETRLIMIT, RLIMIT_MEMLOCK, lim.as_mut_ptr() as u64, 0, 0, 0, 0) };
    assert_eq!(ret, 0, "getrlimit(RLIMIT_MEMLOCK)");
    lim[1]
}

/// `_LINUX_CAPABILITY_VERSION_3`.
const CAP_V3: u32 = 0x2008_0522;
/// CAP_IPC_LOCK.
pub const CAP_IPC_LOCK: u32 = 14;

/// Sets or clears one capability in the calling thread's effective set (capabilities are
/// per thread in Linux, so this affects only the test's own thread). Returns whether the
/// capability was effective before.
pub fn set_effective_cap(cap: u32, on: bool) -> bool {
    let mut hdr = [CAP_V3, 0u32]; // version, pid 0 = this thread
    let mut data = [0u32; 6]; // 2 x {effective, permitted, inheritable}
                              // SAFETY: capget writes two `__user_cap_data_struct` (6 u32) into `data` and may write
                              // the version into `hdr`; both are live local arrays of those sizes.
    let r = unsafe {
        syscall6(nr::CAPGET, hdr.as_mut_ptr() as u64, data.as_mut_ptr() as u64, 0, 0, 0, 0)
    };
    assert_eq!(decode(r), Ok(0), "capget");
    let (word, bit) = ((cap / 32) as usize * 3, cap % 32);
    let was = data[word] & (1 << bit) != 0;
    if on {
        data[word] |= 1 << bit;
    } else {
        data[word] &= !(1 << bit);
    }
    hdr = [CAP_V3, 0];
    // SAFETY: capset only reads the header and the two data structs from live local arrays.
    let r =
        unsafe { syscall6(nr::CAPSET, hdr.as_mut_ptr() as u64, data.as_ptr() as u64, 0, 0, 0, 0) };
    assert_eq!(decode(r), Ok(0), "capset");
    was
}

/// VmLck of this process in bytes.
pub fn locked_bytes() -> u64 {
    status_counters()[0] * 1024
}
