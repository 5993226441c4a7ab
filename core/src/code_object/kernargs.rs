//! Building a kernel's kernarg segment for a launch: the explicit arguments the caller passes,
//! checked against the metadata (count, kind, size), and the hidden arguments filled from the
//! launch geometry (see [`super::hidden`]).
//!
//! Facts (AMDGPUUsage.rst, "Code Object V3 Metadata" / "Code Object V5 Metadata", kernel
//! argument map): each `.args[]` entry has `.offset` and `.size` in the kernarg segment and a
//! `.value_kind`; `global_buffer` is a 64-bit global pointer, `by_value` the argument's bytes;
//! the segment is `.kernarg_segment_size` bytes. Bytes no argument covers are zero, as ROCm's
//! runtime leaves them (`ROCm/clr` `rocclr/device/rocm/rocvirtual.cpp`:
//! `VirtualGPU::submitKernelInternal` clears the hidden block before filling it).

use thiserror::Error;

use super::hidden::{classify, unsupported_reason, Hidden, LaunchGeometry};
use super::{Kernel, ValueKind};

/// One explicit argument value for a launch.
#[derive(Debug, Clone, PartialEq)]
pub enum ArgValue {
    /// A global buffer: its GPU virtual address (`global_buffer`, 8 bytes).
    Pointer(u64),
    /// A 32-bit unsigned scalar (`by_value`, 4 bytes).
    U32(u32),
    /// A 32-bit signed scalar (`by_value`, 4 bytes).
    I32(i32),
    /// A 64-bit unsigned scalar (`by_value`, 8 bytes).
    U64(u64),
    /// A 32-bit float (`by_value`, 4 bytes).
    F32(f32),
    /// Raw bytes of a by-value struct (`by_value`, exactly the argument's size).
    Bytes(Vec<u8>),
}

impl ArgValue {
    /// The little-endian bytes written into the kernarg segment.
    pub fn bytes(&self) -> Vec<u8> {
        match self {
            ArgValue::Pointer(v) | ArgValue::U64(v) => v.to_le_bytes().to_vec(),
            ArgValue::U32(v) => v.to_le_bytes().to_vec(),
            ArgValue::I32(v) => v.to_le_bytes().to_vec(),
            ArgValue::F32(v) => v.to_le_bytes().to_vec(),
            ArgValue::Bytes(b) => b.clone(),
        }
    }

    /// A short name of the value's kind for error messages.
    pub fn kind_name(&self) -> &'static str {
        match self {
            ArgValue::Pointer(_) => "buffer",
            ArgValue::U32(_) => "u32",
            ArgValue::I32(_) => "i32",
            ArgValue::U64(_) => "u64",
            ArgValue::F32(_) => "f32",
            ArgValue::Bytes(_) => "bytes",
        }
    }
}

/// Why a launch's arguments were refused. Every variant names the kernel and, where there is
/// one, the argument (its metadata name, or its index when the metadata has none).
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum KernargError {
    /// The number of explicit values differs from the metadata's explicit arguments.
    #[error("kernel {kernel}: {expected} explicit arguments ({names}), {got} given")]
    WrongCount {
        /// The kernel.
        kernel: String,
        /// Explicit arguments in the metadata.
        expected: usize,
        /// Their names, comma separated.
        names: String,
        /// Values given.
        got: usize,
    },
    /// A value's kind does not match the argument's `.value_kind`.
    #[error("kernel {kernel}: argument {arg} is {expected} but a {got} was given")]
    WrongKind {
        /// The kernel.
        kernel: String,
        /// The argument (name or `#index`).
        arg: String,
        /// What the metadata declares.
        expected: String,
        /// What was given.
        got: &'static str,
    },
    /// A by-value argument's size differs from the value's.
    #[error(
        "kernel {kernel}: argument {arg} is {expected} bytes but a {got}-byte {kind} was given"
    )]
    WrongSize {
        /// The kernel.
        kernel: String,
        /// The argument (name or `#index`).
        arg: String,
        /// `.size` in the metadata.
        expected: u32,
        /// Bytes given.
        got: usize,
        /// The value's kind.
        kind: &'static str,
    },
    /// An argument kind pm4rt cannot pass (hidden service pointers, images, pipes, ...).
    #[error("kernel {kernel}: argument {arg}: cannot launch: {reason}")]
    Unsupported {
        /// The kernel.
        kernel: String,
        /// The argument (name, `#index` or the hidden kind).
        arg: String,
        /// Why.
        reason: String,
    },
    /// An argument lies outside the kernarg segment.
    #[error("kernel {kernel}: argument {arg} at {offset}+{size} exceeds the {segment}-byte kernarg segment")]
    OutOfSegment {
        /// The kernel.
        kernel: String,
        /// The argument.
        arg: String,
        /// Its `.offset`.
        offset: u32,
        /// Its `.size`.
        size: u32,
        /// The segment size.
        segment: u32,
    },
    /// The launch geometry is invalid.
    #[error("kernel {kernel}: bad launch geometry: {reason}")]
    Geometry {
        /// The kernel.
        kernel: String,
        /// What was wrong.
        reason: String,
    },
}

fn arg_label(index: usize, name: Option<&str>) -> String {
    match name {
        Some(n) => format!("#{index} {n}"),
        None => format!("#{index}"),
    }
}

impl Kernel {
    /// The explicit (non-hidden) arguments, in metadata order.
    pub fn explicit_args(&self) -> impl Iterator<Item = &super::KernArg> {
        self.args.iter().filter(|a| !matches!(a.value_kind, ValueKind::Hidden(_)))
    }

    /// The hidden arguments, in metadata order.
    pub fn hidden_args(&self) -> impl Iterator<Item = &super::KernArg> {
        self.args.iter().filter(|a| matches!(a.value_kind, ValueKind::Hidden(_)))
    }

    /// Why pm4rt cannot launch this kernel, if it cannot: the first argument whose kind it
    /// cannot fill (see [`super::hidden`]) or pass (anything but `global_buffer` / `by_value`).
    pub fn launch_blocker(&self) -> Option<KernargError> {
        for (i, a) in self.args.iter().enumerate() {
            let reason = match &a.value_kind {
                ValueKind::Hidden(kind) => unsupported_reason(kind, a.size),
                ValueKind::Other(kind) => Some(format!("argument kind {kind} is not supported")),
                ValueKind::GlobalBuffer | ValueKind::ByValue => None,
            };
            if let Some(reason) = reason {
                let arg = match &a.value_kind {
                    ValueKind::Hidden(kind) => kind.clone(),
                    _ => arg_label(i, a.name.as_deref()),
                };
                return Some(KernargError::Unsupported { kernel: self.name.clone(), arg, reason });
            }
        }
        None
    }

    /// Bytes of the kernarg segment: the larger of the metadata's `.kernarg_segment_size` and
    /// the descriptor's `kernarg_size`.
    pub fn kernarg_segment_size(&self) -> u32 {
        self.metadata.kernarg_segment_size.max(self.descriptor.kernarg_size)
    }

    /// The kernarg segment for a launch of `geometry` with explicit `values`: each value
    /// checked against its metadata argument (kind and size) and written at its `.offset`,
    /// each hidden argument filled from `geometry`, everything else zero.
    ///
    /// Errors: [`KernargError`] naming the kernel and the first offending argument.
    pub fn build_kernargs(
        &self,
        values: &[ArgValue],
        geometry: &LaunchGeometry,
    ) -> Result<Vec<u8>, KernargError> {
        geometry
            .check()
            .map_err(|reason| KernargError::Geometry { kernel: self.name.clone(), reason })?;
        if let Some(e) = self.launch_blocker() {
            return Err(e);
        }
        let explicit: Vec<_> = self.explicit_args().collect();
        if explicit.len() != values.len() {
            let names: Vec<String> =
                explicit.iter().enumerate().map(|(i, a)| arg_label(i, a.name.as_deref())).collect();
            return Err(KernargError::WrongCount {
                kernel: self.name.clone(),
                expected: explicit.len(),
                names: names.join(", "),
                got: values.len(),
            });
        }
        let segment = self.kernarg_segment_size();
        let mut out = vec![0u8; segment as usize];
        let mut put = |arg: String, offset: u32, size: u32, bytes: &[u8]| {
            let end = u64::from(offset) + u64::from(size);
            if end > u64::from(segment) {
                return Err(KernargError::OutOfSegment {
                    kernel: self.name.clone(),
                    arg,
                    offset,
                    size,
                    segment,
                });
            }
            out[offset as usize..end as usize].copy_from_slice(&bytes[..size as usize]);
            Ok(())
        };
        for (i, (a, v)) in explicit.iter().zip(values).enumerate() {
            let label = arg_label(i, a.name.as_deref());
            let bytes = v.bytes();
            match (&a.value_kind, v) {
                (ValueKind::GlobalBuffer, ArgValue::Pointer(_)) => {}
                (ValueKind::GlobalBuffer, _) => {
                    return Err(KernargError::WrongKind {
                        kernel: self.name.clone(),
                        arg: label,
                        expected: "a global buffer".into(),
                        got: v.kind_name(),
                    })
                }
                (ValueKind::ByValue, ArgValue::Pointer(_)) => {
                    return Err(KernargError::WrongKind {
                        kernel: self.name.clone(),
                        arg: label,
                        expected: format!("a {}-byte value", a.size),
                        got: v.kind_name(),
                    })
                }
                _ => {}
            }
            if bytes.len() != a.size as usize {
                return Err(KernargError::WrongSize {
                    kernel: self.name.clone(),
                    arg: label,
                    expected: a.size,
                    got: bytes.len(),
                    kind: v.kind_name(),
                });
            }
            put(label, a.offset, a.size, &bytes)?;
        }
        for a in self.hidden_args() {
            let ValueKind::Hidden(kind) = &a.value_kind else { continue };
            // launch_blocker() above accepted every hidden kind, so classify() succeeds.
            let value =
                classify(kind).and_then(|(h, _)| geometry.hidden_value(h)).unwrap_or_default();
            if let Some((Hidden::Remainder(_) | Hidden::GroupSize(_) | Hidden::GridDims, _)) =
                classify(kind)
            {
                if value > u64::from(u16::MAX) {
                    return Err(KernargError::Geometry {
                        kernel: self.name.clone(),
                        reason: format!("{kind} = {value} does not fit 16 bits"),
                    });
                }
            }
            let bytes = value.to_le_bytes();
            let n = (a.size as usize).min(8);
            let mut field = vec![0u8; a.size as usize];
            field[..n].copy_from_slice(&bytes[..n]);
            put(kind.clone(), a.offset, a.size, &field)?;
        }
        Ok(out)
    }
}
