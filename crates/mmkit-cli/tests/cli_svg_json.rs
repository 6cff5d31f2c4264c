//! The `mmkit` command line: `maps --svg` and `replay --svg` pictures (well-formed XML, one
//! shape per VMA), `replay --json` (parses, and its figures are the text summary's), per-process
//! summaries, help and errors.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use assert_cmd::Command;

mod common;
use common::traces_dir;

fn tmp_dir(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("mmkit-cli-{tag}-{}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn mmkit() -> Command {
    Command::cargo_bin("mmkit").unwrap()
}

/// Parses an SVG and returns, for every shape of class `vma`, its `<title>` (the maps line).
fn vma_shapes(svg: &str) -> Vec<String> {
    let doc = roxmltree::Document::parse(svg).unwrap_or_else(|e| panic!("not XML: {e}"));
    let root = doc.root_element();
    assert_eq!(root.tag_name().name(), "svg");
    assert_eq!(root.tag_name().namespace(), Some("http://www.w3.org/2000/svg"));
    doc.descendants()
        .filter(|n| {
            n.is_element()
                && n.attribute("class").is_some_and(|c| c.split_whitespace().any(|t| t == "vma"))
        })
        .map(|n| {
            assert_eq!(n.tag_name().name(), "rect", "VMA shapes are rects");
            n.children()
                .find(|c| c.has_tag_name("title"))
                .and_then(|t| t.text())
                .unwrap_or_default()
                .to_string()
        })
        .collect()
}

/// The first two fields (range and permissions) of every line of a maps text.
fn ranges(maps: &str) -> Vec<String> {
    maps.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| l.split_whitespace().take(2).collect::<Vec<_>>().join(" "))
        .collect()
}

fn assert_one_shape_per_vma(svg: &str, maps: &str) {
    let shapes = vma_shapes(svg);
    let want = ranges(maps);
    assert_eq!(shapes.len(), want.len(), "one shape per VMA");
    for (s, w) in shapes.iter().zip(&want) {
        assert!(s.starts_with(w.as_str()), "shape {s:?} for maps line {w:?}");
    }
}

#[test]
fn maps_svg_of_a_real_process_with_100_plus_vmas() {
    let Some(dir) = traces_dir() else { return };
    // python-json.after is the largest snapshot: 124 VMAs (vsyscall included).
    let after = dir.join("python-json.after");
    let maps = std::fs::read_to_string(&after).unwrap();
    assert!(maps.lines().count() >= 100);
    let out = tmp_dir("maps-svg").join("pj.svg");
    mmkit().args(["maps", "--svg"]).arg(&out).arg(&after).assert().success();
    let svg = std::fs::read_to_string(&out).unwrap();
    assert_one_shape_per_vma(&svg, &maps);
    // A legend, compressed gaps with their size, grouped libraries.
    assert!(svg.contains(r#"class="legend""#));
    assert!(svg.contains("gap 42.7 TiB"), "the gap between heap and mmap area is labelled");
    assert!(svg.contains("libc.so.6</tspan>"), "library names are shown once per group");
    assert!(svg.contains("· 5 VMAs"));
    // Every colour class appears.
    for k in ["file", "anon", "heap", "stack", "special", "p-x", "p-w", "p-r"] {
        assert!(svg.contains(&format!(" {k}")), "class {k} missing");
    }
}

/// A synthetic snapshot of 150 VMAs of every kind, with names XML must escape.
fn synthetic_maps() -> String {
    let mut s = String::new();
    let mut addr: u64 = 0x5555_5555_4000;
    let names = [
        "/usr/lib/lib&<weird>\"name\".so",
        "",
        "[anon:glibc malloc]",
        "/dev/zero (deleted)",
        "/opt/x y/data.bin",
    ];
    for i in 0..150u64 {
        let len = 0x1000 << (i % 9);
        let name = if i == 0 {
            "[heap]"
        } else if i == 149 {
            "[stack]"
        } else {
            names[(i as usize / 3) % names.len()]
        };
        let (perm, dev, inode) = match name {
            "/dev/zero (deleted)" => ("rw-s", "00:01", 77),
            n if n.starts_with('/') => {
                (["r--p", "r-xp", "rw-p", "---p"][i as usize % 4], "fe:00", 1234)
            }
            _ => (["rw-p", "---p", "r--p"][i as usize % 3], "00:00", 0),
        };
        let line = format!(
            "{addr:08x}-{:08x} {perm} {:08x} {dev} {inode}",
            addr + len,
            if inode == 0 { 0 } else { (i % 5) * 0x1000 }
        );
        if name.is_empty() {
            s.push_str(&format!("{line} \n"));
        } else {
            s.push_str(&format!("{line:<72} {name}\n"));
        }
        addr += len;
        if i % 7 == 0 {
            addr += 0x1000 << (i % 30);
        }
    }
    s
}

#[test]
fn maps_svg_of_a_synthetic_150_vma_space() {
    let d = tmp_dir("synthetic");
    let input = d.join("s.maps");
    let maps = synthetic_maps();
    std::fs::write(&input, &maps).unwrap();
    let out = d.join("s.svg");
    mmkit()
        .args(["maps", "--title", "a <synthetic> & odd space", "--svg"])
        .arg(&out)
        .arg(&input)
        .assert()
        .success();
    let svg = std::fs::read_to_string(&out).unwrap();
    assert_one_shape_per_vma(&svg, &maps);
    assert_eq!(vma_shapes(&svg).len(), 150);
    assert!(svg.contains("hatch"), "no-access VMAs are hatched");
    assert!(svg.contains("vma shmem p-w shared"));
    // SVG to standard output.
    let o = mmkit().args(["maps", "--svg", "-"]).arg(&input).output().unwrap();
    assert!(o.status.success());
    assert_eq!(vma_shapes(&String::from_utf8(o.stdout).unwrap()).len(), 150);
}

#[test]
fn maps_without_svg_prints_the_models_maps() {
    let Some(dir) = traces_dir() else { return };
    let before = dir.join("git-log.before");
    let text = std::fs::read_to_string(&before).unwrap();
    mmkit().arg("maps").arg(&before).assert().success().stdout(text);
}

#[test]
fn replay_svg_draws_the_final_state() {
    let Some(dir) = traces_dir() else { return };
    let out = tmp_dir("replay-svg").join("git.svg");
    mmkit()
        .args(["replay", "--no-host", "--siblings", "--svg"])
        .arg(&out)
        .arg(dir.join("git-log.strace"))
        .assert()
        .success();
    let svg = std::fs::read_to_string(&out).unwrap();
    // The final maps are identical to .after (the replay succeeded).
    let after = std::fs::read_to_string(dir.join("git-log.after")).unwrap();
    assert_one_shape_per_vma(&svg, &after);
    assert!(svg.contains("final address space of pid 10347"));
}

/// Figures of the text report: the totals line and every per-process line, per trace.
#[derive(Debug, Default, PartialEq)]
struct TextFigures {
    totals: [u64; 4],
    agreement: (u64, u64),
    processes: BTreeMap<u64, [u64; 7]>,
    skipped: String,
}

fn numbers_after(s: &str, key: &str) -> u64 {
    let i = s.find(key).unwrap_or_else(|| panic!("{key} missing in {s:?}")) + key.len();
    s[i..].chars().take_while(|c| c.is_ascii_digit()).collect::<String>().parse().unwrap()
}

fn parse_text(stdout: &str) -> Vec<TextFigures> {
    let mut out: Vec<TextFigures> = Vec::new();
    for l in stdout.lines() {
        if l.starts_with("== replay of ") {
            out.push(TextFigures::default());
        }
        let Some(f) = out.last_mut() else { continue };
        if l.starts_with("calls: ") {
            f.totals = [
                numbers_after(l, "calls: "),
                numbers_after(l, "matched: "),
                numbers_after(l, "mismatched: "),
                numbers_after(l, "not recorded: "),
            ];
        } else if let Some(rest) = l.strip_prefix("address agreement: ") {
            let frac = rest.split('(').nth(1).unwrap();
            f.agreement = (numbers_after(frac, ""), numbers_after(frac, "/"));
        } else if let Some(rest) = l.strip_prefix("  pid ") {
            let pid = numbers_after(rest, "");
            let frac = rest.split("agreement: ").nth(1).unwrap().split('(').nth(1).unwrap();
            f.processes.insert(
                pid,
                [
                    numbers_after(rest, "calls: "),
                    numbers_after(rest, "matched: "),
                    numbers_after(rest, "mismatched: "),
                    numbers_after(rest, "not recorded: "),
                    numbers_after(frac, ""),
                    numbers_after(frac, "/"),
                    numbers_after(rest, "threads: "),
                ],
            );
        } else if let Some(rest) = l.strip_prefix("skipped syscalls: ") {
            f.skipped = rest.to_string();
        }
    }
    out
}

fn json_figures(t: &serde_json::Value) -> TextFigures {
    let u = |v: &serde_json::Value| v.as_u64().unwrap_or_else(|| panic!("not a count: {v}"));
    let s = &t["summary"];
    let mut f = TextFigures {
        totals: [
            u(&s["calls"]),
            u(&s["matched"]),
            u(&s["mismatched"]),
            u(&s["result_not_recorded"]),
        ],
        agreement: (u(&s["address_agreement"]["agree"]), u(&s["address_agreement"]["total"])),
        ..Default::default()
    };
    for p in t["processes"].as_array().unwrap() {
        f.processes.insert(
            u(&p["pid"]),
            [
                u(&p["calls"]),
                u(&p["matched"]),
                u(&p["mismatched"]),
                u(&p["result_not_recorded"]),
                u(&p["address_agreement"]["agree"]),
                u(&p["address_agreement"]["total"]),
                p["threads"].as_array().unwrap().len() as u64,
            ],
        );
    }
    let skipped = s["skipped_syscalls"].as_object().unwrap();
    f.skipped = if skipped.is_empty() {
        "none".into()
    } else {
        skipped.iter().map(|(k, v)| format!("{k} ×{}", u(v))).collect::<Vec<_>>().join(", ")
    };
    f
}

fn shared_traces(dir: &Path) -> Vec<PathBuf> {
    ["git-log", "perl-hash", "python-json", "python-threads"]
        .iter()
        .map(|n| dir.join(format!("{n}.strace")))
        .collect()
}

#[test]
fn json_figures_equal_the_text_summary() {
    let Some(dir) = traces_dir() else { return };
    let traces = shared_traces(&dir);
    let text = mmkit().args(["replay", "--no-host", "--siblings"]).args(&traces).output().unwrap();
    let json = mmkit()
        .args(["replay", "--no-host", "--siblings", "--json"])
        .args(&traces)
        .output()
        .unwrap();
    // perl-hash's .after differs by a page of heap (see the traces' README): both exit 1.
    assert_eq!(text.status.code(), json.status.code());
    let text = String::from_utf8(text.stdout).unwrap();
    let doc: serde_json::Value = serde_json::from_slice(&json.stdout)
        .unwrap_or_else(|e| panic!("--json output is not JSON: {e}"));
    assert_eq!(doc["schema"], "mmkit-replay/1");
    let from_text = parse_text(&text);
    let jt = doc["traces"].as_array().unwrap();
    assert_eq!(jt.len(), 4);
    assert_eq!(from_text.len(), 4);
    for (t, f) in jt.iter().zip(&from_text) {
        let name = t["trace"].as_str().unwrap();
        assert_eq!(&json_figures(t), f, "{name}");
        // The shared traces replay without a single mismatch.
        assert_eq!(t["summary"]["mismatched"], 0, "{name}");
        assert!(t["summary"]["calls"].as_u64().unwrap() > 0);
        assert!(t["mismatches"].as_array().unwrap().is_empty());
        assert!(t["throughput"]["model_calls"].as_u64().unwrap() > 0);
        assert!(t["final_maps"].is_null(), "final maps only with --print-maps");
        let totals: u64 =
            t["processes"].as_array().unwrap().iter().map(|p| p["calls"].as_u64().unwrap()).sum();
        assert_eq!(totals, f.totals[0], "{name}: processes add up to the total");
    }
    // python-threads: one process, its threads counted.
    let threads = &jt[3]["processes"][0]["threads"];
    assert!(threads.as_array().unwrap().len() >= 7, "{threads}");
    assert_eq!(jt[1]["expect_maps"]["identical"], false);
    assert_eq!(jt[2]["expect_maps"]["identical"], true);
    assert!(text.contains("throughput: "));
    assert!(!String::from_utf8_lossy(&json.stdout).contains("== replay of"));
}

#[test]
fn json_with_print_maps_has_the_final_maps() {
    let Some(dir) = traces_dir() else { return };
    let out = mmkit()
        .args(["replay", "--no-host", "--siblings", "--json", "--print-maps"])
        .arg(dir.join("python-json.strace"))
        .output()
        .unwrap();
    assert!(out.status.success());
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let t = &doc["traces"][0];
    assert_eq!(t["success"], true);
    let maps = t["final_maps"][0]["maps"].as_array().unwrap();
    let after = std::fs::read_to_string(dir.join("python-json.after")).unwrap();
    let want: Vec<&str> = after.lines().collect();
    assert_eq!(maps.len(), want.len());
    assert_eq!(maps[0], want[0]);
    assert_eq!(t["processes"][0]["pid"], t["final_maps"][0]["pid"]);
}

#[test]
fn every_subcommand_has_help() {
    for sub in [&["--help"][..], &["replay", "--help"], &["maps", "--help"], &["demo", "--help"]] {
        mmkit().args(sub).assert().success();
    }
    let help = mmkit().args(["replay", "--help"]).output().unwrap();
    let help = String::from_utf8(help.stdout).unwrap();
    for opt in ["--json", "--svg", "--no-progress"] {
        assert!(help.contains(opt), "replay --help lacks {opt}");
    }
}

fn assert_clean_error(cmd: &mut Command, want: &str) {
    let out = cmd.output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains(want), "{stderr:?} lacks {want:?}");
    assert!(!stderr.contains("panicked"), "{stderr}");
}

#[test]
fn bad_input_is_a_clear_error() {
    let d = tmp_dir("errors");
    assert_clean_error(
        mmkit().args(["maps", "/nonexistent/maps"]),
        "mmkit maps: error: /nonexistent/maps",
    );
    let bad = d.join("bad.maps");
    std::fs::write(&bad, "00400000-00401000 r-xp 00000000 00:00 0 \n00401000-00402000 rwq 0 0 0\n")
        .unwrap();
    assert_clean_error(mmkit().arg("maps").arg(&bad), "line 2: bad permissions");
    let overlap = d.join("overlap.maps");
    std::fs::write(
        &overlap,
        "00400000-00403000 r-xp 00000000 00:00 0 \n00401000-00402000 rw-p 00000000 00:00 0 \n",
    )
    .unwrap();
    assert_clean_error(mmkit().arg("maps").arg(&overlap), "overlaps");
    // An unwritable SVG path.
    let Some(dir) = traces_dir() else { return };
    assert_clean_error(
        mmkit().args(["maps", "--svg", "/nonexistent/dir/x.svg"]).arg(dir.join("git-log.before")),
        "/nonexistent/dir/x.svg",
    );
    assert_clean_error(
        mmkit()
            .args(["replay", "--json", "--svg", "/nonexistent/dir/x.svg"])
            .arg(dir.join("git-log.strace")),
        "mmkit replay: error: /nonexistent/dir/x.svg",
    );
    assert_clean_error(
        mmkit().args(["replay", "--svg", "-"]).arg(dir.join("git-log.strace")),
        "--svg needs a file name",
    );
    assert_clean_error(mmkit().arg("no-such-command"), "unrecognized subcommand");
    assert_clean_error(mmkit().args(["maps"]), "MAPSFILE");
}

#[test]
fn several_traces_get_one_svg_each() {
    let Some(dir) = traces_dir() else { return };
    let d = tmp_dir("multi-svg");
    mmkit()
        .args(["replay", "--no-host", "--siblings", "--json", "--svg"])
        .arg(d.join("out.svg"))
        .arg(dir.join("git-log.strace"))
        .arg(dir.join("python-json.strace"))
        .assert()
        .success();
    for n in ["out.git-log.svg", "out.python-json.svg"] {
        let svg = std::fs::read_to_string(d.join(n)).unwrap();
        assert!(!vma_shapes(&svg).is_empty(), "{n}");
    }
}
