//! AArch64 VMSAv8-64 stage-1 walker: 4 KiB granule, 48-bit input addresses, TTBR0 region,
//! EL1&0 regime.
//!
//! Arm ARM (DDI 0487) §D8.3 descriptor formats (bits[1:0]: 0b11 table at L0-L2 / page at L3,
//! 0b01 block at L1-L2, bit 0 clear invalid; output address bits 47:12; table attributes
//! APTable 62:61, UXNTable 60, PXNTable 59); §D8.4 access permissions (AP[2:1] = bits 7:6:
//! 00 EL1 RW, 01 EL1+EL0 RW, 10 EL1 RO, 11 EL1+EL0 RO; UXN bit 54, PXN bit 53; EL1 never
//! executes EL0-writable memory); §D8.5 AF (bit 10) and DBM (bit 51): with `TCR_EL1.HA` the
//! walker sets AF; with `TCR_EL1.HD` a write to a page with DBM = 1 and AP[2] = 1 clears
//! AP[2] instead of faulting. nG is bit 11. PAN is modelled clear; TBI is not modelled.

use std::sync::atomic::Ordering;

use super::{bits, cas, entry_at, index, FaultKind, Perm, Request, Stop, Walk};
use crate::phys::PhysMemory;

const VALID: u64 = 1 << 0;
const TABLE: u64 = 1 << 1;
const AP1_EL0: u64 = 1 << 6;
const AP2_RDONLY: u64 = 1 << 7;
const AF: u64 = 1 << 10;
const NG: u64 = 1 << 11;
const DBM: u64 = 1 << 51;
const PXN: u64 = 1 << 53;
const UXN: u64 = 1 << 54;
const PXN_TABLE: u64 = 1 << 59;
const UXN_TABLE: u64 = 1 << 60;
/// APTable[0]: no EL0 access at lower levels.
const AP_TABLE_NO_EL0: u64 = 1 << 61;
/// APTable[1]: read-only at lower levels.
const AP_TABLE_RDONLY: u64 = 1 << 62;
/// Output address, bits 47:12.
const OA: u64 = bits(12, 48);
/// Output address bits 51:48 of a table descriptor: must be zero with a 48-bit physical
/// space, else an address-size fault.
const OA_HIGH: u64 = bits(48, 52);
/// Bits 49:48 of a block or page descriptor: RES0 without FEAT_LPA2 (bit 50 is GP and bit 51
/// DBM there).
const LEAF_RES0: u64 = bits(48, 50);

/// Walks from the table at `ttbr0` (BADDR), Arm lookup level 0 = mmkit level 3.
pub(super) fn walk(phys: &PhysMemory, ttbr0: u64, req: &Request) -> Result<Walk, Stop> {
    let va = req.va;
    // T0SZ = 16: bits 63:48 must be zero, else a level-0 translation fault.
    if va >> 48 != 0 {
        return Err((FaultKind::NonCanonical, None));
    }
    let mut table = ttbr0 & OA;
    let (mut no_el0, mut rdonly, mut uxn_t, mut pxn_t) = (false, false, false, false);
    let mut level = 3;
    loop {
        let e = entry_at(phys, table, index(va, level), level)?;
        let d = e.load(Ordering::Acquire);
        if d & VALID == 0 {
            return Err((FaultKind::NotPresent, Some(level)));
        }
        if level > 0 && d & TABLE != 0 {
            if d & OA_HIGH != 0 {
                return Err((FaultKind::Reserved, Some(level)));
            }
            no_el0 |= d & AP_TABLE_NO_EL0 != 0;
            rdonly |= d & AP_TABLE_RDONLY != 0;
            uxn_t |= d & UXN_TABLE != 0;
            pxn_t |= d & PXN_TABLE != 0;
            table = d & OA;
            level -= 1;
            continue;
        }
        // A block at Arm level 0 (mmkit 3) or 0b01 at level 3 (mmkit 0) is invalid.
        if level == 3 || (level == 0 && d & TABLE == 0) {
            return Err((FaultKind::Reserved, Some(level)));
        }
        if d & LEAF_RES0 != 0 {
            return Err((FaultKind::Reserved, Some(level)));
        }
        let base = d & bits(12 + 9 * level as u32, 48);
        let el0 = d & AP1_EL0 != 0 && !no_el0;
        let ap_ro = d & AP2_RDONLY != 0 || rdonly;
        // Writable through DBM: AP[2] is cleared by the hardware on the first write.
        let dbm_ok = req.hw_ad && d & DBM != 0 && !rdonly;
        let can_write = !ap_ro || dbm_ok;
        let mut up = 0;
        if el0 {
            up |= Perm::R;
            if can_write {
                up |= Perm::W;
            }
        }
        if d & UXN == 0 && !uxn_t {
            up |= Perm::X;
        }
        let mut kp = Perm::R;
        if can_write {
            kp |= Perm::W;
        }
        let el0_writable = el0 && can_write;
        if d & PXN == 0 && !pxn_t && !el0_writable {
            kp |= Perm::X;
        }
        let (up, kp) = (Perm(up), Perm(kp));
        // Access-flag faults take priority over permission faults when AF is not managed
        // by the hardware.
        if d & AF == 0 && !req.hw_ad {
            return Err((FaultKind::AccessFlag, Some(level)));
        }
        req.check(up, kp, level)?;
        let mut new = d | AF;
        if req.write() && d & AP2_RDONLY != 0 {
            new &= !AP2_RDONLY; // DBM: record the write by making the page writable
        }
        if !cas(e, d, new) {
            continue;
        }
        let mut out = req.done(base, level, up, kp);
        out.dirty = new & AP2_RDONLY == 0 && !rdonly;
        out.global = d & NG == 0;
        return Ok(out);
    }
}
