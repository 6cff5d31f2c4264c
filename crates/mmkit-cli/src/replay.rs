//! `mmkit replay`: runs the memory syscalls of an `strace -f -y` log against [`AddressSpace`]
//! and compares every result with the one Linux recorded.
//!
//! # Processes
//! Each thread id maps to an address space (Linux's `mm_struct`). `clone`/`clone3` with
//! `CLONE_VM` and `vfork` share the parent's; `fork` and `clone` without `CLONE_VM` get a copy
//! ([`AddressSpace::fork`]); a successful `execve` gives the caller a new one. The first
//! `execve` of the first process is seeded from the `--maps-before` snapshot; any other (or
//! that one, without a snapshot) is rebuilt as `load_elf_binary()` would from the ELF files on
//! this host ([`crate::exec`]), or starts empty, with a note, when they are missing.
//! A call interrupted by another thread takes effect at its `resumed` line. A child whose first
//! line comes before its parent's `clone` has returned is attached to that in-flight clone.
//!
//! # Figures
//! The [`Report`] counts results in all and per process ([`ProcessStats`]: one address space,
//! named by the pid that created it, its threads included), and times the model's own work
//! (memory and process calls, not the parsing) for a throughput in calls per second.
//!
//! # What the trace does not show
//! - User-space writes, which give a VMA its anon_vma and so decide later merges: the stack
//!   and written data segments are seeded as written, the dynamic linker's start-up writes what
//!   it maps ([`WrittenPolicy`]), and `MADV_POPULATE_WRITE` calls are replayed as such.
//! - Descriptor open modes: inferred from Linux's answers (EACCES or success of a shared writable mapping).
//! - The `new_address` hint of `mremap(MREMAP_DONTUNMAP)` without `MREMAP_FIXED`, which strace
//!   does not print (it is replayed as 0).
//! - Stack growth by page faults.
//!
//! # Where Linux chose the address
//! For `mmap` without `MAP_FIXED`/`MAP_FIXED_NOREPLACE` and `mremap` with `MREMAP_MAYMOVE` but
//! not `MREMAP_FIXED`, the model's own choice is compared with Linux's ("address agreement";
//! a different successful choice is not a result mismatch). When they differ, the model's
//! mapping is undone (`munmap`, or `mremap` back) and the call is redone at Linux's address
//! with `MAP_FIXED`/`MREMAP_FIXED`, so that the rest of the trace runs against Linux's layout.

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt::Write as _;
use std::rc::Rc;
use std::time::{Duration, Instant};

use mmkit::space::{FdTable, FileKind, OpenFile};
use mmkit::{procfs, AddressSpace, Errno, MmConfig};

use crate::exec;
use crate::maps::{self, FileRegistry, Seed, WrittenPolicy};
use crate::strace::{self, Call, Line, Parser, Ret};

const MAP_FIXED: u64 = 0x10;
const MAP_FIXED_NOREPLACE: u64 = 0x10_0000;
const MREMAP_MAYMOVE: u64 = 1;
const MREMAP_FIXED: u64 = 2;
const MREMAP_DONTUNMAP: u64 = 4;

/// A call in flight when another completes: (thread id, syscall name, argument text so far).
pub type InFlight = (u32, String, String);

/// Memory syscalls that are replayed and compared.
pub const MEMORY_CALLS: &[&str] = &[
    "mmap",
    "munmap",
    "mprotect",
    "mremap",
    "brk",
    "madvise",
    "mlock",
    "mlock2",
    "munlock",
    "mlockall",
    "munlockall",
    "msync",
];

/// What to replay and how.
#[derive(Clone, Debug)]
pub struct Options {
    /// Configuration of every modelled address space. The default enables
    /// `file_thp_align`: the traces' files live on ext4, whose `get_unmapped_area` is
    /// `thp_get_unmapped_area()`.
    pub cfg: MmConfig,
    /// The `/proc/<pid>/maps` text right after the first execve.
    pub maps_before: Option<String>,
    /// The expected final maps of the main process.
    pub expect_maps: Option<String>,
    /// Which seeded VMAs count as written.
    pub written: WrittenPolicy,
    /// How many mismatches to list.
    pub show_mismatches: usize,
    /// Capture the model's maps of the calling process just before this trace line.
    pub maps_at: Option<usize>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            cfg: MmConfig { file_thp_align: true, ..MmConfig::default() },
            maps_before: None,
            expect_maps: None,
            written: WrittenPolicy::default(),
            show_mismatches: 10,
            maps_at: None,
        }
    }
}

/// One call whose result differs from Linux's.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Mismatch {
    /// Trace line.
    pub line: usize,
    /// Thread id.
    pub pid: u32,
    /// The call as recorded.
    pub call: String,
    /// What the model returned.
    pub model: String,
}

/// The figures of one process (one address space, named by the pid that created it by exec or
/// fork; its threads and a `vfork` child borrowing it count here too).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ProcessStats {
    /// Memory calls replayed (checkable ones).
    pub calls: u64,
    /// … whose result matched.
    pub matched: u64,
    /// … whose result differed.
    pub mismatched: u64,
    /// … whose result strace did not record (`= ?`).
    pub unknown: u64,
    /// Calls made while the layout was unknown (not checked), and how many of them differed.
    pub unverifiable: (u64, u64),
    /// mmap calls where Linux chose the address, and how many the model chose alike.
    pub mmap_chosen: (u64, u64),
    /// mremap calls that could move, and how many the model placed alike.
    pub mremap_chosen: (u64, u64),
    /// Thread ids that made memory calls in this process.
    pub threads: BTreeSet<u32>,
}

impl ProcessStats {
    /// Share of Linux-chosen addresses the model chose alike (1.0 when there were none).
    pub fn address_agreement(&self) -> f64 {
        agreement(self.mmap_chosen, self.mremap_chosen)
    }
}

fn agreement(mmap: (u64, u64), mremap: (u64, u64)) -> f64 {
    let total = mmap.0 + mremap.0;
    if total == 0 {
        1.0
    } else {
        (mmap.1 + mremap.1) as f64 / total as f64
    }
}

/// The outcome of a replay.
#[derive(Clone, Debug, Default)]
pub struct Report {
    /// Memory calls replayed.
    pub calls: u64,
    /// … whose result matched.
    pub matched: u64,
    /// … whose result differed.
    pub mismatched: u64,
    /// … whose result strace did not record (`= ?`).
    pub unknown: u64,
    /// Calls in processes whose layout could not be rebuilt (no snapshot, no ELF files), and
    /// how many of them differed: not checkable, so not counted above.
    pub unverifiable: (u64, u64),
    /// The first mismatches (up to `Options::show_mismatches`).
    pub mismatches: Vec<Mismatch>,
    /// The first calls where the model chose another address than Linux.
    pub disagreements: Vec<Mismatch>,
    /// mmap calls where Linux chose the address, and how many the model chose alike.
    pub mmap_chosen: (u64, u64),
    /// mremap calls that could move, and how many the model placed alike.
    pub mremap_chosen: (u64, u64),
    /// Process events handled (clone, fork, execve, exit…), by name.
    pub process_events: BTreeMap<String, u64>,
    /// Syscalls not replayed, by name.
    pub skipped: BTreeMap<String, u64>,
    /// Remarks (unseeded processes, orphan threads…).
    pub notes: Vec<String>,
    /// Final maps per address space: (pid that created it, maps text).
    pub final_maps: Vec<(u32, String)>,
    /// The main process's final maps (the last image the trace's first process executed).
    pub main_maps: Option<(u32, String)>,
    /// Figures per process, by the pid that created the address space.
    pub processes: BTreeMap<u32, ProcessStats>,
    /// Memory calls applied to the model (checkable or not): the work behind `model_time`.
    pub model_calls: u64,
    /// Time spent in the model (memory and process calls), excluding parsing.
    pub model_time: Duration,
    /// Time of the whole replay, parsing included.
    pub elapsed: Duration,
    /// The model's maps just before `Options::maps_at` (for diagnosis).
    pub maps_at: Option<String>,
    /// Lines differing between `--expect-maps` and the main process's final maps
    /// (`-` expected only, `+` model only); `None` without `--expect-maps`.
    pub expect_diff: Option<Vec<String>>,
}

impl Report {
    /// Share of Linux-chosen addresses the model chose alike (1.0 when there were none).
    pub fn address_agreement(&self) -> f64 {
        agreement(self.mmap_chosen, self.mremap_chosen)
    }

    /// Memory calls the model executed per second of its own time (`None` when too fast to
    /// measure).
    pub fn calls_per_second(&self) -> Option<f64> {
        let t = self.model_time.as_secs_f64();
        (t > 0.0).then(|| self.model_calls as f64 / t)
    }

    /// The throughput line of the text output (not part of [`Report::summary`], which is
    /// deterministic).
    pub fn throughput(&self) -> String {
        let ms = self.model_time.as_secs_f64() * 1e3;
        match self.calls_per_second() {
            Some(cps) => format!(
                "throughput: {cps:.0} calls/s ({} calls in {ms:.3} ms of model time; {:.3} ms in all)\n",
                self.model_calls,
                self.elapsed.as_secs_f64() * 1e3
            ),
            None => format!("throughput: not measurable ({} calls)\n", self.model_calls),
        }
    }

    /// True when every result matched and the expected maps (if any) were reproduced.
    pub fn success(&self) -> bool {
        self.mismatched == 0 && self.expect_diff.as_ref().is_none_or(|d| d.is_empty())
    }

    /// The human-readable summary.
    pub fn summary(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(
            s,
            "calls: {}, matched: {}, mismatched: {}, result not recorded: {}",
            self.calls, self.matched, self.mismatched, self.unknown
        );
        if self.unverifiable.0 > 0 {
            let _ = writeln!(
                s,
                "calls in processes of unknown layout (not checked): {}, of which {} differ",
                self.unverifiable.0, self.unverifiable.1
            );
        }
        for m in &self.mismatches {
            let _ = writeln!(
                s,
                "  mismatch at line {} (pid {}): {}; model: {}",
                m.line, m.pid, m.call, m.model
            );
        }
        if self.mismatched as usize > self.mismatches.len() {
            let _ =
                writeln!(s, "  … and {} more", self.mismatched as usize - self.mismatches.len());
        }
        let total = self.mmap_chosen.0 + self.mremap_chosen.0;
        let agree = self.mmap_chosen.1 + self.mremap_chosen.1;
        let _ = writeln!(
            s,
            "address agreement: {:.1}% ({agree}/{total}; mmap {}/{}, mremap {}/{})",
            self.address_agreement() * 100.0,
            self.mmap_chosen.1,
            self.mmap_chosen.0,
            self.mremap_chosen.1,
            self.mremap_chosen.0
        );
        for m in &self.disagreements {
            let _ = writeln!(
                s,
                "  address differs at line {} (pid {}): {}; model: {}",
                m.line, m.pid, m.call, m.model
            );
        }
        let list = |m: &BTreeMap<String, u64>| {
            if m.is_empty() {
                "none".to_string()
            } else {
                m.iter().map(|(k, v)| format!("{k} ×{v}")).collect::<Vec<_>>().join(", ")
            }
        };
        let _ = writeln!(s, "processes: {}", self.processes.len());
        for (pid, p) in &self.processes {
            let (t, a) = (p.mmap_chosen.0 + p.mremap_chosen.0, p.mmap_chosen.1 + p.mremap_chosen.1);
            let _ = write!(
                s,
                "  pid {pid}: calls: {}, matched: {}, mismatched: {}, result not recorded: {}, \
                 address agreement: {:.1}% ({a}/{t}), threads: {}",
                p.calls,
                p.matched,
                p.mismatched,
                p.unknown,
                p.address_agreement() * 100.0,
                p.threads.len()
            );
            if p.unverifiable.0 > 0 {
                let _ =
                    write!(s, ", not checked: {} ({} differ)", p.unverifiable.0, p.unverifiable.1);
            }
            s.push('\n');
        }
        let _ = writeln!(s, "process events: {}", list(&self.process_events));
        let _ = writeln!(s, "skipped syscalls: {}", list(&self.skipped));
        for n in &self.notes {
            let _ = writeln!(s, "note: {n}");
        }
        if let Some(d) = &self.expect_diff {
            if d.is_empty() {
                let _ = writeln!(s, "final maps: identical to the expected maps");
            } else {
                let _ =
                    writeln!(s, "final maps: {} differing lines (- expected, + model):", d.len());
                for l in d {
                    let _ = writeln!(s, "  {l}");
                }
            }
        }
        s
    }
}

/// An error that stops the replay: a malformed line or snapshot.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReplayError(pub String);

impl std::fmt::Display for ReplayError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ReplayError {}

/// One modelled address space.
#[derive(Debug)]
struct Mm {
    /// The pid that created it (by execve or fork).
    owner: u32,
    space: AddressSpace,
    /// Print the x86-64 vsyscall gate after the VMAs.
    vsyscall: bool,
    /// Its break is known (seeded or learned).
    brk_known: bool,
    /// Memory calls applied so far.
    calls: u64,
    /// Maps at the owner's exit_group.
    final_maps: Option<String>,
    /// The dynamic linker's start-up is still running (see `WrittenPolicy::startup`).
    startup: bool,
    /// Its initial layout is known (snapshot, ELF image, or a trace that starts empty); the
    /// results of a process whose `execve` could not be rebuilt are not checkable.
    layout_known: bool,
    /// Where `/etc/ld.so.cache` is mapped, once it is.
    ld_cache: Option<u64>,
}

impl Mm {
    fn maps(&self) -> String {
        procfs::maps_string(&self.space, self.vsyscall)
    }
}

type MmRef = Rc<RefCell<Mm>>;

#[derive(Debug, Clone)]
struct Task {
    mm: MmRef,
    /// Belongs to the process that owns `mm` (not a vfork child borrowing it).
    owner_process: bool,
}

/// A descriptor table holding the one descriptor a call names.
struct OneFd(Option<(i32, OpenFile)>);

impl FdTable for OneFd {
    fn get(&self, fd: i32) -> Option<OpenFile> {
        match &self.0 {
            Some((n, f)) if *n == fd => Some(f.clone()),
            _ => None,
        }
    }
}

struct Replayer<'o> {
    opts: &'o Options,
    files: FileRegistry,
    seed: Option<Seed>,
    tasks: HashMap<u32, Task>,
    mms: Vec<MmRef>,
    main: Option<MmRef>,
    root_pid: Option<u32>,
    first_execve_seen: bool,
    /// The root's first `brk(NULL)` result after its first execve.
    root_brk: Option<u64>,
    /// The program the root process executed first (what `--maps-before` shows).
    root_exe: Option<String>,
    /// The last `exec_image()` could not rebuild the image.
    last_exec_unknown: bool,
    /// The call being replayed runs in a process of unknown layout.
    cur_unknown: bool,
    /// The process (address-space owner) of the call being replayed.
    cur_owner: u32,
    /// Descriptors known to be open for writing: (pid, fd, path).
    fd_writable: HashMap<(u32, u64, String), bool>,
    report: Report,
}

fn arg_err(call: &Call, msg: impl std::fmt::Display) -> ReplayError {
    ReplayError(format!("line {}: {}: {msg}", call.line, call.name))
}

fn num(call: &Call, i: usize) -> Result<u64, ReplayError> {
    let a = call.args.get(i).ok_or_else(|| arg_err(call, format!("missing argument {}", i + 1)))?;
    strace::parse_int(a).ok_or_else(|| arg_err(call, format!("bad number {a:?}")))
}

fn flags(call: &Call, i: usize, table: strace::FlagTable) -> Result<u64, ReplayError> {
    let a = call.args.get(i).ok_or_else(|| arg_err(call, format!("missing argument {}", i + 1)))?;
    strace::parse_flags(a, table).map_err(|m| arg_err(call, m))
}

fn want_args(call: &Call, n: usize) -> Result<(), ReplayError> {
    if call.args.len() < n {
        return Err(arg_err(call, format!("expected {n} arguments, got {}", call.args.len())));
    }
    Ok(())
}

fn fmt_result(r: &Result<u64, Errno>) -> String {
    match r {
        Ok(v) if *v >= 0x1_0000 => format!("{v:#x}"),
        Ok(v) => format!("{v}"),
        Err(e) => format!("-1 {e}"),
    }
}

/// Whether a model result equals the recorded one (`None`: nothing recorded).
fn same(rec: &Ret, model: &Result<u64, Errno>) -> Option<bool> {
    match (rec, model) {
        (Ret::Unknown, _) => None,
        (Ret::Value(v), Ok(m)) => Some(v == m),
        (Ret::Error(n), Err(e)) => Some(e.name() == Some(n.as_str())),
        _ => Some(false),
    }
}

impl<'o> Replayer<'o> {
    fn new_mm(
        &mut self,
        owner: u32,
        space: AddressSpace,
        vsyscall: bool,
        brk_known: bool,
    ) -> MmRef {
        // A dynamically linked image (an executable and an interpreter: two mapped files)
        // starts with the dynamic linker's start-up.
        let mut paths: Vec<&str> = space
            .vmas()
            .iter()
            .filter_map(|v| match &v.backing {
                mmkit::Backing::File(f) => Some(f.path.as_str()),
                _ => None,
            })
            .collect();
        paths.dedup();
        let startup = paths.len() >= 2;
        let mm = Rc::new(RefCell::new(Mm {
            owner,
            space,
            vsyscall,
            brk_known,
            calls: 0,
            final_maps: None,
            startup,
            ld_cache: None,
            layout_known: true,
        }));
        self.mms.push(mm.clone());
        mm
    }

    /// The address space seeded from `--maps-before` (or an empty one without it).
    fn seeded_space(&mut self) -> Result<(AddressSpace, bool, bool), ReplayError> {
        let mut space = AddressSpace::new(self.opts.cfg.clone());
        let Some(seed) = &self.seed else {
            return Ok((space, true, self.root_brk.is_some()));
        };
        for v in &seed.vmas {
            space.insert_vma_unmerged(v.clone()).map_err(|e| {
                ReplayError(format!("--maps-before: overlapping mapping at {:#x}: {e}", v.start))
            })?;
        }
        if let Some((s, e)) = seed.data_segment {
            space.set_data_segment(s, e);
        }
        if let Some(sp) = seed.start_stack {
            space.set_start_stack(sp);
        }
        let (start_brk, brk) = match (seed.heap, self.root_brk) {
            (Some((hs, _)), Some(b)) => (hs, b),
            (Some((hs, he)), None) => (hs, he),
            (None, Some(b)) => (b, b),
            (None, None) => {
                let g = seed.guessed_brk.unwrap_or(0);
                (g, g)
            }
        };
        space.set_brk_base(start_brk, brk);
        let known = seed.heap.is_some() || self.root_brk.is_some() || seed.guessed_brk.is_some();
        Ok((space, seed.has_vsyscall, known))
    }

    /// The space `execve` builds when there is no snapshot of it: the ELF loader's layout,
    /// from the program headers of the files on this host ([`exec::build_exec_image`]).
    /// Without them, an empty space (noted in the report).
    fn exec_image(&mut self, call: &Call) -> (AddressSpace, bool, bool) {
        let (specials, stack_len, vs) = match &self.seed {
            Some(s) if !s.specials.is_empty() => {
                (s.specials.clone(), s.stack_len.unwrap_or(0x21000), s.has_vsyscall)
            }
            Some(s) => (exec::default_specials(), s.stack_len.unwrap_or(0x21000), s.has_vsyscall),
            None => (exec::default_specials(), 0x21000, true),
        };
        let path = match call.name.as_str() {
            "execve" => call.args.first(),
            _ => call.args.get(1),
        }
        .and_then(|a| unquote(a));
        if self.seed.is_some() && path.is_some() && path == self.root_exe {
            // The traced program executes itself again: the snapshot shows its image.
            if let Ok(seeded) = self.seeded_space() {
                return seeded;
            }
        }
        let mut space = AddressSpace::new(self.opts.cfg.clone());
        let built = match &path {
            Some(p) => exec::build_exec_image(&mut space, &mut self.files, p, stack_len, &specials),
            None => Err("the program path is not shown".to_string()),
        };
        match built {
            Ok(_) => (space, vs, true),
            Err(e) => {
                self.last_exec_unknown = true;
                self.report.notes.push(format!(
                    "line {}: pid {} execve: no maps snapshot and no ELF image ({e}); its layout starts empty",
                    call.line, call.pid
                ));
                (AddressSpace::new(self.opts.cfg.clone()), vs, false)
            }
        }
    }

    fn task(&mut self, call: &Call, parser_pending: &[InFlight]) -> Result<Task, ReplayError> {
        if let Some(t) = self.tasks.get(&call.pid) {
            return Ok(t.clone());
        }
        if self.root_pid.is_none() {
            // The first line of the trace: the main process, with the seeded layout.
            self.root_pid = Some(call.pid);
            let (space, vs, known) = self.seeded_space()?;
            let mm = self.new_mm(call.pid, space, vs, known);
            self.main = Some(mm.clone());
            let t = Task { mm, owner_process: true };
            self.tasks.insert(call.pid, t.clone());
            return Ok(t);
        }
        // A child seen before its parent's clone returned: attach it to the clone in flight.
        if let Some((ppid, name, text)) = parser_pending
            .iter()
            .find(|(p, n, _)| *p != call.pid && is_clone(n) && self.tasks.contains_key(p))
        {
            let flags = strace::clone_flags(std::slice::from_ref(text));
            self.attach_child(*ppid, call.pid, name, &flags);
            self.report.notes.push(format!(
                "line {}: pid {} appeared before its parent's {name} returned; attached to pid {ppid}",
                call.line, call.pid
            ));
            return Ok(self.tasks[&call.pid].clone());
        }
        // Unknown origin: assume a thread of the main process.
        let root = self.root_pid.unwrap_or(call.pid);
        let t = self
            .tasks
            .get(&root)
            .cloned()
            .ok_or_else(|| arg_err(call, "no process to attach to"))?;
        self.report.notes.push(format!(
            "line {}: pid {} of unknown origin; treated as a thread of pid {root}",
            call.line, call.pid
        ));
        self.tasks.insert(call.pid, t.clone());
        Ok(t)
    }

    fn attach_child(&mut self, parent: u32, child: u32, name: &str, flags: &[String]) {
        if self.tasks.contains_key(&child) {
            return;
        }
        let Some(pt) = self.tasks.get(&parent).cloned() else { return };
        let has = |f: &str| flags.iter().any(|x| x == f);
        let t = if name == "vfork" || has("CLONE_VM") {
            Task { mm: pt.mm.clone(), owner_process: pt.owner_process && has("CLONE_THREAD") }
        } else {
            let (space, vs, bk, st) = {
                let mut p = pt.mm.borrow_mut();
                (p.space.fork(), p.vsyscall, p.brk_known, p.startup)
            };
            let mm = self.new_mm(child, space, vs, bk);
            mm.borrow_mut().startup = st;
            mm.borrow_mut().layout_known = pt.mm.borrow().layout_known;
            Task { mm, owner_process: true }
        };
        self.tasks.insert(child, t);
    }

    /// Counts a call whose address Linux chose; a different (successful) choice is an
    /// address disagreement, not a result mismatch.
    fn record_chosen(&mut self, call: &Call, model: &Result<u64, Errno>) {
        if self.cur_unknown {
            return self.record(call, model);
        }
        if let (Ret::Value(la), Ok(ma)) = (&call.ret, model) {
            if la != ma {
                self.report.calls += 1;
                self.report.matched += 1;
                let p = self.cur_proc();
                p.calls += 1;
                p.matched += 1;
                if self.report.disagreements.len() < self.opts.show_mismatches {
                    self.report.disagreements.push(Mismatch {
                        line: call.line,
                        pid: call.pid,
                        call: call.to_string(),
                        model: fmt_result(model),
                    });
                }
                return;
            }
        }
        self.record(call, model);
    }

    /// The figures of the process making the current call.
    fn cur_proc(&mut self) -> &mut ProcessStats {
        self.report.processes.entry(self.cur_owner).or_default()
    }

    fn record(&mut self, call: &Call, model: &Result<u64, Errno>) {
        let result = same(&call.ret, model);
        if self.cur_unknown {
            let differs = u64::from(result == Some(false));
            self.report.unverifiable.0 += 1;
            self.report.unverifiable.1 += differs;
            let p = self.cur_proc();
            p.unverifiable.0 += 1;
            p.unverifiable.1 += differs;
            return;
        }
        self.report.calls += 1;
        let p = self.cur_proc();
        p.calls += 1;
        match result {
            None => p.unknown += 1,
            Some(true) => p.matched += 1,
            Some(false) => p.mismatched += 1,
        }
        match result {
            None => self.report.unknown += 1,
            Some(true) => self.report.matched += 1,
            Some(false) => {
                self.report.mismatched += 1;
                if self.report.mismatches.len() < self.opts.show_mismatches {
                    self.report.mismatches.push(Mismatch {
                        line: call.line,
                        pid: call.pid,
                        call: call.to_string(),
                        model: fmt_result(model),
                    });
                }
            }
        }
    }

    /// The open file behind a descriptor annotation. strace shows the path but not the open
    /// mode, so the mode is inferred from what Linux answered (`do_mmap()` checks FMODE_READ
    /// and, for a writable shared mapping, FMODE_WRITE, before changing anything):
    /// - EACCES for a writable shared mapping: opened read-only; EACCES otherwise: not
    ///   readable;
    /// - a writable shared mapping that Linux allowed: readable and writable, remembered for
    ///   this descriptor and path;
    /// - else readable, and writable only if learned before: a read-only shared mapping of an
    ///   unknown descriptor is taken to come from a read-only one, as in the snapshot seeding.
    fn open_file(
        &mut self,
        call: &Call,
        fd: &strace::FdArg,
        prot: u64,
        mflags: u64,
    ) -> Option<OpenFile> {
        let path = fd.path.as_deref()?;
        let kind = if path == "/dev/zero" {
            FileKind::DevZero
        } else if path.starts_with("pipe:") || path.starts_with("socket:") {
            FileKind::NotMappable
        } else {
            FileKind::Regular
        };
        let shared_write = matches!(mflags & 3, 1 | 3) && prot & 2 != 0;
        let key = (call.pid, fd.raw, path.to_string());
        let (readable, writable) = match &call.ret {
            Ret::Error(e) if e == "EACCES" => (shared_write, false),
            Ret::Value(_) if shared_write => {
                self.fd_writable.insert(key, true);
                (true, true)
            }
            _ => (true, self.fd_writable.get(&key).copied().unwrap_or(kind == FileKind::DevZero)),
        };
        Some(OpenFile { file: self.files.get(path), readable, writable, kind })
    }

    fn process_call(&mut self, call: &Call, pending: &[InFlight]) -> Result<(), ReplayError> {
        let name = call.name.as_str();
        *self.report.process_events.entry(name.to_string()).or_default() += 1;
        match name {
            "clone" | "clone3" | "fork" | "vfork" => {
                if let Ret::Value(child) = call.ret {
                    self.task(call, pending)?;
                    let flags = strace::clone_flags(&call.args);
                    self.attach_child(call.pid, child as u32, name, &flags);
                }
            }
            "execve" | "execveat" => {
                if call.ret != Ret::Value(0) {
                    return Ok(());
                }
                let first = !self.first_execve_seen;
                self.first_execve_seen = true;
                let t = self.task(call, pending)?;
                let is_root = Some(call.pid) == self.root_pid;
                if first && is_root {
                    self.root_exe = call.args.first().and_then(|a| unquote(a));
                }
                if first && is_root && t.mm.borrow().calls == 0 && self.seed.is_some() {
                    // The seeded space already is this exec's image.
                    return Ok(());
                }
                let (space, vs, known) = if first && is_root && self.seed.is_some() {
                    self.seeded_space()?
                } else {
                    self.exec_image(call)
                };
                // The space this task leaves behind disappears from the report when nothing
                // happened in it and no other task shares it.
                let old = t.mm.clone();
                let sharers = self.tasks.values().filter(|o| Rc::ptr_eq(&o.mm, &old)).count();
                if sharers == 1 && old.borrow().calls == 0 {
                    self.mms.retain(|m| !Rc::ptr_eq(m, &old));
                }
                let mm = self.new_mm(call.pid, space, vs, known);
                mm.borrow_mut().layout_known = !std::mem::take(&mut self.last_exec_unknown);
                if is_root {
                    self.main = Some(mm.clone());
                }
                self.tasks.insert(call.pid, Task { mm, owner_process: true });
            }
            "exit_group" => {
                let t = self.task(call, pending)?;
                if t.owner_process {
                    let mut mm = t.mm.borrow_mut();
                    if mm.final_maps.is_none() {
                        mm.final_maps = Some(mm.maps());
                    }
                }
                self.tasks.retain(|_, other| {
                    !(Rc::ptr_eq(&other.mm, &t.mm) && other.owner_process == t.owner_process)
                });
            }
            "exit" => {
                self.tasks.remove(&call.pid);
            }
            _ => {}
        }
        Ok(())
    }

    fn memory_call(&mut self, call: &Call, pending: &[InFlight]) -> Result<(), ReplayError> {
        let t = self.task(call, pending)?;
        let mmref = t.mm.clone();
        self.cur_unknown = !mmref.borrow().layout_known;
        self.cur_owner = mmref.borrow().owner;
        self.report.model_calls += 1;
        self.cur_proc().threads.insert(call.pid);
        let name = call.name.as_str();
        // Parse everything first so that a malformed line changes nothing.
        let model = match name {
            "mmap" => {
                want_args(call, 6)?;
                let (addr, len) = (num(call, 0)?, num(call, 1)?);
                let prot = flags(call, 2, strace::PROT)?;
                let mflags = flags(call, 3, strace::MAP)?;
                let fd = strace::parse_fd(&call.args[4]).ok_or_else(|| arg_err(call, "bad fd"))?;
                let off = num(call, 5)?;
                let file = self.open_file(call, &fd, prot, mflags);
                let table = OneFd(file.map(|f| (fd.raw as i32, f)));
                let mut mm = mmref.borrow_mut();
                let sp = &mut mm.space;
                let r = sp.sys_mmap(&table, addr, len, prot, mflags, fd.raw, off);
                let linux_chose = mflags & (MAP_FIXED | MAP_FIXED_NOREPLACE) == 0;
                match (&call.ret, &r) {
                    (Ret::Value(la), _) if linux_chose => {
                        if !self.cur_unknown {
                            self.report.mmap_chosen.0 += 1;
                            self.cur_proc().mmap_chosen.0 += 1;
                        }
                        if r == Ok(*la) && !self.cur_unknown {
                            self.report.mmap_chosen.1 += 1;
                            self.cur_proc().mmap_chosen.1 += 1;
                        } else {
                            if let Ok(ma) = r {
                                let _ = sp.sys_munmap(ma, len);
                            }
                            let _ = sp.sys_mmap(
                                &table,
                                *la,
                                len,
                                prot,
                                mflags | MAP_FIXED,
                                fd.raw,
                                off,
                            );
                        }
                    }
                    (Ret::Error(_), Ok(ma)) => {
                        let _ = sp.sys_munmap(*ma, len);
                    }
                    _ => {}
                }
                if let Ret::Value(la) = &call.ret {
                    let w = &self.opts.written;
                    if prot & 2 != 0 && mflags & 3 == 2 && (w.on_map || (w.startup && mm.startup)) {
                        let _ = mm.space.write_fault(*la);
                    }
                    if fd.path.as_deref().is_some_and(|p| p.ends_with("/ld.so.cache")) {
                        mm.ld_cache = Some(*la);
                    }
                }
                drop(mm);
                self.record_chosen(call, &r);
                mmref.borrow_mut().calls += 1;
                return Ok(());
            }
            "munmap" => {
                want_args(call, 2)?;
                let (a, l) = (num(call, 0)?, num(call, 1)?);
                let mut mm = mmref.borrow_mut();
                if mm.ld_cache == Some(a) {
                    mm.startup = false;
                }
                mm.space.sys_munmap(a, l)
            }
            "mprotect" => {
                want_args(call, 3)?;
                let (a, l, p) = (num(call, 0)?, num(call, 1)?, flags(call, 2, strace::PROT)?);
                mmref.borrow_mut().space.sys_mprotect(a, l, p)
            }
            "mremap" => {
                want_args(call, 4)?;
                let (old, old_len, new_len) = (num(call, 0)?, num(call, 1)?, num(call, 2)?);
                let fl = flags(call, 3, strace::MREMAP)?;
                let new_addr = if call.args.len() > 4 { num(call, 4)? } else { 0 };
                let mut mm = mmref.borrow_mut();
                let sp = &mut mm.space;
                let r = sp.sys_mremap(old, old_len, new_len, fl, new_addr);
                let linux_chose = fl & MREMAP_MAYMOVE != 0 && fl & MREMAP_FIXED == 0;
                if let (Ret::Value(la), true) = (&call.ret, linux_chose) {
                    if !self.cur_unknown {
                        self.report.mremap_chosen.0 += 1;
                        self.cur_proc().mremap_chosen.0 += 1;
                    }
                    if r == Ok(*la) && !self.cur_unknown {
                        self.report.mremap_chosen.1 += 1;
                        self.cur_proc().mremap_chosen.1 += 1;
                    } else {
                        // Undo the model's placement, then redo at Linux's address.
                        match r {
                            // MREMAP_DONTUNMAP left the source in place: drop the copy.
                            Ok(ma) if fl & MREMAP_DONTUNMAP != 0 => {
                                let _ = sp.sys_munmap(ma, new_len);
                            }
                            Ok(ma) if ma == old => {
                                let _ = sp.sys_mremap(old, new_len, old_len, 0, 0);
                            }
                            Ok(ma) => {
                                let _ = sp.sys_mremap(
                                    ma,
                                    new_len,
                                    old_len,
                                    MREMAP_MAYMOVE | MREMAP_FIXED,
                                    old,
                                );
                            }
                            Err(_) => {}
                        }
                        if *la == old {
                            let _ = sp.sys_mremap(old, old_len, new_len, 0, 0);
                        } else {
                            let _ = sp.sys_mremap(old, old_len, new_len, fl | MREMAP_FIXED, *la);
                        }
                    }
                }
                drop(mm);
                self.record_chosen(call, &r);
                mmref.borrow_mut().calls += 1;
                return Ok(());
            }
            "brk" => {
                want_args(call, 1)?;
                let a = num(call, 0)?;
                let mut mm = mmref.borrow_mut();
                if !mm.brk_known {
                    if let (0, Ret::Value(b)) = (a, &call.ret) {
                        mm.space.set_brk_base(*b, *b);
                        mm.brk_known = true;
                    }
                }
                if a != 0 {
                    // malloc at work: the program itself runs.
                    mm.startup = false;
                }
                let old_brk = mm.space.brk_range().1;
                let nb = mm.space.sys_brk(a);
                if self.opts.written.on_map && nb > old_brk {
                    let _ = mm.space.write_fault(old_brk);
                }
                Ok(nb)
            }
            "madvise" => {
                want_args(call, 3)?;
                let (a, l, adv) = (num(call, 0)?, num(call, 1)?, flags(call, 2, strace::MADV)?);
                mmref.borrow_mut().space.sys_madvise(a, l, adv)
            }
            "mlock" => {
                want_args(call, 2)?;
                let (a, l) = (num(call, 0)?, num(call, 1)?);
                mmref.borrow_mut().space.sys_mlock(a, l)
            }
            "mlock2" => {
                want_args(call, 3)?;
                let (a, l, f) = (num(call, 0)?, num(call, 1)?, flags(call, 2, strace::MLOCK)?);
                mmref.borrow_mut().space.sys_mlock2(a, l, f)
            }
            "munlock" => {
                want_args(call, 2)?;
                let (a, l) = (num(call, 0)?, num(call, 1)?);
                mmref.borrow_mut().space.sys_munlock(a, l)
            }
            "mlockall" => {
                want_args(call, 1)?;
                let f = flags(call, 0, strace::MCL)?;
                mmref.borrow_mut().space.sys_mlockall(f)
            }
            "munlockall" => mmref.borrow_mut().space.sys_munlockall(),
            "msync" => {
                want_args(call, 3)?;
                let (a, l, f) = (num(call, 0)?, num(call, 1)?, flags(call, 2, strace::MS)?);
                mmref.borrow_mut().space.sys_msync(a, l, f)
            }
            _ => unreachable!("memory_call called for {name}"),
        };
        mmref.borrow_mut().calls += 1;
        self.record(call, &model);
        Ok(())
    }
}

/// A path argument as strace prints it (`"/usr/bin/ls"`), without quotes and escapes; `None`
/// for a truncated (`"…"...`) or relative one.
fn unquote(a: &str) -> Option<String> {
    let inner = a.strip_prefix('"')?.strip_suffix('"')?;
    let mut out = String::new();
    let mut it = inner.chars();
    while let Some(c) = it.next() {
        if c == '\\' {
            match it.next()? {
                'n' => out.push('\n'),
                't' => out.push('\t'),
                other => out.push(other),
            }
        } else {
            out.push(c);
        }
    }
    out.starts_with('/').then_some(out)
}

fn is_clone(name: &str) -> bool {
    matches!(name, "clone" | "clone3" | "fork" | "vfork")
}

/// Parses every line of a trace (a malformed line is an error naming it). Returns the
/// completed calls, each with the calls in flight at that point (pid, name, text so far).
pub fn parse_trace(text: &str) -> Result<Vec<(Call, Vec<InFlight>)>, ReplayError> {
    let mut p = Parser::new();
    let mut out = Vec::new();
    for (i, l) in text.lines().enumerate() {
        match p.feed(i + 1, l).map_err(|e| ReplayError(e.to_string()))? {
            Line::Call(c) => {
                let pending = p
                    .pending_pids()
                    .filter_map(|pid| {
                        p.pending(pid).map(|(n, t)| (pid, n.to_string(), t.to_string()))
                    })
                    .collect();
                out.push((c, pending));
            }
            Line::Unfinished { .. } | Line::Ignored => {}
        }
    }
    Ok(out)
}

/// Replaces the inode column of shared-memory lines (`/dev/zero (deleted)`, `/SYSV…`,
/// `[anon_shmem:…]`) with `*`: Linux numbers shmem inodes from a global counter
/// (`get_next_ino()`), which nothing in a trace reveals, so they are not compared.
pub fn mask_shmem_inodes(maps: &str) -> String {
    let mut out = String::with_capacity(maps.len());
    for line in maps.lines() {
        let parsed = maps::parse_line(0, line).ok();
        let is_shmem = parsed.as_ref().is_some_and(|l| {
            (l.major, l.minor) == (0, 1)
                && (l.name == "/dev/zero (deleted)"
                    || l.name.starts_with("/SYSV")
                    || l.name.starts_with("[anon_shmem:"))
        });
        if let (true, Some(l)) = (is_shmem, parsed) {
            let _ = writeln!(
                out,
                "{:08x}-{:08x} {}{}{}{} {:08x} {:02x}:{:02x} * {}",
                l.start,
                l.end,
                if l.read { 'r' } else { '-' },
                if l.write { 'w' } else { '-' },
                if l.exec { 'x' } else { '-' },
                if l.shared { 's' } else { 'p' },
                l.offset,
                l.major,
                l.minor,
                l.name
            );
        } else {
            out.push_str(line);
            out.push('\n');
        }
    }
    out
}

/// A line diff (longest common subsequence): `-` lines only in `expected`, `+` only in `got`.
pub fn diff_lines(expected: &str, got: &str) -> Vec<String> {
    let a: Vec<&str> = expected.lines().collect();
    let b: Vec<&str> = got.lines().collect();
    let (n, m) = (a.len(), b.len());
    let mut lcs = vec![vec![0u32; m + 1]; n + 1];
    for i in (0..n).rev() {
        for j in (0..m).rev() {
            lcs[i][j] =
                if a[i] == b[j] { lcs[i + 1][j + 1] + 1 } else { lcs[i + 1][j].max(lcs[i][j + 1]) };
        }
    }
    let (mut i, mut j) = (0, 0);
    let mut out = Vec::new();
    while i < n || j < m {
        if i < n && j < m && a[i] == b[j] {
            i += 1;
            j += 1;
        } else if j < m && (i == n || lcs[i][j + 1] >= lcs[i + 1][j]) {
            out.push(format!("+{}", b[j]));
            j += 1;
        } else {
            out.push(format!("-{}", a[i]));
            i += 1;
        }
    }
    out
}

/// Replays a trace.
pub fn replay(trace: &str, opts: &Options) -> Result<Report, ReplayError> {
    replay_with_progress(trace, opts, &mut |_, _| {})
}

/// How many completed calls pass between two `progress` reports.
pub const PROGRESS_STEP: usize = 256;

/// Replays a trace, calling `progress(done, total)` with the number of completed calls
/// handled so far every [`PROGRESS_STEP`] calls and once at the end (for a progress bar).
pub fn replay_with_progress(
    trace: &str,
    opts: &Options,
    progress: &mut dyn FnMut(usize, usize),
) -> Result<Report, ReplayError> {
    let started = Instant::now();
    let calls = parse_trace(trace)?;
    let mut files = FileRegistry::new();
    let before = match &opts.maps_before {
        Some(t) => Some(maps::parse(t).map_err(|e| ReplayError(format!("--maps-before: {e}")))?),
        None => None,
    };
    let expect = match &opts.expect_maps {
        Some(t) => Some(maps::parse(t).map_err(|e| ReplayError(format!("--expect-maps: {e}")))?),
        None => None,
    };
    for l in before.iter().chain(expect.iter()) {
        files.learn(l);
    }
    let seed = before.map(|l| maps::seed(&l, &mut files, opts.written, 0));
    // The root's break: its first brk(NULL) after its first successful execve (or from the
    // start when the trace has none).
    let root_pid = calls.first().map(|(c, _)| c.pid);
    let mut after_exec = !calls
        .iter()
        .any(|(c, _)| Some(c.pid) == root_pid && c.name == "execve" && c.ret == Ret::Value(0));
    let mut root_brk = None;
    for (c, _) in &calls {
        if Some(c.pid) != root_pid {
            continue;
        }
        if c.name == "execve" && c.ret == Ret::Value(0) {
            after_exec = true;
        } else if after_exec
            && c.name == "brk"
            && c.args.first().map(String::as_str) == Some("NULL")
        {
            if let Ret::Value(v) = c.ret {
                root_brk = Some(v);
            }
            break;
        }
    }
    let mut r = Replayer {
        opts,
        files,
        seed,
        tasks: HashMap::new(),
        mms: Vec::new(),
        main: None,
        root_pid: None,
        first_execve_seen: false,
        root_brk,
        fd_writable: HashMap::new(),
        root_exe: None,
        last_exec_unknown: false,
        cur_unknown: false,
        cur_owner: 0,
        report: Report::default(),
    };
    let total = calls.len();
    let mut model_time = Duration::ZERO;
    for (i, (call, pending)) in calls.iter().enumerate() {
        if i % PROGRESS_STEP == 0 {
            progress(i, total);
        }
        let name = call.name.as_str();
        if opts.maps_at == Some(call.line) {
            if let Some(t) = r.tasks.get(&call.pid) {
                r.report.maps_at = Some(t.mm.borrow().maps());
            }
        }
        if MEMORY_CALLS.contains(&name) {
            let t = Instant::now();
            r.memory_call(call, pending)?;
            model_time += t.elapsed();
        } else if matches!(
            name,
            "clone" | "clone3" | "fork" | "vfork" | "execve" | "execveat" | "exit" | "exit_group"
        ) {
            let t = Instant::now();
            r.process_call(call, pending)?;
            model_time += t.elapsed();
        } else {
            *r.report.skipped.entry(name.to_string()).or_default() += 1;
        }
    }
    progress(total, total);
    r.report.model_time = model_time;
    for mm in &r.mms {
        let mm = mm.borrow();
        let text = mm.final_maps.clone().unwrap_or_else(|| mm.maps());
        r.report.final_maps.push((mm.owner, text));
    }
    if let Some(m) = &r.main {
        let m = m.borrow();
        r.report.main_maps = Some((m.owner, m.final_maps.clone().unwrap_or_else(|| m.maps())));
    }
    if let Some(exp) = &opts.expect_maps {
        let got = match &r.main {
            Some(m) => {
                let m = m.borrow();
                m.final_maps.clone().unwrap_or_else(|| m.maps())
            }
            None => String::new(),
        };
        r.report.expect_diff = Some(diff_lines(&mask_shmem_inodes(exp), &mask_shmem_inodes(&got)));
    }
    r.report.elapsed = started.elapsed();
    Ok(r.report)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shmem_inodes_are_masked() {
        let a = "7ffff7dc6000-7ffff7dca000 rw-s 00000000 00:01 3434                       /dev/zero (deleted)\n";
        let b = "7ffff7dc6000-7ffff7dca000 rw-s 00000000 00:01 5                          /dev/zero (deleted)\n";
        assert_eq!(mask_shmem_inodes(a), mask_shmem_inodes(b));
        let f = "7ffff7fb7000-7ffff7fb8000 r--s 00000000 fe:00 737                        /etc/passwd\n";
        assert_eq!(mask_shmem_inodes(f), f);
    }

    #[test]
    fn diff_is_minimal() {
        assert!(diff_lines("a\nb\nc\n", "a\nb\nc\n").is_empty());
        assert_eq!(diff_lines("a\nb\nc\n", "a\nx\nc\n"), ["+x", "-b"]);
        assert_eq!(diff_lines("a\n", ""), ["-a"]);
    }

    #[test]
    fn malformed_trace_names_the_line() {
        let e =
            replay("1 brk(NULL) = 0x1000\n1 mmap(NULL, 4096\n", &Options::default()).unwrap_err();
        assert!(e.0.starts_with("line 2:"), "{e}");
        let e = replay(
            "1 mmap(NULL, 4096, PROT_BOGUS, MAP_PRIVATE, -1, 0) = 0x1000\n",
            &Options::default(),
        )
        .unwrap_err();
        assert!(e.0.starts_with("line 1: mmap:"), "{e}");
        let e = replay("1 munmap(0x1000) = 0\n", &Options::default()).unwrap_err();
        assert!(e.0.contains("expected 2 arguments"), "{e}");
    }

    #[test]
    fn continues_at_linuxs_address() {
        // The model (empty space, top-down below mmap_base) would not pick 0x10000000; the
        // call counts as an address disagreement, not a mismatch, and is redone there.
        let t = "\
1 mmap(NULL, 8192, PROT_READ|PROT_WRITE, MAP_PRIVATE|MAP_ANONYMOUS, -1, 0) = 0x10000000
1 munmap(0x10000000, 4096) = 0
1 mmap(NULL, 4096, PROT_READ, MAP_PRIVATE|MAP_ANONYMOUS, -1, 0) = -1 ENOMEM (Cannot allocate memory)
1 munmap(0x10000001, 4096) = -1 EINVAL (Invalid argument)
";
        let r = replay(t, &Options::default()).unwrap();
        assert_eq!(r.mmap_chosen, (1, 0));
        assert_eq!(r.disagreements.len(), 1);
        assert_eq!((r.calls, r.matched, r.mismatched), (4, 3, 1), "{}", r.summary());
        assert_eq!(r.mismatches[0].line, 3);
        // The model's extra mapping from line 3 was undone; Linux's layout remains.
        assert_eq!(r.final_maps.len(), 1);
        let lines: Vec<_> = r.final_maps[0].1.lines().collect();
        assert_eq!(lines.len(), 2, "{lines:?}");
        assert_eq!(lines[0], "10001000-10002000 rw-p 00000000 00:00 0 ");
        assert!(lines[1].ends_with("[vsyscall]"), "no snapshot: the x86-64 gate is listed");
        assert!(!r.success());
    }

    #[test]
    fn assumed_writes_decide_merges() {
        // mprotect RW→R drops VM_ACCOUNT only from a never-written anonymous mapping
        // (mprotect_fixup()); the dropped flag lets it merge with its read-only neighbour.
        let t = "\
1 mmap(0x10000000, 4096, PROT_READ|PROT_WRITE, MAP_PRIVATE|MAP_ANONYMOUS|MAP_FIXED, -1, 0) = 0x10000000
1 mmap(0x10001000, 4096, PROT_READ, MAP_PRIVATE|MAP_ANONYMOUS|MAP_FIXED, -1, 0) = 0x10001000
1 mprotect(0x10000000, 4096, PROT_READ) = 0
";
        let first_lines = |r: &Report| -> Vec<String> {
            r.final_maps[0]
                .1
                .lines()
                .filter(|l| l.starts_with("1000"))
                .map(str::to_string)
                .collect()
        };
        let r = replay(t, &Options::default()).unwrap();
        assert_eq!(first_lines(&r), ["10000000-10002000 r--p 00000000 00:00 0 "]);
        let mut o = Options::default();
        o.written.on_map = true;
        let r = replay(t, &o).unwrap();
        assert_eq!(
            first_lines(&r),
            [
                "10000000-10001000 r--p 00000000 00:00 0 ",
                "10001000-10002000 r--p 00000000 00:00 0 "
            ]
        );
    }

    #[test]
    fn unknown_layouts_are_reported_not_checked() {
        let t = "\
10 clone(child_stack=NULL, flags=SIGCHLD) = 11
11 execve(\"/nonexistent/prog\", [\"p\"], 0x7ffc /* 1 var */) = 0
11 brk(NULL) = 0x555555559000
11 mprotect(0x555555557000, 4096, PROT_READ) = 0
11 exit_group(0) = ?
10 munmap(0x10001000, 4096) = 0
10 exit_group(0) = ?
";
        let r = replay(t, &Options::default()).unwrap();
        assert_eq!(r.unverifiable, (2, 1), "{}", r.summary());
        assert_eq!((r.calls, r.mismatched), (1, 0), "{}", r.summary());
        assert!(r.notes.iter().any(|n| n.contains("no ELF image")), "{:?}", r.notes);
        assert!(r.summary().contains("unknown layout (not checked): 2, of which 1 differ"));
        assert!(r.success());
    }

    #[test]
    fn figures_per_process() {
        // A fork child has its own figures; a thread's calls count in its process.
        let t = "\
10 mmap(0x10000000, 4096, PROT_READ, MAP_PRIVATE|MAP_ANONYMOUS|MAP_FIXED, -1, 0) = 0x10000000
10 clone(child_stack=NULL, flags=SIGCHLD) = 11
11 munmap(0x10000000, 4096) = 0
11 munmap(0x10000001, 4096) = 0
10 clone3({flags=CLONE_VM|CLONE_THREAD, stack=0x7f}, 88) = 12
12 mprotect(0x10000000, 4096, PROT_NONE) = 0
12 mmap(NULL, 4096, PROT_READ, MAP_PRIVATE|MAP_ANONYMOUS, -1, 0) = 0x20000000
11 exit_group(0) = ?
10 exit_group(0) = ?
";
        let r = replay(t, &Options::default()).unwrap();
        assert_eq!(r.processes.len(), 2, "{}", r.summary());
        let p10 = &r.processes[&10];
        assert_eq!((p10.calls, p10.matched, p10.mismatched), (3, 3, 0));
        assert_eq!(p10.threads.iter().copied().collect::<Vec<_>>(), [10, 12]);
        assert_eq!(p10.mmap_chosen, (1, 0), "the model picks its own address");
        assert_eq!(p10.address_agreement(), 0.0);
        let p11 = &r.processes[&11];
        assert_eq!((p11.calls, p11.matched, p11.mismatched), (2, 1, 1));
        assert_eq!(p11.address_agreement(), 1.0);
        assert_eq!(r.model_calls, 5);
        let s = r.summary();
        assert!(s.contains("processes: 2\n"), "{s}");
        assert!(
            s.contains(
                "  pid 11: calls: 2, matched: 1, mismatched: 1, result not recorded: 0, \
                 address agreement: 100.0% (0/0), threads: 1\n"
            ),
            "{s}"
        );
        assert!(r.throughput().starts_with("throughput: "));
    }

    #[test]
    fn processes_and_skips() {
        let t = "\
10 execve(\"/bin/x\", [\"x\"], 0x7ffc /* 1 var */) = 0
10 wait4(-1, NULL, 0, NULL) = -1 ECHILD (No child processes)
10 clone(child_stack=NULL, flags=CLONE_CHILD_CLEARTID|CLONE_CHILD_SETTID|SIGCHLD, child_tidptr=0x7f) = 11
10 clone3({flags=CLONE_VM|CLONE_THREAD, stack=0x7f} <unfinished ...>
12 munmap(0x10000, 4096) = 0
12 exit(0) = ?
10 <... clone3 resumed> => {parent_tid=[12]}, 88) = 12
11 exit_group(0) = ?
10 exit_group(0) = ?
";
        let r = replay(t, &Options::default()).unwrap();
        // /bin/x cannot be rebuilt: its one memory call is reported but not checkable.
        assert_eq!((r.calls, r.unverifiable), (0, (1, 0)));
        assert_eq!(r.skipped.get("wait4"), Some(&1));
        assert_eq!(r.process_events.get("clone3"), Some(&1));
        assert_eq!(r.final_maps.len(), 2, "the fork child has its own space");
        assert!(r.notes.iter().any(|n| n.contains("pid 12 appeared before")));
    }
}
