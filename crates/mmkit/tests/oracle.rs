//! The Linux oracle test (issue 2, deliverable 8(b)): random sequences of memory syscalls
//! run twice — natively on the host kernel, inside a private window of this test process's
//! own address space, and through mmkit's `AddressSpace` — and every return value / errno
//! and the resulting VMAs (range, `rwxp/s`, maps offset, smaps `VmFlags`) must be equal.
//!
//! # How the host side is kept honest and harmless
//! * Raw `syscall` instructions (`oracle/host.rs`), no libc: nothing but the generated calls
//!   touches the window.
//! * The window is 48 pages at a fixed address far from everything (0x3000_0000_0000 on a
//!   47-bit layout); a region of ±16 TiB around it is checked free in `/proc/self/maps`
//!   before the run, and all VMAs intersecting that region are compared. The model starts
//!   empty for every sequence and the host window is unmapped between sequences, so both
//!   sides see the same (empty) neighbourhood.
//! * `gen::host_safe` filters every generated call: anything that could unmap, change or
//!   populate memory outside the window's safety zone (±64 pages) is either proven to fail in
//!   the kernel's argument checks or is regenerated. MADV_HWPOISON / MADV_SOFT_OFFLINE and
//!   any mlockall() that would succeed are never issued; brk is not exercised.
//! * Calls that let the kernel choose an address (a hint that cannot be honoured, or an
//!   mremap that has to move) land outside the window on the host — next to this process's
//!   libraries — and below `mmap_base` in the model. Those are compared by class only: when
//!   the host's result lies inside the free region, the model must return exactly the same
//!   address; when it lies outside, the model's must lie outside too. Either way the mapping
//!   is unmapped again at once on both sides. Hints inside the window are exact: Linux
//!   honours a free, valid hint, and so must the model.
//! * Populating memory is done mostly with MADV_POPULATE_WRITE / MAP_POPULATE / mlock, which
//!   the model is given as the same call, so anon_vma assignment (which decides whether
//!   neighbouring private VMAs may merge) is covered without faults. A few `touch` steps
//!   also store one byte for real (only where the host's maps prove the store cannot fault
//!   fatally; see `run::touch_host`) and call `AddressSpace::write_fault` on the model.
//!
//! * Three sequences in four run with the test process's privileges (root: CAP_IPC_LOCK);
//!   every fourth drops CAP_IPC_LOCK from the test thread's effective set and lowers the
//!   soft RLIMIT_MEMLOCK to a small budget (0, 4, 16 or 64 pages), restoring both afterwards,
//!   so mlock/MAP_LOCKED/mremap limit checks (EPERM, ENOMEM, EAGAIN) are compared too.
//!
//! # What is compared
//! After every call: the return value or errno (an address exactly when the host's lies in
//! the free region, by class otherwise, see above); every VMA in the free region — start,
//! end, `rwxp/s`, the maps offset, and the `VmFlags:` codes of `/proc/self/smaps` (so
//! VM_ACCOUNT, VM_NORESERVE, VM_LOCKED, advice bits and the like, which decide merging, are
//! checked too); and the `/proc/self/status` counters VmLck, VmStk and VmExe+VmLib (as
//! deltas from the start of the sequence) against the model's `locked_vm`, `stack_vm` and
//! `exec_vm`. A panic in the model is caught and reported as a mismatch.
//!
//! # Knobs
//! `MMKIT_ORACLE_OPS` (total operations, default 3000), `MMKIT_ORACLE_SEED` (first seed,
//! default 1), `MMKIT_ORACLE_SEQ_LEN` (operations per sequence, default 40; a reported seed
//! is replayed alone with `MMKIT_ORACLE_SEED=<seed> MMKIT_ORACLE_OPS=<seq len>`),
//! `MMKIT_ORACLE_MAX_SHRINK` (mismatch kinds to shrink, default 40). For local iteration
//! only: `MMKIT_ORACLE_SKIP=1` skips the test; `MMKIT_ORACLE_HOST_ONLY=1` runs the host side
//! alone (generator coverage, no comparison); `MMKIT_ORACLE_SHOW=EINVAL` (or `ok(0)`, ...)
//! prints the host calls with that result; `MMKIT_ORACLE_NO_GUARD=1` leaves out
//! MADV_GUARD_INSTALL (to tell guard-marker mismatches from others while iterating).
//!
//! On a mismatch the test keeps going with the next sequence, groups mismatches by kind,
//! shrinks the first sequence of each kind to a minimal reproducer (greedy removal of
//! operations while the same kind of mismatch still appears), prints each with the seed and
//! both sides' VMAs, and then fails.

#[cfg(all(target_os = "linux", target_arch = "x86_64"))]
#[path = "oracle/gen.rs"]
mod gen;
#[cfg(all(target_os = "linux", target_arch = "x86_64"))]
#[path = "oracle/host.rs"]
mod host;
#[cfg(all(target_os = "linux", target_arch = "x86_64"))]
#[path = "oracle/maps.rs"]
mod maps;
#[cfg(all(target_os = "linux", target_arch = "x86_64"))]
#[path = "oracle/run.rs"]
mod run;

#[cfg(all(target_os = "linux", target_arch = "x86_64"))]
#[test]
fn linux_oracle() {
    run::main();
}

#[cfg(not(all(target_os = "linux", target_arch = "x86_64")))]
#[test]
fn linux_oracle() {
    println!("linux_oracle: skipped (the oracle needs the host kernel to be x86-64 Linux)");
}
