//! `pm4rt inspect`: what a code object holds and whether pm4rt can launch each kernel.

use std::path::PathBuf;
use std::process::ExitCode;

use pm4rt_core::code_object::{CodeObject, Kernel, ValueKind};

/// Arguments of `pm4rt inspect`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The code object (ELF, AMDGPU HSA code object v4/v5).
    code_object: PathBuf,
    /// Print JSON instead of text.
    #[arg(long)]
    json: bool,
}

fn kind_name(k: &ValueKind) -> &str {
    match k {
        ValueKind::GlobalBuffer => "global_buffer",
        ValueKind::ByValue => "by_value",
        ValueKind::Hidden(s) | ValueKind::Other(s) => s,
    }
}

fn kernel_json(k: &Kernel) -> serde_json::Value {
    let arg = |a: &pm4rt_core::code_object::KernArg| {
        serde_json::json!({
            "name": a.name, "kind": kind_name(&a.value_kind), "offset": a.offset, "size": a.size,
        })
    };
    serde_json::json!({
        "name": k.name,
        "args": k.explicit_args().map(arg).collect::<Vec<_>>(),
        "hidden_args": k.hidden_args().map(arg).collect::<Vec<_>>(),
        "kernarg_segment_size": k.kernarg_segment_size(),
        "sgpr_count": k.metadata.sgpr_count,
        "vgpr_count": k.metadata.vgpr_count,
        "lds_bytes": k.descriptor.group_segment_fixed_size,
        "scratch_bytes_per_lane": k.descriptor.private_segment_fixed_size,
        "wavefront_size": k.metadata.wavefront_size,
        "reqd_workgroup_size": k.metadata.reqd_workgroup_size,
        "user_sgpr_inputs": k.descriptor.user_sgpr_inputs(),
        "launchable": launch_blocker(k).is_none(),
        "not_launchable_because": launch_blocker(k),
    })
}

/// Why pm4rt cannot launch `k`, if it cannot (arguments, then launcher inputs).
fn launch_blocker(k: &Kernel) -> Option<String> {
    if let Some(e) = k.launch_blocker() {
        return Some(e.to_string());
    }
    if k.descriptor.private_segment_fixed_size != 0 {
        return Some(format!(
            "scratch ({} bytes per lane) is not supported yet",
            k.descriptor.private_segment_fixed_size
        ));
    }
    if !k.descriptor.is_wave32() {
        return Some("wave64 kernels are not supported".into());
    }
    for input in ["private segment buffer", "queue ptr", "flat scratch init"] {
        if k.descriptor.user_sgpr_inputs().contains(&input) {
            return Some(format!("the {input} user SGPRs are not supported"));
        }
    }
    None
}

pub fn run(a: Args) -> Result<ExitCode, Box<dyn std::error::Error>> {
    let bytes =
        std::fs::read(&a.code_object).map_err(|e| format!("{}: {e}", a.code_object.display()))?;
    let co = match CodeObject::parse(&bytes) {
        Ok(co) => co,
        Err(e) => {
            eprintln!("inspect FAILED: {}: {e}", a.code_object.display());
            return Ok(ExitCode::FAILURE);
        }
    };
    if a.json {
        let doc = serde_json::json!({
            "file": a.code_object.display().to_string(),
            "target": co.target().to_string(),
            "target_id": co.target_id(),
            "kernels": co.kernels().iter().map(kernel_json).collect::<Vec<_>>(),
        });
        println!("{}", serde_json::to_string_pretty(&doc)?);
        return Ok(ExitCode::SUCCESS);
    }
    println!(
        "{}: {} ({}), {} kernel(s)",
        a.code_object.display(),
        co.target(),
        co.target_id(),
        co.kernels().len()
    );
    for k in co.kernels() {
        println!("\nkernel {}", k.name);
        println!(
            "  wave{}, {} SGPRs, {} VGPRs, LDS {} bytes, scratch {} bytes/lane, kernarg {} bytes",
            k.metadata.wavefront_size,
            k.metadata.sgpr_count,
            k.metadata.vgpr_count,
            k.descriptor.group_segment_fixed_size,
            k.descriptor.private_segment_fixed_size,
            k.kernarg_segment_size()
        );
        match k.metadata.reqd_workgroup_size {
            Some(w) => println!("  reqd_work_group_size {w:?}"),
            None => println!("  no reqd_work_group_size (launch needs --block)"),
        }
        println!("  user SGPR inputs: {}", k.descriptor.user_sgpr_inputs().join(", "));
        for (i, a) in k.explicit_args().enumerate() {
            println!(
                "  arg {i}: {} {} offset {} size {}",
                a.name.as_deref().unwrap_or("?"),
                kind_name(&a.value_kind),
                a.offset,
                a.size
            );
        }
        for a in k.hidden_args() {
            println!("  hidden: {} offset {} size {}", kind_name(&a.value_kind), a.offset, a.size);
        }
        match launch_blocker(k) {
            None => println!("  launchable: yes"),
            Some(why) => println!("  launchable: no ({why})"),
        }
    }
    Ok(ExitCode::SUCCESS)
}
