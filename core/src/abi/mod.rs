//! Kernel ABI: the amdgpu DRM and KFD ioctl argument structs, request numbers and constants.
//!
//! Facts come from `include/uapi/drm/amdgpu_drm.h`, `include/uapi/drm/drm.h` and
//! `include/uapi/linux/kfd_ioctl.h` (upstream Linux), and from the kernel functions that
//! validate them (cited where a rule is used). Every struct is
//! `#[repr(C)]`, padding-free (explicit pad fields) and `bytemuck::Pod`, with compile-time size
//! and field-offset assertions next to it; `core/tests/abi_layout.rs` additionally compiles the
//! system C headers and compares every size, offset, constant and request number.
//!
//! ## Naming
//!
//! - Structs: the C name in CamelCase without the `drm_amdgpu_` / `kfd_ioctl_` prefix, in the
//!   module of its driver: `drm_amdgpu_gem_create_in` is [`drm::GemCreateIn`],
//!   `kfd_ioctl_create_queue_args` is [`kfd::CreateQueueArgs`]. Fields keep their C names
//!   (`_pad` becomes `pad`; a C field named `type` becomes `ip_type`).
//! - Constants and request numbers keep their exact C macro names
//!   (`drm::AMDGPU_GEM_DOMAIN_VRAM`, `drm::DRM_IOCTL_AMDGPU_GEM_CREATE`,
//!   `kfd::AMDKFD_IOC_CREATE_QUEUE`), so they can be grepped in the kernel.
//! - C unions of an input and an output struct are two structs (`...In` / `...Out`); the ioctl
//!   argument is a byte buffer, see [`ioctl`] for [`ioctl::arg_for`], [`ioctl::decode_arg`]
//!   and [`ioctl::write_arg`].

/// Assert at compile time the size of a struct and the offsets of its fields.
///
/// `assert_layout!(Type, size; field = offset, ...)`
macro_rules! assert_layout {
    ($ty:ty, $size:expr; $($field:ident = $off:expr),* $(,)?) => {
        const _: () = assert!(::core::mem::size_of::<$ty>() == $size);
        $( const _: () = assert!(::core::mem::offset_of!($ty, $field) == $off); )*
    };
}

/// Define request-number constants from a declarative table and assert each one against the
/// literal number from the reference; also emits a table of all of them.
macro_rules! ioctl_table {
    (
        $(#[$tm:meta])* $table:ident;
        $( $(#[$m:meta])* $name:ident = $ctor:ident($ty:expr, $nr:expr, $size:expr) == $lit:literal; )*
    ) => {
        $(
            $(#[$m])*
            pub const $name: u32 = $crate::abi::ioctl::$ctor($ty, $nr, $size);
            const _: () = assert!($name == $lit, concat!(stringify!($name), " does not match the reference number"));
        )*
        $(#[$tm])*
        pub const $table: &[$crate::abi::ioctl::IoctlDef] = &[
            $( $crate::abi::ioctl::IoctlDef { name: stringify!($name), request: $name }, )*
        ];
    };
}

pub mod drm;
pub mod ioctl;
pub mod kfd;

pub use ioctl::{arg_for, decode_arg, decode_arg_zext, write_arg, ArgError, IoctlDef};
