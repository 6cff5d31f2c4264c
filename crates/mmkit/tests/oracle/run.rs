//! The oracle's driver: runs sequences on both sides, compares, groups and shrinks
//! mismatches, and reports.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use mmkit::config::MmConfig;
use std::fs::{File, OpenOptions};
use std::os::fd::AsRawFd;
use std::os::unix::fs::OpenOptionsExt;
use std::sync::Arc;

use mmkit::space::{FdTable, FileKind, OpenFile};
use mmkit::vma::FileObject;
use mmkit::{AddressSpace, Errno};

use super::gen::{self, Geometry, Op, Rng};
use super::host::{self, nr, syscall6};
use super::maps::{self, Snapshot};

/// The descriptors behind [`gen::FD_SLOTS`]: real open files on the host, and the same
/// descriptor numbers with the same open modes in the model's descriptor table.
struct Files {
    /// `(slot, real fd, what the model sees)`.
    table: Vec<(u64, u64, Option<OpenFile>)>,
    /// Keeps the descriptors open.
    _keep: Vec<File>,
}

/// Size of the regular file the oracle maps (pages past it would raise SIGBUS when
/// populated; generated offsets and lengths mostly stay inside).
const FILE_PAGES: u64 = 64;

impl Files {
    fn open() -> Files {
        let path = std::env::temp_dir().join(format!("mmkit-oracle-{}", std::process::id()));
        let f = File::create(&path).expect("create oracle file");
        f.set_len(FILE_PAGES * gen::PAGE).expect("size oracle file");
        drop(f);
        let file = Arc::new(FileObject {
            id: 1,
            dev_major: 0,
            dev_minor: 0,
            inode: 1,
            path: path.display().to_string(),
        });
        let open = |read: bool, write: bool| {
            OpenOptions::new().read(read).write(write).open(&path).expect("open oracle file")
        };
        let ro = open(true, false);
        let rw = open(true, true);
        let wo = open(false, true);
        let zero = OpenOptions::new().read(true).write(true).open("/dev/zero").expect("/dev/zero");
        const O_PATH: i32 = 0o10000000;
        let opath = OpenOptions::new().read(true).custom_flags(O_PATH).open(&path).expect("O_PATH");
        let dir = File::open(std::env::temp_dir()).expect("open temp dir");
        let _ = std::fs::remove_file(&path);
        let zero_obj = Arc::new(FileObject {
            id: 2,
            dev_major: 0,
            dev_minor: 5,
            inode: 4,
            path: "/dev/zero".into(),
        });
        let dir_obj = Arc::new(FileObject {
            id: 3,
            dev_major: 0,
            dev_minor: 0,
            inode: 2,
            path: "/tmp".into(),
        });
        let of = |f: &Arc<FileObject>, readable, writable, kind| {
            Some(OpenFile { file: f.clone(), readable, writable, kind })
        };
        let s = gen::FD_SLOTS;
        let table = vec![
            (s[0].0, ro.as_raw_fd() as u64, of(&file, true, false, FileKind::Regular)),
            (s[1].0, rw.as_raw_fd() as u64, of(&file, true, true, FileKind::Regular)),
            (s[2].0, wo.as_raw_fd() as u64, of(&file, false, true, FileKind::Regular)),
            (s[3].0, zero.as_raw_fd() as u64, of(&zero_obj, true, true, FileKind::DevZero)),
            (s[4].0, opath.as_raw_fd() as u64, of(&file, false, false, FileKind::Path)),
            (s[5].0, dir.as_raw_fd() as u64, of(&dir_obj, true, false, FileKind::NotMappable)),
        ];
        Files { table, _keep: vec![ro, rw, wo, zero, opath, dir] }
    }

    /// The real descriptor for a generated one.
    fn real(&self, fd: u64) -> u64 {
        self.table.iter().find(|(slot, _, _)| *slot == fd).map_or(fd, |(_, real, _)| *real)
    }
}

impl FdTable for Files {
    fn get(&self, fd: i32) -> Option<OpenFile> {
        self.table.iter().find(|(_, real, _)| *real == fd as u64).and_then(|(_, _, f)| f.clone())
    }
}

/// What the host did with an operation.
enum HostRes {
    Done(Result<u64, Errno>),
    /// A touch that could not be done safely (see [`touch_host`]); the model is not asked.
    Skipped,
}

/// A user write of one byte at `addr`, done only when it cannot kill the test process:
/// * the page lies in a private VMA the host shows writable, and no guard region may be
///   there: the store is done, `Ok`;
/// * the VMA is not writable, or nothing is mapped there and no VM_GROWSDOWN VMA lies above:
///   the kernel would deliver SIGSEGV, reported as `EFAULT` (as `write_fault` does);
/// * otherwise (below a VM_GROWSDOWN VMA the write would try to grow it; a shmem page past
///   the object's size after mremap grew it raises SIGBUS; a guard page SIGSEGV): skipped.
fn touch_host(g: &Geometry, addr: u64, guards: bool) -> HostRes {
    // Only the free region matters: above it the next VMA is one of this process's own
    // (never VM_GROWSDOWN before [stack], which is far too far away to grow down to `addr`).
    let vmas = host::host_vmas(addr, g.free().1);
    match vmas.first() {
        Some(v) if v.start <= addr => {
            if v.perms.as_bytes()[1] != b'w' {
                HostRes::Done(Err(Errno::EFAULT))
            } else if guards || v.perms.as_bytes()[3] == b's' || !v.name.is_empty() {
                // A guard page, or a shmem or file page beyond the object's size (after an
                // mremap grew the mapping, or past EOF) would raise a fatal signal.
                HostRes::Skipped
            } else {
                // SAFETY: `addr` lies in a VMA the kernel just showed writable, inside the
                // oracle's own window, and no MADV_GUARD_INSTALL was issued in this sequence,
                // so the store cannot fault fatally; nothing else uses these bytes.
                unsafe { std::ptr::write_volatile(addr as *mut u8, 0x5a) };
                HostRes::Done(Ok(0))
            }
        }
        Some(v) if v.flags.iter().any(|c| c == "gd") => HostRes::Skipped,
        _ => HostRes::Done(Err(Errno::EFAULT)),
    }
}

/// Runs `op` on the host.
fn run_host(g: &Geometry, files: &Files, op: &Op, guards: bool) -> HostRes {
    assert!(gen::host_safe(g, op), "unsafe op reached the host: {op}");
    let (n, a) = match *op {
        Op::Touch { addr } => return touch_host(g, addr, guards),
        Op::Mmap { addr, len, prot, flags, fd, off } => {
            (nr::MMAP, [addr, len, prot, flags, files.real(fd), off])
        }
        Op::Munmap { addr, len } => (nr::MUNMAP, [addr, len, 0, 0, 0, 0]),
        Op::Mprotect { addr, len, prot } => (nr::MPROTECT, [addr, len, prot, 0, 0, 0]),
        Op::Mremap { addr, old_len, new_len, flags, new_addr } => {
            (nr::MREMAP, [addr, old_len, new_len, flags, new_addr, 0])
        }
        Op::Madvise { addr, len, advice } => (nr::MADVISE, [addr, len, advice, 0, 0, 0]),
        Op::Mlock { addr, len } => (nr::MLOCK, [addr, len, 0, 0, 0, 0]),
        Op::Mlock2 { addr, len, flags } => (nr::MLOCK2, [addr, len, flags, 0, 0, 0]),
        Op::Munlock { addr, len } => (nr::MUNLOCK, [addr, len, 0, 0, 0, 0]),
        Op::Mlockall { flags } => (nr::MLOCKALL, [flags, 0, 0, 0, 0, 0]),
        Op::Munlockall => (nr::MUNLOCKALL, [0; 6]),
        Op::Msync { addr, len, flags } => (nr::MSYNC, [addr, len, flags, 0, 0, 0]),
    };
    // SAFETY: `host_safe` (asserted above) guarantees the call can only change or populate
    // the oracle's private window, or fails in the kernel's argument checks; calls that let
    // the kernel pick an address only ever map free space, and the caller unmaps the result.
    HostRes::Done(host::decode(unsafe { syscall6(n, a[0], a[1], a[2], a[3], a[4], a[5]) }))
}

/// Stands for "the model panicked" in a step's model result.
const PANICKED: Errno = Errno(0xffff);

/// Runs `op` on the model, turning a panic into [`PANICKED`].
fn run_model_caught(space: &mut AddressSpace, files: &Files, op: &Op) -> Result<u64, Errno> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| run_model(space, files, op)))
        .unwrap_or(Err(PANICKED))
}

/// Runs `op` on the model.
fn run_model(space: &mut AddressSpace, files: &Files, op: &Op) -> Result<u64, Errno> {
    match *op {
        Op::Mmap { addr, len, prot, flags, fd, off } => {
            space.sys_mmap(files, addr, len, prot, flags, files.real(fd), off)
        }
        Op::Munmap { addr, len } => space.sys_munmap(addr, len),
        Op::Mprotect { addr, len, prot } => space.sys_mprotect(addr, len, prot),
        Op::Mremap { addr, old_len, new_len, flags, new_addr } => {
            space.sys_mremap(addr, old_len, new_len, flags, new_addr)
        }
        Op::Madvise { addr, len, advice } => space.sys_madvise(addr, len, advice),
        Op::Mlock { addr, len } => space.sys_mlock(addr, len),
        Op::Mlock2 { addr, len, flags } => space.sys_mlock2(addr, len, flags),
        Op::Munlock { addr, len } => space.sys_munlock(addr, len),
        Op::Mlockall { flags } => space.sys_mlockall(flags),
        Op::Munlockall => space.sys_munlockall(),
        Op::Msync { addr, len, flags } => space.sys_msync(addr, len, flags),
        Op::Touch { addr } => space.write_fault(addr).map(|()| 0),
    }
}

fn fmt_res(r: &Result<u64, Errno>) -> String {
    match r {
        Err(e) if *e == PANICKED => "PANIC".to_string(),
        Ok(v) => format!("{v:#x}"),
        Err(e) => format!("{e:?}"),
    }
}

/// The class of a result, for grouping: errno name, `ok`, or for address-returning calls
/// whether the address is the window's or elsewhere.
fn class(g: &Geometry, op: &Op, r: &Result<u64, Errno>) -> String {
    match r {
        Err(e) if *e == PANICKED => "PANIC".to_string(),
        Err(e) => format!("{e:?}"),
        Ok(v) if op.returns_address() => {
            if g.in_free(*v) {
                "ok(window addr)".to_string()
            } else {
                "ok(elsewhere)".to_string()
            }
        }
        Ok(v) => format!("ok({v})"),
    }
}

/// The part of an operation that distinguishes mismatch kinds.
fn shape(op: &Op) -> String {
    match *op {
        Op::Mmap { flags, .. } => {
            let place = if flags & gen::MAP_FIXED_NOREPLACE != 0 {
                "FIXED_NOREPLACE"
            } else if flags & gen::MAP_FIXED != 0 {
                "FIXED"
            } else {
                "hint"
            };
            let ty = match flags & 0xf {
                1 => "SHARED",
                2 => "PRIVATE",
                3 => "SHARED_VALIDATE",
                8 => "DROPPABLE",
                _ => "bad-type",
            };
            format!("[{place} {ty}]")
        }
        Op::Madvise { advice, .. } => {
            let a = gen::ADVICE.iter().find(|(v, _)| *v == advice).map(|(_, n)| *n);
            format!("[{}]", a.unwrap_or("invalid"))
        }
        Op::Mremap { flags, .. } => format!("[flags {flags:#x}]"),
        Op::Mprotect { prot, .. } => {
            if prot & (gen::PROT_GROWSDOWN | gen::PROT_GROWSUP) != 0 {
                "[grows]".to_string()
            } else {
                String::new()
            }
        }
        _ => String::new(),
    }
}

/// One executed call.
#[derive(Clone, Debug)]
struct Step {
    op: Op,
    host: Result<u64, Errno>,
    model: Result<u64, Errno>,
    /// The host could not do it safely; neither side ran it.
    skipped: bool,
}

/// The first disagreement of a replay.
#[derive(Clone, Debug)]
struct Failure {
    /// Index of the call after which the sides disagreed.
    index: usize,
    /// Grouping key.
    key: String,
    /// Extra facts for the report.
    detail: String,
    /// Both sides' VMAs at that point.
    host: Snapshot,
    model: Snapshot,
}

struct Oracle {
    g: Geometry,
    files: Files,
    cfg: MmConfig,
    /// `MMKIT_ORACLE_HOST_ONLY=1`: run the host side only and print what it returned (for
    /// checking the generator's coverage); never the default.
    host_only: bool,
}

/// Host outcomes per syscall and result class: shows what the generator reaches.
type Coverage = BTreeMap<(&'static str, String), u64>;

impl Oracle {
    /// Unmaps every VMA intersecting the free region on the host (whole extents: a huge
    /// mapping made at a window hint may reach beyond the region).
    fn clean_host(&self) {
        let (lo, hi) = self.g.free();
        for v in host::host_vmas(lo, hi) {
            host::munmap(v.start, v.end - v.start).expect("cleanup munmap");
        }
        let left = host::host_vmas(lo, hi);
        assert!(left.is_empty(), "window not clean after cleanup: {left:?}");
    }

    fn snapshots(&self, space: &AddressSpace) -> (Snapshot, Snapshot) {
        let (lo, hi) = self.g.free();
        (maps::host_snapshot(lo, hi), maps::model_snapshot(space, lo, hi))
    }

    /// Runs `ops` from a clean window and a fresh model; stops at the first disagreement.
    fn replay(
        &self,
        ops: &[Op],
        mode: Mode,
        steps: &mut Vec<Step>,
        cov: Option<&mut Coverage>,
    ) -> Option<Failure> {
        self.clean_host();
        let mut cfg = self.cfg.clone();
        let restore = mode.memlock_budget.map(|budget| {
            // Unprivileged: drop CAP_IPC_LOCK from this thread's effective set and lower the
            // soft RLIMIT_MEMLOCK to what is already locked (leaked by earlier sequences,
            // see the DONTUNMAP rule) plus the budget; the model gets the budget alone.
            let leaked = host::locked_bytes();
            let hard = host::memlock_hard();
            let budget = if leaked > 0 { budget.max(gen::PAGE) } else { budget };
            let soft = (leaked + budget).min(hard);
            let had_cap = host::set_effective_cap(host::CAP_IPC_LOCK, false);
            host::setrlimit(host::RLIMIT_MEMLOCK, soft, hard).expect("setrlimit");
            cfg.cap_ipc_lock = false;
            cfg.rlimit_memlock = soft - leaked;
            (had_cap, hard)
        });
        let f = self.replay_inner(ops, cfg, steps, cov);
        if let Some((had_cap, hard)) = restore {
            host::setrlimit(host::RLIMIT_MEMLOCK, self.cfg.rlimit_memlock, hard)
                .expect("restore RLIMIT_MEMLOCK");
            host::set_effective_cap(host::CAP_IPC_LOCK, had_cap);
        }
        f
    }

    fn replay_inner(
        &self,
        ops: &[Op],
        cfg: MmConfig,
        steps: &mut Vec<Step>,
        mut cov: Option<&mut Coverage>,
    ) -> Option<Failure> {
        steps.clear();
        let mut space = AddressSpace::new(cfg);
        let mut failure = None;
        let mut guards = false;
        let base = host::status_counters();
        for (i, op) in ops.iter().enumerate() {
            if matches!(op, Op::Madvise { advice, .. } if *advice as u32 == 102) {
                guards = true; // MADV_GUARD_INSTALL: later touches may hit a guard page
            }
            let h = match run_host(&self.g, &self.files, op, guards) {
                HostRes::Done(h) => h,
                HostRes::Skipped => {
                    steps.push(Step { op: op.clone(), host: Ok(0), model: Ok(0), skipped: true });
                    continue;
                }
            };
            let m = if self.host_only { h } else { run_model_caught(&mut space, &self.files, op) };
            if let Some(c) = cov.as_deref_mut() {
                let r = match h {
                    Ok(_) => class(&self.g, op, &h),
                    Err(e) => format!("{e:?}"),
                };
                if std::env::var("MMKIT_ORACLE_SHOW").is_ok_and(|v| v == r) {
                    println!("  {op} = {}", fmt_res(&h));
                }
                *c.entry((op.name(), r)).or_default() += 1;
            }
            steps.push(Step { op: op.clone(), host: h, model: m, skipped: false });
            let same = match (&h, &m) {
                (Err(a), Err(b)) => a == b,
                (Ok(a), Ok(b)) if op.returns_address() && !self.g.in_free(*a) => {
                    !self.g.in_free(*b)
                }
                (Ok(a), Ok(b)) => a == b,
                _ => false,
            };
            // A mapping the kernel placed outside the window: unmap it again on both sides.
            if op.returns_address() {
                if let Ok(a) = h {
                    if !self.g.in_free(a) {
                        host::munmap(a, op.result_len()).expect("unmap result outside window");
                    }
                }
                if let Ok(b) = m {
                    if !self.g.in_free(b) {
                        let unmap = Op::Munmap { addr: b, len: op.result_len() };
                        let _ = run_model_caught(&mut space, &self.files, &unmap);
                    }
                }
            }
            if !same {
                let (hs, ms) = self.snapshots(&space);
                failure = Some(Failure {
                    index: i,
                    key: format!(
                        "{}{} returns: host {} / model {}",
                        op.name(),
                        shape(op),
                        class(&self.g, op, &h),
                        class(&self.g, op, &m)
                    ),
                    detail: String::new(),
                    host: hs,
                    model: ms,
                });
                break;
            }
            if self.host_only {
                continue;
            }
            let (hs, ms) = self.snapshots(&space);
            if let Some(kind) = maps::diff_kind(&hs, &ms) {
                failure = Some(Failure {
                    index: i,
                    key: format!("state after {}{}: {kind}", op.name(), shape(op)),
                    detail: String::new(),
                    host: hs,
                    model: ms,
                });
                break;
            }
            let now = host::status_counters();
            let model_kb = [space.locked_vm(), space.stack_vm(), space.exec_vm()].map(|p| p * 4);
            for (k, name) in ["VmLck", "VmStk", "VmExe+VmLib"].iter().enumerate() {
                let host_kb = now[k].wrapping_sub(base[k]);
                if host_kb != model_kb[k] {
                    failure = Some(Failure {
                        index: i,
                        key: format!(
                            "state after {}{}: {name} differs (host {} model)",
                            op.name(),
                            shape(op),
                            if host_kb > model_kb[k] { ">" } else { "<" }
                        ),
                        detail: format!("{name}: host {host_kb} kB, model {} kB", model_kb[k]),
                        host: hs.clone(),
                        model: ms.clone(),
                    });
                    break;
                }
            }
            if failure.is_some() {
                break;
            }
        }
        self.clean_host();
        failure
    }

    /// Negative control: the comparison must see a VMA that only the host has, and must see
    /// none once it is gone, so a passing run cannot come from comparing nothing.
    fn self_check(&self) {
        self.clean_host();
        let space = AddressSpace::new(self.cfg.clone());
        let op = Op::Mmap {
            addr: self.g.win,
            len: 2 * gen::PAGE,
            prot: gen::PROT_READ | gen::PROT_WRITE,
            flags: gen::MAP_PRIVATE | gen::MAP_ANONYMOUS | gen::MAP_FIXED,
            fd: u64::MAX,
            off: 0,
        };
        let HostRes::Done(r) = run_host(&self.g, &self.files, &op, false) else { unreachable!() };
        assert_eq!(r, Ok(self.g.win), "self-check mmap");
        let (hs, ms) = self.snapshots(&space);
        assert_eq!(hs.0.len(), 1, "self-check: host VMA not seen:\n{hs}");
        assert_eq!(
            hs.0[0].codes,
            ["rd", "wr", "mr", "mw", "me", "ac"],
            "self-check: VmFlags parse"
        );
        assert!(maps::diff_kind(&hs, &ms).is_some(), "self-check: difference not detected");
        self.clean_host();
        let (hs, ms) = self.snapshots(&space);
        assert!(maps::diff_kind(&hs, &ms).is_none(), "self-check: empty sides differ");
    }

    /// Greedily removes calls while the same kind of mismatch still shows.
    fn shrink(&self, ops: &[Op], mode: Mode, key: &str) -> Vec<Op> {
        let mut cur = ops.to_vec();
        let mut steps = Vec::new();
        let mut i = 0;
        while i < cur.len() {
            let mut cand = cur.clone();
            cand.remove(i);
            match self.replay(&cand, mode, &mut steps, None) {
                Some(f) if f.key == key => {
                    cand.truncate(f.index + 1);
                    cur = cand;
                }
                _ => i += 1,
            }
        }
        cur
    }
}

fn env_u64(name: &str, default: u64) -> u64 {
    match std::env::var(name) {
        Ok(v) => {
            let v = v.trim();
            let parsed = match v.strip_prefix("0x") {
                Some(h) => u64::from_str_radix(h, 16).ok(),
                None => v.parse().ok(),
            };
            parsed.unwrap_or_else(|| panic!("{name}={v}: not a number"))
        }
        Err(_) => default,
    }
}

/// Picks a window whose free region has no host VMA in it.
fn pick_geometry() -> Option<Geometry> {
    for win in [0x3000_0000_0000u64, 0x2000_0000_0000, 0x5000_0000_0000] {
        let g = Geometry { win };
        let (lo, hi) = g.free();
        if host::host_vmas(lo, hi).is_empty() {
            return Some(g);
        }
    }
    None
}

/// Privileges a sequence runs with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Mode {
    /// `Some(bytes)`: without CAP_IPC_LOCK, with this much RLIMIT_MEMLOCK to spend.
    memlock_budget: Option<u64>,
}

impl Mode {
    /// Every fourth sequence runs unprivileged, with a small lock budget (0 included).
    fn for_seed(seed: u64) -> Mode {
        let budget = [0, 4 * gen::PAGE, 16 * gen::PAGE, 64 * gen::PAGE][(seed / 4 % 4) as usize];
        Mode { memlock_budget: (seed % 4 == 3).then_some(budget) }
    }
}

struct Kind {
    count: u64,
    seed: u64,
    mode: Mode,
    ops: Vec<Op>,
}

pub fn main() {
    if std::env::var("MMKIT_ORACLE_SKIP").is_ok_and(|v| v == "1") {
        println!("linux_oracle: skipped by MMKIT_ORACLE_SKIP=1");
        return;
    }
    let total_ops = env_u64("MMKIT_ORACLE_OPS", 3000);
    let first_seed = env_u64("MMKIT_ORACLE_SEED", 1);
    let seq_len = env_u64("MMKIT_ORACLE_SEQ_LEN", 40).max(1);
    let Some(g) = pick_geometry() else {
        panic!("no free window region found in /proc/self/maps; cannot run the oracle");
    };
    let cfg = host::host_config();
    let host_only = std::env::var("MMKIT_ORACLE_HOST_ONLY").is_ok_and(|v| v == "1");
    let oracle = Oracle { g, files: Files::open(), cfg, host_only };
    println!(
        "linux_oracle: window {:#x}..{:#x}, {} ops in sequences of {}, seeds from {}; config: \
         rawio={} ipc_lock={} memlock={:#x} max_map_count={} overcommit={:?} ram_pages={} \
         swap_pages={} thp={}",
        g.win,
        g.win_end(),
        total_ops,
        seq_len,
        first_seed,
        oracle.cfg.cap_sys_rawio,
        oracle.cfg.cap_ipc_lock,
        oracle.cfg.rlimit_memlock,
        oracle.cfg.max_map_count,
        oracle.cfg.overcommit,
        oracle.cfg.total_ram_pages,
        oracle.cfg.total_swap_pages,
        oracle.cfg.thp_enabled
    );

    oracle.self_check();
    let mut kinds: BTreeMap<String, Kind> = BTreeMap::new();
    let mut steps = Vec::new();
    let mut cov = Coverage::new();
    let (mut done, mut matched, mut seqs, mut failed_seqs) = (0u64, 0u64, 0u64, 0u64);
    let mut seed = first_seed;
    while done < total_ops {
        let mut rng = Rng::new(seed);
        let n = seq_len.min(total_ops - done);
        let ops = gen::gen_sequence(&mut rng, &g, n);
        let mode = Mode::for_seed(seed);
        let f = oracle.replay(&ops, mode, &mut steps, Some(&mut cov));
        done += n;
        seqs += 1;
        match f {
            None => matched += n,
            Some(f) => {
                failed_seqs += 1;
                matched += f.index as u64;
                let k = kinds.entry(f.key.clone()).or_insert_with(|| Kind {
                    count: 0,
                    seed,
                    mode,
                    ops: ops[..=f.index].to_vec(),
                });
                k.count += 1;
            }
        }
        seed += 1;
    }
    println!(
        "linux_oracle: {seqs} sequences, {done} ops, {matched} matched before the first \
         mismatch of their sequence; {failed_seqs} sequences disagreed, {} distinct kinds",
        kinds.len()
    );
    let mut line = String::from("linux_oracle: host results:");
    for ((name, r), n) in &cov {
        let _ = write!(line, " {name}:{r}={n}");
    }
    println!("{line}");
    if kinds.is_empty() {
        return;
    }

    let mut report = String::new();
    let max_shrink = env_u64("MMKIT_ORACLE_MAX_SHRINK", 40) as usize;
    for (i, (key, k)) in kinds.iter().enumerate() {
        let ops = if i < max_shrink { oracle.shrink(&k.ops, k.mode, key) } else { k.ops.clone() };
        let f = oracle.replay(&ops, k.mode, &mut steps, None);
        let _ = writeln!(report, "\n=== mismatch kind {}: {key}", i + 1);
        let _ = writeln!(
            report,
            "    seen in {} sequence(s); first at seed {} (MMKIT_ORACLE_SEED={} \
             MMKIT_ORACLE_OPS={} MMKIT_ORACLE_SEQ_LEN={}); reproducer ({} of {} calls kept):",
            k.count,
            k.seed,
            k.seed,
            seq_len,
            seq_len,
            ops.len(),
            k.ops.len()
        );
        if let Some(b) = k.mode.memlock_budget {
            let _ = writeln!(report, "    (unprivileged: no CAP_IPC_LOCK, RLIMIT_MEMLOCK {b:#x})");
        }
        for s in &steps {
            if s.skipped {
                let _ = writeln!(report, "     {}  = skipped (unsafe to do on the host)", s.op);
                continue;
            }
            let mark = if fmt_res(&s.host) == fmt_res(&s.model) { "  " } else { "!!" };
            let _ = writeln!(
                report,
                "  {mark} {}  = host {} / model {}",
                s.op,
                fmt_res(&s.host),
                fmt_res(&s.model)
            );
        }
        match f {
            Some(f) => {
                if !f.detail.is_empty() {
                    let _ = writeln!(report, "    {}", f.detail);
                }
                let _ = write!(report, "    host VMAs:\n{}", f.host);
                let _ = write!(report, "    model VMAs:\n{}", f.model);
                if f.key != *key {
                    let _ = writeln!(report, "    (replay now shows: {})", f.key);
                }
            }
            None => {
                let _ = writeln!(report, "    (did not reproduce on replay: host flakiness?)");
            }
        }
    }
    println!("{report}");
    panic!(
        "linux_oracle: the model disagreed with Linux in {failed_seqs} of {seqs} sequences \
         ({} distinct kinds, listed above)",
        kinds.len()
    );
}
