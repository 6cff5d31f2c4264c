//! The process table: zombies until waited, orphans reparented to init and reaped by it,
//! ECHILD, threads sharing one address space (freed with the last thread), and a randomized
//! fork/write/exit/wait run that ends with every process reaped and no frame leaked.

use std::collections::BTreeMap;
use std::sync::Arc;

use mmkit::fault::FaultError;
use mmkit::space::NoFiles;
use mmkit::{AddressSpace, Errno, VirtAddr};
use mmkit_sim::{
    read_space, write_space, AccessError, Machine, MachineConfig, Pid, ProcState, ProcessTable,
    SimKernel,
};

const P: u64 = 4096;
const INIT: Pid = ProcessTable::INIT;

fn kernel(mib: u64) -> Arc<SimKernel> {
    let m =
        Machine::new(MachineConfig { mem_size: mib << 20, ..MachineConfig::default() }).unwrap();
    SimKernel::boot(m).unwrap()
}

fn mmap_anon(s: &mut AddressSpace, len: u64) -> u64 {
    s.sys_mmap(&NoFiles, 0, len, 3, 0x22, u64::MAX, 0).unwrap()
}

fn signal(e: AccessError<FaultError>) -> FaultError {
    match e {
        AccessError::Handler { error, .. } => error,
        AccessError::Unresolved(f) => panic!("fault not resolved: {f:?}"),
    }
}

/// A store by thread/process `tid` on CPU `cpu` (mmap_lock read-held).
fn store(t: &ProcessTable, tid: Pid, cpu: usize, va: u64, v: u64) -> Result<(), FaultError> {
    let s = t.space(tid).expect("a live thread");
    let g = read_space(&s);
    let k = t.kernel();
    k.cpu(cpu, &g).store_u64(&SimKernel::context(&g), VirtAddr(va), v).map_err(signal)
}

fn load(t: &ProcessTable, tid: Pid, cpu: usize, va: u64) -> Result<u64, FaultError> {
    let s = t.space(tid).expect("a live thread");
    let g = read_space(&s);
    let k = t.kernel();
    k.cpu(cpu, &g).load_u64(&SimKernel::context(&g), VirtAddr(va)).map_err(signal)
}

fn mmap_in(t: &ProcessTable, pid: Pid, len: u64) -> u64 {
    let s = t.space(pid).unwrap();
    let mut g = write_space(&s);
    mmap_anon(&mut g, len)
}

#[test]
fn zombie_stays_until_waited() {
    let k = kernel(16);
    let mut t = ProcessTable::new(Arc::clone(&k)).unwrap();
    let a = t.spawn(INIT, None).unwrap();
    let before = k.free_frames();
    let b = t.fork(a).unwrap();
    assert_eq!(t.parent(b), Some(a));
    let va = mmap_in(&t, b, 4 * P);
    for i in 0..4 {
        store(&t, b, 0, va + i * P, i).unwrap();
    }
    assert!(k.free_frames() < before);
    t.exit(b, 42).unwrap();
    // exit_mmap ran at once: the frames are back though b is not reaped.
    assert_eq!(k.free_frames(), before);
    assert!(t.space(b).is_none());
    for _ in 0..3 {
        assert_eq!(t.state(b), Some(ProcState::Zombie(42)));
        let row = t.list().into_iter().find(|r| r.pid == b).unwrap();
        assert_eq!((row.ppid, row.state, row.threads), (a, ProcState::Zombie(42), 0));
    }
    assert_eq!(t.exit(b, 1), Err(Errno::ESRCH), "a zombie cannot exit again");
    // Init is not b's parent.
    assert_eq!(t.wait(INIT, Some(b)), Err(Errno::ECHILD));
    assert_eq!(t.wait(a, Some(b)), Ok((b, 42)));
    assert_eq!(t.state(b), None);
    assert!(t.list().iter().all(|r| r.pid != b));
}

#[test]
fn wait_echild_and_eagain() {
    let k = kernel(16);
    let mut t = ProcessTable::new(k).unwrap();
    assert_eq!(t.wait(INIT, None), Err(Errno::ECHILD), "init has no children yet");
    let a = t.spawn(INIT, None).unwrap();
    let b = t.spawn(INIT, None).unwrap();
    assert_eq!(t.wait(a, None), Err(Errno::ECHILD), "a has no children");
    assert_eq!(t.wait(a, Some(b)), Err(Errno::ECHILD), "b is a's sibling");
    assert_eq!(t.wait(INIT, Some(999)), Err(Errno::ECHILD), "no such pid");
    assert_eq!(t.wait(INIT, Some(a)), Err(Errno::EAGAIN), "a still runs");
    assert_eq!(t.wait(INIT, None), Err(Errno::EAGAIN));
    t.exit(b, 0).unwrap();
    assert_eq!(t.wait(INIT, None), Ok((b, 0)));
    assert_eq!(t.wait(INIT, Some(b)), Err(Errno::ECHILD), "already reaped");
    t.exit(a, 0).unwrap();
    assert_eq!(t.wait(INIT, Some(a)), Ok((a, 0)));
    assert_eq!(t.wait(INIT, None), Err(Errno::ECHILD));
    assert_eq!(t.exit(INIT, 0), Err(Errno::EPERM));
}

#[test]
fn orphans_reparented_to_init_and_reaped_by_init() {
    let k = kernel(16);
    let boot = k.free_frames();
    let mut t = ProcessTable::new(Arc::clone(&k)).unwrap();
    let a = t.spawn(INIT, None).unwrap();
    let va = mmap_in(&t, a, 2 * P);
    store(&t, a, 0, va, 7).unwrap();
    let c1 = t.fork(a).unwrap();
    let c2 = t.fork(a).unwrap();
    let g = t.fork(c1).unwrap();
    t.exit(c2, 5).unwrap(); // a zombie child of a
    assert_eq!(load(&t, g, 1, va), Ok(7));
    t.exit(a, 1).unwrap();
    // c1 (running) and c2 (zombie) now belong to init; g is still c1's.
    assert_eq!(t.parent(c1), Some(INIT));
    assert_eq!(t.parent(c2), Some(INIT));
    assert_eq!(t.parent(g), Some(c1));
    assert_eq!(t.wait(INIT, Some(a)), Ok((a, 1)));
    assert_eq!(t.wait(INIT, Some(c2)), Ok((c2, 5)), "init reaps the orphaned zombie");
    t.exit(c1, 2).unwrap();
    assert_eq!(t.parent(g), Some(INIT));
    assert_eq!(load(&t, g, 0, va), Ok(7), "g's memory outlives its ancestors");
    t.exit(g, 3).unwrap();
    let mut reaped = t.reap_init();
    reaped.sort_unstable();
    assert_eq!(reaped, vec![(c1, 2), (g, 3)]);
    assert_eq!(t.list().len(), 1, "only init left");
    drop(t);
    assert_eq!(k.free_frames(), boot);
}

#[test]
fn threads_share_memory_and_the_space_lives_until_the_last_thread() {
    let k = kernel(16);
    let mut t = ProcessTable::new(Arc::clone(&k)).unwrap();
    let before = k.free_frames();
    let p = t.spawn(INIT, None).unwrap();
    let va = mmap_in(&t, p, 4 * P);
    let t1 = t.clone_thread(p).unwrap();
    let t2 = t.clone_thread(p).unwrap();
    assert!(t1 != p && t2 != p && t1 != t2);
    assert!(Arc::ptr_eq(&t.space(t1).unwrap(), &t.space(p).unwrap()));
    // A store by one thread's CPU is seen by the other thread's CPU.
    store(&t, t1, 0, va + 8, 0xfeed).unwrap();
    assert_eq!(load(&t, t2, 1, va + 8), Ok(0xfeed));
    store(&t, t2, 1, va + P, 0xbeef).unwrap();
    assert_eq!(load(&t, t1, 0, va + P), Ok(0xbeef));
    // A mapping made by one thread is the others' too.
    let vb = mmap_in(&t, t2, P);
    store(&t, p, 0, vb, 9).unwrap();
    assert_eq!(load(&t, t1, 1, vb), Ok(9));
    let row = t.list().into_iter().find(|r| r.pid == p).unwrap();
    assert_eq!((row.state, row.threads), (ProcState::Running, 3));
    let used = k.free_frames();
    assert!(used < before);

    // The leader and t1 exit: the space stays, with its contents.
    t.exit_thread(p, 0).unwrap();
    t.exit_thread(t1, 0).unwrap();
    assert_eq!(t.state(p), Some(ProcState::Running));
    assert_eq!(k.free_frames(), used, "nothing freed while a thread remains");
    assert_eq!(load(&t, t2, 0, va + 8), Ok(0xfeed));
    assert_eq!(t.exit_thread(t1, 0), Err(Errno::ESRCH));
    // The last thread exits: the space is torn down and the process is a zombie.
    t.exit_thread(t2, 11).unwrap();
    assert_eq!(k.free_frames(), before);
    assert_eq!(t.state(p), Some(ProcState::Zombie(11)));
    assert_eq!(t.wait(INIT, None), Ok((p, 11)));
}

#[test]
fn exit_group_ends_every_thread() {
    let k = kernel(16);
    let mut t = ProcessTable::new(Arc::clone(&k)).unwrap();
    let before = k.free_frames();
    let p = t.spawn(INIT, None).unwrap();
    let va = mmap_in(&t, p, P);
    let th = t.clone_thread(p).unwrap();
    store(&t, th, 1, va, 1).unwrap();
    t.exit(p, 4).unwrap();
    assert!(t.space(th).is_none());
    assert_eq!(t.clone_thread(p), Err(Errno::ESRCH));
    assert_eq!(t.fork(p), Err(Errno::ESRCH));
    assert_eq!(k.free_frames(), before);
    assert_eq!(t.wait(INIT, Some(p)), Ok((p, 4)));
}

/// A small deterministic PRNG (xorshift64*).
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

#[test]
fn randomized_fork_write_exit_wait_leaks_nothing() {
    const PAGES: usize = 8;
    let k = kernel(32);
    let boot = k.free_frames();
    let mut t = ProcessTable::new(Arc::clone(&k)).unwrap();
    let va = mmap_in(&t, INIT, PAGES as u64 * P);
    // The model: each live thread group's expected page contents; thread -> group.
    let mut model: BTreeMap<Pid, [u64; PAGES]> = BTreeMap::new();
    let mut threads: BTreeMap<Pid, Pid> = BTreeMap::new();
    model.insert(INIT, [0; PAGES]);
    threads.insert(INIT, INIT);
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let mut exited = 0;
    for step in 0..400u64 {
        let tids: Vec<Pid> = threads.keys().copied().collect();
        let tid = tids[rng.below(tids.len())];
        let pid = threads[&tid];
        let cpu = rng.below(2);
        match rng.below(10) {
            0 | 1 if model.len() < 12 => {
                let c = t.fork(pid).unwrap();
                assert_eq!(t.parent(c), Some(pid));
                model.insert(c, model[&pid]);
                threads.insert(c, c);
            }
            2 if threads.len() < 20 => {
                let th = t.clone_thread(pid).unwrap();
                threads.insert(th, pid);
            }
            3 | 4 => {
                let i = rng.below(PAGES);
                let v = step << 8 | u64::from(pid);
                store(&t, tid, cpu, va + i as u64 * P, v).unwrap();
                model.get_mut(&pid).unwrap()[i] = v;
            }
            5 if pid != INIT => {
                t.exit(pid, (pid % 7) as i32).unwrap();
                model.remove(&pid);
                threads.retain(|_, g| *g != pid);
            }
            6 if tid != INIT => {
                t.exit_thread(tid, (tid % 5) as i32).unwrap();
                threads.remove(&tid);
                if !threads.values().any(|g| *g == pid) {
                    model.remove(&pid);
                }
            }
            7 => {
                // Some running process waits for any child.
                match t.wait(pid, None) {
                    Ok((c, _)) => {
                        assert!(!model.contains_key(&c));
                        assert_eq!(t.state(c), None);
                    }
                    Err(e) => assert!(e == Errno::ECHILD || e == Errno::EAGAIN, "{e:?}"),
                }
            }
            _ => {
                let i = rng.below(PAGES);
                assert_eq!(
                    load(&t, tid, cpu, va + i as u64 * P),
                    Ok(model[&pid][i]),
                    "step {step}"
                );
            }
        }
        // Every live group still reads its own values (COW isolation).
        if step % 50 == 49 {
            for (&th, &g) in &threads {
                for (i, &v) in model[&g].iter().enumerate() {
                    assert_eq!(load(&t, th, rng.below(2), va + i as u64 * P), Ok(v));
                }
            }
        }
        exited = exited.max(t.list().iter().filter(|r| r.state != ProcState::Running).count());
    }
    assert!(exited > 0, "the run made zombies");
    // Everyone but init exits; init reaps every orphan and zombie.
    let live: Vec<Pid> = model.keys().copied().filter(|&p| p != INIT).collect();
    for p in live {
        t.exit(p, 0).unwrap();
    }
    t.reap_init();
    let left = t.list();
    assert_eq!(left.len(), 1, "every process reaped: {left:?}");
    assert_eq!((left[0].pid, left[0].state), (INIT, ProcState::Running));
    drop(t);
    assert_eq!(k.free_frames(), boot, "no frame leaked");
}
