/* pm4rt kernel library: shared helpers (see ../README.md for the contract).
 *
 * Built with -nogpulib: no device library, so only clang builtins are used here. Every
 * kernel is wave32 with a 256-lane workgroup and reads nothing but its kernarg segment
 * pointer (no dispatch pointer, no implicit arguments).
 */
#ifndef PM4RT_COMMON_H
#define PM4RT_COMMON_H

#pragma OPENCL EXTENSION cl_khr_fp16 : enable

#define WG_SIZE 256u
#define WAVE_SIZE 32u
#define WAVES_PER_WG (WG_SIZE / WAVE_SIZE)

#define KERNEL kernel __attribute__((reqd_work_group_size(256, 1, 1)))

/* Lane id inside the workgroup (0..255). */
static inline uint local_id(void) { return __builtin_amdgcn_workitem_id_x(); }

/* Workgroup id in X. */
static inline uint group_id(void) { return __builtin_amdgcn_workgroup_id_x(); }

/* Lane id inside the wave (0..31). */
static inline uint lane_id(void) { return local_id() & (WAVE_SIZE - 1u); }

/* Wave index inside the workgroup (0..7), as a wave-uniform (scalar) value. */
static inline uint wave_id(void) {
    return (uint)__builtin_amdgcn_readfirstlane((int)(local_id() / WAVE_SIZE));
}

/* ds_swizzle bit-mask mode: and_mask 0x1f, or_mask 0, xor_mask = m (lanes exchange with
 * lane ^ m inside each group of 32). */
#define SWZ_XOR(m) (((m) << 10) | 0x1f)

/* Butterfly sum over the 32 lanes of a wave; every lane gets the same total, added in the
 * same order (xor 16, 8, 4, 2, 1). */
static inline float wave_sum(float v) {
    v += as_float(__builtin_amdgcn_ds_swizzle(as_int(v), SWZ_XOR(16)));
    v += as_float(__builtin_amdgcn_ds_swizzle(as_int(v), SWZ_XOR(8)));
    v += as_float(__builtin_amdgcn_ds_swizzle(as_int(v), SWZ_XOR(4)));
    v += as_float(__builtin_amdgcn_ds_swizzle(as_int(v), SWZ_XOR(2)));
    v += as_float(__builtin_amdgcn_ds_swizzle(as_int(v), SWZ_XOR(1)));
    return v;
}

static inline ulong max_u64(ulong a, ulong b) { return a > b ? a : b; }

/* ds_swizzle of a 64-bit value (two 32-bit swizzles; the pattern must be a constant). */
#define SWIZZLE_U64(v, pattern)                                                             \
    (((ulong)(uint)__builtin_amdgcn_ds_swizzle((int)(uint)((v) >> 32), (pattern)) << 32) |  \
     (ulong)(uint)__builtin_amdgcn_ds_swizzle((int)(uint)(v), (pattern)))

/* Maximum over the 32 lanes of a wave; every lane gets it. */
static inline ulong wave_max_u64(ulong v) {
    v = max_u64(v, SWIZZLE_U64(v, SWZ_XOR(16)));
    v = max_u64(v, SWIZZLE_U64(v, SWZ_XOR(8)));
    v = max_u64(v, SWIZZLE_U64(v, SWZ_XOR(4)));
    v = max_u64(v, SWIZZLE_U64(v, SWZ_XOR(2)));
    v = max_u64(v, SWIZZLE_U64(v, SWZ_XOR(1)));
    return v;
}

/* Workgroup barrier with LDS visibility (what barrier(CLK_LOCAL_MEM_FENCE) does). */
static inline void wg_barrier(void) {
    __builtin_amdgcn_fence(__ATOMIC_RELEASE, "workgroup");
    __builtin_amdgcn_s_barrier();
    __builtin_amdgcn_fence(__ATOMIC_ACQUIRE, "workgroup");
}

/* Ordered-u32 key of a float (README "argmax packing and NaN rule"): larger key = larger
 * float; every NaN maps to 0, below -inf (0x007FFFFF). */
static inline uint f32_key(float f) {
    uint bits = as_uint(f);
    if ((bits & 0x7FFFFFFFu) > 0x7F800000u) {
        return 0u;
    }
    return (bits & 0x80000000u) ? ~bits : (bits ^ 0x80000000u);
}

/* The packed argmax candidate: key << 32 | (0xFFFFFFFF - index). */
static inline ulong argmax_pack(float f, uint index) {
    return ((ulong)f32_key(f) << 32) | (ulong)(0xFFFFFFFFu - index);
}

/* One 64-bit atomic max on global memory, device scope. */
static inline void atomic_max_u64(global ulong *out, ulong v) {
    __opencl_atomic_fetch_max((volatile global atomic_ulong *)out, v, memory_order_relaxed,
                              memory_scope_device);
}

/* Reduce one packed candidate per lane to the workgroup maximum and issue a single atomic
 * max from lane 0 of wave 0. Must be reached by all 256 lanes (it has barriers). A zero
 * maximum (no candidate) is skipped: the caller zeroes *out, so it would change nothing. */
static inline void wg_argmax_commit(local ulong *scratch, ulong v, global ulong *out) {
    v = wave_max_u64(v);
    if (lane_id() == 0u) {
        scratch[wave_id()] = v;
    }
    wg_barrier();
    if (local_id() == 0u) {
        ulong m = scratch[0];
        for (uint i = 1u; i < WAVES_PER_WG; ++i) {
            m = max_u64(m, scratch[i]);
        }
        if (m != 0ul) {
            atomic_max_u64(out, m);
        }
    }
}

/* Little-endian f16 at an even byte offset of a byte buffer, as f32. */
static inline float load_f16(const global uchar *p) {
    return (float)as_half(*(const global ushort *)p);
}

#endif
