//! `Errno` with Linux's numbers and names (include/uapi/asm-generic/errno-base.h, errno.h).
//!
//! A newtype rather than an enum: Linux can hand back values that are not in any table (the
//! `MAP_FIXED` at `-4095` quirk returns errno 4095 through `IS_ERR_VALUE`), and a kernel must
//! be able to pass those through unchanged.

use core::fmt;

/// A Linux error number (positive, as in `errno`; the syscall ABI returns its negation).
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[repr(transparent)]
pub struct Errno(pub u16);

impl Errno {
    #[allow(missing_docs)]
    pub const EPERM: Errno = Errno(1);
    #[allow(missing_docs)]
    pub const ENOENT: Errno = Errno(2);
    #[allow(missing_docs)]
    pub const ESRCH: Errno = Errno(3);
    #[allow(missing_docs)]
    pub const EINTR: Errno = Errno(4);
    #[allow(missing_docs)]
    pub const EIO: Errno = Errno(5);
    #[allow(missing_docs)]
    pub const ENXIO: Errno = Errno(6);
    #[allow(missing_docs)]
    pub const E2BIG: Errno = Errno(7);
    #[allow(missing_docs)]
    pub const ENOEXEC: Errno = Errno(8);
    #[allow(missing_docs)]
    pub const EBADF: Errno = Errno(9);
    #[allow(missing_docs)]
    pub const ECHILD: Errno = Errno(10);
    #[allow(missing_docs)]
    pub const EAGAIN: Errno = Errno(11);
    #[allow(missing_docs)]
    pub const ENOMEM: Errno = Errno(12);
    #[allow(missing_docs)]
    pub const EACCES: Errno = Errno(13);
    #[allow(missing_docs)]
    pub const EFAULT: Errno = Errno(14);
    #[allow(missing_docs)]
    pub const ENOTBLK: Errno = Errno(15);
    #[allow(missing_docs)]
    pub const EBUSY: Errno = Errno(16);
    #[allow(missing_docs)]
    pub const EEXIST: Errno = Errno(17);
    #[allow(missing_docs)]
    pub const EXDEV: Errno = Errno(18);
    #[allow(missing_docs)]
    pub const ENODEV: Errno = Errno(19);
    #[allow(missing_docs)]
    pub const ENOTDIR: Errno = Errno(20);
    #[allow(missing_docs)]
    pub const EISDIR: Errno = Errno(21);
    #[allow(missing_docs)]
    pub const EINVAL: Errno = Errno(22);
    #[allow(missing_docs)]
    pub const ENFILE: Errno = Errno(23);
    #[allow(missing_docs)]
    pub const EMFILE: Errno = Errno(24);
    #[allow(missing_docs)]
    pub const ENOTTY: Errno = Errno(25);
    #[allow(missing_docs)]
    pub const ETXTBSY: Errno = Errno(26);
    #[allow(missing_docs)]
    pub const EFBIG: Errno = Errno(27);
    #[allow(missing_docs)]
    pub const ENOSPC: Errno = Errno(28);
    #[allow(missing_docs)]
    pub const ESPIPE: Errno = Errno(29);
    #[allow(missing_docs)]
    pub const EROFS: Errno = Errno(30);
    #[allow(missing_docs)]
    pub const EMLINK: Errno = Errno(31);
    #[allow(missing_docs)]
    pub const EPIPE: Errno = Errno(32);
    #[allow(missing_docs)]
    pub const EDOM: Errno = Errno(33);
    #[allow(missing_docs)]
    pub const ERANGE: Errno = Errno(34);
    #[allow(missing_docs)]
    pub const EDEADLK: Errno = Errno(35);
    #[allow(missing_docs)]
    pub const ENAMETOOLONG: Errno = Errno(36);
    #[allow(missing_docs)]
    pub const ENOLCK: Errno = Errno(37);
    #[allow(missing_docs)]
    pub const ENOSYS: Errno = Errno(38);
    #[allow(missing_docs)]
    pub const ENOTEMPTY: Errno = Errno(39);
    #[allow(missing_docs)]
    pub const ELOOP: Errno = Errno(40);
    #[allow(missing_docs)]
    pub const ENOMSG: Errno = Errno(42);
    #[allow(missing_docs)]
    pub const EIDRM: Errno = Errno(43);
    #[allow(missing_docs)]
    pub const ENODATA: Errno = Errno(61);
    #[allow(missing_docs)]
    pub const EOVERFLOW: Errno = Errno(75);
    #[allow(missing_docs)]
    pub const EBADFD: Errno = Errno(77);
    #[allow(missing_docs)]
    pub const EOPNOTSUPP: Errno = Errno(95);
    #[allow(missing_docs)]
    pub const EHWPOISON: Errno = Errno(133);

    /// The number, as user space sees it in `errno`.
    #[inline]
    pub const fn raw(self) -> i32 {
        self.0 as i32
    }

    /// The value a syscall returns for this error (`-errno`, as a `u64` register).
    #[inline]
    pub const fn as_syscall_return(self) -> u64 {
        (-(self.0 as i64)) as u64
    }

    /// Decodes a raw syscall return: `Err` for `-4095..=-1`, as `IS_ERR_VALUE` does.
    #[inline]
    pub const fn from_syscall_return(ret: u64) -> Result<u64, Errno> {
        if ret >= (-4095i64) as u64 {
            Err(Errno((ret as i64).unsigned_abs() as u16))
        } else {
            Ok(ret)
        }
    }

    /// The symbolic name (`"ENOMEM"`), or `None` for a number without one.
    pub const fn name(self) -> Option<&'static str> {
        Some(match self.0 {
            1 => "EPERM",
            2 => "ENOENT",
            3 => "ESRCH",
            4 => "EINTR",
            5 => "EIO",
            6 => "ENXIO",
            7 => "E2BIG",
            8 => "ENOEXEC",
            9 => "EBADF",
            10 => "ECHILD",
            11 => "EAGAIN",
            12 => "ENOMEM",
            13 => "EACCES",
            14 => "EFAULT",
            15 => "ENOTBLK",
            16 => "EBUSY",
            17 => "EEXIST",
            18 => "EXDEV",
            19 => "ENODEV",
            20 => "ENOTDIR",
            21 => "EISDIR",
            22 => "EINVAL",
            23 => "ENFILE",
            24 => "EMFILE",
            25 => "ENOTTY",
            26 => "ETXTBSY",
            27 => "EFBIG",
            28 => "ENOSPC",
            29 => "ESPIPE",
            30 => "EROFS",
            31 => "EMLINK",
            32 => "EPIPE",
            33 => "EDOM",
            34 => "ERANGE",
            35 => "EDEADLK",
            36 => "ENAMETOOLONG",
            37 => "ENOLCK",
            38 => "ENOSYS",
            39 => "ENOTEMPTY",
            40 => "ELOOP",
            42 => "ENOMSG",
            43 => "EIDRM",
            61 => "ENODATA",
            75 => "EOVERFLOW",
            77 => "EBADFD",
            95 => "EOPNOTSUPP",
            133 => "EHWPOISON",
            _ => return None,
        })
    }

    /// Looks a symbolic name up (`"ENOMEM"` → `Errno::ENOMEM`).
    pub fn from_name(name: &str) -> Option<Errno> {
        (1..4096u16).map(Errno).find(|e| e.name() == Some(name))
    }
}

impl fmt::Debug for Errno {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.name() {
            Some(n) => f.write_str(n),
            None => write!(f, "Errno({})", self.0),
        }
    }
}

impl fmt::Display for Errno {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_and_names() {
        assert_eq!(Errno::ENOMEM.raw(), 12);
        assert_eq!(Errno::EOPNOTSUPP.name(), Some("EOPNOTSUPP"));
        assert_eq!(Errno::from_name("EEXIST"), Some(Errno::EEXIST));
        assert_eq!(
            Errno::from_syscall_return(Errno::EINVAL.as_syscall_return()),
            Err(Errno::EINVAL)
        );
        assert_eq!(Errno::from_syscall_return(0x7fff_0000), Ok(0x7fff_0000));
        assert_eq!(
            Errno::from_syscall_return(1u64.wrapping_neg().wrapping_mul(4095)),
            Err(Errno(4095))
        );
    }
}
