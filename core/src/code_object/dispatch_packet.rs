//! The 64-byte block a kernel reads through its dispatch pointer (the `dispatch ptr` user SGPR
//! pair): an `hsa_kernel_dispatch_packet_t` as an AQL packet processor would have left it.
//!
//! Layout (`hsa.h`, `hsa_kernel_dispatch_packet_t`; LLVM
//! `llvm/lib/Target/AMDGPU/AMDGPUPromoteAlloca.cpp`: `getLocalSizeYZ` reads the same fields):
//! `header` u16 @0, `setup` u16 @2 (bits 1:0 dimensions, `HSA_KERNEL_DISPATCH_PACKET_SETUP_DIMENSIONS`),
//! `workgroup_size_{x,y,z}` u16 @4/6/8, reserved u16 @10, `grid_size_{x,y,z}` u32 @12/16/20
//! (work-items), `private_segment_size` u32 @24, `group_segment_size` u32 @28,
//! `kernel_object` u64 @32 (the descriptor's address), `kernarg_address` u64 @40,
//! reserved u64 @48, `completion_signal` u64 @56 (0: none). The header is
//! HSA_PACKET_TYPE_KERNEL_DISPATCH (2) in bits 7:0 (`hsa.h`, `hsa_packet_type_t`); pm4rt
//! writes no fence scopes (the PM4 stream does the synchronisation).

use super::hidden::LaunchGeometry;

/// Size of the block.
pub const DISPATCH_PACKET_SIZE: usize = 64;
/// `HSA_PACKET_TYPE_KERNEL_DISPATCH` (`hsa.h`, `hsa_packet_type_t`).
pub const HSA_PACKET_TYPE_KERNEL_DISPATCH: u16 = 2;

/// What goes into the block besides the geometry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct DispatchPacketFields {
    /// Scratch bytes per work-item (`private_segment_size`).
    pub private_segment_size: u32,
    /// LDS bytes per workgroup, fixed plus dynamic (`group_segment_size`).
    pub group_segment_size: u32,
    /// GPU VA of the kernel descriptor (`kernel_object`).
    pub kernel_object: u64,
    /// GPU VA of the kernarg segment (`kernarg_address`).
    pub kernarg_address: u64,
}

/// The 64 bytes of the dispatch packet for a launch of `g`.
pub fn dispatch_packet(g: &LaunchGeometry, f: &DispatchPacketFields) -> [u8; DISPATCH_PACKET_SIZE] {
    let mut p = [0u8; DISPATCH_PACKET_SIZE];
    let mut put = |off: usize, bytes: &[u8]| p[off..off + bytes.len()].copy_from_slice(bytes);
    put(0, &HSA_PACKET_TYPE_KERNEL_DISPATCH.to_le_bytes());
    put(2, &(g.dims & 0x3).to_le_bytes());
    for d in 0..3 {
        let local = u16::try_from(g.local[d]).unwrap_or(u16::MAX);
        put(4 + 2 * d, &local.to_le_bytes());
        put(12 + 4 * d, &g.global[d].to_le_bytes());
    }
    put(24, &f.private_segment_size.to_le_bytes());
    put(28, &f.group_segment_size.to_le_bytes());
    put(32, &f.kernel_object.to_le_bytes());
    put(40, &f.kernarg_address.to_le_bytes());
    p
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_sit_at_the_hsa_h_offsets() {
        let g = LaunchGeometry::new([100, 6, 1], [32, 2, 1]);
        let f = DispatchPacketFields {
            private_segment_size: 0x44,
            group_segment_size: 0x1200,
            kernel_object: 0x1111_2222_3333_4440,
            kernarg_address: 0x5555_6666_7777_8880,
        };
        let p = dispatch_packet(&g, &f);
        let expect: [u8; 64] = [
            2, 0, 2, 0, // header: kernel dispatch; setup: 2 dimensions
            32, 0, 2, 0, 1, 0, 0, 0, // workgroup_size x/y/z, reserved0
            100, 0, 0, 0, 6, 0, 0, 0, 1, 0, 0, 0, // grid_size x/y/z
            0x44, 0, 0, 0, 0, 0x12, 0, 0, // private, group segment sizes
            0x40, 0x44, 0x33, 0x33, 0x22, 0x22, 0x11, 0x11, // kernel_object
            0x80, 0x88, 0x77, 0x77, 0x66, 0x66, 0x55, 0x55, // kernarg_address
            0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, // reserved2, completion_signal
        ];
        assert_eq!(p, expect);
    }
}
