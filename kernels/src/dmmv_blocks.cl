/* DMMV and DMMV fused with argmax for the block formats F16, BF16, Q4_1, Q5_0, Q5_1, Q4_K,
 * Q5_K and Q6_K (layouts: ggml ggml-common.h block structs; values: ggml-quants.c
 * dequantize_row_*). One row per wave as in dmmv.cl. The lanes split the row in units of 32
 * values: F16 / BF16 lane l takes columns l, l+32, ...; the 32-value formats lane l takes
 * blocks l, l+32, ...; the K-quants (256-value super-blocks of eight 32-value sub-blocks)
 * lane l takes sub-blocks l, l+32, ... Each lane dequantizes every value of its units exactly
 * as ggml does (the same f32 operations: scale products exact, one rounded add of the
 * min) and accumulates acc = fma(w, x, acc) over them in increasing column order; the lanes
 * are combined by wave_sum. Every block size is even and blocks start at even offsets, so
 * only u16 loads are used. Contract: ../README.md.
 */
#include "common.h"

/* Byte i of a block at an even address, from a u16 load. */
static inline uint blk_byte(const global uchar *blk, uint i) {
    const global ushort *p = (const global ushort *)blk;
    return ((uint)p[i >> 1] >> (8u * (i & 1u))) & 0xFFu;
}

/* Little-endian u32 at an even offset of a block, from two u16 loads. */
static inline uint blk_u32(const global uchar *blk, uint i) {
    const global ushort *p = (const global ushort *)(blk + i);
    return (uint)p[0] | ((uint)p[1] << 16);
}

/* F16 row: acc = fma(w[k], x[k], acc) over the lane's columns. */
static inline float dot_row_f16(const global uchar *w, const global float *x, uint row,
                                uint cols) {
    const global ushort *wr = (const global ushort *)w + (ulong)row * cols;
    float acc = 0.0f;
    for (uint k = lane_id(); k < cols; k += WAVE_SIZE) {
        acc = __builtin_fmaf((float)as_half(wr[k]), x[k], acc);
    }
    return wave_sum(acc);
}

/* BF16 row: the value is the f32 whose upper half is the stored 16 bits. */
static inline float dot_row_bf16(const global uchar *w, const global float *x, uint row,
                                 uint cols) {
    const global ushort *wr = (const global ushort *)w + (ulong)row * cols;
    float acc = 0.0f;
    for (uint k = lane_id(); k < cols; k += WAVE_SIZE) {
        acc = __builtin_fmaf(as_float((uint)wr[k] << 16), x[k], acc);
    }
    return wave_sum(acc);
}

/* Q4_1: 20-byte blocks {f16 d; f16 m; u8 qs[16]}; value j < 16 = d * lo(qs[j]) + m, value
 * j + 16 = d * hi(qs[j]) + m. */
static inline float dot_row_q4_1(const global uchar *w, const global float *x, uint row,
                                 uint cols) {
    const uint nb = cols / 32u;
    const global uchar *wr = w + (ulong)row * nb * 20u;
    float acc = 0.0f;
    for (uint b = lane_id(); b < nb; b += WAVE_SIZE) {
        const global uchar *blk = wr + (ulong)b * 20u;
        const global float *xb = x + (ulong)b * 32u;
        const float d = load_f16(blk);
        const float m = load_f16(blk + 2);
        for (uint j = 0; j < 16u; ++j) {
            acc = __builtin_fmaf(d * (float)(blk_byte(blk, 4u + j) & 0xFu) + m, xb[j], acc);
        }
        for (uint j = 0; j < 16u; ++j) {
            acc = __builtin_fmaf(d * (float)(blk_byte(blk, 4u + j) >> 4) + m, xb[j + 16u], acc);
        }
    }
    return wave_sum(acc);
}

/* 5-bit quant j of a Q5_0 / Q5_1 block: nibble from qs (low nibbles first), bit j of qh. */
static inline uint q5_quant(const global uchar *qs, uint qh, uint j) {
    const uint byte = blk_byte(qs, j & 15u);
    const uint nib = j < 16u ? (byte & 0xFu) : (byte >> 4);
    return nib | (((qh >> j) & 1u) << 4);
}

/* Q5_0: 22-byte blocks {f16 d; u8 qh[4]; u8 qs[16]}; value = (q - 16) * d. */
static inline float dot_row_q5_0(const global uchar *w, const global float *x, uint row,
                                 uint cols) {
    const uint nb = cols / 32u;
    const global uchar *wr = w + (ulong)row * nb * 22u;
    float acc = 0.0f;
    for (uint b = lane_id(); b < nb; b += WAVE_SIZE) {
        const global uchar *blk = wr + (ulong)b * 22u;
        const global float *xb = x + (ulong)b * 32u;
        const float d = load_f16(blk);
        const uint qh = blk_u32(blk, 2u);
        for (uint j = 0; j < 32u; ++j) {
            const float v = (float)((int)q5_quant(blk + 6, qh, j) - 16) * d;
            acc = __builtin_fmaf(v, xb[j], acc);
        }
    }
    return wave_sum(acc);
}

/* Q5_1: 24-byte blocks {f16 d; f16 m; u8 qh[4]; u8 qs[16]}; value = d * q + m. */
static inline float dot_row_q5_1(const global uchar *w, const global float *x, uint row,
                                 uint cols) {
    const uint nb = cols / 32u;
    const global uchar *wr = w + (ulong)row * nb * 24u;
    float acc = 0.0f;
    for (uint b = lane_id(); b < nb; b += WAVE_SIZE) {
        const global uchar *blk = wr + (ulong)b * 24u;
        const global float *xb = x + (ulong)b * 32u;
        const float d = load_f16(blk);
        const float m = load_f16(blk + 2);
        const uint qh = blk_u32(blk, 4u);
        for (uint j = 0; j < 32u; ++j) {
            acc = __builtin_fmaf(d * (float)q5_quant(blk + 8, qh, j) + m, xb[j], acc);
        }
    }
    return wave_sum(acc);
}

/* Scale (6 bits) and min (6 bits) of sub-block s of a Q4_K / Q5_K super-block from its 12
 * packed scale bytes (ggml-quants.c: get_scale_min_k4). */
static inline uint2 scale_min_k4(const global uchar *sc, uint s) {
    if (s < 4u) {
        return (uint2)(blk_byte(sc, s) & 63u, blk_byte(sc, s + 4u) & 63u);
    }
    const uint hi = blk_byte(sc, s + 4u);
    return (uint2)((hi & 0xFu) | ((blk_byte(sc, s - 4u) >> 6) << 4),
                   (hi >> 4) | ((blk_byte(sc, s) >> 6) << 4));
}

/* Q4_K: 144-byte super-blocks {f16 d; f16 dmin; u8 scales[12]; u8 qs[128]}; value i of
 * sub-block s = (d * sc) * q - (dmin * mn), q = nibble s % 2 of qs[32 (s / 2) + i]. */
static inline float dot_row_q4_k(const global uchar *w, const global float *x, uint row,
                                 uint cols) {
    const uint nu = cols / 32u;
    const global uchar *wr = w + (ulong)row * (cols / 256u) * 144u;
    float acc = 0.0f;
    for (uint u = lane_id(); u < nu; u += WAVE_SIZE) {
        const global uchar *blk = wr + (ulong)(u / 8u) * 144u;
        const uint s = u % 8u;
        const global float *xb = x + (ulong)u * 32u;
        const uint2 scm = scale_min_k4(blk + 4, s);
        const float d1 = load_f16(blk) * (float)scm.x;
        const float m1 = load_f16(blk + 2) * (float)scm.y;
        const global uchar *qs = blk + 16u + 32u * (s / 2u);
        const uint shift = 4u * (s & 1u);
        for (uint i = 0; i < 32u; ++i) {
            const float v = d1 * (float)((blk_byte(qs, i) >> shift) & 0xFu) - m1;
            acc = __builtin_fmaf(v, xb[i], acc);
        }
    }
    return wave_sum(acc);
}

/* Q5_K: 176-byte super-blocks {f16 d; f16 dmin; u8 scales[12]; u8 qh[32]; u8 qs[128]}; as
 * Q4_K with q |= (bit s of qh[i]) << 4. */
static inline float dot_row_q5_k(const global uchar *w, const global float *x, uint row,
                                 uint cols) {
    const uint nu = cols / 32u;
    const global uchar *wr = w + (ulong)row * (cols / 256u) * 176u;
    float acc = 0.0f;
    for (uint u = lane_id(); u < nu; u += WAVE_SIZE) {
        const global uchar *blk = wr + (ulong)(u / 8u) * 176u;
        const uint s = u % 8u;
        const global float *xb = x + (ulong)u * 32u;
        const uint2 scm = scale_min_k4(blk + 4, s);
        const float d1 = load_f16(blk) * (float)scm.x;
        const float m1 = load_f16(blk + 2) * (float)scm.y;
        const global uchar *qh = blk + 16u;
        const global uchar *qs = blk + 48u + 32u * (s / 2u);
        const uint shift = 4u * (s & 1u);
        for (uint i = 0; i < 32u; ++i) {
            const uint q = ((blk_byte(qs, i) >> shift) & 0xFu) | (((blk_byte(qh, i) >> s) & 1u) << 4);
            acc = __builtin_fmaf(d1 * (float)q - m1, xb[i], acc);
        }
    }
    return wave_sum(acc);
}

/* Q6_K: 210-byte super-blocks {u8 ql[128]; u8 qh[64]; i8 scales[16]; f16 d}; 32-value group
 * g = 4 h + k: value i has low nibble k / 2 of ql[64 h + 32 (k % 2) + i], high bits
 * (qh[32 h + i] >> 2 k) & 3, q = (lo | hi << 4) - 32, value = (d * scales[2 g + i / 16]) * q. */
static inline float dot_row_q6_k(const global uchar *w, const global float *x, uint row,
                                 uint cols) {
    const uint nu = cols / 32u;
    const global uchar *wr = w + (ulong)row * (cols / 256u) * 210u;
    float acc = 0.0f;
    for (uint u = lane_id(); u < nu; u += WAVE_SIZE) {
        const global uchar *blk = wr + (ulong)(u / 8u) * 210u;
        const uint g = u % 8u;
        const uint h = g / 4u;
        const uint k = g % 4u;
        const global float *xb = x + (ulong)u * 32u;
        const float d = load_f16(blk + 208);
        const global uchar *ql = blk + 64u * h + 32u * (k & 1u);
        const global uchar *qh = blk + 128u + 32u * h;
        const uint lshift = 4u * (k / 2u);
        const uint hshift = 2u * k;
        for (uint i = 0; i < 32u; ++i) {
            const uint lo = (blk_byte(ql, i) >> lshift) & 0xFu;
            const uint hi = (blk_byte(qh, i) >> hshift) & 3u;
            const int q = (int)(lo | (hi << 4)) - 32;
            const float sc = (float)(int)(char)(uchar)blk_byte(blk, 192u + 2u * g + i / 16u);
            acc = __builtin_fmaf((d * sc) * (float)q, xb[i], acc);
        }
    }
    return wave_sum(acc);
}

DMMV_KERNEL(dmmv_f16, uchar, dot_row_f16)
DMMV_KERNEL(dmmv_bf16, uchar, dot_row_bf16)
DMMV_KERNEL(dmmv_q4_1, uchar, dot_row_q4_1)
DMMV_KERNEL(dmmv_q5_0, uchar, dot_row_q5_0)
DMMV_KERNEL(dmmv_q5_1, uchar, dot_row_q5_1)
DMMV_KERNEL(dmmv_q4_k, uchar, dot_row_q4_k)
DMMV_KERNEL(dmmv_q5_k, uchar, dot_row_q5_k)
DMMV_KERNEL(dmmv_q6_k, uchar, dot_row_q6_k)

DMMV_ARGMAX_KERNEL(dmmv_f16_argmax, uchar, dot_row_f16)
DMMV_ARGMAX_KERNEL(dmmv_bf16_argmax, uchar, dot_row_bf16)
DMMV_ARGMAX_KERNEL(dmmv_q4_1_argmax, uchar, dot_row_q4_1)
DMMV_ARGMAX_KERNEL(dmmv_q5_0_argmax, uchar, dot_row_q5_0)
DMMV_ARGMAX_KERNEL(dmmv_q5_1_argmax, uchar, dot_row_q5_1)
DMMV_ARGMAX_KERNEL(dmmv_q4_k_argmax, uchar, dot_row_q4_k)
DMMV_ARGMAX_KERNEL(dmmv_q5_k_argmax, uchar, dot_row_q5_k)
DMMV_ARGMAX_KERNEL(dmmv_q6_k_argmax, uchar, dot_row_q6_k)
