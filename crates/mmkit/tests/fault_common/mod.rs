//! Helpers for the page-layer tests: a frame allocator over a host buffer, a TLB that records
//! shootdowns, an in-memory page cache, and a tiny software "MMU" that walks the table and
//! calls the fault handler as hardware + the trap path would.
#![allow(dead_code)]

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use mmkit::addr::{Pfn, PhysAddr, VirtAddr};
use mmkit::fault::{Access, FaultError, FaultOutcome, FileError, FileId, FilePages, Host, Pages};
use mmkit::frame::{FrameAllocator, FrameConfig, Gfp, GfpFlags, MemKind, MemRegion};
use mmkit::paging::{PteFlags, X86_64};
use mmkit::platform::{Asid, CpuMask, PhysAccess, TlbFlush};
use mmkit::vma::{Backing, FileObject, VmFlags, Vma};

pub const P: u64 = 4096;

#[path = "../alloc_common/mod.rs"]
mod alloc_common;

#[allow(unused_imports)]
pub use alloc_common::{Cpus, HostMem, THREAD_CPU};
/// Physical-memory access over a [`HostMem`].
pub type Phys = alloc_common::Host;

pub type Fa = FrameAllocator<Phys, Cpus>;

/// One recorded TLB operation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TlbCall {
    Range { cpus: CpuMask, asid: Asid, start: u64, end: u64 },
    Asid { cpus: CpuMask, asid: Asid },
    All { cpus: CpuMask },
}

#[derive(Default)]
pub struct RecTlb {
    pub calls: Mutex<Vec<TlbCall>>,
}

impl RecTlb {
    pub fn take(&self) -> Vec<TlbCall> {
        std::mem::take(&mut *self.calls.lock().unwrap())
    }
}

impl TlbFlush for RecTlb {
    fn flush_range(&self, cpus: &CpuMask, asid: Asid, start: VirtAddr, end: VirtAddr) {
        self.calls.lock().unwrap().push(TlbCall::Range {
            cpus: *cpus,
            asid,
            start: start.0,
            end: end.0,
        });
    }
    fn flush_asid(&self, cpus: &CpuMask, asid: Asid) {
        self.calls.lock().unwrap().push(TlbCall::Asid { cpus: *cpus, asid });
    }
    fn flush_all(&self, cpus: &CpuMask) {
        self.calls.lock().unwrap().push(TlbCall::All { cpus: *cpus });
    }
}

/// Everything the page layer needs, plus an in-memory page cache.
pub struct TestHost {
    pub fa: Fa,
    pub zero: Pfn,
    pub tlb: RecTlb,
    /// File contents by file id (the "disk").
    pub disk: Mutex<HashMap<u64, Vec<u8>>>,
    /// The page cache: (object, index) → frame holding one cache reference.
    pub cache: Mutex<HashMap<(FileId, u64), Pfn>>,
    pub writebacks: Mutex<Vec<(FileId, u64)>>,
}

impl TestHost {
    /// `mib` MiB of physical memory at 1 MiB, `cpus` CPUs, no watermarks.
    pub fn new(mib: usize, cpus: usize) -> (Arc<HostMem>, TestHost) {
        let mem = Arc::new(HostMem::new(1 << 20, mib << 20));
        let map = [MemRegion::new(mem.pa0, mem.pa0 + mem.len as u64, MemKind::Usable)];
        let cfg = FrameConfig {
            dma32_end: PhysAddr(1 << 32),
            min_free_kbytes: Some(0),
            watermark_scale_factor: 0,
        };
        let fa = FrameAllocator::new(&map, cfg, mem.access(), Cpus::new(cpus)).unwrap();
        let zero = fa.alloc(Gfp::KERNEL.with(GfpFlags::ZERO), 0).unwrap();
        let h = TestHost {
            fa,
            zero,
            tlb: RecTlb::default(),
            disk: Mutex::new(HashMap::new()),
            cache: Mutex::new(HashMap::new()),
            writebacks: Mutex::new(Vec::new()),
        };
        (mem, h)
    }

    pub fn add_file(&self, id: u64, data: Vec<u8>) {
        self.disk.lock().unwrap().insert(id, data);
    }

    pub fn disk(&self, id: u64) -> Vec<u8> {
        self.disk.lock().unwrap()[&id].clone()
    }

    /// Drops the page cache (every cached frame loses the cache's reference).
    pub fn drop_cache(&self) {
        for (_, pfn) in self.cache.lock().unwrap().drain() {
            assert!(self.fa.put_page(pfn).unwrap(), "cache page still referenced");
        }
    }

    /// Frames in use besides the zero page (after draining per-CPU lists).
    pub fn in_use(&self) -> u64 {
        self.fa.drain_all();
        self.fa.check().unwrap();
        let s = self.fa.stats();
        s.boot_free - s.free_total() - 1
    }

    /// Leak check: drops the cache; everything but the zero page must be free.
    pub fn assert_no_leak(&self) {
        self.drop_cache();
        assert_eq!(self.in_use(), 0, "frames leaked");
    }

    pub fn frame_bytes(&self, pfn: Pfn) -> &[u8] {
        // SAFETY: test helper; the frame lies in host memory and is 4 KiB long.
        unsafe { std::slice::from_raw_parts(self.fa.frame_ptr(pfn), P as usize) }
    }
}

impl FilePages for TestHost {
    fn get_page(&self, file: FileId, index: u64) -> Result<Pfn, FileError> {
        let mut cache = self.cache.lock().unwrap();
        if let Some(&pfn) = cache.get(&(file, index)) {
            self.fa.get_page(pfn).unwrap();
            return Ok(pfn);
        }
        let pfn = self
            .fa
            .alloc(Gfp::HIGHUSER_MOVABLE.with(GfpFlags::ZERO), 0)
            .map_err(|_| FileError::OutOfMemory)?;
        if let FileId::File(id) = file {
            let disk = self.disk.lock().unwrap();
            let Some(data) = disk.get(&id) else {
                self.fa.put_page(pfn).unwrap();
                return Err(FileError::Io);
            };
            let off = (index * P) as usize;
            if off >= data.len() {
                self.fa.put_page(pfn).unwrap();
                return Err(FileError::BeyondEof);
            }
            let n = (data.len() - off).min(P as usize);
            // SAFETY: freshly allocated frame, 4 KiB.
            unsafe {
                std::ptr::copy_nonoverlapping(data[off..].as_ptr(), self.fa.frame_ptr(pfn), n)
            };
        }
        cache.insert((file, index), pfn);
        self.fa.get_page(pfn).unwrap();
        Ok(pfn)
    }
    fn size(&self, file: FileId) -> Option<u64> {
        match file {
            FileId::File(id) => self.disk.lock().unwrap().get(&id).map(|d| d.len() as u64),
            FileId::Shmem(_) => None,
        }
    }
    fn writeback(&self, file: FileId, index: u64, pfn: Pfn) {
        self.writebacks.lock().unwrap().push((file, index));
        if let FileId::File(id) = file {
            let mut disk = self.disk.lock().unwrap();
            let data = disk.get_mut(&id).unwrap();
            let off = (index * P) as usize;
            if off < data.len() {
                let n = (data.len() - off).min(P as usize);
                data[off..off + n].copy_from_slice(&self.frame_bytes(pfn)[..n]);
            }
        }
    }
}

impl Host for TestHost {
    type Phys = Phys;
    type Cpu = Cpus;
    type Tlb = RecTlb;
    type Files = TestHost;
    fn frames(&self) -> &Fa {
        &self.fa
    }
    fn tlb(&self) -> &RecTlb {
        &self.tlb
    }
    fn files(&self) -> &TestHost {
        self
    }
    fn zero_page(&self) -> Pfn {
        self.zero
    }
}

pub type Mm<'a> = Pages<X86_64, &'a TestHost>;

pub fn mm(h: &TestHost, asid: u16) -> Mm<'_> {
    Pages::new(h, Asid(asid)).unwrap()
}

pub const RW: VmFlags = VmFlags::READ
    .union(VmFlags::WRITE)
    .union(VmFlags::MAYREAD)
    .union(VmFlags::MAYWRITE)
    .union(VmFlags::MAYEXEC);
pub const RO: VmFlags =
    VmFlags::READ.union(VmFlags::MAYREAD).union(VmFlags::MAYWRITE).union(VmFlags::MAYEXEC);
pub const SHARED: VmFlags = VmFlags::SHARED.union(VmFlags::MAYSHARE);

pub fn anon(start: u64, pages: u64, flags: VmFlags) -> Vma {
    Vma {
        start,
        end: start + pages * P,
        flags,
        pgoff: start / P,
        backing: Backing::Anonymous,
        anon_vma: Some(mmkit::vma::AnonVma { id: 1, chain_inherited: false }).into(),
        name: None,
    }
}

pub fn file(start: u64, pages: u64, flags: VmFlags, id: u64, pgoff: u64) -> Vma {
    Vma {
        start,
        end: start + pages * P,
        flags,
        pgoff,
        backing: Backing::File(Arc::new(FileObject {
            id,
            dev_major: 8,
            dev_minor: 1,
            inode: id,
            path: format!("/f{id}"),
        })),
        anon_vma: Some(mmkit::vma::AnonVma { id: 2, chain_inherited: false }).into(),
        name: None,
    }
}

pub fn shmem(start: u64, pages: u64, flags: VmFlags, id: u64) -> Vma {
    Vma {
        start,
        end: start + pages * P,
        flags: flags | SHARED,
        pgoff: 0,
        backing: Backing::Shmem { id, size_pages: pages },
        anon_vma: Default::default(),
        name: None,
    }
}

/// The software MMU: translate `va` for `access`, faulting (and retrying) as the hardware
/// and trap path would; sets accessed/dirty like the hardware. Returns the physical address.
pub fn touch(
    mm: &Mm,
    vma: &Vma,
    va: u64,
    access: Access,
    cpu: usize,
) -> Result<PhysAddr, FaultError> {
    for _ in 0..100 {
        if let Ok(t) = mm.table().query(VirtAddr(va)) {
            let f = t.leaf.attrs.flags;
            let ok = match access {
                Access::Read => f.contains(PteFlags::READ),
                Access::Write => f.contains(PteFlags::WRITE),
                Access::Exec => f.contains(PteFlags::EXEC),
            };
            if ok {
                let want = if access == Access::Write {
                    PteFlags::ACCESSED | PteFlags::DIRTY
                } else {
                    PteFlags::ACCESSED
                };
                if !f.contains(want) {
                    let r = mm.table().update_leaf(VirtAddr(va), |m| {
                        (m.pa == t.leaf.pa).then(|| {
                            let mut a = m.attrs;
                            a.flags |= want;
                            a
                        })
                    });
                    if let Ok(fl) = r {
                        fl.ignore();
                    }
                }
                return Ok(t.pa);
            }
        }
        let _: FaultOutcome = mm.fault(vma, VirtAddr(va), access, cpu)?;
    }
    panic!("fault loop did not converge at {va:#x}");
}

pub fn write_u64(h: &TestHost, mm: &Mm, vma: &Vma, va: u64, v: u64) -> Result<(), FaultError> {
    let pa = touch(mm, vma, va, Access::Write, 0)?;
    // SAFETY: the translated address lies in host memory, 8-byte aligned by the callers.
    unsafe { (h.fa.phys_to_ptr(pa) as *mut u64).write_volatile(v) };
    Ok(())
}

pub fn read_u64(h: &TestHost, mm: &Mm, vma: &Vma, va: u64) -> Result<u64, FaultError> {
    let pa = touch(mm, vma, va, Access::Read, 0)?;
    // SAFETY: as above.
    Ok(unsafe { (h.fa.phys_to_ptr(pa) as *const u64).read_volatile() })
}

pub fn pfn_at(mm: &Mm, va: u64) -> Option<Pfn> {
    mm.table().query(VirtAddr(va)).ok().map(|t| Pfn::containing(t.leaf.pa))
}

/// Checks frame accounting across address spaces: every mapped frame's map count equals the
/// number of leaves mapping it, its reference count is that plus the page cache's reference,
/// RSS matches the leaves, and the zero page is never writable.
pub fn check_consistent(h: &TestHost, mms: &[&Mm]) {
    let mut maps: HashMap<Pfn, i32> = HashMap::new();
    for m in mms {
        let mut rss = 0;
        m.table()
            .walk(mmkit::addr::PageRange::new(0, 1 << 47).unwrap(), |l| {
                let p = Pfn::containing(l.pa);
                if p == h.zero {
                    assert!(!l.attrs.flags.contains(PteFlags::WRITE), "writable zero page");
                    return;
                }
                rss += 1;
                *maps.entry(p).or_default() += 1;
            })
            .unwrap();
        assert_eq!(m.rss().total(), rss, "RSS disagrees with the leaves");
    }
    let cached: std::collections::HashSet<Pfn> =
        h.cache.lock().unwrap().values().copied().collect();
    for (p, n) in maps {
        let meta = h.fa.meta(p).unwrap();
        assert_eq!(meta.mapcount(), n, "mapcount of {p:?}");
        assert_eq!(meta.refcount(), n + cached.contains(&p) as i32, "refcount of {p:?}");
    }
}
