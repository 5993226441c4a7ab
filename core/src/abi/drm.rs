//! amdgpu DRM ioctls (`include/uapi/drm/amdgpu_drm.h`), plus the DRM core `GEM_CLOSE`.
//!
//! Used by the cs and umq tiers on a render node (`/dev/dri/renderD*`) and by the KFD tier
//! for its mmaps. See the [module docs](super) for naming and the argument-byte helpers.

use bytemuck::{Pod, Zeroable};

use super::ioctl::IoctlDef;

// ---------------------------------------------------------------------------------------------
// Request numbers
// ---------------------------------------------------------------------------------------------

/// The DRM ioctl type byte (`DRM_IOCTL_BASE`, `'d'`).
pub const DRM_IOCTL_BASE: u8 = b'd';
/// First driver-private DRM command number (`DRM_COMMAND_BASE`).
pub const DRM_COMMAND_BASE: u8 = 0x40;

/// amdgpu command: create a GEM buffer object.
pub const DRM_AMDGPU_GEM_CREATE: u8 = 0x00;
/// amdgpu command: get the mmap offset of a BO.
pub const DRM_AMDGPU_GEM_MMAP: u8 = 0x01;
/// amdgpu command: context alloc / free / query.
pub const DRM_AMDGPU_CTX: u8 = 0x02;
/// amdgpu command: BO list create / destroy / update.
pub const DRM_AMDGPU_BO_LIST: u8 = 0x03;
/// amdgpu command: command submission.
pub const DRM_AMDGPU_CS: u8 = 0x04;
/// amdgpu command: information queries.
pub const DRM_AMDGPU_INFO: u8 = 0x05;
/// amdgpu command: GPU VA map / unmap.
pub const DRM_AMDGPU_GEM_VA: u8 = 0x08;
/// amdgpu command: wait for a submission.
pub const DRM_AMDGPU_WAIT_CS: u8 = 0x09;
/// amdgpu command: user queue create / free (Linux 6.16+).
pub const DRM_AMDGPU_USERQ: u8 = 0x16;
/// amdgpu command: user queue signal (Linux 6.16+).
pub const DRM_AMDGPU_USERQ_SIGNAL: u8 = 0x17;
/// amdgpu command: user queue wait (Linux 6.16+).
pub const DRM_AMDGPU_USERQ_WAIT: u8 = 0x18;
/// DRM core command number of `GEM_CLOSE` (not offset by `DRM_COMMAND_BASE`).
pub const DRM_GEM_CLOSE_NR: u8 = 0x09;
/// DRM core command number of `SYNCOBJ_CREATE` (drm.h).
pub const DRM_SYNCOBJ_CREATE_NR: u8 = 0xBF;
/// DRM core command number of `SYNCOBJ_DESTROY` (drm.h).
pub const DRM_SYNCOBJ_DESTROY_NR: u8 = 0xC0;
/// DRM core command number of `SYNCOBJ_TIMELINE_WAIT` (drm.h).
pub const DRM_SYNCOBJ_TIMELINE_WAIT_NR: u8 = 0xCA;

/// `DRM_SYNCOBJ_CREATE_SIGNALED`: create the syncobj with a signalled fence.
pub const DRM_SYNCOBJ_CREATE_SIGNALED: u32 = 1 << 0;
/// `DRM_SYNCOBJ_WAIT_FLAGS_WAIT_ALL`: wait for every handle (else for the first).
pub const DRM_SYNCOBJ_WAIT_FLAGS_WAIT_ALL: u32 = 1 << 0;
/// `DRM_SYNCOBJ_WAIT_FLAGS_WAIT_FOR_SUBMIT`: wait for a fence to be attached first (else a
/// point without a fence is `EINVAL`).
pub const DRM_SYNCOBJ_WAIT_FLAGS_WAIT_FOR_SUBMIT: u32 = 1 << 1;
/// `DRM_SYNCOBJ_WAIT_FLAGS_WAIT_AVAILABLE`: wait only until the point has a fence.
pub const DRM_SYNCOBJ_WAIT_FLAGS_WAIT_AVAILABLE: u32 = 1 << 2;
/// `DRM_SYNCOBJ_WAIT_FLAGS_WAIT_DEADLINE`: `deadline_nsec` is set (newer kernels' 48-byte
/// struct; not in libdrm 2.4.114's drm.h).
pub const DRM_SYNCOBJ_WAIT_FLAGS_WAIT_DEADLINE: u32 = 1 << 3;

/// Size of the 40-byte `drm_amdgpu_gem_va` of kernels and headers before the timeline fields.
pub const GEM_VA_LEGACY_SIZE: usize = 40;

const D: u8 = DRM_IOCTL_BASE;
const B: u8 = DRM_COMMAND_BASE;

ioctl_table! {
    /// Every DRM request number pm4rt uses (the emulated device dispatches on it).
    DRM_IOCTLS;
    /// `DRM_IOCTL_AMDGPU_GEM_CREATE`: arg [`GemCreateIn`] / [`GemCreateOut`] (32 bytes).
    DRM_IOCTL_AMDGPU_GEM_CREATE = iowr(D, B + DRM_AMDGPU_GEM_CREATE, 32) == 0xC020_6440;
    /// `DRM_IOCTL_AMDGPU_GEM_MMAP`: arg [`GemMmapIn`] / [`GemMmapOut`] (8 bytes).
    DRM_IOCTL_AMDGPU_GEM_MMAP = iowr(D, B + DRM_AMDGPU_GEM_MMAP, 8) == 0xC008_6441;
    /// `DRM_IOCTL_AMDGPU_CTX`: arg [`CtxIn`] / [`CtxOutAlloc`] / [`CtxOutState`] (16 bytes).
    DRM_IOCTL_AMDGPU_CTX = iowr(D, B + DRM_AMDGPU_CTX, 16) == 0xC010_6442;
    /// `DRM_IOCTL_AMDGPU_BO_LIST`: arg [`BoListIn`] / [`BoListOut`] (24 bytes).
    DRM_IOCTL_AMDGPU_BO_LIST = iowr(D, B + DRM_AMDGPU_BO_LIST, 24) == 0xC018_6443;
    /// `DRM_IOCTL_AMDGPU_CS`: arg [`CsIn`] / [`CsOut`] (24 bytes).
    DRM_IOCTL_AMDGPU_CS = iowr(D, B + DRM_AMDGPU_CS, 24) == 0xC018_6444;
    /// `DRM_IOCTL_AMDGPU_INFO`: arg [`Info`] (32 bytes, write-only; results go to
    /// `return_pointer`).
    DRM_IOCTL_AMDGPU_INFO = iow(D, B + DRM_AMDGPU_INFO, 32) == 0x4020_6445;
    /// `DRM_IOCTL_AMDGPU_GEM_VA` with the current 64-byte [`GemVa`].
    DRM_IOCTL_AMDGPU_GEM_VA = iow(D, B + DRM_AMDGPU_GEM_VA, 64) == 0x4040_6448;
    /// `DRM_IOCTL_AMDGPU_GEM_VA` as encoded by older headers (the 40-byte struct). The kernel
    /// accepts both; the first 40 bytes of [`GemVa`] are the legacy struct.
    DRM_IOCTL_AMDGPU_GEM_VA_LEGACY = iow(D, B + DRM_AMDGPU_GEM_VA, GEM_VA_LEGACY_SIZE) == 0x4028_6448;
    /// `DRM_IOCTL_AMDGPU_WAIT_CS`: arg [`WaitCsIn`] / [`WaitCsOut`] (32 bytes).
    DRM_IOCTL_AMDGPU_WAIT_CS = iowr(D, B + DRM_AMDGPU_WAIT_CS, 32) == 0xC020_6449;
    /// `DRM_IOCTL_AMDGPU_USERQ`: arg [`UserqIn`] / [`UserqOut`] (72 bytes).
    DRM_IOCTL_AMDGPU_USERQ = iowr(D, B + DRM_AMDGPU_USERQ, 72) == 0xC048_6456;
    /// `DRM_IOCTL_AMDGPU_USERQ_SIGNAL`: arg [`UserqSignal`] (48 bytes).
    DRM_IOCTL_AMDGPU_USERQ_SIGNAL = iowr(D, B + DRM_AMDGPU_USERQ_SIGNAL, 48) == 0xC030_6457;
    /// `DRM_IOCTL_AMDGPU_USERQ_WAIT`: arg [`UserqWait`] (72 bytes).
    DRM_IOCTL_AMDGPU_USERQ_WAIT = iowr(D, B + DRM_AMDGPU_USERQ_WAIT, 72) == 0xC048_6458;
    /// `DRM_IOCTL_GEM_CLOSE` (DRM core): arg [`GemClose`] (8 bytes).
    DRM_IOCTL_GEM_CLOSE = iow(D, DRM_GEM_CLOSE_NR, 8) == 0x4008_6409;
    /// `DRM_IOCTL_SYNCOBJ_CREATE` (DRM core): arg [`SyncobjCreate`] (8 bytes).
    DRM_IOCTL_SYNCOBJ_CREATE = iowr(D, DRM_SYNCOBJ_CREATE_NR, 8) == 0xC008_64BF;
    /// `DRM_IOCTL_SYNCOBJ_DESTROY` (DRM core): arg [`SyncobjDestroy`] (8 bytes).
    DRM_IOCTL_SYNCOBJ_DESTROY = iowr(D, DRM_SYNCOBJ_DESTROY_NR, 8) == 0xC008_64C0;
    /// `DRM_IOCTL_SYNCOBJ_TIMELINE_WAIT` (DRM core): arg [`SyncobjTimelineWait`] (the 40
    /// bytes without `deadline_nsec`; `drm_ioctl` zero-extends it to a newer kernel's 48).
    DRM_IOCTL_SYNCOBJ_TIMELINE_WAIT =
        iowr(D, DRM_SYNCOBJ_TIMELINE_WAIT_NR, 40) == 0xC028_64CA;
}

/// Look up a DRM request number (exact, or same nr with another size) in [`DRM_IOCTLS`].
pub fn find_ioctl(request: u32) -> Option<&'static IoctlDef> {
    super::ioctl::find_by_nr(DRM_IOCTLS, request)
}

// ---------------------------------------------------------------------------------------------
// Constants
// ---------------------------------------------------------------------------------------------

/// GEM domain: system memory not GPU accessible.
pub const AMDGPU_GEM_DOMAIN_CPU: u64 = 0x1;
/// GEM domain: GPU-accessible system memory (GART).
pub const AMDGPU_GEM_DOMAIN_GTT: u64 = 0x2;
/// GEM domain: local video memory.
pub const AMDGPU_GEM_DOMAIN_VRAM: u64 = 0x4;
/// GEM domain: global data share.
pub const AMDGPU_GEM_DOMAIN_GDS: u64 = 0x8;
/// GEM domain: global wave sync.
pub const AMDGPU_GEM_DOMAIN_GWS: u64 = 0x10;
/// GEM domain: ordered append.
pub const AMDGPU_GEM_DOMAIN_OA: u64 = 0x20;
/// GEM domain: doorbell page (user queues).
pub const AMDGPU_GEM_DOMAIN_DOORBELL: u64 = 0x40;

/// GEM create flag: CPU access will be required (VRAM).
pub const AMDGPU_GEM_CREATE_CPU_ACCESS_REQUIRED: u64 = 1 << 0;
/// GEM create flag: CPU access will not work (invisible VRAM).
pub const AMDGPU_GEM_CREATE_NO_CPU_ACCESS: u64 = 1 << 1;
/// GEM create flag: use USWC (write-combined) mappings for GTT.
pub const AMDGPU_GEM_CREATE_CPU_GTT_USWC: u64 = 1 << 2;
/// GEM create flag: clear VRAM on allocation.
pub const AMDGPU_GEM_CREATE_VRAM_CLEARED: u64 = 1 << 3;
/// GEM create flag: physically contiguous VRAM.
pub const AMDGPU_GEM_CREATE_VRAM_CONTIGUOUS: u64 = 1 << 5;
/// GEM create flag: always valid in this VM (no BO list needed).
pub const AMDGPU_GEM_CREATE_VM_ALWAYS_VALID: u64 = 1 << 6;
/// GEM create flag: sharing is explicitly synchronized.
pub const AMDGPU_GEM_CREATE_EXPLICIT_SYNC: u64 = 1 << 7;
/// GEM create flag: coherent between devices / CPU threads.
pub const AMDGPU_GEM_CREATE_COHERENT: u64 = 1 << 13;
/// GEM create flag: not cached by the GPU.
pub const AMDGPU_GEM_CREATE_UNCACHED: u64 = 1 << 14;

/// BO list operation: create.
pub const AMDGPU_BO_LIST_OP_CREATE: u32 = 0;
/// BO list operation: destroy.
pub const AMDGPU_BO_LIST_OP_DESTROY: u32 = 1;
/// BO list operation: update.
pub const AMDGPU_BO_LIST_OP_UPDATE: u32 = 2;

/// Context op: allocate.
pub const AMDGPU_CTX_OP_ALLOC_CTX: u32 = 1;
/// Context op: free.
pub const AMDGPU_CTX_OP_FREE_CTX: u32 = 2;
/// Context op: query reset state.
pub const AMDGPU_CTX_OP_QUERY_STATE: u32 = 3;
/// Context op: query reset state as flags ([`AMDGPU_CTX_QUERY2_FLAGS_RESET`] ...).
pub const AMDGPU_CTX_OP_QUERY_STATE2: u32 = 4;
/// QUERY_STATE2 flag: a GPU reset happened since the context was created.
pub const AMDGPU_CTX_QUERY2_FLAGS_RESET: u64 = 1 << 0;
/// QUERY_STATE2 flag: VRAM was lost since the context was created.
pub const AMDGPU_CTX_QUERY2_FLAGS_VRAMLOST: u64 = 1 << 1;
/// QUERY_STATE2 flag: a job of this context caused a GPU hang.
pub const AMDGPU_CTX_QUERY2_FLAGS_GUILTY: u64 = 1 << 2;
/// Reset status: none.
pub const AMDGPU_CTX_NO_RESET: u32 = 0;
/// Reset status: this context caused it.
pub const AMDGPU_CTX_GUILTY_RESET: u32 = 1;
/// Reset status: another context caused it.
pub const AMDGPU_CTX_INNOCENT_RESET: u32 = 2;
/// Reset status: unknown cause.
pub const AMDGPU_CTX_UNKNOWN_RESET: u32 = 3;
/// Context priority: low.
pub const AMDGPU_CTX_PRIORITY_LOW: i32 = -512;
/// Context priority: normal.
pub const AMDGPU_CTX_PRIORITY_NORMAL: i32 = 0;
/// Context priority: high (needs CAP_SYS_NICE or DRM master).
pub const AMDGPU_CTX_PRIORITY_HIGH: i32 = 512;

/// VA operation: map.
pub const AMDGPU_VA_OP_MAP: u32 = 1;
/// VA operation: unmap.
pub const AMDGPU_VA_OP_UNMAP: u32 = 2;
/// VA operation: clear a range.
pub const AMDGPU_VA_OP_CLEAR: u32 = 3;
/// VA operation: replace a range.
pub const AMDGPU_VA_OP_REPLACE: u32 = 4;
/// VM flag: delay the page-table update until the next CS.
pub const AMDGPU_VM_DELAY_UPDATE: u32 = 1 << 0;
/// VM page flag: readable.
pub const AMDGPU_VM_PAGE_READABLE: u32 = 1 << 1;
/// VM page flag: writeable.
pub const AMDGPU_VM_PAGE_WRITEABLE: u32 = 1 << 2;
/// VM page flag: executable.
pub const AMDGPU_VM_PAGE_EXECUTABLE: u32 = 1 << 3;
/// VM page flag: partially-resident-texture page.
pub const AMDGPU_VM_PAGE_PRT: u32 = 1 << 4;
/// VM MTYPE field mask (bits 5..8).
pub const AMDGPU_VM_MTYPE_MASK: u32 = 0xF << 5;
/// VM MTYPE: default.
pub const AMDGPU_VM_MTYPE_DEFAULT: u32 = 0 << 5;
/// VM MTYPE: uncached.
pub const AMDGPU_VM_MTYPE_UC: u32 = 4 << 5;

/// Hardware IP: graphics.
pub const AMDGPU_HW_IP_GFX: u32 = 0;
/// Hardware IP: compute.
pub const AMDGPU_HW_IP_COMPUTE: u32 = 1;
/// Hardware IP: SDMA.
pub const AMDGPU_HW_IP_DMA: u32 = 2;

/// CS chunk: an IB ([`CsChunkIb`]).
pub const AMDGPU_CHUNK_ID_IB: u32 = 0x01;
/// CS chunk: a fence ([`CsChunkFence`]).
pub const AMDGPU_CHUNK_ID_FENCE: u32 = 0x02;
/// CS chunk: dependencies.
pub const AMDGPU_CHUNK_ID_DEPENDENCIES: u32 = 0x03;
/// CS chunk: syncobjs to wait for.
pub const AMDGPU_CHUNK_ID_SYNCOBJ_IN: u32 = 0x04;
/// CS chunk: syncobjs to signal.
pub const AMDGPU_CHUNK_ID_SYNCOBJ_OUT: u32 = 0x05;
/// CS chunk: an inline BO list ([`BoListIn`] followed by entries).
pub const AMDGPU_CHUNK_ID_BO_HANDLES: u32 = 0x06;

/// IB flag: the kernel flushes and invalidates caches around the IB.
pub const AMDGPU_IB_FLAG_EMIT_MEM_SYNC: u32 = 1 << 6;

/// INFO query: hardware IP info ([`InfoHwIp`]; input [`InfoQueryHwIp`]).
pub const AMDGPU_INFO_HW_IP_INFO: u32 = 0x02;
/// INFO query: VRAM and GTT sizes ([`InfoVramGtt`]).
pub const AMDGPU_INFO_VRAM_GTT: u32 = 0x14;
/// INFO query: device info ([`InfoDevice`]).
pub const AMDGPU_INFO_DEV_INFO: u32 = 0x16;
/// INFO query: user-queue firmware area sizes (a 16-byte `drm_amdgpu_info_uq_metadata`,
/// read as [`InfoUqMetadataCompute`] / [`InfoUqMetadataGfx`]; input [`InfoQueryHwIp`]).
pub const AMDGPU_INFO_UQ_FW_AREAS: u32 = 0x24;
/// Size of the `drm_amdgpu_info_uq_metadata` union returned by `UQ_FW_AREAS`.
pub const INFO_UQ_METADATA_SIZE: usize = 16;

/// WAIT_CS out status: the submission retired.
pub const AMDGPU_WAIT_CS_RETIRED: u64 = 0;
/// WAIT_CS out status: still busy at the timeout.
pub const AMDGPU_WAIT_CS_BUSY: u64 = 1;

/// USERQ op: create.
pub const AMDGPU_USERQ_OP_CREATE: u32 = 1;
/// USERQ op: free.
pub const AMDGPU_USERQ_OP_FREE: u32 = 2;
/// USERQ create flags: priority field mask (bits 1:0).
pub const AMDGPU_USERQ_CREATE_FLAGS_QUEUE_PRIORITY_MASK: u32 = 0x3;
/// USERQ create flags: secure (protected content) queue.
pub const AMDGPU_USERQ_CREATE_FLAGS_QUEUE_SECURE: u32 = 1 << 2;
/// Size of the compute MQD ([`UserqMqdComputeGfx11`]) that USERQ create requires.
pub const USERQ_MQD_COMPUTE_SIZE: usize = 8;

// ---------------------------------------------------------------------------------------------
// Structs
// ---------------------------------------------------------------------------------------------

/// `drm_amdgpu_ctx_in`: input of [`DRM_IOCTL_AMDGPU_CTX`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Pod, Zeroable)]
#[repr(C)]
pub struct CtxIn {
    /// `AMDGPU_CTX_OP_*`.
    pub op: u32,
    /// Flags (none defined).
    pub flags: u32,
    /// Context id (FREE / QUERY).
    pub ctx_id: u32,
    /// `AMDGPU_CTX_PRIORITY_*` (ALLOC).
    pub priority: i32,
}
assert_layout!(CtxIn, 16; op = 0, flags = 4, ctx_id = 8, priority = 12);

/// `drm_amdgpu_ctx_out.alloc`: output of `AMDGPU_CTX_OP_ALLOC_CTX`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Pod, Zeroable)]
#[repr(C)]
pub struct CtxOutAlloc {
    /// The new context id.
    pub ctx_id: u32,
    /// Padding.
    pub pad: u32,
}
assert_layout!(CtxOutAlloc, 8; ctx_id = 0, pad = 4);

/// `drm_amdgpu_ctx_out.state`: output of the QUERY_STATE ops.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Pod, Zeroable)]
#[repr(C)]
pub struct CtxOutState {
    /// QUERY_STATE2: `AMDGPU_CTX_QUERY2_FLAGS_*`.
    pub flags: u64,
    /// Number of resets caused by this context.
    pub hangs: u32,
    /// QUERY_STATE: `AMDGPU_CTX_*_RESET`.
    pub reset_status: u32,
}
assert_layout!(CtxOutState, 16; flags = 0, hangs = 8, reset_status = 12);

/// `drm_amdgpu_bo_list_in`: input of [`DRM_IOCTL_AMDGPU_BO_LIST`] (and the header of a
/// `BO_HANDLES` CS chunk).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Pod, Zeroable)]
#[repr(C)]
pub struct BoListIn {
    /// `AMDGPU_BO_LIST_OP_*`.
    pub operation: u32,
    /// List handle (0 to create).
    pub list_handle: u32,
    /// Number of [`BoListEntry`] at `bo_info_ptr`.
    pub bo_number: u32,
    /// Size of one entry (8).
    pub bo_info_size: u32,
    /// User pointer to the entries.
    pub bo_info_ptr: u64,
}
assert_layout!(BoListIn, 24; operation = 0, list_handle = 4, bo_number = 8, bo_info_size = 12, bo_info_ptr = 16);

/// `drm_amdgpu_bo_list_entry`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Pod, Zeroable)]
#[repr(C)]
pub struct BoListEntry {
    /// GEM handle.
    pub bo_handle: u32,
    /// Migration priority.
    pub bo_priority: u32,
}
assert_layout!(BoListEntry, 8; bo_handle = 0, bo_priority = 4);

/// `drm_amdgpu_bo_list_out`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Pod, Zeroable)]
#[repr(C)]
pub struct BoListOut {
    /// The list handle.
    pub list_handle: u32,
    /// Padding.
    pub pad: u32,
}
assert_layout!(BoListOut, 8; list_handle = 0, pad = 4);

/// `drm_amdgpu_gem_create_in`: input of [`DRM_IOCTL_AMDGPU_GEM_CREATE`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Pod, Zeroable)]
#[repr(C)]
pub struct GemCreateIn {
    /// Size in bytes.
    pub bo_size: u64,
    /// Physical alignment in bytes.
    pub alignment: u64,
    /// `AMDGPU_GEM_DOMAIN_*`.
    pub domains: u64,
    /// `AMDGPU_GEM_CREATE_*`.
    pub domain_flags: u64,
}
assert_layout!(GemCreateIn, 32; bo_size = 0, alignment = 8, domains = 16, domain_flags = 24);

/// `drm_amdgpu_gem_create_out`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Pod, Zeroable)]
#[repr(C)]
pub struct GemCreateOut {
    /// The GEM handle.
    pub handle: u32,
    /// Padding.
    pub pad: u32,
}
assert_layout!(GemCreateOut, 8; handle = 0, pad = 4);

/// `drm_amdgpu_gem_mmap_in`: input of [`DRM_IOCTL_AMDGPU_GEM_MMAP`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Pod, Zeroable)]
#[repr(C)]
pub struct GemMmapIn {
    /// The GEM handle.
    pub handle: u32,
    /// Padding.
    pub pad: u32,
}
assert_layout!(GemMmapIn, 8; handle = 0, pad = 4);

/// `drm_amdgpu_gem_mmap_out`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Pod, Zeroable)]
#[repr(C)]
pub struct GemMmapOut {
    /// The offset to mmap the render fd at.
    pub addr_ptr: u64,
}
assert_layout!(GemMmapOut, 8; addr_ptr = 0);

/// `drm_amdgpu_gem_va` (current 64-byte form): arg of [`DRM_IOCTL_AMDGPU_GEM_VA`]. The first
/// [`GEM_VA_LEGACY_SIZE`] bytes are the legacy struct.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Pod, Zeroable)]
#[repr(C)]
pub struct GemVa {
    /// GEM handle.
    pub handle: u32,
    /// Padding.
    pub pad: u32,
    /// `AMDGPU_VA_OP_*`.
    pub operation: u32,
    /// `AMDGPU_VM_PAGE_*` / MTYPE / `AMDGPU_VM_DELAY_UPDATE`.
    pub flags: u32,
    /// GPU VA.
    pub va_address: u64,
    /// Offset inside the BO.
    pub offset_in_bo: u64,
    /// Mapping size.
    pub map_size: u64,
    /// Timeline point for `vm_timeline_syncobj_out` (0: none).
    pub vm_timeline_point: u64,
    /// Syncobj receiving the page-table update fence (0: none).
    pub vm_timeline_syncobj_out: u32,
    /// Number of handles at `input_fence_syncobj_handles`.
    pub num_syncobj_handles: u32,
    /// User pointer to syncobj handles to wait for.
    pub input_fence_syncobj_handles: u64,
}
assert_layout!(GemVa, 64; handle = 0, pad = 4, operation = 8, flags = 12, va_address = 16,
    offset_in_bo = 24, map_size = 32, vm_timeline_point = 40, vm_timeline_syncobj_out = 48,
    num_syncobj_handles = 52, input_fence_syncobj_handles = 56);

/// `drm_amdgpu_cs_in`: input of [`DRM_IOCTL_AMDGPU_CS`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Pod, Zeroable)]
#[repr(C)]
pub struct CsIn {
    /// Context id.
    pub ctx_id: u32,
    /// BO list handle (0: none).
    pub bo_list_handle: u32,
    /// Number of chunks.
    pub num_chunks: u32,
    /// Flags.
    pub flags: u32,
    /// User pointer to an array of `num_chunks` u64 user pointers, one per [`CsChunk`].
    pub chunks: u64,
}
assert_layout!(CsIn, 24; ctx_id = 0, bo_list_handle = 4, num_chunks = 8, flags = 12, chunks = 16);

/// `drm_amdgpu_cs_out`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Pod, Zeroable)]
#[repr(C)]
pub struct CsOut {
    /// The fence sequence number of the submission.
    pub handle: u64,
}
assert_layout!(CsOut, 8; handle = 0);

/// `drm_amdgpu_cs_chunk`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Pod, Zeroable)]
#[repr(C)]
pub struct CsChunk {
    /// `AMDGPU_CHUNK_ID_*`.
    pub chunk_id: u32,
    /// Length of the chunk data in dwords.
    pub length_dw: u32,
    /// User pointer to the chunk data.
    pub chunk_data: u64,
}
assert_layout!(CsChunk, 16; chunk_id = 0, length_dw = 4, chunk_data = 8);

/// `drm_amdgpu_cs_chunk_ib`: data of an [`AMDGPU_CHUNK_ID_IB`] chunk.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Pod, Zeroable)]
#[repr(C)]
pub struct CsChunkIb {
    /// Padding.
    pub pad: u32,
    /// `AMDGPU_IB_FLAG_*`.
    pub flags: u32,
    /// GPU VA of the IB.
    pub va_start: u64,
    /// IB size in bytes.
    pub ib_bytes: u32,
    /// `AMDGPU_HW_IP_*`.
    pub ip_type: u32,
    /// IP instance.
    pub ip_instance: u32,
    /// Ring index.
    pub ring: u32,
}
assert_layout!(CsChunkIb, 32; pad = 0, flags = 4, va_start = 8, ib_bytes = 16, ip_type = 20,
    ip_instance = 24, ring = 28);

/// `drm_amdgpu_cs_chunk_fence`: data of an [`AMDGPU_CHUNK_ID_FENCE`] chunk.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Pod, Zeroable)]
#[repr(C)]
pub struct CsChunkFence {
    /// GEM handle of the fence BO.
    pub handle: u32,
    /// Byte offset inside it.
    pub offset: u32,
}
assert_layout!(CsChunkFence, 8; handle = 0, offset = 4);

/// `drm_amdgpu_wait_cs_in`: input of [`DRM_IOCTL_AMDGPU_WAIT_CS`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Pod, Zeroable)]
#[repr(C)]
pub struct WaitCsIn {
    /// Fence sequence from [`CsOut`].
    pub handle: u64,
    /// Absolute timeout (CLOCK_MONOTONIC ns).
    pub timeout: u64,
    /// `AMDGPU_HW_IP_*`.
    pub ip_type: u32,
    /// IP instance.
    pub ip_instance: u32,
    /// Ring index.
    pub ring: u32,
    /// Context id.
    pub ctx_id: u32,
}
assert_layout!(WaitCsIn, 32; handle = 0, timeout = 8, ip_type = 16, ip_instance = 20, ring = 24, ctx_id = 28);

/// `drm_amdgpu_wait_cs_out`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Pod, Zeroable)]
#[repr(C)]
pub struct WaitCsOut {
    /// [`AMDGPU_WAIT_CS_RETIRED`] or [`AMDGPU_WAIT_CS_BUSY`].
    pub status: u64,
}
assert_layout!(WaitCsOut, 8; status = 0);

/// `drm_amdgpu_info`: arg of [`DRM_IOCTL_AMDGPU_INFO`]. The 16-byte C union after `query` is
/// `data`; read or write its `query_hw_ip` view with [`Info::query_hw_ip`] /
/// [`Info::with_hw_ip`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Pod, Zeroable)]
#[repr(C)]
pub struct Info {
    /// User pointer receiving the result.
    pub return_pointer: u64,
    /// Size of the result buffer; the kernel writes at most this many bytes.
    pub return_size: u32,
    /// `AMDGPU_INFO_*`.
    pub query: u32,
    /// The query-specific union (16 bytes).
    pub data: [u32; 4],
}
assert_layout!(Info, 32; return_pointer = 0, return_size = 8, query = 12, data = 16);

/// `drm_amdgpu_info.query_hw_ip`: the union view used by HW_IP_INFO and UQ_FW_AREAS.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Pod, Zeroable)]
#[repr(C)]
pub struct InfoQueryHwIp {
    /// `AMDGPU_HW_IP_*` (C field `type`).
    pub ip_type: u32,
    /// IP instance.
    pub ip_instance: u32,
}
assert_layout!(InfoQueryHwIp, 8; ip_type = 0, ip_instance = 4);

impl Info {
    /// An INFO request with the `query_hw_ip` union view filled in.
    ///
    /// `return_pointer` / `return_size` describe the result buffer (see
    /// [`crate::driver::user_ptr`]).
    pub fn with_hw_ip(
        query: u32,
        hw_ip: InfoQueryHwIp,
        return_pointer: u64,
        return_size: u32,
    ) -> Self {
        Info { return_pointer, return_size, query, data: [hw_ip.ip_type, hw_ip.ip_instance, 0, 0] }
    }

    /// The `query_hw_ip` view of the union.
    pub fn query_hw_ip(&self) -> InfoQueryHwIp {
        InfoQueryHwIp { ip_type: self.data[0], ip_instance: self.data[1] }
    }
}

/// `drm_amdgpu_info_hw_ip`: result of [`AMDGPU_INFO_HW_IP_INFO`]. The kernel copies
/// `min(return_size, its size)`; older kernels return 32 bytes, so `userq_num_slots == 0`
/// means unknown / none.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Pod, Zeroable)]
#[repr(C)]
pub struct InfoHwIp {
    /// IP major version.
    pub hw_ip_version_major: u32,
    /// IP minor version.
    pub hw_ip_version_minor: u32,
    /// Capabilities.
    pub capabilities_flags: u64,
    /// IB start alignment.
    pub ib_start_alignment: u32,
    /// IB size alignment.
    pub ib_size_alignment: u32,
    /// Bitmask of available rings.
    pub available_rings: u32,
    /// IP discovery version (bits 23:16 major, 15:8 minor, 7:0 revision).
    pub ip_discovery_version: u32,
    /// Available user-queue slots (newer kernels).
    pub userq_num_slots: u32,
    /// Padding (implicit in C).
    pub pad: u32,
}
assert_layout!(InfoHwIp, 40; hw_ip_version_major = 0, hw_ip_version_minor = 4,
    capabilities_flags = 8, ib_start_alignment = 16, ib_size_alignment = 20,
    available_rings = 24, ip_discovery_version = 28, userq_num_slots = 32, pad = 36);

/// `drm_amdgpu_info_vram_gtt`: result of [`AMDGPU_INFO_VRAM_GTT`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Pod, Zeroable)]
#[repr(C)]
pub struct InfoVramGtt {
    /// VRAM size.
    pub vram_size: u64,
    /// CPU-visible VRAM size.
    pub vram_cpu_accessible_size: u64,
    /// GTT size.
    pub gtt_size: u64,
}
assert_layout!(InfoVramGtt, 24; vram_size = 0, vram_cpu_accessible_size = 8, gtt_size = 16);

/// `drm_amdgpu_info_device` (448 bytes): result of [`AMDGPU_INFO_DEV_INFO`]. Older kernels
/// return a prefix; zero-initialise and treat zero tail fields as unknown.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Pod, Zeroable)]
#[repr(C)]
pub struct InfoDevice {
    /// PCI device id.
    pub device_id: u32,
    /// Internal chip revision.
    pub chip_rev: u32,
    /// External revision.
    pub external_rev: u32,
    /// PCI revision.
    pub pci_rev: u32,
    /// `AMDGPU_FAMILY_*`.
    pub family: u32,
    /// Shader engines.
    pub num_shader_engines: u32,
    /// Shader arrays per engine.
    pub num_shader_arrays_per_engine: u32,
    /// GPU counter frequency in kHz.
    pub gpu_counter_freq: u32,
    /// Max engine clock.
    pub max_engine_clock: u64,
    /// Max memory clock.
    pub max_memory_clock: u64,
    /// Active CUs.
    pub cu_active_number: u32,
    /// Invalid; do not use.
    pub cu_ao_mask: u32,
    /// CU bitmap `[4][4]`.
    pub cu_bitmap: [u32; 16],
    /// Render backend pipe mask.
    pub enabled_rb_pipes_mask: u32,
    /// Render backend pipes.
    pub num_rb_pipes: u32,
    /// Hardware GFX contexts.
    pub num_hw_gfx_contexts: u32,
    /// PCIe generation.
    pub pcie_gen: u32,
    /// `AMDGPU_IDS_FLAGS_*`.
    pub ids_flags: u64,
    /// Lowest VA for user mode drivers.
    pub virtual_address_offset: u64,
    /// Maximum VA.
    pub virtual_address_max: u64,
    /// Required VA alignment.
    pub virtual_address_alignment: u32,
    /// PTE fragment size.
    pub pte_fragment_size: u32,
    /// GART page size.
    pub gart_page_size: u32,
    /// Constant engine RAM size.
    pub ce_ram_size: u32,
    /// VRAM type.
    pub vram_type: u32,
    /// VRAM bus width.
    pub vram_bit_width: u32,
    /// VCE harvest config.
    pub vce_harvest_config: u32,
    /// GFX double off-chip LDS buffers.
    pub gc_double_offchip_lds_buf: u32,
    /// NGG primitive buffer VA.
    pub prim_buf_gpu_addr: u64,
    /// NGG position buffer VA.
    pub pos_buf_gpu_addr: u64,
    /// NGG control sideband VA.
    pub cntl_sb_buf_gpu_addr: u64,
    /// NGG parameter cache VA.
    pub param_buf_gpu_addr: u64,
    /// NGG primitive buffer size.
    pub prim_buf_size: u32,
    /// NGG position buffer size.
    pub pos_buf_size: u32,
    /// NGG control sideband size.
    pub cntl_sb_buf_size: u32,
    /// NGG parameter cache size.
    pub param_buf_size: u32,
    /// Wavefront size.
    pub wave_front_size: u32,
    /// Shader-visible VGPRs.
    pub num_shader_visible_vgprs: u32,
    /// CUs per shader array.
    pub num_cu_per_sh: u32,
    /// TCC blocks.
    pub num_tcc_blocks: u32,
    /// GS VGT table depth.
    pub gs_vgt_table_depth: u32,
    /// GS primitive buffer depth.
    pub gs_prim_buffer_depth: u32,
    /// Max GS waves per VGT.
    pub max_gs_waves_per_vgt: u32,
    /// PCIe lanes.
    pub pcie_num_lanes: u32,
    /// Always-on CU bitmap `[4][4]`.
    pub cu_ao_bitmap: [u32; 16],
    /// Lowest high VA for user mode drivers.
    pub high_va_offset: u64,
    /// Maximum high VA.
    pub high_va_max: u64,
    /// gfx10 PA_SC_TILE_STEERING_OVERRIDE.
    pub pa_sc_tile_steering_override: u32,
    /// Padding (implicit in C, before a u64).
    pub pad_tile_steering: u32,
    /// Disabled TCCs.
    pub tcc_disabled_mask: u64,
    /// Min engine clock.
    pub min_engine_clock: u64,
    /// Min memory clock.
    pub min_memory_clock: u64,
    /// GL0 (vector) cache size, gfx11+.
    pub tcp_cache_size: u32,
    /// SQCs per WGP, gfx11+.
    pub num_sqc_per_wgp: u32,
    /// Scalar data cache size, gfx11+.
    pub sqc_data_cache_size: u32,
    /// Instruction cache size, gfx11+.
    pub sqc_inst_cache_size: u32,
    /// GL1 cache size, gfx11+.
    pub gl1c_cache_size: u32,
    /// GL2 cache size, gfx11+.
    pub gl2c_cache_size: u32,
    /// Infinity cache size, gfx11+.
    pub mall_size: u64,
    /// High 32 bits of the RB pipe mask.
    pub enabled_rb_pipes_mask_hi: u32,
    /// GFX shadow area size.
    pub shadow_size: u32,
    /// GFX shadow area alignment.
    pub shadow_alignment: u32,
    /// Context save area size.
    pub csa_size: u32,
    /// Context save area alignment.
    pub csa_alignment: u32,
    /// IPs with user queues (`1 << AMDGPU_HW_IP_*`).
    pub userq_ip_mask: u32,
    /// Padding.
    pub pad: u32,
    /// Tail padding (implicit in C).
    pub pad_tail: u32,
}
assert_layout!(InfoDevice, 448; device_id = 0, chip_rev = 4, external_rev = 8, pci_rev = 12,
    family = 16, num_shader_engines = 20, num_shader_arrays_per_engine = 24,
    gpu_counter_freq = 28, max_engine_clock = 32, max_memory_clock = 40,
    cu_active_number = 48, cu_ao_mask = 52, cu_bitmap = 56, enabled_rb_pipes_mask = 120,
    num_rb_pipes = 124, num_hw_gfx_contexts = 128, pcie_gen = 132, ids_flags = 136,
    virtual_address_offset = 144, virtual_address_max = 152, virtual_address_alignment = 160,
    pte_fragment_size = 164, gart_page_size = 168, ce_ram_size = 172, vram_type = 176,
    vram_bit_width = 180, vce_harvest_config = 184, gc_double_offchip_lds_buf = 188,
    prim_buf_gpu_addr = 192, pos_buf_gpu_addr = 200, cntl_sb_buf_gpu_addr = 208,
    param_buf_gpu_addr = 216, prim_buf_size = 224, pos_buf_size = 228,
    cntl_sb_buf_size = 232, param_buf_size = 236, wave_front_size = 240,
    num_shader_visible_vgprs = 244, num_cu_per_sh = 248, num_tcc_blocks = 252,
    gs_vgt_table_depth = 256, gs_prim_buffer_depth = 260, max_gs_waves_per_vgt = 264,
    pcie_num_lanes = 268, cu_ao_bitmap = 272, high_va_offset = 336, high_va_max = 344,
    pa_sc_tile_steering_override = 352, pad_tile_steering = 356, tcc_disabled_mask = 360,
    min_engine_clock = 368, min_memory_clock = 376, tcp_cache_size = 384,
    num_sqc_per_wgp = 388, sqc_data_cache_size = 392, sqc_inst_cache_size = 396,
    gl1c_cache_size = 400, gl2c_cache_size = 404, mall_size = 408,
    enabled_rb_pipes_mask_hi = 416, shadow_size = 420, shadow_alignment = 424,
    csa_size = 428, csa_alignment = 432, userq_ip_mask = 436, pad = 440, pad_tail = 444);

impl Default for InfoDevice {
    fn default() -> Self {
        Zeroable::zeroed()
    }
}

/// `drm_amdgpu_info_uq_metadata_gfx`: UQ_FW_AREAS result for GFX.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Pod, Zeroable)]
#[repr(C)]
pub struct InfoUqMetadataGfx {
    /// Shadow area size.
    pub shadow_size: u32,
    /// Shadow area alignment.
    pub shadow_alignment: u32,
    /// Context save area size.
    pub csa_size: u32,
    /// Context save area alignment.
    pub csa_alignment: u32,
}
assert_layout!(InfoUqMetadataGfx, 16; shadow_size = 0, shadow_alignment = 4, csa_size = 8, csa_alignment = 12);

/// `drm_amdgpu_info_uq_metadata_compute`: UQ_FW_AREAS result for COMPUTE.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Pod, Zeroable)]
#[repr(C)]
pub struct InfoUqMetadataCompute {
    /// EOP buffer size (2048 on GFX11/12).
    pub eop_size: u32,
    /// EOP buffer VA alignment (256 on GFX11/12).
    pub eop_alignment: u32,
}
assert_layout!(InfoUqMetadataCompute, 8; eop_size = 0, eop_alignment = 4);

/// `drm_amdgpu_info_uq_metadata_sdma`: UQ_FW_AREAS result for DMA.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Pod, Zeroable)]
#[repr(C)]
pub struct InfoUqMetadataSdma {
    /// Context save area size.
    pub csa_size: u32,
    /// Context save area alignment.
    pub csa_alignment: u32,
}
assert_layout!(InfoUqMetadataSdma, 8; csa_size = 0, csa_alignment = 4);

/// `drm_amdgpu_userq_in`: input of [`DRM_IOCTL_AMDGPU_USERQ`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Pod, Zeroable)]
#[repr(C)]
pub struct UserqIn {
    /// `AMDGPU_USERQ_OP_*`.
    pub op: u32,
    /// Queue id (FREE).
    pub queue_id: u32,
    /// `AMDGPU_HW_IP_*`.
    pub ip_type: u32,
    /// GEM handle of the DOORBELL-domain BO.
    pub doorbell_handle: u32,
    /// Doorbell index inside that BO, in 8-byte units.
    pub doorbell_offset: u32,
    /// `AMDGPU_USERQ_CREATE_FLAGS_*`.
    pub flags: u32,
    /// Ring GPU VA.
    pub queue_va: u64,
    /// Ring size in bytes (power of two, >= 4096).
    pub queue_size: u64,
    /// GPU VA of the read pointer.
    pub rptr_va: u64,
    /// GPU VA of the write pointer.
    pub wptr_va: u64,
    /// User pointer to the IP-specific MQD (e.g. [`UserqMqdComputeGfx11`]).
    pub mqd: u64,
    /// Size of the MQD.
    pub mqd_size: u64,
}
assert_layout!(UserqIn, 72; op = 0, queue_id = 4, ip_type = 8, doorbell_handle = 12,
    doorbell_offset = 16, flags = 20, queue_va = 24, queue_size = 32, rptr_va = 40,
    wptr_va = 48, mqd = 56, mqd_size = 64);

/// `drm_amdgpu_userq_out`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Pod, Zeroable)]
#[repr(C)]
pub struct UserqOut {
    /// The new queue id (CREATE).
    pub queue_id: u32,
    /// Padding.
    pub pad: u32,
}
assert_layout!(UserqOut, 8; queue_id = 0, pad = 4);

/// `drm_amdgpu_userq_mqd_gfx11`: GFX MQD for user queues.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Pod, Zeroable)]
#[repr(C)]
pub struct UserqMqdGfx11 {
    /// Shadow buffer VA.
    pub shadow_va: u64,
    /// Context save area VA.
    pub csa_va: u64,
}
assert_layout!(UserqMqdGfx11, 16; shadow_va = 0, csa_va = 8);

/// `drm_amdgpu_userq_mqd_compute_gfx11`: compute MQD for user queues (GFX11 and GFX12).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Pod, Zeroable)]
#[repr(C)]
pub struct UserqMqdComputeGfx11 {
    /// EOP buffer VA (mapped for the UQ_FW_AREAS `eop_size`).
    pub eop_va: u64,
}
assert_layout!(UserqMqdComputeGfx11, USERQ_MQD_COMPUTE_SIZE; eop_va = 0);

/// `drm_amdgpu_userq_signal`: arg of [`DRM_IOCTL_AMDGPU_USERQ_SIGNAL`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Pod, Zeroable)]
#[repr(C)]
pub struct UserqSignal {
    /// Queue id.
    pub queue_id: u32,
    /// Padding.
    pub pad: u32,
    /// User pointer to syncobj handles to signal.
    pub syncobj_handles: u64,
    /// Number of syncobj handles.
    pub num_syncobj_handles: u64,
    /// User pointer to BO handles read by the job.
    pub bo_read_handles: u64,
    /// User pointer to BO handles written by the job.
    pub bo_write_handles: u64,
    /// Number of read handles.
    pub num_bo_read_handles: u32,
    /// Number of write handles.
    pub num_bo_write_handles: u32,
}
assert_layout!(UserqSignal, 48; queue_id = 0, pad = 4, syncobj_handles = 8,
    num_syncobj_handles = 16, bo_read_handles = 24, bo_write_handles = 32,
    num_bo_read_handles = 40, num_bo_write_handles = 44);

/// `drm_amdgpu_userq_fence_info`: one element of [`UserqWait::out_fences`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Pod, Zeroable)]
#[repr(C)]
pub struct UserqFenceInfo {
    /// GPU VA of the fence value.
    pub va: u64,
    /// Value to wait for.
    pub value: u64,
}
assert_layout!(UserqFenceInfo, 16; va = 0, value = 8);

/// `drm_amdgpu_userq_wait`: arg of [`DRM_IOCTL_AMDGPU_USERQ_WAIT`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Pod, Zeroable)]
#[repr(C)]
pub struct UserqWait {
    /// Queue id that will wait.
    pub waitq_id: u32,
    /// Padding.
    pub pad: u32,
    /// User pointer to syncobj handles.
    pub syncobj_handles: u64,
    /// User pointer to timeline syncobj handles.
    pub syncobj_timeline_handles: u64,
    /// User pointer to timeline points.
    pub syncobj_timeline_points: u64,
    /// User pointer to read BO handles.
    pub bo_read_handles: u64,
    /// User pointer to write BO handles.
    pub bo_write_handles: u64,
    /// Number of timeline syncobj handles.
    pub num_syncobj_timeline_handles: u16,
    /// In: capacity of `out_fences`; out: fences returned.
    pub num_fences: u16,
    /// Number of syncobj handles.
    pub num_syncobj_handles: u32,
    /// Number of read BO handles.
    pub num_bo_read_handles: u32,
    /// Number of write BO handles.
    pub num_bo_write_handles: u32,
    /// User pointer to an array of [`UserqFenceInfo`].
    pub out_fences: u64,
}
assert_layout!(UserqWait, 72; waitq_id = 0, pad = 4, syncobj_handles = 8,
    syncobj_timeline_handles = 16, syncobj_timeline_points = 24, bo_read_handles = 32,
    bo_write_handles = 40, num_syncobj_timeline_handles = 48, num_fences = 50,
    num_syncobj_handles = 52, num_bo_read_handles = 56, num_bo_write_handles = 60,
    out_fences = 64);

/// `drm_gem_close`: arg of [`DRM_IOCTL_GEM_CLOSE`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Pod, Zeroable)]
#[repr(C)]
pub struct GemClose {
    /// GEM handle to close.
    pub handle: u32,
    /// Padding.
    pub pad: u32,
}
assert_layout!(GemClose, 8; handle = 0, pad = 4);

/// `drm_syncobj_create`: arg of [`DRM_IOCTL_SYNCOBJ_CREATE`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Pod, Zeroable)]
#[repr(C)]
pub struct SyncobjCreate {
    /// Out: the new syncobj handle.
    pub handle: u32,
    /// In: [`DRM_SYNCOBJ_CREATE_SIGNALED`] or 0.
    pub flags: u32,
}
assert_layout!(SyncobjCreate, 8; handle = 0, flags = 4);

/// `drm_syncobj_destroy`: arg of [`DRM_IOCTL_SYNCOBJ_DESTROY`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Pod, Zeroable)]
#[repr(C)]
pub struct SyncobjDestroy {
    /// The syncobj handle.
    pub handle: u32,
    /// Must be 0.
    pub pad: u32,
}
assert_layout!(SyncobjDestroy, 8; handle = 0, pad = 4);

/// `drm_syncobj_timeline_wait` without the newer trailing `deadline_nsec`: arg of
/// [`DRM_IOCTL_SYNCOBJ_TIMELINE_WAIT`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Pod, Zeroable)]
#[repr(C)]
pub struct SyncobjTimelineWait {
    /// User pointer to `count_handles` u32 syncobj handles.
    pub handles: u64,
    /// User pointer to `count_handles` u64 timeline points (0: the syncobj's fence).
    pub points: u64,
    /// Absolute CLOCK_MONOTONIC timeout in ns.
    pub timeout_nsec: i64,
    /// Number of handles / points.
    pub count_handles: u32,
    /// `DRM_SYNCOBJ_WAIT_FLAGS_*`.
    pub flags: u32,
    /// Out: index of the first signalled handle (when not waiting for all).
    pub first_signaled: u32,
    /// Padding.
    pub pad: u32,
}
assert_layout!(SyncobjTimelineWait, 40;
    handles = 0, points = 8, timeout_nsec = 16, count_handles = 24, flags = 28,
    first_signaled = 32, pad = 36);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::abi::ioctl::{arg_for, decode_arg, ioc_size};

    #[test]
    fn table_has_unique_numbers() {
        for (i, a) in DRM_IOCTLS.iter().enumerate() {
            for b in &DRM_IOCTLS[i + 1..] {
                assert_ne!(a.request, b.request, "{} vs {}", a.name, b.name);
            }
        }
        assert_eq!(find_ioctl(0x4028_6448).unwrap().name, "DRM_IOCTL_AMDGPU_GEM_VA_LEGACY");
        // Another size of the same nr still dispatches (DRM core matches by nr).
        assert_eq!(
            find_ioctl(crate::abi::ioctl::iow(b'd', 0x48, 48)).unwrap().request,
            DRM_IOCTL_AMDGPU_GEM_VA
        );
    }

    #[test]
    fn ctx_union_round_trip() {
        let arg = arg_for(
            DRM_IOCTL_AMDGPU_CTX,
            &CtxIn {
                op: AMDGPU_CTX_OP_ALLOC_CTX,
                priority: AMDGPU_CTX_PRIORITY_LOW,
                ..Default::default()
            },
        );
        assert_eq!(arg.len(), ioc_size(DRM_IOCTL_AMDGPU_CTX));
        // priority -512 at offset 12, little endian.
        assert_eq!(&arg[12..16], &(-512i32).to_le_bytes());
        let out: CtxOutAlloc = decode_arg(&arg).unwrap();
        assert_eq!(out.ctx_id, 1);
    }

    #[test]
    fn info_hw_ip_view() {
        let info = Info::with_hw_ip(
            AMDGPU_INFO_HW_IP_INFO,
            InfoQueryHwIp { ip_type: AMDGPU_HW_IP_COMPUTE, ip_instance: 0 },
            0x1000,
            40,
        );
        let bytes = bytemuck::bytes_of(&info);
        assert_eq!(&bytes[16..20], &1u32.to_le_bytes());
        assert_eq!(info.query_hw_ip().ip_type, AMDGPU_HW_IP_COMPUTE);
    }
}
