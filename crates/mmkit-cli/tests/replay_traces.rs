//! Replays every real-program trace of `shared/traces` against the model: each must reproduce
//! every recorded return value (errno included), and the deterministic ones must end with the
//! maps of their `.after` snapshot (issue 2, deliverable 8d).

use std::path::Path;
use std::process::Command;

use mmkit_cli::replay::{replay, Options, Report};

mod common;
use common::{read, replay_trace, traces_dir};

/// Replays NAME with its `.before` snapshot and, when `with_after`, its `.after` as the
/// expected final maps. The recorded runs used Linux's defaults, which are mmkit's.
fn run(dir: &Path, name: &str, with_after: bool) -> Report {
    replay_trace(dir, name, with_after, Options::default().cfg)
}

fn assert_results(name: &str, r: &Report) {
    assert!(r.calls > 0, "{name}: no memory calls replayed");
    assert_eq!(r.mismatched, 0, "{name}: return-value mismatches:\n{}", r.summary());
}

fn assert_maps(name: &str, r: &Report) {
    let d = r.expect_diff.as_ref().expect("expected maps given");
    assert!(d.is_empty(), "{name}: final maps differ from .after:\n{}", d.join("\n"));
}

#[test]
fn git_log() {
    let Some(dir) = traces_dir() else { return };
    let r = run(&dir, "git-log", true);
    assert_results("git-log", &r);
    assert_maps("git-log", &r);
}

#[test]
fn python_json() {
    let Some(dir) = traces_dir() else { return };
    let r = run(&dir, "python-json", true);
    assert_results("python-json", &r);
    assert_maps("python-json", &r);
}

#[test]
fn perl_hash() {
    // The .after snapshot comes from a second run in which perl's heap top may differ by a
    // page (README): every line but the [heap] one must match, and [heap] must start at the
    // same address.
    let Some(dir) = traces_dir() else { return };
    let r = run(&dir, "perl-hash", true);
    assert_results("perl-hash", &r);
    let d = r.expect_diff.as_ref().unwrap();
    let non_heap: Vec<_> = d.iter().filter(|l| !l.ends_with("[heap]")).collect();
    assert!(non_heap.is_empty(), "perl-hash: final maps differ:\n{}", d.join("\n"));
    let heap_starts: Vec<_> = d.iter().map(|l| l[1..].split('-').next().unwrap_or("")).collect();
    assert!(heap_starts.windows(2).all(|w| w[0] == w[1]), "perl-hash: [heap] start differs: {d:?}");
}

#[test]
fn python_threads_results() {
    // Thread timing makes this trace's .after unreproducible; its return values must match.
    let Some(dir) = traces_dir() else { return };
    let r = run(&dir, "python-threads", false);
    assert_results("python-threads", &r);
    assert!(r.process_events.get("clone3").copied().unwrap_or(0) >= 6);
}

#[test]
fn every_trace_in_the_directory_replays() {
    // Traces added later (any NAME.strace with a NAME.before) must replay without errors.
    let Some(dir) = traces_dir() else { return };
    let mut n = 0;
    for e in std::fs::read_dir(&dir).unwrap() {
        let p = e.unwrap().path();
        if p.extension().is_some_and(|x| x == "strace") && p.with_extension("before").exists() {
            let name = p.file_stem().unwrap().to_string_lossy().into_owned();
            let r = run(&dir, &name, false);
            assert_results(&name, &r);
            n += 1;
        }
    }
    assert!(n >= 4, "expected the four shared traces, found {n}");
}

#[test]
fn cli_replay_reports_and_prints_maps() {
    let Some(dir) = traces_dir() else { return };
    let out = Command::new(env!("CARGO_BIN_EXE_mmkit"))
        .args(["replay", "--no-host", "--print-maps", "--maps-before"])
        .arg(dir.join("git-log.before"))
        .arg("--expect-maps")
        .arg(dir.join("git-log.after"))
        .arg(dir.join("git-log.strace"))
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("calls: "), "{stdout}");
    assert!(stdout.contains("address agreement: "), "{stdout}");
    assert!(stdout.contains("-- final maps of pid 10347 --"), "{stdout}");
    assert!(stdout.contains("[vsyscall]"), "{stdout}");
    let ok = out.status.success();
    assert_eq!(
        ok,
        !stdout.contains("mismatch at line") && stdout.contains("identical"),
        "{stdout}"
    );
}

#[test]
fn cli_malformed_trace_is_a_clear_error() {
    let dir = std::env::temp_dir().join(format!("mmkit-replay-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let t = dir.join("bad.strace");
    std::fs::write(&t, "1 brk(NULL) = 0x1000\n1 mmap(NULL, 4096, PROT_READ\n").unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_mmkit"))
        .args(["replay", "--no-host"])
        .arg(&t)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("line 2:"), "{stderr}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn cli_mismatch_exits_non_zero() {
    // brk on an empty model space cannot return the recorded value.
    let dir = std::env::temp_dir().join(format!("mmkit-replay-mm-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let t = dir.join("m.strace");
    std::fs::write(&t, "1 munmap(0x1001, 4096) = 0\n").unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_mmkit"))
        .args(["replay", "--no-host"])
        .arg(&t)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    // munmap of an unaligned address is EINVAL in Linux, never 0.
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(stdout.contains("mismatch at line 1"), "{stdout}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// The executable an `execve` line names, and the inode its `.before` shows for it.
fn exec_target(dir: &Path, name: &str) -> Option<(String, u64)> {
    let trace = read(&dir.join(format!("{name}.strace")));
    let first = trace.lines().find(|l| l.contains(" execve(\""))?;
    let path = first.split('"').nth(1)?.to_string();
    let before = read(&dir.join(format!("{name}.before")));
    let line = before.lines().find(|l| l.ends_with(&format!(" {path}")))?;
    let inode = line.split_whitespace().nth(4)?.parse().ok()?;
    Some((path, inode))
}

#[cfg(unix)]
fn host_has(path: &str, inode: u64) -> bool {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata(path).map(|m| m.ino() == inode).unwrap_or(false)
}

#[cfg(not(unix))]
fn host_has(_path: &str, _inode: u64) -> bool {
    false
}

#[test]
fn exec_image_built_from_elf_matches_before() {
    // Without a snapshot, replay builds the exec layout as load_elf_binary() does, from the
    // program headers on this host. Where the host has the traced binary (same inode), that
    // layout must be the recorded .before, byte for byte, and the whole trace must replay.
    let Some(dir) = traces_dir() else { return };
    let mut checked = 0;
    for name in ["git-log", "perl-hash", "python-json", "python-threads"] {
        let Some((path, inode)) = exec_target(&dir, name) else { continue };
        if !host_has(&path, inode) {
            eprintln!("{name}: {path} (inode {inode}) is not on this host; skipped");
            continue;
        }
        let only_exec = format!("1 execve(\"{path}\", [\"x\"], 0x7ffc /* 1 var */) = 0\n");
        let r = replay(&only_exec, &Options::default()).unwrap();
        assert_eq!(r.final_maps.len(), 1, "{name}: {:?}", r.notes);
        assert_eq!(r.final_maps[0].1, read(&dir.join(format!("{name}.before"))), "{name}");
        let opts = Options {
            expect_maps: Some(read(&dir.join(format!("{name}.after")))),
            ..Options::default()
        };
        let r = replay(&read(&dir.join(format!("{name}.strace"))), &opts).unwrap();
        assert_results(name, &r);
        if name == "git-log" || name == "python-json" {
            assert_maps(name, &r);
        }
        checked += 1;
    }
    eprintln!("exec images checked against .before: {checked}");
}
