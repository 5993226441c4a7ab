// Test corpus of user kernels for pm4rt's loader and launcher (built by ../build.sh).
//
// Built with -nogpulib, so the work-item functions are written here the way
// ROCm-Device-Libs' ockl computes them on code object v5: the workgroup size is
// hidden_group_size_* (u16 at implicit-argument offset 12 + 2*d), the whole-workgroup count
// hidden_block_count_* (u32 at 4*d), the partial-group size hidden_remainder_* (u16 at 18 + 2*d).

static inline uint group_size(int d) {
    return ((constant ushort *)__builtin_amdgcn_implicitarg_ptr())[6 + d];
}
static inline uint block_count(int d) {
    return ((constant uint *)__builtin_amdgcn_implicitarg_ptr())[d];
}
static inline uint remainder(int d) {
    return ((constant ushort *)__builtin_amdgcn_implicitarg_ptr())[9 + d];
}
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

// 3-D: every work-item of a (possibly partial) grid writes its coordinates.
kernel void coords3(global uint *out) {
    uint x = global_id(0), y = global_id(1), z = global_id(2);
    uint w = global_size(0), h = global_size(1), d = global_size(2);
    if (x < w && y < h && z < d) out[(z * h + y) * w + x] = x + 1000 * y + 1000000 * z;
}

// The dispatch packet: workgroup 0's first work-item copies grid/workgroup sizes out.
kernel void read_dispatch(global uint *out) {
    constant ushort *p16 = (constant ushort *)__builtin_amdgcn_dispatch_ptr();
    constant uint *p32 = (constant uint *)__builtin_amdgcn_dispatch_ptr();
    if (global_id(0) == 0) {
        out[0] = p16[2];
        out[1] = p16[3];
        out[2] = p16[4];
        out[3] = p32[3];
        out[4] = p32[4];
        out[5] = p32[5];
    }
}
