//! `mmkit demo` runs, and shows what Linux shows for its calls.

use assert_cmd::Command;

#[test]
fn demo_runs_and_shows_linux_results() {
    let out = Command::cargo_bin("mmkit").unwrap().arg("demo").assert().success();
    let text = String::from_utf8(out.get_output().stdout.clone()).unwrap();
    // Two fresh anonymous mmaps merge into one 128 KiB VMA (cases A36).
    assert!(text.contains("7ffff7f9d000-7ffff7fbd000 rw-p 00000000 00:00 0 \n"), "{text}");
    // A shared mapping of a read-only file cannot become writable (F6).
    assert!(text.contains("mprotect(d, 0x3000, PROT_READ|PROT_WRITE) = -1 EACCES"));
    // Bad input (B4, A26, C5, E23, G2, A13).
    for e in ["= -1 EINVAL", "= -1 EEXIST", "= -1 EPERM"] {
        assert!(text.contains(e), "missing {e}");
    }
    // mprotect over a hole: ENOMEM, but the part before the hole changed (C9).
    assert!(text.contains("7ffff7fa1000-7ffff7fa5000 ---p"));
    // A forked child's brk growth next to a written heap gives two [heap] lines (J8).
    assert!(text.matches("[heap]").count() >= 3);
    assert!(text.contains(
        "55555557b000-55555557d000 rw-p 00000000 00:00 0                          [heap]"
    ));
}
