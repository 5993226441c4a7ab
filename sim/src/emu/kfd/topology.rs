//! The emulated KFD topology: the sysfs files of the preset's nodes and the per-node queue
//! sizes `kfd_queue.c` checks queue buffers against.

use super::*;

/// The kernel's node values (`kfd_queue_ctx_save_restore_size`, gfx10+ only):
/// (ctl_stack_size, cwsr_size, debug_memory_size, eop_buffer_size).
pub fn node_queue_sizes(gfx_target_version: u32, cu: u64) -> (u64, u64, u64, u64) {
    let waves = cu * 32;
    let al = |v: u64, a: u64| v.div_ceil(a) * a;
    let mut ctl = al(40 + waves * 12 + 8, PAGE);
    if gfx_target_version / 10000 * 10000 == 100000 {
        ctl = ctl.min(0x7000);
    }
    let vgpr = match gfx_target_version {
        110000 | 110001 | 120000 | 120001 => 0x60000,
        _ => 0x40000,
    };
    let wg = al(cu * (vgpr + 0x4000 + 0x10000 + 0x1000), PAGE);
    (ctl, ctl + wg, al(waves * 32, 64), 4096)
}

pub(super) fn gfx_target_version(p: &Preset) -> u32 {
    let (a, b, c) = p.gc_version;
    u32::from(a) * 10000 + u32::from(b) * 100 + u32::from(c)
}

fn render_minor(p: &Preset) -> u32 {
    p.render_nodes
        .first()
        .and_then(|n| n.rsplit('/').next())
        .and_then(|n| n.strip_prefix("renderD"))
        .and_then(|n| n.parse().ok())
        .unwrap_or(128)
}

/// The sysfs topology files of `preset` (empty when the preset has no KFD).
pub fn topology_files(p: &Preset) -> BTreeMap<String, String> {
    let mut f = BTreeMap::new();
    if !p.kfd_present {
        return f;
    }
    let n = format!("{TOPOLOGY_ROOT}/nodes");
    f.insert(format!("{n}/0/gpu_id"), "0\n".into());
    f.insert(format!("{n}/0/properties"), "cpu_cores_count 16\nsimd_count 0\n".into());
    f.insert(format!("{n}/1/gpu_id"), format!("{EMU_GPU_ID}\n"));
    f.insert(
        format!("{n}/1/properties"),
        format!(
            "cpu_cores_count 0\nsimd_count {}\nsimd_per_cu 2\nnum_xcc 1\ngfx_target_version {}\n\
             drm_render_minor {}\nmax_waves_per_simd 16\n",
            p.cu_count * 2,
            gfx_target_version(p),
            render_minor(p)
        ),
    );
    f
}
