//! Reading `/proc/<pid>/maps` snapshots back into VMAs, to seed an [`mmkit::AddressSpace`] with the
//! layout the ELF loader built.
//!
//! A maps line shows the range, the access bits, shared/private, the file offset, the device,
//! the inode and the name, but not the rest of `vm_flags` nor whether the pages were written
//! (the anon_vma). Those are inferred as Linux's exec path sets them:
//! - private mappings get `VM_MAYREAD|VM_MAYWRITE|VM_MAYEXEC` (`do_mmap()` always adds them);
//! - a shared file mapping that is not writable lost `VM_MAYWRITE` and `VM_SHARED` because its
//!   file was opened read-only (`do_mmap()`: `if (!(file->f_mode & FMODE_WRITE))`) — the
//!   conservative reading of an `r--s` line; a writable one keeps both;
//! - private writable mappings carry `VM_ACCOUNT` (`accountable_mapping()`);
//! - `[stack]` is `VM_GROWSDOWN|VM_ACCOUNT` (`setup_arg_pages()` / `VM_STACK_FLAGS`), and the
//!   kernel wrote it (argv, envp, auxv), so it has an anon_vma;
//! - `[vdso]` is a special mapping (`VM_DONTEXPAND`, plus `VM_MAYREAD|VM_MAYWRITE|VM_MAYEXEC`),
//!   `[vvar]`/`[vvar_vclock]` are `VM_IO|VM_PFNMAP|VM_DONTEXPAND|VM_DONTDUMP`: none can merge;
//! - `[vsyscall]` is the gate VMA, not part of the address space (it is reported separately).

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

use mmkit::vma::{AnonVma, FileObject};
use mmkit::{AddressSpace, Backing, MmConfig, VmFlags, Vma};

/// One parsed maps line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MapsLine {
    /// Start address.
    pub start: u64,
    /// End address.
    pub end: u64,
    /// `r`, `w`, `x`.
    pub read: bool,
    /// Writable.
    pub write: bool,
    /// Executable.
    pub exec: bool,
    /// `s` (may share) rather than `p`.
    pub shared: bool,
    /// File offset in bytes.
    pub offset: u64,
    /// Device major.
    pub major: u32,
    /// Device minor.
    pub minor: u32,
    /// Inode.
    pub inode: u64,
    /// The name column (path, `[heap]`, …), or empty.
    pub name: String,
}

/// A malformed maps line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MapsError {
    /// 1-based line number.
    pub line: usize,
    /// What is wrong.
    pub msg: String,
}

impl fmt::Display for MapsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}: {}", self.line, self.msg)
    }
}

impl std::error::Error for MapsError {}

fn hex(s: &str) -> Option<u64> {
    if s.is_empty() {
        return None;
    }
    u64::from_str_radix(s, 16).ok()
}

/// Parses one maps line.
pub fn parse_line(line_no: usize, line: &str) -> Result<MapsLine, MapsError> {
    let err = |msg: &str| MapsError { line: line_no, msg: format!("{msg}: {line:?}") };
    let line = line.trim_end_matches(['\n', '\r']);
    // Five blank-separated fields, then the name (which may contain blanks).
    let mut rest = line;
    let mut fields = [""; 5];
    for f in fields.iter_mut() {
        rest = rest.trim_start_matches(' ');
        let end = rest.find(' ').unwrap_or(rest.len());
        *f = &rest[..end];
        rest = &rest[end..];
    }
    let name = rest.trim_start_matches(' ').to_string();
    let (s, e) = fields[0].split_once('-').ok_or_else(|| err("expected start-end"))?;
    let start = hex(s).ok_or_else(|| err("bad start address"))?;
    let end = hex(e).ok_or_else(|| err("bad end address"))?;
    if start >= end || start & 0xfff != 0 || end & 0xfff != 0 {
        return Err(err("range must be page-aligned and non-empty"));
    }
    let p = fields[1].as_bytes();
    if p.len() != 4 {
        return Err(err("bad permissions"));
    }
    let flag = |i: usize, yes: u8| -> Result<bool, MapsError> {
        match p[i] {
            b'-' if i < 3 => Ok(false),
            b'p' if i == 3 => Ok(false),
            c if c == yes => Ok(true),
            _ => Err(err("bad permissions")),
        }
    };
    let (read, write, exec, shared) =
        (flag(0, b'r')?, flag(1, b'w')?, flag(2, b'x')?, flag(3, b's')?);
    let offset = hex(fields[2]).ok_or_else(|| err("bad offset"))?;
    let (ma, mi) = fields[3].split_once(':').ok_or_else(|| err("bad device"))?;
    let major = hex(ma).and_then(|v| u32::try_from(v).ok()).ok_or_else(|| err("bad device"))?;
    let minor = hex(mi).and_then(|v| u32::try_from(v).ok()).ok_or_else(|| err("bad device"))?;
    let inode = fields[4].parse().map_err(|_| err("bad inode"))?;
    Ok(MapsLine { start, end, read, write, exec, shared, offset, major, minor, inode, name })
}

/// Parses a whole maps text.
pub fn parse(text: &str) -> Result<Vec<MapsLine>, MapsError> {
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, l)| parse_line(i + 1, l))
        .collect()
}

/// Files by path, so that every mapping of one path shares one [`FileObject`] (Linux compares
/// `vm_file`s when merging), with the device and inode that maps files showed for it.
#[derive(Debug, Default)]
pub struct FileRegistry {
    by_path: HashMap<String, Arc<FileObject>>,
    /// Device and inode learned from maps snapshots, by path.
    known: HashMap<String, (u32, u32, u64)>,
    next_synthetic_inode: u64,
    next_id: u64,
}

impl FileRegistry {
    /// An empty registry.
    pub fn new() -> Self {
        FileRegistry { next_synthetic_inode: 1 << 40, next_id: 1, ..Default::default() }
    }

    /// Records the identity of every file-backed line of a snapshot.
    pub fn learn(&mut self, lines: &[MapsLine]) {
        for l in lines {
            if l.name.starts_with('/') && (l.major, l.minor, l.inode) != (0, 0, 0) {
                self.known.entry(l.name.clone()).or_insert((l.major, l.minor, l.inode));
            }
        }
    }

    /// The file object for `path` (created on first use; 00:00 and a synthetic inode when no
    /// snapshot showed the path).
    pub fn get(&mut self, path: &str) -> Arc<FileObject> {
        if let Some(f) = self.by_path.get(path) {
            return f.clone();
        }
        let (dev_major, dev_minor, inode) =
            match self.known.get(path).copied().or_else(|| host_identity(path)) {
                Some(k) => k,
                None => {
                    self.next_synthetic_inode += 1;
                    (0, 0, self.next_synthetic_inode)
                }
            };
        let f = Arc::new(FileObject {
            id: self.next_id,
            dev_major,
            dev_minor,
            inode,
            path: path.to_string(),
        });
        self.next_id += 1;
        self.by_path.insert(path.to_string(), f.clone());
        f
    }
}

/// The device and inode of `path` on this host (`stat()`), decoded as maps prints them
/// (`MAJOR()`/`MINOR()` of the glibc `dev_t` encoding).
#[cfg(unix)]
fn host_identity(path: &str) -> Option<(u32, u32, u64)> {
    use std::os::unix::fs::MetadataExt;
    let m = std::fs::metadata(path).ok()?;
    let dev = m.dev();
    let major = ((dev >> 8) & 0xfff) | ((dev >> 32) & !0xfff);
    let minor = (dev & 0xff) | ((dev >> 12) & !0xff);
    Some((major as u32, minor as u32, m.ino()))
}

#[cfg(not(unix))]
fn host_identity(_path: &str) -> Option<(u32, u32, u64)> {
    None
}

/// Which seeded VMAs are taken to have been written (to have an anon_vma) at snapshot time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WrittenPolicy {
    /// The stack: always written by exec.
    pub stack: bool,
    /// Private writable file mappings (the ELF loader's `padzero()` clears the tail of the last
    /// file page of a data segment).
    pub private_file_rw: bool,
    /// Anonymous writable mappings other than the stack (the bss; heap).
    pub anon_rw: bool,
    /// During the replay, the program writes every private writable mapping it creates
    /// (mmap) or grows (brk) right away, as allocators and the dynamic linker do; the trace
    /// cannot show user-space writes, which decide anon_vma identity and so later merges.
    pub on_map: bool,
    /// During the dynamic linker's start-up in a dynamically linked image (until it unmaps
    /// `/etc/ld.so.cache` at the end of `dl_main()`, or the program's first `brk` that moves
    /// the break), every private writable mapping created is written: ld.so relocates the
    /// libraries' data segments and fills the TLS blocks and link maps it allocates.
    pub startup: bool,
}

impl Default for WrittenPolicy {
    fn default() -> Self {
        WrittenPolicy {
            stack: true,
            private_file_rw: true,
            anon_rw: false,
            on_map: false,
            startup: true,
        }
    }
}

/// The seed produced from a snapshot.
#[derive(Debug, Default)]
pub struct Seed {
    /// VMAs in address order (without the gate VMA).
    pub vmas: Vec<Vma>,
    /// An initial stack pointer inside `[stack]`, if there is one.
    pub start_stack: Option<u64>,
    /// `[heap]` range, if the snapshot shows one.
    pub heap: Option<(u64, u64)>,
    /// The end of the brk area guessed from the layout: the end of the anonymous mapping that
    /// follows the executable's last segment (the bss), else the executable's end.
    pub guessed_brk: Option<u64>,
    /// The snapshot listed `[vsyscall]`.
    pub has_vsyscall: bool,
    /// The executable's data segment (its first writable file mapping): `mm->start_data` and
    /// (rounded up to a page) `mm->end_data`.
    pub data_segment: Option<(u64, u64)>,
    /// The vDSO's special mappings, low to high: `(name, length, flags)`.
    pub specials: Vec<(String, u64, VmFlags)>,
    /// Length of `[stack]`.
    pub stack_len: Option<u64>,
}

/// Builds VMAs from parsed maps lines. anon_vma identities are taken from a range far above
/// any the address space hands out itself (`id_base` and up), so they never collide.
pub fn seed(
    lines: &[MapsLine],
    files: &mut FileRegistry,
    policy: WrittenPolicy,
    id_base: u64,
) -> Seed {
    let mut out = Seed::default();
    let mut next_anon = id_base;
    let may = VmFlags::MAYREAD | VmFlags::MAYWRITE | VmFlags::MAYEXEC;
    let mut exe_path: Option<&str> = None;
    for l in lines {
        let mut flags = VmFlags::empty();
        if l.read {
            flags |= VmFlags::READ;
        }
        if l.write {
            flags |= VmFlags::WRITE;
        }
        if l.exec {
            flags |= VmFlags::EXEC;
        }
        let pgoff_file = l.offset >> 12;
        let mut name: Option<Arc<str>> = None;
        let mut written = false;
        let backing;
        let mut pgoff = l.start >> 12;
        match l.name.as_str() {
            "[vsyscall]" => {
                out.has_vsyscall = true;
                continue;
            }
            "[stack]" => {
                flags |= may | VmFlags::GROWSDOWN | VmFlags::ACCOUNT;
                backing = Backing::Anonymous;
                written = policy.stack;
                // Any address inside makes vma_is_initial_stack() true; exec's real stack
                // pointer sits just below the argument and environment strings at the top.
                out.start_stack = Some(l.end.saturating_sub(0x800).max(l.start));
            }
            "[heap]" => {
                flags |= may;
                if l.write && !l.shared {
                    flags |= VmFlags::ACCOUNT;
                }
                backing = Backing::Anonymous;
                written = policy.anon_rw && l.write;
                out.heap = Some((l.start, l.end));
            }
            "[vdso]" => {
                flags |= may | VmFlags::DONTEXPAND;
                backing = Backing::Anonymous;
                pgoff = 0;
                name = Some(Arc::from("[vdso]"));
            }
            "[vvar]" | "[vvar_vclock]" => {
                flags |= VmFlags::MAYREAD
                    | VmFlags::IO
                    | VmFlags::PFNMAP
                    | VmFlags::DONTEXPAND
                    | VmFlags::DONTDUMP;
                backing = Backing::Device { phys_base: 0 };
                pgoff = 0;
                name = Some(Arc::from(l.name.as_str()));
            }
            n if n.starts_with("[anon_shmem:") || (l.shared && n == "/dev/zero (deleted)") => {
                flags |= may | VmFlags::MAYSHARE | VmFlags::SHARED;
                backing = Backing::shmem_unsized(l.inode);
                pgoff = pgoff_file;
                if let Some(inner) =
                    n.strip_prefix("[anon_shmem:").and_then(|s| s.strip_suffix(']'))
                {
                    name = Some(Arc::from(inner));
                }
            }
            n if n.starts_with("[anon:") => {
                flags |= may;
                if l.write && !l.shared {
                    flags |= VmFlags::ACCOUNT;
                }
                backing = Backing::Anonymous;
                written = policy.anon_rw && l.write;
                name = n.strip_prefix("[anon:").and_then(|s| s.strip_suffix(']')).map(Arc::from);
            }
            n if n.starts_with('[') => {
                // Another special mapping ([uprobes], [sigpage], …).
                flags |= may | VmFlags::DONTEXPAND;
                backing = Backing::Anonymous;
                pgoff = 0;
                name = Some(Arc::from(n));
            }
            "" => {
                flags |= may;
                if l.shared {
                    // Shared anonymous memory always has a name; treat as shmem.
                    flags |= VmFlags::MAYSHARE | VmFlags::SHARED;
                    backing = Backing::shmem_unsized(l.inode);
                } else {
                    if l.write {
                        flags |= VmFlags::ACCOUNT;
                    }
                    backing = Backing::Anonymous;
                    written = policy.anon_rw && l.write;
                }
            }
            path => {
                if exe_path.is_none() {
                    exe_path = Some(path);
                }
                let file = files.get(path);
                pgoff = pgoff_file;
                backing = Backing::File(file);
                if l.shared {
                    flags |= VmFlags::MAYREAD | VmFlags::MAYEXEC | VmFlags::MAYSHARE;
                    if l.write {
                        flags |= VmFlags::MAYWRITE | VmFlags::SHARED;
                    }
                } else {
                    flags |= may;
                    if l.write {
                        flags |= VmFlags::ACCOUNT;
                        written = policy.private_file_rw;
                    }
                }
            }
        }
        let anon_vma = written.then(|| {
            next_anon += 1;
            AnonVma { id: next_anon, chain_inherited: false }
        });
        out.vmas.push(Vma {
            start: l.start,
            end: l.end,
            flags,
            pgoff,
            backing,
            anon_vma: anon_vma.into(),
            name,
        });
    }
    for v in &out.vmas {
        if let Some(n) = v.name.as_deref() {
            if matches!(n, "[vvar]" | "[vvar_vclock]" | "[vdso]") {
                out.specials.push((n.to_string(), v.len(), v.flags));
            }
        }
    }
    out.stack_len = out
        .start_stack
        .and_then(|sp| out.vmas.iter().find(|v| v.start <= sp && sp <= v.end))
        .map(|v| v.len());
    // The brk area starts right after the executable's last segment and its bss.
    if let Some(exe) = exe_path {
        let last =
            out.vmas.iter().rposition(|v| matches!(&v.backing, Backing::File(f) if f.path == exe));
        if let Some(i) = last {
            let mut end = out.vmas[i].end;
            if let Some(next) = out.vmas.get(i + 1) {
                if next.start == end
                    && next.is_anonymous()
                    && next.name.is_none()
                    && out.heap.map(|h| h.0) != Some(next.start)
                {
                    end = next.end;
                }
            }
            out.guessed_brk = Some(end);
        }
        out.data_segment = out
            .vmas
            .iter()
            .find(|v| {
                v.flags.contains(VmFlags::WRITE)
                    && matches!(&v.backing, Backing::File(f) if f.path == exe)
            })
            .map(|v| (v.start, v.end));
    }
    out
}

/// An address space holding the VMAs of a maps snapshot, seeded as `--maps-before` seeds one
/// (break from `[heap]`, stack pointer inside `[stack]`), and whether the snapshot listed the
/// `[vsyscall]` gate. A malformed line or two overlapping ones are an error naming the line.
pub fn load_space(text: &str, cfg: MmConfig) -> Result<(AddressSpace, bool), MapsError> {
    let lines = parse(text)?;
    let mut files = FileRegistry::new();
    files.learn(&lines);
    let seed = seed(&lines, &mut files, WrittenPolicy::default(), 0);
    let mut space = AddressSpace::new(cfg);
    for v in seed.vmas {
        let (start, end) = (v.start, v.end);
        space.insert_vma_unmerged(v).map_err(|_| {
            let line = lines.iter().position(|l| l.start == start).map_or(0, |i| i + 1);
            MapsError { line, msg: format!("{start:x}-{end:x} overlaps another mapping") }
        })?;
    }
    if let Some((s, e)) = seed.heap {
        space.set_brk_base(s, e);
    }
    if let Some(sp) = seed.start_stack {
        space.set_start_stack(sp);
    }
    Ok((space, seed.has_vsyscall))
}

#[cfg(test)]
mod tests {
    use super::*;

    const GIT_BEFORE: &str = "\
555555554000-555555572000 r--p 00000000 fe:00 247232                     /usr/bin/git
5555558c5000-5555558df000 rw-p 00371000 fe:00 247232                     /usr/bin/git
5555558df000-555555905000 rw-p 00000000 00:00 0 
7ffff7fc2000-7ffff7fc6000 r--p 00000000 00:00 0                          [vvar]
7ffff7fc8000-7ffff7fca000 r-xp 00000000 00:00 0                          [vdso]
7ffff7fb9000-7ffff7fc0000 r--s 00000000 fe:00 325745                     /usr/lib/x86_64-linux-gnu/gconv/gconv-modules.cache
7fc5568ab000-7fc5568ad000 rw-s 00000000 00:01 1025                       /dev/zero (deleted)
7ffffffde000-7ffffffff000 rw-p 00000000 00:00 0                          [stack]
ffffffffff600000-ffffffffff601000 --xp 00000000 00:00 0                  [vsyscall]
";

    #[test]
    fn parses_and_seeds() {
        let lines = parse(GIT_BEFORE).unwrap();
        assert_eq!(lines.len(), 9);
        assert_eq!(lines[1].offset, 0x371000);
        assert_eq!((lines[1].major, lines[1].minor, lines[1].inode), (0xfe, 0, 247232));
        assert_eq!(lines[2].name, "");
        assert_eq!(lines[6].name, "/dev/zero (deleted)");
        let mut reg = FileRegistry::new();
        reg.learn(&lines);
        let s = seed(&lines, &mut reg, WrittenPolicy::default(), 1 << 60);
        assert!(s.has_vsyscall);
        assert_eq!(s.vmas.len(), 8);
        let f = |i: usize| s.vmas[i].flags;
        let may = VmFlags::MAYREAD | VmFlags::MAYWRITE | VmFlags::MAYEXEC;
        assert_eq!(f(0), VmFlags::READ | may);
        assert_eq!(f(1), VmFlags::READ | VmFlags::WRITE | may | VmFlags::ACCOUNT);
        assert!(s.vmas[1].anon_vma().is_some());
        assert_eq!(s.vmas[1].pgoff, 0x371);
        assert_eq!(f(2), VmFlags::READ | VmFlags::WRITE | may | VmFlags::ACCOUNT);
        assert_eq!(s.vmas[2].pgoff, 0x5555558df);
        assert!(s.vmas[2].anon_vma().is_none());
        assert_eq!(mmkit::procfs::vm_flags_string(f(3)), "rd mr pf io de dd ");
        assert_eq!(mmkit::procfs::vm_flags_string(f(4)), "rd ex mr mw me de ");
        assert_eq!(mmkit::procfs::vm_flags_string(f(5)), "rd mr me ms ");
        assert_eq!(mmkit::procfs::vm_flags_string(f(6)), "rd wr sh mr mw me ms ");
        assert_eq!(s.vmas[6].backing, Backing::shmem_unsized(1025));
        assert_eq!(mmkit::procfs::vm_flags_string(f(7)), "rd wr mr mw me gd ac ");
        assert!(s.vmas[7].anon_vma().is_some());
        let sp = s.start_stack.unwrap();
        assert!(sp >= s.vmas[7].start && sp <= s.vmas[7].end);
        assert_eq!(s.guessed_brk, Some(0x5555_5590_5000));
        // Same path, same file object.
        match (&s.vmas[0].backing, &s.vmas[1].backing) {
            (Backing::File(a), Backing::File(b)) => assert!(Arc::ptr_eq(a, b)),
            _ => panic!("file backings expected"),
        }
        // Unknown paths (not on this host either) get 00:00 and a synthetic inode.
        let u = reg.get("/nowhere/at/all");
        assert_eq!((u.dev_major, u.dev_minor), (0, 0));
        assert_ne!(u.inode, 0);
    }

    #[test]
    fn no_maps_input_panics() {
        let line = "7ffff7fb9000-7ffff7fc0000 r--s 00000000 fe:00 325745                     /a b";
        let chars: Vec<char> = line.chars().collect();
        for cut in 0..=chars.len() {
            let prefix: String = chars[..cut].iter().collect();
            if let Ok(l) = parse_line(1, &prefix) {
                let _ = seed(&[l], &mut FileRegistry::new(), WrittenPolicy::default(), 0);
            }
            for sub in ['-', ':', ' ', 'é', 'x', 's', '['] {
                let mut m = chars.clone();
                if cut < m.len() {
                    m[cut] = sub;
                }
                let m: String = m.into_iter().collect();
                if let Ok(l) = parse_line(1, &m) {
                    let _ = seed(&[l], &mut FileRegistry::new(), WrittenPolicy::default(), 0);
                }
            }
        }
    }

    #[test]
    fn malformed_maps_lines() {
        for bad in [
            "zzz-1000 r--p 00000000 00:00 0",
            "1000-0000 r--p 00000000 00:00 0",
            "1000-2000 r--q 00000000 00:00 0",
            "1000-2000 r--p 0000000g 00:00 0",
            "1000-2000 r--p 00000000 0000 0",
            "1000-2000 r--p 00000000 00:00 x",
            "1000-2001 r--p 00000000 00:00 0",
            "1000-2000",
        ] {
            let e = parse_line(7, bad).expect_err(bad);
            assert_eq!(e.line, 7);
        }
    }
}
