/* The one translation unit of the kernel library: linking several objects would leave one
 * NT_AMDGPU_METADATA note per object in the code object, and loaders read a single note. */
#include "dmmv.cl"
#include "dmmv_blocks.cl"
#include "argmax.cl"
#include "rms_norm.cl"
#include "copy.cl"
