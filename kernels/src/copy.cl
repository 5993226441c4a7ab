/* copy_u32: dst[i] = src[i], one element per lane (element = group * 256 + lane).
 * Contract: ../README.md. */
#include "common.h"

KERNEL void copy_u32(global const uint *src, global uint *dst, uint n) {
    const ulong i = (ulong)group_id() * WG_SIZE + local_id();
    if (i < n) {
        dst[i] = src[i];
    }
}
