//! `mmkit`: the command-line tool.

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use mmkit::MmConfig;
use mmkit_cli::json;
use mmkit_cli::replay::{self, Options};

/// mmkit: a Linux-exact virtual-memory subsystem, on a simulated machine.
#[derive(Parser, Debug)]
#[command(name = "mmkit", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// A narrated tour of one process's address space: mmap, brk, mprotect splits and
    /// merges, errors, munmap, mremap, fork, mlock, statistics.
    Demo,
    /// Replay `strace -f -y -qq` logs against the address-space model and compare every
    /// result with the one Linux recorded.
    Replay(Box<ReplayArgs>),
    /// Read a `/proc/<pid>/maps` snapshot into the address-space model and print it back, or
    /// draw it as an SVG picture.
    Maps(MapsArgs),
}

#[derive(Args, Debug)]
struct MapsArgs {
    /// Write a picture of the address space to this SVG file (`-`: standard output) instead
    /// of printing the maps.
    #[arg(long, value_name = "OUT")]
    svg: Option<PathBuf>,
    /// The picture's title (default: the snapshot's path).
    #[arg(long)]
    title: Option<String>,
    /// The snapshot: `/proc/<pid>/maps` text, e.g. a copy of one or `/proc/self/maps`
    /// (`-`: standard input).
    #[arg(value_name = "MAPSFILE")]
    maps: PathBuf,
}

#[derive(Args, Debug)]
struct ReplayArgs {
    /// `/proc/<pid>/maps` right after the first execve, to seed the address space.
    #[arg(long, value_name = "FILE")]
    maps_before: Option<PathBuf>,
    /// Print the final maps of every modelled process.
    #[arg(long)]
    print_maps: bool,
    /// Compare the main process's final maps with this file (exit non-zero if they differ).
    #[arg(long, value_name = "FILE")]
    expect_maps: Option<PathBuf>,
    /// For each NAME.strace, use NAME.before and NAME.after beside it as --maps-before and
    /// --expect-maps (when they exist and those options are not given).
    #[arg(long)]
    siblings: bool,
    /// vm.max_map_count (default: the host's, else 65530).
    #[arg(long)]
    max_map_count: Option<usize>,
    /// vm.mmap_min_addr (default: the host's, else 4096).
    #[arg(long)]
    mmap_min_addr: Option<u64>,
    /// vm.overcommit_memory: 0 heuristic, 1 always, 2 never (default: the host's).
    #[arg(long)]
    overcommit_memory: Option<u64>,
    /// vm.overcommit_ratio in percent (default: the host's).
    #[arg(long)]
    overcommit_ratio: Option<u64>,
    /// Machine RAM in KiB for overcommit accounting (default: the host's MemTotal).
    #[arg(long)]
    ram_kb: Option<u64>,
    /// Swap in KiB (default: the host's SwapTotal).
    #[arg(long)]
    swap_kb: Option<u64>,
    /// RLIMIT_STACK in bytes (default 8 MiB); it also moves mmap_base, as arch/x86
    /// `mmap_base()` does.
    #[arg(long)]
    rlimit_stack: Option<u64>,
    /// RLIMIT_MEMLOCK in bytes (default 8 MiB).
    #[arg(long)]
    rlimit_memlock: Option<u64>,
    /// Place file mappings without THP alignment (as on a filesystem whose
    /// `get_unmapped_area` is not `thp_get_unmapped_area()`; ext4 and xfs have it).
    #[arg(long)]
    no_file_thp_align: bool,
    /// Assume the program writes each private writable mapping as soon as it creates it
    /// (mmap, brk): user-space writes decide anon_vma identity, which later merges depend on.
    #[arg(long)]
    assume_writes: bool,
    /// The process has CAP_SYS_RAWIO and CAP_IPC_LOCK.
    #[arg(long)]
    privileged: bool,
    /// Ignore the host's /proc/sys/vm and /proc/meminfo; use mmkit's built-in defaults.
    #[arg(long)]
    no_host: bool,
    /// Print the model's maps of the calling process just before this trace line.
    #[arg(long, value_name = "LINE")]
    maps_at: Option<usize>,
    /// How many mismatches to list.
    #[arg(long, default_value_t = 10)]
    show_mismatches: usize,
    /// Print one JSON document instead of the text report (schema `mmkit-replay/1`: summary,
    /// per-process figures, throughput, mismatches, skipped syscalls, notes, and with
    /// --print-maps the final maps of every process; see the `mmkit_cli::json` docs).
    #[arg(long)]
    json: bool,
    /// Draw the main process's final address space to this SVG file. With several traces,
    /// each gets its own file, named OUT with the trace's name before the extension.
    #[arg(long, value_name = "OUT")]
    svg: Option<PathBuf>,
    /// Never show a progress bar (it is shown only for long traces, when standard error is
    /// a terminal).
    #[arg(long)]
    no_progress: bool,
    /// The traces.
    #[arg(required = true, value_name = "TRACE")]
    traces: Vec<PathBuf>,
}

fn config(a: &ReplayArgs) -> Result<MmConfig, String> {
    let mut cfg = Options::default().cfg;
    if !a.no_host {
        cfg = mmkit_cli::host::apply_host_defaults(cfg);
    }
    if let Some(v) = a.max_map_count {
        cfg.max_map_count = v;
    }
    if let Some(v) = a.mmap_min_addr {
        cfg.mmap_min_addr = v;
    }
    if let Some(v) = a.overcommit_memory {
        cfg.overcommit = mmkit_cli::host::overcommit_mode(v)
            .ok_or_else(|| format!("--overcommit-memory must be 0, 1 or 2, not {v}"))?;
    }
    if let Some(v) = a.overcommit_ratio {
        cfg.overcommit_ratio = v;
    }
    if let Some(v) = a.ram_kb {
        cfg.total_ram_pages = v.saturating_mul(1024) / mmkit::PAGE_SIZE;
    }
    if let Some(v) = a.swap_kb {
        cfg.total_swap_pages = v.saturating_mul(1024) / mmkit::PAGE_SIZE;
    }
    if let Some(v) = a.rlimit_stack {
        cfg.rlimit_stack = v;
        cfg.mmap_base = MmConfig::compute_mmap_base(cfg.task_size, v, cfg.stack_guard_gap);
    }
    if let Some(v) = a.rlimit_memlock {
        cfg.rlimit_memlock = v;
    }
    if a.no_file_thp_align {
        cfg.file_thp_align = false;
    }
    cfg.cap_sys_rawio = a.privileged;
    cfg.cap_ipc_lock = a.privileged;
    Ok(cfg)
}

fn read(p: &PathBuf) -> Result<String, String> {
    if p.as_os_str() == "-" {
        let mut s = String::new();
        std::io::Read::read_to_string(&mut std::io::stdin(), &mut s)
            .map_err(|e| format!("standard input: {e}"))?;
        return Ok(s);
    }
    std::fs::read_to_string(p).map_err(|e| format!("{}: {e}", p.display()))
}

fn write_out(p: &Path, text: &str) -> Result<(), String> {
    if p.as_os_str() == "-" {
        let mut out = std::io::stdout().lock();
        return out.write_all(text.as_bytes()).map_err(|e| format!("standard output: {e}"));
    }
    std::fs::write(p, text).map_err(|e| format!("{}: {e}", p.display()))
}

/// Traces with at least this many lines get a progress bar (on a terminal).
const PROGRESS_MIN_LINES: usize = 20_000;

fn progress_bar(lines: usize, enabled: bool) -> Option<ProgressBar> {
    if !enabled || lines < PROGRESS_MIN_LINES || !std::io::stderr().is_terminal() {
        return None;
    }
    let pb = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
    let style = ProgressStyle::with_template(
        "{spinner} replay{msg} [{elapsed_precise}] [{wide_bar}] {human_pos}/{human_len} calls (eta {eta})",
    )
    .unwrap_or_else(|_| ProgressStyle::default_bar());
    pb.set_style(style);
    pb.set_message(": parsing the trace");
    pb.enable_steady_tick(std::time::Duration::from_millis(100));
    Some(pb)
}

/// The SVG path for trace number `i` of `n`: OUT itself for one trace, else OUT with the
/// trace's file stem before its extension (`out.svg` → `out.git-log.svg`).
fn svg_path(out: &Path, trace: &Path, n: usize) -> PathBuf {
    if n <= 1 || out.as_os_str() == "-" {
        return out.to_path_buf();
    }
    let stem = trace.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
    let base = out.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
    let ext = out.extension().map(|s| s.to_string_lossy().into_owned());
    let name = match ext {
        Some(e) => format!("{base}.{stem}.{e}"),
        None => format!("{base}.{stem}"),
    };
    out.with_file_name(name)
}

fn sibling(trace: &std::path::Path, ext: &str) -> Option<PathBuf> {
    let p = trace.with_extension(ext);
    p.exists().then_some(p)
}

fn run_replay(a: &ReplayArgs) -> Result<bool, String> {
    let cfg = config(a)?;
    if a.svg.as_ref().is_some_and(|p| p.as_os_str() == "-") {
        return Err("--svg needs a file name: standard output carries the report".into());
    }
    let mut ok = true;
    let mut doc = json::Document { schema: json::SCHEMA, traces: Vec::new() };
    for trace in &a.traces {
        let before = a
            .maps_before
            .clone()
            .or_else(|| a.siblings.then(|| sibling(trace, "before")).flatten());
        let after =
            a.expect_maps.clone().or_else(|| a.siblings.then(|| sibling(trace, "after")).flatten());
        let opts = Options {
            cfg: cfg.clone(),
            maps_before: before.as_ref().map(read).transpose()?,
            expect_maps: after.as_ref().map(read).transpose()?,
            show_mismatches: a.show_mismatches,
            maps_at: a.maps_at,
            written: mmkit_cli::maps::WrittenPolicy {
                on_map: a.assume_writes,
                anon_rw: a.assume_writes,
                ..Default::default()
            },
        };
        let text = read(trace)?;
        let pb = progress_bar(text.lines().count(), !a.no_progress);
        let report = match &pb {
            Some(pb) => replay::replay_with_progress(&text, &opts, &mut |done, total| {
                if done == 0 {
                    // Parsing is over: the rate and ETA are those of the replay.
                    pb.set_message("");
                    pb.set_length(total as u64);
                    pb.reset_elapsed();
                    pb.reset_eta();
                }
                pb.set_position(done as u64);
            }),
            None => replay::replay(&text, &opts),
        };
        if let Some(pb) = pb {
            pb.finish_and_clear();
        }
        let report = report.map_err(|e| format!("{}: {e}", trace.display()))?;
        if let Some(out) = &a.svg {
            let out = svg_path(out, trace, a.traces.len());
            let Some((pid, maps)) = &report.main_maps else {
                return Err(format!("{}: no process to draw", trace.display()));
            };
            let title = format!("{}: final address space of pid {pid}", trace.display());
            let svg = mmkit_cli::svg::render_maps_text(maps, &title)
                .map_err(|e| format!("{}: final maps: {e}", trace.display()))?;
            write_out(&out, &svg)?;
        }
        if a.json {
            doc.traces.push(json::trace_report(
                &trace.display().to_string(),
                &report,
                a.maps_at,
                a.print_maps,
            ));
        } else {
            println!("== replay of {} ==", trace.display());
            print!("{}", report.summary());
            print!("{}", report.throughput());
            if let Some(m) = &report.maps_at {
                println!("-- model maps before line {} --", a.maps_at.unwrap_or(0));
                print!("{m}");
            }
            if a.print_maps {
                for (pid, maps) in &report.final_maps {
                    println!("-- final maps of pid {pid} --");
                    print!("{maps}");
                }
            }
        }
        ok &= report.success();
    }
    if a.json {
        print!("{}", json::to_string(&doc));
    }
    Ok(ok)
}

fn run_maps(a: &MapsArgs) -> Result<(), String> {
    let text = read(&a.maps)?;
    let name = if a.maps.as_os_str() == "-" {
        "standard input".to_string()
    } else {
        a.maps.display().to_string()
    };
    let (space, vsyscall) = mmkit_cli::maps::load_space(&text, Options::default().cfg)
        .map_err(|e| format!("{name}: {e}"))?;
    let maps = mmkit::procfs::maps_string(&space, vsyscall);
    match &a.svg {
        Some(out) => {
            let title = a.title.clone().unwrap_or(name);
            let svg = mmkit_cli::svg::render_maps_text(&maps, &title).map_err(|e| e.to_string())?;
            write_out(out, &svg)
        }
        None => write_out(Path::new("-"), &maps),
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Demo => match mmkit_cli::demo::run() {
            Ok(text) => {
                print!("{text}");
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("mmkit demo: error: {e}");
                ExitCode::from(2)
            }
        },
        Command::Replay(a) => match run_replay(&a) {
            Ok(true) => ExitCode::SUCCESS,
            Ok(false) => ExitCode::from(1),
            Err(e) => {
                eprintln!("mmkit replay: error: {e}");
                ExitCode::from(2)
            }
        },
        Command::Maps(a) => match run_maps(&a) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("mmkit maps: error: {e}");
                ExitCode::from(2)
            }
        },
    }
}
