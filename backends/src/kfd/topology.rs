//! The KFD topology in sysfs: `<root>/nodes/N/gpu_id` and `<root>/nodes/N/properties`
//! (`key value` lines), read through [`Driver::read_file`] / [`Driver::list_dir`] so tests can
//! serve a fake tree.
//!
//! CPU-only nodes have `gpu_id` 0 and are skipped. A node is chosen by its DRM render minor
//! (`drm_render_minor`, e.g. 128 for `/dev/dri/renderD128`) or by its `gpu_id`.

use std::collections::BTreeMap;

use pm4rt_core::{Driver, Error, GfxTarget, Result};

use super::cwsr::{queue_sizes, CwsrInputs, QueueSizes};

/// The default topology root.
pub const DEFAULT_TOPOLOGY_ROOT: &str = "/sys/devices/virtual/kfd/kfd/topology";

/// Step name of topology reads in [`Error::Io`].
pub const STEP_TOPOLOGY: &str = "read KFD topology";

/// How to pick the GPU node.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NodeSelector {
    /// The node whose `drm_render_minor` is this.
    RenderMinor(u32),
    /// The node whose `gpu_id` is this.
    GpuId(u32),
}

/// One GPU node of the topology, with the queue sizes the kernel will check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopologyNode {
    /// The node directory number (`nodes/N`).
    pub node_id: u32,
    /// `gpu_id` (non-zero).
    pub gpu_id: u32,
    /// `drm_render_minor`.
    pub drm_render_minor: u32,
    /// `gfx_target_version`.
    pub gfx_target_version: u32,
    /// The GPU target, when pm4rt supports it.
    pub gfx: Option<GfxTarget>,
    /// `simd_count`.
    pub simd_count: u32,
    /// `simd_per_cu`.
    pub simd_per_cu: u32,
    /// `num_xcc` (1 when absent).
    pub num_xcc: u32,
    /// Every `properties` key with its value.
    pub properties: BTreeMap<String, u64>,
    /// The sizes `CREATE_QUEUE` must use.
    pub sizes: QueueSizes,
}

fn bad(path: &str, what: String) -> Error {
    Error::Unsupported(format!("KFD topology {path}: {what}"))
}

/// Parse a `properties` file: one `key value` (decimal) pair per line. Blank lines are
/// skipped; anything else is an error naming the line.
///
/// # Errors
/// [`Error::Unsupported`] naming `path` and the line number.
pub fn parse_properties(path: &str, text: &str) -> Result<BTreeMap<String, u64>> {
    let mut map = BTreeMap::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        let mut it = line.split_whitespace();
        let (Some(key), Some(value), None) = (it.next(), it.next(), it.next()) else {
            return Err(bad(path, format!("line {}: expected `key value`, got {line:?}", i + 1)));
        };
        let value: u64 = value.parse().map_err(|_| {
            bad(path, format!("line {}: value of {key} is not a decimal number: {value:?}", i + 1))
        })?;
        map.insert(key.to_string(), value);
    }
    Ok(map)
}

fn prop_u32(path: &str, props: &BTreeMap<String, u64>, key: &str) -> Result<u32> {
    let v = *props.get(key).ok_or_else(|| bad(path, format!("missing property {key}")))?;
    u32::try_from(v).map_err(|_| bad(path, format!("{key} = {v} does not fit 32 bits")))
}

/// Build a [`TopologyNode`] from its directory number, `gpu_id` and parsed properties.
///
/// # Errors
/// [`Error::Unsupported`] for missing or out-of-range properties, or sizes that cannot be
/// computed (see [`super::cwsr`]).
pub fn node_from_properties(
    path: &str,
    node_id: u32,
    gpu_id: u32,
    props: BTreeMap<String, u64>,
) -> Result<TopologyNode> {
    let gfx_target_version = prop_u32(path, &props, "gfx_target_version")?;
    let simd_count = prop_u32(path, &props, "simd_count")?;
    let simd_per_cu = prop_u32(path, &props, "simd_per_cu")?;
    let drm_render_minor = prop_u32(path, &props, "drm_render_minor")?;
    let num_xcc = match props.get("num_xcc") {
        None | Some(0) => 1,
        Some(_) => prop_u32(path, &props, "num_xcc")?,
    };
    let nonzero = |k: &str| props.get(k).copied().filter(|&v| v != 0);
    let sizes = queue_sizes(&CwsrInputs {
        gfx_target_version,
        simd_count,
        simd_per_cu,
        num_xcc,
        cwsr_size: nonzero("cwsr_size"),
        ctl_stack_size: nonzero("ctl_stack_size"),
        eop_buffer_size: nonzero("eop_buffer_size"),
    })
    .map_err(|e| bad(path, e.to_string()))?;
    Ok(TopologyNode {
        node_id,
        gpu_id,
        drm_render_minor,
        gfx_target_version,
        gfx: GfxTarget::from_kfd_target_version(gfx_target_version),
        simd_count,
        simd_per_cu,
        num_xcc,
        properties: props,
        sizes,
    })
}

/// Find the GPU node `sel` names under `root`.
///
/// # Errors
/// [`Error::Io`] ([`STEP_TOPOLOGY`]) when the tree cannot be read; [`Error::Unsupported`]
/// when no GPU node matches or the matching node's files are malformed.
pub fn find_node(driver: &dyn Driver, root: &str, sel: NodeSelector) -> Result<TopologyNode> {
    let nodes_dir = format!("{root}/nodes");
    let names = driver.list_dir(&nodes_dir).map_err(|e| Error::io(STEP_TOPOLOGY, e))?;
    let mut ids: Vec<u32> = names.iter().filter_map(|n| n.parse().ok()).collect();
    ids.sort_unstable();
    let mut seen = Vec::new();
    for id in ids {
        let gpu_path = format!("{nodes_dir}/{id}/gpu_id");
        let text = driver.read_file(&gpu_path).map_err(|e| Error::io(STEP_TOPOLOGY, e))?;
        let gpu_id: u32 = text
            .trim()
            .parse()
            .map_err(|_| bad(&gpu_path, format!("not a decimal number: {:?}", text.trim())))?;
        if gpu_id == 0 {
            continue; // CPU-only node
        }
        let path = format!("{nodes_dir}/{id}/properties");
        let text = driver.read_file(&path).map_err(|e| Error::io(STEP_TOPOLOGY, e))?;
        let props = parse_properties(&path, &text)?;
        let minor = props.get("drm_render_minor").copied();
        let hit = match sel {
            NodeSelector::GpuId(g) => g == gpu_id,
            NodeSelector::RenderMinor(m) => minor == Some(u64::from(m)),
        };
        if hit {
            return node_from_properties(&path, id, gpu_id, props);
        }
        seen.push(format!("node {id}: gpu_id {gpu_id}, render minor {minor:?}"));
    }
    Err(Error::Unsupported(format!(
        "no KFD GPU node matches {sel:?} under {nodes_dir} (GPU nodes: {})",
        if seen.is_empty() { "none".to_string() } else { seen.join("; ") }
    )))
}

/// The render minor of a `/dev/dri/renderD<N>` path.
pub fn render_minor_of(path: &str) -> Option<u32> {
    path.rsplit('/').next()?.strip_prefix("renderD")?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A properties file shaped like the R9700's (gfx1201, 64 CUs), without cwsr_size.
    const R9700: &str = "cpu_cores_count 0\nsimd_count 128\nmem_banks_count 1\n\
        gfx_target_version 120001\nsimd_per_cu 2\nnum_xcc 1\ndrm_render_minor 128\n\
        max_waves_per_simd 16\n";

    #[test]
    fn parses_key_values() {
        let p = parse_properties("p", R9700).unwrap();
        assert_eq!(p["simd_count"], 128);
        assert_eq!(p["gfx_target_version"], 120001);
        assert_eq!(p.len(), 8);
        let n = node_from_properties("p", 1, 0xBEEF, p).unwrap();
        assert_eq!(n.gfx, Some(GfxTarget::Gfx1201));
        assert_eq!(n.sizes.cwsr_bo_size, 0x1D5_7000);
        assert_eq!(n.drm_render_minor, 128);
    }

    #[test]
    fn malformed_lines_name_path_and_line() {
        let e = parse_properties("/t/p", "a 1\nb\n").unwrap_err().to_string();
        assert!(e.contains("/t/p") && e.contains("line 2"), "{e}");
        let e = parse_properties("/t/p", "a x\n").unwrap_err().to_string();
        assert!(e.contains("line 1") && e.contains("\"x\""), "{e}");
        let e =
            node_from_properties("/t/p", 1, 1, parse_properties("/t/p", "simd_count 1\n").unwrap())
                .unwrap_err()
                .to_string();
        assert!(e.contains("gfx_target_version"), "{e}");
    }

    #[test]
    fn exported_sizes_win() {
        let text = format!("{R9700}cwsr_size 30703616\nctl_stack_size 32768\n");
        let n = node_from_properties("p", 1, 1, parse_properties("p", &text).unwrap()).unwrap();
        assert_eq!(n.sizes.cwsr_size, 30_703_616);
        assert_eq!(n.sizes.ctl_stack_size, 32_768);
        // BO = ALIGN(0x1D48000 + 0x10000, 4096)
        assert_eq!(n.sizes.cwsr_bo_size, 0x1D5_8000);
    }

    #[test]
    fn render_minor_from_path() {
        assert_eq!(render_minor_of("/dev/dri/renderD129"), Some(129));
        assert_eq!(render_minor_of("/dev/dri/card0"), None);
        assert_eq!(render_minor_of("renderDx"), None);
    }
}
