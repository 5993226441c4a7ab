//! [`Errno`]: the typed `errno` of a failing system call, and the one table of the values the
//! amdgpu and KFD drivers return with their names.
//!
//! # References
//!
//! `include/uapi/asm-generic/errno-base.h`, `include/uapi/asm-generic/errno.h`, and
//! `include/linux/errno.h` for the kernel-internal `ENOTSUPP`.

use std::fmt;

/// A positive `errno` value returned by a failing system call.
///
/// The named values (and their names, [`Errno::name`]) come from one table: the errnos the
/// amdgpu and KFD drivers return (`include/uapi/asm-generic/errno-base.h`,
/// `include/uapi/asm-generic/errno.h`, and `include/linux/errno.h` for the kernel-internal
/// `ENOTSUPP`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Errno(pub i32);

/// Declares the named [`Errno`] constants and the name table from one list.
macro_rules! errnos {
    ($($(#[$doc:meta])* $name:ident = $value:literal,)*) => {
        impl Errno {
            $($(#[$doc])* pub const $name: Errno = Errno($value);)*

            /// Every named errno, with its symbolic name.
            pub const TABLE: &'static [(Errno, &'static str)] =
                &[$((Errno::$name, stringify!($name)),)*];
        }
    };
}

errnos! {
    /// Operation not permitted.
    EPERM = 1,
    /// No such file or directory.
    ENOENT = 2,
    /// Interrupted system call (retried by the Linux driver).
    EINTR = 4,
    /// I/O error.
    EIO = 5,
    /// Bad file descriptor.
    EBADF = 9,
    /// Try again (retried by the Linux driver).
    EAGAIN = 11,
    /// Out of memory.
    ENOMEM = 12,
    /// Permission denied.
    EACCES = 13,
    /// Bad address (a user pointer the kernel cannot read).
    EFAULT = 14,
    /// Device or resource busy.
    EBUSY = 16,
    /// File exists.
    EEXIST = 17,
    /// No such device.
    ENODEV = 19,
    /// Not a directory.
    ENOTDIR = 20,
    /// Invalid argument.
    EINVAL = 22,
    /// Too many open files.
    EMFILE = 24,
    /// Inappropriate ioctl for device.
    ENOTTY = 25,
    /// No space left.
    ENOSPC = 28,
    /// Timer expired.
    ETIME = 62,
    /// Operation not supported.
    EOPNOTSUPP = 95,
    /// Connection timed out.
    ETIMEDOUT = 110,
    /// Operation canceled (amdgpu: the context was reset or VRAM was lost).
    ECANCELED = 125,
    /// Kernel-internal "not supported" (amdgpu USERQ when no IP has user queues).
    ENOTSUPP = 524,
}

impl Errno {
    /// The symbolic name (`"EINVAL"`), or `"unknown errno"` for a value not in
    /// [`Errno::TABLE`].
    pub fn name(self) -> &'static str {
        Errno::TABLE.iter().find(|(e, _)| *e == self).map_or("unknown errno", |&(_, n)| n)
    }
}

impl std::error::Error for Errno {}

impl fmt::Display for Errno {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.name(), self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Values from `include/uapi/asm-generic/errno-base.h` / `errno.h` and
    /// `include/linux/errno.h` (ENOTSUPP), names as the headers spell them.
    #[test]
    fn errno_names_come_from_the_one_table() {
        assert_eq!(Errno(22).name(), "EINVAL");
        assert_eq!(Errno(62).name(), "ETIME");
        assert_eq!(Errno(125).name(), "ECANCELED");
        assert_eq!(Errno(524).name(), "ENOTSUPP");
        assert_eq!(Errno(3).name(), "unknown errno");
        assert_eq!(Errno::EFAULT.to_string(), "EFAULT (14)");
        for (i, (e, n)) in Errno::TABLE.iter().enumerate() {
            for (f, m) in &Errno::TABLE[i + 1..] {
                assert!(e != f && n != m, "{n} and {m} collide");
            }
        }
    }
}
