//! `compare` is a check: a tier whose kernels return NaN, a wrong row or a wrong argmax is a
//! named failure, judged against the kernels' error bounds.
//!
//! The faulty tier is the simulator with a dispatch hook that runs pm4rt's kernels and then
//! corrupts their output, offered as the `cs` candidate: the comparison sees exactly what a
//! miscompiled GPU kernel would produce.

use std::sync::Arc;

use pm4rt::compare::{self, agree, ArgmaxMatch, Outputs, Tolerance, Workload};
use pm4rt::probe::{Candidate, Executor, ProbeOptions};
use pm4rt::Tier;
use pm4rt_core::{Result, Submitter};
use pm4rt_kernels::KernelId;
use pm4rt_sim::dispatch::KernelRegistry;
use pm4rt_sim::engine::{DispatchContext, DispatchHook};
use pm4rt_sim::isa::ExecMode;
use pm4rt_sim::SimSubmitter;

#[derive(Clone, Copy, Debug)]
enum Fault {
    /// y[5] of the DMMV becomes NaN.
    Nan,
    /// y[5] of the DMMV is off by 1.0 (far above the bound for these values).
    WrongRow,
    /// The packed argmax of `argmax_f32` points at index 0 instead.
    WrongArgmax,
}

struct Corrupting {
    inner: Arc<KernelRegistry>,
    fault: Fault,
}

impl DispatchHook for Corrupting {
    fn dispatch(&self, ctx: &mut DispatchContext<'_>) -> Result<()> {
        self.inner.dispatch(ctx)?;
        let id = self.inner.identify(ctx.memory, ctx.pgm_va())?.id;
        let kernarg = u64::from(ctx.user_data(0)) | (u64::from(ctx.user_data(1)) << 32);
        let arg = |name: &str| -> Result<u64> {
            let a = id.signature().iter().find(|a| a.name == name).unwrap();
            ctx.memory.read_u64(kernarg + u64::from(a.offset))
        };
        match (self.fault, id) {
            (Fault::Nan, KernelId::DmmvQ4_0) => ctx.memory.write_u32(arg("y")? + 20, 0x7FC0_0000),
            (Fault::WrongRow, KernelId::DmmvQ4_0) => {
                let at = arg("y")? + 20;
                let v = f32::from_bits(ctx.memory.read_u32(at)?);
                ctx.memory.write_u32(at, (v + 1.0).to_bits())
            }
            (Fault::WrongArgmax, KernelId::ArgmaxF32) => {
                // Index 0 with the value the packing keeps in the high half.
                let out = arg("out")?;
                let packed = ctx.memory.read_u64(out)?;
                ctx.memory.write_u64(out, packed & !0xFFFF_FFFF | 0xFFFF_FFFF)
            }
            _ => Ok(()),
        }
    }
}

fn faulty_cs(fault: Fault) -> Candidate {
    Candidate {
        tier: Tier::Cs,
        device: "faulty".into(),
        emulated: true,
        executor: Executor::Simulated(ExecMode::Native),
        open: Arc::new(move || {
            let sim = SimSubmitter::new().unwrap();
            let inner = KernelRegistry::shared(sim.info().gfx).unwrap();
            sim.set_dispatch_hook(Some(Arc::new(Corrupting { inner, fault })));
            Ok(Box::new(sim) as Box<dyn Submitter>)
        }),
    }
}

fn workload() -> Workload {
    Workload::synthetic_q4_0(256, 256, 7).unwrap()
}

#[test]
fn a_faithful_tier_agrees_within_its_bound() {
    let w = workload();
    let mut healthy = pm4rt::runtime::sim_candidate();
    healthy.tier = Tier::Cs;
    let rows = compare::run(&[healthy], &w, 1, &ProbeOptions::default()).unwrap();
    let a = rows[0].agreement.unwrap();
    assert!(a.ok(), "{a:?}");
    assert_eq!(a.worst, 0.0, "the same code gives the same bits");
    assert!(compare::failures(&rows).is_empty());
}

#[test]
fn nan_wrong_row_and_wrong_argmax_are_named_failures() {
    let w = workload();
    for (fault, want) in [
        (Fault::Nan, "non-finite"),
        (Fault::WrongRow, "dmmv[5]"),
        (Fault::WrongArgmax, "argmax differs"),
    ] {
        let rows = compare::run(&[faulty_cs(fault)], &w, 1, &ProbeOptions::default()).unwrap();
        let f = compare::failures(&rows);
        assert_eq!(f.len(), 1, "{fault:?}: {f:?}");
        assert!(f[0].starts_with("cs: disagrees") && f[0].contains(want), "{fault:?}: {f:?}");
    }
}

#[test]
fn zero_iterations_is_an_error() {
    let e = compare::run(&[], &workload(), 0, &ProbeOptions::default()).unwrap_err();
    assert!(e.to_string().contains("iters"), "{e}");
}

/// Hand-built outputs: norm 4 values, y 4 rows, the reference's argmax row 2.
fn reference() -> Outputs {
    Outputs {
        norm: vec![1.0, -1.0, 0.5, 0.25],
        y: vec![1.0, 2.0, 3.0, 2.9999],
        argmax: (2, 3.0),
        fused: (2, 3.0),
    }
}

fn tol(t: f64) -> Tolerance {
    Tolerance { norm: vec![t; 4], y: vec![t; 4] }
}

#[test]
fn agreement_rules() {
    let r = reference();
    // Within the bound.
    let mut o = r.clone();
    o.y[0] += 1e-3;
    let a = agree(&o, &r, &tol(2e-3));
    assert!(a.ok() && (a.worst - 0.5).abs() < 1e-3, "{a:?}");
    // Outside: named with its index.
    let a = agree(&o, &r, &tol(5e-4));
    assert!(!a.ok() && a.worst_at == Some(("dmmv", 0)), "{a:?}");
    // NaN where the reference is finite: a disagreement, not an error of zero.
    let mut o = r.clone();
    o.norm[1] = f32::NAN;
    let a = agree(&o, &r, &tol(1.0));
    assert_eq!((a.ok(), a.nonfinite), (false, 1));
    assert!(a.max_abs.is_infinite());
    // The same NaN in both agrees.
    let (mut o, mut rr) = (r.clone(), r.clone());
    o.y[3] = f32::NAN;
    rr.y[3] = f32::NAN;
    assert!(agree(&o, &rr, &tol(1e-6)).ok());
    // Wrong length.
    let mut o = r.clone();
    o.y.pop();
    assert!(!agree(&o, &r, &tol(1.0)).ok());
    // Argmax: row 3 is within 1e-4 of row 2 (a tie for a tolerance of 1e-3 each), row 0 not.
    let mut o = r.clone();
    o.argmax = (3, 2.9999);
    assert_eq!(agree(&o, &r, &tol(1e-3)).argmax, ArgmaxMatch::Tie);
    assert_eq!(agree(&o, &r, &tol(1e-6)).argmax, ArgmaxMatch::Differs);
    o.fused = (0, 1.0);
    let a = agree(&o, &r, &tol(1e-3));
    assert_eq!(a.fused, ArgmaxMatch::Differs);
    assert!(a.problem().unwrap().contains("fused"));
    o.fused = (99, 1.0);
    assert_eq!(agree(&o, &r, &tol(1.0)).fused, ArgmaxMatch::Differs, "out of range");
}

#[test]
fn tolerance_follows_the_documented_bound() {
    // One F32 row of 32 ones against x = 1..: exact norm and S computed here by hand.
    let cols = 32;
    let x: Vec<f32> = (1..=cols).map(|v| v as f32).collect();
    let w = Workload {
        label: "t".into(),
        format: pm4rt::session::WeightFormat::F32,
        rows: 1,
        cols,
        weights: [1.0f32; 32].iter().flat_map(|v| v.to_le_bytes()).collect(),
        x: x.clone(),
        norm_weight: vec![1.0; cols],
        eps: 0.0,
    };
    let t = Tolerance::of(&w).unwrap();
    // r = sqrt(sum k^2 / 32) with sum k^2 = 32*33*65/6 = 11440.
    let r = (11440.0f64 / 32.0).sqrt();
    let ulp = 2f64.powi(-24);
    let rel = (33.0 / 2.0 + 6.0) * ulp;
    let widen = 1.0 + 1.0 / 1024.0;
    let want_norm0 = 2.0 * rel * (1.0 / r) * widen;
    assert!((t.norm[0] - want_norm0).abs() <= want_norm0 * 1e-12, "{} {want_norm0}", t.norm[0]);
    // S = sum k / r = 528 / r.
    let want_y = (2.0 * 33.0 * ulp + 2.0 * rel) * (528.0 / r) * widen;
    assert!((t.y[0] - want_y).abs() <= want_y * 1e-12, "{} {want_y}", t.y[0]);
}
