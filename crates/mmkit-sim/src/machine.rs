//! [`Machine`]: physical memory, CPUs with TLBs, and the architecture; [`CpuRef`] performs
//! loads, stores and fetches through TLB → MMU → fault handler.

use std::convert::Infallible;
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use mmkit::platform::{Asid, CpuMask, TlbFlush};
use mmkit::{PhysAddr, VirtAddr, PAGE_SIZE};

use crate::mmu::{self, AccessKind, ArchKind, Fault, FaultKind, MmuConfig, Privilege};
use crate::phys::PhysMemory;
use crate::stopgap::StopgapFrames;
use crate::tlb::Tlb;

/// How many times one access is retried after the fault handler returned success before
/// it is reported as [`AccessError::Unresolved`] (real hardware would loop for ever).
pub const MAX_FAULT_RETRIES: u32 = 16;

/// An address space as a CPU sees it: the root table (CR3 / `satp` / `TTBR0_EL1` / `PGDL`)
/// and the ASID/PCID its translations are tagged with.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct AsContext {
    /// Physical address of the root table.
    pub root: PhysAddr,
    /// Address-space identifier.
    pub asid: Asid,
}

/// Called by the access retry loop on every fault: the core's page-fault handler plugs in
/// here (`handle_mm_fault()` via the arch's `do_page_fault()`).
///
/// `Ok(())` means "fixed, retry the access" (which may also be a spurious fault); an error
/// ends the access with [`AccessError::Handler`] (e.g. the signal to deliver).
pub trait FaultHandler {
    /// What the handler reports when it cannot resolve a fault.
    type Error;
    /// Handles `fault`, taken by CPU `cpu` while running in `ctx`.
    fn handle_fault(
        &mut self,
        cpu: usize,
        ctx: &AsContext,
        fault: &Fault,
    ) -> Result<(), Self::Error>;
}

impl<H: FaultHandler + ?Sized> FaultHandler for &mut H {
    type Error = H::Error;
    fn handle_fault(&mut self, cpu: usize, ctx: &AsContext, f: &Fault) -> Result<(), H::Error> {
        (**self).handle_fault(cpu, ctx, f)
    }
}

/// No fault handler: every fault ends the access.
#[derive(Clone, Copy, Debug, Default)]
pub struct NoHandler;

/// [`NoHandler`]'s error.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Unhandled;

impl FaultHandler for NoHandler {
    type Error = Unhandled;
    fn handle_fault(&mut self, _: usize, _: &AsContext, _: &Fault) -> Result<(), Unhandled> {
        Err(Unhandled)
    }
}

/// A closure as a fault handler.
pub struct FnHandler<F>(pub F);

impl<F> fmt::Debug for FnHandler<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("FnHandler")
    }
}

impl<F, E> FaultHandler for FnHandler<F>
where
    F: FnMut(usize, &AsContext, &Fault) -> Result<(), E>,
{
    type Error = E;
    fn handle_fault(&mut self, cpu: usize, ctx: &AsContext, f: &Fault) -> Result<(), E> {
        (self.0)(cpu, ctx, f)
    }
}

/// Why an access did not complete.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AccessError<E = Infallible> {
    /// The handler refused `fault`.
    Handler {
        /// The handler's error.
        error: E,
        /// The fault it was given.
        fault: Fault,
    },
    /// The handler kept reporting success but the access kept faulting.
    Unresolved(Fault),
}

impl<E> AccessError<E> {
    /// The fault that ended the access.
    pub fn fault(&self) -> &Fault {
        match self {
            AccessError::Handler { fault, .. } | AccessError::Unresolved(fault) => fault,
        }
    }
}

/// Per-CPU counters (monotonic).
#[derive(Debug, Default)]
struct Counters {
    hits: AtomicU64,
    walks: AtomicU64,
    faults: AtomicU64,
    flush_range: AtomicU64,
    flush_asid: AtomicU64,
    flush_all: AtomicU64,
    invalidated: AtomicU64,
}

/// A snapshot of one CPU's TLB and MMU statistics.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CpuStats {
    /// Accesses served from the TLB.
    pub tlb_hits: u64,
    /// Page-table walks (TLB misses, and writes through clean entries).
    pub walks: u64,
    /// Faults raised.
    pub faults: u64,
    /// Range flushes received.
    pub flush_range: u64,
    /// ASID flushes received.
    pub flush_asid: u64,
    /// Full flushes received.
    pub flush_all: u64,
    /// TLB entries dropped by flushes.
    pub entries_invalidated: u64,
}

impl CpuStats {
    /// All flushes received.
    pub fn flushes(&self) -> u64 {
        self.flush_range + self.flush_asid + self.flush_all
    }
}

#[derive(Debug)]
struct Cpu {
    tlb: Mutex<Tlb>,
    counters: Counters,
}

/// Parameters of a [`Machine`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MachineConfig {
    /// Bytes of physical memory (rounded up to pages).
    pub mem_size: u64,
    /// Number of CPUs (at least 1, at most [`CpuMask::MAX_CPUS`]).
    pub cpus: usize,
    /// Page-table format.
    pub arch: ArchKind,
    /// MMU features.
    pub mmu: MmuConfig,
    /// Entries per TLB.
    pub tlb_entries: usize,
}

impl Default for MachineConfig {
    fn default() -> Self {
        MachineConfig {
            mem_size: 64 << 20,
            cpus: 2,
            arch: ArchKind::X86_64,
            mmu: MmuConfig::default(),
            tlb_entries: 1536,
        }
    }
}

/// Why a machine could not be built.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MachineError {
    /// Zero or too many CPUs.
    BadCpuCount,
    /// The memory size is zero or the host could not provide it.
    NoMemory,
}

/// A simulated machine: physical memory, CPUs each with a TLB, one page-table format.
///
/// Processes and fault handling live in the core; the machine only translates, caches and
/// reports faults. It is `Sync`: host threads may drive different CPUs at once.
#[derive(Debug)]
pub struct Machine {
    phys: Arc<PhysMemory>,
    arch: ArchKind,
    mmu: MmuConfig,
    cpus: Vec<Cpu>,
}

impl Machine {
    /// Builds a machine.
    pub fn new(cfg: MachineConfig) -> Result<Self, MachineError> {
        if cfg.cpus == 0 || cfg.cpus > CpuMask::MAX_CPUS {
            return Err(MachineError::BadCpuCount);
        }
        let phys = PhysMemory::new(cfg.mem_size).ok_or(MachineError::NoMemory)?;
        let cpus = (0..cfg.cpus)
            .map(|_| Cpu {
                tlb: Mutex::new(Tlb::new(cfg.tlb_entries)),
                counters: Counters::default(),
            })
            .collect();
        Ok(Machine { phys: Arc::new(phys), arch: cfg.arch, mmu: cfg.mmu, cpus })
    }

    /// Physical memory.
    pub fn phys(&self) -> &Arc<PhysMemory> {
        &self.phys
    }

    /// A [`StopgapFrames`] over all of physical memory except frame 0 (which LoongArch tables
    /// must avoid). Temporary, until the simulator uses `mmkit::frame`.
    pub fn stopgap_frames(&self) -> StopgapFrames {
        StopgapFrames::new(Arc::clone(&self.phys), PhysAddr(PAGE_SIZE), PhysAddr(self.phys.size()))
    }

    /// The page-table format.
    pub fn arch(&self) -> ArchKind {
        self.arch
    }

    /// MMU features.
    pub fn mmu_config(&self) -> MmuConfig {
        self.mmu
    }

    /// Number of CPUs.
    pub fn cpu_count(&self) -> usize {
        self.cpus.len()
    }

    /// Every CPU.
    pub fn all_cpus(&self) -> CpuMask {
        CpuMask::first(self.cpus.len())
    }

    /// CPU `id` in user mode with no fault handler, or `None` if there is no such CPU.
    pub fn cpu(&self, id: usize) -> Option<CpuRef<'_, NoHandler>> {
        (id < self.cpus.len()).then_some(CpuRef {
            m: self,
            id,
            privilege: Privilege::User,
            handler: NoHandler,
        })
    }

    /// Statistics of CPU `id` (all zero for a CPU that does not exist).
    pub fn stats(&self, id: usize) -> CpuStats {
        let Some(c) = self.cpus.get(id) else { return CpuStats::default() };
        let l = |a: &AtomicU64| a.load(Ordering::Relaxed);
        let k = &c.counters;
        CpuStats {
            tlb_hits: l(&k.hits),
            walks: l(&k.walks),
            faults: l(&k.faults),
            flush_range: l(&k.flush_range),
            flush_asid: l(&k.flush_asid),
            flush_all: l(&k.flush_all),
            entries_invalidated: l(&k.invalidated),
        }
    }

    /// Entries currently cached by CPU `id`'s TLB.
    pub fn tlb_len(&self, id: usize) -> usize {
        self.cpus.get(id).map_or(0, |c| lock(&c.tlb).len())
    }

    fn each(&self, cpus: &CpuMask, which: FlushKind, mut f: impl FnMut(&mut Tlb) -> usize) {
        for id in cpus.iter().take_while(|&i| i < self.cpus.len()) {
            let c = &self.cpus[id];
            let n = f(&mut lock(&c.tlb));
            let k = &c.counters;
            let ctr = match which {
                FlushKind::Range => &k.flush_range,
                FlushKind::Asid => &k.flush_asid,
                FlushKind::All => &k.flush_all,
            };
            ctr.fetch_add(1, Ordering::Relaxed);
            k.invalidated.fetch_add(n as u64, Ordering::Relaxed);
        }
    }

    /// Translates one address for CPU `id`: TLB, then a walk on a miss.
    fn translate_once(
        &self,
        id: usize,
        ctx: &AsContext,
        va: u64,
        kind: AccessKind,
        privilege: Privilege,
    ) -> Result<PhysAddr, Fault> {
        let cpu = &self.cpus[id];
        let mut tlb = lock(&cpu.tlb);
        if let Some(e) = tlb.lookup(ctx.asid, va) {
            let allowed = e.perms(privilege).allows(kind);
            if allowed && (kind != AccessKind::Write || e.dirty) {
                cpu.counters.hits.fetch_add(1, Ordering::Relaxed);
                return Ok(PhysAddr(e.pa_page | (va & (PAGE_SIZE - 1))));
            }
            if !allowed {
                // The cached permissions deny it: fault without a walk, dropping the entry
                // (SDM §4.10.4.1). The handler may find the PTE already fine (spurious).
                tlb.invalidate_page(ctx.asid, va);
                cpu.counters.faults.fetch_add(1, Ordering::Relaxed);
                return Err(Fault {
                    va: VirtAddr(va),
                    access: kind,
                    privilege,
                    kind: FaultKind::Protection,
                    level: None,
                });
            }
            // A write through a clean entry: walk again to set the dirty bit.
        }
        cpu.counters.walks.fetch_add(1, Ordering::Relaxed);
        match mmu::translate(
            self.arch,
            self.mmu,
            &self.phys,
            ctx.root,
            VirtAddr(va),
            kind,
            privilege,
        ) {
            Ok(w) if self.phys.contains(w.pa, 1) => {
                tlb.insert(ctx.asid, va, &w);
                Ok(w.pa)
            }
            r => {
                tlb.invalidate_page(ctx.asid, va);
                cpu.counters.faults.fetch_add(1, Ordering::Relaxed);
                Err(r.err().unwrap_or(Fault {
                    va: VirtAddr(va),
                    access: kind,
                    privilege,
                    kind: FaultKind::Bus,
                    level: Some(0),
                }))
            }
        }
    }
}

#[derive(Clone, Copy)]
enum FlushKind {
    Range,
    Asid,
    All,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl TlbFlush for Machine {
    fn flush_range(&self, cpus: &CpuMask, asid: Asid, start: VirtAddr, end: VirtAddr) {
        self.each(cpus, FlushKind::Range, |t| t.flush_range(asid, start.0, end.0));
    }
    fn flush_asid(&self, cpus: &CpuMask, asid: Asid) {
        self.each(cpus, FlushKind::Asid, |t| t.flush_asid(asid));
    }
    fn flush_all(&self, cpus: &CpuMask) {
        self.each(cpus, FlushKind::All, |t| t.flush_all());
    }
}

/// One CPU of a [`Machine`], with a privilege level and a fault handler.
#[derive(Debug)]
pub struct CpuRef<'m, H = NoHandler> {
    m: &'m Machine,
    id: usize,
    privilege: Privilege,
    handler: H,
}

impl<'m, H: FaultHandler> CpuRef<'m, H> {
    /// This CPU's index.
    pub fn id(&self) -> usize {
        self.id
    }

    /// The same CPU making accesses with `p`.
    pub fn with_privilege(mut self, p: Privilege) -> Self {
        self.privilege = p;
        self
    }

    /// The same CPU calling `handler` on faults.
    pub fn with_handler<H2: FaultHandler>(self, handler: H2) -> CpuRef<'m, H2> {
        CpuRef { m: self.m, id: self.id, privilege: self.privilege, handler }
    }

    /// Translates `va` for `kind`, calling the handler and retrying on faults.
    pub fn translate(
        &mut self,
        ctx: &AsContext,
        va: VirtAddr,
        kind: AccessKind,
    ) -> Result<PhysAddr, AccessError<H::Error>> {
        let mut retries = 0;
        loop {
            match self.m.translate_once(self.id, ctx, va.0, kind, self.privilege) {
                Ok(pa) => return Ok(pa),
                Err(fault) => {
                    if retries == MAX_FAULT_RETRIES {
                        return Err(AccessError::Unresolved(fault));
                    }
                    retries += 1;
                    self.handler
                        .handle_fault(self.id, ctx, &fault)
                        .map_err(|error| AccessError::Handler { error, fault })?;
                }
            }
        }
    }

    /// Runs `f` on each piece of `[va, va + len)` that lies in one page, with its physical
    /// address, offset into the buffer and length. A range wrapping past the top of the
    /// address space faults on the wrapped part as a non-canonical access would.
    fn pieces(
        &mut self,
        ctx: &AsContext,
        va: VirtAddr,
        len: usize,
        kind: AccessKind,
        mut f: impl FnMut(PhysAddr, usize, usize),
    ) -> Result<(), AccessError<H::Error>> {
        let mut done = 0usize;
        while done < len {
            let a = va.0.wrapping_add(done as u64);
            let n = ((PAGE_SIZE - (a & (PAGE_SIZE - 1))) as usize).min(len - done);
            let pa = self.translate(ctx, VirtAddr(a), kind)?;
            f(pa, done, n);
            done += n;
        }
        Ok(())
    }

    fn read_kind(
        &mut self,
        ctx: &AsContext,
        va: VirtAddr,
        buf: &mut [u8],
        kind: AccessKind,
    ) -> Result<(), AccessError<H::Error>> {
        let phys = Arc::clone(&self.m.phys);
        self.pieces(ctx, va, buf.len(), kind, |pa, off, n| {
            // In bounds: translate_once only returns addresses inside memory, and a piece
            // never crosses the page.
            let _ = phys.read(pa, &mut buf[off..off + n]);
        })
    }

    /// Loads `buf.len()` bytes from `va`.
    pub fn load(
        &mut self,
        ctx: &AsContext,
        va: VirtAddr,
        buf: &mut [u8],
    ) -> Result<(), AccessError<H::Error>> {
        self.read_kind(ctx, va, buf, AccessKind::Read)
    }

    /// Fetches `buf.len()` instruction bytes from `va`.
    pub fn fetch(
        &mut self,
        ctx: &AsContext,
        va: VirtAddr,
        buf: &mut [u8],
    ) -> Result<(), AccessError<H::Error>> {
        self.read_kind(ctx, va, buf, AccessKind::Execute)
    }

    /// Stores `data` at `va`. A store crossing a page boundary translates every page before
    /// writing any byte, so a fault on the second page leaves the first unchanged (as x86
    /// does for a split store).
    pub fn store(
        &mut self,
        ctx: &AsContext,
        va: VirtAddr,
        data: &[u8],
    ) -> Result<(), AccessError<H::Error>> {
        let mut parts: Vec<(PhysAddr, usize, usize)> = Vec::new();
        self.pieces(ctx, va, data.len(), AccessKind::Write, |pa, off, n| parts.push((pa, off, n)))?;
        for (pa, off, n) in parts {
            let _ = self.m.phys.write(pa, &data[off..off + n]);
        }
        Ok(())
    }

    /// Loads a little-endian `u64`.
    pub fn load_u64(
        &mut self,
        ctx: &AsContext,
        va: VirtAddr,
    ) -> Result<u64, AccessError<H::Error>> {
        let mut b = [0u8; 8];
        self.load(ctx, va, &mut b)?;
        Ok(u64::from_le_bytes(b))
    }

    /// Stores a little-endian `u64`.
    pub fn store_u64(
        &mut self,
        ctx: &AsContext,
        va: VirtAddr,
        v: u64,
    ) -> Result<(), AccessError<H::Error>> {
        self.store(ctx, va, &v.to_le_bytes())
    }

    /// Fetches a little-endian `u64` of instruction bytes.
    pub fn fetch_u64(
        &mut self,
        ctx: &AsContext,
        va: VirtAddr,
    ) -> Result<u64, AccessError<H::Error>> {
        let mut b = [0u8; 8];
        self.fetch(ctx, va, &mut b)?;
        Ok(u64::from_le_bytes(b))
    }

    /// Loads one byte.
    pub fn load_u8(&mut self, ctx: &AsContext, va: VirtAddr) -> Result<u8, AccessError<H::Error>> {
        let mut b = [0u8; 1];
        self.load(ctx, va, &mut b)?;
        Ok(b[0])
    }

    /// Stores one byte.
    pub fn store_u8(
        &mut self,
        ctx: &AsContext,
        va: VirtAddr,
        v: u8,
    ) -> Result<(), AccessError<H::Error>> {
        self.store(ctx, va, &[v])
    }
}
