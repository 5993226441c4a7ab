//! The architectural state of one wave32: SGPRs (with VCC, TTMP, M0 and EXEC at their
//! operand numbers), SCC, VGPRs and the program counter.
//!
//! Register numbering follows the source-operand encoding (llvm/lib/Target/AMDGPU/
//! SIRegisterInfo.td, SIDefines.h `AMDGPU::EncValues`): s0..s105, vcc_lo 106, vcc_hi 107,
//! ttmp0..15 at 108..123, null 124 (reads 0, writes are dropped), m0 125, exec_lo 126,
//! exec_hi 127. VGPRs are stored lane-major per register so an instruction runs over the 32
//! lanes of one register in a tight loop.

/// Lanes of a wave32.
pub const LANES: usize = 32;
/// Scalar register slots (operand values 0..=127).
pub const SGPR_SLOTS: usize = 128;
/// VGPRs a wave may address (operand values 256..=511).
pub const VGPRS: usize = 256;

/// Operand number of VCC_LO.
pub const VCC_LO: u32 = 106;
/// Operand number of TTMP0.
pub const TTMP0: u32 = 108;
/// Operand number of the null register.
pub const NULL: u32 = 124;
/// Operand number of M0.
pub const M0: u32 = 125;
/// Operand number of EXEC_LO.
pub const EXEC_LO: u32 = 126;

/// One wave's registers.
#[derive(Clone, Debug)]
pub struct Wave {
    /// Scalar registers by operand number.
    pub sgpr: [u32; SGPR_SLOTS],
    /// Scalar condition code.
    pub scc: bool,
    /// Vector registers: `vgpr[r][lane]`.
    pub vgpr: Vec<[u32; LANES]>,
    /// Index of the next instruction in the program.
    pub pc: usize,
    /// True once `s_endpgm` ran.
    pub ended: bool,
}

impl Default for Wave {
    fn default() -> Self {
        Wave::new()
    }
}

impl Wave {
    /// A wave with every register zero and all lanes off.
    pub fn new() -> Wave {
        Wave {
            sgpr: [0; SGPR_SLOTS],
            scc: false,
            vgpr: vec![[0; LANES]; VGPRS],
            pc: 0,
            ended: false,
        }
    }

    /// EXEC (wave32: EXEC_LO).
    pub fn exec(&self) -> u32 {
        self.sgpr[EXEC_LO as usize]
    }

    /// Set EXEC_LO.
    pub fn set_exec(&mut self, v: u32) {
        self.sgpr[EXEC_LO as usize] = v;
    }

    /// VCC (wave32: VCC_LO).
    pub fn vcc(&self) -> u32 {
        self.sgpr[VCC_LO as usize]
    }

    /// Read the scalar register with operand number `n` (null and out-of-range read 0).
    pub fn s(&self, n: u32) -> u32 {
        if n == NULL {
            0
        } else {
            self.sgpr.get(n as usize).copied().unwrap_or(0)
        }
    }

    /// Write the scalar register `n` (writes to null or out-of-range numbers are dropped).
    pub fn set_s(&mut self, n: u32, v: u32) {
        if n != NULL {
            if let Some(r) = self.sgpr.get_mut(n as usize) {
                *r = v;
            }
        }
    }

    /// Read the 64-bit scalar pair starting at `n`.
    pub fn s64(&self, n: u32) -> u64 {
        u64::from(self.s(n)) | u64::from(self.s(n + 1)) << 32
    }

    /// Write the 64-bit scalar pair starting at `n`.
    pub fn set_s64(&mut self, n: u32, v: u64) {
        self.set_s(n, v as u32);
        self.set_s(n + 1, (v >> 32) as u32);
    }
}

/// Where a dispatch puts one wave's inputs (the "Initial Kernel Execution State" of
/// llvm/docs/AMDGPUUsage.rst and its architected-SGPR form for gfx12,
/// llvm/lib/Target/AMDGPU/AMDGPULegalizerInfo.cpp `loadInputValue`).
#[derive(Clone, Debug)]
pub struct WaveLaunch<'a> {
    /// The target: gfx12 has the workgroup ids in TTMP9 (X) and TTMP7 (Y in [15:0], Z in
    /// [31:16]); gfx11 puts the enabled ones in the SGPRs after the user SGPRs.
    pub target: super::Target,
    /// COMPUTE_USER_DATA_0.. as programmed, `RSRC2.USER_SGPR` of them (s0..).
    pub user_sgprs: &'a [u32],
    /// COMPUTE_PGM_RSRC2 (TGID_X/Y/Z_EN bits 7/8/9 on gfx11).
    pub rsrc2: u32,
    /// Workgroup id.
    pub workgroup: [u32; 3],
    /// Work-item ids of lane 0 of this wave and the workgroup's size: lane `l` is work-item
    /// `first + l` in X-fastest order.
    pub first_item: u32,
    /// Workgroup size (COMPUTE_NUM_THREAD_X/Y/Z).
    pub workgroup_size: [u32; 3],
}

impl Wave {
    /// The state a wave starts with: user SGPRs, workgroup ids, packed work-item ids in v0
    /// (X [9:0], Y [19:10], Z [29:20]) and EXEC with one bit per existing work-item.
    pub fn launch(l: &WaveLaunch<'_>) -> Wave {
        let mut w = Wave::new();
        for (i, &v) in l.user_sgprs.iter().enumerate() {
            w.set_s(i as u32, v);
        }
        match l.target {
            super::Target::Gfx12 => {
                w.set_s(TTMP0 + 9, l.workgroup[0]);
                w.set_s(TTMP0 + 7, (l.workgroup[1] & 0xffff) | l.workgroup[2] << 16);
            }
            super::Target::Gfx11 => {
                let mut next = (l.rsrc2 >> 1) & 0x1f;
                for (dim, bit) in [7u32, 8, 9].iter().enumerate() {
                    if l.rsrc2 >> bit & 1 == 1 {
                        w.set_s(next, l.workgroup[dim]);
                        next += 1;
                    }
                }
            }
        }
        let [sx, sy, sz] = l.workgroup_size;
        let total = sx.saturating_mul(sy).saturating_mul(sz);
        let mut exec = 0u32;
        for lane in 0..LANES as u32 {
            let item = l.first_item + lane;
            if item >= total || sx == 0 || sy == 0 {
                continue;
            }
            let (x, y, z) = (item % sx, item / sx % sy, item / (sx * sy));
            w.vgpr[0][lane as usize] = x | y << 10 | z << 20;
            exec |= 1 << lane;
        }
        w.set_exec(exec);
        w
    }
}
