/* Dense matrix x vector (DMMV) and DMMV fused with argmax, for f32, GGML Q4_0 and Q8_0
 * weights. One row per wave (row = group * 8 + wave); the 32 lanes of the wave split the row
 * (f32: lane l takes columns l, l+32, ...; Q4_0/Q8_0: lane l takes blocks l, l+32, ...) and
 * the partial sums are combined with a ds_swizzle butterfly. Contract: ../README.md.
 */
#include "common.h"

/* f32 row: lane partial = fma chain over its columns in increasing order. */
static inline float dot_row_f32(const global float *w, const global float *x, uint row,
                                uint cols) {
    const global float *wr = w + (ulong)row * cols;
    float acc = 0.0f;
    for (uint k = lane_id(); k < cols; k += WAVE_SIZE) {
        acc = __builtin_fmaf(wr[k], x[k], acc);
    }
    return wave_sum(acc);
}

/* Q4_0 row: 18-byte blocks {f16 d; u8 qs[16]}, element j < 16 = low nibble of qs[j], element
 * j + 16 = high nibble of qs[j], value (nibble - 8) * d. Per block the lane accumulates
 * s = sum over elements 0..31 in order of fma((nibble - 8), x, s), then acc = fma(s, d, acc).
 * The block base is 2-byte aligned (18 * b + row offset), so only u16 loads are used. */
static inline float dot_row_q4_0(const global uchar *w, const global float *x, uint row,
                                 uint cols) {
    const uint nb = cols / 32u;
    const global uchar *wr = w + (ulong)row * nb * 18u;
    float acc = 0.0f;
    for (uint b = lane_id(); b < nb; b += WAVE_SIZE) {
        const global uchar *blk = wr + (ulong)b * 18u;
        const global ushort *qs = (const global ushort *)(blk + 2);
        const global float *xb = x + (ulong)b * 32u;
        const float d = load_f16(blk);
        uint q[8];
        for (uint i = 0; i < 8u; ++i) {
            q[i] = qs[i];
        }
        float s = 0.0f;
        for (uint j = 0; j < 16u; ++j) {
            uint byte = (q[j / 2u] >> (8u * (j & 1u))) & 0xFFu;
            s = __builtin_fmaf((float)((int)(byte & 0xFu) - 8), xb[j], s);
        }
        for (uint j = 0; j < 16u; ++j) {
            uint byte = (q[j / 2u] >> (8u * (j & 1u))) & 0xFFu;
            s = __builtin_fmaf((float)((int)(byte >> 4) - 8), xb[j + 16u], s);
        }
        acc = __builtin_fmaf(s, d, acc);
    }
    return wave_sum(acc);
}

/* Q8_0 row: 34-byte blocks {f16 d; i8 qs[32]}, value q * d. Same accumulation order as Q4_0:
 * s over elements 0..31 in order, then acc = fma(s, d, acc). u16 loads only. */
static inline float dot_row_q8_0(const global uchar *w, const global float *x, uint row,
                                 uint cols) {
    const uint nb = cols / 32u;
    const global uchar *wr = w + (ulong)row * nb * 34u;
    float acc = 0.0f;
    for (uint b = lane_id(); b < nb; b += WAVE_SIZE) {
        const global uchar *blk = wr + (ulong)b * 34u;
        const global ushort *qs = (const global ushort *)(blk + 2);
        const global float *xb = x + (ulong)b * 32u;
        const float d = load_f16(blk);
        float s = 0.0f;
        for (uint i = 0; i < 16u; ++i) {
            uint two = qs[i];
            int q0 = (int)(char)(uchar)(two & 0xFFu);
            int q1 = (int)(char)(uchar)(two >> 8);
            s = __builtin_fmaf((float)q0, xb[2u * i], s);
            s = __builtin_fmaf((float)q1, xb[2u * i + 1u], s);
        }
        acc = __builtin_fmaf(s, d, acc);
    }
    return wave_sum(acc);
}

/* The row this wave owns. */
static inline uint my_row(void) { return group_id() * WAVES_PER_WG + wave_id(); }

#define DMMV_KERNEL(NAME, WTYPE, DOT)                                                       \
    KERNEL void NAME(global const WTYPE *w, global const float *x, global float *y,         \
                     uint rows, uint cols) {                                                \
        const uint row = my_row();                                                          \
        if (row >= rows) {                                                                  \
            return;                                                                         \
        }                                                                                   \
        const float v = DOT(w, x, row, cols);                                               \
        if (lane_id() == 0u) {                                                              \
            y[row] = v;                                                                     \
        }                                                                                   \
    }

/* Every wave reaches the workgroup reduction (it has barriers); waves past `rows` offer no
 * candidate (0). */
#define DMMV_ARGMAX_KERNEL(NAME, WTYPE, DOT)                                                \
    KERNEL void NAME(global const WTYPE *w, global const float *x, global ulong *out,       \
                     uint rows, uint cols) {                                                \
        local ulong scratch[WAVES_PER_WG];                                                  \
        const uint row = my_row();                                                          \
        ulong cand = 0ul;                                                                   \
        if (row < rows) {                                                                   \
            cand = argmax_pack(DOT(w, x, row, cols), row);                                  \
        }                                                                                   \
        wg_argmax_commit(scratch, cand, out);                                               \
    }

DMMV_KERNEL(dmmv_f32, float, dot_row_f32)
DMMV_KERNEL(dmmv_q4_0, uchar, dot_row_q4_0)
DMMV_KERNEL(dmmv_q8_0, uchar, dot_row_q8_0)

DMMV_ARGMAX_KERNEL(dmmv_f32_argmax, float, dot_row_f32)
DMMV_ARGMAX_KERNEL(dmmv_q4_0_argmax, uchar, dot_row_q4_0)
DMMV_ARGMAX_KERNEL(dmmv_q8_0_argmax, uchar, dot_row_q8_0)
