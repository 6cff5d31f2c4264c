//! RISC-V Sv39/Sv48/Sv57 walker with Svpbmt.
//!
//! RISC-V Privileged Architecture (20211203), §4.3.2 "Virtual Address Translation Process"
//! (steps 1-8), §4.4.1 Sv39 PTE layout (V R W X U G A D, RSW 9:8, PPN 53:10, bits 63:54
//! reserved), §4.5/§4.6 Sv48/Sv57; Svpbmt chapter (PBMT bits 62:61, value 3 reserved, must be
//! zero in non-leaf PTEs); Svadu (hardware A/D update) and Svade (page fault instead).
//! `sstatus.SUM = 1` is modelled for kernel data accesses; S-mode never executes U pages.

use std::sync::atomic::Ordering;

use super::{bits, cas, entry_at, index, sign_extended, FaultKind, Perm, Request, Stop, Walk};
use crate::phys::PhysMemory;

const V: u64 = 1 << 0;
const R: u64 = 1 << 1;
const W: u64 = 1 << 2;
const X: u64 = 1 << 3;
const U: u64 = 1 << 4;
const G: u64 = 1 << 5;
const A: u64 = 1 << 6;
const D: u64 = 1 << 7;
/// PPN, bits 53:10.
const PPN: u64 = bits(10, 54);
/// Bits 60:54: reserved, must be zero.
const RESERVED: u64 = bits(54, 61);
/// PBMT, bits 62:61 (Svpbmt).
const PBMT: u64 = bits(61, 63);
/// N, bit 63 (Svnapot, not implemented by this MMU: reserved).
const N: u64 = 1 << 63;

/// Walks `levels` (3, 4 or 5) levels from the table at `root` (`satp.PPN << 12`).
pub(super) fn walk(
    levels: usize,
    phys: &PhysMemory,
    root: u64,
    req: &Request,
) -> Result<Walk, Stop> {
    let va = req.va;
    // Step 0: bits 63:VA_BITS must equal bit VA_BITS-1, else a page fault.
    if !sign_extended(va, 12 + 9 * levels as u32) {
        return Err((FaultKind::NonCanonical, None));
    }
    let mut a = root & bits(12, 56);
    let mut global = false;
    let mut i = levels - 1;
    loop {
        let e = entry_at(phys, a, index(va, i), i)?;
        let pte = e.load(Ordering::Acquire);
        // Step 3.
        if pte & V == 0 {
            return Err((FaultKind::NotPresent, Some(i)));
        }
        if pte & (R | W) == W || pte & (RESERVED | N) != 0 || pte & PBMT == PBMT {
            return Err((FaultKind::Reserved, Some(i)));
        }
        // Step 4: R = X = 0 is a pointer to the next level.
        if pte & (R | X) == 0 {
            if pte & PBMT != 0 {
                return Err((FaultKind::Reserved, Some(i)));
            }
            if i == 0 {
                return Err((FaultKind::Reserved, Some(0)));
            }
            global |= pte & G != 0;
            a = ((pte & PPN) >> 10) << 12;
            i -= 1;
            continue;
        }
        // Step 6: a superpage's low PPN fields must be zero.
        let base = ((pte & PPN) >> 10) << 12;
        if base & bits(12, 12 + 9 * i as u32) != 0 {
            return Err((FaultKind::Reserved, Some(i)));
        }
        // Step 5: permissions.
        let mut p = 0;
        if pte & R != 0 {
            p |= Perm::R;
        }
        if pte & W != 0 {
            p |= Perm::W;
        }
        if pte & X != 0 {
            p |= Perm::X;
        }
        let (up, kp) =
            if pte & U != 0 { (Perm(p), Perm(p & !Perm::X)) } else { (Perm(0), Perm(p)) };
        req.check(up, kp, i)?;
        // Step 7: A, and D on a store.
        let need = A | if req.write() { D } else { 0 };
        let new = pte | need;
        if new != pte {
            if !req.hw_ad {
                return Err((FaultKind::AccessFlag, Some(i)));
            }
            if !cas(e, pte, new) {
                continue;
            }
        }
        let mut out = req.done(base, i, up, kp);
        out.dirty = new & D != 0;
        out.global = global || pte & G != 0;
        return Ok(out);
    }
}
