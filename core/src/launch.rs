//! Turning a kernel from a code object into a PM4 dispatch.
//!
//! [`emit_dispatch`] writes everything a compute dispatch needs, derived from the kernel
//! descriptor and nothing hand-set per kernel, in this order (tinygrad's
//! `tinygrad/runtime/ops_amd.py: AMDComputeQueue.exec` and kfdtest's
//! `libhsakmt/tests/kfdtest/src/Dispatch.cpp: Dispatch::BuildIb` both write these):
//!
//! 1. `ACQUIRE_MEM` (invalidate caches so the kernel sees earlier writes);
//! 2. `COMPUTE_PGM_LO/HI`, `RSRC1/2`, `RSRC3`: RSRC2 with the LDS size the descriptor's
//!    `group_segment_fixed_size` needs; RSRC1 as the descriptor has it, plus PRIV (bit 20) on
//!    gfx11 KFD queues ([`rsrc1_for`]);
//! 3. `COMPUTE_TMPRING_SIZE` = 0 (scratch is refused);
//! 4. `COMPUTE_RESTART_X/Y/Z` = 0 (tinygrad and kfdtest both clear them before every
//!    dispatch);
//! 5. the user SGPRs in hardware order, `START_X..Z` = 0, `NUM_THREAD_X..Z`,
//!    `RESOURCE_LIMITS` = 0;
//! 6. `DISPATCH_DIRECT` with the initiator (wave32 bit from the descriptor);
//! 7. `EVENT_WRITE CS_PARTIAL_FLUSH` (event 7, index 4): the dispatch's waves finish before
//!    the next packet starts.
//!
//! Between dependent dispatches [`emit_barrier`] adds another partial flush; end the stream
//! with a `RELEASE_MEM` fence ([`crate::pm4::Builder::release_mem_fence`]) and pad it with
//! [`crate::pm4::Builder::pad_ib`].

use crate::code_object::{Kernel, KCP_KERNARG_SEGMENT_PTR};
use crate::pm4::{regs, Builder, EncodeError};
use crate::submitter::{GfxTarget, Tier};

/// DISPATCH_INITIATOR: COMPUTE_SHADER_EN (bit 0) | FORCE_START_AT_000 (bit 2), the value
/// tinygrad's `AMDComputeQueue.exec` uses for a workgroup-count dispatch.
pub const INITIATOR_BASE: u32 = 0x5;
/// DISPATCH_INITIATOR.CS_W32_EN (bit 15): the waves are wave32.
pub const INITIATOR_CS_W32_EN: u32 = 1 << 15;
/// COMPUTE_PGM_RSRC1.PRIV (bit 20, `COMPUTE_PGM_RSRC1__PRIV__SHIFT` of `gc_11_0_0_sh_mask.h`).
pub const RSRC1_PRIV: u32 = 1 << 20;

/// The COMPUTE_PGM_RSRC1 value a dispatch of a kernel whose descriptor says `descriptor` gets
/// on `tier`'s queue for `gfx`: the descriptor's value, plus [`RSRC1_PRIV`] on gfx11 KFD queues.
///
/// tinygrad (`ops_amd.py: _amd_program_image`, "priv=1 on gfx11 for cwsr") sets PRIV for every
/// gfx11 PM4 dispatch; kfdtest (`KFDBaseComponentTest::NeedCwsrWA`, workaround DEGFX11_12113,
/// "COMPUTE_PGM_RSRC needs priv=1 to prevent hardware traps") for gfx 11.0.0/1/2/5 and 11.0.3
/// with more than one array. Both concern the context save/restore (CWSR) that KFD queues have;
/// pm4rt applies it on its KFD tier only, and never on gfx12.
pub fn rsrc1_for(gfx: GfxTarget, tier: Tier, descriptor: u32) -> u32 {
    if tier == Tier::Kfd && !gfx.is_gfx12() {
        descriptor | RSRC1_PRIV
    } else {
        descriptor
    }
}

/// Why a dispatch could not be emitted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LaunchError {
    /// The kernel needs an input pm4rt's PM4 launcher does not provide.
    #[error("kernel {kernel}: {what} is not supported by the PM4 launcher")]
    Unsupported {
        /// Kernel name.
        kernel: String,
        /// What it needs (e.g. "scratch memory", "the dispatch packet pointer").
        what: String,
    },
    /// A grid dimension or workgroup size is zero, or the descriptor is inconsistent.
    #[error("kernel {kernel}: {reason}")]
    Invalid {
        /// Kernel name.
        kernel: String,
        /// What was wrong.
        reason: String,
    },
    /// The command buffer is full.
    #[error(transparent)]
    Encode(#[from] EncodeError),
}

/// One dispatch of a kernel.
#[derive(Debug, Clone, Copy)]
pub struct Launch<'a> {
    /// The kernel (from [`crate::code_object::CodeObject::kernel`]).
    pub kernel: &'a Kernel,
    /// GPU VA where the code object's loadable image was uploaded (256-byte aligned).
    pub image_va: u64,
    /// Grid size in workgroups (X, Y, Z), each >= 1.
    pub grid: [u32; 3],
    /// Workgroup size in work-items; `None` takes the kernel's `reqd_work_group_size`.
    pub workgroup: Option<[u32; 3]>,
    /// GPU VA of the kernarg buffer (at least `kernarg_size` bytes, 16-byte aligned).
    pub kernarg_va: u64,
    /// The tier whose queue runs the dispatch (selects RSRC1.PRIV, see [`rsrc1_for`]).
    pub tier: Tier,
}

/// The user-SGPR inputs of `kernel_code_properties` the launcher cannot provide:
/// (property bit, name).
const UNSUPPORTED_INPUTS: &[(u16, &str)] = &[
    (1 << 0, "the private segment buffer"),
    (1 << 2, "the queue pointer"),
    (1 << 5, "flat scratch init"),
];
const KCP_DISPATCH_PTR: u16 = 1 << 1;
const KCP_DISPATCH_ID: u16 = 1 << 4;

/// Per-dispatch inputs beyond the kernarg pointer, for kernels whose descriptor enables them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DispatchInputs {
    /// GPU VA of a 64-byte `hsa_kernel_dispatch_packet_t` block describing this dispatch
    /// ([`crate::code_object::dispatch_packet::dispatch_packet`]), for kernels that enable
    /// the dispatch pointer (`kernel_code_properties` bit 1); 4-byte aligned.
    pub dispatch_packet_va: Option<u64>,
    /// The 64-bit dispatch id for kernels that enable it (`kernel_code_properties` bit 4).
    pub dispatch_id: u64,
}
const KCP_PRIVATE_SEGMENT_SIZE: u16 = 1 << 6;

/// Emit the dispatch of `l` for `gfx` into `b` (see the module docs for the packet list), ending
/// with its CS partial flush.
///
/// Errors: [`LaunchError::Unsupported`] when the kernel needs scratch or a user-SGPR input
/// other than the kernarg pointer, dispatch id or private segment size;
/// [`LaunchError::Invalid`] for a zero grid / workgroup, a misaligned image or kernarg VA, or
/// a descriptor that fails [`crate::code_object::KernelDescriptor::check`];
/// [`LaunchError::Encode`] when `b` is full (`b` then holds only whole packets).
pub fn emit_dispatch(
    b: &mut Builder<'_>,
    gfx: GfxTarget,
    l: &Launch<'_>,
) -> Result<(), LaunchError> {
    emit_dispatch_with(b, gfx, l, &DispatchInputs::default())
}

/// [`emit_dispatch`] with the per-dispatch inputs of `inputs`: the user SGPRs follow the order
/// of AMDGPUUsage.rst "Initial Kernel Execution State" (private segment buffer, dispatch ptr,
/// queue ptr, kernarg segment ptr, dispatch id, flat scratch init, private segment size), each
/// present when its `kernel_code_properties` bit is set.
///
/// Errors: those of [`emit_dispatch`], and [`LaunchError::Invalid`] when the kernel enables
/// the dispatch pointer and `inputs` has none (or a misaligned one).
pub fn emit_dispatch_with(
    b: &mut Builder<'_>,
    gfx: GfxTarget,
    l: &Launch<'_>,
    inputs: &DispatchInputs,
) -> Result<(), LaunchError> {
    let k = l.kernel;
    let d = &k.descriptor;
    let invalid = |reason: String| LaunchError::Invalid { kernel: k.name.clone(), reason };
    d.check(gfx).map_err(&invalid)?;
    if d.private_segment_fixed_size != 0 {
        return Err(LaunchError::Unsupported {
            kernel: k.name.clone(),
            what: format!("scratch memory ({} bytes per lane)", d.private_segment_fixed_size),
        });
    }
    if let Some((_, what)) =
        UNSUPPORTED_INPUTS.iter().find(|(bit, _)| d.kernel_code_properties & bit != 0)
    {
        return Err(LaunchError::Unsupported { kernel: k.name.clone(), what: (*what).into() });
    }
    let wg = l.workgroup.or(k.metadata.reqd_workgroup_size).ok_or_else(|| {
        invalid("no workgroup size given and the kernel declares no reqd_work_group_size".into())
    })?;
    if wg.contains(&0) || l.grid.contains(&0) {
        return Err(invalid(format!("zero grid {:?} or workgroup {:?}", l.grid, wg)));
    }
    let entry = k.entry_va(l.image_va);
    if !entry.is_multiple_of(256) {
        return Err(invalid(format!("entry VA {entry:#x} is not 256-byte aligned")));
    }
    if !l.kernarg_va.is_multiple_of(16) {
        return Err(invalid(format!("kernarg VA {:#x} is not 16-byte aligned", l.kernarg_va)));
    }

    let mut user = Vec::with_capacity(7);
    if d.kernel_code_properties & KCP_DISPATCH_PTR != 0 {
        let va = inputs.dispatch_packet_va.ok_or_else(|| {
            invalid("the kernel reads the dispatch packet but none was given".into())
        })?;
        if !va.is_multiple_of(4) {
            return Err(invalid(format!("dispatch packet VA {va:#x} is not 4-byte aligned")));
        }
        user.extend([va as u32, (va >> 32) as u32]);
    }
    if d.kernel_code_properties & KCP_KERNARG_SEGMENT_PTR != 0 {
        user.extend([l.kernarg_va as u32, (l.kernarg_va >> 32) as u32]);
    }
    if d.kernel_code_properties & KCP_DISPATCH_ID != 0 {
        user.extend([inputs.dispatch_id as u32, (inputs.dispatch_id >> 32) as u32]);
    }
    if d.kernel_code_properties & KCP_PRIVATE_SEGMENT_SIZE != 0 {
        user.push(0);
    }

    // Check space for the whole dispatch first so a full buffer never holds half of it.
    let needed = dispatch_dwords(user.len());
    if b.remaining() < needed {
        return Err(EncodeError::OutOfSpace(crate::pm4::OutOfSpace {
            needed,
            available: b.remaining(),
        })
        .into());
    }
    b.acquire_mem_full()?;
    b.set_sh_reg(regs::COMPUTE_PGM_LO, &[(entry >> 8) as u32, (entry >> 40) as u32])?;
    let rsrc1 = rsrc1_for(gfx, l.tier, d.compute_pgm_rsrc1);
    b.set_sh_reg(regs::COMPUTE_PGM_RSRC1, &[rsrc1, d.dispatch_rsrc2()])?;
    b.set_sh_reg_one(regs::COMPUTE_PGM_RSRC3, d.compute_pgm_rsrc3)?;
    b.set_sh_reg_one(regs::COMPUTE_TMPRING_SIZE, 0)?;
    b.set_sh_reg(regs::COMPUTE_RESTART_X, &[0, 0, 0])?;
    if !user.is_empty() {
        b.set_sh_reg(regs::COMPUTE_USER_DATA_0, &user)?;
    }
    b.set_sh_reg(regs::COMPUTE_START_X, &[0, 0, 0])?;
    b.set_sh_reg(regs::COMPUTE_NUM_THREAD_X, &wg)?;
    b.set_sh_reg_one(regs::COMPUTE_RESOURCE_LIMITS, 0)?;
    let initiator = INITIATOR_BASE | if d.is_wave32() { INITIATOR_CS_W32_EN } else { 0 };
    b.dispatch_direct(l.grid, initiator)?;
    b.cs_partial_flush()?;
    Ok(())
}

/// Dwords [`emit_dispatch`] writes for `user_sgprs` user-data values: ACQUIRE_MEM 8,
/// PGM_LO/HI 4, RSRC1/2 4, RSRC3 3, TMPRING_SIZE 3, RESTART 5, USER_DATA 2 + n, START 5,
/// NUM_THREAD 5, RESOURCE_LIMITS 3, DISPATCH_DIRECT 5, EVENT_WRITE 2.
fn dispatch_dwords(user_sgprs: usize) -> usize {
    8 + 4 + 4 + 3 + 3 + 5 + if user_sgprs > 0 { 2 + user_sgprs } else { 0 } + 5 + 5 + 3 + 5 + 2
}

/// Make the results of earlier dispatches visible to later ones in the same stream: wait for
/// the compute shaders to finish (`EVENT_WRITE CS_PARTIAL_FLUSH`). [`emit_dispatch`] already
/// ends with one; this is for streams that put other work between dispatches. The next
/// [`emit_dispatch`] starts with a full `ACQUIRE_MEM` invalidate.
///
/// Errors: [`EncodeError`] when `b` is full.
pub fn emit_barrier(b: &mut Builder<'_>) -> Result<(), EncodeError> {
    b.cs_partial_flush()
}
