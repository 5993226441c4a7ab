//! The Linux `_IOC` request-number encoding and the helpers that move ioctl argument structs
//! in and out of raw argument bytes.
//!
//! A request number packs direction, argument size, type and number:
//! `dir << 30 | size << 16 | type << 8 | nr` (`include/uapi/asm-generic/ioctl.h`: 8 bits nr,
//! 8 bits type, 14 bits size, 2 bits direction; write = 1, read = 2).
//!
//! ## Argument bytes
//!
//! [`crate::Driver::ioctl`] takes the argument as `&mut [u8]`. Many amdgpu arguments are C
//! unions of an input and an output struct; pm4rt never models them as Rust unions. Instead:
//!
//! - a caller builds the input struct and calls [`arg_for`] to get a zero-padded byte buffer of
//!   the size encoded in the request number;
//! - after the call it reads the output struct with [`decode_arg`];
//! - an emulated device reads the input with [`decode_arg`] (or [`decode_arg_zext`] to accept
//!   a shorter, older struct the way the kernel does) and answers with [`write_arg`], which
//!   zero-fills the whole argument first, exactly like the kernel's `memset(args, 0, ...)`.
//!
//! Every struct passed through these helpers is `bytemuck::Pod` (no implicit padding), so no
//! uninitialised byte is ever exposed.

use bytemuck::Pod;

/// No data transfer (`_IOC_NONE`).
pub const IOC_NONE: u32 = 0;
/// Userspace writes the argument to the kernel (`_IOC_WRITE`).
pub const IOC_WRITE: u32 = 1;
/// The kernel writes the argument back to userspace (`_IOC_READ`).
pub const IOC_READ: u32 = 2;

const IOC_NRSHIFT: u32 = 0;
const IOC_TYPESHIFT: u32 = 8;
const IOC_SIZESHIFT: u32 = 16;
const IOC_DIRSHIFT: u32 = 30;
const IOC_SIZEMASK: u32 = (1 << 14) - 1;

/// Encode a request number (`_IOC(dir, type, nr, size)`). Panics at compile time (the
/// functions are used in `const` items) when `size` does not fit the 14-bit field.
pub const fn ioc(dir: u32, ty: u8, nr: u8, size: usize) -> u32 {
    assert!(size <= IOC_SIZEMASK as usize, "ioctl argument too large for _IOC");
    (dir << IOC_DIRSHIFT)
        | ((size as u32) << IOC_SIZESHIFT)
        | ((ty as u32) << IOC_TYPESHIFT)
        | ((nr as u32) << IOC_NRSHIFT)
}

/// `_IO(type, nr)`: no argument.
pub const fn io(ty: u8, nr: u8) -> u32 {
    ioc(IOC_NONE, ty, nr, 0)
}

/// `_IOR(type, nr, T)`: the kernel writes a `size`-byte argument.
pub const fn ior(ty: u8, nr: u8, size: usize) -> u32 {
    ioc(IOC_READ, ty, nr, size)
}

/// `_IOW(type, nr, T)`: userspace passes a `size`-byte argument.
pub const fn iow(ty: u8, nr: u8, size: usize) -> u32 {
    ioc(IOC_WRITE, ty, nr, size)
}

/// `_IOWR(type, nr, T)`: the argument goes in and comes back.
pub const fn iowr(ty: u8, nr: u8, size: usize) -> u32 {
    ioc(IOC_READ | IOC_WRITE, ty, nr, size)
}

/// The argument size encoded in a request number (`_IOC_SIZE`).
pub const fn ioc_size(request: u32) -> usize {
    ((request >> IOC_SIZESHIFT) & IOC_SIZEMASK) as usize
}

/// The command number encoded in a request number (`_IOC_NR`).
pub const fn ioc_nr(request: u32) -> u8 {
    (request >> IOC_NRSHIFT) as u8
}

/// The type byte encoded in a request number (`_IOC_TYPE`, e.g. `b'd'` or `b'K'`).
pub const fn ioc_type(request: u32) -> u8 {
    (request >> IOC_TYPESHIFT) as u8
}

/// The direction bits encoded in a request number (`_IOC_DIR`).
pub const fn ioc_dir(request: u32) -> u32 {
    request >> IOC_DIRSHIFT
}

/// One entry of an ioctl table: its C macro name, request number and argument size.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IoctlDef {
    /// The C macro name, e.g. `"DRM_IOCTL_AMDGPU_GEM_CREATE"`.
    pub name: &'static str,
    /// The full request number.
    pub request: u32,
}

impl IoctlDef {
    /// The argument size in bytes (from the request number).
    pub const fn size(&self) -> usize {
        ioc_size(self.request)
    }
}

/// Look up an ioctl by request number in `table`, or by type and nr when the size differs
/// (the kernel dispatches on nr and zero-extends or truncates the size).
pub fn find_by_nr(table: &[IoctlDef], request: u32) -> Option<&IoctlDef> {
    table.iter().find(|d| d.request == request).or_else(|| {
        table.iter().find(|d| {
            ioc_type(d.request) == ioc_type(request) && ioc_nr(d.request) == ioc_nr(request)
        })
    })
}

/// Why argument bytes could not be decoded into or encoded from a struct.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ArgError {
    /// The argument buffer is shorter than the struct.
    #[error("ioctl argument for {what} is {got} bytes, needs {need}")]
    TooShort {
        /// The Rust type name of the struct.
        what: &'static str,
        /// Bytes needed.
        need: usize,
        /// Bytes available.
        got: usize,
    },
}

/// Bytes for an ioctl argument: `input` followed by zeros up to the size encoded in
/// `request` (the size of the C union, which may exceed the input struct). The buffer is
/// never shorter than `T`.
pub fn arg_for<T: Pod>(request: u32, input: &T) -> Vec<u8> {
    let bytes = bytemuck::bytes_of(input);
    let mut out = vec![0u8; ioc_size(request).max(bytes.len())];
    out[..bytes.len()].copy_from_slice(bytes);
    out
}

/// Read a `T` from the first `size_of::<T>()` bytes of `arg` (no alignment needed).
///
/// # Errors
/// [`ArgError::TooShort`] when `arg` is shorter than `T`.
pub fn decode_arg<T: Pod>(arg: &[u8]) -> Result<T, ArgError> {
    let need = std::mem::size_of::<T>();
    if arg.len() < need {
        return Err(ArgError::TooShort { what: std::any::type_name::<T>(), need, got: arg.len() });
    }
    Ok(bytemuck::pod_read_unaligned(&arg[..need]))
}

/// Read a `T` from `arg`, zero-extending a shorter argument (the kernel's behaviour for an
/// older, smaller struct: e.g. the 88-byte KFD `CREATE_QUEUE` or the 40-byte `GEM_VA`).
/// Bytes beyond `size_of::<T>()` are ignored.
pub fn decode_arg_zext<T: Pod>(arg: &[u8]) -> T {
    let mut v = T::zeroed();
    let dst = bytemuck::bytes_of_mut(&mut v);
    let n = dst.len().min(arg.len());
    dst[..n].copy_from_slice(&arg[..n]);
    v
}

/// Answer an ioctl: zero the whole `arg`, then store `value` at its start (how the kernel
/// fills the output half of an in/out union).
///
/// # Errors
/// [`ArgError::TooShort`] when `arg` is shorter than `T` (nothing is written then).
pub fn write_arg<T: Pod>(arg: &mut [u8], value: &T) -> Result<(), ArgError> {
    let bytes = bytemuck::bytes_of(value);
    if arg.len() < bytes.len() {
        return Err(ArgError::TooShort {
            what: std::any::type_name::<T>(),
            need: bytes.len(),
            got: arg.len(),
        });
    }
    arg.fill(0);
    arg[..bytes.len()].copy_from_slice(bytes);
    Ok(())
}

/// Store `value` at the start of `arg` without touching the rest (for in/out structs that
/// are not unions, where the kernel updates some fields and keeps the others).
///
/// # Errors
/// [`ArgError::TooShort`] when `arg` is shorter than `T`.
pub fn update_arg<T: Pod>(arg: &mut [u8], value: &T) -> Result<(), ArgError> {
    let bytes = bytemuck::bytes_of(value);
    if arg.len() < bytes.len() {
        return Err(ArgError::TooShort {
            what: std::any::type_name::<T>(),
            need: bytes.len(),
            got: arg.len(),
        });
    }
    arg[..bytes.len()].copy_from_slice(bytes);
    Ok(())
}

/// The bytes of a slice of Pod structs (for `user` buffers: chunk arrays, BO lists, ...).
pub fn slice_bytes<T: Pod>(items: &[T]) -> &[u8] {
    bytemuck::cast_slice(items)
}

/// Decode `count` consecutive `T`s from `bytes` (no alignment needed).
///
/// # Errors
/// [`ArgError::TooShort`] when `bytes` holds fewer than `count` items.
pub fn decode_array<T: Pod>(bytes: &[u8], count: usize) -> Result<Vec<T>, ArgError> {
    let size = std::mem::size_of::<T>();
    let need = size.saturating_mul(count);
    if bytes.len() < need {
        return Err(ArgError::TooShort {
            what: std::any::type_name::<T>(),
            need,
            got: bytes.len(),
        });
    }
    Ok(bytes[..need]
        .chunks_exact(size.max(1))
        .take(count)
        .map(bytemuck::pod_read_unaligned)
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    // Golden numbers: the values of the DRM_IOCTL_AMDGPU_* / AMDKFD_IOC_* macros of
    // include/uapi/drm/amdgpu_drm.h and include/uapi/linux/kfd_ioctl.h, computed by a C compiler.
    #[test]
    fn encoding_matches_reference_numbers() {
        assert_eq!(iowr(b'd', 0x40, 32), 0xC020_6440);
        assert_eq!(iow(b'd', 0x48, 64), 0x4040_6448);
        assert_eq!(ior(b'K', 0x01, 8), 0x8008_4B01);
        assert_eq!(io(b'K', 0x01), 0x0000_4B01);
        assert_eq!(ioc_size(0xC060_4B02), 96);
        assert_eq!(ioc_nr(0xC060_4B02), 0x02);
        assert_eq!(ioc_type(0xC060_4B02), b'K');
        assert_eq!(ioc_dir(0xC060_4B02), IOC_READ | IOC_WRITE);
    }

    #[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
    #[repr(C)]
    struct Pair {
        a: u32,
        b: u32,
    }

    #[test]
    fn arg_round_trip_and_errors() {
        let arg = arg_for(0xC010_6442, &Pair { a: 1, b: 2 });
        assert_eq!(arg.len(), 16);
        assert_eq!(&arg[..8], &[1, 0, 0, 0, 2, 0, 0, 0]);
        assert!(arg[8..].iter().all(|&b| b == 0));
        let p: Pair = decode_arg(&arg).unwrap();
        assert_eq!((p.a, p.b), (1, 2));
        assert!(matches!(
            decode_arg::<Pair>(&arg[..7]),
            Err(ArgError::TooShort { need: 8, got: 7, .. })
        ));
        let z: Pair = decode_arg_zext(&arg[..4]);
        assert_eq!((z.a, z.b), (1, 0));
        let mut buf = vec![0xFFu8; 16];
        write_arg(&mut buf, &Pair { a: 7, b: 0 }).unwrap();
        assert_eq!(buf, [7, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
        let mut short = [0u8; 4];
        assert!(write_arg(&mut short, &Pair { a: 1, b: 1 }).is_err());
        assert_eq!(short, [0; 4]);
        let items = [Pair { a: 1, b: 2 }, Pair { a: 3, b: 4 }];
        let back: Vec<Pair> = decode_array(slice_bytes(&items), 2).unwrap();
        assert_eq!(back[1].b, 4);
        assert!(decode_array::<Pair>(slice_bytes(&items), 3).is_err());
    }

    #[test]
    fn find_by_nr_tolerates_size_change() {
        let table = [IoctlDef { name: "X", request: iow(b'd', 0x48, 64) }];
        assert_eq!(find_by_nr(&table, iow(b'd', 0x48, 40)).unwrap().name, "X");
        assert!(find_by_nr(&table, iow(b'd', 0x49, 40)).is_none());
    }
}
