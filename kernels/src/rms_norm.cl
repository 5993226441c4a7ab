/* RMS norm over a whole vector by one workgroup: lane t sums x[i]^2 (fma chain) for
 * i = t, t+256, ...; a wave butterfly; the 8 wave sums added in wave order by every lane;
 * then y[i] = x[i] / sqrt(sum / n + eps) * weight[i] (IEEE division and sqrt: the build
 * passes -cl-fp32-correctly-rounded-divide-sqrt). Contract: ../README.md.
 */
#include "common.h"

KERNEL void rms_norm_f32(global const float *x, global const float *weight, global float *y,
                         uint n, float eps) {
    local float partial[WAVES_PER_WG];
    if (group_id() != 0u) {
        return; /* the grid is 1; any extra workgroup would only repeat the same writes */
    }
    const uint t = local_id();
    float acc = 0.0f;
    for (uint i = t; i < n; i += WG_SIZE) {
        acc = __builtin_fmaf(x[i], x[i], acc);
    }
    acc = wave_sum(acc);
    if (lane_id() == 0u) {
        partial[wave_id()] = acc;
    }
    wg_barrier();
    float total = 0.0f;
    for (uint w = 0; w < WAVES_PER_WG; ++w) {
        total += partial[w];
    }
    const float s = __builtin_sqrtf(total / (float)n + eps);
    for (uint i = t; i < n; i += WG_SIZE) {
        y[i] = x[i] / s * weight[i];
    }
}
