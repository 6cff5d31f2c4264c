//! Replays of the extra traces in `tests/traces` (see its README): error paths, fork, vfork
//! and exec, shared and file mappings.

use std::path::{Path, PathBuf};

use mmkit::MmConfig;
use mmkit_cli::replay::{Options, Report};

mod common;
use common::replay_trace;

fn dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/traces")
}

fn run(name: &str, with_after: bool) -> Report {
    // Recorded as root: CAP_IPC_LOCK and CAP_SYS_RAWIO.
    let cfg = MmConfig { cap_ipc_lock: true, cap_sys_rawio: true, ..Options::default().cfg };
    replay_trace(&dir(), name, with_after, cfg)
}

/// Children that exec are rebuilt from the host's ELF files; without them their calls cannot
/// be checked.
fn host_lacks_images(r: &Report) -> bool {
    let missing = r.notes.iter().any(|n| n.contains("no ELF image"));
    if missing {
        eprintln!("skipping: this host lacks a traced program's ELF files: {:?}", r.notes);
    }
    missing
}

#[test]
fn stress_results_and_maps() {
    let r = run("stress", true);
    assert!(r.calls >= 60);
    assert_eq!(r.mismatched, 0, "{}", r.summary());
    assert_eq!(r.address_agreement(), 1.0, "{}", r.summary());
    assert_eq!(r.process_events.get("clone"), Some(&1), "one fork");
    assert_eq!(r.final_maps.len(), 2, "parent and fork child");
    let d = r.expect_diff.as_ref().unwrap();
    assert!(d.is_empty(), "final maps differ:\n{}", d.join("\n"));
}

#[test]
fn stress2_error_paths() {
    let r = run("stress2", true);
    assert!(r.calls >= 450);
    assert_eq!(r.mismatched, 0, "{}", r.summary());
    assert_eq!(r.address_agreement(), 1.0, "{}", r.summary());
    let d = r.expect_diff.as_ref().unwrap();
    assert!(d.is_empty(), "final maps differ:\n{}", d.join("\n"));
}

#[test]
fn random_syscall_sequences() {
    for name in ["rnd4", "rnd8"] {
        let r = run(name, true);
        assert!(r.calls >= 2000);
        assert_eq!(r.mismatched, 0, "{name}: {}", r.summary());
        assert_eq!(r.address_agreement(), 1.0, "{name}: {}", r.summary());
        let d = r.expect_diff.as_ref().unwrap();
        assert!(d.is_empty(), "{name}: final maps differ:\n{}", d.join("\n"));
    }
}

#[test]
fn python_threads_fork_and_subprocess() {
    let r = run("py-mix", false);
    if host_lacks_images(&r) {
        return;
    }
    assert_eq!(r.mismatched, 0, "{}", r.summary());
    assert_eq!(r.address_agreement(), 1.0, "{}", r.summary());
    assert!(r.process_events.contains_key("vfork") && r.process_events.contains_key("clone3"));
}

#[test]
fn shell_pipeline_children_exec() {
    let r = run("bashpipe", true);
    if host_lacks_images(&r) {
        return;
    }
    assert_eq!(r.mismatched, 0, "{}", r.summary());
    assert_eq!(r.address_agreement(), 1.0, "{}", r.summary());
    // bash plus three children that exec (ls, sort, head).
    assert_eq!(r.process_events.get("execve"), Some(&4));
    let d = r.expect_diff.as_ref().unwrap();
    assert!(d.is_empty(), "final maps differ:\n{}", d.join("\n"));
}
