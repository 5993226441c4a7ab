//! What a dispatch executed on the ISA interpreter: instructions per encoding family, how full
//! the vector instructions' waves were, and the vector memory traffic. These are a first
//! proxy for how a kernel would use a GPU (occupancy of lanes, bytes moved per instruction).
//!
//! Counting rules: every instruction a wave executes counts once in its [`Family`]. A vector
//! instruction (VOP*, VOPD, DS, FLAT/GLOBAL/SCRATCH) also adds the number of lanes active in
//! EXEC when it issued to [`ExecStats::active_lanes`]. A global or LDS load / store adds one
//! instruction and the bytes of every active lane; atomics count separately.

use super::decode::Family;

/// Number of [`Family`] values.
pub const FAMILIES: usize = Family::ALL.len();

/// Vector memory traffic of one kind (global or LDS).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MemTraffic {
    /// Load instructions executed.
    pub loads: u64,
    /// Bytes loaded (all active lanes).
    pub load_bytes: u64,
    /// Store instructions executed.
    pub stores: u64,
    /// Bytes stored (all active lanes).
    pub store_bytes: u64,
    /// Atomic instructions executed.
    pub atomics: u64,
}

impl MemTraffic {
    fn add(&mut self, o: &MemTraffic) {
        self.loads += o.loads;
        self.load_bytes += o.load_bytes;
        self.stores += o.stores;
        self.store_bytes += o.store_bytes;
        self.atomics += o.atomics;
    }
}

/// Counters of one or more dispatches (see the module documentation).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ExecStats {
    /// Instructions executed per family, indexed like [`Family::ALL`].
    pub per_family: [u64; FAMILIES],
    /// Vector instructions executed.
    pub vector_instructions: u64,
    /// Sum over the vector instructions of the lanes active in EXEC.
    pub active_lanes: u64,
    /// Waves launched.
    pub waves: u64,
    /// Workgroups run.
    pub workgroups: u64,
    /// Global (and flat) memory instructions.
    pub global: MemTraffic,
    /// LDS instructions.
    pub lds: MemTraffic,
}

impl ExecStats {
    /// Add `o`'s counters to these.
    pub fn merge(&mut self, o: &ExecStats) {
        for (a, b) in self.per_family.iter_mut().zip(&o.per_family) {
            *a += b;
        }
        self.vector_instructions += o.vector_instructions;
        self.active_lanes += o.active_lanes;
        self.waves += o.waves;
        self.workgroups += o.workgroups;
        self.global.add(&o.global);
        self.lds.add(&o.lds);
    }

    /// Instructions executed, all families.
    pub fn instructions(&self) -> u64 {
        self.per_family.iter().sum()
    }

    /// Instructions of `family`.
    pub fn of(&self, family: Family) -> u64 {
        self.per_family[family.index()]
    }

    /// Lane-instructions: each scalar instruction counts as one, each vector instruction as
    /// its active lanes (the work a SIMD interpreter does).
    pub fn lane_instructions(&self) -> u64 {
        self.instructions() - self.vector_instructions + self.active_lanes
    }

    /// Mean fraction of the 32 lanes active per vector instruction (0 when none ran).
    pub fn active_lane_fraction(&self) -> f64 {
        if self.vector_instructions == 0 {
            return 0.0;
        }
        self.active_lanes as f64 / (self.vector_instructions as f64 * super::wave::LANES as f64)
    }

    /// Count one instruction of `family` issued with EXEC `exec`.
    pub(crate) fn issue(&mut self, family: Family, exec: u32) {
        self.per_family[family.index()] += 1;
        if family.is_vector() {
            self.vector_instructions += 1;
            self.active_lanes += u64::from(exec.count_ones());
        }
    }
}
