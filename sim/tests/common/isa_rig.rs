//! A simulator rig that dispatches the kernels of any code object through the PM4 engine
//! (`DISPATCH_DIRECT` with the registers `pm4rt_core::launch::emit_dispatch` writes), with a
//! data BO at a fixed VA for inputs and outputs.

use std::sync::Arc;
use std::time::Duration;

use pm4rt_core::code_object::CodeObject;
use pm4rt_core::launch::{emit_barrier, emit_dispatch, Launch};
use pm4rt_core::pm4::{Builder, FenceInterrupt};
use pm4rt_core::{BoDesc, BoHandle, Error, Fence, GfxTarget, Submitter, Tier};
use pm4rt_kernels::KernelId;
use pm4rt_sim::dispatch::KernelRegistry;
use pm4rt_sim::engine::EngineConfig;
use pm4rt_sim::{SimConfig, SimSubmitter};

/// How long a dispatch may take.
pub const ISA_WAIT: Duration = Duration::from_secs(60);
/// VA of the data BO.
pub const ISA_DATA: u64 = 0x10_0000_0000;
/// Size of the data BO.
pub const ISA_DATA_SIZE: u64 = 1 << 20;

/// Size of the kernarg BO.
const KERNARG_SIZE: u64 = 64 * 1024;
/// Kernarg bytes per dispatch of one IB.
const KERNARG_SLOT: u64 = 512;

/// One dispatch of pm4rt's kernels: kernel, kernarg values by declared name, workgroups in X.
pub type Dispatch<'a> = (KernelId, &'a [(&'a str, u64)], u32);

/// One dispatch: kernel name, kernarg bytes, workgroups in X.
pub type RawDispatch<'a> = (&'a str, Vec<u8>, u32);

/// A SimSubmitter with one code object uploaded, a kernarg BO, an IB BO, a fence and a data BO
/// at [`ISA_DATA`].
pub struct IsaRig {
    pub sim: SimSubmitter,
    pub gfx: GfxTarget,
    pub co: CodeObject,
    pub image_va: u64,
    pub kernarg: BoHandle,
    pub kernarg_va: u64,
    pub ib: BoHandle,
    pub ib_va: u64,
    pub fence_va: u64,
    pub data: BoHandle,
    pub seq: u64,
}

impl IsaRig {
    /// A rig for `gfx` whose dispatch hook is `registry`, with `code_object` uploaded.
    pub fn new(gfx: GfxTarget, registry: KernelRegistry, code_object: &[u8]) -> IsaRig {
        let cfg = SimConfig {
            engine: EngineConfig { gfx, ..EngineConfig::default() },
            ..SimConfig::default()
        };
        let mut sim = SimSubmitter::with_config(cfg).unwrap();
        sim.set_dispatch_hook(Some(Arc::new(registry)));
        let co = CodeObject::load(code_object, gfx).unwrap();
        let code = sim.alloc_bo(&BoDesc::code(co.image().len() as u64)).unwrap();
        let image_va = sim.map_va(code, None).unwrap();
        sim.write_bo(code, 0, co.image()).unwrap();
        let kernarg = sim.alloc_bo(&BoDesc::gtt(KERNARG_SIZE)).unwrap();
        let kernarg_va = sim.map_va(kernarg, None).unwrap();
        let ib = sim.alloc_bo(&BoDesc::gtt(65536)).unwrap();
        let ib_va = sim.map_va(ib, None).unwrap();
        let fence = sim.alloc_bo(&BoDesc::gtt(4096)).unwrap();
        let fence_va = sim.map_va(fence, None).unwrap();
        let data = sim.alloc_bo(&BoDesc::gtt(ISA_DATA_SIZE)).unwrap();
        assert_eq!(sim.map_va(data, Some(ISA_DATA)).unwrap(), ISA_DATA);
        IsaRig { sim, gfx, co, image_va, kernarg, kernarg_va, ib, ib_va, fence_va, data, seq: 0 }
    }

    /// A rig running pm4rt's own code object for `gfx`.
    pub fn with_pm4rt_kernels(gfx: GfxTarget, registry: KernelRegistry) -> IsaRig {
        let target = match gfx {
            GfxTarget::Gfx1100 => pm4rt_kernels::Target::Gfx1100,
            GfxTarget::Gfx1201 => pm4rt_kernels::Target::Gfx1201,
        };
        IsaRig::new(gfx, registry, pm4rt_kernels::code_object(target))
    }

    /// Write `b` at `off` in the data BO.
    pub fn put(&mut self, off: u64, b: &[u8]) {
        self.sim.write_bo(self.data, off, b).unwrap();
    }

    /// Read `n` bytes at `off` of the data BO.
    pub fn get(&self, off: u64, n: usize) -> Vec<u8> {
        let mut b = vec![0u8; n];
        self.sim.read_bo(self.data, off, &mut b).unwrap();
        b
    }

    /// Write `v` at `off`.
    pub fn put_u32(&mut self, off: u64, v: &[u32]) {
        let b: Vec<u8> = v.iter().flat_map(|x| x.to_le_bytes()).collect();
        self.put(off, &b);
    }

    /// Read `n` u32 at `off`.
    pub fn get_u32(&self, off: u64, n: usize) -> Vec<u32> {
        let b = self.get(off, 4 * n);
        b.chunks_exact(4).map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect()
    }

    /// Write `v` at `off`.
    pub fn put_u16(&mut self, off: u64, v: &[u16]) {
        let b: Vec<u8> = v.iter().flat_map(|x| x.to_le_bytes()).collect();
        self.put(off, &b);
    }

    /// Read `n` u16 at `off`.
    pub fn get_u16(&self, off: u64, n: usize) -> Vec<u16> {
        let b = self.get(off, 2 * n);
        b.chunks_exact(2).map(|c| u16::from_le_bytes([c[0], c[1]])).collect()
    }

    /// Write `v` at `off`.
    pub fn put_f32(&mut self, off: u64, v: &[f32]) {
        let b: Vec<u8> = v.iter().flat_map(|f| f.to_le_bytes()).collect();
        self.put(off, &b);
    }

    /// Read `n` f32 at `off`.
    pub fn get_f32(&self, off: u64, n: usize) -> Vec<f32> {
        self.get_u32(off, n).into_iter().map(f32::from_bits).collect()
    }

    /// Read the u64 at `off`.
    pub fn get_u64(&self, off: u64) -> u64 {
        let b = self.get(off, 8);
        u64::from_le_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]])
    }

    /// The kernarg bytes of kernel `name` with the named arguments set (little-endian,
    /// truncated to each argument's size); unnamed bytes stay 0.
    pub fn kernarg_bytes(&self, name: &str, args: &[(&str, u64)]) -> Vec<u8> {
        let k = self.co.kernel(name).unwrap();
        let mut bytes = vec![0u8; k.metadata.kernarg_segment_size as usize];
        for (arg, v) in args {
            let a = k
                .args
                .iter()
                .find(|a| a.name.as_deref() == Some(*arg))
                .unwrap_or_else(|| panic!("{name} has no argument {arg}"));
            let (o, s) = (a.offset as usize, a.size as usize);
            bytes[o..o + s].copy_from_slice(&v.to_le_bytes()[..s]);
        }
        bytes
    }

    /// Submit `calls` in one IB with barriers between them and a RELEASE_MEM fence.
    pub fn submit_raw(&mut self, calls: &[RawDispatch<'_>]) -> Result<Fence, Error> {
        let mut b = Builder::growable(self.gfx);
        for (i, (name, bytes, groups)) in calls.iter().enumerate() {
            let slot = KERNARG_SLOT * i as u64;
            assert!(
                bytes.len() as u64 <= KERNARG_SLOT && slot + KERNARG_SLOT <= KERNARG_SIZE,
                "kernarg slots exhausted"
            );
            self.sim.write_bo(self.kernarg, slot, bytes).unwrap();
            if i > 0 {
                emit_barrier(&mut b).unwrap();
            }
            let l = Launch {
                kernel: self.co.kernel(name).unwrap(),
                image_va: self.image_va,
                grid: [*groups, 1, 1],
                workgroup: None,
                kernarg_va: self.kernarg_va + slot,
                tier: Tier::Sim,
            };
            emit_dispatch(&mut b, self.gfx, &l).unwrap();
        }
        self.seq += 1;
        b.release_mem_fence(self.fence_va, self.seq, FenceInterrupt::None).unwrap();
        let ib = b.into_vec();
        let bytes: Vec<u8> = ib.iter().flat_map(|d| d.to_le_bytes()).collect();
        self.sim.write_bo(self.ib, 0, &bytes).unwrap();
        self.sim.submit_ib(self.ib_va, ib.len() as u32)
    }

    /// [`IsaRig::submit_raw`] and wait for the fence.
    pub fn run_raw(&mut self, calls: &[RawDispatch<'_>]) -> Result<(), Error> {
        let fence = self.submit_raw(calls)?;
        self.sim.wait_fence(fence, ISA_WAIT)
    }

    /// Run kernel `name` once with the named arguments over `groups` workgroups.
    pub fn run_kernel(
        &mut self,
        name: &str,
        args: &[(&str, u64)],
        groups: u32,
    ) -> Result<(), Error> {
        let bytes = self.kernarg_bytes(name, args);
        self.run_raw(&[(name, bytes, groups)])
    }
}

impl IsaRig {
    /// The kernarg bytes of pm4rt's kernel `id` from arguments by declared name (the
    /// signature in pm4rt_kernels).
    pub fn pm4rt_kernarg(id: KernelId, args: &[(&str, u64)]) -> Vec<u8> {
        let mut bytes = vec![0u8; id.kernarg_size() as usize];
        for (name, v) in args {
            let a = id.signature().iter().find(|a| a.name == *name).unwrap();
            let o = a.offset as usize;
            bytes[o..o + a.size as usize].copy_from_slice(&v.to_le_bytes()[..a.size as usize]);
        }
        bytes
    }

    /// Submit pm4rt-kernel dispatches in one IB (barriers between them, a fence at the end).
    pub fn submit(&mut self, calls: &[Dispatch<'_>]) -> Result<Fence, Error> {
        let raw: Vec<RawDispatch<'_>> = calls
            .iter()
            .map(|(id, args, groups)| (id.name(), IsaRig::pm4rt_kernarg(*id, args), *groups))
            .collect();
        self.submit_raw(&raw)
    }

    /// [`IsaRig::submit`] and wait for the fence.
    pub fn run(&mut self, calls: &[Dispatch<'_>]) -> Result<(), Error> {
        let fence = self.submit(calls)?;
        self.sim.wait_fence(fence, ISA_WAIT)
    }
}

/// VA of byte `off` of the data BO.
pub fn data_va(off: u64) -> u64 {
    ISA_DATA + off
}
