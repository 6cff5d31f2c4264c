//! The `--json` output of `mmkit replay`: one JSON document on standard output, whose schema
//! is the set of types below (field names are stable; new fields may be added, none is
//! removed or renamed within a `schema` version).
//!
//! ```text
//! {
//!   "schema": "mmkit-replay/1",
//!   "traces": [ {
//!     "trace": "git-log.strace",            // the path as given
//!     "success": true,                      // no mismatch and the expected maps (if any) matched
//!     "summary": {
//!       "calls": 87, "matched": 87, "mismatched": 0, "result_not_recorded": 0,
//!       "not_checked": { "calls": 0, "differ": 0 },   // processes of unknown layout
//!       "address_agreement": { "ratio": 1.0, "agree": 30, "total": 30,
//!                              "mmap": { "agree": 30, "total": 30 },
//!                              "mremap": { "agree": 0, "total": 0 } },
//!       "process_events": { "execve": 1, "exit_group": 1 },
//!       "skipped_syscalls": { "arch_prctl": 2 }
//!     },
//!     "throughput": { "model_calls": 87, "model_seconds": 0.0004, "elapsed_seconds": 0.001,
//!                     "calls_per_second": 217500.0 },   // null when not measurable
//!     "processes": [ { "pid": 10347, "threads": [10347], "calls": 87, "matched": 87,
//!                      "mismatched": 0, "result_not_recorded": 0,
//!                      "not_checked": { "calls": 0, "differ": 0 },
//!                      "address_agreement": { … as above … } } ],
//!     "mismatches": [ { "line": 12, "pid": 10347, "call": "mmap(…) = 0x7f…", "model": "-1 ENOMEM" } ],
//!     "mismatches_not_listed": 0,            // beyond --show-mismatches
//!     "address_disagreements": [ … same shape as mismatches … ],
//!     "notes": [ "…" ],
//!     "expect_maps": null | { "identical": true, "diff": [ "-expected line", "+model line" ] },
//!     "maps_at": null | { "line": 40, "maps": [ "maps line", … ] },
//!     "final_maps": null | [ { "pid": 10347, "maps": [ "maps line", … ] } ]   // --print-maps
//!   } ]
//! }
//! ```
//!
//! The counts are those of the text summary ([`Report::summary`]); the throughput figures are
//! timings and differ from run to run.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::replay::{Mismatch, ProcessStats, Report};

/// The schema name and version written in every document.
pub const SCHEMA: &str = "mmkit-replay/1";

/// The whole document.
#[derive(Debug, Serialize)]
pub struct Document {
    /// Always [`SCHEMA`].
    pub schema: &'static str,
    /// One entry per trace, in command-line order.
    pub traces: Vec<TraceReport>,
}

/// The report of one trace.
#[derive(Debug, Serialize)]
pub struct TraceReport {
    /// The trace's path, as given.
    pub trace: String,
    /// No mismatch, and the expected maps (when given) were reproduced.
    pub success: bool,
    /// The totals.
    pub summary: Summary,
    /// How fast the model worked.
    pub throughput: Throughput,
    /// Per process (address space), by the pid that created it.
    pub processes: Vec<Process>,
    /// The first mismatches (up to `--show-mismatches`).
    pub mismatches: Vec<Call>,
    /// Mismatches beyond those listed.
    pub mismatches_not_listed: u64,
    /// The first calls where the model chose another address than Linux.
    pub address_disagreements: Vec<Call>,
    /// Remarks (unseeded processes, orphan threads…).
    pub notes: Vec<String>,
    /// The comparison with `--expect-maps`, when given.
    pub expect_maps: Option<ExpectMaps>,
    /// The model's maps before `--maps-at LINE`, when given.
    pub maps_at: Option<MapsAt>,
    /// Final maps of every modelled process, with `--print-maps`.
    pub final_maps: Option<Vec<FinalMaps>>,
}

/// Totals of a trace.
#[derive(Debug, Serialize)]
pub struct Summary {
    /// Memory calls replayed and checked.
    pub calls: u64,
    /// … whose result matched Linux's.
    pub matched: u64,
    /// … whose result differed.
    pub mismatched: u64,
    /// … whose result strace did not record (`= ?`).
    pub result_not_recorded: u64,
    /// Calls in processes of unknown layout.
    pub not_checked: NotChecked,
    /// Agreement on the addresses Linux chose.
    pub address_agreement: Agreement,
    /// Process events handled, by syscall name.
    pub process_events: BTreeMap<String, u64>,
    /// Syscalls not replayed, by name.
    pub skipped_syscalls: BTreeMap<String, u64>,
}

/// Calls that could not be checked.
#[derive(Debug, Serialize)]
pub struct NotChecked {
    /// How many.
    pub calls: u64,
    /// How many of them differed from Linux's result.
    pub differ: u64,
}

/// Agreement on the addresses Linux chose (mmap without `MAP_FIXED`, moving mremap).
#[derive(Debug, Serialize)]
pub struct Agreement {
    /// `agree / total`, 1.0 when `total` is 0.
    pub ratio: f64,
    /// Calls placed alike.
    pub agree: u64,
    /// Calls where Linux chose.
    pub total: u64,
    /// The mmap part.
    pub mmap: Count,
    /// The mremap part.
    pub mremap: Count,
}

/// A part of [`Agreement`].
#[derive(Debug, Serialize)]
pub struct Count {
    /// Placed alike.
    pub agree: u64,
    /// In all.
    pub total: u64,
}

/// Timings.
#[derive(Debug, Serialize)]
pub struct Throughput {
    /// Memory calls applied to the model (checked or not).
    pub model_calls: u64,
    /// Seconds spent in the model.
    pub model_seconds: f64,
    /// Seconds of the whole replay, parsing included.
    pub elapsed_seconds: f64,
    /// `model_calls / model_seconds`; null when too fast to measure.
    pub calls_per_second: Option<f64>,
}

/// Figures of one process.
#[derive(Debug, Serialize)]
pub struct Process {
    /// The pid that created the address space.
    pub pid: u32,
    /// Thread ids that made memory calls in it.
    pub threads: Vec<u32>,
    /// Memory calls replayed and checked.
    pub calls: u64,
    /// … whose result matched.
    pub matched: u64,
    /// … whose result differed.
    pub mismatched: u64,
    /// … whose result strace did not record.
    pub result_not_recorded: u64,
    /// Calls made while its layout was unknown.
    pub not_checked: NotChecked,
    /// Agreement on the addresses Linux chose.
    pub address_agreement: Agreement,
}

/// A listed call.
#[derive(Debug, Serialize)]
pub struct Call {
    /// Trace line.
    pub line: usize,
    /// Thread id.
    pub pid: u32,
    /// The call as recorded.
    pub call: String,
    /// What the model returned.
    pub model: String,
}

/// The `--expect-maps` comparison.
#[derive(Debug, Serialize)]
pub struct ExpectMaps {
    /// No line differs.
    pub identical: bool,
    /// Differing lines: `-` expected only, `+` model only.
    pub diff: Vec<String>,
}

/// The `--maps-at` capture.
#[derive(Debug, Serialize)]
pub struct MapsAt {
    /// The trace line.
    pub line: usize,
    /// Maps lines.
    pub maps: Vec<String>,
}

/// The final maps of one process.
#[derive(Debug, Serialize)]
pub struct FinalMaps {
    /// The pid that created the address space.
    pub pid: u32,
    /// Maps lines.
    pub maps: Vec<String>,
}

fn agreement(mmap: (u64, u64), mremap: (u64, u64), ratio: f64) -> Agreement {
    Agreement {
        ratio,
        agree: mmap.1 + mremap.1,
        total: mmap.0 + mremap.0,
        mmap: Count { agree: mmap.1, total: mmap.0 },
        mremap: Count { agree: mremap.1, total: mremap.0 },
    }
}

fn calls(list: &[Mismatch]) -> Vec<Call> {
    list.iter()
        .map(|m| Call { line: m.line, pid: m.pid, call: m.call.clone(), model: m.model.clone() })
        .collect()
}

fn lines(text: &str) -> Vec<String> {
    text.lines().map(str::to_string).collect()
}

fn process(pid: u32, p: &ProcessStats) -> Process {
    Process {
        pid,
        threads: p.threads.iter().copied().collect(),
        calls: p.calls,
        matched: p.matched,
        mismatched: p.mismatched,
        result_not_recorded: p.unknown,
        not_checked: NotChecked { calls: p.unverifiable.0, differ: p.unverifiable.1 },
        address_agreement: agreement(p.mmap_chosen, p.mremap_chosen, p.address_agreement()),
    }
}

/// The JSON report of one trace. `maps_at` is the `--maps-at` line; `print_maps` includes
/// every process's final maps.
pub fn trace_report(
    trace: &str,
    r: &Report,
    maps_at: Option<usize>,
    print_maps: bool,
) -> TraceReport {
    TraceReport {
        trace: trace.to_string(),
        success: r.success(),
        summary: Summary {
            calls: r.calls,
            matched: r.matched,
            mismatched: r.mismatched,
            result_not_recorded: r.unknown,
            not_checked: NotChecked { calls: r.unverifiable.0, differ: r.unverifiable.1 },
            address_agreement: agreement(r.mmap_chosen, r.mremap_chosen, r.address_agreement()),
            process_events: r.process_events.clone(),
            skipped_syscalls: r.skipped.clone(),
        },
        throughput: Throughput {
            model_calls: r.model_calls,
            model_seconds: r.model_time.as_secs_f64(),
            elapsed_seconds: r.elapsed.as_secs_f64(),
            calls_per_second: r.calls_per_second(),
        },
        processes: r.processes.iter().map(|(pid, p)| process(*pid, p)).collect(),
        mismatches: calls(&r.mismatches),
        mismatches_not_listed: r.mismatched.saturating_sub(r.mismatches.len() as u64),
        address_disagreements: calls(&r.disagreements),
        notes: r.notes.clone(),
        expect_maps: r
            .expect_diff
            .as_ref()
            .map(|d| ExpectMaps { identical: d.is_empty(), diff: d.clone() }),
        maps_at: r.maps_at.as_ref().map(|m| MapsAt { line: maps_at.unwrap_or(0), maps: lines(m) }),
        final_maps: print_maps.then(|| {
            r.final_maps.iter().map(|(pid, m)| FinalMaps { pid: *pid, maps: lines(m) }).collect()
        }),
    }
}

/// The document as pretty-printed JSON text (with a final newline).
pub fn to_string(doc: &Document) -> String {
    // Serialising plain structs of strings and numbers cannot fail; a non-finite f64 would
    // be written as null by serde_json.
    let mut s =
        serde_json::to_string_pretty(doc).unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}"));
    s.push('\n');
    s
}
