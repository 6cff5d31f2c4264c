//! `mmkit`: the command-line tool.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};
use mmkit::MmConfig;
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
    /// Run the demo scenario.
    Demo,
    /// Replay `strace -f -y -qq` logs against the address-space model and compare every
    /// result with the one Linux recorded.
    Replay(ReplayArgs),
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
    /// How many mismatches to list.
    #[arg(long, default_value_t = 10)]
    show_mismatches: usize,
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
        cfg.total_ram_pages = v * 1024 / mmkit::PAGE_SIZE;
    }
    if let Some(v) = a.swap_kb {
        cfg.total_swap_pages = v * 1024 / mmkit::PAGE_SIZE;
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
    std::fs::read_to_string(p).map_err(|e| format!("{}: {e}", p.display()))
}

fn sibling(trace: &std::path::Path, ext: &str) -> Option<PathBuf> {
    let p = trace.with_extension(ext);
    p.exists().then_some(p)
}

fn run_replay(a: &ReplayArgs) -> Result<bool, String> {
    let cfg = config(a)?;
    let mut ok = true;
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
            written: mmkit_cli::maps::WrittenPolicy {
                on_map: a.assume_writes,
                anon_rw: a.assume_writes,
                ..Default::default()
            },
            ..Options::default()
        };
        let text = read(trace)?;
        let report =
            replay::replay(&text, &opts).map_err(|e| format!("{}: {e}", trace.display()))?;
        println!("== replay of {} ==", trace.display());
        print!("{}", report.summary());
        if a.print_maps {
            for (pid, maps) in &report.final_maps {
                println!("-- final maps of pid {pid} --");
                print!("{maps}");
            }
        }
        ok &= report.success();
    }
    Ok(ok)
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Demo => {
            println!("mmkit demo: coming with the simulator");
            ExitCode::SUCCESS
        }
        Command::Replay(a) => match run_replay(&a) {
            Ok(true) => ExitCode::SUCCESS,
            Ok(false) => ExitCode::from(1),
            Err(e) => {
                eprintln!("mmkit replay: error: {e}");
                ExitCode::from(2)
            }
        },
    }
}
