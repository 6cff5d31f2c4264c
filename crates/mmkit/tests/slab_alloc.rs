//! Slab allocator: every kmalloc class, typed caches, per-CPU freelists, GlobalAlloc, leak
//! checks back to zero and fault injection.

use std::alloc::{GlobalAlloc, Layout};
use std::collections::HashSet;
use std::ptr::NonNull;
use std::sync::atomic::Ordering;

use mmkit::frame::{FrameAllocator, FrameConfig, MemKind, MemRegion};
use mmkit::slab::{
    kmalloc_class, GlobalKmalloc, Kmalloc, SlabCache, SlabError, TypedCache, KMALLOC_SIZES,
};
use proptest::prelude::*;

mod alloc_common;
use alloc_common::{Cpus, Host, HostMem, THREAD_CPU};

const MIB: usize = 1 << 20;

type Fa = FrameAllocator<Host, Cpus>;

fn frames(mem: &HostMem, cpus: usize) -> Fa {
    let map = [MemRegion::new(0, mem.len as u64, MemKind::Usable)];
    let cfg = FrameConfig { min_free_kbytes: Some(0), ..FrameConfig::default() };
    FrameAllocator::new(&map, cfg, mem.access(), Cpus::new(cpus)).unwrap()
}

fn frames_back_to_boot(fa: &Fa) {
    fa.drain_all();
    fa.check().unwrap();
    assert_eq!(fa.free_pages_total(), fa.boot_free(), "frames leaked");
}

#[test]
fn class_selection_follows_kmalloc_index() {
    let l = |s, a| Layout::from_size_align(s, a).unwrap();
    let size = |s, a| kmalloc_class(l(s, a)).map(|c| KMALLOC_SIZES[c]);
    assert_eq!(size(1, 1), Some(8));
    assert_eq!(size(8, 8), Some(8));
    assert_eq!(size(9, 1), Some(16));
    assert_eq!(size(65, 1), Some(96));
    assert_eq!(size(96, 8), Some(96));
    assert_eq!(size(96, 64), Some(128), "96 is only 32-aligned");
    assert_eq!(size(129, 8), Some(192));
    assert_eq!(size(193, 8), Some(256));
    assert_eq!(size(257, 8), Some(512));
    assert_eq!(size(4096, 4096), Some(4096));
    assert_eq!(size(8, 4096), Some(4096));
    assert_eq!(size(4097, 8), None);
    assert_eq!(size(8, 8192), None);
}

#[test]
fn every_class_allocs_frees_and_leaks_nothing() {
    let mem = HostMem::new(0, 64 * MIB);
    let fa = frames(&mem, 1);
    {
        let k = Kmalloc::new(&fa);
        for (c, &sz) in KMALLOC_SIZES.iter().enumerate() {
            let layout = Layout::from_size_align(sz, 8).unwrap();
            let n = 3 * k.cache(c).unwrap().objects_per_slab() as usize + 5;
            let mut ptrs = Vec::new();
            let mut seen = HashSet::new();
            for i in 0..n {
                let p = k.alloc(layout).unwrap();
                assert_eq!(p.as_ptr() as usize % (sz & sz.wrapping_neg()), 0, "natural alignment");
                assert!(seen.insert(p.as_ptr() as usize), "{sz}: object handed out twice");
                // SAFETY: the object is ours and `sz` bytes long.
                unsafe { std::ptr::write_bytes(p.as_ptr(), i as u8, sz) };
                ptrs.push(p);
            }
            // No two objects overlap: sorted addresses are at least `sz` apart.
            let mut v: Vec<usize> = seen.into_iter().collect();
            v.sort();
            assert!(v.windows(2).all(|w| w[1] - w[0] >= sz));
            for (i, p) in ptrs.iter().enumerate() {
                // SAFETY: reading our own object.
                let b = unsafe { std::slice::from_raw_parts(p.as_ptr(), sz) };
                assert!(b.iter().all(|&x| x == i as u8), "{sz}: object overwritten");
            }
            let st = k.stats()[c];
            assert_eq!(st.objects_in_use, n as u64);
            assert!(st.slabs >= 3);
            k.check().unwrap();
            for p in ptrs {
                // SAFETY: allocated above, freed once.
                unsafe { k.free(p).unwrap() };
            }
            let st = k.stats()[c];
            assert_eq!(st.objects_in_use, 0, "{}", st.name);
            assert_eq!(st.allocs, n as u64);
            assert_eq!(st.frees, n as u64);
            k.check().unwrap();
        }
        assert_eq!(k.objects_in_use(), 0);
        k.shrink();
        for st in k.stats() {
            assert_eq!((st.slabs, st.objects_cached), (0, 0), "{}", st.name);
            assert_eq!(st.slabs_allocated, st.slabs_released);
        }
        frames_back_to_boot(&fa);
    }
    frames_back_to_boot(&fa);
}

#[test]
fn large_allocations_use_pages() {
    let mem = HostMem::new(0, 16 * MIB);
    let fa = frames(&mem, 1);
    let k = Kmalloc::new(&fa);
    let l = Layout::from_size_align(3 * 4096 + 1, 8).unwrap();
    let p = k.alloc(l).unwrap();
    assert_eq!(p.as_ptr() as usize % 4096, 0);
    assert_eq!(k.large_pages(), 4);
    assert_eq!(k.objects_in_use(), 1);
    let big = Layout::from_size_align(8 * MIB, 8).unwrap();
    assert_eq!(k.alloc(big), Err(SlabError::BadLayout), "above MAX_ORDER");
    let aligned = Layout::from_size_align(64, 16384).unwrap();
    let q = k.alloc(aligned).unwrap();
    assert_eq!(q.as_ptr() as usize % 16384, 0);
    // SAFETY: allocated above.
    unsafe {
        k.free(p).unwrap();
        k.free(q).unwrap();
        // Interior pointer of a page block, and a pointer outside managed memory.
        let r = k.alloc(l).unwrap();
        assert_eq!(k.free(NonNull::new(r.as_ptr().add(4096)).unwrap()), Err(SlabError::BadObject));
        let mut local = 0u64;
        assert_eq!(
            k.free(NonNull::new(&mut local as *mut u64 as *mut u8).unwrap()),
            Err(SlabError::BadObject)
        );
        k.free(r).unwrap();
    }
    assert_eq!(k.objects_in_use(), 0);
    drop(k);
    frames_back_to_boot(&fa);
}

#[test]
fn foreign_and_misaligned_frees_are_refused() {
    let mem = HostMem::new(0, 16 * MIB);
    let fa = frames(&mem, 1);
    let k = Kmalloc::new(&fa);
    let c64 = SlabCache::new("test-64", 64, 8).unwrap();
    let none = mmkit::frame::FaultInjector::new();
    let a = c64.alloc(&fa, &none).unwrap();
    let b = k.alloc(Layout::from_size_align(64, 8).unwrap()).unwrap();
    // SAFETY: the frees below are refused before touching memory.
    unsafe {
        assert_eq!(c64.free(&fa, b.as_ptr()), Err(SlabError::BadObject), "wrong cache");
        assert_eq!(c64.free(&fa, a.add(8)), Err(SlabError::BadObject), "inside an object");
        assert_eq!(k.free(NonNull::new(a).unwrap()), Err(SlabError::BadObject), "typed object");
        let wrong = Layout::from_size_align(300, 8).unwrap();
        assert_eq!(k.free_layout(b, wrong), Err(SlabError::BadObject), "layout of another class");
        c64.free(&fa, a).unwrap();
        k.free_layout(b, Layout::from_size_align(64, 8).unwrap()).unwrap();
    }
    c64.check(&fa).unwrap();
    c64.shrink(&fa);
    drop(k);
    frames_back_to_boot(&fa);
}

#[test]
fn per_cpu_freelists_refill_and_flush() {
    let mem = HostMem::new(0, 16 * MIB);
    let fa = frames(&mem, 2);
    let none = mmkit::frame::FaultInjector::new();
    let c = SlabCache::new("test-32", 32, 8).unwrap();
    // One allocation refills a batch (60 of kmalloc-32's limit 120) onto CPU 0's list.
    let a = c.alloc(&fa, &none).unwrap();
    let st = c.stats();
    assert_eq!((st.objects_in_use, st.objects_cached), (1, 59));
    // CPU 1 frees into its own list; frees beyond the limit flush a batch back to slabs.
    fa.cpu().cur.store(1, Ordering::Relaxed);
    let mut objs = Vec::new();
    for _ in 0..300 {
        objs.push(c.alloc(&fa, &none).unwrap());
    }
    for o in objs {
        // SAFETY: allocated above.
        unsafe { c.free(&fa, o).unwrap() };
    }
    let st = c.stats();
    assert!(st.objects_cached <= 59 + 120, "per-CPU lists stay bounded: {st:?}");
    assert_eq!(st.objects_in_use, 1);
    c.check(&fa).unwrap();
    // A CPU beyond cpu_count() shares slot 0 rather than failing.
    fa.cpu().cur.store(9, Ordering::Relaxed);
    // SAFETY: allocated above.
    unsafe { c.free(&fa, a).unwrap() };
    fa.cpu().cur.store(0, Ordering::Relaxed);
    assert_eq!(c.stats().objects_in_use, 0);
    c.shrink(&fa);
    let st = c.stats();
    assert_eq!((st.slabs, st.objects_cached), (0, 0));
    frames_back_to_boot(&fa);
}

#[derive(Debug, PartialEq)]
struct VmaNode {
    start: u64,
    end: u64,
    flags: u32,
    name: Option<Box<str>>,
}

#[test]
fn typed_caches_construct_and_drop() {
    let mem = HostMem::new(0, 16 * MIB);
    let fa = frames(&mem, 1);
    {
        let vmas: TypedCache<'_, VmaNode, _, _> = TypedCache::new(&fa, "vm_area_struct").unwrap();
        let ptes: TypedCache<'_, [u64; 512], _, _> = TypedCache::new(&fa, "pgtable").unwrap();
        assert_eq!(ptes.cache().align(), 8);
        let mut held = Vec::new();
        for i in 0..500u64 {
            let v = VmaNode { start: i << 12, end: (i + 1) << 12, flags: 3, name: None };
            held.push(vmas.alloc(v).unwrap());
        }
        let t = ptes.alloc([7; 512]).unwrap();
        // SAFETY: live objects from the caches.
        unsafe {
            assert_eq!(held[42].as_ref().start, 42 << 12);
            assert_eq!(t.as_ref()[511], 7);
            let named =
                vmas.alloc(VmaNode { start: 0, end: 1, flags: 0, name: Some("[heap]".into()) });
            vmas.free(named.unwrap()).unwrap();
            for p in held {
                vmas.free(p).unwrap();
            }
            ptes.free(t).unwrap();
        }
        assert_eq!(vmas.stats().objects_in_use, 0);
        assert_eq!(ptes.stats().objects_in_use, 0);
        vmas.cache().check(&fa).unwrap();
    }
    // Dropping the caches returned their slabs.
    frames_back_to_boot(&fa);
}

#[test]
fn global_alloc_smoke() {
    let mem = HostMem::new(0, 16 * MIB);
    let fa = frames(&mem, 1);
    let k = Kmalloc::new(&fa);
    let heap: &dyn GlobalAlloc = &k;
    let mut live = Vec::new();
    for (i, sz) in [1usize, 7, 24, 100, 500, 3000, 5000, 20000].into_iter().enumerate() {
        for align in [1usize, 8, 64, 4096] {
            let l = Layout::from_size_align(sz, align).unwrap();
            // SAFETY: non-zero size.
            let p = unsafe { heap.alloc(l) };
            assert!(!p.is_null());
            assert_eq!(p as usize % align, 0, "size {sz} align {align}");
            // SAFETY: `p` is `sz` writable bytes.
            unsafe { std::ptr::write_bytes(p, i as u8, sz) };
            live.push((p, l));
        }
    }
    // realloc through the default GlobalAlloc::realloc (alloc + copy + dealloc).
    let (p, l) = live.pop().unwrap();
    // SAFETY: `p` came from this heap with layout `l`.
    let q = unsafe { heap.realloc(p, l, 40000) };
    assert!(!q.is_null());
    // SAFETY: first byte of the copied block.
    assert_eq!(unsafe { *q }, 7);
    live.push((q, Layout::from_size_align(40000, l.align()).unwrap()));
    for (p, l) in live {
        // SAFETY: allocated above with `l`.
        unsafe { heap.dealloc(p, l) };
    }
    assert_eq!(k.objects_in_use(), 0);
    drop(k);
    frames_back_to_boot(&fa);

    // The wrapper lives in a static, as a `#[global_allocator]` would, and returns null
    // until initialised.
    static HEAP: GlobalKmalloc<Host, Cpus> = GlobalKmalloc::new();
    let g = &HEAP;
    // SAFETY: non-zero size.
    assert!(unsafe { g.alloc(Layout::new::<u64>()) }.is_null());
    let mem2: &'static HostMem = Box::leak(Box::new(HostMem::new(0, 4 * MIB)));
    let leaked: &'static Fa = Box::leak(Box::new(frames(mem2, 1)));
    g.init(leaked);
    let l = Layout::new::<[u8; 48]>();
    // SAFETY: non-zero size; freed right after.
    unsafe {
        let p = g.alloc(l);
        assert!(!p.is_null());
        g.dealloc(p, l);
    }
    assert_eq!(g.get().unwrap().objects_in_use(), 0);
}

/// Allocates a mix of sizes, freeing some as it goes; on failure frees everything it holds.
fn scenario(k: &Kmalloc<'_, Host, Cpus>) -> Result<Vec<NonNull<u8>>, SlabError> {
    let mut held = Vec::new();
    for i in 0..60usize {
        let size = [8, 64, 200, 1000, 4096, 9000, 32, 512][i % 8];
        match k.alloc(Layout::from_size_align(size, 8).unwrap()) {
            Ok(p) => held.push(p),
            Err(e) => {
                for p in held {
                    // SAFETY: allocated above.
                    unsafe { k.free(p).unwrap() };
                }
                return Err(e);
            }
        }
        if i % 4 == 3 {
            let p = held.remove(0);
            // SAFETY: allocated above.
            unsafe { k.free(p).unwrap() };
        }
    }
    Ok(held)
}

#[test]
fn fault_injection_in_kmalloc_and_in_frames() {
    let mem = HostMem::new(0, 16 * MIB);
    let fa = frames(&mem, 1);
    let k = Kmalloc::new(&fa);
    // kmalloc's own injector: every N.
    for n in 1..=60u64 {
        k.fault_injector().fail_nth(n);
        assert_eq!(scenario(&k).err(), Some(SlabError::Injected), "kmalloc {n}");
        k.check().unwrap();
        assert_eq!(k.objects_in_use(), 0);
    }
    // The frame allocator's injector: the N-th frame request (new slab or large block).
    k.shrink();
    let before = fa.stats().zones[0].allocs;
    for p in scenario(&k).unwrap() {
        // SAFETY: allocated by the scenario.
        unsafe { k.free(p).unwrap() };
    }
    k.shrink();
    let frame_allocs = fa.stats().zones[0].allocs - before;
    assert!(frame_allocs > 5);
    for n in 1..=frame_allocs {
        k.shrink();
        fa.fault_injector().fail_nth(n);
        let r = scenario(&k);
        fa.fault_injector().disarm();
        match r {
            Err(e) => assert_eq!(e, SlabError::Injected, "frame allocation {n}"),
            Ok(held) => {
                for p in held {
                    // SAFETY: allocated by the scenario.
                    unsafe { k.free(p).unwrap() };
                }
            }
        }
        k.check().unwrap();
        fa.check().unwrap();
        assert_eq!(k.objects_in_use(), 0);
    }
    k.shrink();
    drop(k);
    frames_back_to_boot(&fa);
}

#[test]
fn running_out_of_frames_is_an_error_not_a_panic() {
    let mem = HostMem::new(0, 4 * MIB);
    let fa = frames(&mem, 1);
    let k = Kmalloc::new(&fa);
    let l = Layout::from_size_align(2048, 8).unwrap();
    let mut held = Vec::new();
    loop {
        match k.alloc(l) {
            Ok(p) => held.push(p),
            Err(e) => {
                assert_eq!(e, SlabError::OutOfMemory);
                break;
            }
        }
    }
    assert!(held.len() > 1000);
    for p in held {
        // SAFETY: allocated above.
        unsafe { k.free(p).unwrap() };
    }
    drop(k);
    frames_back_to_boot(&fa);
}

#[test]
fn parallel_kmalloc() {
    let mem = HostMem::new(0, 32 * MIB);
    let fa = frames(&mem, 4);
    let k = Kmalloc::new(&fa);
    std::thread::scope(|s| {
        for t in 0..4usize {
            let k = &k;
            s.spawn(move || {
                THREAD_CPU.with(|c| c.set(Some(t)));
                let mut held = Vec::new();
                for i in 0..3000usize {
                    if (i + t) % 3 != 0 || held.is_empty() {
                        let sz = KMALLOC_SIZES[(i * 7 + t) % 12];
                        let p = k.alloc(Layout::from_size_align(sz, 8).unwrap()).unwrap();
                        // SAFETY: our object.
                        unsafe { p.as_ptr().write(t as u8) };
                        held.push(p);
                    } else {
                        let p = held.swap_remove(i % held.len());
                        // SAFETY: our object, freed once.
                        unsafe {
                            assert_eq!(*p.as_ptr(), t as u8);
                            k.free(p).unwrap();
                        }
                    }
                }
                for p in held {
                    // SAFETY: our object, freed once.
                    unsafe { k.free(p).unwrap() };
                }
            });
        }
    });
    k.check().unwrap();
    assert_eq!(k.objects_in_use(), 0);
    drop(k);
    frames_back_to_boot(&fa);
}

#[test]
fn objects_freed_on_other_cpus() {
    let mem = HostMem::new(0, 32 * MIB);
    let fa = frames(&mem, 4);
    let k = Kmalloc::new(&fa);
    let pool = std::sync::Mutex::new(Vec::<usize>::new());
    // Phase 1: every CPU allocates; phase 2: every CPU frees objects others allocated.
    for phase in 0..2 {
        std::thread::scope(|s| {
            for t in 0..4usize {
                let (k, pool) = (&k, &pool);
                s.spawn(move || {
                    THREAD_CPU.with(|c| c.set(Some(t)));
                    for i in 0..1500usize {
                        if phase == 0 {
                            let sz = KMALLOC_SIZES[(i + t) % 12];
                            let p = k.alloc(Layout::from_size_align(sz, 8).unwrap()).unwrap();
                            pool.lock().unwrap().push(p.as_ptr() as usize);
                        } else {
                            let a = {
                                let mut g = pool.lock().unwrap();
                                let n = g.len();
                                g.swap_remove((i * 31 + t) % n)
                            };
                            // SAFETY: allocated in phase 1, freed once.
                            unsafe { k.free(NonNull::new(a as *mut u8).unwrap()).unwrap() };
                        }
                    }
                });
            }
        });
        k.check().unwrap();
    }
    assert!(pool.lock().unwrap().is_empty());
    assert_eq!(k.objects_in_use(), 0);
    drop(k);
    frames_back_to_boot(&fa);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    /// Random kmalloc/kfree of random sizes: objects never overlap, contents survive, and the
    /// caches and frames go back to zero.
    #[test]
    fn kmalloc_model(
        ops in proptest::collection::vec((1usize..6000, any::<bool>(), any::<usize>()), 1..300)
    ) {
        let mem = HostMem::new(0, 16 * MIB);
        let fa = frames(&mem, 1);
        let k = Kmalloc::new(&fa);
        let mut live: Vec<(NonNull<u8>, usize, u8)> = Vec::new();
        for (n, (size, alloc, pick)) in ops.into_iter().enumerate() {
            if alloc || live.is_empty() {
                let p = k.alloc(Layout::from_size_align(size, 8).unwrap()).unwrap();
                let a = p.as_ptr() as usize;
                for &(q, s, _) in &live {
                    let b = q.as_ptr() as usize;
                    prop_assert!(a + size <= b || b + s <= a, "overlap");
                }
                // SAFETY: our object of `size` bytes.
                unsafe { std::ptr::write_bytes(p.as_ptr(), n as u8, size) };
                live.push((p, size, n as u8));
            } else {
                let (p, s, tag) = live.swap_remove(pick % live.len());
                // SAFETY: our object; freed once.
                unsafe {
                    let b = std::slice::from_raw_parts(p.as_ptr(), s);
                    prop_assert!(b.iter().all(|&x| x == tag));
                    k.free(p).unwrap();
                }
            }
        }
        k.check().map_err(TestCaseError::fail)?;
        for (p, _, _) in live {
            // SAFETY: our object; freed once.
            unsafe { k.free(p).unwrap() };
        }
        prop_assert_eq!(k.objects_in_use(), 0);
        drop(k);
        fa.drain_all();
        prop_assert_eq!(fa.free_pages_total(), fa.boot_free());
    }
}
