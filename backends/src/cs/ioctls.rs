//! Typed wrappers over the amdgpu DRM ioctls only the cs tier issues (`CTX`, `CS`, `WAIT_CS`),
//! as an `impl` block on the shared [`Dev`] of [`crate::drm::ioctls`], which holds the render
//! node and the ioctls every DRM tier issues (INFO, GEM, VA).
//!
//! Every wrapper counts the ioctl it issues (success or failure) and turns a failing errno into
//! [`pm4rt_core::Error::Io`] naming its step (the `STEP_*` constants, which tests match on). Pointer fields
//! of an argument point into `user` slices passed alongside (see [`pm4rt_core::driver`]).

use pm4rt_core::abi::drm::{
    BoListEntry, BoListIn, CsChunk, CsChunkIb, CsIn, CsOut, CtxIn, CtxOutAlloc, CtxOutState,
    WaitCsIn, WaitCsOut, AMDGPU_CHUNK_ID_BO_HANDLES, AMDGPU_CHUNK_ID_IB, AMDGPU_CTX_OP_ALLOC_CTX,
    AMDGPU_CTX_OP_FREE_CTX, AMDGPU_CTX_OP_QUERY_STATE2, DRM_IOCTL_AMDGPU_CS, DRM_IOCTL_AMDGPU_CTX,
    DRM_IOCTL_AMDGPU_WAIT_CS,
};
use pm4rt_core::abi::ioctl::{arg_for, slice_bytes};
use pm4rt_core::driver::user_ptr;
use pm4rt_core::Result;

use crate::drm::ioctls::{store, Dev};
pub use crate::drm::ioctls::{
    STEP_BO_ACCESS, STEP_CLOSE, STEP_GEM_CLOSE, STEP_GEM_CREATE, STEP_GEM_MMAP, STEP_INFO_DEV,
    STEP_INFO_HW_IP, STEP_MMAP, STEP_OPEN, STEP_VA_MAP, STEP_VA_UNMAP,
};

/// Step name: `CTX` with `AMDGPU_CTX_OP_ALLOC_CTX`.
pub const STEP_CTX_ALLOC: &str = "CTX ALLOC";
/// Step name: `CTX` with `AMDGPU_CTX_OP_FREE_CTX`.
pub const STEP_CTX_FREE: &str = "CTX FREE";
/// Step name: `CTX` with `AMDGPU_CTX_OP_QUERY_STATE2`.
pub const STEP_CTX_QUERY: &str = "CTX QUERY_STATE2";
/// Step name: `CS` (command submission).
pub const STEP_CS: &str = "CS";
/// Step name: `WAIT_CS`.
pub const STEP_WAIT_CS: &str = "WAIT_CS";
/// The user buffers of one `CS` ioctl. The kernel copies all of them during the call
/// (`amdgpu_cs_pass1` copies the chunk array, each chunk and its data with `copy_from_user`),
/// so one set is reused for every submission; nothing here outlives the ioctl.
#[derive(Default)]
pub(crate) struct CsScratch {
    /// Two u64 user pointers, one per chunk.
    chunk_ptrs: [u8; 16],
    /// Two `drm_amdgpu_cs_chunk`s.
    chunks: [u8; 32],
    /// The `drm_amdgpu_cs_chunk_ib`.
    ib: [u8; 32],
    /// The `drm_amdgpu_bo_list_in` of the BO_HANDLES chunk.
    bo_list: [u8; 24],
    /// The `drm_amdgpu_bo_list_entry` array (rebuilt only when residency changes).
    pub(crate) entries: Vec<u8>,
    /// Number of entries in `entries`.
    pub(crate) entry_count: u32,
}

impl CsScratch {
    /// Replace the resident set with `handles` (GEM handles).
    pub(crate) fn set_entries(&mut self, handles: impl Iterator<Item = u32>) {
        let list: Vec<BoListEntry> =
            handles.map(|h| BoListEntry { bo_handle: h, bo_priority: 0 }).collect();
        self.entries = slice_bytes(&list).to_vec();
        self.entry_count = list.len() as u32;
    }
}

impl Dev {
    fn ctx(&mut self, step: &'static str, input: CtxIn) -> Result<Vec<u8>> {
        let mut arg = arg_for(DRM_IOCTL_AMDGPU_CTX, &input);
        self.call(step, DRM_IOCTL_AMDGPU_CTX, &mut arg, &mut [])?;
        Ok(arg)
    }

    /// `CTX ALLOC` at `priority`; returns the context id.
    pub(crate) fn ctx_alloc(&mut self, priority: i32) -> Result<u32> {
        let arg = self.ctx(
            STEP_CTX_ALLOC,
            CtxIn { op: AMDGPU_CTX_OP_ALLOC_CTX, priority, ..Default::default() },
        )?;
        Ok(Dev::decode::<CtxOutAlloc>(STEP_CTX_ALLOC, &arg)?.ctx_id)
    }

    /// `CTX FREE`.
    pub(crate) fn ctx_free(&mut self, ctx_id: u32) -> Result<()> {
        self.ctx(STEP_CTX_FREE, CtxIn { op: AMDGPU_CTX_OP_FREE_CTX, ctx_id, ..Default::default() })
            .map(|_| ())
    }

    /// `CTX QUERY_STATE2`: reset / VRAM-lost / guilty flags of the context.
    pub(crate) fn ctx_query_state2(&mut self, ctx_id: u32) -> Result<CtxOutState> {
        let arg = self.ctx(
            STEP_CTX_QUERY,
            CtxIn { op: AMDGPU_CTX_OP_QUERY_STATE2, ctx_id, ..Default::default() },
        )?;
        Dev::decode(STEP_CTX_QUERY, &arg)
    }

    /// One `CS` ioctl with an IB chunk and a BO_HANDLES chunk listing `scratch.entries`.
    /// Returns the kernel's fence sequence number (`drm_amdgpu_cs_out.handle`).
    pub(crate) fn cs_submit(
        &mut self,
        scratch: &mut CsScratch,
        ctx_id: u32,
        ib: CsChunkIb,
    ) -> Result<u64> {
        let CsScratch { chunk_ptrs, chunks, ib: ib_buf, bo_list, entries, entry_count } = scratch;
        store(ib_buf, &ib);
        // Mesa (radv / radeonsi) and libdrm fill the inline BO list this way: operation and
        // list_handle ~0, entries of sizeof(drm_amdgpu_bo_list_entry).
        store(
            bo_list,
            &BoListIn {
                operation: !0,
                list_handle: !0,
                bo_number: *entry_count,
                bo_info_size: std::mem::size_of::<BoListEntry>() as u32,
                bo_info_ptr: user_ptr(entries),
            },
        );
        let ib_chunk = CsChunk {
            chunk_id: AMDGPU_CHUNK_ID_IB,
            length_dw: (std::mem::size_of::<CsChunkIb>() / 4) as u32,
            chunk_data: user_ptr(&ib_buf[..]),
        };
        let bo_chunk = CsChunk {
            chunk_id: AMDGPU_CHUNK_ID_BO_HANDLES,
            length_dw: (std::mem::size_of::<BoListIn>() / 4) as u32,
            chunk_data: user_ptr(&bo_list[..]),
        };
        store(&mut chunks[..16], &ib_chunk);
        store(&mut chunks[16..], &bo_chunk);
        let p0 = user_ptr(&chunks[..16]);
        let p1 = user_ptr(&chunks[16..]);
        store(&mut chunk_ptrs[..8], &p0);
        store(&mut chunk_ptrs[8..], &p1);
        let input = CsIn {
            ctx_id,
            bo_list_handle: 0,
            num_chunks: 2,
            flags: 0,
            chunks: user_ptr(&chunk_ptrs[..]),
        };
        let mut arg = arg_for(DRM_IOCTL_AMDGPU_CS, &input);
        self.call(
            STEP_CS,
            DRM_IOCTL_AMDGPU_CS,
            &mut arg,
            &mut [&mut chunk_ptrs[..], &mut chunks[..], &mut ib_buf[..], &mut bo_list[..], entries],
        )?;
        Ok(Dev::decode::<CsOut>(STEP_CS, &arg)?.handle)
    }

    /// `WAIT_CS` for kernel fence `handle` until the absolute CLOCK_MONOTONIC time
    /// `deadline_ns`. Returns true when retired, false when still busy.
    pub(crate) fn wait_cs(&mut self, input: WaitCsIn) -> Result<bool> {
        let mut arg = arg_for(DRM_IOCTL_AMDGPU_WAIT_CS, &input);
        self.call(STEP_WAIT_CS, DRM_IOCTL_AMDGPU_WAIT_CS, &mut arg, &mut [])?;
        let out: WaitCsOut = Dev::decode(STEP_WAIT_CS, &arg)?;
        Ok(out.status == pm4rt_core::abi::drm::AMDGPU_WAIT_CS_RETIRED)
    }
}
