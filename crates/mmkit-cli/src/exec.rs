//! Building the address space an `execve` leaves behind, when no maps snapshot was taken:
//! `load_elf_binary()` of fs/binfmt_elf.c (Linux 6.18, x86-64, ASLR off as under
//! `setarch -R`), driven through the model's own `mmap`, reading the program headers of the
//! executable and of its interpreter from the host's filesystem.
//!
//! In Linux's order:
//! 1. `setup_arg_pages()`: the `[stack]` VMA, ending at `STACK_TOP` (TASK_SIZE), VM_GROWSDOWN,
//!    written (argv/envp/auxv);
//! 2. the executable's `PT_LOAD` segments (`elf_load()`/`elf_map()`): an ET_DYN with an
//!    interpreter goes at `ELF_ET_DYN_BASE` (2/3 of TASK_SIZE) aligned down to the largest
//!    power-of-two `p_align`, the first segment mapped with the image's total size and the
//!    excess unmapped; `padzero()` writes the partial page after `p_filesz` (an anon_vma), and
//!    `vm_brk_flags()` maps the rest of the bss as anonymous read-write memory;
//! 3. `mm->start_brk = mm->brk = PAGE_ALIGN(end of the highest segment)`;
//! 4. the interpreter, placed by a top-down search (below `mmap_base`);
//! 5. the vDSO (`[vvar]`, `[vvar_vclock]`, `[vdso]`), placed top-down below that.

use std::sync::Arc;

use mmkit::space::{FdTable, FileKind, OpenFile};
use mmkit::vma::FileObject;
use mmkit::{AddressSpace, Backing, VmFlags, Vma, PAGE_SIZE};

use crate::maps::FileRegistry;

const PT_LOAD: u32 = 1;
const PT_INTERP: u32 = 3;
const ET_EXEC: u16 = 2;
const ET_DYN: u16 = 3;
const PROT_READ: u64 = 1;
const PROT_WRITE: u64 = 2;
const PROT_EXEC: u64 = 4;
const MAP_PRIVATE: u64 = 2;
const MAP_FIXED: u64 = 0x10;
const MAP_ANONYMOUS: u64 = 0x20;
const MAP_FIXED_NOREPLACE: u64 = 0x10_0000;

/// One program header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Phdr {
    /// `p_type`.
    pub p_type: u32,
    /// `p_flags` (PF_X = 1, PF_W = 2, PF_R = 4).
    pub p_flags: u32,
    /// `p_offset`.
    pub p_offset: u64,
    /// `p_vaddr`.
    pub p_vaddr: u64,
    /// `p_filesz`.
    pub p_filesz: u64,
    /// `p_memsz`.
    pub p_memsz: u64,
    /// `p_align`.
    pub p_align: u64,
}

/// What the loader needs of an ELF file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ElfInfo {
    /// `e_type`.
    pub e_type: u16,
    /// Program headers.
    pub phdrs: Vec<Phdr>,
    /// The `PT_INTERP` path.
    pub interp: Option<String>,
}

fn u16_at(b: &[u8], o: usize) -> Option<u16> {
    Some(u16::from_le_bytes(b.get(o..o + 2)?.try_into().ok()?))
}
fn u32_at(b: &[u8], o: usize) -> Option<u32> {
    Some(u32::from_le_bytes(b.get(o..o + 4)?.try_into().ok()?))
}
fn u64_at(b: &[u8], o: usize) -> Option<u64> {
    Some(u64::from_le_bytes(b.get(o..o + 8)?.try_into().ok()?))
}

/// Parses the header and program headers of a 64-bit little-endian ELF file.
pub fn parse_elf(b: &[u8]) -> Result<ElfInfo, String> {
    if b.get(..4) != Some(b"\x7fELF") {
        return Err("not an ELF file".into());
    }
    if b.get(4) != Some(&2) || b.get(5) != Some(&1) {
        return Err("not a 64-bit little-endian ELF file".into());
    }
    let bad = || "truncated ELF header".to_string();
    let e_type = u16_at(b, 16).ok_or_else(bad)?;
    let phoff = u64_at(b, 32).ok_or_else(bad)? as usize;
    let phentsize = u16_at(b, 54).ok_or_else(bad)? as usize;
    let phnum = u16_at(b, 56).ok_or_else(bad)? as usize;
    if phentsize < 56 {
        return Err("bad e_phentsize".into());
    }
    let mut phdrs = Vec::with_capacity(phnum);
    let mut interp = None;
    for i in 0..phnum {
        let o = phoff.checked_add(i * phentsize).ok_or_else(bad)?;
        let bad = || format!("truncated program header {i}");
        let p = Phdr {
            p_type: u32_at(b, o).ok_or_else(bad)?,
            p_flags: u32_at(b, o + 4).ok_or_else(bad)?,
            p_offset: u64_at(b, o + 8).ok_or_else(bad)?,
            p_vaddr: u64_at(b, o + 16).ok_or_else(bad)?,
            p_filesz: u64_at(b, o + 32).ok_or_else(bad)?,
            p_memsz: u64_at(b, o + 40).ok_or_else(bad)?,
            p_align: u64_at(b, o + 48).ok_or_else(bad)?,
        };
        if p.p_type == PT_INTERP {
            let s = p.p_offset as usize;
            let raw = b.get(s..s.saturating_add(p.p_filesz as usize)).ok_or("bad PT_INTERP")?;
            let raw = raw.split(|&c| c == 0).next().unwrap_or(raw);
            interp = Some(String::from_utf8_lossy(raw).into_owned());
        }
        phdrs.push(p);
    }
    Ok(ElfInfo { e_type, phdrs, interp })
}

fn page_start(a: u64) -> u64 {
    a & !(PAGE_SIZE - 1)
}
fn page_align(a: u64) -> u64 {
    a.wrapping_add(PAGE_SIZE - 1) & !(PAGE_SIZE - 1)
}
fn page_off(a: u64) -> u64 {
    a & (PAGE_SIZE - 1)
}

/// `make_prot()`.
fn prot_of(p: &Phdr) -> u64 {
    let mut prot = 0;
    if p.p_flags & 4 != 0 {
        prot |= PROT_READ;
    }
    if p.p_flags & 2 != 0 {
        prot |= PROT_WRITE;
    }
    if p.p_flags & 1 != 0 {
        prot |= PROT_EXEC;
    }
    prot
}

/// `total_mapping_size()`.
fn total_mapping_size(loads: &[&Phdr]) -> u64 {
    match (loads.first(), loads.last()) {
        (Some(f), Some(l)) => l.p_vaddr.wrapping_add(l.p_memsz).wrapping_sub(page_start(f.p_vaddr)),
        _ => 0,
    }
}

/// `maximum_alignment()`: the largest power-of-two `p_align`, at least a page.
fn maximum_alignment(loads: &[&Phdr]) -> u64 {
    let a = loads.iter().map(|p| p.p_align).filter(|a| a.is_power_of_two()).max().unwrap_or(0);
    page_align(a)
}

struct Fd(OpenFile);

impl FdTable for Fd {
    fn get(&self, fd: i32) -> Option<OpenFile> {
        (fd == 3).then(|| self.0.clone())
    }
}

/// Maps every `PT_LOAD` of `elf` (`elf_load()`), the first one at `first_addr` with `first_flags`
/// and the image's total size; returns the load bias and the end of the highest segment.
fn load_segments(
    space: &mut AddressSpace,
    file: &Arc<FileObject>,
    elf: &ElfInfo,
    bias: u64,
    first_flags: u64,
) -> Result<(u64, u64), String> {
    let fds = Fd(OpenFile {
        file: file.clone(),
        readable: true,
        writable: false,
        kind: FileKind::Regular,
    });
    let loads: Vec<&Phdr> = elf.phdrs.iter().filter(|p| p.p_type == PT_LOAD).collect();
    if loads.is_empty() {
        return Err(format!("{}: no PT_LOAD segment", file.path));
    }
    let mut total = total_mapping_size(&loads);
    let mut bias = bias;
    let mut first = true;
    let mut brk = 0;
    for p in loads {
        let prot = prot_of(p);
        let flags = MAP_PRIVATE | if first { first_flags } else { MAP_FIXED };
        let addr = bias.wrapping_add(p.p_vaddr);
        let size = page_align(p.p_filesz.wrapping_add(page_off(p.p_vaddr)));
        let off = p.p_offset.wrapping_sub(page_off(p.p_vaddr));
        let map_addr;
        let (mut zero_start, mut zero_end);
        if p.p_filesz != 0 {
            // elf_map()
            map_addr = if total != 0 {
                let t = page_align(total);
                let a = space
                    .sys_mmap(&fds, page_start(addr), t, prot, flags, 3, off)
                    .map_err(|e| format!("{}: mapping the image: {e}", file.path))?;
                if t > size {
                    let _ = space.sys_munmap(a.wrapping_add(size), t - size);
                }
                a
            } else {
                space
                    .sys_mmap(&fds, page_start(addr), size, prot, flags, 3, off)
                    .map_err(|e| format!("{}: mapping a segment: {e}", file.path))?
            };
            zero_start = map_addr.wrapping_add(page_off(p.p_vaddr)).wrapping_add(p.p_filesz);
            zero_end = map_addr.wrapping_add(page_off(p.p_vaddr)).wrapping_add(p.p_memsz);
            if p.p_memsz > p.p_filesz && page_off(zero_start) != 0 && prot & PROT_WRITE != 0 {
                // padzero(): the kernel writes the tail of the last file page.
                let _ = space.write_fault(zero_start);
            }
        } else {
            map_addr = page_start(addr);
            zero_start = map_addr;
            zero_end = zero_start.wrapping_add(page_off(p.p_vaddr)).wrapping_add(p.p_memsz);
        }
        if p.p_memsz > p.p_filesz {
            // vm_brk_flags(): read-write anonymous memory (executable if the segment is).
            zero_start = page_align(zero_start);
            zero_end = page_align(zero_end);
            if zero_end > zero_start {
                let bprot = PROT_READ | PROT_WRITE | (prot & PROT_EXEC);
                space
                    .sys_mmap(
                        &fds,
                        zero_start,
                        zero_end - zero_start,
                        bprot,
                        MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED,
                        u64::MAX,
                        0,
                    )
                    .map_err(|e| format!("{}: mapping the bss: {e}", file.path))?;
            }
        }
        if first {
            // For an image placed by the kernel, the bias follows from where it landed.
            bias = map_addr.wrapping_sub(page_start(p.p_vaddr));
            first = false;
            total = 0;
        }
        brk = brk.max(bias.wrapping_add(p.p_vaddr.wrapping_add(p.p_memsz)));
    }
    Ok((bias, brk))
}

/// The special mappings of the vDSO, low to high, as `(name, length, flags)`.
pub type Specials = Vec<(String, u64, VmFlags)>;

/// x86-64 Linux 6.18's vDSO area: `[vvar]` 4 pages, `[vvar_vclock]` 2 pages, `[vdso]` 2 pages.
pub fn default_specials() -> Specials {
    let vvar = VmFlags::READ
        | VmFlags::MAYREAD
        | VmFlags::IO
        | VmFlags::PFNMAP
        | VmFlags::DONTEXPAND
        | VmFlags::DONTDUMP;
    let vdso = VmFlags::READ
        | VmFlags::EXEC
        | VmFlags::MAYREAD
        | VmFlags::MAYWRITE
        | VmFlags::MAYEXEC
        | VmFlags::DONTEXPAND;
    vec![
        ("[vvar]".into(), 4 * PAGE_SIZE, vvar),
        ("[vvar_vclock]".into(), 2 * PAGE_SIZE, vvar),
        ("[vdso]".into(), 2 * PAGE_SIZE, vdso),
    ]
}

/// The path maps shows for a file: `d_path()` of the opened file, i.e. with symlinks
/// resolved.
fn canonical(path: &str) -> String {
    std::fs::canonicalize(path)
        .ok()
        .and_then(|p| p.to_str().map(str::to_string))
        .unwrap_or_else(|| path.to_string())
}

/// The binary `execve(path)` really loads: `path` itself, or for a `#!` script its
/// interpreter (binfmt_script, up to 4 levels, as `BINPRM_MAX_RECURSION`).
fn resolve_program(path: &str) -> Result<(String, ElfInfo), String> {
    let mut p = path.to_string();
    for _ in 0..5 {
        let real = canonical(&p);
        let bytes = std::fs::read(&real).map_err(|e| format!("{p}: {e}"))?;
        if let Some(rest) = bytes.strip_prefix(b"#!") {
            let line = rest.split(|&c| c == b'\n').next().unwrap_or(rest);
            let line = String::from_utf8_lossy(line);
            let interp =
                line.split_whitespace().next().ok_or_else(|| format!("{p}: empty #! line"))?;
            p = interp.to_string();
            continue;
        }
        return Ok((real.clone(), parse_elf(&bytes).map_err(|e| format!("{real}: {e}"))?));
    }
    Err(format!("{path}: too many levels of #! interpreters"))
}

/// What was built.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ExecResult {
    /// `mm->start_brk` (= `mm->brk`).
    pub brk: u64,
}

/// Builds into the empty `space` what `execve(path)` leaves: stack, executable, interpreter,
/// vDSO, break. `stack_len` is the `[stack]` VMA's length (128 KiB of expansion plus the
/// argument pages; 0x21000 for a small environment). Reads the files from the host.
pub fn build_exec_image(
    space: &mut AddressSpace,
    files: &mut FileRegistry,
    path: &str,
    stack_len: u64,
    specials: &Specials,
) -> Result<ExecResult, String> {
    let (path, elf) = resolve_program(path)?;
    let path = path.as_str();
    let interp = match &elf.interp {
        Some(ip) => {
            let real = canonical(ip);
            let b = std::fs::read(&real).map_err(|e| format!("{ip}: {e}"))?;
            Some((real, parse_elf(&b).map_err(|e| format!("{ip}: {e}"))?))
        }
        None => None,
    };
    // 1. The stack (setup_arg_pages()).
    let top = space.config().task_size;
    let stack_len = page_align(stack_len.max(PAGE_SIZE)).min(top & !(PAGE_SIZE - 1));
    let stack = Vma {
        start: top - stack_len,
        end: top,
        flags: VmFlags::READ
            | VmFlags::WRITE
            | VmFlags::MAYREAD
            | VmFlags::MAYWRITE
            | VmFlags::MAYEXEC
            | VmFlags::GROWSDOWN
            | VmFlags::ACCOUNT,
        pgoff: (top - stack_len) >> 12,
        backing: Backing::Anonymous,
        anon_vma: Default::default(),
        name: None,
    };
    space.insert_vma_unmerged(stack).map_err(|e| format!("stack: {e}"))?;
    let _ = space.write_fault(top - PAGE_SIZE);
    space.set_start_stack(top - 0x800);
    // 2. The executable.
    let exe = files.get(path);
    let loads: Vec<&Phdr> = elf.phdrs.iter().filter(|p| p.p_type == PT_LOAD).collect();
    let first_vaddr = loads.first().map(|p| p.p_vaddr).unwrap_or(0);
    let (bias, first_flags) = match elf.e_type {
        ET_EXEC => (0, MAP_FIXED_NOREPLACE),
        ET_DYN if interp.is_some() => {
            let mut base = (space.config().task_size / 3) * 2; // ELF_ET_DYN_BASE
            let align = maximum_alignment(&loads);
            if align != 0 {
                base &= !(align - 1);
            }
            (page_start(base.wrapping_sub(first_vaddr)), MAP_FIXED_NOREPLACE)
        }
        ET_DYN => (page_start(0u64.wrapping_sub(first_vaddr)), 0),
        t => return Err(format!("{path}: ELF type {t} is not executable")),
    };
    let (_, elf_brk) = load_segments(space, &exe, &elf, bias, first_flags)?;
    let brk = page_align(elf_brk);
    space.set_brk_base(brk, brk);
    // 4. The interpreter, top-down.
    if let Some((ip, ie)) = &interp {
        let f = files.get(ip);
        let il: Vec<&Phdr> = ie.phdrs.iter().filter(|p| p.p_type == PT_LOAD).collect();
        let fv = il.first().map(|p| p.p_vaddr).unwrap_or(0);
        let (ibias, iflags) =
            if ie.e_type == ET_EXEC { (0, MAP_FIXED) } else { (0u64.wrapping_sub(fv), 0) };
        load_segments(space, &f, ie, ibias, iflags)?;
    }
    // 5. The vDSO: one top-down search for the whole area, as map_vdso() does.
    let total: u64 = specials.iter().map(|s| s.1).sum();
    if total != 0 {
        let base = space
            .sys_mmap(&mmkit::space::NoFiles, 0, total, 0, MAP_PRIVATE | MAP_ANONYMOUS, u64::MAX, 0)
            .map_err(|e| format!("vdso: {e}"))?;
        let _ = space.sys_munmap(base, total);
        let mut at = base;
        for (name, len, flags) in specials {
            let backing = if flags.contains(VmFlags::PFNMAP) {
                Backing::Device { phys_base: 0 }
            } else {
                Backing::Anonymous
            };
            space
                .insert_vma_unmerged(Vma {
                    start: at,
                    end: at + len,
                    flags: *flags,
                    pgoff: 0,
                    backing,
                    anon_vma: Default::default(),
                    name: Some(Arc::from(name.as_str())),
                })
                .map_err(|e| format!("{name}: {e}"))?;
            at += len;
        }
    }
    Ok(ExecResult { brk })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_non_elf_and_truncated() {
        assert!(parse_elf(b"").is_err());
        assert!(parse_elf(b"#!/bin/sh\n").is_err());
        let mut h = vec![0u8; 64];
        h[..4].copy_from_slice(b"\x7fELF");
        h[4] = 2;
        h[5] = 1;
        h[16] = 3;
        h[32] = 64; // e_phoff
        h[54] = 56; // e_phentsize
        h[56] = 1; // e_phnum: one header, missing
        assert!(parse_elf(&h).unwrap_err().contains("truncated program header"));
    }

    #[test]
    #[cfg(target_os = "linux")]
    fn own_binary_parses() {
        // The test binary itself is an ELF executable of this host.
        let me = std::env::current_exe().unwrap();
        let b = std::fs::read(me).unwrap();
        let e = parse_elf(&b).unwrap();
        assert!(e.phdrs.iter().any(|p| p.p_type == PT_LOAD));
    }
}
