/* ISA interpreter test corpus: small OpenCL C kernels whose only purpose is to make clang-19
 * emit instruction families the simulator's interpreter must execute (sim/tests/isa_corpus.rs
 * checks every output against values computed independently in Rust).
 *
 * Every kernel: wave32, 256-lane workgroups, reads only its kernarg pointer (builtins, no
 * get_global_id: that would read the hidden implicit arguments). Element i = group * 256 +
 * lane; lanes with i >= n do no memory access (partial last waves, exec-masked lanes).
 */
#pragma OPENCL EXTENSION cl_khr_fp16 : enable

#define WG 256u
#define KERNEL kernel __attribute__((reqd_work_group_size(256, 1, 1)))

static inline uint lid(void) { return __builtin_amdgcn_workitem_id_x(); }
static inline uint gid(void) { return __builtin_amdgcn_workgroup_id_x(); }
static inline uint item(void) { return gid() * WG + lid(); }

/* -nogpulib: no OpenCL library, so barrier and atomics come from clang builtins. */
static inline void lds_barrier(void) {
    __builtin_amdgcn_fence(__ATOMIC_RELEASE, "workgroup");
    __builtin_amdgcn_s_barrier();
    __builtin_amdgcn_fence(__ATOMIC_ACQUIRE, "workgroup");
}
#define ATOMIC(op, p, v) __atomic_##op((p), (v), __ATOMIC_RELAXED)
static inline uint popc(uint x) { return (uint)__builtin_popcount(x); }
static inline uint mulhi_u(uint x, uint y) { return (uint)(((ulong)x * y) >> 32); }
static inline int mulhi_s(int x, int y) { return (int)(((long)x * y) >> 32); }

/* (a) dst[g] = sum of src[g*256 .. g*256+256) (elements >= n count 0): an LDS tree with a
 * barrier per level. */
KERNEL void lds_reduce_u32(global const uint *src, global uint *dst, uint n) {
    local uint s[256];
    const uint l = lid(), i = item();
    s[l] = i < n ? src[i] : 0u;
    lds_barrier();
    for (uint stride = WG / 2; stride > 0; stride /= 2) {
        if (l < stride) {
            s[l] += s[l + stride];
        }
        lds_barrier();
    }
    if (l == 0) {
        dst[gid()] = s[0];
    }
}

/* (b) Global atomics over all items: acc[0] += src[i], acc[1] = max(acc[1], src[i]),
 * acc[2] = min(acc[2], src[i]), acc[3] |= 1 << (src[i] & 31); per workgroup through LDS
 * atomics: wg[4g] = sum of (src[i] & 0xffff), wg[4g+1] = max, wg[4g+2] = number of odd items,
 * wg[4g+3] = xor. */
KERNEL void atomics_u32(global const uint *src, global uint *acc,
                        global uint *wg, uint n) {
    local uint l_sum, l_max, l_odd, l_xor;
    const uint l = lid(), i = item();
    if (l == 0) {
        l_sum = 0u;
        l_max = 0u;
        l_odd = 0u;
        l_xor = 0u;
    }
    lds_barrier();
    if (i < n) {
        const uint v = src[i];
        ATOMIC(fetch_add, &acc[0], v);
        ATOMIC(fetch_max, &acc[1], v);
        ATOMIC(fetch_min, &acc[2], v);
        ATOMIC(fetch_or, &acc[3], 1u << (v & 31u));
        ATOMIC(fetch_add, &l_sum, v & 0xffffu);
        ATOMIC(fetch_max, &l_max, v);
        if (v & 1u) {
            ATOMIC(fetch_add, &l_odd, 1u);
        }
        ATOMIC(fetch_xor, &l_xor, v);
    }
    lds_barrier();
    if (l == 0) {
        wg[4 * gid() + 0] = l_sum;
        wg[4 * gid() + 1] = l_max;
        wg[4 * gid() + 2] = l_odd;
        wg[4 * gid() + 3] = l_xor;
    }
}

/* (c) A scalar loop (trip count count + group, uniform) and a lane-divergent loop (trip
 * count lane & 7): dst[i] = result. */
KERNEL void loops_u32(global uint *dst, uint count, uint n) {
    const uint l = lid(), i = item();
    uint acc = l;
    const uint trips = count + gid();
    for (uint k = 0; k < trips; k++) {
        acc = acc * 3u + k;
        if ((k & 3u) == 2u) {
            acc ^= acc >> 7;
        }
    }
    for (uint k = 0; k < (l & 7u); k++) {
        acc += (acc << 3) ^ k;
    }
    if (i < n) {
        dst[i] = acc;
    }
}

/* (d) 32/64-bit integer math on x = a[i], y = b[i]: 8 results per item at out[8i..8i+8). */
KERNEL void int_math(global const uint *a, global const uint *b, global uint *out, uint n) {
    const uint i = item();
    if (i >= n) {
        return;
    }
    const uint x = a[i], y = b[i];
    const ulong p = (ulong)x * (ulong)y + ((ulong)y << (x & 31u));
    const ulong w = ((ulong)x << 32) | y;
    const ulong q = (w * ((ulong)y | 1ul) + w) >> (y & 63u);
    global uint *o = out + 8 * i;
    o[0] = mulhi_u(x, y);
    o[1] = (uint)p;
    o[2] = (uint)(p >> 32);
    o[3] = (uint)q;
    o[4] = (uint)(q >> 32);
    o[5] = popc(x) + (uint)__builtin_popcountl((ulong)y << 17) * 64u;
    o[6] = ((x >> (y & 15u)) & 0xffu) | ((uint)mulhi_s((int)x, (int)y) & 0xff00u);
    o[7] = (x ? (uint)__builtin_clz(x) : 32u) + 64u * (uint)(((int)x) >> (y & 31u) < 0) + (x < y ? 0x1000u : 0u);
}

/* (e) Division and remainder by the runtime value d (and d + lane as a per-lane divisor):
 * out[4i] = a[i] / d, out[4i+1] = a[i] % d, out[4i+2] = (int)a[i] / -(int)(d + lane % 5),
 * out[4i+3] = (int)a[i] % (int)(d + lane % 5). */
KERNEL void divrem_u32(global const uint *a, global uint *out, uint d, uint n) {
    const uint i = item();
    if (i >= n) {
        return;
    }
    const uint x = a[i];
    const int e = (int)(d + lid() % 5u);
    out[4 * i + 0] = x / d;
    out[4 * i + 1] = x % d;
    out[4 * i + 2] = (uint)((int)x / -e);
    out[4 * i + 3] = (uint)((int)x % e);
}

/* (f) Cross-lane operations inside a wave on v = a[i] (items >= n hold v = 0 but write
 * nothing): out[4i] = v of lane 5 of the wave (readlane), out[4i+1] = v of the wave's first
 * lane (readfirstlane), out[4i+2] = v of lane ^ 3 (ds_swizzle xor 3), out[4i+3] = v of lane
 * (31 - lane) (ds_bpermute). */
KERNEL void cross_lane(global const uint *a, global uint *out, uint n) {
    const uint l = lid(), i = item();
    const uint v = i < n ? a[i] : 0u;
    const uint r5 = (uint)__builtin_amdgcn_readlane((int)v, 5);
    const uint r0 = (uint)__builtin_amdgcn_readfirstlane((int)v);
    const uint sw = (uint)__builtin_amdgcn_ds_swizzle((int)v, (3 << 10) | 0x1f);
    const uint bp = (uint)__builtin_amdgcn_ds_bpermute((int)((31u - (l & 31u)) * 4u), (int)v);
    if (i < n) {
        out[4 * i + 0] = r5;
        out[4 * i + 1] = r0;
        out[4 * i + 2] = sw;
        out[4 * i + 3] = bp;
    }
}

/* (g) f16 arithmetic on x = a[i], y = b[i] (binary16 bits): out[4i] = x * y + x,
 * out[4i+1] = max(x, y) - min(x, y), both as binary16 bits; out[4i+2], out[4i+3] = low and
 * high 16 bits of float(x * y) (the f32 conversion of the f16 product). */
KERNEL void f16_math(global const ushort *a, global const ushort *b, global ushort *out,
                     uint n) {
    const uint i = item();
    if (i >= n) {
        return;
    }
    const half x = as_half(a[i]), y = as_half(b[i]);
    const half p = x * y;
    const half s = p + x;
    const half d = (x > y ? x : y) - (x < y ? x : y);
    const uint f = as_uint((float)p);
    out[4 * i + 0] = as_ushort(s);
    out[4 * i + 1] = as_ushort(d);
    out[4 * i + 2] = (ushort)f;
    out[4 * i + 3] = (ushort)(f >> 16);
}

/* (h) DPP inside a wave on v = a[i] (items >= n hold v = 0 but write nothing); rows are 16
 * lanes: out[4i] = v of lane (lane & ~3) | (3 - lane & 3) (quad_perm [3,2,1,0]);
 * out[4i+1] = v of lane - 1 in the row, 0xdeadbeef for the row's first lane (row_shr:1 without
 * bound_ctrl keeps the old value); out[4i+2] = v of lane row + 15 - lane % 16 (row_mirror);
 * out[4i+3] = v of lane (lane & ~7) | (7 - lane & 7) (dpp8 [7,6,5,4,3,2,1,0]). */
KERNEL void dpp_u32(global const uint *a, global uint *out, uint n) {
    const uint i = item();
    const int v = (int)(i < n ? a[i] : 0u);
    const int q = __builtin_amdgcn_update_dpp((int)0, v, 0x1b, 0xf, 0xf, false);
    const int s = __builtin_amdgcn_update_dpp((int)0xdeadbeef, v, 0x111, 0xf, 0xf, false);
    const int m = __builtin_amdgcn_update_dpp((int)0, v, 0x140, 0xf, 0xf, false);
    const int r = __builtin_amdgcn_mov_dpp8(v, 7 | 6 << 3 | 5 << 6 | 4 << 9 | 3 << 12 | 2 << 15 |
                                                   1 << 18 | 0 << 21);
    if (i < n) {
        out[4 * i + 0] = (uint)q;
        out[4 * i + 1] = (uint)s;
        out[4 * i + 2] = (uint)m;
        out[4 * i + 3] = (uint)r;
    }
}

/* (i) Packed f16 (half2) on x = a[i], y = b[i] (two binary16 each): out[2i] = x * y + x,
 * out[2i+1] = x - y, each computed per component with one rounding per operation. */
KERNEL void half2_math(global const uint *a, global const uint *b, global uint *out, uint n) {
    const uint i = item();
    if (i >= n) {
        return;
    }
    const half2 x = as_half2(a[i]), y = as_half2(b[i]);
    const half2 p = x * y;
    out[2 * i + 0] = as_uint(p + x);
    out[2 * i + 1] = as_uint(x - y);
}
