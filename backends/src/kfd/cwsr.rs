//! Queue-buffer sizes the kernel checks in `kfd_queue_acquire_buffers`: the control stack,
//! the CWSR (compute wave save/restore) area, the debugger memory and the EOP buffer.
//!
//! The kernel computes the node values in `kfd_queue_ctx_save_restore_size` (kfd_queue.c)
//! when the topology does not carry them:
//!
//! - `cu = simd_count / simd_per_cu / num_xcc`, `waves = cu * 32` (gfx10+);
//! - `ctl_stack = ALIGN(40 + waves * 12 + 8, 4096)`, capped at `0x7000` on gfx10.x;
//! - `wg_data = ALIGN(cu * (vgpr + 0x4000 + 0x10000 + 0x1000), 4096)` with `vgpr = 0x60000`
//!   for gfx target versions 110000, 110001, 120000 and 120001, else `0x40000`;
//! - `cwsr = ctl_stack + wg_data`; `debug = ALIGN(waves * 32, 64)`;
//! - the CWSR mapping must be exactly `ALIGN((cwsr + debug) * num_xcc, 4096)`;
//! - the EOP buffer is 4096 bytes on gfx8 and later.
//!
//! Only gfx10 and later are modelled (the wave count of older parts differs and pm4rt does not
//! target them): older targets are refused rather than guessed.

use std::fmt;

/// CPU and GPU page size: every size here is aligned to it.
pub const PAGE: u64 = 4096;
/// `SIZEOF_HSA_USER_CONTEXT_SAVE_AREA_HEADER`.
const CTX_SAVE_HEADER: u64 = 40;
/// `CNTL_STACK_BYTES_PER_WAVE` (gfx10+).
const CNTL_STACK_BYTES_PER_WAVE: u64 = 12;
/// Waves per CU (gfx10+).
const WAVES_PER_CU: u64 = 32;
/// gfx10.x hardware limit of the control stack.
const GFX10_CTL_STACK_CAP: u64 = 0x7000;
/// VGPR bytes per CU on 110000 / 110001 / 120000 / 120001.
const VGPR_LARGE: u64 = 0x60000;
/// VGPR bytes per CU on other gfx10+ parts.
const VGPR_DEFAULT: u64 = 0x40000;
/// SGPR bytes per CU.
const SGPR_PER_CU: u64 = 0x4000;
/// LDS bytes per CU.
const LDS_PER_CU: u64 = 0x10000;
/// Hardware-register bytes per CU.
const HWREG_PER_CU: u64 = 0x1000;
/// `DEBUGGER_BYTES_PER_WAVE`.
const DEBUG_BYTES_PER_WAVE: u64 = 32;
/// `DEBUGGER_BYTES_ALIGN`.
const DEBUG_ALIGN: u64 = 64;
/// EOP buffer size on gfx8 and later.
pub const EOP_BUFFER_SIZE: u64 = 4096;
/// The first gfx target version the formula here covers (gfx10.1.0).
pub const MIN_GFX_VERSION: u32 = 100100;

/// The topology values the sizes derive from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CwsrInputs {
    /// `gfx_target_version` (major*10000 + minor*100 + stepping).
    pub gfx_target_version: u32,
    /// `simd_count` (all XCCs).
    pub simd_count: u32,
    /// `simd_per_cu`.
    pub simd_per_cu: u32,
    /// `num_xcc` (1 when the topology does not say).
    pub num_xcc: u32,
    /// `cwsr_size` from the topology, when the kernel exports it.
    pub cwsr_size: Option<u64>,
    /// `ctl_stack_size` from the topology, when the kernel exports it.
    pub ctl_stack_size: Option<u64>,
    /// `eop_buffer_size` from the topology, when the kernel exports it.
    pub eop_buffer_size: Option<u64>,
}

/// The sizes `CREATE_QUEUE` must pass and map.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QueueSizes {
    /// `ctl_stack_size` to pass (must equal the node's).
    pub ctl_stack_size: u64,
    /// `ctx_save_restore_size` to pass (the node's `cwsr_size`, per XCC).
    pub cwsr_size: u64,
    /// The node's `debug_memory_size` (per XCC).
    pub debug_memory_size: u64,
    /// Exact size of the CWSR area mapping: `ALIGN((cwsr + debug) * num_xcc, 4096)`.
    pub cwsr_bo_size: u64,
    /// EOP buffer size (and exact mapping size).
    pub eop_size: u64,
}

/// Why the sizes cannot be computed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CwsrError {
    /// A count the formula divides by is zero, or the division leaves no CU.
    NoComputeUnits {
        /// simd_count, simd_per_cu, num_xcc as read.
        simd_count: u32,
        /// SIMDs per CU.
        simd_per_cu: u32,
        /// XCCs.
        num_xcc: u32,
    },
    /// The target is older than gfx10.1 (not modelled).
    UnsupportedTarget(u32),
    /// A size overflowed `u64` (absurd topology values).
    Overflow,
}

impl fmt::Display for CwsrError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CwsrError::NoComputeUnits { simd_count, simd_per_cu, num_xcc } => write!(
                f,
                "simd_count {simd_count} / simd_per_cu {simd_per_cu} / num_xcc {num_xcc} gives no \
                 compute unit"
            ),
            CwsrError::UnsupportedTarget(v) => write!(
                f,
                "gfx_target_version {v} is older than {MIN_GFX_VERSION}: CWSR sizing not modelled"
            ),
            CwsrError::Overflow => f.write_str("CWSR size overflows"),
        }
    }
}

fn align(v: u64, a: u64) -> Result<u64, CwsrError> {
    v.checked_next_multiple_of(a).ok_or(CwsrError::Overflow)
}

/// The kernel's node values for `inputs` (topology values win where present).
///
/// # Errors
/// [`CwsrError`] for a target below gfx10.1, zero CUs, or overflow.
pub fn queue_sizes(inputs: &CwsrInputs) -> Result<QueueSizes, CwsrError> {
    let gfxv = inputs.gfx_target_version;
    if gfxv < MIN_GFX_VERSION {
        return Err(CwsrError::UnsupportedTarget(gfxv));
    }
    let num_xcc = u64::from(inputs.num_xcc.max(1));
    let no_cu = CwsrError::NoComputeUnits {
        simd_count: inputs.simd_count,
        simd_per_cu: inputs.simd_per_cu,
        num_xcc: inputs.num_xcc,
    };
    if inputs.simd_per_cu == 0 {
        return Err(no_cu);
    }
    let cu = u64::from(inputs.simd_count) / u64::from(inputs.simd_per_cu) / num_xcc;
    if cu == 0 {
        return Err(no_cu);
    }
    let waves = cu * WAVES_PER_CU;
    let mut ctl = align(CTX_SAVE_HEADER + waves * CNTL_STACK_BYTES_PER_WAVE + 8, PAGE)?;
    if gfxv / 10000 * 10000 == 100000 {
        ctl = ctl.min(GFX10_CTL_STACK_CAP);
    }
    let vgpr = match gfxv {
        110000 | 110001 | 120000 | 120001 => VGPR_LARGE,
        _ => VGPR_DEFAULT,
    };
    let per_cu = vgpr + SGPR_PER_CU + LDS_PER_CU + HWREG_PER_CU;
    let wg = align(cu.checked_mul(per_cu).ok_or(CwsrError::Overflow)?, PAGE)?;
    let ctl_stack_size = inputs.ctl_stack_size.unwrap_or(ctl);
    let cwsr_size = inputs.cwsr_size.unwrap_or(ctl + wg);
    let debug_memory_size = align(waves * DEBUG_BYTES_PER_WAVE, DEBUG_ALIGN)?;
    let total = cwsr_size
        .checked_add(debug_memory_size)
        .and_then(|t| t.checked_mul(num_xcc))
        .ok_or(CwsrError::Overflow)?;
    Ok(QueueSizes {
        ctl_stack_size,
        cwsr_size,
        debug_memory_size,
        cwsr_bo_size: align(total, PAGE)?,
        eop_size: inputs.eop_buffer_size.unwrap_or(EOP_BUFFER_SIZE),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn inputs(gfx: u32, simd_count: u32, simd_per_cu: u32, num_xcc: u32) -> CwsrInputs {
        CwsrInputs {
            gfx_target_version: gfx,
            simd_count,
            simd_per_cu,
            num_xcc,
            cwsr_size: None,
            ctl_stack_size: None,
            eop_buffer_size: None,
        }
    }

    /// The formulas above worked for an R9700 (gfx1201, 64 CUs = 128 SIMDs): cwsr_size
    /// 0x1D47000, debug 0x10000, CWSR BO 0x1D57000 (also measured on an R9700 with Linux 6.17).
    #[test]
    fn r9700_worked_example() {
        let s = queue_sizes(&inputs(120001, 128, 2, 1)).unwrap();
        assert_eq!(s.cwsr_size, 0x1D4_7000);
        assert_eq!(s.debug_memory_size, 0x1_0000);
        assert_eq!(s.cwsr_bo_size, 0x1D5_7000);
        assert_eq!(s.ctl_stack_size, 0x7000);
        assert_eq!(s.eop_size, 4096);
    }

    /// gfx1100 (Navi 31, 96 CUs = 192 SIMDs, one XCC), by hand:
    /// waves = 96 * 32 = 3072; ctl = ALIGN(40 + 3072*12 + 8 = 36912, 4096) = 40960 = 0xA000;
    /// wg = 96 * (0x60000 + 0x4000 + 0x10000 + 0x1000) = 96 * 0x75000 = 0x2BE0000;
    /// cwsr = 0xA000 + 0x2BE0000 = 0x2BEA000; debug = ALIGN(3072 * 32, 64) = 0x18000;
    /// BO = ALIGN(0x2BEA000 + 0x18000, 4096) = 0x2C02000.
    #[test]
    fn gfx1100_by_hand() {
        let s = queue_sizes(&inputs(110000, 192, 2, 1)).unwrap();
        assert_eq!(s.ctl_stack_size, 0xA000);
        assert_eq!(s.cwsr_size, 0x2BE_A000);
        assert_eq!(s.debug_memory_size, 0x1_8000);
        assert_eq!(s.cwsr_bo_size, 0x2C0_2000);
    }

    /// gfx10.3 (e.g. 40 CUs), by hand: waves 1280; ctl = ALIGN(40 + 15360 + 8, 4096) = 0x4000
    /// (under the 0x7000 cap); vgpr 0x40000: wg = 40 * 0x55000 = 0xD48000;
    /// cwsr = 0xD4C000; debug = 1280 * 32 = 0xA000; BO = 0xD56000.
    /// With 120 CUs the control stack (ALIGN(40 + 46080 + 8) = 0xC000) is capped at 0x7000.
    #[test]
    fn gfx10_default_vgpr_and_cap() {
        let s = queue_sizes(&inputs(100300, 80, 2, 1)).unwrap();
        assert_eq!(s.ctl_stack_size, 0x4000);
        assert_eq!(s.cwsr_size, 0xD4_C000);
        assert_eq!(s.cwsr_bo_size, 0xD5_6000);
        let big = queue_sizes(&inputs(100300, 240, 2, 1)).unwrap();
        assert_eq!(big.ctl_stack_size, 0x7000);
    }

    #[test]
    fn topology_values_win_and_xcc_multiplies() {
        let mut i = inputs(120001, 128, 2, 1);
        i.cwsr_size = Some(0x1D4_7000);
        i.ctl_stack_size = Some(0x7000);
        i.eop_buffer_size = Some(0x2000);
        let s = queue_sizes(&i).unwrap();
        assert_eq!((s.cwsr_bo_size, s.eop_size), (0x1D5_7000, 0x2000));
        // Two XCCs of 32 CUs each: per-XCC sizes, BO = (cwsr + debug) * 2.
        // waves 1024: ctl = ALIGN(40 + 12288 + 8, 4096) = 0x4000; wg = 32 * 0x75000 = 0xEA0000;
        // cwsr = 0xEA4000; debug = 0x8000; BO = 2 * 0xEAC000 = 0x1D58000.
        let s2 = queue_sizes(&inputs(120001, 128, 2, 2)).unwrap();
        assert_eq!(s2.cwsr_size, 0xEA_4000);
        assert_eq!(s2.debug_memory_size, 0x8000);
        assert_eq!(s2.cwsr_bo_size, 0x1D5_8000);
    }

    #[test]
    fn bad_topologies_are_errors() {
        assert!(matches!(
            queue_sizes(&inputs(120001, 128, 0, 1)),
            Err(CwsrError::NoComputeUnits { .. })
        ));
        assert!(matches!(
            queue_sizes(&inputs(120001, 1, 2, 1)),
            Err(CwsrError::NoComputeUnits { .. })
        ));
        assert_eq!(
            queue_sizes(&inputs(90010, 128, 4, 1)),
            Err(CwsrError::UnsupportedTarget(90010))
        );
        assert_eq!(queue_sizes(&inputs(120001, u32::MAX, 1, 1)).map(|_| ()), Ok(()));
        let mut i = inputs(120001, 128, 2, 1);
        i.cwsr_size = Some(u64::MAX);
        assert_eq!(queue_sizes(&i), Err(CwsrError::Overflow));
    }
}
