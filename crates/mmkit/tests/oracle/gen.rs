//! Random memory-syscall sequences for the oracle, the filter that keeps them from harming
//! the test process, and their strace-like rendering.

use std::fmt;

/// Page size.
pub const PAGE: u64 = 4096;
/// `TASK_SIZE` of an x86-64 4-level process.
pub const TASK_SIZE: u64 = (1 << 47) - PAGE;
/// Pages of the window that generated addresses aim at.
pub const WIN_PAGES: u64 = 48;
/// Pages around the window that generated addresses may still reach.
pub const SLOP_PAGES: u64 = 8;
/// Pages on each side of the window inside which every effect of a call must stay (ranges
/// here may be populated: never more than `WIN_PAGES + 2 * SAFE_MARGIN` pages).
pub const SAFE_MARGIN: u64 = 64;
/// Size of the free region checked around the window (huge, never-populated mappings made
/// at a hint in the window must fit here on both sides for the host to honour them).
pub const FREE_HALF: u64 = 1 << 44;

/// The addresses the oracle works in.
#[derive(Clone, Copy, Debug)]
pub struct Geometry {
    /// First byte of the window.
    pub win: u64,
}

impl Geometry {
    pub fn win_end(&self) -> u64 {
        self.win + WIN_PAGES * PAGE
    }
    /// Where effects of a call may land: the window plus its safety margin.
    pub fn safe(&self) -> (u64, u64) {
        (self.win - SAFE_MARGIN * PAGE, self.win_end() + SAFE_MARGIN * PAGE)
    }
    /// The free region (checked free on the host before the run) whose VMAs are compared.
    pub fn free(&self) -> (u64, u64) {
        (self.win - FREE_HALF, self.win + FREE_HALF)
    }
    pub fn in_free(&self, addr: u64) -> bool {
        let (lo, hi) = self.free();
        addr >= lo && addr < hi
    }
    fn range_safe(&self, start: u64, end: u64) -> bool {
        let (lo, hi) = self.safe();
        start >= lo && end <= hi && start <= end
    }
}

/// A small deterministic xorshift64* generator.
#[derive(Clone, Debug)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        // splitmix64 of the seed, so that neighbouring seeds diverge at once.
        let mut z = seed.wrapping_add(0x9e37_79b9_7f4a_7c15);
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        Rng((z ^ (z >> 31)) | 1)
    }
    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    /// Uniform in `0..n` (n > 0).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n
    }
    /// True with probability `pct` percent.
    pub fn pct(&mut self, pct: u64) -> bool {
        self.below(100) < pct
    }
    pub fn pick<T: Copy>(&mut self, xs: &[T]) -> T {
        xs[self.below(xs.len() as u64) as usize]
    }
}

// include/uapi/asm-generic/mman-common.h, mman.h and arch/x86 values.
pub const PROT_READ: u64 = 0x1;
pub const PROT_WRITE: u64 = 0x2;
pub const PROT_EXEC: u64 = 0x4;
pub const PROT_SEM: u64 = 0x8;
pub const PROT_GROWSDOWN: u64 = 0x0100_0000;
pub const PROT_GROWSUP: u64 = 0x0200_0000;

pub const MAP_SHARED: u64 = 0x01;
pub const MAP_PRIVATE: u64 = 0x02;
pub const MAP_SHARED_VALIDATE: u64 = 0x03;
pub const MAP_DROPPABLE: u64 = 0x08;
pub const MAP_FIXED: u64 = 0x10;
pub const MAP_ANONYMOUS: u64 = 0x20;
pub const MAP_32BIT: u64 = 0x40;
pub const MAP_GROWSDOWN: u64 = 0x100;
pub const MAP_DENYWRITE: u64 = 0x800;
pub const MAP_EXECUTABLE: u64 = 0x1000;
pub const MAP_LOCKED: u64 = 0x2000;
pub const MAP_NORESERVE: u64 = 0x4000;
pub const MAP_POPULATE: u64 = 0x8000;
pub const MAP_NONBLOCK: u64 = 0x10000;
pub const MAP_STACK: u64 = 0x20000;
pub const MAP_SYNC: u64 = 0x80000;
pub const MAP_FIXED_NOREPLACE: u64 = 0x100000;
pub const MAP_UNINITIALIZED: u64 = 0x4000000;

pub const MREMAP_MAYMOVE: u64 = 1;
pub const MREMAP_FIXED: u64 = 2;
pub const MREMAP_DONTUNMAP: u64 = 4;

pub const MS_ASYNC: u64 = 1;
pub const MS_INVALIDATE: u64 = 2;
pub const MS_SYNC: u64 = 4;

pub const MLOCK_ONFAULT: u64 = 1;
pub const MCL_CURRENT: u64 = 1;
pub const MCL_FUTURE: u64 = 2;
pub const MCL_ONFAULT: u64 = 4;

/// Every `MADV_*` value Linux 6.18 knows, with its name (MADV_HWPOISON and
/// MADV_SOFT_OFFLINE are left out on purpose: as root they would poison or offline real
/// host pages).
pub const ADVICE: &[(u64, &str)] = &[
    (0, "MADV_NORMAL"),
    (1, "MADV_RANDOM"),
    (2, "MADV_SEQUENTIAL"),
    (3, "MADV_WILLNEED"),
    (4, "MADV_DONTNEED"),
    (8, "MADV_FREE"),
    (9, "MADV_REMOVE"),
    (10, "MADV_DONTFORK"),
    (11, "MADV_DOFORK"),
    (12, "MADV_MERGEABLE"),
    (13, "MADV_UNMERGEABLE"),
    (14, "MADV_HUGEPAGE"),
    (15, "MADV_NOHUGEPAGE"),
    (16, "MADV_DONTDUMP"),
    (17, "MADV_DODUMP"),
    (18, "MADV_WIPEONFORK"),
    (19, "MADV_KEEPONFORK"),
    (20, "MADV_COLD"),
    (21, "MADV_PAGEOUT"),
    (22, "MADV_POPULATE_READ"),
    (23, "MADV_POPULATE_WRITE"),
    (24, "MADV_DONTNEED_LOCKED"),
    (25, "MADV_COLLAPSE"),
    (102, "MADV_GUARD_INSTALL"),
    (103, "MADV_GUARD_REMOVE"),
];
pub const MADV_POPULATE_WRITE: u64 = 23;

/// Placeholder descriptors in generated `mmap` calls, replaced at run time by real ones
/// (`run::Files`): a regular file opened read-only, read-write and write-only, `/dev/zero`,
/// an `O_PATH` descriptor and a directory. Any other value is not an open descriptor.
pub const FD_SLOTS: [(u64, &str); 6] = [
    (1_000_001, "file-ro"),
    (1_000_002, "file-rw"),
    (1_000_003, "file-wo"),
    (1_000_004, "/dev/zero"),
    (1_000_005, "O_PATH"),
    (1_000_006, "dir"),
];

/// One memory syscall with raw register arguments.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Op {
    Mmap {
        addr: u64,
        len: u64,
        prot: u64,
        flags: u64,
        fd: u64,
        off: u64,
    },
    Munmap {
        addr: u64,
        len: u64,
    },
    Mprotect {
        addr: u64,
        len: u64,
        prot: u64,
    },
    Mremap {
        addr: u64,
        old_len: u64,
        new_len: u64,
        flags: u64,
        new_addr: u64,
    },
    Madvise {
        addr: u64,
        len: u64,
        advice: u64,
    },
    Mlock {
        addr: u64,
        len: u64,
    },
    Mlock2 {
        addr: u64,
        len: u64,
        flags: u64,
    },
    Munlock {
        addr: u64,
        len: u64,
    },
    Mlockall {
        flags: u64,
    },
    Munlockall,
    Msync {
        addr: u64,
        len: u64,
        flags: u64,
    },
    /// A one-byte user write (host: a volatile store when the page is mapped writable;
    /// model: `AddressSpace::write_fault`). See `run::run_host` for when it is skipped.
    Touch {
        addr: u64,
    },
}

impl Op {
    pub fn name(&self) -> &'static str {
        match self {
            Op::Mmap { .. } => "mmap",
            Op::Munmap { .. } => "munmap",
            Op::Mprotect { .. } => "mprotect",
            Op::Mremap { .. } => "mremap",
            Op::Madvise { .. } => "madvise",
            Op::Mlock { .. } => "mlock",
            Op::Mlock2 { .. } => "mlock2",
            Op::Munlock { .. } => "munlock",
            Op::Mlockall { .. } => "mlockall",
            Op::Munlockall => "munlockall",
            Op::Msync { .. } => "msync",
            Op::Touch { .. } => "touch",
        }
    }

    /// True for calls whose success value is an address (which may lie outside the
    /// window when the kernel chose it).
    pub fn returns_address(&self) -> bool {
        matches!(self, Op::Mmap { .. } | Op::Mremap { .. })
    }

    /// Length of the mapping an address-returning call creates (`PAGE_ALIGN` of its length).
    pub fn result_len(&self) -> u64 {
        match *self {
            Op::Mmap { len, .. } => page_align(len),
            Op::Mremap { new_len, .. } => page_align(new_len),
            _ => 0,
        }
    }
}

/// Linux's `PAGE_ALIGN`, wrapping as the kernel's macro does.
pub fn page_align(x: u64) -> u64 {
    x.wrapping_add(PAGE - 1) & !(PAGE - 1)
}

fn unaligned(x: u64) -> bool {
    x & (PAGE - 1) != 0
}

/// Whether running `op` on the host can only touch the oracle's own window (or fails in the
/// kernel's argument checks before touching anything), and cannot populate more than the
/// safety zone. Conservative: it follows the kernel's checks only where it is sure of them.
pub fn host_safe(g: &Geometry, op: &Op) -> bool {
    match *op {
        Op::Mmap { addr, len, flags, off, .. } => {
            let alen = page_align(len);
            if len == 0 || alen == 0 || unaligned(off) {
                return true; // EINVAL / ENOMEM / EINVAL before anything happens
            }
            let populate = flags & (MAP_POPULATE | MAP_LOCKED) != 0;
            if populate && alen > 256 * PAGE {
                return false;
            }
            let noreplace = flags & MAP_FIXED_NOREPLACE != 0;
            if flags & MAP_FIXED != 0 && !noreplace {
                // Destructive: replaces whatever is there.
                if unaligned(addr) || alen > TASK_SIZE || addr > TASK_SIZE - alen {
                    return true; // EINVAL / ENOMEM from get_unmapped_area
                }
                return g.range_safe(addr, addr + alen);
            }
            // FIXED_NOREPLACE reaching past the free region would meet the test process's
            // own mappings, which the model does not have (EEXIST on the host, not in the
            // model): not comparable, so regenerate it.
            if noreplace
                && !(unaligned(addr) || alen > TASK_SIZE || addr > TASK_SIZE - alen)
                && !(g.in_free(addr) && addr + alen <= g.free().1)
            {
                return false;
            }
            // Hint or FIXED_NOREPLACE: only ever maps free space. A populated mapping must be
            // small (checked above); an unpopulated huge one at a window hint stays in the free
            // region (FREE_HALF > the largest generated length below TASK_SIZE).
            true
        }
        Op::Munmap { addr, len } => {
            if unaligned(addr) || addr > TASK_SIZE || len > TASK_SIZE - addr {
                return true;
            }
            let alen = page_align(len);
            alen == 0 || g.range_safe(addr, addr + alen)
        }
        Op::Mprotect { addr, len, .. } => {
            if unaligned(addr) || len == 0 {
                return true;
            }
            let end = addr.wrapping_add(page_align(len));
            end <= addr || addr >= TASK_SIZE || g.range_safe(addr, end)
        }
        Op::Madvise { addr, len, advice } => {
            let adv = advice as u32;
            if adv == 100 || adv == 101 {
                return false; // MADV_HWPOISON / MADV_SOFT_OFFLINE: never on the host
            }
            if unaligned(addr) {
                return true;
            }
            let alen = page_align(len);
            if len != 0 && alen == 0 {
                return true;
            }
            let end = addr.wrapping_add(alen);
            end <= addr || addr >= TASK_SIZE || g.range_safe(addr, end)
        }
        Op::Msync { addr, len, .. } => {
            if unaligned(addr) {
                return true;
            }
            let end = addr.wrapping_add(page_align(len));
            end <= addr || addr >= TASK_SIZE || g.range_safe(addr, end)
        }
        Op::Mlock { addr, len } | Op::Mlock2 { addr, len, .. } | Op::Munlock { addr, len } => {
            // mlock.c: len = PAGE_ALIGN(len + offset_in_page(start)); start &= PAGE_MASK.
            let start = addr & !(PAGE - 1);
            let alen = page_align(len.wrapping_add(addr & (PAGE - 1)));
            let end = start.wrapping_add(alen);
            end <= start || start >= TASK_SIZE || g.range_safe(start, end)
        }
        Op::Mlockall { flags } => {
            // Only calls that mlockall() rejects: it would lock the whole test process.
            let f = flags as u32 as u64;
            f & (MCL_CURRENT | MCL_FUTURE) == 0
                || f & !(MCL_CURRENT | MCL_FUTURE | MCL_ONFAULT) != 0
        }
        Op::Munlockall => true,
        Op::Touch { addr } => g.range_safe(addr, addr + 1),
        Op::Mremap { addr, old_len, new_len, flags, new_addr } => {
            if flags & !(MREMAP_MAYMOVE | MREMAP_FIXED | MREMAP_DONTUNMAP) != 0 || unaligned(addr) {
                return true; // EINVAL first
            }
            let new_alen = page_align(new_len);
            if new_alen == 0 {
                return true;
            }
            let old_alen = page_align(old_len);
            // The old range is shrunk/moved/unmapped: it must lie in the zone.
            if addr.checked_add(old_alen).is_none_or(|e| !g.range_safe(addr, e)) {
                return false;
            }
            if flags & MREMAP_FIXED != 0 {
                if unaligned(new_addr) {
                    return true;
                }
                return new_addr.checked_add(new_alen).is_some_and(|e| g.range_safe(new_addr, e));
            }
            // Growing in place or moving to a kernel-chosen place may populate (VM_LOCKED):
            // keep it small, unless it cannot fit below TASK_SIZE at all.
            new_alen <= 256 * PAGE || new_alen > TASK_SIZE
        }
    }
}

/// Generates one operation (not yet filtered by [`host_safe`]).
pub fn gen_op(rng: &mut Rng, g: &Geometry) -> Op {
    let k = rng.below(100);
    match k {
        0..=29 => gen_mmap(rng, g),
        30..=36 => Op::Munmap { addr: gen_addr(rng, g), len: gen_len(rng) },
        40..=52 => {
            Op::Mprotect { addr: gen_addr(rng, g), len: gen_len(rng), prot: gen_prot(rng, true) }
        }
        53..=62 => gen_mremap(rng, g),
        63..=78 => {
            let advice = if rng.pct(30) {
                MADV_POPULATE_WRITE
            } else if rng.pct(85) {
                rng.pick(ADVICE).0
            } else {
                rng.pick(&[
                    5,
                    6,
                    7,
                    26,
                    99,
                    104,
                    1000,
                    u64::MAX,
                    1 << 32 | 4,
                    0x1_0000_0017,
                    0xffff_ffff,
                ])
            };
            Op::Madvise { addr: gen_addr(rng, g), len: gen_len(rng), advice }
        }
        79..=83 => Op::Touch { addr: gen_page_addr(rng, g) + rng.below(PAGE) },
        84..=86 => Op::Mlock { addr: gen_addr_unaligned(rng, g), len: gen_len(rng) },
        87..=89 => {
            let flags = if rng.pct(80) {
                rng.pick(&[0, MLOCK_ONFAULT])
            } else {
                rng.pick(&[2, 3, 1 << 32 | 1, u64::MAX])
            };
            Op::Mlock2 { addr: gen_addr_unaligned(rng, g), len: gen_len(rng), flags }
        }
        90..=93 => Op::Munlock { addr: gen_addr_unaligned(rng, g), len: gen_len(rng) },
        94..=96 => {
            let valid = [0, MS_ASYNC, MS_INVALIDATE, MS_SYNC, MS_ASYNC | MS_INVALIDATE];
            let invalid =
                [MS_ASYNC | MS_SYNC, 7, 8, 0x10 | MS_SYNC, 1 << 32, 1 << 32 | MS_SYNC, u64::MAX];
            let flags = if rng.pct(70) { rng.pick(&valid) } else { rng.pick(&invalid) };
            Op::Msync { addr: gen_addr(rng, g), len: gen_len(rng), flags }
        }
        97..=98 => {
            if rng.pct(60) {
                Op::Munlockall
            } else {
                Op::Mlockall {
                    flags: rng.pick(&[0, MCL_ONFAULT, 8, 0x10, 0xf9, 1 << 32, 1 << 32 | 4]),
                }
            }
        }
        _ => Op::Munmap { addr: g.win, len: WIN_PAGES * PAGE },
    }
}

/// Generates a sequence of `n` safe operations. Most sequences start by mapping a good part
/// of the window, so that later calls find VMAs to split, merge, lock and advise.
pub fn gen_sequence(rng: &mut Rng, g: &Geometry, n: u64) -> Vec<Op> {
    let mut ops = Vec::new();
    if n > 1 && rng.pct(60) {
        let first = rng.below(8);
        let pages = WIN_PAGES / 2 + rng.below(WIN_PAGES / 2 - first);
        let ty = if rng.pct(80) { MAP_PRIVATE } else { MAP_SHARED };
        let mut flags = ty | MAP_ANONYMOUS | MAP_FIXED;
        if rng.pct(15) {
            flags |= MAP_NORESERVE;
        }
        ops.push(Op::Mmap {
            addr: g.win + first * PAGE,
            len: pages * PAGE,
            prot: rng.pick(&[PROT_READ | PROT_WRITE, PROT_READ | PROT_WRITE, PROT_READ, 0]),
            flags,
            fd: u64::MAX,
            off: 0,
        });
    }
    // A third of the sequences use well-formed calls only: fewer early errors, more splits,
    // merges, moves and locks per sequence.
    let clean = rng.pct(33);
    while (ops.len() as u64) < n {
        let op = gen_safe_op(rng, g);
        if !clean || is_clean(g, &op) {
            ops.push(op);
        }
    }
    ops
}

/// A well-formed call: page-aligned addresses near the window, small non-zero page-multiple
/// lengths, known flag and advice values.
fn is_clean(g: &Geometry, op: &Op) -> bool {
    let near = |a: u64| {
        a.is_multiple_of(PAGE)
            && a >= g.win - SLOP_PAGES * PAGE
            && a <= g.win_end() + SLOP_PAGES * PAGE
    };
    let len_ok = |l: u64| l.is_multiple_of(PAGE) && l > 0 && l <= 32 * PAGE;
    let prot_ok = |p: u64| p & !(PROT_READ | PROT_WRITE | PROT_EXEC) == 0;
    match *op {
        Op::Mmap { addr, len, prot, flags, fd, off } => {
            let ty = flags & 0xf;
            let known = MAP_FIXED
                | MAP_FIXED_NOREPLACE
                | MAP_ANONYMOUS
                | MAP_NORESERVE
                | MAP_STACK
                | MAP_GROWSDOWN
                | MAP_LOCKED
                | MAP_POPULATE
                | 0xf;
            near(addr)
                && len_ok(len)
                && prot_ok(prot)
                && (ty == MAP_PRIVATE || ty == MAP_SHARED)
                && flags & !known == 0
                && if flags & MAP_ANONYMOUS != 0 {
                    off == 0
                } else {
                    FD_SLOTS[..4].iter().any(|(v, _)| *v == fd)
                        && off % PAGE == 0
                        && off < 32 * PAGE
                }
        }
        Op::Munmap { addr, len } | Op::Mlock { addr, len } | Op::Munlock { addr, len } => {
            near(addr) && len_ok(len)
        }
        Op::Mlock2 { addr, len, flags } => near(addr) && len_ok(len) && flags <= 1,
        Op::Mprotect { addr, len, prot } => {
            near(addr) && len_ok(len) && (prot_ok(prot) || prot & !PROT_GROWSDOWN < 8)
        }
        Op::Mremap { addr, old_len, new_len, flags, new_addr } => {
            near(addr)
                && len_ok(old_len)
                && len_ok(new_len)
                && flags & !(MREMAP_MAYMOVE | MREMAP_FIXED | MREMAP_DONTUNMAP) == 0
                && (flags & MREMAP_FIXED == 0 || (near(new_addr) && flags & MREMAP_MAYMOVE != 0))
                && (flags & MREMAP_DONTUNMAP == 0 || flags & MREMAP_MAYMOVE != 0)
        }
        Op::Madvise { addr, len, advice } => {
            near(addr) && len_ok(len) && ADVICE.iter().any(|(a, _)| *a == advice)
        }
        Op::Msync { addr, len, flags } => near(addr) && len_ok(len) && flags <= 7,
        Op::Touch { .. } | Op::Munlockall => true,
        Op::Mlockall { .. } => false,
    }
}

/// `MMKIT_ORACLE_NO_GUARD=1` (local iteration only): never generate MADV_GUARD_INSTALL,
/// whose page-level effects can hide other mismatches.
fn no_guard() -> bool {
    static NO_GUARD: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *NO_GUARD.get_or_init(|| std::env::var("MMKIT_ORACLE_NO_GUARD").is_ok_and(|v| v == "1"))
}

/// Generates a safe operation.
pub fn gen_safe_op(rng: &mut Rng, g: &Geometry) -> Op {
    loop {
        let op = gen_op(rng, g);
        let guard = matches!(op, Op::Madvise { advice, .. } if advice as u32 == 102);
        if host_safe(g, &op) && !(guard && no_guard()) {
            return op;
        }
    }
}

/// A page in or near the window; half the time on a 4-page grid, so that ranges of
/// different calls often share boundaries (exact adjacency is what merging needs).
fn gen_page_addr(rng: &mut Rng, g: &Geometry) -> u64 {
    if rng.pct(50) {
        return g.win + rng.below(WIN_PAGES / 4) * 4 * PAGE;
    }
    let pages = WIN_PAGES + 2 * SLOP_PAGES;
    g.win - SLOP_PAGES * PAGE + rng.below(pages) * PAGE
}

/// An address for calls that need page alignment: mostly window pages, sometimes unaligned
/// or absurd.
fn gen_addr(rng: &mut Rng, g: &Geometry) -> u64 {
    let k = rng.below(100);
    if k < 88 {
        gen_page_addr(rng, g)
    } else if k < 94 {
        gen_page_addr(rng, g) + 1 + rng.below(PAGE - 1)
    } else {
        rng.pick(&[0, PAGE, TASK_SIZE - PAGE, TASK_SIZE, 1 << 47, 1 << 63, !(PAGE - 1), u64::MAX])
    }
}

/// An address for mlock-like calls, which round down: more often unaligned.
fn gen_addr_unaligned(rng: &mut Rng, g: &Geometry) -> u64 {
    if rng.pct(25) {
        gen_page_addr(rng, g) + rng.below(PAGE)
    } else {
        gen_addr(rng, g)
    }
}

fn gen_len(rng: &mut Rng) -> u64 {
    let k = rng.below(100);
    if k < 25 {
        (1 + rng.below(4)) * 4 * PAGE
    } else if k < 55 {
        (1 + rng.below(4)) * PAGE
    } else if k < 78 {
        (1 + rng.below(24)) * PAGE
    } else if k < 83 {
        0
    } else if k < 90 {
        (rng.below(16) * PAGE + 1 + rng.below(PAGE - 1)).max(1)
    } else {
        rng.pick(&[
            1 << 40,
            1 << 47,
            TASK_SIZE,
            TASK_SIZE + PAGE,
            1 << 63,
            u64::MAX,
            u64::MAX - PAGE + 1,
            u64::MAX - 2 * PAGE + 1,
            (1u64 << 40) + 1,
        ])
    }
}

fn gen_prot(rng: &mut Rng, for_mprotect: bool) -> u64 {
    let base = rng.pick(&[
        PROT_READ | PROT_WRITE,
        PROT_READ | PROT_WRITE,
        PROT_READ,
        PROT_READ,
        0,
        PROT_WRITE,
        PROT_EXEC,
        PROT_READ | PROT_EXEC,
        PROT_READ | PROT_WRITE | PROT_EXEC,
    ]);
    let k = rng.below(100);
    if k < 80 {
        base
    } else if k < 85 {
        base | PROT_SEM
    } else if k < 92 {
        base | rng.pick(&[0x10, 0x80, 0x1000, 1 << 32, 0x0400_0000])
    } else if for_mprotect || rng.pct(50) {
        base | rng.pick(&[
            PROT_GROWSDOWN,
            PROT_GROWSDOWN,
            PROT_GROWSUP,
            PROT_GROWSDOWN | PROT_GROWSUP,
        ])
    } else {
        base
    }
}

fn gen_mmap(rng: &mut Rng, g: &Geometry) -> Op {
    let ty = {
        let k = rng.below(100);
        if k < 68 {
            MAP_PRIVATE
        } else if k < 88 {
            MAP_SHARED
        } else if k < 92 {
            MAP_SHARED_VALIDATE
        } else if k < 95 {
            MAP_DROPPABLE
        } else {
            rng.pick(&[0, 4, 5, 6, 7, 9, 0xf])
        }
    };
    let mut flags = ty;
    if rng.pct(75) {
        flags |= MAP_ANONYMOUS;
    }
    let k = rng.below(100);
    if k < 50 {
        flags |= MAP_FIXED;
    } else if k < 65 {
        flags |= MAP_FIXED_NOREPLACE;
    } else if k < 67 {
        flags |= MAP_FIXED | MAP_FIXED_NOREPLACE;
    }
    let extras: &[(u64, u64)] = &[
        (MAP_NORESERVE, 15),
        (MAP_STACK, 8),
        (MAP_GROWSDOWN, 8),
        (MAP_LOCKED, 6),
        (MAP_POPULATE, 8),
        (MAP_NONBLOCK, 3),
        (MAP_DENYWRITE, 2),
        (MAP_EXECUTABLE, 2),
        (MAP_UNINITIALIZED, 2),
        (MAP_32BIT, 2),
        (MAP_SYNC, 2),
        (0x40_0000, 2),
        (1 << 40, 1),
    ];
    for &(f, p) in extras {
        if rng.pct(p) {
            flags |= f;
        }
    }
    let fd = if flags & MAP_ANONYMOUS != 0 && rng.pct(90) {
        u64::MAX
    } else if flags & MAP_ANONYMOUS == 0 && rng.pct(85) {
        let k = rng.below(100);
        let slot = if k < 35 {
            1
        } else if k < 60 {
            0
        } else if k < 70 {
            2
        } else if k < 90 {
            3
        } else {
            rng.pick(&[4, 5])
        };
        FD_SLOTS[slot].0
    } else {
        rng.pick(&[u64::MAX, 999_999, 0x7fff_ffff, 0x1_0000_0000 | 999_999])
    };
    let file = flags & MAP_ANONYMOUS == 0;
    let off = {
        let k = rng.below(100);
        if k < 88 && !(file && k < 40) {
            0
        } else if k < 94 {
            (1 + rng.below(16)) * PAGE
        } else {
            rng.pick(&[1, PAGE - 1, !(PAGE - 1), 1 << 63, !(PAGE - 1) - 8 * PAGE])
        }
    };
    let addr = if flags & (MAP_FIXED | MAP_FIXED_NOREPLACE) == 0 && rng.pct(5) {
        rng.pick(&[0, 1, PAGE, 0xffff])
    } else {
        gen_addr(rng, g)
    };
    let len = if rng.pct(40) { (4 + rng.below(28)) * PAGE } else { gen_len(rng) };
    Op::Mmap { addr, len, prot: gen_prot(rng, false), flags, fd, off }
}

fn gen_mremap(rng: &mut Rng, g: &Geometry) -> Op {
    let k = rng.below(100);
    let flags = if k < 35 {
        0
    } else if k < 65 {
        MREMAP_MAYMOVE
    } else if k < 85 {
        MREMAP_MAYMOVE | MREMAP_FIXED
    } else if k < 92 {
        MREMAP_MAYMOVE | MREMAP_DONTUNMAP | if rng.pct(50) { MREMAP_FIXED } else { 0 }
    } else {
        rng.pick(&[
            MREMAP_FIXED,
            MREMAP_DONTUNMAP,
            MREMAP_FIXED | MREMAP_DONTUNMAP,
            8,
            1 << 40,
            0xff,
        ])
    };
    let old_len = if rng.pct(5) {
        0
    } else if rng.pct(50) {
        (1 + rng.below(4)) * PAGE
    } else {
        gen_len(rng)
    };
    let new_len = if rng.pct(15) { old_len } else { gen_len(rng) };
    let new_addr = if flags & MREMAP_FIXED != 0 || rng.pct(10) { gen_addr(rng, g) } else { 0 };
    Op::Mremap { addr: gen_addr(rng, g), old_len, new_len, flags, new_addr }
}

fn hex(x: u64) -> String {
    if x == u64::MAX {
        "-1".to_string()
    } else {
        format!("{x:#x}")
    }
}

fn bits(x: u64, names: &[(u64, &str)], zero: &str) -> String {
    if x == 0 {
        return zero.to_string();
    }
    let mut parts = Vec::new();
    let mut rest = x;
    for &(b, n) in names {
        if b != 0 && rest & b == b {
            parts.push(n.to_string());
            rest &= !b;
        }
    }
    if rest != 0 {
        parts.push(format!("{rest:#x}"));
    }
    parts.join("|")
}

pub fn fmt_prot(p: u64) -> String {
    bits(
        p,
        &[
            (PROT_READ, "PROT_READ"),
            (PROT_WRITE, "PROT_WRITE"),
            (PROT_EXEC, "PROT_EXEC"),
            (PROT_SEM, "PROT_SEM"),
            (PROT_GROWSDOWN, "PROT_GROWSDOWN"),
            (PROT_GROWSUP, "PROT_GROWSUP"),
        ],
        "PROT_NONE",
    )
}

pub fn fmt_map_flags(f: u64) -> String {
    let ty = match f & 0xf {
        1 => "MAP_SHARED".to_string(),
        2 => "MAP_PRIVATE".to_string(),
        3 => "MAP_SHARED_VALIDATE".to_string(),
        8 => "MAP_DROPPABLE".to_string(),
        t => format!("{t:#x}"),
    };
    let rest = bits(
        f & !0xf,
        &[
            (MAP_FIXED, "MAP_FIXED"),
            (MAP_ANONYMOUS, "MAP_ANONYMOUS"),
            (MAP_32BIT, "MAP_32BIT"),
            (MAP_GROWSDOWN, "MAP_GROWSDOWN"),
            (MAP_DENYWRITE, "MAP_DENYWRITE"),
            (MAP_EXECUTABLE, "MAP_EXECUTABLE"),
            (MAP_LOCKED, "MAP_LOCKED"),
            (MAP_NORESERVE, "MAP_NORESERVE"),
            (MAP_POPULATE, "MAP_POPULATE"),
            (MAP_NONBLOCK, "MAP_NONBLOCK"),
            (MAP_STACK, "MAP_STACK"),
            (MAP_SYNC, "MAP_SYNC"),
            (MAP_FIXED_NOREPLACE, "MAP_FIXED_NOREPLACE"),
            (MAP_UNINITIALIZED, "MAP_UNINITIALIZED"),
        ],
        "",
    );
    if rest.is_empty() {
        ty
    } else {
        format!("{ty}|{rest}")
    }
}

fn fmt_mremap_flags(f: u64) -> String {
    bits(
        f,
        &[
            (MREMAP_MAYMOVE, "MREMAP_MAYMOVE"),
            (MREMAP_FIXED, "MREMAP_FIXED"),
            (MREMAP_DONTUNMAP, "MREMAP_DONTUNMAP"),
        ],
        "0",
    )
}

fn fmt_advice(a: u64) -> String {
    match ADVICE.iter().find(|(v, _)| *v == a) {
        Some((_, n)) => n.to_string(),
        None => hex(a),
    }
}

impl fmt::Display for Op {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Op::Mmap { addr, len, prot, flags, fd, off } => write!(
                f,
                "mmap({}, {}, {}, {}, {}, {})",
                hex(addr),
                hex(len),
                fmt_prot(prot),
                fmt_map_flags(flags),
                match FD_SLOTS.iter().find(|(v, _)| *v == fd) {
                    Some((_, n)) => format!("<{n}>"),
                    None if fd == u64::MAX => "-1".to_string(),
                    None => fd.to_string(),
                },
                hex(off)
            ),
            Op::Munmap { addr, len } => write!(f, "munmap({}, {})", hex(addr), hex(len)),
            Op::Mprotect { addr, len, prot } => {
                write!(f, "mprotect({}, {}, {})", hex(addr), hex(len), fmt_prot(prot))
            }
            Op::Mremap { addr, old_len, new_len, flags, new_addr } => write!(
                f,
                "mremap({}, {}, {}, {}, {})",
                hex(addr),
                hex(old_len),
                hex(new_len),
                fmt_mremap_flags(flags),
                hex(new_addr)
            ),
            Op::Madvise { addr, len, advice } => {
                write!(f, "madvise({}, {}, {})", hex(addr), hex(len), fmt_advice(advice))
            }
            Op::Mlock { addr, len } => write!(f, "mlock({}, {})", hex(addr), hex(len)),
            Op::Mlock2 { addr, len, flags } => {
                write!(f, "mlock2({}, {}, {})", hex(addr), hex(len), hex(flags))
            }
            Op::Munlock { addr, len } => write!(f, "munlock({}, {})", hex(addr), hex(len)),
            Op::Mlockall { flags } => write!(f, "mlockall({})", hex(flags)),
            Op::Munlockall => write!(f, "munlockall()"),
            Op::Msync { addr, len, flags } => {
                write!(f, "msync({}, {}, {})", hex(addr), hex(len), hex(flags))
            }
            Op::Touch { addr } => write!(f, "touch({})", hex(addr)),
        }
    }
}
