//! `/proc/<pid>/maps` text and the `VmFlags:` mnemonics of smaps, byte-identical to
//! fs/proc/task_mmu.c of Linux 6.18 (x86-64).
//!
//! # Line format
//! `show_map_vma()` prints each VMA through `show_vma_header_prefix()`:
//! `%08lx-%08lx %c%c%c%c %08llx %02x:%02x %lu ` after `seq_setwidth(m, 25 + sizeof(void *) * 6 - 1)`,
//! i.e. a pad target of 72 characters on 64-bit. When the VMA has a name, `seq_pad(m, ' ')` fills
//! the line up to column 72 and then writes one more space, so names start at column 73 (0-based)
//! — or right after one space when the header is already longer (the `[vsyscall]` line). A VMA
//! without a name ends in `0 ` (trailing space) and the newline.
//!
//! # Names (`get_vma_name()`)
//! In Linux's order:
//! 1. a VMA with a `vm_file` (our [`Backing::File`] and [`Backing::Shmem`]) prints its path
//!    (`/dev/zero (deleted)` for shared anonymous memory, whose shmem file lives on the internal
//!    `shm_mnt`, device `00:01`, inode = the shmem object's id), or `[anon_shmem:NAME]` if it
//!    was named with `prctl(PR_SET_VMA_ANON_NAME)`;
//! 2. a special mapping's `vm_ops->name()` (`[vdso]`, `[vvar]`, `[vvar_vclock]`): we store
//!    these in [`Vma::name`] *with* the brackets — a stored name that starts with `[` is
//!    treated as such a special-mapping name and wins over `[heap]`/`[stack]`;
//! 3. `[heap]` when `vma_is_initial_heap()`: `vm_start < mm->brk && vm_end > mm->start_brk`
//!    (so an empty heap, `brk == start_brk`, names nothing);
//! 4. `[stack]` when `vma_is_initial_stack()`: `vm_start <= start_stack <= vm_end`;
//! 5. any other stored name is a prctl anon name, printed `[anon:NAME]`.
//!
//! The x86-64 vsyscall page is Linux's *gate VMA*: it lies above TASK_SIZE, is not in the mm's
//! VMA tree and does not count towards `map_count`; `m_next()` appends it after the last real
//! VMA. We model it the same way: it is not stored in the [`AddressSpace`], and
//! [`write_maps_with_gate`] prints it last when the caller passes one
//! ([`x86_64_vsyscall_gate`] is the default `vsyscall=xonly` page, `--xp`).

use alloc::string::String;
use alloc::sync::Arc;
use core::fmt::{self, Write};

use crate::space::AddressSpace;
use crate::vma::{Backing, VmFlags, Vma};

/// Column where names start: the header is padded to `25 + 8 * 6 - 1 = 72` characters
/// (`seq_setwidth()` in `show_vma_header_prefix()`), then `seq_pad()` adds one space.
pub const MAPS_NAME_COLUMN: usize = 73;

/// The pad target of `seq_setwidth()` for 64-bit pointers.
const MAPS_PAD_WIDTH: usize = 25 + 8 * 6 - 1;

/// Device number of the internal shmem mount (`shm_mnt`) on which shared anonymous memory
/// lives: printed `00:01` in maps.
pub const SHMEM_DEV: (u32, u32) = (0, 1);

/// Start of the x86-64 vsyscall page (`VSYSCALL_ADDR`).
pub const VSYSCALL_ADDR: u64 = 0xffff_ffff_ff60_0000;

/// The x86-64 gate VMA (`gate_vma` of arch/x86/entry/vsyscall/vsyscall_64.c) in the default
/// `vsyscall=xonly` mode: one page at [`VSYSCALL_ADDR`], `VM_EXEC` only (maps prints `--xp`,
/// smaps `VmFlags: ex`), named `[vsyscall]` by `arch_vma_name()`.
pub fn x86_64_vsyscall_gate() -> Vma {
    Vma {
        start: VSYSCALL_ADDR,
        end: VSYSCALL_ADDR + crate::addr::PAGE_SIZE,
        flags: VmFlags::EXEC,
        pgoff: 0,
        backing: Backing::Anonymous,
        anon_vma: Default::default(),
        name: Some(Arc::from("[vsyscall]")),
    }
}

/// What `get_vma_name()` decides for a VMA.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum VmaName<'a> {
    /// A file path (printed through `seq_file_path()`, which escapes `\n`).
    Path(&'a str),
    /// A fixed name such as `[heap]`, `[stack]` or `[vdso]`.
    Special(&'a str),
    /// A prctl name on anonymous memory: `[anon:NAME]`.
    Anon(&'a str),
    /// A prctl name on shared anonymous memory: `[anon_shmem:NAME]`.
    AnonShmem(&'a str),
}

/// Path printed for shared anonymous memory (the shmem file is unlinked at creation).
pub const SHMEM_ZERO_PATH: &str = "/dev/zero (deleted)";

/// `vma_is_initial_heap()` (include/linux/mm.h).
pub fn is_initial_heap(space: &AddressSpace, vma: &Vma) -> bool {
    let (start_brk, brk) = space.brk_range();
    vma.start < brk && vma.end > start_brk
}

/// `vma_is_initial_stack()` (include/linux/mm.h).
pub fn is_initial_stack(space: &AddressSpace, vma: &Vma) -> bool {
    let sp = space.start_stack();
    vma.start <= sp && vma.end >= sp
}

/// `get_vma_name()` of fs/proc/task_mmu.c: the name printed after the header, if any. `space`
/// supplies `start_brk`, `brk` and `start_stack`; pass `None` for the gate VMA (no `vm_mm`).
pub fn vma_name<'a>(space: Option<&AddressSpace>, vma: &'a Vma) -> Option<VmaName<'a>> {
    let stored = vma.name.as_deref();
    let special = stored.filter(|n| n.starts_with('['));
    let anon = stored.filter(|n| !n.starts_with('['));
    match &vma.backing {
        Backing::File(file) => {
            return Some(match anon {
                Some(n) => VmaName::AnonShmem(n),
                None => VmaName::Path(&file.path),
            })
        }
        Backing::Shmem { .. } => {
            return Some(match anon {
                Some(n) => VmaName::AnonShmem(n),
                None => VmaName::Path(SHMEM_ZERO_PATH),
            })
        }
        Backing::Anonymous | Backing::Device { .. } => {}
    }
    if let Some(n) = special {
        return Some(VmaName::Special(n));
    }
    let Some(space) = space else {
        // `!vma->vm_mm`: Linux prints "[vdso]" for an unnamed mm-less VMA.
        return Some(VmaName::Special("[vdso]"));
    };
    if is_initial_heap(space, vma) {
        return Some(VmaName::Special("[heap]"));
    }
    if is_initial_stack(space, vma) {
        return Some(VmaName::Special("[stack]"));
    }
    anon.map(VmaName::Anon)
}

/// `(dev_major, dev_minor, inode, offset)` as `show_map_vma()` prints them: only a VMA with a
/// `vm_file` has a device, inode and offset (`vm_pgoff << PAGE_SHIFT`); private anonymous
/// memory prints zeros even though its `vm_pgoff` is `start >> PAGE_SHIFT`.
pub fn vma_dev_ino_off(vma: &Vma) -> (u32, u32, u64, u64) {
    let off = vma.pgoff.wrapping_shl(crate::addr::PAGE_SHIFT);
    match &vma.backing {
        Backing::File(f) => (f.dev_major, f.dev_minor, f.inode, off),
        Backing::Shmem { id, .. } => (SHMEM_DEV.0, SHMEM_DEV.1, *id, off),
        Backing::Anonymous | Backing::Device { .. } => (0, 0, 0, 0),
    }
}

/// Counts what passes through, so the header's length is known for `seq_pad()`.
struct Counting<'a, W: Write + ?Sized> {
    inner: &'a mut W,
    count: usize,
}

impl<W: Write + ?Sized> Write for Counting<'_, W> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        self.count += s.len();
        self.inner.write_str(s)
    }
}

/// `seq_file_path(m, file, "\n")`: `mangle_path()` writes each character of the escape set
/// as a backslash and three octal digits.
fn write_escaped_path<W: Write + ?Sized>(out: &mut W, path: &str) -> fmt::Result {
    let mut rest = path;
    while let Some(i) = rest.find('\n') {
        out.write_str(&rest[..i])?;
        out.write_str("\\012")?;
        rest = &rest[i + 1..];
    }
    out.write_str(rest)
}

/// One maps line (with its newline) for `vma`, as `show_map_vma()` prints it. `space` is the
/// owning address space (`None` for the gate VMA).
pub fn write_maps_line<W: Write + ?Sized>(
    space: Option<&AddressSpace>,
    vma: &Vma,
    out: &mut W,
) -> fmt::Result {
    let (major, minor, ino, off) = vma_dev_ino_off(vma);
    let f = vma.flags;
    let mut c = Counting { inner: out, count: 0 };
    write!(
        c,
        "{:08x}-{:08x} {}{}{}{} {:08x} {:02x}:{:02x} {} ",
        vma.start,
        vma.end,
        if f.contains(VmFlags::READ) { 'r' } else { '-' },
        if f.contains(VmFlags::WRITE) { 'w' } else { '-' },
        if f.contains(VmFlags::EXEC) { 'x' } else { '-' },
        if f.contains(VmFlags::MAYSHARE) { 's' } else { 'p' },
        off,
        major,
        minor,
        ino
    )?;
    let header_len = c.count;
    let out = c.inner;
    if let Some(name) = vma_name(space, vma) {
        // seq_pad(m, ' '): spaces up to the pad target, then one ' '.
        for _ in header_len..MAPS_PAD_WIDTH {
            out.write_char(' ')?;
        }
        out.write_char(' ')?;
        match name {
            VmaName::Path(p) => write_escaped_path(out, p)?,
            VmaName::Special(n) => out.write_str(n)?,
            VmaName::Anon(n) => write!(out, "[anon:{n}]")?,
            VmaName::AnonShmem(n) => write!(out, "[anon_shmem:{n}]")?,
        }
    }
    out.write_char('\n')
}

/// `/proc/<pid>/maps` of `space`: every VMA in address order, without a gate VMA.
pub fn write_maps<W: Write + ?Sized>(space: &AddressSpace, out: &mut W) -> fmt::Result {
    write_maps_with_gate(space, None, out)
}

/// `/proc/<pid>/maps` of `space`, followed by `gate` (Linux's `get_gate_vma()`, listed last
/// by `m_next()`), e.g. [`x86_64_vsyscall_gate`].
pub fn write_maps_with_gate<W: Write + ?Sized>(
    space: &AddressSpace,
    gate: Option<&Vma>,
    out: &mut W,
) -> fmt::Result {
    for vma in space.vmas().iter() {
        write_maps_line(Some(space), vma, out)?;
    }
    if let Some(g) = gate {
        write_maps_line(None, g, out)?;
    }
    Ok(())
}

/// The maps text as a `String` (with the x86-64 vsyscall gate when `vsyscall` is true).
pub fn maps_string(space: &AddressSpace, vsyscall: bool) -> String {
    let mut s = String::new();
    let gate = vsyscall.then(x86_64_vsyscall_gate);
    // Writing into a String cannot fail.
    let _ = write_maps_with_gate(space, gate.as_ref(), &mut s);
    s
}

/// The two-letter codes of `show_smap_vma_flags()` (Linux 6.18, x86-64 with
/// CONFIG_MEM_SOFT_DIRTY, CONFIG_ARCH_HAS_PKEYS, CONFIG_X86_USER_SHADOW_STACK and
/// CONFIG_HAVE_ARCH_USERFAULTFD_MINOR), indexed by bit number. `""` means the bit is known
/// but not printed (protection-key bits come out via `ProtectionKey:`); `"??"` is what Linux
/// prints for a set bit it has no name for.
pub const VM_FLAG_MNEMONICS: [&str; 64] = {
    let mut t = ["??"; 64];
    t[0] = "rd"; // VM_READ
    t[1] = "wr"; // VM_WRITE
    t[2] = "ex"; // VM_EXEC
    t[3] = "sh"; // VM_SHARED
    t[4] = "mr"; // VM_MAYREAD
    t[5] = "mw"; // VM_MAYWRITE
    t[6] = "me"; // VM_MAYEXEC
    t[7] = "ms"; // VM_MAYSHARE
    t[8] = "gd"; // VM_GROWSDOWN
    t[9] = "um"; // VM_UFFD_MISSING
    t[10] = "pf"; // VM_PFNMAP
    t[11] = "gu"; // VM_MAYBE_GUARD
    t[12] = "uw"; // VM_UFFD_WP
    t[13] = "lo"; // VM_LOCKED
    t[14] = "io"; // VM_IO
    t[15] = "sr"; // VM_SEQ_READ
    t[16] = "rr"; // VM_RAND_READ
    t[17] = "dc"; // VM_DONTCOPY
    t[18] = "de"; // VM_DONTEXPAND
    t[19] = "lf"; // VM_LOCKONFAULT
    t[20] = "ac"; // VM_ACCOUNT
    t[21] = "nr"; // VM_NORESERVE
    t[22] = "ht"; // VM_HUGETLB
    t[23] = "sf"; // VM_SYNC
    t[24] = "ar"; // VM_ARCH_1 (x86: VM_PAT)
    t[25] = "wf"; // VM_WIPEONFORK
    t[26] = "dd"; // VM_DONTDUMP
    t[27] = "sd"; // VM_SOFTDIRTY
    t[28] = "mm"; // VM_MIXEDMAP
    t[29] = "hg"; // VM_HUGEPAGE
    t[30] = "nh"; // VM_NOHUGEPAGE
    t[31] = "mg"; // VM_MERGEABLE
    t[32] = ""; // VM_PKEY_BIT0
    t[33] = ""; // VM_PKEY_BIT1
    t[34] = ""; // VM_PKEY_BIT2
    t[35] = ""; // VM_PKEY_BIT3
    t[37] = "ss"; // VM_SHADOW_STACK (VM_HIGH_ARCH_5)
    t[40] = "dp"; // VM_DROPPABLE
    t[41] = "ui"; // VM_UFFD_MINOR
    t[42] = "sl"; // VM_SEALED
    t
};

/// The body of smaps' `VmFlags:` line: each set bit's mnemonic followed by a space, in bit
/// order, exactly as the loop of `show_smap_vma_flags()` writes it (e.g. `"rd wr mr mw me ac "`).
pub fn write_vm_flags<W: Write + ?Sized>(flags: VmFlags, out: &mut W) -> fmt::Result {
    let bits = flags.bits();
    for (i, m) in VM_FLAG_MNEMONICS.iter().enumerate() {
        if m.is_empty() || bits & (1u64 << i) == 0 {
            continue;
        }
        out.write_str(m)?;
        out.write_char(' ')?;
    }
    Ok(())
}

/// [`write_vm_flags`] into a `String`.
pub fn vm_flags_string(flags: VmFlags) -> String {
    let mut s = String::new();
    let _ = write_vm_flags(flags, &mut s);
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::MmConfig;
    use crate::vma::FileObject;
    use alloc::string::ToString;

    fn file(path: &str, major: u32, minor: u32, inode: u64) -> Arc<FileObject> {
        Arc::new(FileObject {
            id: inode,
            dev_major: major,
            dev_minor: minor,
            inode,
            path: path.into(),
        })
    }

    fn vma(start: u64, end: u64, flags: VmFlags, pgoff: u64, backing: Backing) -> Vma {
        Vma { start, end, flags, pgoff, backing, anon_vma: Default::default(), name: None }
    }

    const RW: VmFlags = VmFlags::READ.union(VmFlags::WRITE);
    const MAY: VmFlags = VmFlags::MAYREAD.union(VmFlags::MAYWRITE).union(VmFlags::MAYEXEC);

    fn line(space: &AddressSpace, v: &Vma) -> String {
        let mut s = String::new();
        write_maps_line(Some(space), v, &mut s).unwrap();
        s
    }

    #[test]
    fn golden_lines_from_traces() {
        // Lines copied from /work/shared/traces/git-log.after.
        let mut sp = AddressSpace::new(MmConfig::default());
        sp.set_brk_base(0x5555_5590_5000, 0x5555_5592_6000);
        sp.set_start_stack(0x7fff_ffff_e7b0);
        let git = file("/usr/bin/git", 0xfe, 0, 247232);
        let v = vma(
            0x5555_5557_2000,
            0x5555_5580_0000,
            VmFlags::READ | VmFlags::EXEC | MAY,
            0x1e,
            Backing::File(git.clone()),
        );
        assert_eq!(
            line(&sp, &v),
            "555555572000-555555800000 r-xp 0001e000 fe:00 247232                     /usr/bin/git\n"
        );
        let bss = vma(
            0x5555_558d_f000,
            0x5555_5590_5000,
            RW | MAY | VmFlags::ACCOUNT,
            0x5555_558d_f000 >> 12,
            Backing::Anonymous,
        );
        assert_eq!(line(&sp, &bss), "5555558df000-555555905000 rw-p 00000000 00:00 0 \n");
        let heap = vma(
            0x5555_5590_5000,
            0x5555_5592_6000,
            RW | MAY | VmFlags::ACCOUNT,
            0x5555_5590_5000 >> 12,
            Backing::Anonymous,
        );
        assert_eq!(
            line(&sp, &heap),
            "555555905000-555555926000 rw-p 00000000 00:00 0                          [heap]\n"
        );
        let gconv = file("/usr/lib/x86_64-linux-gnu/gconv/gconv-modules.cache", 0xfe, 0, 325745);
        let sh = vma(
            0x7fff_f7fb_9000,
            0x7fff_f7fc_0000,
            VmFlags::READ | VmFlags::MAYREAD | VmFlags::MAYEXEC | VmFlags::MAYSHARE,
            0,
            Backing::File(gconv),
        );
        assert_eq!(
            line(&sp, &sh),
            "7ffff7fb9000-7ffff7fc0000 r--s 00000000 fe:00 325745                     /usr/lib/x86_64-linux-gnu/gconv/gconv-modules.cache\n"
        );
        let stack = vma(
            0x7fff_fffd_e000,
            0x7fff_ffff_f000,
            RW | MAY | VmFlags::GROWSDOWN | VmFlags::ACCOUNT,
            0x7fff_fffd_e000 >> 12,
            Backing::Anonymous,
        );
        let s = line(&sp, &stack);
        assert_eq!(
            s,
            "7ffffffde000-7ffffffff000 rw-p 00000000 00:00 0                          [stack]\n"
        );
        assert_eq!(s.len(), 81, "a [stack] line is 80 characters plus the newline");
        let mut vdso = vma(
            0x7fff_f7fc_8000,
            0x7fff_f7fc_a000,
            VmFlags::READ | VmFlags::EXEC | MAY | VmFlags::DONTEXPAND,
            0,
            Backing::Anonymous,
        );
        vdso.name = Some(Arc::from("[vdso]"));
        assert_eq!(
            line(&sp, &vdso),
            "7ffff7fc8000-7ffff7fca000 r-xp 00000000 00:00 0                          [vdso]\n"
        );
        let mut g = String::new();
        write_maps_line(None, &x86_64_vsyscall_gate(), &mut g).unwrap();
        assert_eq!(
            g,
            "ffffffffff600000-ffffffffff601000 --xp 00000000 00:00 0                  [vsyscall]\n"
        );
    }

    #[test]
    fn golden_lines_from_host() {
        // Lines taken from this host's /proc/<pid>/maps (Linux 6.18).
        let mut sp = AddressSpace::new(MmConfig::default());
        let sh = vma(
            0x7fc5_568a_b000,
            0x7fc5_568a_d000,
            RW | MAY | VmFlags::SHARED | VmFlags::MAYSHARE,
            0,
            Backing::shmem_unsized(1025),
        );
        assert_eq!(
            line(&sp, &sh),
            "7fc5568ab000-7fc5568ad000 rw-s 00000000 00:01 1025                       /dev/zero (deleted)\n"
        );
        let devzero = file("/dev/zero", 0, 6, 4);
        let z = vma(
            0x7fc5_568a_9000,
            0x7fc5_568a_b000,
            RW | MAY | VmFlags::ACCOUNT,
            1,
            Backing::File(devzero),
        );
        assert_eq!(
            line(&sp, &z),
            "7fc5568a9000-7fc5568ab000 rw-p 00001000 00:06 4                          /dev/zero\n"
        );
        // Short addresses still print at least 8 digits.
        let low = vma(0x1_0000, 0x1_1000, VmFlags::empty(), 0x10, Backing::Anonymous);
        assert_eq!(line(&sp, &low), "00010000-00011000 ---p 00000000 00:00 0 \n");
        // An empty heap (brk == start_brk) names nothing; a non-empty one names every VMA
        // overlapping [start_brk, brk).
        sp.set_brk_base(0x1_1000, 0x1_1000);
        let after = vma(0x1_1000, 0x1_2000, RW, 0x11, Backing::Anonymous);
        assert_eq!(vma_name(Some(&sp), &after), None);
        assert_eq!(vma_name(Some(&sp), &low), None);
        sp.set_brk_base(0x1_1000, 0x1_1001);
        assert_eq!(vma_name(Some(&sp), &after), Some(VmaName::Special("[heap]")));
        assert_eq!(vma_name(Some(&sp), &low), None);
        // prctl names.
        let mut named = low.clone();
        named.name = Some(Arc::from("buf"));
        assert!(line(&sp, &named).ends_with(" [anon:buf]\n"));
        let mut named_sh = sh.clone();
        named_sh.name = Some(Arc::from("buf"));
        assert!(line(&sp, &named_sh).ends_with(" [anon_shmem:buf]\n"));
        // Newlines in paths are escaped by seq_file_path().
        let odd =
            vma(0x1_0000, 0x1_1000, VmFlags::READ, 0, Backing::File(file("/tmp/a\nb", 8, 1, 7)));
        assert!(line(&sp, &odd).ends_with(" /tmp/a\\012b\n"));
    }

    #[test]
    fn vm_flags_mnemonics_match_host_smaps() {
        // VmFlags lines observed in this host's smaps.
        let anon = RW | MAY | VmFlags::ACCOUNT;
        assert_eq!(vm_flags_string(anon), "rd wr mr mw me ac ");
        assert_eq!(
            vm_flags_string(RW | MAY | VmFlags::GROWSDOWN | VmFlags::ACCOUNT),
            "rd wr mr mw me gd ac "
        );
        assert_eq!(
            vm_flags_string(RW | VmFlags::SHARED | MAY | VmFlags::MAYSHARE),
            "rd wr sh mr mw me ms "
        );
        assert_eq!(
            vm_flags_string(
                VmFlags::READ
                    | VmFlags::MAYREAD
                    | VmFlags::PFNMAP
                    | VmFlags::IO
                    | VmFlags::DONTEXPAND
                    | VmFlags::DONTDUMP
            ),
            "rd mr pf io de dd "
        );
        assert_eq!(
            vm_flags_string(
                RW | MAY
                    | VmFlags::MAYBE_GUARD
                    | VmFlags::LOCKED
                    | VmFlags::DONTCOPY
                    | VmFlags::LOCKONFAULT
                    | VmFlags::NORESERVE
                    | VmFlags::WIPEONFORK
                    | VmFlags::DONTDUMP
                    | VmFlags::HUGEPAGE
            ),
            "rd wr mr mw me gu lo dc lf nr wf dd hg "
        );
        assert_eq!(
            vm_flags_string(
                RW | MAY
                    | VmFlags::NORESERVE
                    | VmFlags::DONTDUMP
                    | VmFlags::NOHUGEPAGE
                    | VmFlags::MERGEABLE
            ),
            "rd wr mr mw me nr dd nh mg "
        );
        assert_eq!(vm_flags_string(VmFlags::EXEC), "ex ");
        assert_eq!(vm_flags_string(VmFlags::DROPPABLE), "dp ");
        assert_eq!(vm_flags_string(VmFlags::from_bits_retain(1 << 50)), "?? ");
        assert_eq!(vm_flags_string(VmFlags::from_bits_retain(1 << 32)), "");
    }

    #[test]
    fn maps_lists_gate_last() {
        let mut sp = AddressSpace::new(MmConfig::default());
        sp.insert_vma_unmerged(vma(0x40_0000, 0x40_1000, VmFlags::READ, 0x400, Backing::Anonymous))
            .unwrap();
        let s = maps_string(&sp, true);
        let lines: alloc::vec::Vec<_> = s.lines().collect();
        assert_eq!(lines.len(), 2);
        assert_eq!(lines[0], "00400000-00401000 r--p 00000000 00:00 0 ");
        assert!(lines[1].ends_with("[vsyscall]"));
        assert_eq!(maps_string(&sp, false), lines[0].to_string() + "\n");
    }
}
