//! [`Builder`]: a bounds-checked writer of compute PM4 packets into a caller's dword buffer
//! (or a growable vector).

use super::encode::{
    invalid, validate_copy_data, validate_event_write, validate_indirect_buffer,
    validate_release_mem, validate_set_sh_reg, validate_wait_reg_mem, validate_write_data,
    write_acquire_mem, write_copy_data, write_indirect_buffer, write_release_mem, write_set_sh_reg,
    write_unchecked, write_wait_reg_mem, write_write_data, EncodeError, OutOfSpace,
};
use super::packet::{AcquireMem, CopyData, IndirectBuffer, Packet, ReleaseMem, WaitRegMem};
use super::tables::{event, fields as f, header, op, regs, sel};
use crate::submitter::GfxTarget;

/// RELEASE_MEM GCR_CNTL (dw1 bits \[24:12\], stored shifted down by 12) of the end-of-pipe
/// fence on gfx10/gfx11: GLM_WB (dw1 bit 12) | GLM_INV (13) | GL2_WB (21) | SEQ = 1 (22), as
/// the kernel's `gfx_v11_0_ring_emit_fence` ("GLM_INV must be set with GLM_WB").
pub const FENCE_GCR_GFX11: u16 = 0x603;
/// RELEASE_MEM GCR_CNTL of the end-of-pipe fence on gfx12: GL2_WB (dw1 bit 21) | SEQ = 1
/// (22), as the kernel's `gfx_v12_0_ring_emit_fence` (which, unlike gfx11's, sets no GLM
/// bit); invalidations belong in an ACQUIRE_MEM before the next work, not in the fence.
pub const FENCE_GCR_GFX12: u16 = 0x600;
/// RELEASE_MEM CACHE_POLICY of the fence write (3, as the kernel's gfx11/gfx12 fences).
pub const FENCE_CACHE_POLICY: u8 = 3;
/// ACQUIRE_MEM GCR_CNTL full write-back + invalidate on gfx10/gfx11: tinygrad's 0xC3F1 =
/// GLI_INV=1 | GLM_WB | GLM_INV | GLK_WB | GLK_INV | GLV_INV | GL1_INV | GL2_INV | GL2_WB.
pub const ACQUIRE_FULL_GCR_GFX11: u32 = 0xC3F1;
/// ACQUIRE_MEM GCR_CNTL full write-back + invalidate on gfx12: [`ACQUIRE_FULL_GCR_GFX11`]
/// without GLM_WB (bit 4), GLM_INV (5) and GL1_INV (9) = 0xC1C1. RDNA4 has no GL1 and no GLM
/// to act on; the bits are accepted (the kernel's `gfx_v12_0_emit_mem_sync` sets them) but not
/// needed.
pub const ACQUIRE_FULL_GCR_GFX12: u32 = 0xC1C1;
/// ACQUIRE_MEM COHER_SIZE covering everything: dw2 = 0xFFFFFFFF, dw3 COHER_SIZE_HI \[7:0\] = 0xFF.
pub const COHER_SIZE_ALL: u64 = 0xFF_FFFF_FFFF;
/// ACQUIRE_MEM POLL_INTERVAL used by the convenience helpers (0xA, as the kernel's
/// `gfx_v11_0_emit_mem_sync` / `gfx_v12_0_emit_mem_sync`).
pub const ACQUIRE_POLL_INTERVAL: u16 = 0xA;

/// Compute IBs are padded to a multiple of this many dwords, as Mesa does:
/// `src/amd/common/ac_gpu_info.c: ac_query_gpu_info` sets
/// `info->ip[AMD_IP_COMPUTE].ib_pad_dw_mask = 0x7` ("dword padding minus 1") and the winsys
/// (`src/gallium/winsys/amdgpu/drm/amdgpu_cs.c: amdgpu_pad_gfx_compute_ib`) pads each IB with
/// it. See [`Builder::pad_ib`].
pub const IB_PAD_DWORDS: usize = 8;

/// Whether a fence raises an interrupt after its write.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum FenceInterrupt {
    /// No interrupt (INT_SEL 0): the host polls the fence memory.
    #[default]
    None,
    /// Interrupt after the write is confirmed (INT_SEL 2), with INT_CTXID = `ctxid` (a KFD
    /// event id on KFD queues).
    AfterWrite {
        /// Value for dw7 INT_CTXID.
        ctxid: u32,
    },
}

enum Sink<'a> {
    Slice { buf: &'a mut [u32], len: usize },
    Vec(Vec<u32>),
}

/// Writes compute PM4 packets for one [`GfxTarget`] into a caller's `&mut [u32]`
/// ([`Builder::new`]) or into a growable vector ([`Builder::growable`]).
///
/// Every method either appends whole packets or returns an error and leaves the buffer and
/// [`Builder::len`] unchanged: it never writes past the buffer.
///
/// # Examples
///
/// ```
/// use pm4rt_core::pm4::Builder;
/// use pm4rt_core::GfxTarget;
///
/// let mut b = Builder::growable(GfxTarget::Gfx1201);
/// b.write_data(0x1_0000_0000, &[42])?;
/// let ib = b.into_vec();
/// // A type-3 header (bits 31:30 = 3) whose opcode (bits 15:8) is IT_WRITE_DATA, 0x37
/// // (Mesa `src/amd/common/sid.h`: `PKT3_WRITE_DATA`).
/// assert_eq!(ib[0] >> 30, 3);
/// assert_eq!((ib[0] >> 8) & 0xFF, 0x37);
/// assert_eq!(*ib.last().unwrap(), 42);
/// # Ok::<(), pm4rt_core::pm4::EncodeError>(())
/// ```
pub struct Builder<'a> {
    sink: Sink<'a>,
    gfx: GfxTarget,
}

impl std::fmt::Debug for Builder<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Builder")
            .field("gfx", &self.gfx)
            .field("len", &self.len())
            .field("capacity", &self.capacity())
            .finish()
    }
}

impl Builder<'static> {
    /// A builder that appends to its own growing vector (never out of space).
    pub fn growable(gfx: GfxTarget) -> Self {
        Builder { sink: Sink::Vec(Vec::new()), gfx }
    }

    /// A growable builder with room for `dwords` before it reallocates.
    pub fn with_capacity(gfx: GfxTarget, dwords: usize) -> Self {
        Builder { sink: Sink::Vec(Vec::with_capacity(dwords)), gfx }
    }
}

impl<'a> Builder<'a> {
    /// A builder writing from the start of `buf` (whose contents are overwritten as packets are
    /// appended).
    pub fn new(buf: &'a mut [u32], gfx: GfxTarget) -> Self {
        Builder { sink: Sink::Slice { buf, len: 0 }, gfx }
    }

    /// The target whose cache-control bits the builder uses.
    pub fn gfx(&self) -> GfxTarget {
        self.gfx
    }

    /// Forget everything written (the buffer's contents are left as they are).
    pub fn reset(&mut self) {
        match &mut self.sink {
            Sink::Slice { len, .. } => *len = 0,
            Sink::Vec(v) => v.clear(),
        }
    }

    /// Dwords written so far.
    pub fn len(&self) -> usize {
        match &self.sink {
            Sink::Slice { len, .. } => *len,
            Sink::Vec(v) => v.len(),
        }
    }

    /// True if nothing has been written.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Total dwords the buffer holds (`usize::MAX` for a growable builder).
    pub fn capacity(&self) -> usize {
        match &self.sink {
            Sink::Slice { buf, .. } => buf.len(),
            Sink::Vec(_) => usize::MAX,
        }
    }

    /// Dwords still free (`usize::MAX - len` for a growable builder).
    pub fn remaining(&self) -> usize {
        self.capacity() - self.len()
    }

    /// The dwords written so far.
    pub fn written(&self) -> &[u32] {
        match &self.sink {
            Sink::Slice { buf, len } => &buf[..*len],
            Sink::Vec(v) => v,
        }
    }

    /// The written dwords as a vector (copied for a slice builder).
    pub fn into_vec(self) -> Vec<u32> {
        match self.sink {
            Sink::Slice { buf, len } => buf[..len].to_vec(),
            Sink::Vec(v) => v,
        }
    }

    fn check_space(&self, n: usize) -> Result<(), EncodeError> {
        let available = self.remaining();
        if n > available {
            Err(OutOfSpace { needed: n, available }.into())
        } else {
            Ok(())
        }
    }

    /// Append `n` dwords (space must have been checked) and return them for filling.
    fn take(&mut self, n: usize) -> &mut [u32] {
        match &mut self.sink {
            Sink::Slice { buf, len } => {
                let s = &mut buf[*len..*len + n];
                *len += n;
                s
            }
            Sink::Vec(v) => {
                let start = v.len();
                v.resize(start + n, 0);
                &mut v[start..]
            }
        }
    }

    fn reserve(&mut self, n: usize) -> Result<&mut [u32], EncodeError> {
        self.check_space(n)?;
        Ok(self.take(n))
    }

    /// Append any packet.
    ///
    /// # Errors
    /// [`EncodeError::Invalid`] if [`Packet::validate`] fails; [`EncodeError::OutOfSpace`] if it
    /// does not fit.
    pub fn packet(&mut self, p: &Packet) -> Result<(), EncodeError> {
        p.validate()?;
        let n = p.len_dwords();
        write_unchecked(p, self.reserve(n)?);
        Ok(())
    }

    /// Emit `total` dwords of NOPs (as few packets as possible; 1 dword = header-only NOP).
    fn nop_dwords(&mut self, total: usize) -> Result<(), EncodeError> {
        self.check_space(total)?;
        let mut left = total;
        while left > 0 {
            let take = left.min(header::MAX_BODY);
            let out = self.take(take);
            if take == 1 {
                out[0] = header::nop_header_only();
            } else {
                out[0] = header::pkt3(op::NOP, take - 1);
                out[1..].fill(0);
            }
            left -= take;
        }
        Ok(())
    }

    /// A NOP with `payload_dwords` zero body dwords (`0` = the 1-dword header-only NOP), i.e.
    /// `payload_dwords + 1` dwords in all; payloads over 0x3FFF dwords become several NOPs
    /// of the same total length.
    ///
    /// # Errors
    /// [`EncodeError::OutOfSpace`].
    pub fn nop(&mut self, payload_dwords: usize) -> Result<(), EncodeError> {
        let total = payload_dwords
            .checked_add(1)
            .ok_or_else(|| invalid("NOP", "payload length overflows"))?;
        self.nop_dwords(total)
    }

    /// Pad with NOPs until [`Builder::len`] is a multiple of `alignment_dwords` (one packet
    /// where possible; a single missing dword is a header-only NOP).
    ///
    /// # Errors
    /// [`EncodeError::Invalid`] for alignment 0; [`EncodeError::OutOfSpace`].
    pub fn pad_to(&mut self, alignment_dwords: usize) -> Result<(), EncodeError> {
        if alignment_dwords == 0 {
            return Err(invalid("NOP", "alignment must be at least 1 dword"));
        }
        let rem = self.len() % alignment_dwords;
        if rem == 0 {
            return Ok(());
        }
        self.nop_dwords(alignment_dwords - rem)
    }

    /// Pad the IB to a multiple of [`IB_PAD_DWORDS`] the way Mesa's
    /// `amdgpu_pad_gfx_compute_ib` does: nothing when aligned, else one type-3 NOP of the
    /// missing length (`PKT3(PKT3_NOP, remaining - 2)`, the header-only NOP for one dword).
    /// Mesa uses the type-2 filler only with `gfx_ib_pad_with_type2`, which
    /// `ac_gpu_info.c` sets on GFX6 alone, never on gfx11/gfx12.
    ///
    /// # Errors
    /// [`EncodeError::OutOfSpace`].
    pub fn pad_ib(&mut self) -> Result<(), EncodeError> {
        self.pad_to(IB_PAD_DWORDS)
    }

    /// SET_SH_REG: write `values` to consecutive SH registers starting at `offset` (e.g.
    /// [`regs::COMPUTE_PGM_LO`]). The SH space (0x400 registers) always fits one packet.
    ///
    /// # Errors
    /// [`EncodeError::Invalid`] if `values` is empty or the registers leave the SH space
    /// (offset + count > 0x400); [`EncodeError::OutOfSpace`].
    pub fn set_sh_reg(&mut self, offset: u16, values: &[u32]) -> Result<(), EncodeError> {
        validate_set_sh_reg(offset, values.len())?;
        write_set_sh_reg(self.reserve(values.len() + 2)?, offset, values);
        Ok(())
    }

    /// SET_SH_REG of one register.
    ///
    /// # Errors
    /// As [`Builder::set_sh_reg`].
    pub fn set_sh_reg_one(&mut self, offset: u16, value: u32) -> Result<(), EncodeError> {
        self.set_sh_reg(offset, &[value])
    }

    /// Write a 64-bit value to COMPUTE_USER_DATA_`slot` (low dword) and `slot + 1` (high).
    ///
    /// # Errors
    /// [`EncodeError::Invalid`] if `slot + 1 > 15`; [`EncodeError::OutOfSpace`].
    pub fn set_user_data_u64(&mut self, slot: u8, value: u64) -> Result<(), EncodeError> {
        if u16::from(slot) + 1 >= regs::COMPUTE_USER_DATA_COUNT {
            return Err(invalid(
                "SET_SH_REG",
                format!("user-data slots {slot}..={} exceed 15", slot as u16 + 1),
            ));
        }
        self.set_sh_reg(
            regs::COMPUTE_USER_DATA_0 + u16::from(slot),
            &[value as u32, (value >> 32) as u32],
        )
    }

    /// DISPATCH_DIRECT of `dims` workgroups (threads with USE_THREAD_DIMENSIONS) with the
    /// COMPUTE_DISPATCH_INITIATOR value `initiator` (e.g. 0x5, wave32 adds 0x8000).
    ///
    /// # Errors
    /// [`EncodeError::OutOfSpace`].
    pub fn dispatch_direct(&mut self, dims: [u32; 3], initiator: u32) -> Result<(), EncodeError> {
        let out = self.reserve(5)?;
        out[0] = header::pkt3(op::DISPATCH_DIRECT, 4);
        out[1..4].copy_from_slice(&dims);
        out[4] = initiator;
        Ok(())
    }

    /// RELEASE_MEM with caller-chosen fields.
    ///
    /// # Errors
    /// [`EncodeError::Invalid`] for fields too wide, DATA_SEL 5..7 or a misaligned address;
    /// [`EncodeError::OutOfSpace`].
    pub fn release_mem(&mut self, r: ReleaseMem) -> Result<(), EncodeError> {
        validate_release_mem(&r)?;
        write_release_mem(self.reserve(8)?, &r);
        Ok(())
    }

    /// The [`ReleaseMem`] of [`Builder::release_mem_fence`].
    pub fn fence_packet(gfx: GfxTarget, addr: u64, value: u64, int: FenceInterrupt) -> ReleaseMem {
        let (int_sel, int_ctxid) = match int {
            FenceInterrupt::None => (sel::INT_NONE, 0),
            FenceInterrupt::AfterWrite { ctxid } => (sel::INT_AFTER_WRITE_CONFIRM, ctxid),
        };
        ReleaseMem {
            event_type: event::CACHE_FLUSH_AND_INV_TS_EVENT,
            event_index: event::INDEX_END_OF_PIPE,
            gcr_cntl: if gfx.is_gfx12() { FENCE_GCR_GFX12 } else { FENCE_GCR_GFX11 },
            cache_policy: FENCE_CACHE_POLICY,
            dw1_flags: 0,
            dst_sel: sel::RM_DST_MEMORY,
            int_sel,
            data_sel: sel::DATA_64,
            addr,
            data: value,
            int_ctxid,
        }
    }

    /// The end-of-pipe compute fence: an 8-dword RELEASE_MEM with event 0x14
    /// (CACHE_FLUSH_AND_INV_TS_EVENT), index 5, GCR per target ([`FENCE_GCR_GFX11`] /
    /// [`FENCE_GCR_GFX12`]), cache policy 3, DATA_SEL 2 writing the 64-bit `value` to `addr`
    /// once all prior work is done and written back to memory.
    ///
    /// # Errors
    /// [`EncodeError::Invalid`] if `addr` is not 8-byte aligned; [`EncodeError::OutOfSpace`].
    pub fn release_mem_fence(
        &mut self,
        addr: u64,
        value: u64,
        int: FenceInterrupt,
    ) -> Result<(), EncodeError> {
        self.release_mem(Self::fence_packet(self.gfx, addr, value, int))
    }

    /// ACQUIRE_MEM with caller-chosen fields.
    ///
    /// # Errors
    /// [`EncodeError::OutOfSpace`] (every field is representable).
    pub fn acquire_mem(&mut self, a: AcquireMem) -> Result<(), EncodeError> {
        write_acquire_mem(self.reserve(8)?, &a);
        Ok(())
    }

    /// The [`AcquireMem`] of [`Builder::acquire_mem_full`].
    pub fn acquire_full_packet(gfx: GfxTarget) -> AcquireMem {
        AcquireMem {
            coher_size: COHER_SIZE_ALL,
            coher_base: 0,
            poll_interval: ACQUIRE_POLL_INTERVAL,
            gcr_cntl: if gfx.is_gfx12() { ACQUIRE_FULL_GCR_GFX12 } else { ACQUIRE_FULL_GCR_GFX11 },
        }
    }

    /// ACQUIRE_MEM that writes back and invalidates every cache over the whole address range
    /// ([`ACQUIRE_FULL_GCR_GFX11`] / [`ACQUIRE_FULL_GCR_GFX12`]): put it before a dispatch
    /// that reads data written by the host or by earlier work.
    ///
    /// # Errors
    /// [`EncodeError::OutOfSpace`].
    pub fn acquire_mem_full(&mut self) -> Result<(), EncodeError> {
        self.acquire_mem(Self::acquire_full_packet(self.gfx))
    }

    /// WRITE_DATA of `data` to memory at `addr` (DST_SEL 5, WR_CONFIRM set, incrementing).
    /// Note: not a completion fence after a dispatch (use [`Builder::release_mem_fence`]).
    ///
    /// # Errors
    /// [`EncodeError::Invalid`] for empty or over-long `data` (max 0x3FFD) or a misaligned
    /// `addr`; [`EncodeError::OutOfSpace`].
    pub fn write_data(&mut self, addr: u64, data: &[u32]) -> Result<(), EncodeError> {
        self.write_data_ext(sel::MEMORY, addr, data, true, false)
    }

    /// WRITE_DATA with an explicit DST_SEL, WR_CONFIRM and ADDR_INCR (`no_increment`).
    ///
    /// # Errors
    /// As [`Builder::write_data`], plus a DST_SEL wider than 4 bits.
    pub fn write_data_ext(
        &mut self,
        dst_sel: u8,
        addr: u64,
        data: &[u32],
        wr_confirm: bool,
        no_increment: bool,
    ) -> Result<(), EncodeError> {
        validate_write_data(dst_sel, 0, addr, data.len())?;
        let out = self.reserve(4 + data.len())?;
        write_write_data(out, dst_sel, no_increment, wr_confirm, 0, addr, data);
        Ok(())
    }

    /// COPY_DATA with caller-chosen fields.
    ///
    /// # Errors
    /// [`EncodeError::Invalid`] for fields too wide or misaligned memory addresses;
    /// [`EncodeError::OutOfSpace`].
    pub fn copy_data(&mut self, c: CopyData) -> Result<(), EncodeError> {
        validate_copy_data(&c)?;
        write_copy_data(self.reserve(6)?, &c);
        Ok(())
    }

    /// COPY_DATA memory (TC_L2) -> memory, 32 or 64 bits, with WR_CONFIRM.
    ///
    /// # Errors
    /// As [`Builder::copy_data`].
    pub fn copy_mem_to_mem(
        &mut self,
        src: u64,
        dst: u64,
        count64: bool,
    ) -> Result<(), EncodeError> {
        self.copy_data(CopyData {
            src_sel: sel::TC_L2,
            dst_sel: sel::MEMORY,
            count64,
            wr_confirm: true,
            src,
            dst,
        })
    }

    /// COPY_DATA of an immediate `value` (its low 32 bits unless `count64`) to memory at `dst`,
    /// with WR_CONFIRM.
    ///
    /// # Errors
    /// As [`Builder::copy_data`].
    pub fn copy_imm_to_mem(
        &mut self,
        value: u64,
        dst: u64,
        count64: bool,
    ) -> Result<(), EncodeError> {
        let src = if count64 { value } else { value & 0xFFFF_FFFF };
        self.copy_data(CopyData {
            src_sel: sel::SRC_IMMEDIATE,
            dst_sel: sel::MEMORY,
            count64,
            wr_confirm: true,
            src,
            dst,
        })
    }

    /// WAIT_REG_MEM with caller-chosen fields.
    ///
    /// # Errors
    /// [`EncodeError::Invalid`] for fields too wide, FUNCTION 7 or a misaligned memory
    /// address; [`EncodeError::OutOfSpace`].
    pub fn wait_reg_mem(&mut self, w: WaitRegMem) -> Result<(), EncodeError> {
        validate_wait_reg_mem(&w)?;
        write_wait_reg_mem(self.reserve(7)?, &w);
        Ok(())
    }

    /// Wait until `(mem[addr] & mask) == reference`, polling every `poll_interval`.
    ///
    /// # Errors
    /// As [`Builder::wait_reg_mem`].
    pub fn wait_mem_eq(
        &mut self,
        addr: u64,
        reference: u32,
        mask: u32,
        poll_interval: u16,
    ) -> Result<(), EncodeError> {
        self.wait_reg_mem(WaitRegMem {
            function: 3,
            mem_space: sel::SPACE_MEMORY,
            operation: 0,
            addr,
            reference,
            mask,
            poll_interval,
        })
    }

    /// EVENT_WRITE of `event_type` with `event_index`.
    ///
    /// # Errors
    /// [`EncodeError::Invalid`] for values wider than 6 / 4 bits; [`EncodeError::OutOfSpace`].
    pub fn event_write(&mut self, event_type: u8, event_index: u8) -> Result<(), EncodeError> {
        validate_event_write(event_type, event_index)?;
        let out = self.reserve(2)?;
        out[0] = header::pkt3(op::EVENT_WRITE, 1);
        out[1] =
            f::EW_EVENT_TYPE.put(event_type.into()) | f::EW_EVENT_INDEX.put(event_index.into());
        Ok(())
    }

    /// EVENT_WRITE CS_PARTIAL_FLUSH (type 7, index 4): wait for earlier dispatches' waves.
    ///
    /// # Errors
    /// [`EncodeError::OutOfSpace`].
    pub fn cs_partial_flush(&mut self) -> Result<(), EncodeError> {
        self.event_write(event::CS_PARTIAL_FLUSH, event::INDEX_CS_PARTIAL_FLUSH)
    }

    /// INDIRECT_BUFFER running `size_dw` dwords at `va` (VALID set, VMID 0); `chain` makes it
    /// a chained IB (no return).
    ///
    /// # Errors
    /// [`EncodeError::Invalid`] for a misaligned `va` or `size_dw` over 20 bits;
    /// [`EncodeError::OutOfSpace`].
    pub fn indirect_buffer(
        &mut self,
        va: u64,
        size_dw: u32,
        chain: bool,
    ) -> Result<(), EncodeError> {
        let ib = IndirectBuffer { va, size_dw, chain, valid: true, vmid: 0 };
        validate_indirect_buffer(&ib)?;
        write_indirect_buffer(self.reserve(4)?, &ib);
        Ok(())
    }
}
