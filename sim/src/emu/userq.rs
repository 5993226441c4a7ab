//! amdgpu user-mode queues on the emulated device: `DRM_IOCTL_AMDGPU_USERQ` (create / free),
//! `INFO UQ_FW_AREAS`, and doorbell pages whose 64-bit stores make the engine consume a ring.
//!
//! # Kernel checks reproduced (drivers/gpu/drm/amd/amdgpu/amdgpu_userq.c, mes_userqueue.c)
//!
//! - `amdgpu_userq_ioctl`: `ENOTSUPP` (524) when no IP has user-queue functions
//!   (`amdgpu_userq_enabled`: the preset's `userq_ip_mask` is 0).
//! - `amdgpu_userq_input_args_validate`: CREATE flags outside PRIORITY_MASK | SECURE, an IP
//!   other than GFX / COMPUTE / DMA, `queue_va` 0 or `AMDGPU_BO_INVALID_OFFSET`, size 0, not a
//!   power of two or below 4096, `rptr_va` or `wptr_va` 0: `EINVAL`. FREE with any field but
//!   `op` / `queue_id` set: `EINVAL`. Another op: `EINVAL`.
//! - `amdgpu_userq_create`: the IP has no user-queue functions (its bit is clear in
//!   `userq_ip_mask`): `EINVAL`, logging "Usermode queue is not supported for this IP";
//!   priority HIGH (3) without CAP_SYS_NICE: `EACCES`; `queue_va .. +queue_size`,
//!   `rptr_va .. +4096`, `wptr_va .. +4096` each inside one VA mapping
//!   (`amdgpu_userq_input_va_validate`): `EINVAL`.
//! - `amdgpu_userq_get_doorbell_index`: no such doorbell handle: `EINVAL`; a BO that cannot be
//!   pinned in the DOORBELL domain: `EINVAL`; `doorbell_offset * 8 + 8 > BO size`: `EINVAL`.
//! - `mes_userq_mqd_create`: `mqd_size` other than the IP's MQD struct (COMPUTE 8, GFX 16,
//!   SDMA 8), or a null MQD pointer for GFX / SDMA: `EINVAL`; an unreadable MQD: `ENOMEM`
//!   (`memdup_user` failing); COMPUTE: the EOP VA not mapped for `eop_size`: `EINVAL`. The
//!   GFX shadow / CSA and SDMA CSA VAs are not checked (emulator limitation).
//! - `mes_userq_create_wptr_mapping`: the wptr BO larger than one page: `EINVAL`.
//! - FREE of an unknown queue id: `ENOENT`.
//!
//! Only COMPUTE queues run work; a GFX or DMA queue is created and validated but its doorbell
//! does nothing (emulator limitation).
//!
//! # Execution
//!
//! A doorbell page is a CPU mapping of a DOORBELL-domain BO. A 64-bit store at
//! `doorbell_offset * 8` of a queue's doorbell BO hands the engine
//! `Work::Ring { ring_va, ring_dwords, rptr_va, wptr }`, `wptr` being the smaller of the
//! stored value and the 64-bit write pointer at `wptr_va` (dwords, Mesa's convention): a
//! queue the scheduler re-maps reads its write pointer from memory (see `doorbell.rs`). The
//! engine reports the read pointer at `rptr_va` as the CP does: a 32-bit dword offset
//! wrapped at the ring size. A queue keeps the engine it was created on: after a GPU reset replaced
//! the engine, its doorbell feeds the halted one and its fences never arrive (on hardware the
//! queue would be reset and need recreating too).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use pm4rt_core::abi::drm::{
    InfoQueryHwIp, InfoUqMetadataCompute, UserqIn, UserqMqdGfx11, UserqOut,
    AMDGPU_GEM_DOMAIN_DOORBELL, AMDGPU_HW_IP_COMPUTE, AMDGPU_HW_IP_DMA, AMDGPU_HW_IP_GFX,
    AMDGPU_USERQ_CREATE_FLAGS_QUEUE_PRIORITY_MASK, AMDGPU_USERQ_CREATE_FLAGS_QUEUE_SECURE,
    AMDGPU_USERQ_OP_CREATE, AMDGPU_USERQ_OP_FREE, INFO_UQ_METADATA_SIZE, USERQ_MQD_COMPUTE_SIZE,
};
use pm4rt_core::abi::ioctl::{decode_arg_zext, write_arg};
use pm4rt_core::driver::{Fd, Mapping};
use pm4rt_core::{BoHandle, Errno, GfxTarget};

use super::gem::GemObject;
use super::mapping::EmuMapping;
use super::preset::{Preset, GMC_HOLE_MASK};
use super::state::{lowest_free, DrmFile, State};
use super::user::UserMem;
use super::EmulatedDevice;
use crate::engine::{Engine, RingWork, Work};
use crate::memory::PAGE_SIZE;

/// `AMDGPU_BO_INVALID_OFFSET` (amdgpu_object.h: `LONG_MAX`).
const BO_INVALID_OFFSET: u64 = i64::MAX as u64;
/// `AMDGPU_USERQ_CREATE_FLAGS_QUEUE_PRIORITY_HIGH` (amdgpu_drm.h): needs CAP_SYS_NICE.
const PRIORITY_HIGH: u32 = 3;
/// `AMDGPU_MAX_USERQ_COUNT` (amdgpu_userq.h): queue ids are 1..=this.
const MAX_USERQ_COUNT: u32 = 512;
/// `sizeof(struct drm_amdgpu_userq_mqd_sdma_gfx11)` (amdgpu_drm.h: `{ __u64 csa_va; }`).
const SDMA_MQD_SIZE: usize = 8;
/// Size of one user-queue doorbell (`db_size = sizeof(u64)` for GFX / COMPUTE / DMA).
const DOORBELL_SIZE: u64 = 8;

/// The compute EOP metadata of GFX11 / GFX12: size `GFX11_MEC_HPD_SIZE` / `GFX12_MEC_HPD_SIZE`
/// (2048), alignment 256 (`gfx_v11_0_get_gfx_shadow_info_nocheck` and gfx_v12_0's, the
/// values `amdgpu_userq_metadata_info_compute` reports on kernels that have it).
pub(crate) fn compute_eop(gfx: GfxTarget) -> InfoUqMetadataCompute {
    match gfx {
        GfxTarget::Gfx1100 | GfxTarget::Gfx1201 => {
            InfoUqMetadataCompute { eop_size: 2048, eop_alignment: 256 }
        }
    }
}

/// The answer to `INFO UQ_FW_AREAS` for `q` (the 16-byte `drm_amdgpu_info_uq_metadata`), or
/// the kernel's errno: `EINVAL` for an IP the query does not handle — COMPUTE on Linux 6.17
/// ([`Preset::uq_fw_areas_compute`] false). GFX is answered by 6.17
/// (`amdgpu_userq_metadata_info_gfx`) but not emulated: `EINVAL` too (emulator limitation).
pub(crate) fn uq_fw_areas(p: &Preset, q: InfoQueryHwIp) -> Result<Vec<u8>, Errno> {
    let mut out = vec![0u8; INFO_UQ_METADATA_SIZE];
    match q.ip_type {
        AMDGPU_HW_IP_COMPUTE if p.uq_fw_areas_compute => {
            let m = compute_eop(p.gfx);
            out[..8].copy_from_slice(bytemuck::bytes_of(&m));
            Ok(out)
        }
        _ => Err(Errno::EINVAL),
    }
}

/// Where a doorbell store goes.
#[derive(Debug)]
struct Target {
    doorbell_bo: BoHandle,
    /// Byte offset of the doorbell in the BO.
    offset: u64,
    /// The queue's `wptr_va` (masked): what a (re)mapped queue's CP reads.
    wptr_va: u64,
    ring: Option<(RingWork, Arc<Engine>)>,
}

/// Doorbells of every live queue, shared with the doorbell mappings.
#[derive(Debug, Default)]
pub(crate) struct Doorbells {
    targets: Mutex<HashMap<(i32, u32), Target>>,
    rings: AtomicU64,
}

impl Doorbells {
    fn ring(&self, bo: BoHandle, offset: usize, value: u64) {
        self.rings.fetch_add(1, Ordering::SeqCst);
        let t = self.targets.lock().unwrap_or_else(|e| e.into_inner());
        for target in t.values() {
            if target.doorbell_bo == bo && target.offset == offset as u64 {
                if let Some((ring, engine)) = &target.ring {
                    // What the CP of a (re)mapped queue takes: see `super::doorbell`.
                    let Some(wptr) =
                        super::doorbell::cp_wptr(engine.memory(), value, target.wptr_va)
                    else {
                        continue;
                    };
                    // A doorbell write cannot fail; a halted engine just never runs it.
                    let _ = engine.submit(Work::Ring(RingWork { wptr, ..*ring }));
                }
            }
        }
    }
}

/// One queue: what the kernel keeps referenced while it lives.
#[derive(Debug)]
struct UserQueue {
    _doorbell: Arc<GemObject>,
    _wptr: Arc<GemObject>,
}

/// User-queue state of the device.
#[derive(Debug, Default)]
pub(crate) struct Userqs {
    queues: HashMap<(i32, u32), UserQueue>,
    pub(crate) doorbells: Arc<Doorbells>,
}

impl Userqs {
    /// Live queues.
    pub(crate) fn count(&self) -> usize {
        self.queues.len()
    }

    /// Doorbell stores seen so far.
    pub(crate) fn doorbell_rings(&self) -> u64 {
        self.doorbells.rings.load(Ordering::SeqCst)
    }

    /// `drm_release` -> `amdgpu_userq_mgr_fini`: the file's queues go away.
    pub(crate) fn close_file(&mut self, fd: Fd) {
        self.queues.retain(|&(f, _), _| f != fd.0);
        self.doorbells
            .targets
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .retain(|&(f, _), _| f != fd.0);
    }

    /// The CPU mapping for `gem`: a doorbell page for DOORBELL-domain BOs, else `plain`.
    pub(crate) fn wrap_mapping(&self, gem: &Arc<GemObject>, plain: EmuMapping) -> Box<dyn Mapping> {
        if gem.domains & AMDGPU_GEM_DOMAIN_DOORBELL != 0 {
            Box::new(DoorbellMapping { inner: plain, doorbells: Arc::clone(&self.doorbells) })
        } else {
            Box::new(plain)
        }
    }
}

/// A mapped doorbell page: memory like any BO, and 64-bit stores ring the queue there.
#[derive(Debug)]
struct DoorbellMapping {
    inner: EmuMapping,
    doorbells: Arc<Doorbells>,
}

impl Mapping for DoorbellMapping {
    fn addr(&self) -> u64 {
        self.inner.addr()
    }
    fn len(&self) -> usize {
        self.inner.len()
    }
    fn read(&self, offset: usize, out: &mut [u8]) -> Result<(), Errno> {
        self.inner.read(offset, out)
    }
    fn write(&self, offset: usize, data: &[u8]) -> Result<(), Errno> {
        self.inner.write(offset, data)
    }
    fn load_u64(&self, offset: usize) -> Result<u64, Errno> {
        self.inner.load_u64(offset)
    }
    fn store_u64(&self, offset: usize, value: u64) -> Result<(), Errno> {
        self.inner.store_u64(offset, value)?;
        self.doorbells.ring(self.inner.gem.id, offset, value);
        Ok(())
    }
}

/// The mapping of `file` holding `[va, va + size)` (VA masked like the kernel), if one does.
fn mapping_of(file: &DrmFile, va: u64, size: u64) -> Option<Arc<GemObject>> {
    let start = va & GMC_HOLE_MASK;
    let last = start.checked_add(size.checked_sub(1)?)?;
    let (&s, m) = file.vm.range(..=start).next_back()?;
    (last < s + m.size).then(|| Arc::clone(&m.gem))
}

fn inval(s: &mut State, why: impl Into<String>) -> Errno {
    s.fail(Errno::EINVAL, why)
}

/// `amdgpu_userq_ioctl`.
pub(crate) fn userq(
    dev: &EmulatedDevice,
    fd: Fd,
    kdata: &mut [u8],
    user: &mut UserMem<'_, '_>,
) -> Result<(), Errno> {
    let a: UserqIn = decode_arg_zext(kdata);
    let mut s = dev.lock();
    s.file(fd)?;
    if s.preset.userq_ip_mask == 0 {
        return Err(s.fail(
            Errno::ENOTSUPP,
            "amdgpu_userq_ioctl: no IP has user queues (amdgpu_userq_enabled)",
        ));
    }
    match a.op {
        AMDGPU_USERQ_OP_CREATE => create(&mut s, fd, kdata, &a, user),
        AMDGPU_USERQ_OP_FREE => {
            if kdata[8..std::mem::size_of::<UserqIn>()].iter().any(|&b| b != 0) {
                return Err(inval(
                    &mut s,
                    "amdgpu_userq_input_args_validate: FREE with fields other than op/queue_id",
                ));
            }
            if s.userq.queues.remove(&(fd.0, a.queue_id)).is_none() {
                return Err(
                    s.fail(Errno::ENOENT, format!("amdgpu_userq_ioctl: no queue {}", a.queue_id))
                );
            }
            let target = s
                .userq
                .doorbells
                .targets
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .remove(&(fd.0, a.queue_id));
            kdata.fill(0);
            // amdgpu_userq_destroy unmaps the queue from the hardware before returning; the
            // wait happens without the device lock (the engine's hooks may need it).
            let cap = s.preset.wait_cap;
            drop(s);
            if let Some((ring, engine)) = target.and_then(|t| t.ring) {
                if let Err(e) = engine.unmap_ring(ring.ring_va, cap) {
                    dev.lock().last_error = Some(format!("USERQ FREE: queue unmap: {e}"));
                }
            }
            Ok(())
        }
        op => Err(inval(&mut s, format!("amdgpu_userq_input_args_validate: op {op}"))),
    }
}

fn create(
    s: &mut State,
    fd: Fd,
    kdata: &mut [u8],
    a: &UserqIn,
    user: &mut UserMem<'_, '_>,
) -> Result<(), Errno> {
    // amdgpu_userq_input_args_validate.
    let known =
        AMDGPU_USERQ_CREATE_FLAGS_QUEUE_PRIORITY_MASK | AMDGPU_USERQ_CREATE_FLAGS_QUEUE_SECURE;
    if a.flags & !known != 0 {
        return Err(inval(s, format!("amdgpu_userq_input_args_validate: flags {:#x}", a.flags)));
    }
    if !matches!(a.ip_type, AMDGPU_HW_IP_GFX | AMDGPU_HW_IP_COMPUTE | AMDGPU_HW_IP_DMA) {
        return Err(inval(s, format!("Usermode queue doesn't support IP type {}", a.ip_type)));
    }
    if a.flags & AMDGPU_USERQ_CREATE_FLAGS_QUEUE_SECURE != 0
        && a.ip_type == AMDGPU_HW_IP_DMA
        && !s.preset.tmz
    {
        return Err(inval(s, "Secure only supported on GFX/Compute queues"));
    }
    if a.queue_va == 0 || a.queue_va == BO_INVALID_OFFSET || a.queue_size == 0 {
        return Err(inval(s, "invalidate userq queue va or size"));
    }
    if !a.queue_size.is_power_of_two() {
        return Err(inval(s, "Queue size must be a power of 2"));
    }
    if a.queue_size < PAGE_SIZE {
        return Err(inval(s, "Queue size smaller than AMDGPU_GPU_PAGE_SIZE"));
    }
    if a.wptr_va == 0 || a.rptr_va == 0 {
        return Err(inval(s, "invalidate userq queue rptr or wptr"));
    }
    // amdgpu_userq_create.
    let priority = a.flags & AMDGPU_USERQ_CREATE_FLAGS_QUEUE_PRIORITY_MASK;
    if priority >= PRIORITY_HIGH && !s.preset.cap_sys_nice {
        return Err(
            s.fail(Errno::EACCES, "amdgpu_userq_priority_permit: HIGH without CAP_SYS_NICE")
        );
    }
    if s.preset.userq_ip_mask & (1 << a.ip_type) == 0 {
        return Err(inval(s, "Usermode queue is not supported for this IP"));
    }
    let file = s.file(fd)?;
    let ring_ok = mapping_of(file, a.queue_va, a.queue_size).is_some();
    let rptr_ok = mapping_of(file, a.rptr_va, PAGE_SIZE).is_some();
    let wptr_bo = mapping_of(file, a.wptr_va, PAGE_SIZE);
    if !ring_ok || !rptr_ok || wptr_bo.is_none() {
        return Err(inval(s, "amdgpu_userq_input_va_validate: queue, rptr or wptr VA not mapped"));
    }
    // amdgpu_userq_get_doorbell_index.
    let Some(db) = s.file(fd)?.handles.get(&a.doorbell_handle).cloned() else {
        return Err(inval(s, "Can't find GEM object for doorbell"));
    };
    if db.domains & AMDGPU_GEM_DOMAIN_DOORBELL == 0 {
        return Err(inval(
            s,
            "[Usermode queues] Failed to pin doorbell object (not DOORBELL domain)",
        ));
    }
    if u64::from(a.doorbell_offset) * DOORBELL_SIZE + DOORBELL_SIZE > db.size {
        return Err(inval(
            s,
            format!(
                "doorbell_offset {} * 8 + 8 exceeds the doorbell BO ({} bytes)",
                a.doorbell_offset, db.size
            ),
        ));
    }
    // mes_userq_mqd_create: each IP's MQD struct has its own size; GFX and DMA also refuse a
    // null pointer; an unreadable MQD (memdup_user failing) is ENOMEM.
    let (ip, mqd_len) = match a.ip_type {
        AMDGPU_HW_IP_COMPUTE => ("compute", USERQ_MQD_COMPUTE_SIZE),
        AMDGPU_HW_IP_GFX => ("GFX", std::mem::size_of::<UserqMqdGfx11>()),
        _ => ("SDMA", SDMA_MQD_SIZE),
    };
    if a.mqd_size != mqd_len as u64 || (a.ip_type != AMDGPU_HW_IP_COMPUTE && a.mqd == 0) {
        return Err(inval(
            s,
            format!(
                "mes_userq_mqd_create: {ip} mqd_size {} != {mqd_len} or MQD pointer 0",
                a.mqd_size
            ),
        ));
    }
    let mqd = user
        .read(a.mqd, mqd_len)
        .map_err(|_| s.fail(Errno::ENOMEM, "mes_userq_mqd_create: Failed to read user MQD"))?;
    if a.ip_type == AMDGPU_HW_IP_COMPUTE {
        let eop_va = u64::from_le_bytes(mqd[..8].try_into().map_err(|_| Errno::EFAULT)?);
        let eop = compute_eop(s.preset.gfx);
        if mapping_of(s.file(fd)?, eop_va, u64::from(eop.eop_size)).is_none() {
            return Err(inval(
                s,
                format!("EOP VA {eop_va:#x} not mapped for {} bytes", eop.eop_size),
            ));
        }
    }
    // mes_userq_create_wptr_mapping.
    let wptr_bo = wptr_bo.ok_or(Errno::EINVAL)?;
    if wptr_bo.size > PAGE_SIZE {
        return Err(inval(s, "mes_userq_create_wptr_mapping: wptr BO larger than a page"));
    }
    let ids: HashMap<u32, ()> =
        s.userq.queues.keys().filter(|(f, _)| *f == fd.0).map(|&(_, q)| (q, ())).collect();
    let qid = lowest_free(&ids)?;
    if qid > MAX_USERQ_COUNT {
        return Err(s.fail(Errno::ENOSPC, "xa_alloc: AMDGPU_MAX_USERQ_COUNT queues"));
    }
    // The emulator's one engine stands for the whole GPU: if an earlier queue's fault halted
    // it, the GPU was reset (the kernel recovers a hung or faulting queue before new work
    // runs), so the new queue starts on a working engine.
    s.sync_engine()?;
    let ring = (a.ip_type == AMDGPU_HW_IP_COMPUTE).then(|| {
        (
            RingWork {
                ring_va: a.queue_va & GMC_HOLE_MASK,
                ring_dwords: (a.queue_size / 4).min(u64::from(u32::MAX)) as u32,
                rptr_va: a.rptr_va & GMC_HOLE_MASK,
                wptr: 0,
            },
            Arc::clone(&s.engine),
        )
    });
    if let Some((r, engine)) = &ring {
        engine.map_ring(r.ring_va);
    }
    s.userq.doorbells.targets.lock().unwrap_or_else(|e| e.into_inner()).insert(
        (fd.0, qid),
        Target {
            doorbell_bo: db.id,
            offset: u64::from(a.doorbell_offset) * DOORBELL_SIZE,
            wptr_va: a.wptr_va & GMC_HOLE_MASK,
            ring,
        },
    );
    s.userq.queues.insert((fd.0, qid), UserQueue { _doorbell: db, _wptr: wptr_bo });
    write_arg(kdata, &UserqOut { queue_id: qid, pad: 0 }).map_err(|_| Errno::EFAULT)
}

impl Preset {
    /// A Radeon RX 7900 XTX (gfx1100) on Linux 6.17 booted with `amdgpu.user_queue=1`: GFX,
    /// COMPUTE and DMA user queues (`userq_ip_mask` 0x7) and 8 compute user-queue slots (the
    /// slot count is this emulator's choice, not a measured value), CS as well.
    pub fn rx7900xtx_userq() -> Preset {
        Preset {
            name: "AMD Radeon RX 7900 XTX (gfx1100), Linux 6.17, amdgpu.user_queue=1".into(),
            user_queue: 1,
            userq_ip_mask: (1 << AMDGPU_HW_IP_GFX)
                | (1 << AMDGPU_HW_IP_COMPUTE)
                | (1 << AMDGPU_HW_IP_DMA),
            userq_compute_slots: 8,
            ..Preset::rx7900xtx_gfx1100()
        }
    }
}
