//! Command submission and its fences: CS (`amdgpu_cs.c: amdgpu_cs_ioctl`), residency, the CP's
//! view of an IB length, and WAIT_CS (`amdgpu_cs_wait_ioctl`).

use super::bo_list::read_bo_list;
use super::ctx::entity_key;
use super::*;

struct IbJob {
    key: (u32, u32),
    va: u64,
    bytes: u32,
}

/// The dwords the CP fetches for a kernel IB of `length_dw` dwords.
///
/// The kernel takes any length (`amdgpu_cs.c: amdgpu_cs_p2_ib`: `ib->length_dw =
/// chunk_ib->ib_bytes / 4`) and `gfx_v12_0.c: gfx_v12_0_ring_emit_ib_compute` (like
/// `gfx_v11_0_ring_emit_ib_compute`) writes the ring's INDIRECT_BUFFER dw3 as
/// `INDIRECT_BUFFER_VALID | ib->length_dw | (vmid << 24)`, unmasked. The CP reads IB_SIZE
/// \[19:0\] of it, so an IB of 2^20 dwords or more runs truncated to `length_dw mod 2^20`
/// (nothing at all for a multiple of 2^20); bit 20 lands in CHAIN (not modelled).
fn cp_ib_dwords(length_dw: u32) -> u32 {
    pm4rt_core::pm4::tables::fields::IB_SIZE.get(length_dw)
}

/// Why the CP faults on an IB of `length_dw` dwords, if it does: length bits \[27:24\] are
/// ORed into dw3's VMID field (see [`cp_ib_dwords`]), so the CP fetches the IB through another
/// VMID's page table; the emulator reports that as a VM fault of the job.
fn cp_ib_vmid_fault(length_dw: u32) -> Option<String> {
    let spill = pm4rt_core::pm4::tables::fields::IB_VMID.get(length_dw);
    (spill != 0).then(|| {
        format!(
            "IB of {length_dw} dwords: gfx_v12_0_ring_emit_ib_compute ORs length bits [27:24] \
             ({spill:#x}) into the INDIRECT_BUFFER VMID field; the CP fetches through another VM"
        )
    })
}

/// `amdgpu_cs_ioctl`: parser_init, pass1, pass2, parser_bos, submit.
pub(crate) fn cs(
    dev: &EmulatedDevice,
    fd: Fd,
    kdata: &mut [u8],
    user: &mut UserMem<'_, '_>,
) -> Result<(), Errno> {
    let a: CsIn = decode(kdata);
    let mut s = dev.lock();
    s.file(fd)?;
    s.sync_engine()?;
    // amdgpu_cs_vm_handling: the job waits for the VM's last page-table update.
    crate::emu::syncobj::complete_updates(&mut s, fd, u64::MAX);
    // amdgpu_cs_parser_init.
    if a.num_chunks == 0 {
        return Err(s.fail(Errno::EINVAL, "amdgpu_cs_parser_init: num_chunks == 0"));
    }
    let Some(ctx) = s.file(fd)?.ctxs.get(&a.ctx_id) else {
        return Err(
            s.fail(Errno::EINVAL, format!("amdgpu_cs_parser_init: no context {}", a.ctx_id))
        );
    };
    if ctx.guilty {
        return Err(s.fail(Errno::ECANCELED, "amdgpu_cs_parser_init: context is guilty"));
    }
    let ctx_generation = ctx.generation;
    // amdgpu_cs_pass1.
    let n = a.num_chunks as usize;
    let arr = user
        .read(a.chunks, n.checked_mul(8).ok_or(Errno::EFAULT)?)
        .map_err(|e| s.fail(e, "amdgpu_cs_pass1: chunk array unreadable"))?;
    let mut ibs: Vec<IbJob> = Vec::new();
    let mut per_entity: HashMap<(u32, u32), u32> = HashMap::new();
    let mut chunk_list: Option<Vec<Arc<GemObject>>> = None;
    for ptr in arr.chunks_exact(8) {
        let ptr = u64::from_le_bytes(ptr.try_into().map_err(|_| Errno::EFAULT)?);
        let cb = user.read(ptr, 16).map_err(|e| s.fail(e, "amdgpu_cs_pass1: chunk unreadable"))?;
        let chunk: CsChunk = decode_arg_zext(&cb);
        let size = chunk.length_dw as usize * 4;
        let data = user
            .read(chunk.chunk_data, size)
            .map_err(|e| s.fail(e, "amdgpu_cs_pass1: chunk data unreadable"))?;
        match chunk.chunk_id {
            AMDGPU_CHUNK_ID_IB => {
                if size < std::mem::size_of::<CsChunkIb>() {
                    return Err(s.fail(
                        Errno::EINVAL,
                        format!("amdgpu_cs_pass1: IB chunk of {size} bytes < 32"),
                    ));
                }
                let ib: CsChunkIb = decode_arg_zext(&data);
                let key = entity_key(&mut s, ib.ip_type, ib.ip_instance, ib.ring)?;
                let count = per_entity.entry(key).or_insert(0);
                if *count >= MAX_IBS {
                    return Err(s.fail(
                        Errno::EINVAL,
                        "amdgpu_cs_p1_ib: more than amdgpu_ring_max_ibs IBs",
                    ));
                }
                *count += 1;
                ibs.push(IbJob { key, va: ib.va_start, bytes: ib.ib_bytes });
            }
            AMDGPU_CHUNK_ID_FENCE => {
                if size < std::mem::size_of::<CsChunkFence>() {
                    return Err(s.fail(Errno::EINVAL, "amdgpu_cs_pass1: FENCE chunk too small"));
                }
                let f: CsChunkFence = decode_arg_zext(&data);
                let Some(g) = lookup(s.file(fd)?, f.handle) else {
                    return Err(s.fail(Errno::EINVAL, "amdgpu_cs_p1_user_fence: no such handle"));
                };
                if g.size != PAGE_SIZE || u64::from(f.offset) + 8 > g.size {
                    return Err(s.fail(
                        Errno::EINVAL,
                        "amdgpu_cs_p1_user_fence: BO not one page or offset too large",
                    ));
                }
                return Err(s.fail(
                    Errno::EINVAL,
                    "user fence chunks are not emulated (emulator limitation)",
                ));
            }
            AMDGPU_CHUNK_ID_BO_HANDLES => {
                if size < std::mem::size_of::<BoListIn>() {
                    return Err(
                        s.fail(Errno::EINVAL, "amdgpu_cs_pass1: BO_HANDLES chunk too small")
                    );
                }
                let l: BoListIn = decode_arg_zext(&data);
                chunk_list = Some(read_bo_list(&mut s, fd, &l, user)?);
            }
            AMDGPU_CHUNK_ID_SYNCOBJ_IN if size >= 4 => {
                // amdgpu_syncobj_lookup_and_add -> drm_syncobj_find_fence: no syncobjs exist.
                return Err(s.fail(Errno::ENOENT, "drm_syncobj_find_fence: unknown syncobj"));
            }
            AMDGPU_CHUNK_ID_SYNCOBJ_OUT if size >= 4 => {
                return Err(s.fail(Errno::EINVAL, "amdgpu_cs_p2_syncobj_out: unknown syncobj"));
            }
            AMDGPU_CHUNK_ID_DEPENDENCIES
            | AMDGPU_CHUNK_ID_SYNCOBJ_IN
            | AMDGPU_CHUNK_ID_SYNCOBJ_OUT => {
                // One in-order queue: dependencies are already satisfied.
            }
            id if CHUNK_ID_OTHER_KNOWN.contains(&id) => {}
            id => {
                return Err(s.fail(Errno::EINVAL, format!("amdgpu_cs_pass1: unknown chunk id {id}")))
            }
        }
    }
    if ibs.is_empty() {
        return Err(s.fail(Errno::EINVAL, "amdgpu_cs_pass1: no IB chunk (gang_size 0)"));
    }
    if ctx_generation != s.vram_lost_counter {
        return Err(
            s.fail(Errno::ECANCELED, "amdgpu_cs_pass1: VRAM lost since the context was created")
        );
    }
    // amdgpu_cs_parser_bos.
    let resident = if a.bo_list_handle != 0 {
        if chunk_list.is_some() {
            return Err(
                s.fail(Errno::EINVAL, "amdgpu_cs_parser_bos: both bo_list_handle and BO_HANDLES")
            );
        }
        match s.file(fd)?.bo_lists.get(&a.bo_list_handle) {
            Some(l) => l.clone(),
            None => {
                return Err(s.fail(
                    Errno::ENOENT,
                    format!("amdgpu_bo_list_get: no list {}", a.bo_list_handle),
                ))
            }
        }
    } else {
        chunk_list.unwrap_or_default()
    };
    // amdgpu_cs_submit: the fence is on the gang leader's (last IB's) entity.
    let leader = ibs.last().map(|j| j.key).ok_or(Errno::EINVAL)?;
    s.jobs += 1;
    let state = if s.hang_after.is_some_and(|n| s.jobs > n) {
        FenceState::Hung
    } else if let Some(why) = non_resident(&s, fd, &ibs, &resident) {
        s.last_error = Some(format!("job faulted (emulated eviction): {why}"));
        FenceState::Error(Errno::ETIME)
    } else if let Some(why) = ibs.iter().find_map(|j| cp_ib_vmid_fault(j.bytes / 4)) {
        s.last_error = Some(format!("job faulted: {why}"));
        FenceState::Error(Errno::ETIME)
    } else {
        let engine = Arc::clone(&s.engine);
        let first = engine.submitted() + 1;
        let mut last = first - 1;
        for j in &ibs {
            let dwords = cp_ib_dwords(j.bytes / 4);
            if dwords == 0 {
                continue;
            }
            match engine.submit(Work::Ib { va: j.va, dwords }) {
                Ok(seq) => last = seq,
                Err(Error::DeviceLost { .. }) => break,
                Err(e) => {
                    s.last_error = Some(format!("job faulted: {e}"));
                    break;
                }
            }
        }
        FenceState::Engine { gen: s.engine_gen, first, last }
    };
    let guilty = matches!(state, FenceState::Error(_));
    let file = s.file(fd)?;
    let ctx = file.ctxs.get_mut(&a.ctx_id).ok_or(Errno::EINVAL)?;
    ctx.guilty |= guilty;
    let ent = ctx.entities.entry(leader).or_insert_with(Entity::default);
    let seq = ent.next_seq;
    ent.next_seq += 1;
    ent.fences.insert(seq, state);
    // WAIT_CS treats a sequence SCHED_JOBS behind the newest as signalled without looking
    // it up, so keep only that window (the kernel's fence ring is as small).
    if let Some(old) = seq.checked_sub(SCHED_JOBS) {
        ent.fences.remove(&old);
    }
    answer(kdata, &CsOut { handle: seq })
}

/// Why an IB is not fully backed by resident BOs (see the module docs), if it is not.
fn non_resident(s: &State, fd: Fd, ibs: &[IbJob], resident: &[Arc<GemObject>]) -> Option<String> {
    let file = s.files.get(&fd.0)?;
    for j in ibs {
        let len = u64::from(j.bytes / 4) * 4;
        let mut cur = j.va & GMC_HOLE_MASK;
        let end = cur.saturating_add(len);
        while cur < end {
            let hit = file.vm.range(..=cur).next_back().filter(|(st, m)| cur - **st < m.size);
            let Some((&start, m)) = hit else {
                return Some(format!("IB byte at VA {cur:#x} is not mapped"));
            };
            let ok = m.gem.flags & AMDGPU_GEM_CREATE_VM_ALWAYS_VALID != 0
                || resident.iter().any(|r| Arc::ptr_eq(r, &m.gem));
            if !ok {
                return Some(format!(
                    "IB at VA {:#x} lies in BO handle {} which is not in the submission's BO list",
                    j.va, m.handle
                ));
            }
            cur = start + m.size;
        }
    }
    None
}

/// CLOCK_MONOTONIC in ns (`ktime_get`).
fn monotonic_ns() -> u64 {
    let t = rustix::time::clock_gettime(rustix::time::ClockId::Monotonic);
    (t.tv_sec as u64).saturating_mul(1_000_000_000).saturating_add(t.tv_nsec as u64)
}

/// `amdgpu_cs_wait_ioctl` with `amdgpu_gem_timeout` (absolute CLOCK_MONOTONIC ns; a
/// negative value as i64 is infinite).
pub(crate) fn wait_cs(
    dev: &EmulatedDevice,
    fd: Fd,
    kdata: &mut [u8],
    _user: &mut UserMem<'_, '_>,
) -> Result<(), Errno> {
    let a: WaitCsIn = decode(kdata);
    let (timeout, fence) = {
        let mut s = dev.lock();
        s.file(fd)?;
        s.sync_engine()?;
        let cap = s.preset.wait_cap;
        let timeout = if (a.timeout as i64) < 0 {
            cap
        } else {
            Duration::from_nanos(a.timeout.saturating_sub(monotonic_ns())).min(cap)
        };
        if !s.file(fd)?.ctxs.contains_key(&a.ctx_id) {
            return Err(
                s.fail(Errno::EINVAL, format!("amdgpu_cs_wait_ioctl: no context {}", a.ctx_id))
            );
        }
        let key = entity_key(&mut s, a.ip_type, a.ip_instance, a.ring)?;
        let ctx = s.file(fd)?.ctxs.get(&a.ctx_id).ok_or(Errno::EINVAL)?;
        let (next, f) = match ctx.entities.get(&key) {
            Some(e) => (e.next_seq, e.fences.get(&a.handle).copied()),
            None => (1, None),
        };
        // amdgpu_ctx_get_fence: a future sequence is -EINVAL; one older than the ring of
        // amdgpu_sched_jobs fences (or 0) counts as signalled.
        if a.handle >= next {
            return Err(s.fail(
                Errno::EINVAL,
                format!("amdgpu_ctx_get_fence: sequence {} not issued", a.handle),
            ));
        }
        let f = if a.handle + SCHED_JOBS < next { None } else { f };
        (timeout, f.map(|f| (f, Arc::clone(&s.engine), s.engine_gen)))
    };
    let status = match fence {
        None | Some((FenceState::Done, ..)) => AMDGPU_WAIT_CS_RETIRED,
        Some((FenceState::Error(e), ..)) => return Err(e),
        Some((FenceState::Hung, ..)) => {
            std::thread::sleep(timeout);
            AMDGPU_WAIT_CS_BUSY
        }
        Some((FenceState::Engine { gen, last, .. }, engine, cur_gen)) => {
            if gen != cur_gen {
                // Resolved by a reset in the meantime: look again.
                return wait_cs_again(dev, fd, kdata, &a);
            }
            if last == 0 {
                AMDGPU_WAIT_CS_RETIRED
            } else {
                match engine.wait(last, timeout) {
                    Ok(()) => AMDGPU_WAIT_CS_RETIRED,
                    Err(Error::Timeout { .. }) => AMDGPU_WAIT_CS_BUSY,
                    Err(_) => return wait_cs_again(dev, fd, kdata, &a),
                }
            }
        }
    };
    answer(kdata, &WaitCsOut { status })
}

/// After the engine halted during a wait: apply the reset and report the fence's outcome.
fn wait_cs_again(
    dev: &EmulatedDevice,
    fd: Fd,
    kdata: &mut [u8],
    a: &WaitCsIn,
) -> Result<(), Errno> {
    let mut s = dev.lock();
    s.sync_engine()?;
    let f = s
        .file(fd)?
        .ctxs
        .get(&a.ctx_id)
        .and_then(|c| c.entities.get(&(a.ip_type, a.ring)))
        .and_then(|e| e.fences.get(&a.handle).copied());
    match f {
        Some(FenceState::Error(e)) => Err(e),
        Some(FenceState::Hung) | Some(FenceState::Engine { .. }) => {
            answer(kdata, &WaitCsOut { status: AMDGPU_WAIT_CS_BUSY })
        }
        _ => answer(kdata, &WaitCsOut { status: AMDGPU_WAIT_CS_RETIRED }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// dw3 = VALID | length | vmid << 24 (gfx_v12_0_ring_emit_ib_compute), IB_SIZE = [19:0],
    /// VMID = [27:24].
    #[test]
    fn the_cp_reads_20_bits_of_length_and_faults_when_it_spills_into_vmid() {
        assert_eq!(cp_ib_dwords(8), 8);
        assert_eq!(cp_ib_dwords(0xF_FFFF), 0xF_FFFF);
        assert_eq!(cp_ib_dwords(0x10_0000), 0);
        assert_eq!(cp_ib_dwords(0x10_0005), 5);
        assert_eq!(cp_ib_dwords(0x30_0007), 7);
        assert!(cp_ib_vmid_fault(0xFF_FFFF).is_none());
        assert!(cp_ib_vmid_fault(0x100_0000).is_some());
        assert!(cp_ib_vmid_fault(0x300_0010).unwrap().contains("0x3"));
    }
}
