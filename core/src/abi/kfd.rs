//! KFD ioctls (`include/uapi/linux/kfd_ioctl.h`, device `/dev/kfd`) and the doorbell / mmap
//! offset encoding of `kfd_priv.h`.
//!
//! See the [module docs](super) for naming and the argument-byte helpers.

use bytemuck::{Pod, Zeroable};

use super::ioctl::IoctlDef;

// ---------------------------------------------------------------------------------------------
// Request numbers
// ---------------------------------------------------------------------------------------------

/// The KFD ioctl type byte (`AMDKFD_IOCTL_BASE`, `'K'`).
pub const AMDKFD_IOCTL_BASE: u8 = b'K';
/// Size of the 88-byte `kfd_ioctl_create_queue_args` before KFD 1.17 (no `sdma_engine_id`).
pub const CREATE_QUEUE_LEGACY_SIZE: usize = 88;

const K: u8 = AMDKFD_IOCTL_BASE;

ioctl_table! {
    /// Every KFD request number pm4rt uses (the emulated device dispatches on it).
    KFD_IOCTLS;
    /// `AMDKFD_IOC_GET_VERSION`: arg [`GetVersionArgs`].
    AMDKFD_IOC_GET_VERSION = ior(K, 0x01, 8) == 0x8008_4B01;
    /// `AMDKFD_IOC_CREATE_QUEUE` with the current 96-byte [`CreateQueueArgs`].
    AMDKFD_IOC_CREATE_QUEUE = iowr(K, 0x02, 96) == 0xC060_4B02;
    /// `AMDKFD_IOC_CREATE_QUEUE` as encoded by headers before KFD 1.17 (88 bytes). KFD
    /// zero-extends it; the first 88 bytes of [`CreateQueueArgs`] are that struct.
    AMDKFD_IOC_CREATE_QUEUE_LEGACY = iowr(K, 0x02, CREATE_QUEUE_LEGACY_SIZE) == 0xC058_4B02;
    /// `AMDKFD_IOC_DESTROY_QUEUE`: arg [`DestroyQueueArgs`].
    AMDKFD_IOC_DESTROY_QUEUE = iowr(K, 0x03, 8) == 0xC008_4B03;
    /// `AMDKFD_IOC_CREATE_EVENT`: arg [`CreateEventArgs`].
    AMDKFD_IOC_CREATE_EVENT = iowr(K, 0x08, 32) == 0xC020_4B08;
    /// `AMDKFD_IOC_DESTROY_EVENT`: arg [`DestroyEventArgs`].
    AMDKFD_IOC_DESTROY_EVENT = iow(K, 0x09, 8) == 0x4008_4B09;
    /// `AMDKFD_IOC_WAIT_EVENTS`: arg [`WaitEventsArgs`].
    AMDKFD_IOC_WAIT_EVENTS = iowr(K, 0x0C, 24) == 0xC018_4B0C;
    /// `AMDKFD_IOC_GET_PROCESS_APERTURES_NEW`: arg [`GetProcessAperturesNewArgs`].
    AMDKFD_IOC_GET_PROCESS_APERTURES_NEW = iowr(K, 0x14, 16) == 0xC010_4B14;
    /// `AMDKFD_IOC_ACQUIRE_VM`: arg [`AcquireVmArgs`].
    AMDKFD_IOC_ACQUIRE_VM = iow(K, 0x15, 8) == 0x4008_4B15;
    /// `AMDKFD_IOC_ALLOC_MEMORY_OF_GPU`: arg [`AllocMemoryOfGpuArgs`].
    AMDKFD_IOC_ALLOC_MEMORY_OF_GPU = iowr(K, 0x16, 40) == 0xC028_4B16;
    /// `AMDKFD_IOC_FREE_MEMORY_OF_GPU`: arg [`FreeMemoryOfGpuArgs`].
    AMDKFD_IOC_FREE_MEMORY_OF_GPU = iow(K, 0x17, 8) == 0x4008_4B17;
    /// `AMDKFD_IOC_MAP_MEMORY_TO_GPU`: arg [`MapMemoryToGpuArgs`].
    AMDKFD_IOC_MAP_MEMORY_TO_GPU = iowr(K, 0x18, 24) == 0xC018_4B18;
    /// `AMDKFD_IOC_UNMAP_MEMORY_FROM_GPU`: arg [`UnmapMemoryFromGpuArgs`].
    AMDKFD_IOC_UNMAP_MEMORY_FROM_GPU = iowr(K, 0x19, 24) == 0xC018_4B19;
    /// `AMDKFD_IOC_RUNTIME_ENABLE` (KFD 1.13+): arg [`RuntimeEnableArgs`].
    AMDKFD_IOC_RUNTIME_ENABLE = iowr(K, 0x25, 16) == 0xC010_4B25;
}

/// Look up a KFD request number (exact, or same nr with another size) in [`KFD_IOCTLS`].
pub fn find_ioctl(request: u32) -> Option<&'static IoctlDef> {
    super::ioctl::find_by_nr(KFD_IOCTLS, request)
}

// ---------------------------------------------------------------------------------------------
// Constants
// ---------------------------------------------------------------------------------------------

/// Queue type: PM4 compute queue.
pub const KFD_IOC_QUEUE_TYPE_COMPUTE: u32 = 0;
/// Queue type: SDMA.
pub const KFD_IOC_QUEUE_TYPE_SDMA: u32 = 1;
/// Queue type: AQL compute queue.
pub const KFD_IOC_QUEUE_TYPE_COMPUTE_AQL: u32 = 2;
/// Maximum `queue_percentage` (bits 0-7).
pub const KFD_MAX_QUEUE_PERCENTAGE: u32 = 100;
/// Maximum `queue_priority`.
pub const KFD_MAX_QUEUE_PRIORITY: u32 = 15;

/// Event type: signal (completion) event.
pub const KFD_IOC_EVENT_SIGNAL: u32 = 0;
/// Event type: hardware exception (GPU reset).
pub const KFD_IOC_EVENT_HW_EXCEPTION: u32 = 3;
/// Event type: memory exception (GPU page fault).
pub const KFD_IOC_EVENT_MEMORY: u32 = 8;
/// WAIT_EVENTS result: complete.
pub const KFD_IOC_WAIT_RESULT_COMPLETE: u32 = 0;
/// WAIT_EVENTS result: timeout.
pub const KFD_IOC_WAIT_RESULT_TIMEOUT: u32 = 1;
/// WAIT_EVENTS result: failure.
pub const KFD_IOC_WAIT_RESULT_FAIL: u32 = 2;
/// WAIT_EVENTS timeout meaning "forever" (pm4rt never uses it: waits are bounded).
pub const KFD_WAIT_TIMEOUT_INFINITE: u32 = 0xFFFF_FFFF;
/// Maximum number of signal events per process; the event page holds one u64 slot each.
pub const KFD_SIGNAL_EVENT_LIMIT: u32 = 4096;
/// Size of the signal event page (`KFD_SIGNAL_EVENT_LIMIT` 8-byte slots = 32 KiB).
pub const KFD_EVENT_PAGE_SIZE: usize = KFD_SIGNAL_EVENT_LIMIT as usize * 8;

/// Alloc flag: VRAM.
pub const KFD_IOC_ALLOC_MEM_FLAGS_VRAM: u32 = 1 << 0;
/// Alloc flag: GTT (system memory).
pub const KFD_IOC_ALLOC_MEM_FLAGS_GTT: u32 = 1 << 1;
/// Alloc flag: user pointer.
pub const KFD_IOC_ALLOC_MEM_FLAGS_USERPTR: u32 = 1 << 2;
/// Alloc flag: doorbell page.
pub const KFD_IOC_ALLOC_MEM_FLAGS_DOORBELL: u32 = 1 << 3;
/// Alloc flag: MMIO remap page.
pub const KFD_IOC_ALLOC_MEM_FLAGS_MMIO_REMAP: u32 = 1 << 4;
/// Alloc flag: physically contiguous VRAM.
pub const KFD_IOC_ALLOC_MEM_FLAGS_CONTIGUOUS: u32 = 1 << 23;
/// Alloc flag: uncached.
pub const KFD_IOC_ALLOC_MEM_FLAGS_UNCACHED: u32 = 1 << 25;
/// Alloc flag: coherent.
pub const KFD_IOC_ALLOC_MEM_FLAGS_COHERENT: u32 = 1 << 26;
/// Alloc flag: AQL queue memory.
pub const KFD_IOC_ALLOC_MEM_FLAGS_AQL_QUEUE_MEM: u32 = 1 << 27;
/// Alloc flag: do not substitute another domain.
pub const KFD_IOC_ALLOC_MEM_FLAGS_NO_SUBSTITUTE: u32 = 1 << 28;
/// Alloc flag: CPU-visible (public) VRAM.
pub const KFD_IOC_ALLOC_MEM_FLAGS_PUBLIC: u32 = 1 << 29;
/// Alloc flag: executable.
pub const KFD_IOC_ALLOC_MEM_FLAGS_EXECUTABLE: u32 = 1 << 30;
/// Alloc flag: writable.
pub const KFD_IOC_ALLOC_MEM_FLAGS_WRITABLE: u32 = 1 << 31;

/// RUNTIME_ENABLE mode: enable the runtime.
pub const KFD_RUNTIME_ENABLE_MODE_ENABLE_MASK: u32 = 1;
/// RUNTIME_ENABLE mode: enable trap temporary setup.
pub const KFD_RUNTIME_ENABLE_MODE_TTMP_SAVE_MASK: u32 = 2;

// ---------------------------------------------------------------------------------------------
// mmap offsets and doorbells (kfd_priv.h)
// ---------------------------------------------------------------------------------------------

/// Shift of the mmap type field in a /dev/kfd mmap offset.
pub const KFD_MMAP_TYPE_SHIFT: u32 = 62;
/// mmap type mask.
pub const KFD_MMAP_TYPE_MASK: u64 = 0x3 << KFD_MMAP_TYPE_SHIFT;
/// mmap type: doorbell page.
pub const KFD_MMAP_TYPE_DOORBELL: u64 = 0x3 << KFD_MMAP_TYPE_SHIFT;
/// mmap type: signal event page.
pub const KFD_MMAP_TYPE_EVENTS: u64 = 0x2 << KFD_MMAP_TYPE_SHIFT;
/// Shift of the GPU id in a /dev/kfd mmap offset.
pub const KFD_MMAP_GPU_ID_SHIFT: u32 = 46;
/// Width of the GPU id field.
pub const KFD_GPU_ID_HASH_WIDTH: u32 = 16;
/// GPU id mask in a /dev/kfd mmap offset.
pub const KFD_MMAP_GPU_ID_MASK: u64 = ((1 << KFD_GPU_ID_HASH_WIDTH) - 1) << KFD_MMAP_GPU_ID_SHIFT;
/// Bytes of /dev/kfd to mmap for a queue's doorbell page.
pub const KFD_DOORBELL_MAP_SIZE: usize = 8192;
const DOORBELL_IN_PAGE_MASK: u64 = KFD_DOORBELL_MAP_SIZE as u64 - 1;

/// The /dev/kfd mmap offset of the doorbell page holding the doorbell that
/// `CREATE_QUEUE` returned in `doorbell_offset` (`offset & !0x1FFF`).
pub const fn doorbell_mmap_offset(doorbell_offset: u64) -> u64 {
    doorbell_offset & !DOORBELL_IN_PAGE_MASK
}

/// The byte offset of the doorbell inside the [`KFD_DOORBELL_MAP_SIZE`] mapping at
/// [`doorbell_mmap_offset`] (`offset & 0x1FFF`).
pub const fn doorbell_offset_in_page(doorbell_offset: u64) -> usize {
    (doorbell_offset & DOORBELL_IN_PAGE_MASK) as usize
}

/// The doorbell offset KFD returns for `gpu_id` and a byte offset inside the process
/// doorbell slice: `KFD_MMAP_TYPE_DOORBELL | gpu_id << 46 | byte_offset` (what an emulated
/// device answers).
pub const fn doorbell_offset_for(gpu_id: u32, byte_offset: u64) -> u64 {
    KFD_MMAP_TYPE_DOORBELL
        | (((gpu_id as u64) << KFD_MMAP_GPU_ID_SHIFT) & KFD_MMAP_GPU_ID_MASK)
        | (byte_offset & !(KFD_MMAP_TYPE_MASK | KFD_MMAP_GPU_ID_MASK))
}

/// The GPU id encoded in a /dev/kfd mmap offset.
pub const fn mmap_gpu_id(offset: u64) -> u32 {
    ((offset & KFD_MMAP_GPU_ID_MASK) >> KFD_MMAP_GPU_ID_SHIFT) as u32
}

// ---------------------------------------------------------------------------------------------
// Structs
// ---------------------------------------------------------------------------------------------

/// `kfd_ioctl_get_version_args`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Pod, Zeroable)]
#[repr(C)]
pub struct GetVersionArgs {
    /// KFD major version (1).
    pub major_version: u32,
    /// KFD minor version.
    pub minor_version: u32,
}
assert_layout!(GetVersionArgs, 8; major_version = 0, minor_version = 4);

/// `kfd_ioctl_create_queue_args` (96 bytes, KFD 1.17+; the first 88 bytes are the older
/// struct).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Pod, Zeroable)]
#[repr(C)]
pub struct CreateQueueArgs {
    /// Ring GPU VA.
    pub ring_base_address: u64,
    /// GPU VA of the 64-bit write pointer.
    pub write_pointer_address: u64,
    /// GPU VA of the read pointer.
    pub read_pointer_address: u64,
    /// Out: doorbell mmap offset (see [`doorbell_mmap_offset`]).
    pub doorbell_offset: u64,
    /// Ring size in bytes (power of two).
    pub ring_size: u32,
    /// Target GPU.
    pub gpu_id: u32,
    /// `KFD_IOC_QUEUE_TYPE_*`.
    pub queue_type: u32,
    /// Percentage (bits 0-7, <= 100).
    pub queue_percentage: u32,
    /// Priority 0-15.
    pub queue_priority: u32,
    /// Out: queue id.
    pub queue_id: u32,
    /// EOP buffer GPU VA.
    pub eop_buffer_address: u64,
    /// EOP buffer size.
    pub eop_buffer_size: u64,
    /// CWSR area GPU VA.
    pub ctx_save_restore_address: u64,
    /// CWSR size.
    pub ctx_save_restore_size: u32,
    /// Control stack size.
    pub ctl_stack_size: u32,
    /// SDMA engine (queue type SDMA_BY_ENG_ID only).
    pub sdma_engine_id: u32,
    /// Padding.
    pub pad: u32,
}
assert_layout!(CreateQueueArgs, 96; ring_base_address = 0, write_pointer_address = 8,
    read_pointer_address = 16, doorbell_offset = 24, ring_size = 32, gpu_id = 36,
    queue_type = 40, queue_percentage = 44, queue_priority = 48, queue_id = 52,
    eop_buffer_address = 56, eop_buffer_size = 64, ctx_save_restore_address = 72,
    ctx_save_restore_size = 80, ctl_stack_size = 84, sdma_engine_id = 88, pad = 92);

/// `kfd_ioctl_destroy_queue_args`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Pod, Zeroable)]
#[repr(C)]
pub struct DestroyQueueArgs {
    /// Queue id.
    pub queue_id: u32,
    /// Padding.
    pub pad: u32,
}
assert_layout!(DestroyQueueArgs, 8; queue_id = 0, pad = 4);

/// `kfd_ioctl_create_event_args`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Pod, Zeroable)]
#[repr(C)]
pub struct CreateEventArgs {
    /// In (dGPU, first signal event): the ALLOC handle of the event page; out: its mmap
    /// offset.
    pub event_page_offset: u64,
    /// Out: trigger data (signal events).
    pub event_trigger_data: u32,
    /// `KFD_IOC_EVENT_*`.
    pub event_type: u32,
    /// Auto-reset.
    pub auto_reset: u32,
    /// Node (some event types).
    pub node_id: u32,
    /// Out: event id.
    pub event_id: u32,
    /// Out: slot index in the event page.
    pub event_slot_index: u32,
}
assert_layout!(CreateEventArgs, 32; event_page_offset = 0, event_trigger_data = 8,
    event_type = 12, auto_reset = 16, node_id = 20, event_id = 24, event_slot_index = 28);

/// `kfd_ioctl_destroy_event_args`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Pod, Zeroable)]
#[repr(C)]
pub struct DestroyEventArgs {
    /// Event id.
    pub event_id: u32,
    /// Padding.
    pub pad: u32,
}
assert_layout!(DestroyEventArgs, 8; event_id = 0, pad = 4);

/// `kfd_event_data` (48 bytes): one element of the [`WaitEventsArgs::events_ptr`] array. The
/// 32-byte C union is `payload`; read it with [`KfdEventData::memory_exception`],
/// [`KfdEventData::hw_exception`] or [`KfdEventData::last_event_age`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Pod, Zeroable)]
#[repr(C)]
pub struct KfdEventData {
    /// The union (memory exception / hw exception / signal data).
    pub payload: [u64; 4],
    /// Pointer to an extension structure.
    pub kfd_event_data_ext: u64,
    /// Event id (to KFD).
    pub event_id: u32,
    /// Padding.
    pub pad: u32,
}
assert_layout!(KfdEventData, 48; payload = 0, kfd_event_data_ext = 32, event_id = 40, pad = 44);

/// `kfd_hsa_memory_exception_data` with `kfd_memory_exception_failure` flattened in.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Pod, Zeroable)]
#[repr(C)]
pub struct MemoryExceptionData {
    /// `failure.NotPresent`.
    pub not_present: u32,
    /// `failure.ReadOnly`.
    pub read_only: u32,
    /// `failure.NoExecute`.
    pub no_execute: u32,
    /// `failure.imprecise`.
    pub imprecise: u32,
    /// Faulting GPU VA.
    pub va: u64,
    /// GPU id.
    pub gpu_id: u32,
    /// `ErrorType` (0 none, 1 ECC, 2 poison, 3 hang).
    pub error_type: u32,
}
assert_layout!(MemoryExceptionData, 32; not_present = 0, read_only = 4, no_execute = 8,
    imprecise = 12, va = 16, gpu_id = 24, error_type = 28);

/// `kfd_hsa_hw_exception_data`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Pod, Zeroable)]
#[repr(C)]
pub struct HwExceptionData {
    /// Reset type.
    pub reset_type: u32,
    /// Reset cause.
    pub reset_cause: u32,
    /// Nonzero when memory was lost.
    pub memory_lost: u32,
    /// GPU id.
    pub gpu_id: u32,
}
assert_layout!(HwExceptionData, 16; reset_type = 0, reset_cause = 4, memory_lost = 8, gpu_id = 12);

impl KfdEventData {
    /// An element waiting for `event_id` (payload zero).
    pub fn for_event(event_id: u32) -> Self {
        KfdEventData { event_id, ..Default::default() }
    }

    /// The payload read as memory-exception data (event type MEMORY).
    pub fn memory_exception(&self) -> MemoryExceptionData {
        bytemuck::pod_read_unaligned(bytemuck::bytes_of(&self.payload))
    }

    /// The payload read as hardware-exception data (event type HW_EXCEPTION).
    pub fn hw_exception(&self) -> HwExceptionData {
        bytemuck::pod_read_unaligned(&bytemuck::bytes_of(&self.payload)[..16])
    }

    /// `signal_event_data.last_event_age` (KFD 1.14+; signal events).
    pub fn last_event_age(&self) -> u64 {
        self.payload[0]
    }

    /// Store memory-exception data in the payload (emulated device).
    pub fn set_memory_exception(&mut self, data: &MemoryExceptionData) {
        self.payload = bytemuck::pod_read_unaligned(bytemuck::bytes_of(data));
    }

    /// Store hardware-exception data in the payload (emulated device).
    pub fn set_hw_exception(&mut self, data: &HwExceptionData) {
        let mut bytes = [0u8; 32];
        bytes[..16].copy_from_slice(bytemuck::bytes_of(data));
        self.payload = bytemuck::pod_read_unaligned(&bytes);
    }
}

/// `kfd_ioctl_wait_events_args`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Pod, Zeroable)]
#[repr(C)]
pub struct WaitEventsArgs {
    /// User pointer to an array of [`KfdEventData`].
    pub events_ptr: u64,
    /// Number of events.
    pub num_events: u32,
    /// Wait for all (1) or any (0).
    pub wait_for_all: u32,
    /// Timeout in ms.
    pub timeout: u32,
    /// Out: `KFD_IOC_WAIT_RESULT_*`.
    pub wait_result: u32,
}
assert_layout!(WaitEventsArgs, 24; events_ptr = 0, num_events = 8, wait_for_all = 12,
    timeout = 16, wait_result = 20);

/// `kfd_process_device_apertures`: one element of the GET_PROCESS_APERTURES_NEW array.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Pod, Zeroable)]
#[repr(C)]
pub struct ProcessDeviceApertures {
    /// LDS aperture base.
    pub lds_base: u64,
    /// LDS aperture limit.
    pub lds_limit: u64,
    /// Scratch aperture base.
    pub scratch_base: u64,
    /// Scratch aperture limit.
    pub scratch_limit: u64,
    /// GPUVM aperture base (BO VAs must lie inside).
    pub gpuvm_base: u64,
    /// GPUVM aperture limit.
    pub gpuvm_limit: u64,
    /// GPU id.
    pub gpu_id: u32,
    /// Padding.
    pub pad: u32,
}
assert_layout!(ProcessDeviceApertures, 56; lds_base = 0, lds_limit = 8, scratch_base = 16,
    scratch_limit = 24, gpuvm_base = 32, gpuvm_limit = 40, gpu_id = 48, pad = 52);

/// `kfd_ioctl_get_process_apertures_new_args`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Pod, Zeroable)]
#[repr(C)]
pub struct GetProcessAperturesNewArgs {
    /// User pointer to an array of [`ProcessDeviceApertures`].
    pub kfd_process_device_apertures_ptr: u64,
    /// In: array capacity (0 to learn the count); out: entries filled.
    pub num_of_nodes: u32,
    /// Padding.
    pub pad: u32,
}
assert_layout!(GetProcessAperturesNewArgs, 16; kfd_process_device_apertures_ptr = 0,
    num_of_nodes = 8, pad = 12);

/// `kfd_ioctl_acquire_vm_args`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Pod, Zeroable)]
#[repr(C)]
pub struct AcquireVmArgs {
    /// The render-node fd of the GPU.
    pub drm_fd: u32,
    /// GPU id.
    pub gpu_id: u32,
}
assert_layout!(AcquireVmArgs, 8; drm_fd = 0, gpu_id = 4);

/// `kfd_ioctl_alloc_memory_of_gpu_args`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Pod, Zeroable)]
#[repr(C)]
pub struct AllocMemoryOfGpuArgs {
    /// GPU VA (inside the GPUVM aperture).
    pub va_addr: u64,
    /// Size in bytes.
    pub size: u64,
    /// Out: memory handle.
    pub handle: u64,
    /// Out: offset to mmap the render fd at (in: CPU address for USERPTR).
    pub mmap_offset: u64,
    /// GPU id.
    pub gpu_id: u32,
    /// `KFD_IOC_ALLOC_MEM_FLAGS_*`.
    pub flags: u32,
}
assert_layout!(AllocMemoryOfGpuArgs, 40; va_addr = 0, size = 8, handle = 16, mmap_offset = 24,
    gpu_id = 32, flags = 36);

/// `kfd_ioctl_free_memory_of_gpu_args`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Pod, Zeroable)]
#[repr(C)]
pub struct FreeMemoryOfGpuArgs {
    /// Memory handle.
    pub handle: u64,
}
assert_layout!(FreeMemoryOfGpuArgs, 8; handle = 0);

/// `kfd_ioctl_map_memory_to_gpu_args`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Pod, Zeroable)]
#[repr(C)]
pub struct MapMemoryToGpuArgs {
    /// Memory handle.
    pub handle: u64,
    /// User pointer to an array of u32 GPU ids.
    pub device_ids_array_ptr: u64,
    /// Number of GPU ids.
    pub n_devices: u32,
    /// In/out: devices done so far (start with 0).
    pub n_success: u32,
}
assert_layout!(MapMemoryToGpuArgs, 24; handle = 0, device_ids_array_ptr = 8, n_devices = 16,
    n_success = 20);

/// `kfd_ioctl_unmap_memory_from_gpu_args` (same layout as [`MapMemoryToGpuArgs`]).
pub type UnmapMemoryFromGpuArgs = MapMemoryToGpuArgs;

/// `kfd_ioctl_runtime_enable_args`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Pod, Zeroable)]
#[repr(C)]
pub struct RuntimeEnableArgs {
    /// Debugger rendezvous pointer (0).
    pub r_debug: u64,
    /// `KFD_RUNTIME_ENABLE_MODE_*`.
    pub mode_mask: u32,
    /// Out: capabilities.
    pub capabilities_mask: u32,
}
assert_layout!(RuntimeEnableArgs, 16; r_debug = 0, mode_mask = 8, capabilities_mask = 12);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doorbell_offsets_follow_reference() {
        // abi.md: offset = (3 << 62) | (gpu_id << 46) | byte offset; mmap at offset & !0x1FFF,
        // doorbell at offset & 0x1FFF.
        let off = (3u64 << 62) | (0x1234u64 << 46) | 0x2008;
        assert_eq!(doorbell_offset_for(0x1234, 0x2008), off);
        assert_eq!(doorbell_mmap_offset(off), (3u64 << 62) | (0x1234u64 << 46) | 0x2000);
        assert_eq!(doorbell_offset_in_page(off), 8);
        assert_eq!(mmap_gpu_id(off), 0x1234);
        assert_eq!(KFD_EVENT_PAGE_SIZE, 32 * 1024);
    }

    #[test]
    fn event_data_views() {
        let mut e = KfdEventData::for_event(7);
        e.set_memory_exception(&MemoryExceptionData {
            va: 0xdead_0000,
            gpu_id: 5,
            not_present: 1,
            ..Default::default()
        });
        let bytes = bytemuck::bytes_of(&e);
        assert_eq!(&bytes[16..24], &0xdead_0000u64.to_le_bytes());
        assert_eq!(&bytes[40..44], &7u32.to_le_bytes());
        assert_eq!(e.memory_exception().va, 0xdead_0000);
        e.set_hw_exception(&HwExceptionData { memory_lost: 1, ..Default::default() });
        assert_eq!(e.hw_exception().memory_lost, 1);
        assert_eq!(&bytemuck::bytes_of(&e)[16..32], &[0u8; 16]);
    }
}
