//! The smoke test: the smallest piece of real work that proves a tier retires submissions.
//!
//! [`run`] allocates a data BO, an IB BO and a fence BO, writes a PM4 stream that stores
//! values with `WRITE_DATA`, copies a memory dword and an immediate 64-bit value with
//! `COPY_DATA`, and signals completion with an end-of-pipe `RELEASE_MEM`, padded with a NOP to
//! a multiple of 8 dwords as Mesa pads compute IBs ([`pm4rt_core::pm4::Builder::pad_ib`]); it
//! submits that IB
//! `iterations` times, waits for each fence, verifies every value the GPU wrote, and reports
//! the latency and the ioctls spent per submission. The tier probe uses the same routine with
//! one iteration as its retire smoke.

use std::time::{Duration, Instant};

use pm4rt_core::pm4::{Builder, CopyData, EncodeError, Packet, ReleaseMem, WriteData};
use pm4rt_core::{BoDesc, BoHandle, GfxTarget, Submitter, SubmitterInfo};

use crate::error::{Error, Result};

/// Byte offsets inside the smoke's data BO.
const WRITE_AT: u64 = 0;
const COPY_SRC_AT: u64 = 64;
const COPY_DST_AT: u64 = 128;
const IMM_DST_AT: u64 = 192;

/// Values the smoke IB writes; distinct patterns so a swapped or partial write is caught.
const WRITE_VALUES: [u32; 4] = [0xC0DE_0001, 0xC0DE_0002, 0xC0DE_0003, 0xC0DE_0004];
const COPY_VALUE: u32 = 0x5EED_1234;
const IMM_VALUE: u64 = 0x0123_4567_89AB_CDEF;

/// What a successful smoke measured.
#[derive(Debug, Clone)]
pub struct SmokeReport {
    /// Static facts of the submitter that ran it (tier, device, counters at the end).
    pub info: SubmitterInfo,
    /// Submissions made.
    pub iterations: u32,
    /// Median submit-to-retire latency.
    pub median: Duration,
    /// Slowest submit-to-retire latency.
    pub max: Duration,
    /// ioctls issued by `submit_ib`, per submission.
    pub ioctls_per_submit: f64,
    /// ioctls issued by `wait_fence`, per submission (a tier that polls its fence first
    /// issues one only when the fence was not yet retired after the poll phase).
    pub ioctls_per_wait: f64,
}

/// The three BOs the smoke uses, freed on every path.
struct Buffers {
    data: BoHandle,
    ib: BoHandle,
    fence: BoHandle,
}

/// Run the smoke `iterations` times (at least once), waiting at most `timeout` per fence.
///
/// Errors: whatever the submitter reports (allocation, mapping, submission, a fence that does
/// not retire within `timeout`), or [`Error::Mismatch`] naming the first value the GPU
/// did not write as expected. All BOs are freed before returning, except after a fence
/// timeout: the IB may still run and write them, so they stay allocated until the submitter
/// is dropped (which tears the queue down first).
pub fn run(s: &mut dyn Submitter, iterations: u32, timeout: Duration) -> Result<SmokeReport> {
    let iterations = iterations.max(1);
    let mut allocated = Vec::with_capacity(3);
    let result = (|| {
        for _ in 0..3 {
            allocated.push(s.alloc_bo(&BoDesc::gtt(4096))?);
        }
        let bufs = Buffers { data: allocated[0], ib: allocated[1], fence: allocated[2] };
        measure(s, &bufs, iterations, timeout)
    })();
    if matches!(result, Err(Error::Core(pm4rt_core::Error::Timeout { .. }))) {
        return result;
    }
    for bo in allocated.into_iter().rev() {
        let freed = s.free_bo(bo);
        if result.is_ok() {
            freed.map_err(Error::from)?;
        }
    }
    result
}

fn measure(
    s: &mut dyn Submitter,
    b: &Buffers,
    iterations: u32,
    timeout: Duration,
) -> Result<SmokeReport> {
    let data_va = s.map_va(b.data, None)?;
    let ib_va = s.map_va(b.ib, None)?;
    let fence_va = s.map_va(b.fence, None)?;
    let (mut submit_ioctls, mut wait_ioctls) = (0u64, 0u64);
    // Grown as needed: `--iterations 4294967295` must not ask for 64 GiB up front.
    let mut latencies = Vec::with_capacity(iterations.min(4096) as usize);
    for i in 0..iterations {
        let fence_value = 0x1000_0000 | u64::from(i + 1);
        s.write_bo(b.data, 0, &[0u8; 256])?;
        s.write_bo(b.data, COPY_SRC_AT, &COPY_VALUE.to_le_bytes())?;
        s.write_bo(b.fence, 0, &[0u8; 8])?;
        let ib = smoke_ib(s.info().gfx, data_va, fence_va, fence_value)?;
        s.write_bo(b.ib, 0, bytemuck_bytes(&ib))?;
        let c0 = s.info().counters.ioctls;
        let t0 = Instant::now();
        let fence = s.submit_ib(ib_va, ib.len() as u32)?;
        let c1 = s.info().counters.ioctls;
        s.wait_fence(fence, timeout)?;
        latencies.push(t0.elapsed());
        let c2 = s.info().counters.ioctls;
        submit_ioctls += c1 - c0;
        wait_ioctls += c2 - c1;
        verify(s, b, fence_value)?;
    }
    latencies.sort();
    Ok(SmokeReport {
        info: s.info(),
        iterations,
        median: latencies[latencies.len() / 2],
        max: *latencies.last().unwrap_or(&Duration::ZERO),
        ioctls_per_submit: submit_ioctls as f64 / f64::from(iterations),
        ioctls_per_wait: wait_ioctls as f64 / f64::from(iterations),
    })
}

/// The smoke IB: WRITE_DATA, COPY_DATA (memory and immediate), RELEASE_MEM, NOP padding.
fn smoke_ib(gfx: GfxTarget, data_va: u64, fence_va: u64, fence_value: u64) -> Result<Vec<u32>> {
    let packets = [
        Packet::WriteData(WriteData {
            dst_sel: 5,
            wr_confirm: true,
            addr: data_va + WRITE_AT,
            data: WRITE_VALUES.to_vec(),
            ..Default::default()
        }),
        Packet::CopyData(CopyData {
            src_sel: 2,
            dst_sel: 2,
            wr_confirm: true,
            src: data_va + COPY_SRC_AT,
            dst: data_va + COPY_DST_AT,
            ..Default::default()
        }),
        Packet::CopyData(CopyData {
            src_sel: 5,
            dst_sel: 2,
            count64: true,
            wr_confirm: true,
            src: IMM_VALUE,
            dst: data_va + IMM_DST_AT,
        }),
        Packet::ReleaseMem(ReleaseMem {
            event_type: 0x14,
            event_index: 5,
            data_sel: 2,
            addr: fence_va,
            data: fence_value,
            ..Default::default()
        }),
    ];
    let encode =
        |e: EncodeError| Error::Core(pm4rt_core::Error::InvalidArgument(format!("smoke IB: {e}")));
    let mut b = Builder::growable(gfx);
    for p in &packets {
        b.packet(p).map_err(encode)?;
    }
    b.pad_ib().map_err(encode)?;
    Ok(b.into_vec())
}

fn verify(s: &mut dyn Submitter, b: &Buffers, fence_value: u64) -> Result<()> {
    let mut data = [0u8; 256];
    s.read_bo(b.data, 0, &mut data)?;
    let u32_at = |off: u64| {
        let o = off as usize;
        u32::from_le_bytes([data[o], data[o + 1], data[o + 2], data[o + 3]])
    };
    for (i, want) in WRITE_VALUES.iter().enumerate() {
        check(
            "WRITE_DATA",
            WRITE_AT + 4 * i as u64,
            u64::from(u32_at(WRITE_AT + 4 * i as u64)),
            u64::from(*want),
        )?;
    }
    check(
        "COPY_DATA (memory)",
        COPY_DST_AT,
        u64::from(u32_at(COPY_DST_AT)),
        u64::from(COPY_VALUE),
    )?;
    let imm = u64::from(u32_at(IMM_DST_AT)) | u64::from(u32_at(IMM_DST_AT + 4)) << 32;
    check("COPY_DATA (immediate)", IMM_DST_AT, imm, IMM_VALUE)?;
    let mut f = [0u8; 8];
    s.read_bo(b.fence, 0, &mut f)?;
    check("RELEASE_MEM", 0, u64::from_le_bytes(f), fence_value)
}

fn check(what: &str, offset: u64, got: u64, want: u64) -> Result<()> {
    if got == want {
        Ok(())
    } else {
        Err(Error::Mismatch { what: what.to_string(), offset, got, want })
    }
}

fn bytemuck_bytes(dwords: &[u32]) -> &[u8] {
    bytemuck::cast_slice(dwords)
}

#[cfg(test)]
mod tests {
    use super::*;
    use pm4rt_core::pm4::{encode_packet, WaitRegMem};
    use pm4rt_core::Fence;
    use pm4rt_sim::SimSubmitter;

    /// WRITE_DATA 8 + COPY_DATA 6 + COPY_DATA 6 + RELEASE_MEM 8 = 28 dwords, padded to 32 as
    /// Mesa's `amdgpu_pad_gfx_compute_ib` does (`ib_pad_dw_mask` 0x7): one NOP
    /// `PKT3(PKT3_NOP, 4 - 2)` = 0xC002_1000 (| SHADER_TYPE 2) and its 3 body dwords.
    #[test]
    fn smoke_ib_is_padded_to_8_dwords_with_one_type3_nop() {
        for gfx in [GfxTarget::Gfx1100, GfxTarget::Gfx1201] {
            let ib = smoke_ib(gfx, 0x1000, 0x2000, 1).unwrap();
            assert_eq!(ib.len(), 32);
            assert_eq!(ib[28], 0xC002_1002);
        }
    }

    #[test]
    fn a_timed_out_smoke_leaves_its_buffers_for_the_late_ib() {
        let mut s = SimSubmitter::new().unwrap();
        // Block the queue: an IB that waits until a flag reads 1.
        let flag = s.alloc_bo(&BoDesc::gtt(4096)).unwrap();
        let flag_va = s.map_va(flag, None).unwrap();
        let wait = encode_packet(&Packet::WaitRegMem(WaitRegMem {
            function: 3,
            mem_space: 1,
            addr: flag_va,
            reference: 1,
            mask: u32::MAX,
            poll_interval: 4,
            ..Default::default()
        }));
        let ib = s.alloc_bo(&BoDesc::gtt(4096)).unwrap();
        let ib_va = s.map_va(ib, None).unwrap();
        s.write_bo(ib, 0, bytemuck_bytes(&wait)).unwrap();
        let blocker = s.submit_ib(ib_va, wait.len() as u32).unwrap();
        let e = run(&mut s, 1, Duration::from_millis(50)).unwrap_err();
        assert!(matches!(e, Error::Core(pm4rt_core::Error::Timeout { .. })), "{e}");
        // The smoke's IB runs once the queue moves on: its buffers must still be there, or it
        // writes unmapped memory and the queue faults.
        s.write_bo(flag, 0, &1u32.to_le_bytes()).unwrap();
        let smoke_ib = Fence { seq: blocker.seq + 1 };
        s.wait_fence(smoke_ib, Duration::from_secs(5)).unwrap();
        assert_eq!(s.memory().bo_count(), 2 + 3);
    }
}
