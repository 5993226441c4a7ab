//! Contexts and their scheduler entities: CTX ALLOC / FREE / QUERY_STATE(2) / priorities
//! (`amdgpu_ctx.c`).

use super::*;

/// `amdgpu_ctx_ioctl`.
pub(crate) fn ctx(
    dev: &EmulatedDevice,
    fd: Fd,
    kdata: &mut [u8],
    _user: &mut UserMem<'_, '_>,
) -> Result<(), Errno> {
    let a: CtxIn = decode(kdata);
    let mut s = dev.lock();
    s.file(fd)?;
    s.sync_engine()?;
    // amdgpu_ctx_ioctl: garbage priorities become NORMAL (amdgpu_ctx_priority_is_valid).
    // VERY_LOW -1023, LOW, NORMAL, HIGH, VERY_HIGH 1023.
    let valid_prio = matches!(a.priority, -1023 | -512 | 0 | 512 | 1023);
    let priority = if valid_prio { a.priority } else { AMDGPU_CTX_PRIORITY_NORMAL };
    if !matches!(
        a.op,
        AMDGPU_CTX_OP_ALLOC_CTX
            | AMDGPU_CTX_OP_FREE_CTX
            | AMDGPU_CTX_OP_QUERY_STATE
            | AMDGPU_CTX_OP_QUERY_STATE2
    ) {
        return Err(s.fail(Errno::EINVAL, format!("amdgpu_ctx_ioctl: op {}", a.op)));
    }
    if a.flags != 0 {
        return Err(s.fail(Errno::EINVAL, "amdgpu_ctx_ioctl: flags must be 0"));
    }
    let (reset, generation) = (s.gpu_reset_counter, s.vram_lost_counter);
    match a.op {
        AMDGPU_CTX_OP_ALLOC_CTX => {
            // amdgpu_ctx_priority_permit: above NORMAL needs CAP_SYS_NICE or DRM master.
            if priority > AMDGPU_CTX_PRIORITY_NORMAL && !s.preset.cap_sys_nice {
                return Err(s.fail(
                    Errno::EACCES,
                    "amdgpu_ctx_priority_permit: high priority without CAP_SYS_NICE",
                ));
            }
            let file = s.file(fd)?;
            let id = lowest_free(&file.ctxs)?;
            file.ctxs.insert(
                id,
                Ctx {
                    reset_counter: reset,
                    reset_counter_query: reset,
                    generation,
                    guilty: false,
                    entities: HashMap::new(),
                },
            );
            answer(kdata, &CtxOutAlloc { ctx_id: id, pad: 0 })
        }
        AMDGPU_CTX_OP_FREE_CTX => {
            if s.file(fd)?.ctxs.remove(&a.ctx_id).is_none() {
                return Err(
                    s.fail(Errno::EINVAL, format!("amdgpu_ctx_free: no context {}", a.ctx_id))
                );
            }
            kdata.fill(0);
            Ok(())
        }
        op => {
            let Some(c) = s.file(fd)?.ctxs.get_mut(&a.ctx_id) else {
                return Err(
                    s.fail(Errno::EINVAL, format!("amdgpu_ctx_query: no context {}", a.ctx_id))
                );
            };
            let out = if op == AMDGPU_CTX_OP_QUERY_STATE {
                // amdgpu_ctx_query: UNKNOWN_RESET once per reset since the last query.
                let status = if c.reset_counter_query == reset {
                    AMDGPU_CTX_NO_RESET
                } else {
                    AMDGPU_CTX_UNKNOWN_RESET
                };
                c.reset_counter_query = reset;
                CtxOutState { flags: 0, hangs: 0, reset_status: status }
            } else {
                // amdgpu_ctx_query2.
                let mut flags = 0;
                if c.reset_counter != reset {
                    flags |= AMDGPU_CTX_QUERY2_FLAGS_RESET;
                }
                if c.generation != generation {
                    flags |= AMDGPU_CTX_QUERY2_FLAGS_VRAMLOST;
                }
                if c.guilty {
                    flags |= AMDGPU_CTX_QUERY2_FLAGS_GUILTY;
                }
                CtxOutState { flags, hangs: 0, reset_status: 0 }
            };
            answer(kdata, &out)
        }
    }
}

/// `amdgpu_ctx_get_entity`: the entity key, or `EINVAL`.
pub(super) fn entity_key(
    s: &mut State,
    ip_type: u32,
    instance: u32,
    ring: u32,
) -> Result<(u32, u32), Errno> {
    if ip_type >= HW_IP_NUM {
        return Err(
            s.fail(Errno::EINVAL, format!("amdgpu_ctx_get_entity: unknown HW IP type {ip_type}"))
        );
    }
    if instance != 0 {
        return Err(s.fail(
            Errno::EINVAL,
            format!("amdgpu_ctx_get_entity: invalid ip instance {instance}"),
        ));
    }
    // amdgpu_ctx_num_entities: GFX 1, COMPUTE 4; amdgpu_cs_job_idx: an IP without a run
    // queue (none on this machine) is -EINVAL.
    let rings = match ip_type {
        AMDGPU_HW_IP_GFX => 1,
        AMDGPU_HW_IP_COMPUTE => s.preset.compute_rings.min(4),
        _ => 0,
    };
    if ring >= rings {
        return Err(
            s.fail(Errno::EINVAL, format!("amdgpu_ctx_get_entity: invalid ring {ip_type} {ring}"))
        );
    }
    Ok((ip_type, ring))
}
