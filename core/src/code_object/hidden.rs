//! Hidden kernel arguments: what each `hidden_*` `.value_kind` of the metadata means and the
//! value a launcher writes at the argument's `.offset` for a given launch.
//!
//! The kinds and their sizes are those LLVM emits for code object v5
//! (`llvm/lib/Target/AMDGPU/AMDGPUHSAMetadataStreamer.cpp`:
//! `MetadataStreamerMsgPackV5::emitHiddenKernelArgs`; AMDGPUUsage.rst, "Code Object V5
//! Metadata", table "AMDHSA Code Object V5 Kernel Argument Metadata Map Additions"); the values
//! follow ROCm's runtime (`ROCm/clr` `rocclr/device/rocm/rocvirtual.cpp`:
//! `VirtualGPU::submitKernelInternal`): block count = global / local (whole workgroups),
//! group size = local, remainder = global % local, grid dims = the NDRange's dimensionality,
//! dynamic LDS size = the launch's dynamic LDS bytes. Code object v4's hidden kinds
//! (`hidden_global_offset_*`, `hidden_none`, the service pointers) are a subset.
//!
//! Design: the placement always comes from the metadata (`.offset`, `.size`), never from a
//! fixed layout, so a kernel whose compiler dropped unused hidden arguments is filled
//! correctly. Kinds that need a runtime service pm4rt does not provide (printf and hostcall
//! buffers, multigrid sync, the device heap, device-side enqueue, the queue pointer, the
//! aperture bases that gfx11/gfx12 kernels read from registers instead) are refused with the
//! kernel and kind named — a silent zero there would be a wrong result or a GPU fault.

/// The meaning of one hidden argument kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Hidden {
    /// `hidden_block_count_{x,y,z}`: whole workgroups in the dimension (global / local).
    BlockCount(usize),
    /// `hidden_group_size_{x,y,z}`: workgroup size in the dimension.
    GroupSize(usize),
    /// `hidden_remainder_{x,y,z}`: work-items of the partial last workgroup (global % local).
    Remainder(usize),
    /// `hidden_global_offset_{x,y,z}`: the NDRange offset; pm4rt launches without one (0).
    GlobalOffset(usize),
    /// `hidden_grid_dims`: dimensionality of the launch (1, 2 or 3).
    GridDims,
    /// `hidden_dynamic_lds_size`: LDS bytes allocated at launch beyond the fixed size.
    DynamicLdsSize,
    /// `hidden_none`: a placeholder the runtime leaves zero.
    Zero,
    /// A kind pm4rt cannot honour; the string says why.
    Unsupported(&'static str),
}

/// Every hidden kind LLVM emits, with the size it gives it (0: any size, for `hidden_none`).
const HIDDEN_KINDS: &[(&str, Hidden, u32)] = &[
    ("hidden_block_count_x", Hidden::BlockCount(0), 4),
    ("hidden_block_count_y", Hidden::BlockCount(1), 4),
    ("hidden_block_count_z", Hidden::BlockCount(2), 4),
    ("hidden_group_size_x", Hidden::GroupSize(0), 2),
    ("hidden_group_size_y", Hidden::GroupSize(1), 2),
    ("hidden_group_size_z", Hidden::GroupSize(2), 2),
    ("hidden_remainder_x", Hidden::Remainder(0), 2),
    ("hidden_remainder_y", Hidden::Remainder(1), 2),
    ("hidden_remainder_z", Hidden::Remainder(2), 2),
    ("hidden_global_offset_x", Hidden::GlobalOffset(0), 8),
    ("hidden_global_offset_y", Hidden::GlobalOffset(1), 8),
    ("hidden_global_offset_z", Hidden::GlobalOffset(2), 8),
    ("hidden_grid_dims", Hidden::GridDims, 2),
    ("hidden_dynamic_lds_size", Hidden::DynamicLdsSize, 4),
    ("hidden_none", Hidden::Zero, 0),
    ("hidden_printf_buffer", Hidden::Unsupported("printf needs a host-read buffer"), 8),
    ("hidden_hostcall_buffer", Hidden::Unsupported("hostcall needs a host service thread"), 8),
    (
        "hidden_multigrid_sync_arg",
        Hidden::Unsupported("multi-grid synchronisation is not provided"),
        8,
    ),
    ("hidden_heap_v1", Hidden::Unsupported("the device-side malloc heap is not provided"), 8),
    ("hidden_default_queue", Hidden::Unsupported("device-side enqueue is not provided"), 8),
    ("hidden_completion_action", Hidden::Unsupported("device-side enqueue is not provided"), 8),
    ("hidden_queue_ptr", Hidden::Unsupported("there is no HSA queue (amd_queue_t)"), 8),
    (
        "hidden_private_base",
        Hidden::Unsupported("aperture bases are only for targets without aperture registers"),
        4,
    ),
    (
        "hidden_shared_base",
        Hidden::Unsupported("aperture bases are only for targets without aperture registers"),
        4,
    ),
];

/// The meaning of hidden kind `name` and the size LLVM gives it (`None` for a kind LLVM does
/// not emit, which pm4rt refuses like an unsupported one).
pub fn classify(name: &str) -> Option<(Hidden, u32)> {
    HIDDEN_KINDS.iter().find(|(n, _, _)| *n == name).map(|&(_, h, size)| (h, size))
}

/// Why a kernel's hidden argument cannot be filled, if one cannot.
pub fn unsupported_reason(name: &str, size: u32) -> Option<String> {
    match classify(name) {
        None => Some(format!("{name} is not a hidden argument kind pm4rt knows")),
        Some((Hidden::Unsupported(why), _)) => Some(format!("{name}: {why}")),
        Some((_, want)) if want != 0 && want != size => {
            Some(format!("{name} has size {size}, expected {want}"))
        }
        Some(_) => None,
    }
}

/// The geometry of one launch, in work-items (as an OpenCL NDRange or an AQL packet's
/// `grid_size_*`): `global` work-items in total per dimension, `local` per workgroup. A
/// `global` that is not a multiple of `local` leaves a partial last workgroup.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct LaunchGeometry {
    /// Work-items per dimension (the AQL `grid_size_*`).
    pub global: [u32; 3],
    /// Workgroup size per dimension (the AQL `workgroup_size_*`).
    pub local: [u32; 3],
    /// Dimensionality (1..=3): `hidden_grid_dims` and the AQL `setup` field.
    pub dims: u16,
    /// LDS bytes allocated at launch beyond `group_segment_fixed_size`.
    pub dynamic_lds: u32,
}

impl LaunchGeometry {
    /// A launch of `workgroups` whole workgroups of `block` work-items (what DISPATCH_DIRECT
    /// counts), dimensionality the highest dimension with more than one work-item (at least 1).
    pub fn from_workgroups(workgroups: [u32; 3], block: [u32; 3]) -> LaunchGeometry {
        let global = [0, 1, 2].map(|d| workgroups[d].saturating_mul(block[d]));
        LaunchGeometry::new(global, block)
    }

    /// A launch of `global` work-items in workgroups of `local` (partial workgroups allowed),
    /// dimensionality the highest dimension with more than one work-item (at least 1).
    pub fn new(global: [u32; 3], local: [u32; 3]) -> LaunchGeometry {
        let dims = if global[2] > 1 || local[2] > 1 {
            3
        } else if global[1] > 1 || local[1] > 1 {
            2
        } else {
            1
        };
        LaunchGeometry { global, local, dims, dynamic_lds: 0 }
    }

    /// The same launch with `bytes` of dynamic LDS.
    pub fn with_dynamic_lds(self, bytes: u32) -> LaunchGeometry {
        LaunchGeometry { dynamic_lds: bytes, ..self }
    }

    /// Workgroups to dispatch per dimension, counting a partial one: `ceil(global / local)`.
    pub fn workgroups(&self) -> [u32; 3] {
        [0, 1, 2].map(|d| self.global[d].div_ceil(self.local[d].max(1)))
    }

    /// Check the geometry: every extent non-zero, workgroup sizes fit the 16-bit AQL and
    /// hidden-argument fields and at most 1024 work-items per workgroup (the hardware's
    /// limit, AMDGPUUsage "max_flat_workgroup_size"), dims 1..=3.
    pub fn check(&self) -> Result<(), String> {
        for d in 0..3 {
            if self.global[d] == 0 || self.local[d] == 0 {
                return Err(format!(
                    "dimension {d}: global {} / local {} must be non-zero",
                    self.global[d], self.local[d]
                ));
            }
        }
        let items: u64 = self.local.iter().map(|&l| u64::from(l)).product();
        if items > 1024 {
            return Err(format!(
                "workgroup {:?} has {items} work-items, more than 1024",
                self.local
            ));
        }
        if !(1..=3).contains(&self.dims) {
            return Err(format!("dims {} is not 1, 2 or 3", self.dims));
        }
        Ok(())
    }

    /// The value of hidden argument `h` for this launch (`None` for an unsupported kind).
    pub fn hidden_value(&self, h: Hidden) -> Option<u64> {
        Some(match h {
            Hidden::BlockCount(d) => u64::from(self.global[d] / self.local[d].max(1)),
            Hidden::GroupSize(d) => u64::from(self.local[d]),
            Hidden::Remainder(d) => u64::from(self.global[d] % self.local[d].max(1)),
            Hidden::GlobalOffset(_) | Hidden::Zero => 0,
            Hidden::GridDims => u64::from(self.dims),
            Hidden::DynamicLdsSize => u64::from(self.dynamic_lds),
            Hidden::Unsupported(_) => return None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_are_llvms() {
        // Sizes from AMDGPUHSAMetadataStreamer.cpp emitHiddenKernelArgs (Int32Ty / Int16Ty /
        // Int64Ty / pointer).
        assert_eq!(classify("hidden_block_count_y"), Some((Hidden::BlockCount(1), 4)));
        assert_eq!(classify("hidden_group_size_z"), Some((Hidden::GroupSize(2), 2)));
        assert_eq!(classify("hidden_remainder_x"), Some((Hidden::Remainder(0), 2)));
        assert_eq!(classify("hidden_global_offset_z"), Some((Hidden::GlobalOffset(2), 8)));
        assert_eq!(classify("hidden_grid_dims"), Some((Hidden::GridDims, 2)));
        assert_eq!(classify("hidden_dynamic_lds_size"), Some((Hidden::DynamicLdsSize, 4)));
        assert_eq!(classify("hidden_bogus"), None);
    }

    #[test]
    fn unsupported_kinds_say_why() {
        for k in ["hidden_printf_buffer", "hidden_hostcall_buffer", "hidden_multigrid_sync_arg"] {
            let why = unsupported_reason(k, 8).unwrap();
            assert!(why.starts_with(k), "{why}");
        }
        assert!(unsupported_reason("hidden_default_queue", 8).is_some());
        assert!(unsupported_reason("hidden_completion_action", 8).is_some());
        assert!(unsupported_reason("hidden_block_count_x", 4).is_none());
        assert!(unsupported_reason("hidden_block_count_x", 8).unwrap().contains("size 8"));
        assert!(unsupported_reason("hidden_none", 24).is_none());
    }

    #[test]
    fn partial_workgroups_split_into_count_and_remainder() {
        // 100 x 7 x 3 work-items in 32 x 4 x 2 workgroups: 3 whole + 4, 1 whole + 3, 1 + 1.
        let g = LaunchGeometry::new([100, 7, 3], [32, 4, 2]).with_dynamic_lds(256);
        assert_eq!(g.dims, 3);
        assert_eq!(g.workgroups(), [4, 2, 2]);
        assert_eq!(g.hidden_value(Hidden::BlockCount(0)), Some(3));
        assert_eq!(g.hidden_value(Hidden::Remainder(0)), Some(4));
        assert_eq!(g.hidden_value(Hidden::BlockCount(1)), Some(1));
        assert_eq!(g.hidden_value(Hidden::Remainder(1)), Some(3));
        assert_eq!(g.hidden_value(Hidden::Remainder(2)), Some(1));
        assert_eq!(g.hidden_value(Hidden::GroupSize(1)), Some(4));
        assert_eq!(g.hidden_value(Hidden::GlobalOffset(0)), Some(0));
        assert_eq!(g.hidden_value(Hidden::DynamicLdsSize), Some(256));
        assert_eq!(g.hidden_value(Hidden::Unsupported("x")), None);
    }

    #[test]
    fn dims_and_geometry_checks() {
        assert_eq!(LaunchGeometry::from_workgroups([5, 1, 1], [64, 1, 1]).dims, 1);
        assert_eq!(LaunchGeometry::from_workgroups([5, 2, 1], [8, 8, 1]).dims, 2);
        assert_eq!(LaunchGeometry::from_workgroups([5, 2, 1], [8, 8, 1]).global, [40, 16, 1]);
        assert!(LaunchGeometry::new([0, 1, 1], [1, 1, 1]).check().is_err());
        assert!(LaunchGeometry::new([64, 1, 1], [0, 1, 1]).check().is_err());
        assert!(LaunchGeometry::new([2048, 1, 1], [1025, 1, 1]).check().is_err());
        assert!(LaunchGeometry::new([2048, 2, 1], [1024, 1, 1]).check().is_ok());
    }
}
