//! A small process table over a [`SimKernel`]: pid 1 is init, processes are spawned, forked
//! (their memory copied by [`SimKernel::fork`]), run threads that share one address space,
//! exit (the address space is torn down at once, `exit_mmap()`), stay zombies until their
//! parent waits, and have their children reparented to init.
//!
//! Each thread holds its own [`SharedSpace`] handle, an `Arc<RwLock<AddressSpace>>`: the
//! `Arc` count is `mm->mm_users` (the space is dropped, i.e. torn down, when the last thread
//! holding it exits) and the `RwLock` is the `mmap_lock` — faults run under a read guard
//! (shared borrow, as [`SimKernel::cpu`] takes `&AddressSpace`), while mmap/munmap, stack
//! growth and fork (`dup_mmap()` write-locks the parent's mm) take the write guard.
//!
//! ```
//! use mmkit_sim::{Machine, MachineConfig, ProcState, ProcessTable, SimKernel};
//!
//! let k = SimKernel::boot(Machine::new(MachineConfig::default()).unwrap()).unwrap();
//! let mut t = ProcessTable::new(k).unwrap();
//! let child = t.fork(ProcessTable::INIT).unwrap();
//! t.exit(child, 3).unwrap();
//! assert_eq!(t.state(child), Some(ProcState::Zombie(3)));
//! assert_eq!(t.wait(ProcessTable::INIT, None), Ok((child, 3)));
//! assert_eq!(t.state(child), None);
//! ```

use std::collections::BTreeMap;
use std::sync::{Arc, PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};

use mmkit::{AddressSpace, Errno};

use crate::kernel::SimKernel;

/// A process or thread id (one number space, as in Linux: a thread group's leader has
/// tid == pid).
pub type Pid = u32;

/// An address space shared by the threads of one process: `Arc` = `mm_users`,
/// `RwLock` = `mmap_lock`.
pub type SharedSpace = Arc<RwLock<AddressSpace>>;

/// The mmap_lock taken for read (faults, loads and stores).
pub fn read_space(s: &SharedSpace) -> RwLockReadGuard<'_, AddressSpace> {
    s.read().unwrap_or_else(PoisonError::into_inner)
}

/// The mmap_lock taken for write (mmap, munmap, mprotect, stack growth, fork).
pub fn write_space(s: &SharedSpace) -> RwLockWriteGuard<'_, AddressSpace> {
    s.write().unwrap_or_else(PoisonError::into_inner)
}

/// A process's state, as the listing shows it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProcState {
    /// Alive, with at least one thread (`R`/`S`).
    Running,
    /// Exited with this status, its memory gone, waiting for its parent to reap it (`Z`).
    Zombie(i32),
}

/// One row of [`ProcessTable::list`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ProcInfo {
    /// The process id.
    pub pid: Pid,
    /// The parent's pid (0 for init).
    pub ppid: Pid,
    /// Running or zombie.
    pub state: ProcState,
    /// Live threads (0 for a zombie).
    pub threads: usize,
}

#[derive(Debug)]
struct Process {
    parent: Pid,
    state: ProcState,
    /// tid -> that thread's handle on the process's space (`task->mm`).
    threads: BTreeMap<Pid, SharedSpace>,
}

/// The process table.
#[derive(Debug)]
pub struct ProcessTable {
    kernel: Arc<SimKernel>,
    procs: BTreeMap<Pid, Process>,
    /// tid -> the pid of its thread group.
    tgid: BTreeMap<Pid, Pid>,
    next_pid: Pid,
}

impl ProcessTable {
    /// The pid of init.
    pub const INIT: Pid = 1;

    /// A table holding only init (pid 1) with an empty address space; `None` if the space
    /// could not be built.
    pub fn new(kernel: Arc<SimKernel>) -> Option<Self> {
        let init = kernel.new_space()?;
        let mut t =
            ProcessTable { kernel, procs: BTreeMap::new(), tgid: BTreeMap::new(), next_pid: 1 };
        let pid = t.insert(0, init);
        debug_assert_eq!(pid, Self::INIT);
        Some(t)
    }

    /// The kernel.
    pub fn kernel(&self) -> &Arc<SimKernel> {
        &self.kernel
    }

    fn alloc_pid(&mut self) -> Pid {
        let p = self.next_pid;
        self.next_pid = self.next_pid.checked_add(1).expect("pids exhausted");
        p
    }

    fn insert(&mut self, parent: Pid, space: AddressSpace) -> Pid {
        let pid = self.alloc_pid();
        let mut threads = BTreeMap::new();
        threads.insert(pid, Arc::new(RwLock::new(space)));
        self.procs.insert(pid, Process { parent, state: ProcState::Running, threads });
        self.tgid.insert(pid, pid);
        pid
    }

    fn running(&self, pid: Pid) -> Result<&Process, Errno> {
        match self.procs.get(&pid) {
            Some(p) if p.state == ProcState::Running => Ok(p),
            _ => Err(Errno::ESRCH),
        }
    }

    /// A new child of `parent` running `space` (an empty one if `None`). ESRCH if `parent`
    /// is not running, ENOMEM if no empty space could be built.
    pub fn spawn(&mut self, parent: Pid, space: Option<AddressSpace>) -> Result<Pid, Errno> {
        self.running(parent)?;
        let space = match space {
            Some(s) => s,
            None => self.kernel.new_space().ok_or(Errno::ENOMEM)?,
        };
        Ok(self.insert(parent, space))
    }

    /// `fork()`: a child of `pid` whose memory is a copy of `pid`'s (through
    /// [`SimKernel::fork`], under the parent's mmap_lock for write), with one thread.
    pub fn fork(&mut self, pid: Pid) -> Result<Pid, Errno> {
        let space = self.space(pid).ok_or(Errno::ESRCH)?;
        let child = self.kernel.fork(&mut write_space(&space))?;
        Ok(self.insert(pid, child))
    }

    /// `clone(CLONE_VM | CLONE_THREAD)`: a new thread of `pid` sharing its address space.
    pub fn clone_thread(&mut self, pid: Pid) -> Result<Pid, Errno> {
        let space = self.space(pid).ok_or(Errno::ESRCH)?;
        let tid = self.alloc_pid();
        self.procs.get_mut(&pid).ok_or(Errno::ESRCH)?.threads.insert(tid, space);
        self.tgid.insert(tid, pid);
        Ok(tid)
    }

    /// The address space thread `tid` (or any thread of process `tid`) runs, if alive. The handle keeps
    /// the space alive while held (`mmget()`): drop it before expecting an exit to free it.
    pub fn space(&self, tid: Pid) -> Option<SharedSpace> {
        // A pid whose leader thread has exited still names its live thread group.
        let pid = self.tgid.get(&tid).copied().unwrap_or(tid);
        let p = self.running(pid).ok()?;
        p.threads.get(&tid).or_else(|| p.threads.values().next()).cloned()
    }

    /// `exit()` of one thread: drops its handle on the space. When it was the last thread,
    /// the process exits with `status` (see [`ProcessTable::exit`]).
    pub fn exit_thread(&mut self, tid: Pid, status: i32) -> Result<(), Errno> {
        let pid = *self.tgid.get(&tid).ok_or(Errno::ESRCH)?;
        let p = self.procs.get_mut(&pid).ok_or(Errno::ESRCH)?;
        let handle = p.threads.remove(&tid).ok_or(Errno::ESRCH)?;
        self.tgid.remove(&tid);
        drop(handle);
        if p.threads.is_empty() {
            self.become_zombie(pid, status);
        }
        Ok(())
    }

    /// `exit_group()`: every thread of `pid` exits, the address space is torn down at once
    /// (`exit_mmap()`, unless someone still holds a [`ProcessTable::space`] handle), the
    /// process stays a zombie until its parent waits, and its children are reparented to
    /// init. ESRCH if `pid` is not running; EPERM for init.
    pub fn exit(&mut self, pid: Pid, status: i32) -> Result<(), Errno> {
        if pid == Self::INIT {
            return Err(Errno::EPERM);
        }
        let p = self.procs.get_mut(&pid).filter(|p| p.state == ProcState::Running);
        let p = p.ok_or(Errno::ESRCH)?;
        let threads = std::mem::take(&mut p.threads);
        for tid in threads.keys() {
            self.tgid.remove(tid);
        }
        drop(threads);
        self.become_zombie(pid, status);
        Ok(())
    }

    fn become_zombie(&mut self, pid: Pid, status: i32) {
        if let Some(p) = self.procs.get_mut(&pid) {
            p.state = ProcState::Zombie(status);
        }
        // forget_original_parent(): the children go to init (the child subreaper).
        for c in self.procs.values_mut() {
            if c.parent == pid {
                c.parent = Self::INIT;
            }
        }
    }

    /// `waitpid(pid or -1, WNOHANG)`: reaps a zombie child of `parent` (`pid`, or any with
    /// `None`) and returns its pid and status. ECHILD when `parent` has no such child;
    /// EAGAIN when it has one but none has exited yet (the call would block).
    pub fn wait(&mut self, parent: Pid, pid: Option<Pid>) -> Result<(Pid, i32), Errno> {
        let mut any = false;
        let mut found = None;
        for (&c, p) in &self.procs {
            if p.parent != parent || pid.is_some_and(|w| w != c) {
                continue;
            }
            any = true;
            if let ProcState::Zombie(status) = p.state {
                found = Some((c, status));
                break;
            }
        }
        match found {
            Some((c, status)) => {
                self.procs.remove(&c);
                Ok((c, status))
            }
            None if any => Err(Errno::EAGAIN),
            None => Err(Errno::ECHILD),
        }
    }

    /// Init reaps every zombie it has (orphans included); returns what it reaped.
    pub fn reap_init(&mut self) -> Vec<(Pid, i32)> {
        let mut v = Vec::new();
        while let Ok(r) = self.wait(Self::INIT, None) {
            v.push(r);
        }
        v
    }

    /// The state of `pid`, `None` once reaped (or never created).
    pub fn state(&self, pid: Pid) -> Option<ProcState> {
        self.procs.get(&pid).map(|p| p.state)
    }

    /// The parent of `pid`.
    pub fn parent(&self, pid: Pid) -> Option<Pid> {
        self.procs.get(&pid).map(|p| p.parent)
    }

    /// Every process (zombies included), by pid.
    pub fn list(&self) -> Vec<ProcInfo> {
        self.procs
            .iter()
            .map(|(&pid, p)| ProcInfo {
                pid,
                ppid: p.parent,
                state: p.state,
                threads: p.threads.len(),
            })
            .collect()
    }
}
