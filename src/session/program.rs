//! User code objects in a [`Session`]: load any compute code object for the device, look
//! kernels up by name, allocate byte buffers, and record launches in the same [`Batch`] as the
//! built-in operations.
//!
//! Contracts:
//! - [`Session::load_code_object`] checks the code object for the device's target and uploads
//!   its image; the returned [`Program`] lists the kernels. A [`UserKernel`] is a name and a
//!   copy of its metadata, checked again at every launch.
//! - [`Batch::launch`] takes the grid in workgroups (as `DISPATCH_DIRECT` counts them), the
//!   workgroup size (`None`: the kernel's `reqd_work_group_size`, an error when it has none),
//!   and one [`Arg`] per explicit argument; values are checked against the metadata (count,
//!   kind, size, and a buffer's size when the argument declares a pointee size) and hidden
//!   arguments filled from the geometry
//!   ([`pm4rt_core::code_object::kernargs`]). A kernel that reads the dispatch packet gets a
//!   64-byte `hsa_kernel_dispatch_packet_t` block after its kernarg segment.
//! - Code objects and buffers keep host copies (the code object's bytes; each buffer's last
//!   written or read contents) so that a demotion to another tier re-creates them and replays
//!   the failed batch, as for weights and vectors. With fallback enabled, the buffers a batch
//!   passed to a launch are read back after it (a launch may write any buffer it gets).

use std::sync::Arc;

use pm4rt_core::code_object::dispatch_packet::{
    dispatch_packet, DispatchPacketFields, DISPATCH_PACKET_SIZE,
};
use pm4rt_core::code_object::hidden::LaunchGeometry;
use pm4rt_core::code_object::kernargs::{ArgValue, KernargError};
use pm4rt_core::code_object::{CodeObject, KernArg, Kernel};
use pm4rt_core::launch::{DispatchInputs, Launch};
use pm4rt_core::BoDesc;

use super::{new_buf, Batch, Buf, Op, Res, Result, Session, SessionError};

/// A code object loaded into a [`Session`] by [`Session::load_code_object`].
#[derive(Debug, Clone)]
pub struct Program {
    id: u32,
    code: Arc<CodeObject>,
}

impl Program {
    /// The kernel named `name`.
    ///
    /// Errors: [`SessionError::UserCode`] (`NoSuchKernel`) when the code object has none.
    pub fn kernel(&self, name: &str) -> Result<UserKernel> {
        let k = self.code.kernel(name).map_err(SessionError::UserCode)?;
        Ok(UserKernel { program: self.id, kernel: Arc::new(k.clone()) })
    }

    /// Every kernel of the code object.
    pub fn kernels(&self) -> &[Kernel] {
        self.code.kernels()
    }
}

/// A kernel of a [`Program`], ready for [`Batch::launch`].
#[derive(Debug, Clone)]
pub struct UserKernel {
    program: u32,
    kernel: Arc<Kernel>,
}

impl UserKernel {
    /// The kernel's name.
    pub fn name(&self) -> &str {
        &self.kernel.name
    }

    /// Its explicit arguments, in order (what [`Batch::launch`] expects one [`Arg`] for).
    pub fn args(&self) -> Vec<&KernArg> {
        self.kernel.explicit_args().collect()
    }

    /// The loaded kernel (descriptor and metadata).
    pub fn kernel(&self) -> &Kernel {
        &self.kernel
    }
}

/// A device byte buffer created by [`Session::alloc_buffer`] (valid only for that session).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct BufferHandle(pub(super) u32);

/// One explicit argument of a [`Batch::launch`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Arg {
    /// A buffer (`global_buffer`): its device address.
    Buf(BufferHandle),
    /// A `u32` by value.
    U32(u32),
    /// An `i32` by value.
    I32(i32),
    /// A `u64` by value.
    U64(u64),
    /// An `f32` by value.
    F32(f32),
}

/// A loaded program: its bytes (for re-loading on another tier), parse and image.
#[derive(Debug)]
pub(super) struct LoadedProgram {
    bytes: Vec<u8>,
    code: Arc<CodeObject>,
    image: Buf,
}

/// A resident byte buffer and its host copy.
#[derive(Debug)]
pub(super) struct Buffer {
    buf: Buf,
    host: Vec<u8>,
}

/// A recorded launch of a user kernel.
#[derive(Debug, Clone)]
pub(super) struct UserOp {
    program: u32,
    kernel: Arc<Kernel>,
    geometry: LaunchGeometry,
    args: Vec<Arg>,
}

impl UserOp {
    /// Bytes of the kernarg arena this launch uses: its kernarg segment rounded up to 64,
    /// plus a dispatch packet block.
    pub(super) fn arena_bytes(&self) -> u64 {
        u64::from(self.kernel.kernarg_segment_size()).next_multiple_of(64)
            + DISPATCH_PACKET_SIZE as u64
    }
}

impl Session {
    /// Load a compute code object (ELF, code object v4/v5) for this session's device and
    /// upload its image.
    ///
    /// Errors: [`SessionError::UserCode`] when it does not parse or targets another GPU;
    /// [`SessionError::Core`] for allocation or upload failures.
    pub fn load_code_object(&mut self, bytes: &[u8]) -> Result<Program> {
        let code = Arc::new(CodeObject::load(bytes, self.gfx).map_err(SessionError::UserCode)?);
        // Whole pages: GEM_VA MAP refuses a size that is not page aligned (amdgpu_gem_va_ioctl).
        let len = (code.image().len() as u64).next_multiple_of(super::MIN_BO).max(super::MIN_BO);
        let image = new_buf(self.sub.as_mut(), BoDesc::code(len))?;
        if let Err(e) = self.sub.write_bo(image.bo, 0, code.image()) {
            let _ = self.sub.free_bo(image.bo);
            return Err(e.into());
        }
        let id = u32::try_from(self.programs.len()).map_err(|_| SessionError::BadDimension {
            what: "code objects",
            value: self.programs.len(),
            max: u64::from(u32::MAX),
        })?;
        self.programs.push(LoadedProgram { bytes: bytes.to_vec(), code: code.clone(), image });
        Ok(Program { id, code })
    }

    /// Allocate a zeroed device buffer of `bytes` bytes (at least 1).
    ///
    /// Errors: [`SessionError::BadDimension`] for 0 bytes; [`SessionError::HostMemory`];
    /// [`SessionError::Core`].
    pub fn alloc_buffer(&mut self, bytes: usize) -> Result<BufferHandle> {
        if bytes == 0 {
            return Err(SessionError::BadDimension {
                what: "buffer bytes",
                value: 0,
                max: u64::MAX,
            });
        }
        let mut host = Vec::new();
        host.try_reserve_exact(bytes)
            .map_err(|_| SessionError::HostMemory { what: "a buffer's host copy", bytes })?;
        host.resize(bytes, 0);
        let size = (bytes as u64).next_multiple_of(super::MIN_BO);
        let buf = new_buf(self.sub.as_mut(), BoDesc::gtt(size))?;
        let id = u32::try_from(self.buffers.len()).map_err(|_| SessionError::BadDimension {
            what: "buffers",
            value: self.buffers.len(),
            max: u64::from(u32::MAX),
        })?;
        self.sub.write_bo(buf.bo, 0, &host)?;
        self.buffers.push(Buffer { buf, host });
        Ok(BufferHandle(id))
    }

    /// Bytes of buffer `b`.
    ///
    /// Errors: [`SessionError::UnknownHandle`].
    pub fn buffer_len(&self, b: BufferHandle) -> Result<usize> {
        Ok(self.buffer(b)?.host.len())
    }

    /// Write `data` into buffer `b` at byte `offset`.
    ///
    /// Errors: [`SessionError::UnknownHandle`]; [`SessionError::Shape`] when it does not fit;
    /// [`SessionError::Core`].
    pub fn write_buffer(&mut self, b: BufferHandle, offset: usize, data: &[u8]) -> Result<()> {
        let len = self.buffer(b)?.host.len();
        let end =
            offset.checked_add(data.len()).filter(|&e| e <= len).ok_or(SessionError::Shape {
                op: "write_buffer",
                arg: "data",
                expected: len.saturating_sub(offset),
                got: data.len(),
            })?;
        let bo = self.buffer(b)?.buf.bo;
        self.sub.write_bo(bo, offset as u64, data)?;
        self.buffers[b.0 as usize].host[offset..end].copy_from_slice(data);
        Ok(())
    }

    /// Read all of buffer `b` from the device.
    ///
    /// Errors: [`SessionError::UnknownHandle`]; [`SessionError::Core`].
    pub fn read_buffer(&mut self, b: BufferHandle) -> Result<Vec<u8>> {
        let (bo, len) = {
            let x = self.buffer(b)?;
            (x.buf.bo, x.host.len())
        };
        let mut out = vec![0u8; len];
        self.sub.read_bo(bo, 0, &mut out)?;
        self.buffers[b.0 as usize].host.copy_from_slice(&out);
        Ok(out)
    }

    pub(super) fn buffer(&self, b: BufferHandle) -> Result<&Buffer> {
        self.buffers
            .get(b.0 as usize)
            .ok_or(SessionError::UnknownHandle { kind: "buffer", id: b.0 })
    }

    /// Re-create the code objects and buffers of `old` in this (fresh) session, same handles.
    pub(super) fn adopt_programs(&mut self, old: &Session) -> Result<()> {
        for p in &old.programs {
            self.load_code_object(&p.bytes)?;
        }
        for b in &old.buffers {
            let h = self.alloc_buffer(b.host.len())?;
            self.write_buffer(h, 0, &b.host)?;
        }
        Ok(())
    }

    /// Write the kernarg segment (and dispatch packet) of `op` at `arena[at..]` for a kernarg
    /// arena at `arena_va`, and emit its dispatch into `b`.
    pub(super) fn record_user(
        &self,
        op: &UserOp,
        arena: &mut [u8],
        at: usize,
        arena_va: u64,
        b: &mut pm4rt_core::pm4::Builder<'_>,
    ) -> Result<()> {
        let program = self
            .programs
            .get(op.program as usize)
            .ok_or(SessionError::UnknownHandle { kind: "code object", id: op.program })?;
        let mut values = Vec::with_capacity(op.args.len());
        for a in &op.args {
            values.push(match *a {
                Arg::Buf(h) => ArgValue::Pointer(self.buffer(h)?.buf.va),
                Arg::U32(v) => ArgValue::U32(v),
                Arg::I32(v) => ArgValue::I32(v),
                Arg::U64(v) => ArgValue::U64(v),
                Arg::F32(v) => ArgValue::F32(v),
            });
        }
        let k = &op.kernel;
        let kernargs = k.build_kernargs(&values, &op.geometry)?;
        arena[at..at + kernargs.len()].copy_from_slice(&kernargs);
        let kernarg_va = arena_va + at as u64;
        let packet_at = at + (kernargs.len()).next_multiple_of(64);
        let packet_va = arena_va + packet_at as u64;
        let packet = dispatch_packet(
            &op.geometry,
            &DispatchPacketFields {
                private_segment_size: k.descriptor.private_segment_fixed_size,
                group_segment_size: k
                    .descriptor
                    .group_segment_fixed_size
                    .saturating_add(op.geometry.dynamic_lds),
                kernel_object: k.descriptor_va(program.image.va),
                kernarg_address: kernarg_va,
            },
        );
        arena[packet_at..packet_at + DISPATCH_PACKET_SIZE].copy_from_slice(&packet);
        let l = Launch {
            kernel: k,
            image_va: program.image.va,
            grid: op.geometry.workgroups(),
            workgroup: Some(op.geometry.local),
            kernarg_va,
            tier: self.tier(),
        };
        let inputs = DispatchInputs { dispatch_packet_va: Some(packet_va), dispatch_id: 0 };
        pm4rt_core::launch::emit_dispatch_with(b, self.gfx, &l, &inputs)?;
        Ok(())
    }
}

impl Batch<'_> {
    /// Record a launch of `k` on `grid` workgroups of `block` work-items (`None`: the
    /// kernel's `reqd_work_group_size`) with one [`Arg`] per explicit argument.
    ///
    /// Errors (nothing is recorded): [`SessionError::Kernarg`] naming the kernel and the
    /// argument for a wrong count, kind or size, an argument kind pm4rt cannot pass, or a bad
    /// geometry; [`SessionError::UnknownHandle`] for a buffer or kernel of another session;
    /// [`SessionError::MissingBlock`] when `block` is `None` and the kernel declares no
    /// `reqd_work_group_size`.
    pub fn launch(
        &mut self,
        k: &UserKernel,
        grid: [u32; 3],
        block: Option<[u32; 3]>,
        args: &[Arg],
    ) -> Result<()> {
        let program = self
            .s
            .programs
            .get(k.program as usize)
            .ok_or(SessionError::UnknownHandle { kind: "code object", id: k.program })?;
        if program.code.kernel(&k.kernel.name).ok() != Some(&*k.kernel) {
            return Err(SessionError::UnknownHandle { kind: "code object", id: k.program });
        }
        let block = block
            .or(k.kernel.metadata.reqd_workgroup_size)
            .ok_or_else(|| SessionError::MissingBlock { kernel: k.kernel.name.clone() })?;
        let geometry = LaunchGeometry::from_workgroups(grid, block);
        // Check everything now with placeholder addresses, so a bad launch records nothing.
        let mut values = Vec::with_capacity(args.len());
        let mut writes = Vec::new();
        for a in args {
            values.push(match *a {
                Arg::Buf(h) => {
                    self.s.buffer(h)?;
                    writes.push(Res::Buf(h.0));
                    ArgValue::Pointer(0)
                }
                Arg::U32(v) => ArgValue::U32(v),
                Arg::I32(v) => ArgValue::I32(v),
                Arg::U64(v) => ArgValue::U64(v),
                Arg::F32(v) => ArgValue::F32(v),
            });
        }
        k.kernel.build_kernargs(&values, &geometry)?;
        self.ops.push(Op::user(
            UserOp { program: k.program, kernel: k.kernel.clone(), geometry, args: args.to_vec() },
            writes,
        ));
        Ok(())
    }
}

impl From<KernargError> for SessionError {
    fn from(e: KernargError) -> SessionError {
        SessionError::Kernarg(e)
    }
}
