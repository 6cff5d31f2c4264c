//! `/proc/<pid>/maps` text is byte-identical to Linux's: every line of real maps files (the
//! host's own `/proc/self/maps` and every snapshot in `shared/traces` and `tests/traces`),
//! read back into VMAs and printed by `mmkit::procfs`, comes out unchanged.

use std::path::Path;

use mmkit::{procfs, AddressSpace, MmConfig};
use mmkit_cli::maps::{self, FileRegistry, WrittenPolicy};

/// Parses `text`, seeds a space with it (break from `[heap]`, stack pointer inside
/// `[stack]`), prints it back.
fn roundtrip(text: &str) -> String {
    let lines = maps::parse(text).expect("parsable maps");
    let mut files = FileRegistry::new();
    files.learn(&lines);
    let seed = maps::seed(&lines, &mut files, WrittenPolicy::default(), 0);
    let mut space = AddressSpace::new(MmConfig::default());
    for v in seed.vmas {
        space.insert_vma_unmerged(v).expect("non-overlapping maps");
    }
    if let Some((s, e)) = seed.heap {
        space.set_brk_base(s, e);
    }
    if let Some(sp) = seed.start_stack {
        space.set_start_stack(sp);
    }
    procfs::maps_string(&space, seed.has_vsyscall)
}

fn check_file(p: &Path) {
    let text = std::fs::read_to_string(p).unwrap();
    let out = roundtrip(&text);
    for (a, b) in text.lines().zip(out.lines()) {
        assert_eq!(a, b, "{}", p.display());
    }
    assert_eq!(text, out, "{}", p.display());
}

#[test]
fn host_proc_self_maps() {
    if !cfg!(target_os = "linux") {
        eprintln!("skipping: not Linux");
        return;
    }
    let text = std::fs::read_to_string("/proc/self/maps").unwrap();
    assert_eq!(roundtrip(&text), text);
}

#[test]
fn every_snapshot_file() {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut n = 0;
    for dir in [manifest.join("../../../shared/traces"), manifest.join("tests/traces")] {
        let Ok(rd) = std::fs::read_dir(&dir) else {
            eprintln!("skipping {}: missing", dir.display());
            continue;
        };
        for e in rd {
            let p = e.unwrap().path();
            if p.extension().is_some_and(|x| x == "before" || x == "after") {
                check_file(&p);
                n += 1;
            }
        }
    }
    assert!(n >= 8, "only {n} snapshots found");
}
