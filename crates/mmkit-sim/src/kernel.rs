//! [`SimKernel`]: the core's page layer running on a [`Machine`]. Its frame allocator
//! (`mmkit::frame`) manages the machine's physical memory, its TLB shootdowns go to the
//! machine's per-CPU TLBs, it keeps an in-memory page cache and the shared zero page, and it
//! hands out ASIDs. [`SpaceHandler`] plugs [`AddressSpace::handle_fault`] into a CPU's fault
//! path.
//!
//! ```
//! use mmkit::space::NoFiles;
//! use mmkit::VirtAddr;
//! use mmkit_sim::{Machine, MachineConfig, SimKernel};
//!
//! let k = SimKernel::boot(Machine::new(MachineConfig::default()).unwrap()).unwrap();
//! let boot = k.free_frames();
//! let mut s = k.new_space().unwrap();
//! let a = s.sys_mmap(&NoFiles, 0, 4096, 3, 0x22, u64::MAX, 0).unwrap();
//! let mut cpu = k.cpu(0, &s);
//! cpu.store_u64(&SimKernel::context(&s), VirtAddr(a), 7).unwrap();
//! assert_eq!(cpu.load_u64(&SimKernel::context(&s), VirtAddr(a)).unwrap(), 7);
//! s.exit();
//! assert_eq!(k.free_frames(), boot);
//! ```

use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::{AtomicU16, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use mmkit::addr::Pfn;
use mmkit::fault::{Access, FaultError, FileError, FileId, FilePages, Host, Pages};
use mmkit::frame::{FrameAllocator, FrameConfig, Gfp, GfpFlags, InitError, MemKind, MemRegion};
use mmkit::paging::X86_64;
use mmkit::platform::{Asid, CpuId, PhysAccess};
use mmkit::{AddressSpace, MmConfig, PhysAddr, PAGE_SIZE};

use crate::machine::{AccessError, AsContext, CpuRef, FaultHandler, Machine};
use crate::mmu::{AccessKind, ArchKind, Fault};
use crate::phys::PhysMemory;

/// The machine's physical memory as the frame allocator reaches it.
#[derive(Clone, Debug)]
pub struct SimPhys(Arc<PhysMemory>);

impl PhysAccess for SimPhys {
    fn phys_to_ptr(&self, pa: PhysAddr) -> *mut u8 {
        self.0.phys_to_ptr(pa)
    }
}

/// The current CPU: set by [`SimKernel::cpu`] before the CPU runs (one host thread drives
/// the machine at a time in this slice).
#[derive(Debug)]
pub struct SimCpus {
    cur: AtomicUsize,
    n: usize,
}

impl CpuId for SimCpus {
    fn current_cpu(&self) -> usize {
        self.cur.load(Ordering::Relaxed)
    }
    fn cpu_count(&self) -> usize {
        self.n
    }
}

/// The frame allocator over the machine's memory.
pub type SimFrames = FrameAllocator<SimPhys, SimCpus>;

/// A minimal in-memory page cache: files are byte vectors ("the disk"); cached pages hold
/// one reference each until [`MemFiles::drop_cache`].
#[derive(Debug, Default)]
pub struct MemFiles {
    disk: Mutex<HashMap<u64, Vec<u8>>>,
    cache: Mutex<HashMap<(FileId, u64), Pfn>>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Why [`SimKernel::boot`] failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BootError {
    /// Only x86-64 4-level tables are wired up so far.
    UnsupportedArch(ArchKind),
    /// The frame allocator could not boot over the machine's memory.
    Frames(InitError),
    /// No frame for the zero page.
    NoZeroPage,
}

/// The kernel side of the simulator: the [`Host`] of every address space on one machine.
pub struct SimKernel {
    machine: Machine,
    frames: SimFrames,
    files: MemFiles,
    zero: Pfn,
    next_asid: AtomicU16,
}

impl fmt::Debug for SimKernel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SimKernel")
            .field("machine", &self.machine)
            .field("zero", &self.zero)
            .finish_non_exhaustive()
    }
}

/// A shared handle on a [`SimKernel`], the `H` of each space's [`Pages`].
#[derive(Clone, Debug)]
pub struct KernelRef(pub Arc<SimKernel>);

impl Host for KernelRef {
    type Phys = SimPhys;
    type Cpu = SimCpus;
    type Tlb = Machine;
    type Files = KernelRef;
    fn frames(&self) -> &SimFrames {
        &self.0.frames
    }
    fn tlb(&self) -> &Machine {
        &self.0.machine
    }
    fn files(&self) -> &KernelRef {
        self
    }
    fn zero_page(&self) -> Pfn {
        self.0.zero
    }
}

impl SimKernel {
    /// Boots on `machine`: every frame but frame 0 (reserved by the machine) goes to the
    /// frame allocator, which then provides the zero page.
    pub fn boot(machine: Machine) -> Result<Arc<Self>, BootError> {
        if machine.arch() != ArchKind::X86_64 {
            return Err(BootError::UnsupportedArch(machine.arch()));
        }
        let phys = Arc::clone(machine.phys());
        let map = [
            MemRegion::new(0, PAGE_SIZE, MemKind::Reserved),
            MemRegion::new(PAGE_SIZE, phys.size(), MemKind::Usable),
        ];
        let cfg = FrameConfig {
            dma32_end: PhysAddr(1 << 32),
            min_free_kbytes: Some(0),
            watermark_scale_factor: 0,
        };
        let cpus = SimCpus { cur: AtomicUsize::new(0), n: machine.cpu_count() };
        let frames =
            FrameAllocator::new(&map, cfg, SimPhys(phys), cpus).map_err(BootError::Frames)?;
        let zero =
            frames.alloc(Gfp::KERNEL.with(GfpFlags::ZERO), 0).map_err(|_| BootError::NoZeroPage)?;
        Ok(Arc::new(SimKernel {
            machine,
            frames,
            files: MemFiles::default(),
            zero,
            next_asid: AtomicU16::new(1),
        }))
    }

    /// The machine.
    pub fn machine(&self) -> &Machine {
        &self.machine
    }

    /// The frame allocator.
    pub fn frames(&self) -> &SimFrames {
        &self.frames
    }

    /// The page cache.
    pub fn files(&self) -> &MemFiles {
        &self.files
    }

    /// The shared zero page.
    pub fn zero_page(&self) -> Pfn {
        self.zero
    }

    /// A fresh ASID (never reused in this slice; 0 is left to the kernel).
    pub fn alloc_asid(&self) -> Asid {
        let a = self.next_asid.fetch_add(1, Ordering::Relaxed);
        assert!(a != 0, "ASIDs exhausted");
        Asid(a)
    }

    /// An empty process address space with its own ASID.
    pub fn new_space(self: &Arc<Self>) -> Option<AddressSpace> {
        let pages =
            Pages::<X86_64, KernelRef>::new(KernelRef(Arc::clone(self)), self.alloc_asid()).ok()?;
        Some(AddressSpace::with_pages(MmConfig::default(), Box::new(pages)))
    }

    /// `fork()`'s memory half: `parent`'s copy under a new ASID.
    pub fn fork(&self, parent: &mut AddressSpace) -> Result<AddressSpace, mmkit::Errno> {
        parent.try_fork(self.alloc_asid())
    }

    /// Free frames after draining the per-CPU lists (the leak-check figure).
    pub fn free_frames(&self) -> u64 {
        self.frames.drain_all();
        self.frames.stats().free_total()
    }

    /// What CPU `cpu` loads to run `space` (root table and ASID).
    ///
    /// # Panics
    /// If `space` has no page layer.
    pub fn context(space: &AddressSpace) -> AsContext {
        let p = space.pages().expect("a space built by SimKernel");
        AsContext { root: p.root(), asid: p.asid() }
    }

    /// CPU `id` switched to `space` (`switch_mm()`: the CPU joins the space's `mm_cpumask`),
    /// with the space's fault handler.
    ///
    /// # Panics
    /// If there is no CPU `id` or `space` has no page layer.
    pub fn cpu<'a>(&'a self, id: usize, space: &'a AddressSpace) -> CpuRef<'a, SpaceHandler<'a>> {
        space.pages().expect("a space built by SimKernel").activate(id);
        self.frames.cpu().cur.store(id, Ordering::Relaxed);
        self.machine.cpu(id).expect("no such CPU").with_handler(SpaceHandler { space })
    }

    /// Runs `op` (one or more accesses) on CPU `cpu` switched to `space`, with Linux 6.5+'s
    /// stack-growth retry: when the fault handler (mmap_lock read-held, a shared borrow)
    /// reports [`FaultError::NeedsWriteLock`], the shared borrow is dropped, the "write
    /// lock" is taken (`&mut AddressSpace`), [`AddressSpace::expand_stack`] grows the
    /// VM_GROWSDOWN VMA down to the faulting address, and `op` runs again from the start
    /// (so `op` should be idempotent, as a restarted instruction is). If the stack cannot
    /// grow, the access ends with expand_stack's error (SEGV_MAPERR) and the original fault.
    ///
    /// # Panics
    /// As [`SimKernel::cpu`].
    pub fn access<T>(
        &self,
        space: &mut AddressSpace,
        cpu: usize,
        mut op: impl FnMut(
            &mut CpuRef<'_, SpaceHandler<'_>>,
            &AsContext,
        ) -> Result<T, AccessError<FaultError>>,
    ) -> Result<T, AccessError<FaultError>> {
        loop {
            let r = {
                let ctx = Self::context(space);
                let mut c = self.cpu(cpu, space);
                op(&mut c, &ctx)
            };
            match r {
                Err(AccessError::Handler { error: FaultError::NeedsWriteLock, fault }) => {
                    space
                        .expand_stack(fault.va.0)
                        .map_err(|error| AccessError::Handler { error, fault })?;
                }
                r => return r,
            }
        }
    }
}

impl MemFiles {
    /// Adds (or replaces) file `id` with `data`.
    pub fn add_file(&self, id: u64, data: Vec<u8>) {
        lock(&self.disk).insert(id, data);
    }

    /// The contents of file `id` on "disk".
    pub fn disk(&self, id: u64) -> Option<Vec<u8>> {
        lock(&self.disk).get(&id).cloned()
    }

    /// Drops every cached page's cache reference (call once no space maps them).
    pub fn drop_cache(&self, frames: &SimFrames) {
        for (_, pfn) in lock(&self.cache).drain() {
            let _ = frames.put_page(pfn);
        }
    }
}

impl FilePages for KernelRef {
    fn get_page(&self, file: FileId, index: u64) -> Result<Pfn, FileError> {
        let fa = &self.0.frames;
        let files = &self.0.files;
        let mut cache = lock(&files.cache);
        if let Some(&pfn) = cache.get(&(file, index)) {
            fa.get_page(pfn).map_err(|_| FileError::Io)?;
            return Ok(pfn);
        }
        let pfn = fa
            .alloc(Gfp::HIGHUSER_MOVABLE.with(GfpFlags::ZERO), 0)
            .map_err(|_| FileError::OutOfMemory)?;
        if let FileId::File(id) = file {
            let disk = lock(&files.disk);
            let Some(data) = disk.get(&id) else {
                let _ = fa.put_page(pfn);
                return Err(FileError::Io);
            };
            let off = index.saturating_mul(PAGE_SIZE);
            if off >= data.len() as u64 {
                let _ = fa.put_page(pfn);
                return Err(FileError::BeyondEof);
            }
            let off = off as usize;
            let n = (data.len() - off).min(PAGE_SIZE as usize);
            let _ = fa.phys().0.write(PhysAddr(pfn.0 * PAGE_SIZE), &data[off..off + n]);
        }
        cache.insert((file, index), pfn);
        fa.get_page(pfn).map_err(|_| FileError::Io)?;
        Ok(pfn)
    }
    fn size(&self, file: FileId) -> Option<u64> {
        match file {
            FileId::File(id) => lock(&self.0.files.disk).get(&id).map(|d| d.len() as u64),
            FileId::Shmem(_) => None,
        }
    }
    fn writeback(&self, file: FileId, index: u64, pfn: Pfn) {
        if let FileId::File(id) = file {
            let mut disk = lock(&self.0.files.disk);
            if let Some(data) = disk.get_mut(&id) {
                let off = index.saturating_mul(PAGE_SIZE);
                if off < data.len() as u64 {
                    let off = off as usize;
                    let n = (data.len() - off).min(PAGE_SIZE as usize);
                    let _ = self
                        .0
                        .frames
                        .phys()
                        .0
                        .read(PhysAddr(pfn.0 * PAGE_SIZE), &mut data[off..off + n]);
                }
            }
        }
    }
}

/// Plugs [`AddressSpace::handle_fault`] into a CPU: every MMU fault becomes a call of the
/// core's handler under a shared borrow (mmap_lock held for read). Its error is the signal
/// (or OOM) the access ends with; [`FaultError::NeedsWriteLock`] (stack growth) is reported
/// as is: run the access through [`SimKernel::access`] to have the stack grown and the
/// access retried.
#[derive(Clone, Copy, Debug)]
pub struct SpaceHandler<'a> {
    /// The space the CPU runs.
    pub space: &'a AddressSpace,
}

impl FaultHandler for SpaceHandler<'_> {
    type Error = FaultError;
    fn handle_fault(&mut self, cpu: usize, _: &AsContext, f: &Fault) -> Result<(), FaultError> {
        let access = match f.access {
            AccessKind::Read => Access::Read,
            AccessKind::Write => Access::Write,
            AccessKind::Execute => Access::Exec,
        };
        self.space.handle_fault(f.va.0, access, cpu).map(|_| ())
    }
}
