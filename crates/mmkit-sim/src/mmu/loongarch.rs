//! LoongArch64 walker: four levels of 4 KiB tables, modelling the hardware TLB checks
//! together with Linux's software refill and invalid-page handlers, since LoongArch has no
//! hardware walker.
//!
//! LoongArch Reference Manual Vol. 1 (v1.10) §5.4 (`LDDIR`/`LDPTE`: a directory entry with
//! bit 6 set is a huge page), §7.5.12 `TLBELO` (V bit 0, D bit 1, PLV 3:2, MAT 5:4, G bit 6,
//! NR bit 61, NX bit 62, RPLV bit 63; huge entries keep G in bit 12), §7.4 exceptions
//! PIL/PIS/PIF/PME/PNR/PNX/PPI. Linux arch/loongarch/include/asm/pgtable-bits.h (software
//! `_PAGE_PRESENT` bit 7, `_PAGE_WRITE` bit 8, `_PAGE_MODIFIED` bit 9) and
//! arch/loongarch/mm/tlbex.S: `handle_tlb_load` requires `_PAGE_PRESENT` and sets
//! `_PAGE_VALID`; `handle_tlb_store`/`handle_tlb_modify` require `_PAGE_PRESENT |
//! _PAGE_WRITE` and set `_PAGE_VALID | _PAGE_DIRTY | _PAGE_MODIFIED`; otherwise
//! `do_page_fault`. A directory entry is the next table's physical address; 0 is "no table"
//! (mmkit's convention, see `mmkit::paging::LoongArch64`).

use std::sync::atomic::Ordering;

use super::{bits, cas, entry_at, index, sign_extended, FaultKind, Perm, Request, Stop, Walk};
use crate::phys::PhysMemory;

const V: u64 = 1 << 0;
const D: u64 = 1 << 1;
const PLV: u64 = 3 << 2;
const PLV_USER: u64 = 3 << 2;
const G: u64 = 1 << 6;
const HUGE: u64 = 1 << 6;
const PRESENT: u64 = 1 << 7;
const WRITE: u64 = 1 << 8;
const MODIFIED: u64 = 1 << 9;
const HUGE_G: u64 = 1 << 12;
const NR: u64 = 1 << 61;
const NX: u64 = 1 << 62;
const RPLV: u64 = 1 << 63;
/// PALEN = 48.
const PA: u64 = bits(12, 48);

/// Walks from the table at `pgdl` (CSR.PGDL).
pub(super) fn walk(phys: &PhysMemory, pgdl: u64, req: &Request) -> Result<Walk, Stop> {
    let va = req.va;
    if !sign_extended(va, 48) {
        return Err((FaultKind::NonCanonical, None));
    }
    let mut table = pgdl & PA;
    let mut level = 3;
    loop {
        let e = entry_at(phys, table, index(va, level), level)?;
        let pte = e.load(Ordering::Acquire);
        if level > 0 && pte & HUGE == 0 {
            if pte == 0 {
                return Err((FaultKind::NotPresent, Some(level)));
            }
            if pte & !PA != 0 {
                return Err((FaultKind::Reserved, Some(level)));
            }
            table = pte;
            level -= 1;
            continue;
        }
        if level > 1 {
            return Err((FaultKind::Reserved, Some(level)));
        }
        if pte & PRESENT == 0 {
            return Err((FaultKind::NotPresent, Some(level)));
        }
        let base = pte & bits(12 + 9 * level as u32, 48);
        let plv = pte & PLV;
        // CPL 3 needs PLV 3; CPL 0 may use any PLV unless RPLV demands equality.
        let user_ok = plv == PLV_USER;
        let kernel_ok = pte & RPLV == 0 || plv == 0;
        let mut p = 0;
        if pte & NR == 0 {
            p |= Perm::R;
        }
        if pte & WRITE != 0 {
            p |= Perm::W;
        }
        if pte & NX == 0 {
            p |= Perm::X;
        }
        let up = Perm(if user_ok { p } else { 0 });
        let kp = Perm(if kernel_ok { p } else { 0 });
        req.check(up, kp, level)?;
        let new = pte | V | if req.write() { D | MODIFIED } else { 0 };
        if !cas(e, pte, new) {
            continue;
        }
        let mut out = req.done(base, level, up, kp);
        out.dirty = new & D != 0;
        out.global = pte & if level > 0 { HUGE_G } else { G } != 0;
        return Ok(out);
    }
}
