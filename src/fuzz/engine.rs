//! Target `engine`: the simulator's PM4 engine executing arbitrary IB bytes in simulated
//! memory, with pm4rt's kernel registry installed as the dispatch hook.
//!
//! Memory: the IB BO at [`IB_VA`] (the IB bytes of the input), a data BO at [`DATA_VA`], the
//! committed code object's image at [`CODE_VA`] (executable) and a kernarg BO at
//! [`KERNARG_VA`] (the kernarg bytes of the input), so that a well-formed dispatch runs a
//! real kernel.
//!
//! Input: byte 0 = flags (bit 0: gfx1100, else gfx1201; bit 1: strict dispatch order; bit 2:
//! run the IB as a ring whose read pointer sits at [`RPTR_VA`]); the next [`KERNARG_BYTES`]
//! bytes fill the kernarg BO; the rest, up to [`MAX_IB_BYTES`], is the IB.
//!
//! Allowed outcomes: completion, any typed [`Error`](pm4rt_core::Error) (faults, bad PM4,
//! WAIT_REG_MEM deadline, IB depth, dispatch errors) or a wait timeout (an IB that chains to
//! itself runs until the engine is dropped, as a GPU would until reset). Panics and a drop that
//! does not return are bugs. Every input is bounded in time: `WAIT_REG_MEM` polls at most
//! [`WAIT_DEADLINE`], each workgroup of a dispatch runs at most [`WORKGROUP_STEPS`]
//! interpreted instructions, the host waits at most [`HOST_WAIT`], and dropping the engine
//! stops the queue at the next packet (and the interpreter at its next poll).

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use pm4rt_core::code_object::CodeObject;
use pm4rt_core::{BoHandle, GfxTarget};
use pm4rt_kernels::Target;
use pm4rt_sim::dispatch::KernelRegistry;
use pm4rt_sim::engine::{DispatchOrder, Engine, EngineConfig, RingWork, Work};
use pm4rt_sim::memory::{GpuMemory, Perms};

/// VA of the IB BO.
pub const IB_VA: u64 = 0x1_0000_0000;
/// VA of the data BO.
pub const DATA_VA: u64 = 0x2_0000_0000;
/// VA of the kernel code object's image.
pub const CODE_VA: u64 = 0x3_0000_0000;
/// VA of the kernarg BO.
pub const KERNARG_VA: u64 = 0x4_0000_0000;
/// VA of the ring read pointer (ring mode), inside the data BO.
pub const RPTR_VA: u64 = DATA_VA + DATA_BYTES - 8;
/// Size of the data BO.
pub const DATA_BYTES: u64 = 64 * 1024;
/// Bytes of the input copied into the kernarg BO.
pub const KERNARG_BYTES: usize = 64;
/// Largest IB taken from the input (bytes).
pub const MAX_IB_BYTES: usize = 16 * 1024;
/// `WAIT_REG_MEM` deadline of the engine.
pub const WAIT_DEADLINE: Duration = Duration::from_millis(2);
/// How long the host waits for the work item.
pub const HOST_WAIT: Duration = Duration::from_millis(20);
/// Instructions one workgroup of a dispatch may run on the ISA interpreter (generated code
/// often loops forever; every seed kernel needs far fewer).
pub const WORKGROUP_STEPS: u64 = 1 << 16;

/// The committed code object of `target`, loaded once per process.
fn code_object(target: Target, gfx: GfxTarget) -> &'static CodeObject {
    static LOADED: [OnceLock<CodeObject>; 2] = [OnceLock::new(), OnceLock::new()];
    let cell = &LOADED[usize::from(gfx == GfxTarget::Gfx1201)];
    cell.get_or_init(|| {
        CodeObject::load(pm4rt_kernels::code_object(target), gfx).expect("committed kernels")
    })
}

/// pm4rt's kernel registry for `gfx` with [`WORKGROUP_STEPS`], built once per process.
fn registry(gfx: GfxTarget) -> Arc<KernelRegistry> {
    static REGISTRIES: OnceLock<[Arc<KernelRegistry>; 2]> = OnceLock::new();
    let [gfx1100, gfx1201] = REGISTRIES.get_or_init(|| {
        [GfxTarget::Gfx1100, GfxTarget::Gfx1201].map(|g| {
            let shared = KernelRegistry::shared(g).expect("committed kernels register");
            Arc::new((*shared).clone().with_step_limit(WORKGROUP_STEPS))
        })
    });
    Arc::clone(match gfx {
        GfxTarget::Gfx1100 => gfx1100,
        GfxTarget::Gfx1201 => gfx1201,
    })
}

/// Runs the target on one input; panics only on a broken invariant.
pub fn run(data: &[u8]) {
    let _ = execute(data);
}

/// Runs one input and returns the outcome of its work item: `None` for an empty input,
/// else what [`Engine::submit`] or [`Engine::wait`] reported.
pub fn execute(data: &[u8]) -> Option<pm4rt_core::Result<()>> {
    let (&flags, rest) = data.split_first()?;
    let (gfx, target) = if flags & 1 != 0 {
        (GfxTarget::Gfx1100, Target::Gfx1100)
    } else {
        (GfxTarget::Gfx1201, Target::Gfx1201)
    };
    let (kernarg, ib) = rest.split_at(rest.len().min(KERNARG_BYTES));
    let ib = &ib[..ib.len().min(MAX_IB_BYTES) & !3];

    let mem = Arc::new(GpuMemory::new());
    let co = code_object(target, gfx);
    let bos: [(u64, u64, Perms); 4] = [
        (IB_VA, MAX_IB_BYTES as u64, Perms::READ_WRITE),
        (DATA_VA, DATA_BYTES, Perms::READ_WRITE),
        (CODE_VA, co.image().len() as u64, Perms::ALL),
        (KERNARG_VA, 4096, Perms::READ_WRITE),
    ];
    for (i, &(va, size, perms)) in bos.iter().enumerate() {
        let id = BoHandle(i as u32 + 1);
        mem.create_bo(id, size).expect("fixed BO size");
        mem.map(id, va, perms).expect("fixed disjoint VAs");
    }
    mem.write(CODE_VA, co.image()).expect("image fits its BO");
    mem.write(KERNARG_VA, kernarg).expect("kernarg fits its BO");
    mem.write(IB_VA, ib).expect("IB fits its BO");

    let order = if flags & 2 != 0 { DispatchOrder::Strict } else { DispatchOrder::InOrder };
    let config = EngineConfig { wait_deadline: WAIT_DEADLINE, ib_depth_limit: 4, gfx, order };
    let engine = Engine::new(Arc::clone(&mem), config).expect("engine thread");
    engine.set_dispatch_hook(Some(registry(gfx)));

    let dwords = (ib.len() / 4) as u32;
    let work = if flags & 4 != 0 {
        Work::Ring(RingWork {
            ring_va: IB_VA,
            ring_dwords: (MAX_IB_BYTES / 4) as u32,
            rptr_va: RPTR_VA,
            wptr: u64::from(dwords),
        })
    } else {
        Work::Ib { va: IB_VA, dwords }
    };
    // Ok, a typed error or a timeout are all allowed; only the return matters.
    let outcome = engine.submit(work).and_then(|seq| engine.wait(seq, HOST_WAIT));
    drop(engine);
    Some(outcome)
}
