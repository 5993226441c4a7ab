//! DMMV throughput (bytes of weights per second) for every weight format on 65536 x 4096
//! (Q4_0 144 MiB, Q8_0 272 MiB, Q4_K 144 MiB, F16 512 MiB, F32 1 GiB: several times any L3
//! cache), next to a streaming-read reference over the same bytes split over the same
//! threads, so the ratio kernel / streaming read is measured in one run.

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use pm4rt_sim::kernels::{dmmv, dmmv_with, Backend, WeightType};
use std::hint::black_box;
use std::time::{Duration, Instant};

/// Rows of the large matrix. 16384 rows made Q4_0 only 36 MiB, barely above a 32 MiB L3: on
/// AMD's victim L3 part of it stayed resident and the streaming read of those bytes reached
/// 49-57 GiB/s against 35 GiB/s for the 256 MiB F32 matrix, so the ratios measured the cache.
const ROWS: usize = 65536;
const COLS: usize = 4096;

/// Rows of the cache-resident single-thread case (below `PARALLEL_MIN_BYTES` for every type).
const SMALL_ROWS: usize = 48;

fn weights(ty: WeightType, rows: usize) -> Vec<u8> {
    let n = rows * ty.row_bytes(COLS).unwrap_or(0);
    let mut s = 0x2545_f491_4f6c_dd1du64;
    let mut w: Vec<u8> = (0..n)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            (s >> 24) as u8
        })
        .collect();
    match ty {
        WeightType::F32 => {
            for c in w.chunks_exact_mut(4) {
                c[3] = 0x3c | (c[3] & 0x80); // finite, moderate magnitude
            }
        }
        _ => {
            // Normal f16 scales (and mins) where the format keeps them (ggml-common.h):
            // d at byte 0 (and m / dmin at byte 2), Q6_K's d at byte 208; F16 / BF16 values
            // get a moderate exponent the same way.
            let highs: &[usize] = match ty {
                WeightType::Q6K => &[209],
                WeightType::Q4_1 | WeightType::Q5_1 | WeightType::Q4K | WeightType::Q5K => &[1, 3],
                _ => &[1],
            };
            for b in w.chunks_exact_mut(ty.block_bytes()) {
                for &h in highs {
                    b[h] = 0x20 | (b[h] & 0x83);
                }
            }
        }
    }
    w
}

/// Sum of the buffer as u64 words, split into the same number of contiguous parts as DMMV
/// (one scoped thread per part, like DMMV). Each part is read with 256-bit loads and the
/// same software prefetch distance as the DMMV rows when the CPU has AVX2 (a scalar loop
/// read about 10-20% less per second here, so it understated the memory roofline and
/// flattered the ratios), else with u64 loads.
fn stream_sum(w: &[u8]) -> u64 {
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let part = w.len().div_ceil(threads).div_ceil(128) * 128;
    std::thread::scope(|s| {
        let hs: Vec<_> = w.chunks(part).map(|c| s.spawn(move || part_sum(c))).collect();
        hs.into_iter().map(|h| h.join().unwrap_or(0)).fold(0u64, u64::wrapping_add)
    })
}

/// Prefetch distance of the streaming read (the DMMV rows use the same).
const PREFETCH_BYTES: usize = 4096;

#[cfg(target_arch = "x86_64")]
fn part_sum(c: &[u8]) -> u64 {
    use pulp::x86::V3;
    use std::arch::x86_64::__m256i;
    struct Sum<'a>(V3, &'a [u8]);
    impl pulp::NullaryFnOnce for Sum<'_> {
        type Output = u64;
        #[inline(always)]
        fn call(self) -> u64 {
            let Sum(simd, c) = self;
            let (lines, tail) = pulp::as_arrays::<128, u8>(c);
            let mut acc = [simd.avx._mm256_setzero_si256(); 4];
            for (i, l) in lines.iter().enumerate() {
                for half in 0..2 {
                    let at = i * 128 + half * 64 + PREFETCH_BYTES;
                    simd.sse._mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>(
                        c.as_ptr().wrapping_add(at).cast::<i8>(),
                    );
                }
                let v: [__m256i; 4] = pulp::cast(*l);
                for (a, v) in acc.iter_mut().zip(v) {
                    *a = simd.avx2._mm256_add_epi64(*a, v);
                }
            }
            let lanes: [u64; 16] = pulp::cast(acc);
            lanes.iter().chain(&[scalar_sum(tail)]).fold(0u64, |x, y| x.wrapping_add(*y))
        }
    }
    match V3::try_new() {
        Some(simd) => simd.vectorize(Sum(simd, c)),
        None => scalar_sum(c),
    }
}

#[cfg(not(target_arch = "x86_64"))]
fn part_sum(c: &[u8]) -> u64 {
    scalar_sum(c)
}

/// u64 words of `c` (a shorter tail zero-padded), summed with wrapping.
fn scalar_sum(c: &[u8]) -> u64 {
    c.chunks(8).fold(0u64, |a, q| {
        let mut b = [0u8; 8];
        b[..q.len()].copy_from_slice(q);
        a.wrapping_add(u64::from_le_bytes(b))
    })
}

fn bench(c: &mut Criterion) {
    let x: Vec<f32> = (0..COLS).map(|i| (i as f32 * 0.01).sin()).collect();
    let mut y = vec![0f32; ROWS];
    let mut g = c.benchmark_group("dmmv_65536x4096");
    g.sample_size(20);
    for ty in WeightType::ALL {
        let w = weights(ty, ROWS);
        g.throughput(Throughput::Bytes(w.len() as u64));
        g.bench_function(format!("{ty:?}"), |b| {
            b.iter(|| dmmv(ty, black_box(&w), black_box(&x), &mut y, ROWS, COLS))
        });
        g.bench_function(format!("stream_read_{ty:?}_bytes"), |b| {
            b.iter(|| stream_sum(black_box(&w)))
        });
    }
    g.finish();
}

/// The same products paired with the streaming read: every iteration runs the DMMV and the
/// streaming read of the same bytes back to back (alternating which goes first); a sample's
/// measured time is `sum t_dmmv / sum t_stream` milliseconds per iteration. Criterion's
/// "time" for these entries is therefore the time ratio in milliseconds (1.50 ms = the DMMV took 1.5 times as
/// long as the read; throughput ratio 1 / 1.5 = 0.67). On a machine whose memory bandwidth
/// changes from second to second (a shared VM) this ratio is far steadier than the ratio of
/// the two separately measured throughputs, which are taken seconds apart.
fn bench_paired(c: &mut Criterion) {
    let x: Vec<f32> = (0..COLS).map(|i| (i as f32 * 0.01).sin()).collect();
    let mut y = vec![0f32; ROWS];
    let mut g = c.benchmark_group("dmmv_65536x4096_paired");
    g.sample_size(20);
    for ty in WeightType::ALL {
        let w = weights(ty, ROWS);
        g.bench_function(format!("{ty:?}_time_over_stream_time"), |b| {
            b.iter_custom(|iters| {
                let (mut tk, mut ts) = (0.0, 0.0);
                for i in 0..iters {
                    let mut kernel = || {
                        let t = Instant::now();
                        let r = dmmv(ty, black_box(&w), black_box(&x), &mut y, ROWS, COLS);
                        black_box(r).ok();
                        t.elapsed().as_secs_f64()
                    };
                    let stream = || {
                        let t = Instant::now();
                        black_box(stream_sum(black_box(&w)));
                        t.elapsed().as_secs_f64()
                    };
                    if i % 2 == 0 {
                        tk += kernel();
                        ts += stream();
                    } else {
                        ts += stream();
                        tk += kernel();
                    }
                }
                // Per iteration: (sum t_dmmv / sum t_stream) ms, a ratio of sums (a mean of
                // per-pair ratios would be biased upwards by the read's noise).
                Duration::from_secs_f64(tk / ts.max(f64::MIN_POSITIVE) * 1e-3 * iters as f64)
            })
        });
    }
    g.finish();
}

/// Compute throughput of each backend: a small matrix that stays in cache, one thread.
fn bench_backends(c: &mut Criterion) {
    let x: Vec<f32> = (0..COLS).map(|i| (i as f32 * 0.01).sin()).collect();
    let mut y = vec![0f32; SMALL_ROWS];
    let mut g = c.benchmark_group("dmmv_1thread_48x4096");
    g.sample_size(20);
    for ty in WeightType::ALL {
        let w = weights(ty, SMALL_ROWS);
        g.throughput(Throughput::Bytes(w.len() as u64));
        for be in Backend::ALL.into_iter().filter(|b| b.is_available()) {
            g.bench_function(format!("{ty:?}_{}", be.name()), |b| {
                b.iter(|| dmmv_with(be, ty, black_box(&w), black_box(&x), &mut y, SMALL_ROWS, COLS))
            });
        }
    }
    g.finish();
}

criterion_group!(benches, bench, bench_paired, bench_backends);
criterion_main!(benches);
