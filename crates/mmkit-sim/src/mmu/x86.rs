//! x86-64 4-level and 5-level paging walker.
//!
//! Intel SDM Vol. 3A §4.5 (formats, Tables 4-14 to 4-20), §4.6 "Access Rights" (U/S and R/W
//! combined over every level, XD with IA32_EFER.NXE, SMEP; CR0.WP = 1), §4.7 "Page-Fault
//! Exceptions" (P flag of the error code), §4.8 "Accessed and Dirty Flags" (A set in every
//! entry used, D in the entry that maps the page, both by locked read-modify-write).
//! MAXPHYADDR is taken as 52.

use super::{bits, cas, entry_at, index, sign_extended, FaultKind, Perm, Request, Stop, Walk};
use crate::phys::PhysMemory;

/// Present (bit 0).
const P: u64 = 1 << 0;
/// Read/write (bit 1).
const RW: u64 = 1 << 1;
/// User/supervisor (bit 2).
const US: u64 = 1 << 2;
/// Accessed (bit 5).
const A: u64 = 1 << 5;
/// Dirty (bit 6).
const D: u64 = 1 << 6;
/// Page size (bit 7) in a PDPTE or PDE.
const PS: u64 = 1 << 7;
/// Global (bit 8) in an entry that maps a page.
const G: u64 = 1 << 8;
/// Execute-disable (bit 63).
const XD: u64 = 1 << 63;
/// Address of the next table or a 4 KiB page: bits 51:12.
const ADDR: u64 = bits(12, 52);

/// Walks `levels` (4 or 5) levels.
pub(super) fn walk(
    levels: usize,
    phys: &PhysMemory,
    cr3: u64,
    req: &Request,
) -> Result<Walk, Stop> {
    let va = req.va;
    if !sign_extended(va, 12 + 9 * levels as u32) {
        return Err((FaultKind::NonCanonical, None));
    }
    let mut table = cr3 & ADDR;
    // Access rights accumulated over the levels above the current one (SDM §4.6.1).
    let (mut user, mut writable, mut nx) = (true, true, false);
    let mut level = levels - 1;
    loop {
        let e = entry_at(phys, table, index(va, level), level)?;
        let raw = e.load(std::sync::atomic::Ordering::Acquire);
        if raw & P == 0 {
            return Err((FaultKind::NotPresent, Some(level)));
        }
        // PS is reserved in a PML5E/PML4E (SDM Table 4-15/4-16).
        if level >= 3 && raw & PS != 0 {
            return Err((FaultKind::Reserved, Some(level)));
        }
        let u = user && raw & US != 0;
        let w = writable && raw & RW != 0;
        let x = nx || raw & XD != 0;
        let leaf = level == 0 || raw & PS != 0;
        if !leaf {
            if raw & A == 0 && !cas(e, raw, raw | A) {
                continue; // re-read the entry that changed under us
            }
            user = u;
            writable = w;
            nx = x;
            table = raw & ADDR;
            level -= 1;
            continue;
        }
        // A 2 MiB / 1 GiB leaf: bit 12 is PAT, bits 20:13 / 29:13 are reserved.
        let base = raw & bits(12 + 9 * level as u32, 52);
        if level > 0 && raw & bits(13, 12 + 9 * level as u32) != 0 {
            return Err((FaultKind::Reserved, Some(level)));
        }
        let mut up = 0;
        let mut kp = Perm::R;
        if u {
            up |= Perm::R;
            if w {
                up |= Perm::W;
            }
            if !x {
                up |= Perm::X;
            }
        }
        if w {
            kp |= Perm::W; // CR0.WP = 1: supervisor writes honour R/W
        }
        if !x && !u {
            kp |= Perm::X; // SMEP: no supervisor fetch from a user page
        }
        let (up, kp) = (Perm(up), Perm(kp));
        req.check(up, kp, level)?;
        let new = raw | A | if req.write() { D } else { 0 };
        if !cas(e, raw, new) {
            continue;
        }
        let mut out = req.done(base, level, up, kp);
        out.dirty = new & D != 0;
        out.global = raw & G != 0;
        return Ok(out);
    }
}
