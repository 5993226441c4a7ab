//! The amdgpu ioctl handlers. Each check names the kernel function whose errno it reproduces
//! (drivers/gpu/drm/amd/amdgpu/*.c, drivers/gpu/drm/drm_*.c, upstream Linux 6.x).
//!
//! One file per concern, named as in the backend's `drm/`: `bo.rs` (GEM_CREATE, GEM_MMAP,
//! GEM_CLOSE), `va.rs` (GEM_VA), `ctx.rs` (CTX), `bo_list.rs` (BO_LIST), `info.rs` (INFO) and
//! `cs.rs` (CS, WAIT_CS). The shared helpers and the uapi constants not in
//! `pm4rt_core::abi::drm` live here.

mod bo;
mod bo_list;
mod cs;
mod ctx;
mod info;
mod va;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use pm4rt_core::abi::drm::*;
use pm4rt_core::abi::ioctl::{decode_arg_zext, decode_array, write_arg};
use pm4rt_core::driver::Fd;
use pm4rt_core::{Errno, Error};

use super::gem::GemObject;
use super::preset::{GMC_HOLE_END, GMC_HOLE_MASK, GMC_HOLE_START};
use super::state::{lowest_free, Ctx, DrmFile, Entity, FenceState, State, VaMap};
use super::user::UserMem;
use super::EmulatedDevice;
use crate::engine::Work;
use crate::memory::{Perms, PAGE_SIZE};

pub(crate) use self::bo::{gem_close, gem_create, gem_mmap};
pub(crate) use self::bo_list::bo_list;
pub(crate) use self::cs::{cs, wait_cs};
pub(crate) use self::ctx::ctx;
pub(crate) use self::info::info;
pub(crate) use self::va::gem_va;

// Constants of include/uapi/drm/amdgpu_drm.h not (yet) in pm4rt_core::abi::drm.
/// `AMDGPU_GEM_DOMAIN_MASK` (CPU | GTT | VRAM | GDS | GWS | OA | DOORBELL).
const GEM_DOMAIN_MASK: u64 = 0x7F;
/// `AMDGPU_GEM_CREATE_VRAM_WIPE_ON_RELEASE`.
const GEM_CREATE_VRAM_WIPE_ON_RELEASE: u64 = 1 << 9;
/// `AMDGPU_GEM_CREATE_ENCRYPTED`.
const GEM_CREATE_ENCRYPTED: u64 = 1 << 10;
/// `AMDGPU_GEM_CREATE_DISCARDABLE`.
const GEM_CREATE_DISCARDABLE: u64 = 1 << 12;
/// `AMDGPU_GEM_CREATE_EXT_COHERENT`.
const GEM_CREATE_EXT_COHERENT: u64 = 1 << 15;
/// `AMDGPU_GEM_CREATE_GFX12_DCC`.
const GEM_CREATE_GFX12_DCC: u64 = 1 << 16;
/// `AMDGPU_GEM_CREATE_SETTABLE_MASK` (amdgpu_gem.h): note VRAM_CONTIGUOUS is not settable.
const GEM_CREATE_SETTABLE_MASK: u64 = AMDGPU_GEM_CREATE_CPU_ACCESS_REQUIRED
    | AMDGPU_GEM_CREATE_NO_CPU_ACCESS
    | AMDGPU_GEM_CREATE_CPU_GTT_USWC
    | AMDGPU_GEM_CREATE_VRAM_CLEARED
    | AMDGPU_GEM_CREATE_VM_ALWAYS_VALID
    | AMDGPU_GEM_CREATE_EXPLICIT_SYNC
    | GEM_CREATE_VRAM_WIPE_ON_RELEASE
    | GEM_CREATE_ENCRYPTED
    | GEM_CREATE_GFX12_DCC
    | GEM_CREATE_DISCARDABLE
    | AMDGPU_GEM_CREATE_COHERENT
    | AMDGPU_GEM_CREATE_UNCACHED
    | GEM_CREATE_EXT_COHERENT;
/// `AMDGPU_VM_PAGE_NOALLOC`.
const VM_PAGE_NOALLOC: u32 = 1 << 9;
/// `AMDGPU_HW_IP_NUM`.
const HW_IP_NUM: u32 = 10;
/// `AMDGPU_HW_IP_INSTANCE_MAX_COUNT`.
const HW_IP_INSTANCE_MAX_COUNT: u32 = 1;
/// CS chunk ids accepted without action by amdgpu_cs_pass1 (SCHEDULED_DEPENDENCIES,
/// SYNCOBJ_TIMELINE_WAIT, SYNCOBJ_TIMELINE_SIGNAL, CP_GFX_SHADOW).
const CHUNK_ID_OTHER_KNOWN: [u32; 4] = [0x07, 0x08, 0x09, 0x0A];
/// `amdgpu_ring_max_ibs` for GFX and COMPUTE.
const MAX_IBS: u32 = 192;
/// `amdgpu_sched_jobs` default: fences older than this many are treated as signalled
/// (amdgpu_ctx_get_fence returns NULL).
const SCHED_JOBS: u64 = 32;
/// `AMDGPU_BO_LIST_MAX_ENTRIES` (amdgpu_bo_list.c, a fix marked for stable kernels): a longer
/// BO list is `EINVAL`.
const BO_LIST_MAX_ENTRIES: u32 = 128 * 1024;
/// Largest BO the emulator backs with host memory (a guard for the host, not a kernel rule).
const MAX_BO_SIZE: u64 = 1 << 32;

fn decode<T: bytemuck::Pod>(kdata: &[u8]) -> T {
    decode_arg_zext(kdata)
}

fn answer<T: bytemuck::Pod>(kdata: &mut [u8], v: &T) -> Result<(), Errno> {
    write_arg(kdata, v).map_err(|_| Errno::EFAULT)
}

pub(super) fn lookup(file: &DrmFile, handle: u32) -> Option<Arc<GemObject>> {
    file.handles.get(&handle).cloned()
}
