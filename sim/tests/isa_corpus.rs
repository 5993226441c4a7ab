//! The OpenCL C test corpus (sim/tests/isa_kernels/src/corpus.cl, code objects committed for
//! gfx1201 and gfx1100) dispatched through the simulator's PM4 engine: code that is none of
//! pm4rt's kernels runs on the ISA interpreter. Inputs are pseudo-random (fixed seed), grids
//! have several 256-lane workgroups and a partial last wave; every output is compared with a
//! host reference written here from the kernel's contract in corpus.cl.

mod common;

use common::isa_rig::{data_va, IsaRig};
use pm4rt_core::GfxTarget;
use pm4rt_sim::dispatch::KernelRegistry;
use rstest::rstest;

const WG: u32 = 256;
/// Items: 3 full workgroups and 77 items of a fourth (two full waves and 13 lanes of a third).
const N: u32 = 3 * WG + 77;
const GROUPS: u32 = N.div_ceil(WG);

fn corpus(gfx: GfxTarget) -> &'static [u8] {
    match gfx {
        GfxTarget::Gfx1201 => include_bytes!("isa_kernels/gfx1201/corpus.hsaco"),
        GfxTarget::Gfx1100 => include_bytes!("isa_kernels/gfx1100/corpus.hsaco"),
    }
}

fn rig(gfx: GfxTarget) -> IsaRig {
    IsaRig::new(gfx, KernelRegistry::new(gfx).unwrap(), corpus(gfx))
}

/// splitmix64: a fixed pseudo-random sequence for the inputs.
struct Rng(u64);

impl Rng {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn u32s(&mut self, n: u32) -> Vec<u32> {
        (0..n).map(|_| self.next_u64() as u32).collect()
    }
}

fn run(r: &mut IsaRig, name: &str, args: &[(&str, u64)], groups: u32) {
    let gfx = r.gfx;
    r.run_kernel(name, args, groups).unwrap_or_else(|e| panic!("{gfx:?} {name}: {e}"));
}

/// First differing index of `got` and `want`, for a readable failure.
fn check<T: PartialEq + std::fmt::Debug>(gfx: GfxTarget, what: &str, got: &[T], want: &[T]) {
    assert_eq!(got.len(), want.len());
    if let Some(i) = (0..got.len()).find(|&i| got[i] != want[i]) {
        panic!("{gfx:?} {what}[{i}]: got {:?}, want {:?}", got[i], want[i]);
    }
}

#[rstest]
#[case::gfx1201(GfxTarget::Gfx1201)]
#[case::gfx1100(GfxTarget::Gfx1100)]
fn lds_reduce_u32(#[case] gfx: GfxTarget) {
    let mut r = rig(gfx);
    let src = Rng(1).u32s(GROUPS * WG);
    r.put_u32(0, &src);
    r.put_u32(0x10000, &[0xdead_beef; 8]);
    let args = [("src", data_va(0)), ("dst", data_va(0x10000)), ("n", u64::from(N))];
    run(&mut r, "lds_reduce_u32", &args, GROUPS);
    let want: Vec<u32> = (0..GROUPS as usize)
        .map(|g| {
            (g * 256..(g + 1) * 256)
                .filter(|&i| i < N as usize)
                .fold(0u32, |s, i| s.wrapping_add(src[i]))
        })
        .collect();
    check(gfx, "dst", &r.get_u32(0x10000, GROUPS as usize), &want);
    assert_eq!(r.get_u32(0x10000 + 4 * u64::from(GROUPS), 1), [0xdead_beef], "{gfx:?}: past dst");
}

#[rstest]
#[case::gfx1201(GfxTarget::Gfx1201)]
#[case::gfx1100(GfxTarget::Gfx1100)]
fn atomics_u32(#[case] gfx: GfxTarget) {
    let mut r = rig(gfx);
    let src = Rng(2).u32s(N);
    r.put_u32(0, &src);
    r.put_u32(0x10000, &[0, 0, u32::MAX, 0]);
    let args = [
        ("src", data_va(0)),
        ("acc", data_va(0x10000)),
        ("wg", data_va(0x11000)),
        ("n", u64::from(N)),
    ];
    run(&mut r, "atomics_u32", &args, GROUPS);
    let acc = [
        src.iter().fold(0u32, |s, v| s.wrapping_add(*v)),
        *src.iter().max().unwrap(),
        *src.iter().min().unwrap(),
        src.iter().fold(0u32, |s, v| s | (1 << (v & 31))),
    ];
    check(gfx, "acc", &r.get_u32(0x10000, 4), &acc);
    let mut wg = Vec::new();
    for g in src.chunks(WG as usize) {
        wg.push(g.iter().fold(0u32, |s, v| s.wrapping_add(v & 0xffff)));
        wg.push(*g.iter().max().unwrap());
        wg.push(g.iter().filter(|v| *v & 1 == 1).count() as u32);
        wg.push(g.iter().fold(0u32, |s, v| s ^ v));
    }
    check(gfx, "wg", &r.get_u32(0x11000, 4 * GROUPS as usize), &wg);
}

#[rstest]
#[case::gfx1201(GfxTarget::Gfx1201)]
#[case::gfx1100(GfxTarget::Gfx1100)]
fn loops_u32(#[case] gfx: GfxTarget) {
    let mut r = rig(gfx);
    let count = 9u32;
    r.put_u32(0, &vec![0x5555_5555; GROUPS as usize * 256]);
    run(
        &mut r,
        "loops_u32",
        &[("dst", data_va(0)), ("count", u64::from(count)), ("n", u64::from(N))],
        GROUPS,
    );
    let mut want = Vec::new();
    for i in 0..GROUPS * WG {
        let (l, g) = (i % WG, i / WG);
        let mut acc = l;
        for k in 0..count + g {
            acc = acc.wrapping_mul(3).wrapping_add(k);
            if k % 4 == 2 {
                acc ^= acc >> 7;
            }
        }
        for k in 0..(l % 8) {
            acc = acc.wrapping_add((acc << 3) ^ k);
        }
        want.push(if i < N { acc } else { 0x5555_5555 });
    }
    check(gfx, "dst", &r.get_u32(0, want.len()), &want);
}

#[rstest]
#[case::gfx1201(GfxTarget::Gfx1201)]
#[case::gfx1100(GfxTarget::Gfx1100)]
fn int_math(#[case] gfx: GfxTarget) {
    let mut r = rig(gfx);
    let mut rng = Rng(3);
    let mut a = rng.u32s(N);
    let b = rng.u32s(N);
    // Edge values: 0 (clz), all ones, the sign bit alone, 1.
    a[..4].copy_from_slice(&[0, u32::MAX, 0x8000_0000, 1]);
    r.put_u32(0, &a);
    r.put_u32(0x4000, &b);
    let args =
        [("a", data_va(0)), ("b", data_va(0x4000)), ("out", data_va(0x8000)), ("n", u64::from(N))];
    run(&mut r, "int_math", &args, GROUPS);
    let mut want = Vec::new();
    for i in 0..N as usize {
        let (x, y) = (a[i], b[i]);
        let p = (u64::from(x) * u64::from(y)).wrapping_add(u64::from(y) << (x & 31));
        let w = (u64::from(x) << 32) | u64::from(y);
        let q = w.wrapping_mul(u64::from(y) | 1).wrapping_add(w) >> (y & 63);
        let mulhi_s = ((i64::from(x as i32) * i64::from(y as i32)) >> 32) as u32;
        want.extend_from_slice(&[
            ((u64::from(x) * u64::from(y)) >> 32) as u32,
            p as u32,
            (p >> 32) as u32,
            q as u32,
            (q >> 32) as u32,
            x.count_ones() + (u64::from(y) << 17).count_ones() * 64,
            ((x >> (y & 15)) & 0xff) | (mulhi_s & 0xff00),
            x.leading_zeros()
                + if ((x as i32) >> (y & 31)) < 0 { 64 } else { 0 }
                + if x < y { 0x1000 } else { 0 },
        ]);
    }
    check(gfx, "out", &r.get_u32(0x8000, want.len()), &want);
}

#[rstest]
#[case::gfx1201(GfxTarget::Gfx1201)]
#[case::gfx1100(GfxTarget::Gfx1100)]
fn divrem_u32(#[case] gfx: GfxTarget) {
    let mut r = rig(gfx);
    let mut a = Rng(4).u32s(N);
    a[..4].copy_from_slice(&[0, u32::MAX, 0x8000_0000, 12345]);
    // d >= 2: (int)x / -(d + lane % 5) never divides i32::MIN by -1.
    for d in [7u32, 0x8000_0001] {
        r.put_u32(0, &a);
        let args =
            [("a", data_va(0)), ("out", data_va(0x4000)), ("d", u64::from(d)), ("n", u64::from(N))];
        run(&mut r, "divrem_u32", &args, GROUPS);
        let mut want = Vec::new();
        for (i, &x) in a.iter().enumerate() {
            let e = d.wrapping_add(i as u32 % WG % 5) as i32;
            want.extend_from_slice(&[
                x / d,
                x % d,
                (x as i32).wrapping_div(e.wrapping_neg()) as u32,
                (x as i32).wrapping_rem(e) as u32,
            ]);
        }
        check(gfx, &format!("out (d = {d:#x})"), &r.get_u32(0x4000, want.len()), &want);
    }
}

#[rstest]
#[case::gfx1201(GfxTarget::Gfx1201)]
#[case::gfx1100(GfxTarget::Gfx1100)]
fn cross_lane(#[case] gfx: GfxTarget) {
    let mut r = rig(gfx);
    let a = Rng(5).u32s(N);
    r.put_u32(0, &a);
    let args = [("a", data_va(0)), ("out", data_va(0x4000)), ("n", u64::from(N))];
    run(&mut r, "cross_lane", &args, GROUPS);
    let v = |i: usize| if i < N as usize { a[i] } else { 0 };
    let mut want = Vec::new();
    for i in 0..N as usize {
        let wave = i / 32 * 32;
        let lane = i % 32;
        want.extend_from_slice(&[v(wave + 5), v(wave), v(wave + (lane ^ 3)), v(wave + 31 - lane)]);
    }
    check(gfx, "out", &r.get_u32(0x4000, want.len()), &want);
}

/// Round `v` (exactly representable in f64) to the nearest binary16, ties to even.
fn f16_from_f64(v: f64) -> u16 {
    let sign = if v.is_sign_negative() { 0x8000u16 } else { 0 };
    let m = v.abs();
    if m.is_nan() {
        return 0x7e00;
    }
    // Units of the smallest subnormal (2^-24) below 2^-14, else of the binade's ulp.
    let (e, _) = frexp(m);
    let exp = (e - 1).max(-14); // unbiased exponent of the binade, clamped to the subnormal range
    let ulp = 2f64.powi(exp - 10);
    let q = m / ulp; // exact: power-of-two scaling
    let fl = q.floor();
    let rem = q - fl;
    let mut k = fl as u64;
    if rem > 0.5 || (rem == 0.5 && k % 2 == 1) {
        k += 1;
    }
    // k in [2^10, 2^11] for normals (2^11 carries into the next binade), [0, 2^10] below.
    let bits = if exp == -14 && k < 1024 {
        k
    } else {
        let (mut kk, mut ee) = (k, exp);
        if kk == 2048 {
            kk = 1024;
            ee += 1;
        }
        if ee > 15 {
            return sign | 0x7c00;
        }
        (((ee + 15) as u64) << 10) | (kk - 1024)
    };
    sign | bits as u16
}

/// `m = f * 2^e` with `f` in [0.5, 1) for finite positive `m`; (0, 0.0) for 0.
fn frexp(m: f64) -> (i32, f64) {
    if m == 0.0 {
        return (0, 0.0);
    }
    let mut e = 0;
    let mut f = m;
    while f >= 1.0 {
        f /= 2.0;
        e += 1;
    }
    while f < 0.5 {
        f *= 2.0;
        e -= 1;
    }
    (e, f)
}

/// The value of binary16 `h` (finite).
fn f16_to_f64(h: u16) -> f64 {
    let s = if h & 0x8000 != 0 { -1.0 } else { 1.0 };
    let e = i32::from((h >> 10) & 0x1f);
    let m = f64::from(h & 0x3ff);
    if e == 0 {
        s * m * 2f64.powi(-24)
    } else {
        s * (1024.0 + m) * 2f64.powi(e - 25)
    }
}

#[test]
fn f16_reference_rounds_like_binary16() {
    // Hand values: 1.0, 65504 (max), 2^-24 (smallest subnormal), 1 + 2^-11 (tie to even: 1.0),
    // 1 + 3 * 2^-11 (tie to even: 1 + 2^-9), 65520 (rounds to infinity).
    assert_eq!(f16_from_f64(1.0), 0x3c00);
    assert_eq!(f16_from_f64(65504.0), 0x7bff);
    assert_eq!(f16_from_f64(2f64.powi(-24)), 0x0001);
    assert_eq!(f16_from_f64(1.0 + 2f64.powi(-11)), 0x3c00);
    assert_eq!(f16_from_f64(1.0 + 3.0 * 2f64.powi(-11)), 0x3c02);
    assert_eq!(f16_from_f64(65520.0), 0x7c00);
    assert_eq!(f16_from_f64(-2f64.powi(-25)), 0x8000);
    assert_eq!(f16_to_f64(0x3555), 0.333_251_953_125);
}

#[rstest]
#[case::gfx1201(GfxTarget::Gfx1201)]
#[case::gfx1100(GfxTarget::Gfx1100)]
fn f16_math(#[case] gfx: GfxTarget) {
    let mut r = rig(gfx);
    let mut rng = Rng(6);
    // Finite, nonzero binary16 values (subnormals included).
    let mut gen = || loop {
        let h = rng.next_u64() as u16;
        if h & 0x7c00 != 0x7c00 && h & 0x7fff != 0 {
            break h;
        }
    };
    let a: Vec<u16> = (0..N).map(|_| gen()).collect();
    let b: Vec<u16> = (0..N).map(|_| gen()).collect();
    r.put_u16(0, &a);
    r.put_u16(0x4000, &b);
    let args =
        [("a", data_va(0)), ("b", data_va(0x4000)), ("out", data_va(0x8000)), ("n", u64::from(N))];
    run(&mut r, "f16_math", &args, GROUPS);
    let mut want = Vec::new();
    for i in 0..N as usize {
        let (x, y) = (f16_to_f64(a[i]), f16_to_f64(b[i]));
        let p = f16_from_f64(x * y);
        let s = if p & 0x7c00 == 0x7c00 { p } else { f16_from_f64(f16_to_f64(p) + x) };
        let d = f16_from_f64(x.max(y) - x.min(y));
        let f = if p & 0x7c00 == 0x7c00 {
            (u32::from(p & 0x8000) << 16) | 0x7f80_0000
        } else {
            (f16_to_f64(p) as f32).to_bits()
        };
        want.extend_from_slice(&[s, d, f as u16, (f >> 16) as u16]);
    }
    check(gfx, "out", &r.get_u16(0x8000, want.len()), &want);
}

/// Items for the DPP kernel: a multiple of 16, so every 16-lane row (and 8-lane DPP8 group)
/// is wholly active or wholly inactive; the last wave is still partial (16 of 32 lanes).
const N_DPP: u32 = 3 * WG + 80;

#[rstest]
#[case::gfx1201(GfxTarget::Gfx1201)]
#[case::gfx1100(GfxTarget::Gfx1100)]
fn dpp_u32(#[case] gfx: GfxTarget) {
    let mut r = rig(gfx);
    let a = Rng(7).u32s(N_DPP);
    r.put_u32(0, &a);
    let args = [("a", data_va(0)), ("out", data_va(0x4000)), ("n", u64::from(N_DPP))];
    run(&mut r, "dpp_u32", &args, N_DPP.div_ceil(WG));
    let mut want = Vec::new();
    for i in 0..N_DPP as usize {
        let (row, idx) = (i / 16 * 16, i % 16);
        want.extend_from_slice(&[
            a[(i & !3) | (3 - (i & 3))],
            if idx == 0 { 0xdead_beef } else { a[i - 1] },
            a[row + 15 - idx],
            a[(i & !7) | (7 - (i & 7))],
        ]);
    }
    check(gfx, "out", &r.get_u32(0x4000, want.len()), &want);
}

/// Round the f16 result of an operation on finite values; infinities pass through.
fn round_f16(v: f64) -> u16 {
    if v.is_infinite() {
        if v > 0.0 {
            0x7c00
        } else {
            0xfc00
        }
    } else {
        f16_from_f64(v)
    }
}

#[rstest]
#[case::gfx1201(GfxTarget::Gfx1201)]
#[case::gfx1100(GfxTarget::Gfx1100)]
fn half2_math(#[case] gfx: GfxTarget) {
    let mut r = rig(gfx);
    let mut rng = Rng(8);
    let mut gen = || loop {
        let h = rng.next_u64() as u16;
        if h & 0x7c00 != 0x7c00 && h & 0x7fff != 0 {
            break u32::from(h);
        }
    };
    let a: Vec<u32> = (0..N).map(|_| gen() | gen() << 16).collect();
    let b: Vec<u32> = (0..N).map(|_| gen() | gen() << 16).collect();
    r.put_u32(0, &a);
    r.put_u32(0x4000, &b);
    let args =
        [("a", data_va(0)), ("b", data_va(0x4000)), ("out", data_va(0x8000)), ("n", u64::from(N))];
    run(&mut r, "half2_math", &args, GROUPS);
    let val = |h: u16| {
        if h & 0x7fff == 0x7c00 {
            f64::from(h as i16).signum() * f64::INFINITY
        } else {
            f16_to_f64(h)
        }
    };
    let mut want = Vec::new();
    for i in 0..N as usize {
        let mut s = 0u32;
        let mut d = 0u32;
        for half in 0..2 {
            let (x, y) = ((a[i] >> (16 * half)) as u16, (b[i] >> (16 * half)) as u16);
            let (fx, fy) = (f16_to_f64(x), f16_to_f64(y));
            let p = round_f16(fx * fy);
            s |= u32::from(round_f16(val(p) + fx)) << (16 * half);
            d |= u32::from(round_f16(fx - fy)) << (16 * half);
        }
        want.extend_from_slice(&[s, d]);
    }
    check(gfx, "out", &r.get_u32(0x8000, want.len()), &want);
}
