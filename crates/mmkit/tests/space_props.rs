//! Property tests of `AddressSpace`: random sequences of mmap / munmap / mprotect / brk /
//! write faults / fork, with valid and invalid arguments, checking after every call that
//! - the VMAs are sorted, aligned and non-overlapping,
//! - no two adjacent VMAs that Linux would merge are left unmerged,
//! - the counters (total/data/stack/exec/locked/committed, stats) equal their recomputation,
//! - guard markers lie only in mapped pages,
//! - a failing call leaves the VMA list (and the guard markers) unchanged — except Linux's
//!   documented partial effects: mprotect (VMAs before a hole / a refused VMA keep the
//!   change, a first split stays when the second fails), MAP_FIXED (splits done before a
//!   later limit check stay), MADV_GUARD_INSTALL (VMAs before a hole are marked) and
//!   MREMAP_FIXED (the target is unmapped first). After such a partial effect the merge
//!   check is relaxed for the rest of the case, since Linux itself then leaves mergeable
//!   neighbours.

mod common;

use common::*;
use mmkit::vma::VmFlags;
use mmkit::{AddressSpace, Errno, Vma};
use proptest::prelude::*;

const W: u64 = 0x4000_0000; // window base
const B0: u64 = 0x2000_0000; // start_brk

#[derive(Clone, Debug)]
enum Op {
    Mmap { page: u64, pages: u64, prot: u64, mode: u8, extra: u8 },
    Munmap { page: u64, pages: u64 },
    Mprotect { page: u64, pages: u64, prot: u64, grows: u8 },
    Write { page: u64 },
    Brk { pages: i64, odd: bool },
    Fork,
    RawMmap { addr: u64, len: u64, prot: u64, flags: u64, off: u64 },
    RawMunmap { addr: u64, len: u64 },
    RawMprotect { addr: u64, len: u64, prot: u64 },
    RawBrk { addr: u64 },
    Guard { page: u64, pages: u64, install: bool },
    Mremap { page: u64, old: u64, new: u64, to: u64, mode: u8 },
}

fn wild() -> impl Strategy<Value = u64> {
    prop_oneof![
        Just(0u64),
        Just(u64::MAX),
        Just(u64::MAX - 4095),
        Just(1u64 << 47),
        Just(0x7fff_ffff_f000u64),
        (0u64..64).prop_map(|p| W + p * P),
        (0u64..64).prop_map(|p| W + p * P + 1),
        any::<u64>(),
        (0u64..16).prop_map(|p| p * P),
    ]
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => (0u64..64, 1u64..8, 0u64..8, 0u8..4, any::<u8>())
            .prop_map(|(page, pages, prot, mode, extra)| Op::Mmap { page, pages, prot, mode, extra }),
        3 => (0u64..64, 1u64..10).prop_map(|(page, pages)| Op::Munmap { page, pages }),
        5 => (0u64..64, 1u64..10, 0u64..8, 0u8..8)
            .prop_map(|(page, pages, prot, grows)| Op::Mprotect { page, pages, prot, grows }),
        3 => (0u64..64).prop_map(|page| Op::Write { page }),
        2 => (-6i64..8, any::<bool>()).prop_map(|(pages, odd)| Op::Brk { pages, odd }),
        1 => Just(Op::Fork),
        1 => (wild(), wild(), any::<u64>(), any::<u64>(), wild())
            .prop_map(|(addr, len, prot, flags, off)| Op::RawMmap { addr, len, prot, flags, off }),
        1 => (wild(), wild()).prop_map(|(addr, len)| Op::RawMunmap { addr, len }),
        1 => (wild(), wild(), any::<u64>()).prop_map(|(addr, len, prot)| Op::RawMprotect { addr, len, prot }),
        1 => wild().prop_map(|addr| Op::RawBrk { addr }),
        2 => (0u64..64, 1u64..10, any::<bool>())
            .prop_map(|(page, pages, install)| Op::Guard { page, pages, install }),
        2 => (0u64..64, 1u64..8, 1u64..8, 0u64..64, 0u8..4)
            .prop_map(|(page, old, new, to, mode)| Op::Mremap { page, old, new, to, mode }),
    ]
}

fn snapshot(s: &AddressSpace) -> (Vec<Vma>, Vec<(u64, u64)>) {
    (s.vmas().iter().cloned().collect(), s.guard_ranges())
}

/// Applies `op`; returns (failed, partial_effect_allowed).
fn apply(s: &mut AddressSpace, op: &Op) -> (bool, bool) {
    match *op {
        Op::Mmap { page, pages, prot, mode, extra } => {
            let addr = W + page * P;
            let mut flags = if extra & 1 != 0 { SHANON } else { ANON };
            let (addr, fixed) = match mode {
                0 => (addr, MAP_FIXED),
                1 => (addr, MAP_FIXED_NOREPLACE),
                2 => (addr, 0),
                _ => (0, 0),
            };
            flags |= fixed;
            if extra & 2 != 0 {
                flags |= MAP_NORESERVE;
            }
            if extra & 4 != 0 {
                flags |= MAP_POPULATE;
            }
            if extra & 0x18 == 0x18 {
                flags |= MAP_LOCKED;
            }
            if extra & 0x60 == 0x60 {
                flags |= MAP_STACK;
            }
            if extra & 0x80 != 0 && extra & 1 == 0 && extra & 0x08 == 0 {
                flags |= MAP_GROWSDOWN;
            }
            let r = mmap(s, addr, pages * P, prot, flags);
            (r.is_err(), r.is_err() && fixed == MAP_FIXED)
        }
        Op::Munmap { page, pages } => (s.sys_munmap(W + page * P, pages * P).is_err(), false),
        Op::Mprotect { page, pages, prot, grows } => {
            let g = match grows {
                0 => PROT_GROWSDOWN,
                1 => PROT_GROWSUP,
                _ => 0,
            };
            let r = s.sys_mprotect(W + page * P, pages * P, prot | g);
            (r.is_err(), true)
        }
        Op::Write { page } => {
            // A fault below a VM_GROWSDOWN VMA grows it (and gives it an anon_vma) before the
            // access is checked, as lock_mm_and_find_vma() does: a failed write may change it.
            let r = s.write_fault(W + page * P);
            (r.is_err(), true)
        }
        Op::Brk { pages, odd } => {
            let cur = s.brk_range().1;
            let target = (cur as i64 + pages * P as i64) as u64 + odd as u64;
            let r = s.sys_brk(target);
            (r != target, false)
        }
        Op::Fork => (false, false),
        Op::RawMmap { addr, len, prot, flags, off } => {
            // Keep it anonymous or an invalid fd; no huge lengths that would take long.
            let r = s.sys_mmap(&mmkit::space::NoFiles, addr, len, prot, flags, 3, off);
            (r.is_err(), r.is_err() && flags & MAP_FIXED != 0)
        }
        Op::RawMunmap { addr, len } => (s.sys_munmap(addr, len).is_err(), false),
        Op::RawMprotect { addr, len, prot } => (s.sys_mprotect(addr, len, prot).is_err(), true),
        Op::RawBrk { addr } => {
            let r = s.sys_brk(addr);
            (r != addr, false)
        }
        // GUARD_INSTALL marks the VMAs before a hole and then reports ENOMEM, as Linux's
        // madvise walk does.
        Op::Guard { page, pages, install } => {
            let r = s.sys_madvise(W + page * P, pages * P, if install { 102 } else { 103 });
            (r.is_err(), true)
        }
        Op::Mremap { page, old, new, to, mode } => {
            // 0: in place; 1: MAYMOVE; 2: MAYMOVE|FIXED; 3: MAYMOVE|DONTUNMAP (same size).
            let (flags, new, to) = match mode {
                0 => (0, new, 0),
                1 => (1, new, 0),
                2 => (3, new, W + to * P),
                _ => (5, old, 0),
            };
            let r = s.sys_mremap(W + page * P, old * P, new * P, flags, to);
            // A FIXED move unmaps the target before later checks may fail (mremap_to()).
            (r.is_err(), flags & 2 != 0)
        }
    }
}

fn config(c: &mut mmkit::MmConfig) {
    c.max_map_count = 12;
    c.total_ram_pages = 48;
    c.rlimit_memlock = 4 * P;
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 400, ..ProptestConfig::default() })]

    #[test]
    fn invariants_hold_after_every_call(ops in proptest::collection::vec(op(), 1..60)) {
        let mut s = space_with(config);
        s.set_brk_base(B0, B0);
        let mut relaxed = false;
        for op in &ops {
            if let Op::Fork = op {
                // dup_mmap() clears VM_LOCKED without merging: a locked VMA and its unlocked
                // neighbour become an unmerged mergeable pair in the child, as in Linux.
                if s.vmas().iter().any(|v| v.flags.intersects(VmFlags::LOCKED | VmFlags::LOCKONFAULT)) {
                    relaxed = true;
                }
                s = s.fork();
                s.check_invariants(!relaxed);
                continue;
            }
            let before = snapshot(&s);
            let stats_before = *s.stats();
            let (failed, partial_ok) = apply(&mut s, op);
            let after = snapshot(&s);
            if failed && !partial_ok {
                prop_assert_eq!(&before, &after, "failed {:?} changed the VMAs", op);
            }
            if failed && partial_ok && before.0 != after.0 {
                relaxed = true;
            }
            if let Op::Write { .. } = op {
                // A stack that grew down may now touch a neighbour Linux never merges with.
                if before.0.len() == after.0.len()
                    && before.0.iter().zip(&after.0).any(|(a, b)| a.start != b.start)
                {
                    relaxed = true;
                }
            }
            s.check_invariants(!relaxed);
            let st = s.stats();
            prop_assert!(st.merges >= stats_before.merges && st.splits >= stats_before.splits);
            prop_assert!(st.mmap_calls + st.munmap_calls + st.mprotect_calls + st.brk_calls
                >= stats_before.mmap_calls + stats_before.munmap_calls
                    + stats_before.mprotect_calls + stats_before.brk_calls);
        }
    }

    #[test]
    fn bad_input_never_panics_and_changes_nothing(
        addr in wild(), len in wild(), prot in any::<u64>(), flags in any::<u64>(), off in wild()
    ) {
        let mut s = space_with(config);
        anon(&mut s, W, 8 * P, RW);
        s.write_fault(W).unwrap();
        let before = snapshot(&s);
        if s.sys_munmap(addr, len).is_err() {
            prop_assert_eq!(&before, &snapshot(&s));
        }
        let before = snapshot(&s);
        if let Err(e) = s.sys_mmap(&mmkit::space::NoFiles, addr, len, prot, flags, u64::MAX, off) {
            if flags & MAP_FIXED == 0 || e != Errno::ENOMEM {
                prop_assert_eq!(&before, &snapshot(&s));
            }
        }
        let _ = s.sys_mprotect(addr, len, prot);
        let _ = s.sys_brk(addr);
        s.check_invariants(false);
    }
}
