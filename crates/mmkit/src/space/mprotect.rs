//! `mprotect`: `do_mprotect_pkey()` and `mprotect_fixup()` of mm/mprotect.c (Linux 6.18).

use super::merge::VM_ACCESS;
use super::AddressSpace;
use crate::addr::{is_page_aligned, page_align_wrapping, PAGE_SHIFT};
use crate::errno::Errno;
use crate::vma::{VmFlags, Vma};

/// What `do_mprotect_pkey()` needs of a VMA, copied out of the index.
struct Piece {
    start: u64,
    end: u64,
    flags: VmFlags,
    anonymous: bool,
    has_anon_vma: bool,
    /// A copy of the VMA when its access bits differ from `newprot` (so `mprotect_fixup()`
    /// will change it and need the copy; taken here to save a second lookup).
    copy: Option<Vma>,
}

impl Piece {
    fn of(v: &Vma, newprot: VmFlags) -> Piece {
        Piece {
            start: v.start,
            end: v.end,
            flags: v.flags,
            anonymous: super::merge::vma_is_anonymous(v),
            has_anon_vma: v.anon_vma().is_some(),
            copy: (v.flags & VM_ACCESS != newprot).then(|| v.clone()),
        }
    }
}

/// `PROT_GROWSDOWN`.
const PROT_GROWSDOWN: u64 = 0x0100_0000;
/// `PROT_GROWSUP`.
const PROT_GROWSUP: u64 = 0x0200_0000;
/// What `arch_validate_prot()` accepts: READ | WRITE | EXEC | SEM.
const PROT_VALID: u64 = 0xf;

impl AddressSpace {
    /// `mprotect(addr, len, prot)`.
    ///
    /// Checks in `do_mprotect_pkey()`'s order: both GROWS flags → EINVAL; unaligned start →
    /// EINVAL; `len == 0` → 0 (before `prot` is looked at); end wraps → ENOMEM; unknown prot
    /// bits → EINVAL; nothing mapped at the start → ENOMEM (PROT_GROWSDOWN on a
    /// non-growsdown VMA → EINVAL, on a growsdown one the range starts at the VMA's start).
    /// Then VMA by VMA: a hole → ENOMEM, an access beyond the VM_MAY* bits → EACCES, a
    /// failed split → ENOMEM; the VMAs already changed keep their new protection, as in
    /// Linux.
    pub fn sys_mprotect(&mut self, addr: u64, len: u64, prot: u64) -> Result<u64, Errno> {
        self.stats.mprotect_calls += 1;
        let grows = prot & (PROT_GROWSDOWN | PROT_GROWSUP);
        let prot = prot & !(PROT_GROWSDOWN | PROT_GROWSUP);
        if grows == PROT_GROWSDOWN | PROT_GROWSUP {
            return Err(Errno::EINVAL);
        }
        if !is_page_aligned(addr) {
            return Err(Errno::EINVAL);
        }
        if len == 0 {
            return Ok(0);
        }
        let len = page_align_wrapping(len);
        let mut start = addr;
        let end = start.wrapping_add(len);
        if end <= start {
            return Err(Errno::ENOMEM);
        }
        if prot & !PROT_VALID != 0 {
            return Err(Errno::EINVAL);
        }
        let newprot = VmFlags::from_bits_truncate(prot & 0x7);
        let Some(first) =
            self.vmas.find_next(start).filter(|v| v.start < end).map(|v| Piece::of(v, newprot))
        else {
            return Err(Errno::ENOMEM);
        };
        if grows & PROT_GROWSDOWN != 0 {
            start = first.start;
            if !first.flags.contains(VmFlags::GROWSDOWN) {
                return Err(Errno::EINVAL);
            }
        } else {
            if first.start > start {
                return Err(Errno::ENOMEM);
            }
            if grows & PROT_GROWSUP != 0 {
                // Linux extends `end` to the VMA's end, then refuses: no x86-64 mapping
                // grows up.
                return Err(Errno::EINVAL);
            }
        }
        let mut nstart = start;
        let mut tmp = first.start;
        let mut cur = Some(first);
        let mut result = Ok(0);
        while let Some(mut vma) = cur {
            if vma.start >= end {
                break;
            }
            if vma.start != tmp {
                result = Err(Errno::ENOMEM);
                break;
            }
            let newflags = newprot | (vma.flags & !VM_ACCESS);
            // newflags >> 4 shifts VM_MAY* onto VM_*.
            let may = VmFlags::from_bits_retain(newflags.bits() >> 4);
            if !(newflags & !may & VM_ACCESS).is_empty() {
                result = Err(Errno::EACCES);
                break;
            }
            tmp = vma.end.min(end);
            match self.mprotect_fixup(&mut vma, nstart, tmp, newflags) {
                Ok(holder_end) => {
                    tmp = holder_end;
                    nstart = tmp;
                }
                Err(e) => {
                    result = Err(e);
                    break;
                }
            }
            if tmp >= end {
                break;
            }
            cur = self.vmas.find_next(tmp).map(|v| Piece::of(v, newprot));
        }
        if result.is_ok() && tmp < end {
            result = Err(Errno::ENOMEM);
        }
        self.after_change();
        result
    }

    /// `mprotect_fixup()`: give `[start, end)` of `vma` the flags `newflags`, with Linux's
    /// VM_ACCOUNT rules: a private mapping made writable is charged (and gains VM_ACCOUNT)
    /// unless it already was, was writable, shared, or NORESERVE; an anonymous mapping made
    /// read-only before it ever had an anon_vma loses VM_ACCOUNT. Returns the end of the VMA
    /// that now holds `start` (`vma_iter_end()`).
    fn mprotect_fixup(
        &mut self,
        vma: &mut Piece,
        start: u64,
        end: u64,
        mut newflags: VmFlags,
    ) -> Result<u64, Errno> {
        let oldflags = vma.flags;
        let nrpages = (end - start) >> PAGE_SHIFT;
        if newflags == oldflags {
            return Ok(vma.end);
        }
        if newflags.contains(VmFlags::WRITE) {
            if !self.may_expand_vm(newflags, nrpages) && self.may_expand_vm(oldflags, nrpages) {
                return Err(Errno::ENOMEM);
            }
            if !oldflags.intersects(
                VmFlags::ACCOUNT
                    | VmFlags::WRITE
                    | VmFlags::HUGETLB
                    | VmFlags::SHARED
                    | VmFlags::NORESERVE,
            ) {
                if !self.vm_enough_memory(nrpages) {
                    return Err(Errno::ENOMEM);
                }
                newflags |= VmFlags::ACCOUNT;
            }
        } else if oldflags.contains(VmFlags::ACCOUNT) && vma.anonymous && !vma.has_anon_vma {
            newflags.remove(VmFlags::ACCOUNT);
        }
        let set = &mut |v: &mut Vma| v.flags = newflags;
        let (_, holder_end) = match vma.copy.take() {
            Some(copy) => self.vma_modify_range_of(copy, start, end, set)?,
            None => self.vma_modify_range(vma.start, start, end, set)?,
        };
        self.change_pte_protection(start, end, newflags);
        // A private locked VMA becoming writable is populated with write faults.
        if oldflags & (VmFlags::WRITE | VmFlags::SHARED | VmFlags::LOCKED) == VmFlags::LOCKED
            && newflags.contains(VmFlags::WRITE)
        {
            self.populate_range(start, end);
        }
        Ok(holder_end)
    }
}
