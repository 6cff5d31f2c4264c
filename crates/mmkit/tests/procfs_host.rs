//! Golden tests of `mmkit::procfs` smaps/status text against the host kernel (Linux 6.18).
//!
//! 1. `targeted_mappings_match_host_smaps`: the test makes mappings natively (private anon
//!    untouched / written / read through the zero page, shared anon, PROT_NONE, a private and
//!    a shared file mapping, MAP_LOCKED, a partly mlock()ed mapping, MAP_STACK, MADV_HUGEPAGE
//!    on aligned and unaligned ranges) and the same syscalls on an mmkit `AddressSpace`. For
//!    every VMA of the host's `/proc/self/smaps` in those ranges, the model must have the
//!    same VMA, and mmkit's entry — printed from the model's VMA with the page figures parsed
//!    from the host's entry — must equal the host's text byte for byte. What this verifies is
//!    the format and the derived fields: VmFlags (from the model's own mmap/madvise/mlock),
//!    Locked, THPeligible, names, device and inode.
//! 2. `whole_process_smaps_and_status_match_host`: every VMA of this test process is read
//!    back from `/proc/self/smaps` (flags from its `VmFlags:` line) into an `AddressSpace`;
//!    the whole smaps text (vsyscall gate included) and the `VmPeak`..`HugetlbPages` block of
//!    `/proc/self/status` must then come out identical — VmSize, VmLck, VmData, VmStk, VmExe
//!    and VmLib being computed by mmkit from the VMAs and `/proc/self/stat`'s code range.
//!    The `smaps_rollup` header and every figure not made of PSS fractions must match too.
//! 3. `fork_shared_pss_rounding_matches_host`: an entry computed from per-page facts
//!    (mapcount 3 after two forks) with `SmapsCounts::account_page` equals the host's, PSS
//!    fixed-point rounding included.

use std::collections::HashMap;
use std::ffi::CString;
use std::sync::{Arc, Mutex};

use mmkit::procfs::{
    smaps_string, status_vm_string, write_smaps_entry, write_smaps_rollup, RssCounts, SmapsCounts,
    SmapsPage, StatusMm, PSS_SHIFT, VM_FLAG_MNEMONICS,
};
use mmkit::space::{FdTable, FileKind, OpenFile};
use mmkit::vma::{Backing, FileObject, VmFlags};
use mmkit::{AddressSpace, MmConfig, Vma};

/// Both tests read process-wide /proc files: run them one at a time.
static SERIAL: Mutex<()> = Mutex::new(());

/// One smaps entry of the host: its header fields and its text.
#[derive(Clone, Debug)]
struct Entry {
    start: u64,
    end: u64,
    offset: u64,
    dev: (u32, u32),
    inode: u64,
    name: String,
    text: String,
    fields: HashMap<String, u64>,
    vmflags: String,
}

fn parse_smaps(text: &str) -> Vec<Entry> {
    let mut out: Vec<Entry> = Vec::new();
    for line in text.split_inclusive('\n') {
        let first = line.split(' ').next().unwrap_or("");
        let is_header = first.contains('-') && !first.ends_with(':');
        if is_header {
            let mut it = line.trim_end_matches('\n').splitn(6, ' ');
            let range = it.next().unwrap();
            let _perms = it.next().unwrap();
            let offset = u64::from_str_radix(it.next().unwrap(), 16).unwrap();
            let dev = it.next().unwrap();
            let inode: u64 = it.next().unwrap().parse().unwrap();
            let name = it.next().unwrap_or("").trim_start().to_string();
            let (s, e) = range.split_once('-').unwrap();
            let (ma, mi) = dev.split_once(':').unwrap();
            out.push(Entry {
                start: u64::from_str_radix(s, 16).unwrap(),
                end: u64::from_str_radix(e, 16).unwrap(),
                offset,
                dev: (u32::from_str_radix(ma, 16).unwrap(), u32::from_str_radix(mi, 16).unwrap()),
                inode,
                name,
                text: String::new(),
                fields: HashMap::new(),
                vmflags: String::new(),
            });
        } else if let Some(e) = out.last_mut() {
            if let Some(rest) = line.strip_prefix("VmFlags: ") {
                e.vmflags = rest.trim_end_matches('\n').to_string();
            } else if let Some((k, v)) = line.split_once(':') {
                let v = v.trim().trim_end_matches(" kB");
                if let Ok(n) = v.parse::<u64>() {
                    e.fields.insert(k.to_string(), n);
                }
            }
        }
        if let Some(e) = out.last_mut() {
            e.text.push_str(line);
        }
    }
    out
}

/// The page figures of a host entry, in `mem_size_stats` units.
fn counts_of(e: &Entry) -> SmapsCounts {
    let b = |k: &str| e.fields.get(k).copied().unwrap_or(0) << 10;
    let p = |k: &str| b(k) << PSS_SHIFT;
    SmapsCounts {
        resident: b("Rss"),
        pss: p("Pss"),
        pss_dirty: p("Pss_Dirty"),
        pss_anon: 0,
        pss_file: 0,
        pss_shmem: 0,
        shared_clean: b("Shared_Clean"),
        shared_dirty: b("Shared_Dirty"),
        private_clean: b("Private_Clean"),
        private_dirty: b("Private_Dirty"),
        referenced: b("Referenced"),
        anonymous: b("Anonymous"),
        ksm: b("KSM"),
        lazyfree: b("LazyFree"),
        anonymous_thp: b("AnonHugePages"),
        shmem_thp: b("ShmemPmdMapped"),
        file_thp: b("FilePmdMapped"),
        shared_hugetlb: b("Shared_Hugetlb"),
        private_hugetlb: b("Private_Hugetlb"),
        swap: b("Swap"),
        swap_pss: p("SwapPss"),
    }
}

/// `VmFlags:` mnemonics back to bits.
fn flags_of(vmflags: &str) -> VmFlags {
    let mut bits = 0u64;
    for m in vmflags.split(' ').filter(|m| !m.is_empty()) {
        let i = VM_FLAG_MNEMONICS.iter().position(|x| *x == m).expect("known mnemonic");
        bits |= 1 << i;
    }
    VmFlags::from_bits_retain(bits)
}

fn read_proc(path: &str) -> String {
    std::fs::read_to_string(path).expect("readable /proc file")
}

/// A descriptor table holding the test's files under their host descriptor numbers.
#[derive(Default)]
struct Files(Vec<(i32, OpenFile)>);

impl FdTable for Files {
    fn get(&self, fd: i32) -> Option<OpenFile> {
        self.0.iter().find(|(f, _)| *f == fd).map(|(_, o)| o.clone())
    }
}

const P: u64 = 4096;
const PROT_NONE: u64 = 0;
const PROT_READ: u64 = 1;
const RW: u64 = 3;
const MAP_SHARED: u64 = 0x01;
const MAP_PRIVATE: u64 = 0x02;
const MAP_ANONYMOUS: u64 = 0x20;
const MAP_LOCKED: u64 = 0x2000;
const MAP_STACK: u64 = 0x2_0000;
const MAP_FIXED_NOREPLACE: u64 = 0x10_0000;
const MADV_HUGEPAGE: u64 = 14;

/// Where the test's mappings go: far from everything else, 256 MiB apart so none merge.
const BASE: u64 = 0x6000_0000_0000;
const SLOT: u64 = 0x1000_0000;

/// Performs one call natively and on the model and asserts both give the same result.
struct Both {
    space: AddressSpace,
    files: Files,
}

impl Both {
    fn mmap(&mut self, slot: u64, len: u64, prot: u64, flags: u64, fd: i32, off: u64) -> u64 {
        let addr = BASE + slot * SLOT;
        let flags = flags | MAP_FIXED_NOREPLACE;
        // SAFETY: MAP_FIXED_NOREPLACE never replaces an existing mapping; the range lies in
        // the test's private window, which nothing else uses.
        let host = unsafe {
            libc::mmap(
                addr as *mut libc::c_void,
                len as usize,
                prot as i32,
                flags as i32,
                fd,
                off as libc::off_t,
            )
        };
        assert_eq!(host as u64, addr, "host mmap at {addr:#x}");
        let fd_raw = fd as i64 as u64;
        let m = self.space.sys_mmap(&self.files, addr, len, prot, flags, fd_raw, off);
        assert_eq!(m, Ok(addr), "model mmap at {addr:#x}");
        addr
    }

    fn madvise(&mut self, addr: u64, len: u64, advice: u64) {
        // SAFETY: advice on the test's own mapping (MADV_HUGEPAGE only changes flags).
        let r = unsafe { libc::madvise(addr as *mut libc::c_void, len as usize, advice as i32) };
        assert_eq!(r, 0);
        assert_eq!(self.space.sys_madvise(addr, len, advice), Ok(0));
    }

    fn mlock(&mut self, addr: u64, len: u64) {
        // SAFETY: locking the test's own mapping has no memory effect beyond populating it.
        let r = unsafe { libc::mlock(addr as *const libc::c_void, len as usize) };
        assert_eq!(r, 0);
        assert_eq!(self.space.sys_mlock(addr, len), Ok(0));
    }
}

fn write_byte(addr: u64) {
    // SAFETY: `addr` lies in a writable mapping this test just created.
    unsafe { std::ptr::write_volatile(addr as *mut u8, 1) }
}

fn read_byte(addr: u64) -> u8 {
    // SAFETY: `addr` lies in a readable mapping this test just created.
    unsafe { std::ptr::read_volatile(addr as *const u8) }
}

#[test]
fn targeted_mappings_match_host_smaps() {
    let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    // A regular file on the root ext4 file system.
    let path = format!("/tmp/mmkit_procfs_golden_{}", std::process::id());
    std::fs::write(&path, vec![7u8; 4 * P as usize]).unwrap();
    let cpath = CString::new(path.clone()).unwrap();
    // SAFETY: a plain open() of the file just written.
    let fd = unsafe { libc::open(cpath.as_ptr(), libc::O_RDWR) };
    assert!(fd >= 0);
    // SAFETY: fstat into a zeroed stat buffer.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: `fd` is open and `st` is a valid buffer.
    assert_eq!(unsafe { libc::fstat(fd, &mut st) }, 0);
    let file = Arc::new(FileObject {
        id: st.st_ino,
        dev_major: libc::major(st.st_dev),
        dev_minor: libc::minor(st.st_dev),
        inode: st.st_ino,
        path: path.clone(),
    });
    let mut files = Files::default();
    let open = OpenFile { file, readable: true, writable: true, kind: FileKind::Regular };
    files.0.push((fd, open));
    let mut b = Both { space: AddressSpace::new(MmConfig::default()), files };
    let anon = MAP_PRIVATE | MAP_ANONYMOUS;

    // 0: private anon, untouched.
    b.mmap(0, 3 * P, RW, anon, -1, 0);
    // 1: private anon: pages 0 and 2 written, page 1 read (zero page: not in Rss).
    let a = b.mmap(1, 4 * P, RW, anon, -1, 0);
    write_byte(a);
    write_byte(a + 2 * P);
    assert_eq!(read_byte(a + P), 0);
    // 2: shared anon, page 0 written.
    let a = b.mmap(2, 2 * P, RW, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    write_byte(a);
    // 3: PROT_NONE.
    b.mmap(3, P, PROT_NONE, anon, -1, 0);
    // 4: private read-only file mapping at offset 1 page, page 0 read.
    let a = b.mmap(4, 2 * P, PROT_READ, MAP_PRIVATE, fd, P);
    assert_eq!(read_byte(a), 7);
    // 5: shared writable file mapping, page 1 written.
    let a = b.mmap(5, 3 * P, RW, MAP_SHARED, fd, 0);
    write_byte(a + P);
    // 6: MAP_LOCKED (populated), one page written.
    let a = b.mmap(6, 2 * P, RW, anon | MAP_LOCKED, -1, 0);
    write_byte(a);
    // 7: mlock() of the first page only: splits the VMA.
    let a = b.mmap(7, 3 * P, RW, anon, -1, 0);
    b.mlock(a, P);
    // 8: MAP_STACK (6.7+: VM_NOHUGEPAGE), one page written.
    let a = b.mmap(8, 8 * P, RW, anon | MAP_STACK, -1, 0);
    write_byte(a + 7 * P);
    // 9: 4 MiB at a 2 MiB boundary with MADV_HUGEPAGE: THPeligible 1.
    let a = b.mmap(9, 4 << 20, RW, anon, -1, 0);
    b.madvise(a, 4 << 20, MADV_HUGEPAGE);
    // 10: MADV_HUGEPAGE on 2 MiB starting one page past the boundary: three VMAs, none
    // eligible (no aligned 2 MiB block inside the middle one).
    let a = b.mmap(10, 4 << 20, RW, anon, -1, 0);
    b.madvise(a + P, 2 << 20, MADV_HUGEPAGE);

    let host = read_proc("/proc/self/smaps");
    let entries: Vec<Entry> = parse_smaps(&host)
        .into_iter()
        .filter(|e| e.start >= BASE && e.end <= BASE + 11 * SLOT)
        .collect();
    let model: Vec<Vma> = b
        .space
        .vmas()
        .iter()
        .filter(|v| v.start >= BASE && v.end <= BASE + 11 * SLOT)
        .cloned()
        .collect();
    let host_ranges: Vec<(u64, u64)> = entries.iter().map(|e| (e.start, e.end)).collect();
    let model_ranges: Vec<(u64, u64)> = model.iter().map(|v| (v.start, v.end)).collect();
    assert_eq!(model_ranges, host_ranges, "same VMAs");
    assert_eq!(entries.len(), 14);

    let mut eligible = 0;
    for (e, v) in entries.iter().zip(&model) {
        let mut v = v.clone();
        if let Backing::Shmem { id, .. } = &mut v.backing {
            // The shmem object's inode number is the host's to choose.
            *id = e.inode;
        }
        let mut mine = String::new();
        write_smaps_entry(Some(&b.space), &v, &counts_of(e), false, &mut mine).unwrap();
        assert_eq!(mine, e.text, "entry at {:#x}", e.start);
        eligible += e.fields["THPeligible"];
    }
    assert_eq!(eligible, 1, "only the aligned MADV_HUGEPAGE VMA is THP-eligible");
    // Spot checks of what the host reported, so the comparison above is not vacuous.
    let at = |slot: u64| entries.iter().find(|e| e.start == BASE + slot * SLOT).unwrap();
    assert_eq!(at(1).fields["Rss"], 8, "the zero-page read is not in Rss");
    assert_eq!(at(2).fields["Anonymous"], 0, "shared anonymous memory is shmem");
    assert_eq!(at(6).fields["Locked"], 8);
    assert_eq!(at(7).fields["Locked"], 4);
    assert!(at(8).vmflags.contains(" nh"));
    assert_eq!(at(9).fields["THPeligible"], 1);

    // SAFETY: unmapping the test's own window and closing its descriptor.
    unsafe {
        libc::munmap(BASE as *mut libc::c_void, (11 * SLOT) as usize);
        libc::close(fd);
    }
    let _ = std::fs::remove_file(&path);
}

/// Fields 3.. of `/proc/self/stat` (after the command name), indexed by field number.
fn stat_field(stat: &str, n: usize) -> u64 {
    let after = &stat[stat.rfind(')').unwrap() + 2..];
    after.split(' ').nth(n - 3).unwrap().trim().parse().unwrap()
}

fn status_kb(status: &str, key: &str) -> u64 {
    let line = status.lines().find(|l| l.starts_with(&format!("{key}:"))).unwrap();
    line[key.len() + 1..].trim().trim_end_matches(" kB").trim().parse().unwrap()
}

#[test]
fn whole_process_smaps_and_status_match_host() {
    let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    // Read the four files back to back, into buffers allocated beforehand, so that no
    // allocation changes the mappings in between.
    // Filled with non-zero bytes so that every page is faulted in before the reads.
    let mut bufs: Vec<Vec<u8>> = (0..4).map(|_| vec![1u8; 4 << 20]).collect();
    let mut lens = [0usize; 4];
    let paths =
        ["/proc/self/stat", "/proc/self/status", "/proc/self/smaps", "/proc/self/smaps_rollup"];
    for (i, p) in paths.iter().enumerate() {
        let c = CString::new(*p).unwrap();
        // SAFETY: open/read/close on a /proc file into a buffer we own.
        unsafe {
            let fd = libc::open(c.as_ptr(), libc::O_RDONLY);
            assert!(fd >= 0);
            loop {
                let end = (lens[i] + (64 << 10)).min(bufs[i].len());
                let buf = &mut bufs[i][lens[i]..end];
                let n = libc::read(fd, buf.as_mut_ptr().cast(), buf.len());
                assert!(n >= 0);
                if n == 0 {
                    break;
                }
                lens[i] += n as usize;
            }
            libc::close(fd);
        }
    }
    let text = |i: usize| String::from_utf8(bufs[i][..lens[i]].to_vec()).unwrap();
    let (stat, status, smaps, rollup) = (text(0), text(1), text(2), text(3));

    let entries = parse_smaps(&smaps);
    let mut space = AddressSpace::new(MmConfig::default());
    let start_brk = stat_field(&stat, 47);
    let mut brk = start_brk;
    space.set_start_stack(stat_field(&stat, 28));
    let mut by_start = HashMap::new();
    for e in &entries {
        if e.name == "[vsyscall]" {
            continue;
        }
        let flags = flags_of(&e.vmflags);
        let mut name: Option<Arc<str>> = None;
        let backing = if e.dev == (0, 1) {
            Backing::shmem_unsized(e.inode)
        } else if e.inode != 0 || e.name.starts_with('/') {
            Backing::File(Arc::new(FileObject {
                id: e.inode,
                dev_major: e.dev.0,
                dev_minor: e.dev.1,
                inode: e.inode,
                path: e.name.clone(),
            }))
        } else {
            if let Some(n) = e.name.strip_prefix("[anon:") {
                name = Some(Arc::from(n.trim_end_matches(']')));
            } else if e.name == "[heap]" {
                brk = e.end;
            } else if e.name.starts_with('[') && e.name != "[stack]" {
                name = Some(Arc::from(e.name.as_str()));
            }
            Backing::Anonymous
        };
        let pgoff = if backing.has_file() { e.offset >> 12 } else { e.start >> 12 };
        let vma = Vma {
            start: e.start,
            end: e.end,
            flags,
            pgoff,
            backing,
            anon_vma: Default::default(),
            name,
        };
        space.insert_vma_unmerged(vma).unwrap();
        by_start.insert(e.start, counts_of(e));
    }
    space.set_brk_base(start_brk, brk);

    // Not vacuous: a real process with ld.so, libc, [heap] or [stack], [vdso], [vsyscall].
    assert!(entries.len() > 10, "{} entries", entries.len());
    assert!(smaps.contains(" [stack]\n") && smaps.contains(" [vdso]\n"));
    assert!(smaps.contains("\nVmFlags: ex \n"));
    let mine = smaps_string(&space, true, |v| by_start[&v.start]);
    assert_eq!(mine, smaps);

    // smaps_rollup: the header and every figure that does not depend on PSS fractions
    // (the host sums unrounded fixed-point PSS across VMAs; the per-VMA text has lost them).
    let mut my_rollup = String::new();
    write_smaps_rollup(&space, |v| by_start[&v.start], &mut my_rollup).unwrap();
    let exact = |t: &str| -> Vec<String> {
        t.lines()
            .filter(|l| {
                !l.starts_with("Pss") && !l.starts_with("SwapPss") && !l.starts_with("Locked")
            })
            .map(String::from)
            .collect()
    };
    assert!(rollup.lines().next().unwrap_or("").ends_with(" [rollup]"), "{rollup:?} {}", lens[3]);
    assert_eq!(exact(&my_rollup), exact(&rollup));

    let pages = |k: &str| status_kb(&status, k) / 4;
    let rss = RssCounts {
        anon: pages("RssAnon"),
        file: pages("RssFile"),
        shmem: pages("RssShmem"),
        swap: pages("VmSwap"),
        pgtables_bytes: status_kb(&status, "VmPTE") << 10,
        hiwater_rss: pages("VmHWM"),
    };
    let mm = StatusMm {
        hiwater_vm: pages("VmPeak"),
        start_code: stat_field(&stat, 26),
        end_code: stat_field(&stat, 27),
        pinned_vm: pages("VmPin"),
        hugetlb_pages: pages("HugetlbPages"),
    };
    let host_block: String = status
        .lines()
        .skip_while(|l| !l.starts_with("VmPeak:"))
        .take_while(|l| !l.starts_with("CoreDumping:"))
        .map(|l| format!("{l}\n"))
        .collect();
    assert_eq!(host_block.lines().count(), 16, "{host_block}");
    assert!(status_kb(&status, "VmExe") > 0 && status_kb(&status, "VmLib") > 0);
    assert!(status_kb(&status, "VmData") > 0 && status_kb(&status, "VmStk") > 0);
    assert_eq!(status_vm_string(&space, &rss, &mm), host_block);
}

/// PSS with fractions: 1027 written private pages shared with two forked children
/// (mapcount 3 each). Linux's fixed-point sum gives 1369 kB where rounding each page to
/// whole bytes would give 1368 kB. The entry is computed from per-page facts with
/// `SmapsCounts::account_page` — not parsed from the host — and must equal the host's.
#[test]
fn fork_shared_pss_rounding_matches_host() {
    let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    const N: u64 = 1027;
    let mut b = Both { space: AddressSpace::new(MmConfig::default()), files: Files::default() };
    let a = b.mmap(12, N * P, RW, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    for i in 0..N {
        write_byte(a + i * P);
    }
    let mut children = Vec::new();
    for _ in 0..2 {
        // SAFETY: the child only calls the async-signal-safe pause() until it is killed.
        let pid = unsafe { libc::fork() };
        assert!(pid >= 0);
        if pid == 0 {
            loop {
                // SAFETY: pause() has no memory effects.
                unsafe { libc::pause() };
            }
        }
        children.push(pid);
    }
    let host = read_proc("/proc/self/smaps");
    for pid in children {
        // SAFETY: killing and reaping the children forked above.
        unsafe {
            libc::kill(pid, libc::SIGKILL);
            libc::waitpid(pid, std::ptr::null_mut(), 0);
        }
    }
    let e = parse_smaps(&host).into_iter().find(|e| e.start == a).expect("the mapping");
    let mut c = SmapsCounts::default();
    for _ in 0..N {
        c.account_page(SmapsPage {
            nr_pages: 1,
            pmd_mapped: false,
            anon: true,
            swapbacked: true,
            ksm: false,
            young: true,
            dirty: true,
            present: true,
            sole_reference: false,
            mapcount: 3,
        });
    }
    let v = b.space.vmas().iter().find(|v| v.start == a).unwrap().clone();
    let mut mine = String::new();
    write_smaps_entry(Some(&b.space), &v, &c, false, &mut mine).unwrap();
    assert_eq!(e.fields["Pss"], 1369);
    assert_eq!(mine, e.text);
    // SAFETY: unmapping the test's own mapping.
    unsafe { libc::munmap(a as *mut libc::c_void, (N * P) as usize) };
}
