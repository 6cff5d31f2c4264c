//! Random sequences of faults, forks, zaps, mprotects, MADV_FREE and exits over two
//! processes, checked against a model of memory contents; at the end every frame is back
//! (leak check) and, after every step, frame counts agree with the page tables.

mod fault_common;

use std::collections::HashMap;

use fault_common::*;
use mmkit::fault::FaultError;
use proptest::prelude::*;

const BASE: u64 = 0x7000_0000;
const FBASE: u64 = 0x7800_0000;
const NA: u64 = 12;
const NF: u64 = 4;

#[derive(Clone, Debug)]
enum Op {
    Write { child: bool, file: bool, page: u64, val: u64 },
    Read { child: bool, file: bool, page: u64 },
    Fork,
    Zap { child: bool, file: bool, page: u64, n: u64 },
    ProtectRoundTrip { child: bool, page: u64, n: u64 },
    Free { child: bool, page: u64, n: u64 },
    ExitChild,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (any::<bool>(), any::<bool>(), 0..NA, 1..1000u64)
            .prop_map(|(child, file, page, val)| Op::Write { child, file, page, val }),
        3 => (any::<bool>(), any::<bool>(), 0..NA)
            .prop_map(|(child, file, page)| Op::Read { child, file, page }),
        1 => Just(Op::Fork),
        1 => (any::<bool>(), any::<bool>(), 0..NA, 1..4u64)
            .prop_map(|(child, file, page, n)| Op::Zap { child, file, page, n }),
        1 => (any::<bool>(), 0..NA, 1..4u64)
            .prop_map(|(child, page, n)| Op::ProtectRoundTrip { child, page, n }),
        1 => (any::<bool>(), 0..NA, 1..4u64).prop_map(|(child, page, n)| Op::Free { child, page, n }),
        1 => Just(Op::ExitChild),
    ]
}

fn file_word(page: u64) -> u64 {
    page * 1000 + 7
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn random_sequences_keep_data_and_leak_nothing(ops in proptest::collection::vec(op(), 1..60)) {
        let (_m, h) = TestHost::new(16, 2);
        let mut disk = Vec::new();
        for p in 0..NF {
            let mut page = vec![0u8; P as usize];
            page[..8].copy_from_slice(&file_word(p).to_le_bytes());
            disk.extend_from_slice(&page);
        }
        h.add_file(1, disk);
        let av = anon(BASE, NA, RW);
        let fv = file(FBASE, NF, RW, 1, 0);
        let mut procs: Vec<Option<Mm>> = vec![Some(mm(&h, 1)), None];
        // Model: (proc, file?, page) → the first word of the page.
        let mut model: HashMap<(usize, bool, u64), u64> = HashMap::new();
        let expect = |model: &HashMap<(usize, bool, u64), u64>, p: usize, file: bool, page: u64| {
            model.get(&(p, file, page)).copied().unwrap_or(if file { file_word(page) } else { 0 })
        };
        for op in ops {
            match op {
                Op::Write { child, file, page, val } => {
                    let p = child as usize;
                    let Some(x) = procs[p].as_ref() else { continue };
                    let (v, page) = if file { (&fv, page % NF) } else { (&av, page) };
                    write_u64(&h, x, v, v.start + page * P, val).unwrap();
                    model.insert((p, file, page), val);
                }
                Op::Read { child, file, page } => {
                    let p = child as usize;
                    let Some(x) = procs[p].as_ref() else { continue };
                    let (v, page) = if file { (&fv, page % NF) } else { (&av, page) };
                    let got = read_u64(&h, x, v, v.start + page * P).unwrap();
                    prop_assert_eq!(got, expect(&model, p, file, page));
                }
                Op::Fork => {
                    if procs[1].is_some() {
                        continue;
                    }
                    let mut c = mm(&h, 2);
                    let parent = procs[0].as_mut().unwrap();
                    parent.fork_into(&mut c, &av).unwrap();
                    parent.fork_into(&mut c, &fv).unwrap();
                    procs[1] = Some(c);
                    let copied: Vec<_> =
                        model.iter().filter(|(k, _)| k.0 == 0).map(|(k, v)| (*k, *v)).collect();
                    for ((_, f, pg), v) in copied {
                        model.insert((1, f, pg), v);
                    }
                }
                Op::Zap { child, file, page, n } => {
                    let p = child as usize;
                    let Some(x) = procs[p].as_mut() else { continue };
                    let (v, page, max) = if file { (&fv, page % NF, NF) } else { (&av, page, NA) };
                    let end = (page + n).min(max);
                    x.zap(v.start + page * P, v.start + end * P).unwrap();
                    for pg in page..end {
                        model.remove(&(p, file, pg));
                    }
                }
                Op::ProtectRoundTrip { child, page, n } => {
                    let p = child as usize;
                    let Some(x) = procs[p].as_mut() else { continue };
                    let end = (page + n).min(NA);
                    x.protect(BASE + page * P, BASE + end * P, RO).unwrap();
                    prop_assert_eq!(
                        x.fault(&anon(BASE, NA, RO), mmkit::addr::VirtAddr(BASE + page * P),
                            mmkit::fault::Access::Write, 0),
                        Err(FaultError::SegvAccErr)
                    );
                    x.protect(BASE + page * P, BASE + end * P, RW).unwrap();
                }
                Op::Free { child, page, n } => {
                    let p = child as usize;
                    let Some(x) = procs[p].as_ref() else { continue };
                    let end = (page + n).min(NA);
                    // No reclaim: lazy-free data stays readable.
                    x.madvise_free(BASE + page * P, BASE + end * P).unwrap();
                }
                Op::ExitChild => {
                    if let Some(c) = procs[1].take() {
                        c.teardown();
                        model.retain(|k, _| k.0 != 1);
                    }
                }
            }
            let live: Vec<&Mm> = procs.iter().flatten().collect();
            check_consistent(&h, &live);
        }
        // Final contents, then exit everything.
        for (p, x) in procs.iter().enumerate() {
            let Some(x) = x else { continue };
            for page in 0..NA {
                prop_assert_eq!(read_u64(&h, x, &av, BASE + page * P).unwrap(),
                    expect(&model, p, false, page));
            }
        }
        for x in procs.into_iter().flatten() {
            x.teardown();
        }
        h.assert_no_leak();
    }
}
