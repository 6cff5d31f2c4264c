//! Helpers shared by the CLI integration tests: where the recorded traces live, reading
//! them, and replaying one recorded program against the model.
#![allow(dead_code)] // each test file uses its own subset

use std::path::{Path, PathBuf};

use mmkit::MmConfig;
use mmkit_cli::replay::{replay, Options, Report};

/// `shared/traces` (real strace recordings), or `None` with a note when it is missing.
pub fn traces_dir() -> Option<PathBuf> {
    let d = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/traces");
    if d.is_dir() {
        Some(d)
    } else {
        eprintln!("skipping: {} is missing", d.display());
        None
    }
}

pub fn read(p: &Path) -> String {
    std::fs::read_to_string(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

/// Replays `dir/NAME.strace` under `cfg` with its `.before` snapshot and, when
/// `with_after`, its `.after` as the expected final maps.
pub fn replay_trace(dir: &Path, name: &str, with_after: bool, cfg: MmConfig) -> Report {
    let opts = Options {
        cfg,
        maps_before: Some(read(&dir.join(format!("{name}.before")))),
        expect_maps: with_after.then(|| read(&dir.join(format!("{name}.after")))),
        show_mismatches: 20,
        ..Options::default()
    };
    let r = replay(&read(&dir.join(format!("{name}.strace"))), &opts)
        .unwrap_or_else(|e| panic!("{name}: {e}"));
    eprintln!("{name}:\n{}", r.summary());
    r
}
