//! Per-process KFD ioctls: GET_VERSION, RUNTIME_ENABLE, ACQUIRE_VM and
//! GET_PROCESS_APERTURES_NEW (`kfd_chardev.c`).

use super::*;

pub(super) fn get_version(
    dev: &EmulatedDevice,
    _: Fd,
    a: &mut [u8],
    _: &mut UserMem,
) -> Result<(), Errno> {
    let (major_version, minor_version) = dev.lock().preset.kfd_version;
    update_arg(a, &k::GetVersionArgs { major_version, minor_version }).map_err(|_| Errno::EFAULT)
}

/// `kfd_ioctl_runtime_enable` (see the module docs).
pub(super) fn runtime_enable(
    dev: &EmulatedDevice,
    fd: Fd,
    a: &mut [u8],
    _: &mut UserMem,
) -> Result<(), Errno> {
    let args: k::RuntimeEnableArgs = decode_arg(a).map_err(|_| Errno::EFAULT)?;
    let mut s = dev.lock();
    if s.preset.kfd_version < RUNTIME_ENABLE_SINCE {
        let (ma, mi) = s.preset.kfd_version;
        return Err(einval(
            &mut s,
            format!("kfd_ioctl: no RUNTIME_ENABLE (nr 0x25) in KFD {ma}.{mi}"),
        ));
    }
    let p = proc_of(&mut s, fd)?;
    if args.mode_mask & k::KFD_RUNTIME_ENABLE_MODE_ENABLE_MASK == 0 {
        // runtime_disable.
        p.runtime = None;
        return Ok(());
    }
    if p.runtime.is_some() {
        return Err(s.fail(Errno::EBUSY, "runtime_enable: runtime_state is not DISABLED"));
    }
    if !p.queues.is_empty() {
        return Err(s.fail(Errno::EEXIST, "runtime_enable: the process already has queues"));
    }
    p.runtime = Some(args.r_debug);
    Ok(())
}

pub(super) fn acquire_vm(
    dev: &EmulatedDevice,
    fd: Fd,
    a: &mut [u8],
    _: &mut UserMem,
) -> Result<(), Errno> {
    let args: k::AcquireVmArgs = decode_arg(a).map_err(|_| Errno::EFAULT)?;
    let mut s = dev.lock();
    if args.gpu_id != EMU_GPU_ID {
        return Err(einval(&mut s, format!("ACQUIRE_VM: unknown gpu_id {:#x}", args.gpu_id)));
    }
    let drm = args.drm_fd as i32;
    if !s.files.contains_key(&drm) {
        return Err(s.fail(Errno::EBADF, "ACQUIRE_VM: drm_fd is not an open render node"));
    }
    let p = proc_of(&mut s, fd)?;
    match p.vm {
        Some(d) if d != drm => Err(s.fail(Errno::EBUSY, "ACQUIRE_VM: another drm file")),
        _ => {
            p.vm = Some(drm);
            Ok(())
        }
    }
}

pub(super) fn apertures(
    dev: &EmulatedDevice,
    fd: Fd,
    a: &mut [u8],
    u: &mut UserMem,
) -> Result<(), Errno> {
    let mut args: k::GetProcessAperturesNewArgs = decode_arg(a).map_err(|_| Errno::EFAULT)?;
    let mut s = dev.lock();
    proc_of(&mut s, fd)?;
    if args.num_of_nodes == 0 {
        args.num_of_nodes = 1;
    } else {
        let ap = k::ProcessDeviceApertures {
            gpuvm_base: GPUVM_BASE,
            gpuvm_limit: GPUVM_LIMIT,
            gpu_id: EMU_GPU_ID,
            ..Default::default()
        };
        u.write(args.kfd_process_device_apertures_ptr, bytemuck::bytes_of(&ap))?;
        args.num_of_nodes = 1;
    }
    update_arg(a, &args).map_err(|_| Errno::EFAULT)
}
