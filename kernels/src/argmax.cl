/* argmax over a float vector: one element per lane (element = group * 256 + lane), a wave
 * butterfly max, an LDS max over the 8 waves, one 64-bit atomic max per workgroup.
 * Contract (packing, NaN rule, grid): ../README.md.
 */
#include "common.h"

KERNEL void argmax_f32(global const float *x, uint n, global ulong *out) {
    local ulong scratch[WAVES_PER_WG];
    const ulong i = (ulong)group_id() * WG_SIZE + local_id();
    ulong cand = 0ul;
    if (i < n) {
        cand = argmax_pack(x[i], (uint)i);
    }
    wg_argmax_commit(scratch, cand, out);
}
