// Test corpus of user kernels for pm4rt's loader and launcher (built by ../build.sh).
//
// Built with -nogpulib, so the work-item functions are written here the way
// ROCm-Device-Libs' ockl computes them on code object v5: the workgroup size is
// hidden_group_size_* (u16 at implicit-argument offset 12 + 2*d), the whole-workgroup count
// hidden_block_count_* (u32 at 4*d), the partial-group size hidden_remainder_* (u16 at 18 + 2*d).

// A 16-bit field of the implicit arguments, read as part of its dword (gfx12 would otherwise
// use s_load_u16).
static inline uint hidden_u16(int byte) {
    uint w = ((constant uint *)__builtin_amdgcn_implicitarg_ptr())[byte >> 2];
    return (w >> ((byte & 2) * 8)) & 0xffff;
}
static inline uint group_size(int d) { return hidden_u16(12 + 2 * d); }
static inline uint block_count(int d) {
    return ((constant uint *)__builtin_amdgcn_implicitarg_ptr())[d];
}
static inline uint remainder(int d) { return hidden_u16(18 + 2 * d); }
static inline uint group_id(int d) {
    return d == 0 ? __builtin_amdgcn_workgroup_id_x()
         : d == 1 ? __builtin_amdgcn_workgroup_id_y()
                  : __builtin_amdgcn_workgroup_id_z();
}
static inline uint local_id(int d) {
    return d == 0 ? __builtin_amdgcn_workitem_id_x()
         : d == 1 ? __builtin_amdgcn_workitem_id_y()
                  : __builtin_amdgcn_workitem_id_z();
}
static inline uint global_id(int d) { return group_id(d) * group_size(d) + local_id(d); }
static inline uint global_size(int d) { return block_count(d) * group_size(d) + remainder(d); }

// 1-D: out[i] = in[i] * k + i for i < n (bounds checked: the grid may overshoot n).
kernel void scale_add(global float *out, global const float *in, float k, uint n) {
    uint i = global_id(0);
    if (i < n) out[i] = in[i] * k + (float)i;
}

// 3-D: every work-item of a (possibly partial) grid of at most 16 x 16 x 16 writes its
// coordinates into a 16 x 16 x 16 block of each output (x, y, z separately: the address
// arithmetic stays shifts and adds).
kernel void coords3(global uint *ox, global uint *oy, global uint *oz) {
    uint x = global_id(0), y = global_id(1), z = global_id(2);
    if (x < global_size(0) && y < global_size(1) && z < global_size(2)) {
        size_t i = ((size_t)z << 8) + ((size_t)y << 4) + (size_t)x;
        ox[i] = x;
        oy[i] = y;
        oz[i] = z;
    }
}

// The dispatch packet: workgroup 0's work-item 0 copies grid/workgroup sizes out.
kernel void read_dispatch(global uint *out) {
    constant ushort *p16 = (constant ushort *)__builtin_amdgcn_dispatch_ptr();
    constant uint *p32 = (constant uint *)__builtin_amdgcn_dispatch_ptr();
    if (__builtin_amdgcn_workgroup_id_x() == 0 && __builtin_amdgcn_workitem_id_x() == 0) {
        // Every other dword, so that the stores stay single dwords.
        out[0] = p16[2];
        out[2] = p16[3];
        out[4] = p16[4];
        out[6] = p32[3];
        out[8] = p32[4];
        out[10] = p32[5];
    }
}
