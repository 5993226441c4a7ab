//! Unit tests of the emulated KFD ioctls.

use super::*;
use pm4rt_core::abi::ioctl::arg_for;
use pm4rt_core::driver::Driver;

fn signal_event(dev: &EmulatedDevice, fd: Fd, auto_reset: bool) -> u32 {
    let c = k::CreateEventArgs {
        event_type: k::KFD_IOC_EVENT_SIGNAL,
        auto_reset: u32::from(auto_reset),
        ..Default::default()
    };
    let mut arg = arg_for(k::AMDKFD_IOC_CREATE_EVENT, &c);
    dev.ioctl(fd, k::AMDKFD_IOC_CREATE_EVENT, &mut arg, &mut []).unwrap();
    decode_arg::<k::CreateEventArgs>(&arg).unwrap().event_id
}

/// WAIT_EVENTS with a zero timeout: the `wait_result`.
fn wait(dev: &EmulatedDevice, fd: Fd, ids: &[u32], all: bool) -> u32 {
    let data: Vec<k::KfdEventData> = ids.iter().map(|&i| k::KfdEventData::for_event(i)).collect();
    let mut buf = pm4rt_core::abi::ioctl::slice_bytes(&data).to_vec();
    let w = k::WaitEventsArgs {
        events_ptr: pm4rt_core::driver::user_ptr(&buf),
        num_events: ids.len() as u32,
        wait_for_all: u32::from(all),
        timeout: 0,
        wait_result: u32::MAX,
    };
    let mut arg = arg_for(k::AMDKFD_IOC_WAIT_EVENTS, &w);
    dev.ioctl(fd, k::AMDKFD_IOC_WAIT_EVENTS, &mut arg, &mut [&mut buf]).unwrap();
    decode_arg::<k::WaitEventsArgs>(&arg).unwrap().wait_result
}

#[test]
fn wait_for_all_needs_every_event() {
    // kfd_events.c test_event_condition: `all` completes only when every waiter is
    // activated; otherwise one suffices; no events at all is complete.
    let dev = EmulatedDevice::r9700().unwrap();
    let fd = dev.open(KFD_PATH).unwrap();
    let (a, b) = (signal_event(&dev, fd, false), signal_event(&dev, fd, false));
    let hub = Arc::clone(&dev.lock().kfd.hub);
    hub.signal(a, None);
    assert_eq!(wait(&dev, fd, &[a, b], true), k::KFD_IOC_WAIT_RESULT_TIMEOUT);
    assert_eq!(wait(&dev, fd, &[a, b], false), k::KFD_IOC_WAIT_RESULT_COMPLETE);
    hub.signal(b, None);
    assert_eq!(wait(&dev, fd, &[a, b], true), k::KFD_IOC_WAIT_RESULT_COMPLETE);
    assert_eq!(wait(&dev, fd, &[], false), k::KFD_IOC_WAIT_RESULT_COMPLETE);
    dev.close(fd).unwrap();
}

#[test]
fn a_waiter_consumes_an_auto_reset_signal_even_on_timeout() {
    // init_event_waiter: `ev->signaled = ev->signaled && !ev->auto_reset`.
    let dev = EmulatedDevice::r9700().unwrap();
    let fd = dev.open(KFD_PATH).unwrap();
    let (a, b) = (signal_event(&dev, fd, true), signal_event(&dev, fd, false));
    let hub = Arc::clone(&dev.lock().kfd.hub);
    hub.signal(a, None);
    assert_eq!(wait(&dev, fd, &[a, b], true), k::KFD_IOC_WAIT_RESULT_TIMEOUT);
    assert_eq!(wait(&dev, fd, &[a], false), k::KFD_IOC_WAIT_RESULT_TIMEOUT);
    dev.close(fd).unwrap();
}

#[test]
fn map_refuses_n_success_beyond_n_devices() {
    // kfd_ioctl_map_memory_to_gpu: `n_success > n_devices` is EINVAL.
    let dev = EmulatedDevice::r9700().unwrap();
    let render = dev.open("/dev/dri/renderD128").unwrap();
    let fd = dev.open(KFD_PATH).unwrap();
    let acq = k::AcquireVmArgs { drm_fd: render.0 as u32, gpu_id: EMU_GPU_ID };
    let mut arg = arg_for(k::AMDKFD_IOC_ACQUIRE_VM, &acq);
    dev.ioctl(fd, k::AMDKFD_IOC_ACQUIRE_VM, &mut arg, &mut []).unwrap();
    let al = k::AllocMemoryOfGpuArgs {
        va_addr: GPUVM_BASE,
        size: PAGE,
        gpu_id: EMU_GPU_ID,
        flags: k::KFD_IOC_ALLOC_MEM_FLAGS_GTT,
        ..Default::default()
    };
    let mut arg = arg_for(k::AMDKFD_IOC_ALLOC_MEMORY_OF_GPU, &al);
    dev.ioctl(fd, k::AMDKFD_IOC_ALLOC_MEMORY_OF_GPU, &mut arg, &mut []).unwrap();
    let handle = decode_arg::<k::AllocMemoryOfGpuArgs>(&arg).unwrap().handle;
    let mut ids = EMU_GPU_ID.to_le_bytes().to_vec();
    let map = |n_success: u32, ids: &mut Vec<u8>| {
        let m = k::MapMemoryToGpuArgs {
            handle,
            device_ids_array_ptr: pm4rt_core::driver::user_ptr(ids),
            n_devices: 1,
            n_success,
        };
        let mut arg = arg_for(k::AMDKFD_IOC_MAP_MEMORY_TO_GPU, &m);
        dev.ioctl(fd, k::AMDKFD_IOC_MAP_MEMORY_TO_GPU, &mut arg, &mut [&mut ids[..]])
            .map(|()| decode_arg::<k::MapMemoryToGpuArgs>(&arg).unwrap().n_success)
    };
    assert_eq!(map(2, &mut ids), Err(Errno::EINVAL));
    assert_eq!(map(0, &mut ids), Ok(1));
    dev.close(fd).unwrap();
    dev.close(render).unwrap();
}

fn runtime_enable_call(dev: &EmulatedDevice, fd: Fd, mode_mask: u32) -> Result<(), Errno> {
    let r = k::RuntimeEnableArgs { r_debug: 0x1000, mode_mask, capabilities_mask: 0 };
    let mut arg = arg_for(k::AMDKFD_IOC_RUNTIME_ENABLE, &r);
    dev.ioctl(fd, k::AMDKFD_IOC_RUNTIME_ENABLE, &mut arg, &mut [])
}

#[test]
fn runtime_enable_follows_kfd_ioctl_runtime_enable() {
    // kfd_chardev.c: runtime_enable is EBUSY unless DISABLED and EEXIST with queues;
    // runtime_disable (mode_mask without ENABLE) always succeeds.
    let dev = EmulatedDevice::r9700().unwrap();
    let fd = dev.open(KFD_PATH).unwrap();
    let enable = k::KFD_RUNTIME_ENABLE_MODE_ENABLE_MASK;
    assert_eq!(runtime_enable_call(&dev, fd, 0), Ok(()));
    assert_eq!(runtime_enable_call(&dev, fd, enable), Ok(()));
    assert_eq!(runtime_enable_call(&dev, fd, enable), Err(Errno::EBUSY));
    assert_eq!(runtime_enable_call(&dev, fd, 0), Ok(()));
    dev.lock().kfd.procs.get_mut(&fd.0).unwrap().queues.insert(1, 0);
    assert_eq!(runtime_enable_call(&dev, fd, enable), Err(Errno::EEXIST));
    assert_eq!(runtime_enable_call(&dev, fd, 0), Ok(()));
    dev.lock().kfd.procs.get_mut(&fd.0).unwrap().queues.clear();
    // Another process (another open) has its own state.
    let fd2 = dev.open(KFD_PATH).unwrap();
    assert_eq!(runtime_enable_call(&dev, fd2, enable), Ok(()));
    dev.close(fd2).unwrap();
    dev.close(fd).unwrap();
}

#[test]
fn runtime_enable_is_unknown_before_kfd_1_13() {
    let preset = Preset { kfd_version: (1, 12), ..Preset::r9700_gfx1201() };
    let dev = EmulatedDevice::new(preset).unwrap();
    let fd = dev.open(KFD_PATH).unwrap();
    assert_eq!(runtime_enable_call(&dev, fd, 0), Err(Errno::EINVAL));
    let mut arg = arg_for(k::AMDKFD_IOC_GET_VERSION, &k::GetVersionArgs::default());
    dev.ioctl(fd, k::AMDKFD_IOC_GET_VERSION, &mut arg, &mut []).unwrap();
    let v = decode_arg::<k::GetVersionArgs>(&arg).unwrap();
    assert_eq!((v.major_version, v.minor_version), (1, 12));
    dev.close(fd).unwrap();
}

#[test]
fn node_sizes_match_the_reference() {
    // kfd_queue.c: kfd_queue_ctx_save_restore_size for gfx1201 with 64 CUs (the formulas
    // in backends/src/kfd/cwsr.rs): cwsr 0x1D47000, debug 0x10000.
    let (ctl, cwsr, debug, eop) = node_queue_sizes(120001, 64);
    assert_eq!((ctl, cwsr, debug, eop), (0x7000, 0x1D4_7000, 0x1_0000, 4096));
}
