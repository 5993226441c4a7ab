//! Typed wrappers over the KFD ioctls the kfd tier issues, one function per step.
//!
//! Every wrapper counts the ioctl it issues (success or failure) and turns a failing errno into
//! [`Error::Io`] naming its step (the `STEP_*` constants, which tests match on). Pointer fields
//! point into `user` slices passed alongside (see [`pm4rt_core::driver`]).

use std::sync::Arc;

use bytemuck::Pod;
use pm4rt_core::abi::ioctl::{arg_for, decode_array, slice_bytes};
use pm4rt_core::abi::kfd::{
    AcquireVmArgs, AllocMemoryOfGpuArgs, CreateEventArgs, CreateQueueArgs, DestroyEventArgs,
    DestroyQueueArgs, FreeMemoryOfGpuArgs, GetProcessAperturesNewArgs, GetVersionArgs,
    KfdEventData, MapMemoryToGpuArgs, ProcessDeviceApertures, RuntimeEnableArgs, WaitEventsArgs,
    AMDKFD_IOC_ACQUIRE_VM, AMDKFD_IOC_ALLOC_MEMORY_OF_GPU, AMDKFD_IOC_CREATE_EVENT,
    AMDKFD_IOC_CREATE_QUEUE, AMDKFD_IOC_DESTROY_EVENT, AMDKFD_IOC_DESTROY_QUEUE,
    AMDKFD_IOC_FREE_MEMORY_OF_GPU, AMDKFD_IOC_GET_PROCESS_APERTURES_NEW, AMDKFD_IOC_GET_VERSION,
    AMDKFD_IOC_MAP_MEMORY_TO_GPU, AMDKFD_IOC_RUNTIME_ENABLE, AMDKFD_IOC_UNMAP_MEMORY_FROM_GPU,
    AMDKFD_IOC_WAIT_EVENTS,
};
use pm4rt_core::driver::user_ptr;
use pm4rt_core::{Driver, Errno, Error, Fd, Result};

use crate::common::counted_fd::{decode, CountedFd};

/// Step name: opening `/dev/kfd`.
pub const STEP_OPEN_KFD: &str = "open /dev/kfd";
/// Step name: opening the render node.
pub const STEP_OPEN_RENDER: &str = "open render node";
/// Step name: `AMDKFD_IOC_GET_VERSION`.
pub const STEP_GET_VERSION: &str = "GET_VERSION";
/// Step name: `AMDKFD_IOC_ACQUIRE_VM`.
pub const STEP_ACQUIRE_VM: &str = "ACQUIRE_VM";
/// Step name: `AMDKFD_IOC_RUNTIME_ENABLE`.
pub const STEP_RUNTIME_ENABLE: &str = "RUNTIME_ENABLE";
/// Step name: `AMDKFD_IOC_GET_PROCESS_APERTURES_NEW`.
pub const STEP_APERTURES: &str = "GET_PROCESS_APERTURES_NEW";
/// Step name: reserving the CPU/GPU VA window.
pub const STEP_RESERVE_VA: &str = "reserve VA";
/// Step name: `AMDKFD_IOC_ALLOC_MEMORY_OF_GPU`.
pub const STEP_ALLOC: &str = "ALLOC_MEMORY_OF_GPU";
/// Step name: `AMDKFD_IOC_FREE_MEMORY_OF_GPU`.
pub const STEP_FREE: &str = "FREE_MEMORY_OF_GPU";
/// Step name: `AMDKFD_IOC_MAP_MEMORY_TO_GPU`.
pub const STEP_MAP: &str = "MAP_MEMORY_TO_GPU";
/// Step name: `AMDKFD_IOC_UNMAP_MEMORY_FROM_GPU`.
pub const STEP_UNMAP: &str = "UNMAP_MEMORY_FROM_GPU";
/// Step name: mmap of a BO (render node at its mmap offset, fixed at its VA).
pub const STEP_MMAP: &str = "mmap BO";
/// Step name: `AMDKFD_IOC_CREATE_EVENT`.
pub const STEP_CREATE_EVENT: &str = "CREATE_EVENT";
/// Step name: `AMDKFD_IOC_DESTROY_EVENT`.
pub const STEP_DESTROY_EVENT: &str = "DESTROY_EVENT";
/// Step name: `AMDKFD_IOC_CREATE_QUEUE`.
pub const STEP_CREATE_QUEUE: &str = "CREATE_QUEUE";
/// Step name: `AMDKFD_IOC_DESTROY_QUEUE`.
pub const STEP_DESTROY_QUEUE: &str = "DESTROY_QUEUE";
/// Step name: mmap of the doorbell page of `/dev/kfd`.
pub const STEP_MMAP_DOORBELL: &str = "mmap doorbell";
/// Step name: `AMDKFD_IOC_WAIT_EVENTS`.
pub const STEP_WAIT_EVENTS: &str = "WAIT_EVENTS";
/// Step name: CPU access through a mapping (ring, wptr, fence, BO).
pub const STEP_CPU_ACCESS: &str = "CPU access";

/// `/dev/kfd`: driver, descriptor and the ioctl counter.
pub(crate) struct Kfd {
    io: CountedFd,
}

impl Kfd {
    /// Wrap an open `/dev/kfd` descriptor.
    pub(crate) fn new(driver: Arc<dyn Driver>, fd: Fd) -> Kfd {
        Kfd { io: CountedFd::new(driver, fd) }
    }

    /// Ioctls issued so far.
    pub(crate) fn ioctls(&self) -> u64 {
        self.io.ioctls()
    }

    fn call(
        &mut self,
        step: &'static str,
        request: u32,
        arg: &mut [u8],
        user: &mut [&mut [u8]],
    ) -> Result<()> {
        self.io.call(step, request, arg, user)
    }

    fn simple<T: Pod>(&mut self, step: &'static str, request: u32, input: &T) -> Result<T> {
        let mut arg = arg_for(request, input);
        self.call(step, request, &mut arg, &mut [])?;
        decode(step, &arg)
    }

    /// `GET_VERSION`.
    pub(crate) fn get_version(&mut self) -> Result<GetVersionArgs> {
        self.simple(STEP_GET_VERSION, AMDKFD_IOC_GET_VERSION, &GetVersionArgs::default())
    }

    /// `ACQUIRE_VM` of the render node `drm_fd` for `gpu_id`.
    pub(crate) fn acquire_vm(&mut self, drm_fd: Fd, gpu_id: u32) -> Result<()> {
        let drm_fd =
            u32::try_from(drm_fd.0).map_err(|_| Error::io(STEP_ACQUIRE_VM, Errno::EBADF))?;
        self.simple(STEP_ACQUIRE_VM, AMDKFD_IOC_ACQUIRE_VM, &AcquireVmArgs { drm_fd, gpu_id })
            .map(|_| ())
    }

    /// `RUNTIME_ENABLE` with `args` (the kernel writes nothing back).
    pub(crate) fn runtime_enable(&mut self, args: RuntimeEnableArgs) -> Result<()> {
        self.simple(STEP_RUNTIME_ENABLE, AMDKFD_IOC_RUNTIME_ENABLE, &args).map(|_| ())
    }

    /// `GET_PROCESS_APERTURES_NEW` twice: the count, then the array.
    pub(crate) fn apertures(&mut self) -> Result<Vec<ProcessDeviceApertures>> {
        let count = self
            .simple(
                STEP_APERTURES,
                AMDKFD_IOC_GET_PROCESS_APERTURES_NEW,
                &GetProcessAperturesNewArgs::default(),
            )?
            .num_of_nodes;
        if count == 0 {
            return Ok(Vec::new());
        }
        let mut buf = vec![0u8; count as usize * std::mem::size_of::<ProcessDeviceApertures>()];
        let input = GetProcessAperturesNewArgs {
            kfd_process_device_apertures_ptr: user_ptr(&buf),
            num_of_nodes: count,
            pad: 0,
        };
        let mut arg = arg_for(AMDKFD_IOC_GET_PROCESS_APERTURES_NEW, &input);
        self.call(STEP_APERTURES, AMDKFD_IOC_GET_PROCESS_APERTURES_NEW, &mut arg, &mut [&mut buf])?;
        let out: GetProcessAperturesNewArgs = decode(STEP_APERTURES, &arg)?;
        let n = out.num_of_nodes.min(count) as usize;
        decode_array(&buf, n).map_err(|_| Error::io(STEP_APERTURES, Errno::EFAULT))
    }

    /// `ALLOC_MEMORY_OF_GPU`: returns (handle, mmap offset).
    pub(crate) fn alloc(
        &mut self,
        va: u64,
        size: u64,
        gpu_id: u32,
        flags: u32,
    ) -> Result<(u64, u64)> {
        let out = self.simple(
            STEP_ALLOC,
            AMDKFD_IOC_ALLOC_MEMORY_OF_GPU,
            &AllocMemoryOfGpuArgs { va_addr: va, size, handle: 0, mmap_offset: 0, gpu_id, flags },
        )?;
        Ok((out.handle, out.mmap_offset))
    }

    /// `FREE_MEMORY_OF_GPU`.
    pub(crate) fn free(&mut self, handle: u64) -> Result<()> {
        self.simple(STEP_FREE, AMDKFD_IOC_FREE_MEMORY_OF_GPU, &FreeMemoryOfGpuArgs { handle })
            .map(|_| ())
    }

    fn map_op(&mut self, step: &'static str, request: u32, handle: u64, gpu_id: u32) -> Result<()> {
        let mut ids = gpu_id.to_le_bytes();
        let input = MapMemoryToGpuArgs {
            handle,
            device_ids_array_ptr: user_ptr(&ids),
            n_devices: 1,
            n_success: 0,
        };
        let mut arg = arg_for(request, &input);
        self.call(step, request, &mut arg, &mut [&mut ids])?;
        let out: MapMemoryToGpuArgs = decode(step, &arg)?;
        if out.n_success != 1 {
            // The kernel reports partial success through n_success; one device must be done.
            return Err(Error::io(step, Errno::EIO));
        }
        Ok(())
    }

    /// `MAP_MEMORY_TO_GPU` on the one GPU.
    pub(crate) fn map(&mut self, handle: u64, gpu_id: u32) -> Result<()> {
        self.map_op(STEP_MAP, AMDKFD_IOC_MAP_MEMORY_TO_GPU, handle, gpu_id)
    }

    /// `UNMAP_MEMORY_FROM_GPU` on the one GPU.
    pub(crate) fn unmap(&mut self, handle: u64, gpu_id: u32) -> Result<()> {
        self.map_op(STEP_UNMAP, AMDKFD_IOC_UNMAP_MEMORY_FROM_GPU, handle, gpu_id)
    }

    /// `CREATE_EVENT`.
    pub(crate) fn create_event(&mut self, input: CreateEventArgs) -> Result<CreateEventArgs> {
        self.simple(STEP_CREATE_EVENT, AMDKFD_IOC_CREATE_EVENT, &input)
    }

    /// `DESTROY_EVENT`.
    pub(crate) fn destroy_event(&mut self, event_id: u32) -> Result<()> {
        self.simple(
            STEP_DESTROY_EVENT,
            AMDKFD_IOC_DESTROY_EVENT,
            &DestroyEventArgs { event_id, pad: 0 },
        )
        .map(|_| ())
    }

    /// `CREATE_QUEUE`.
    pub(crate) fn create_queue(&mut self, input: CreateQueueArgs) -> Result<CreateQueueArgs> {
        self.simple(STEP_CREATE_QUEUE, AMDKFD_IOC_CREATE_QUEUE, &input)
    }

    /// `DESTROY_QUEUE`.
    pub(crate) fn destroy_queue(&mut self, queue_id: u32) -> Result<()> {
        self.simple(
            STEP_DESTROY_QUEUE,
            AMDKFD_IOC_DESTROY_QUEUE,
            &DestroyQueueArgs { queue_id, pad: 0 },
        )
        .map(|_| ())
    }

    /// `WAIT_EVENTS` on `events` (any of them), at most `timeout_ms`. Returns the wait result
    /// and the event data the kernel copied back.
    pub(crate) fn wait_events(
        &mut self,
        events: &[KfdEventData],
        timeout_ms: u32,
    ) -> Result<(u32, Vec<KfdEventData>)> {
        let mut buf = slice_bytes(events).to_vec();
        let input = WaitEventsArgs {
            events_ptr: user_ptr(&buf),
            num_events: events.len() as u32,
            wait_for_all: 0,
            timeout: timeout_ms,
            wait_result: 0,
        };
        let mut arg = arg_for(AMDKFD_IOC_WAIT_EVENTS, &input);
        self.call(STEP_WAIT_EVENTS, AMDKFD_IOC_WAIT_EVENTS, &mut arg, &mut [&mut buf])?;
        let out: WaitEventsArgs = decode(STEP_WAIT_EVENTS, &arg)?;
        let data = decode_array(&buf, events.len())
            .map_err(|_| Error::io(STEP_WAIT_EVENTS, Errno::EFAULT))?;
        Ok((out.wait_result, data))
    }
}
