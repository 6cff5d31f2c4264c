//! The software MMU: translates a virtual address by walking page-table bytes in
//! [`PhysMemory`], as the hardware page walker (or, on LoongArch, the TLB-refill handler)
//! would.
//!
//! Written from the architecture manuals, independently of `mmkit::paging`'s encoders and
//! decoders, so that it checks them: every bit it tests is a constant defined again in the
//! per-format module with its manual section. Software-defined bits (COW, PROT_NONE) are
//! invisible to the hardware and ignored here, except on LoongArch, whose Linux TLB handlers
//! read the software `P`/`W` bits.
//!
//! Common model choices (one per format would not make the check stronger):
//!
//! * Kernel-mode data accesses to user pages are allowed, as inside Linux's `copy_*_user()`
//!   (x86 SMAP with `EFLAGS.AC`, RISC-V `sstatus.SUM`, Arm PAN cleared); kernel-mode
//!   instruction fetches from user pages fault (SMEP, RISC-V, Arm implicit PXN). Kernel
//!   writes honour write protection (x86 `CR0.WP = 1`, as Linux sets it).
//! * Accessed/dirty bits are set atomically by compare-exchange on the entry, after the
//!   permission check passed, as the hardware's locked update does; a lost race re-reads the
//!   entry. [`MmuConfig::hw_access_dirty`] selects hardware updates (x86 always; RISC-V
//!   Svadu; AArch64 FEAT_HAFDBS with `TCR_EL1.HA/HD`) or faults (RISC-V Svade; AArch64
//!   without HAFDBS: access-flag faults and permission faults on clean writable pages).
//!   LoongArch has no hardware A/D: Linux's `handle_tlb_load/store/modify` fast paths set
//!   `V`/`D`/`M` in software; the walker models those handlers.

mod aarch64;
mod loongarch;
mod riscv;
mod x86;

use std::sync::atomic::{AtomicU64, Ordering};

use mmkit::{PhysAddr, VirtAddr};

use crate::phys::PhysMemory;

/// The page-table format a machine's MMU walks.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum ArchKind {
    /// x86-64 4-level paging (`mmkit::paging::X86_64`).
    #[default]
    X86_64,
    /// x86-64 5-level paging, CR4.LA57 (`X86_64La57`).
    X86_64La57,
    /// RISC-V Sv39 with Svpbmt (`Sv39`).
    Sv39,
    /// RISC-V Sv48 with Svpbmt (`Sv48`).
    Sv48,
    /// RISC-V Sv57 with Svpbmt (`Sv57`).
    Sv57,
    /// AArch64 4 KiB granule, 48-bit, TTBR0 (`Aarch64`).
    Aarch64,
    /// LoongArch64 4-level, 4 KiB pages (`LoongArch64`).
    LoongArch64,
}

impl ArchKind {
    /// Every format.
    pub const ALL: [ArchKind; 7] = [
        ArchKind::X86_64,
        ArchKind::X86_64La57,
        ArchKind::Sv39,
        ArchKind::Sv48,
        ArchKind::Sv57,
        ArchKind::Aarch64,
        ArchKind::LoongArch64,
    ];

    /// Number of translation levels.
    pub const fn levels(self) -> usize {
        match self {
            ArchKind::Sv39 => 3,
            ArchKind::X86_64La57 | ArchKind::Sv57 => 5,
            _ => 4,
        }
    }

    /// Translated virtual-address bits.
    pub const fn va_bits(self) -> u32 {
        12 + 9 * self.levels() as u32
    }

    /// Short name.
    pub const fn name(self) -> &'static str {
        match self {
            ArchKind::X86_64 => "x86_64",
            ArchKind::X86_64La57 => "x86_64-la57",
            ArchKind::Sv39 => "sv39",
            ArchKind::Sv48 => "sv48",
            ArchKind::Sv57 => "sv57",
            ArchKind::Aarch64 => "aarch64",
            ArchKind::LoongArch64 => "loongarch64",
        }
    }
}

/// What an access does.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum AccessKind {
    /// Data load.
    Read,
    /// Data store.
    Write,
    /// Instruction fetch.
    Execute,
}

impl AccessKind {
    const fn bit(self) -> u8 {
        match self {
            AccessKind::Read => Perm::R,
            AccessKind::Write => Perm::W,
            AccessKind::Execute => Perm::X,
        }
    }
}

/// The privilege an access is made with.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum Privilege {
    /// User mode (CPL 3, U-mode, EL0, PLV3).
    #[default]
    User,
    /// Kernel mode (CPL 0, S-mode, EL1, PLV0).
    Kernel,
}

/// Why a translation failed, as the hardware reports it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum FaultKind {
    /// No valid entry (x86 error code P = 0; Arm translation fault; RISC-V V = 0;
    /// LoongArch `_PAGE_PRESENT` clear). A present-but-`PROT_NONE` leaf is invalid to the
    /// hardware and faults this way, as on Linux.
    NotPresent,
    /// A valid leaf that does not grant the access (x86 P = 1; Arm permission fault;
    /// LoongArch PNR/PNX/PPI/PME).
    Protection,
    /// The accessed (or, RISC-V Svade, dirty) bit is clear and hardware updates are off
    /// ([`MmuConfig::hw_access_dirty`] false): Arm access-flag fault, RISC-V Svade fault.
    AccessFlag,
    /// The address is outside the format's virtual range (x86 #GP, RISC-V and Arm level-0
    /// translation fault, LoongArch ADE).
    NonCanonical,
    /// An entry with a reserved encoding (x86 RSVD, misaligned RISC-V superpage, Arm
    /// address-size fault).
    Reserved,
    /// A table pointer leads outside physical memory (a machine check).
    Bus,
}

/// A failed translation: what the core's fault handler is called with.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Fault {
    /// The faulting virtual address (x86 CR2, `stval`, `FAR_EL1`, `BADV`).
    pub va: VirtAddr,
    /// The access.
    pub access: AccessKind,
    /// Its privilege.
    pub privilege: Privilege,
    /// Why.
    pub kind: FaultKind,
    /// The level (mmkit numbering, 0 = last) of the entry that caused it, when known.
    pub level: Option<usize>,
}

/// Permission bit sets, as the TLB caches them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub struct Perm(pub u8);

impl Perm {
    /// Readable.
    pub const R: u8 = 1;
    /// Writable.
    pub const W: u8 = 2;
    /// Executable.
    pub const X: u8 = 4;

    /// True if `kind` is allowed.
    pub const fn allows(self, kind: AccessKind) -> bool {
        self.0 & kind.bit() != 0
    }
}

/// A successful walk: everything a TLB entry caches.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Walk {
    /// Physical address of the accessed byte.
    pub pa: PhysAddr,
    /// Size of the leaf that mapped it (4 KiB, 2 MiB, 1 GiB, or more on RISC-V).
    pub leaf_size: u64,
    /// Effective permissions in user mode (combined over all levels).
    pub user: Perm,
    /// Effective permissions in kernel mode.
    pub kernel: Perm,
    /// The leaf is dirty: writes may proceed without another walk (x86 D, Arm `AP[2] = 0`,
    /// RISC-V D, LoongArch D).
    pub dirty: bool,
    /// The translation is global (matches every ASID).
    pub global: bool,
}

impl Walk {
    /// The permissions for `p`.
    pub const fn perms(&self, p: Privilege) -> Perm {
        match p {
            Privilege::User => self.user,
            Privilege::Kernel => self.kernel,
        }
    }
}

/// MMU features.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct MmuConfig {
    /// Hardware sets accessed/dirty bits (default true). See the module documentation.
    pub hw_access_dirty: bool,
}

impl Default for MmuConfig {
    fn default() -> Self {
        MmuConfig { hw_access_dirty: true }
    }
}

/// Why a walk stopped: the kind and level, completed into a [`Fault`] by [`translate`].
pub(crate) type Stop = (FaultKind, Option<usize>);

/// Mask of bits `[lo, hi)`.
pub(crate) const fn bits(lo: u32, hi: u32) -> u64 {
    ((1u64 << hi) - 1) & !((1u64 << lo) - 1)
}

/// Index of `va` in a table at `level`.
pub(crate) const fn index(va: u64, level: usize) -> u64 {
    (va >> (12 + 9 * level as u32)) & 511
}

/// True if `va` is sign-extended from bit `va_bits - 1`.
pub(crate) const fn sign_extended(va: u64, va_bits: u32) -> bool {
    let top = (va as i64) >> (va_bits - 1);
    top == 0 || top == -1
}

/// The entry at index `idx` of the table at `table`, or a bus error.
pub(crate) fn entry_at(
    phys: &PhysMemory,
    table: u64,
    idx: u64,
    level: usize,
) -> Result<&AtomicU64, Stop> {
    phys.entry(PhysAddr(table.wrapping_add(idx * 8))).ok_or((FaultKind::Bus, Some(level)))
}

/// Atomically replaces `old` by `new`; false if the entry changed meanwhile (the walker
/// then re-reads it, as the hardware's locked read-modify-write would see the new value).
pub(crate) fn cas(e: &AtomicU64, old: u64, new: u64) -> bool {
    old == new || e.compare_exchange(old, new, Ordering::AcqRel, Ordering::Acquire).is_ok()
}

/// Translates `va` for `access` with privilege `privilege` by walking the tables rooted at
/// `root` (the physical address in CR3 / `satp` / `TTBR0_EL1` / `PGDL`), setting accessed and
/// dirty bits as the hardware would. No TLB is involved.
pub fn translate(
    arch: ArchKind,
    cfg: MmuConfig,
    phys: &PhysMemory,
    root: PhysAddr,
    va: VirtAddr,
    access: AccessKind,
    privilege: Privilege,
) -> Result<Walk, Fault> {
    let req = Request { va: va.0, access, privilege, hw_ad: cfg.hw_access_dirty };
    let r = match arch {
        ArchKind::X86_64 => x86::walk(4, phys, root.0, &req),
        ArchKind::X86_64La57 => x86::walk(5, phys, root.0, &req),
        ArchKind::Sv39 => riscv::walk(3, phys, root.0, &req),
        ArchKind::Sv48 => riscv::walk(4, phys, root.0, &req),
        ArchKind::Sv57 => riscv::walk(5, phys, root.0, &req),
        ArchKind::Aarch64 => aarch64::walk(phys, root.0, &req),
        ArchKind::LoongArch64 => loongarch::walk(phys, root.0, &req),
    };
    r.map_err(|(kind, level)| Fault { va, access, privilege, kind, level })
}

/// One translation request.
pub(crate) struct Request {
    pub va: u64,
    pub access: AccessKind,
    pub privilege: Privilege,
    pub hw_ad: bool,
}

impl Request {
    pub(crate) fn write(&self) -> bool {
        self.access == AccessKind::Write
    }
    /// `Protection` unless `walk` grants the access.
    pub(crate) fn check(&self, user: Perm, kernel: Perm, level: usize) -> Result<(), Stop> {
        let p = match self.privilege {
            Privilege::User => user,
            Privilege::Kernel => kernel,
        };
        if p.allows(self.access) {
            Ok(())
        } else {
            Err((FaultKind::Protection, Some(level)))
        }
    }
    /// Builds the result for a leaf of `level` whose frame starts at `base`.
    pub(crate) fn done(&self, base: u64, level: usize, user: Perm, kernel: Perm) -> Walk {
        let size = 1u64 << (12 + 9 * level as u32);
        Walk {
            pa: PhysAddr(base + (self.va & (size - 1))),
            leaf_size: size,
            user,
            kernel,
            dirty: false,
            global: false,
        }
    }
}
