//! Typed wrappers over the amdgpu DRM ioctls the cs tier issues, one function per step.
//!
//! Every wrapper counts the ioctl it issues (success or failure) and turns a failing errno into
//! [`Error::Io`] naming its step (the `STEP_*` constants, which tests match on). Pointer fields
//! of an argument point into `user` slices passed alongside (see [`pm4rt_core::driver`]).

use std::sync::Arc;

use bytemuck::Pod;
use pm4rt_core::abi::drm::{
    BoListEntry, BoListIn, CsChunk, CsChunkIb, CsIn, CsOut, CtxIn, CtxOutAlloc, CtxOutState,
    GemClose, GemCreateIn, GemCreateOut, GemMmapIn, GemMmapOut, GemVa, Info, InfoQueryHwIp,
    WaitCsIn, WaitCsOut, AMDGPU_CHUNK_ID_BO_HANDLES, AMDGPU_CHUNK_ID_IB, AMDGPU_CTX_OP_ALLOC_CTX,
    AMDGPU_CTX_OP_FREE_CTX, AMDGPU_CTX_OP_QUERY_STATE2, AMDGPU_VA_OP_MAP, AMDGPU_VA_OP_UNMAP,
    DRM_IOCTL_AMDGPU_CS, DRM_IOCTL_AMDGPU_CTX, DRM_IOCTL_AMDGPU_GEM_CREATE,
    DRM_IOCTL_AMDGPU_GEM_MMAP, DRM_IOCTL_AMDGPU_GEM_VA, DRM_IOCTL_AMDGPU_INFO,
    DRM_IOCTL_AMDGPU_WAIT_CS, DRM_IOCTL_GEM_CLOSE,
};
use pm4rt_core::abi::ioctl::{arg_for, decode_arg, decode_arg_zext, slice_bytes};
use pm4rt_core::driver::user_ptr;
use pm4rt_core::{Driver, Errno, Error, Fd, Result};

/// Step name: opening the render node.
pub const STEP_OPEN: &str = "open";
/// Step name: `INFO` with `AMDGPU_INFO_HW_IP_INFO`.
pub const STEP_INFO_HW_IP: &str = "INFO HW_IP_INFO";
/// Step name: `INFO` with `AMDGPU_INFO_DEV_INFO`.
pub const STEP_INFO_DEV: &str = "INFO DEV_INFO";
/// Step name: `CTX` with `AMDGPU_CTX_OP_ALLOC_CTX`.
pub const STEP_CTX_ALLOC: &str = "CTX ALLOC";
/// Step name: `CTX` with `AMDGPU_CTX_OP_FREE_CTX`.
pub const STEP_CTX_FREE: &str = "CTX FREE";
/// Step name: `CTX` with `AMDGPU_CTX_OP_QUERY_STATE2`.
pub const STEP_CTX_QUERY: &str = "CTX QUERY_STATE2";
/// Step name: `GEM_CREATE`.
pub const STEP_GEM_CREATE: &str = "GEM_CREATE";
/// Step name: `GEM_MMAP` (asking for the mmap offset).
pub const STEP_GEM_MMAP: &str = "GEM_MMAP";
/// Step name: mapping a BO into the CPU address space.
pub const STEP_MMAP: &str = "mmap";
/// Step name: `GEM_VA` with `AMDGPU_VA_OP_MAP`.
pub const STEP_VA_MAP: &str = "GEM_VA MAP";
/// Step name: `GEM_VA` with `AMDGPU_VA_OP_UNMAP`.
pub const STEP_VA_UNMAP: &str = "GEM_VA UNMAP";
/// Step name: DRM core `GEM_CLOSE`.
pub const STEP_GEM_CLOSE: &str = "GEM_CLOSE";
/// Step name: `CS` (command submission).
pub const STEP_CS: &str = "CS";
/// Step name: `WAIT_CS`.
pub const STEP_WAIT_CS: &str = "WAIT_CS";
/// Step name: closing the render node.
pub const STEP_CLOSE: &str = "close";
/// Step name: a CPU read or write through a BO's mapping.
pub const STEP_BO_ACCESS: &str = "BO CPU access";

/// The open render node: driver, descriptor and the ioctl counter.
pub(crate) struct Dev {
    driver: Arc<dyn Driver>,
    fd: Fd,
    ioctls: u64,
}

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

fn store<T: Pod>(dst: &mut [u8], value: &T) {
    let bytes = bytemuck::bytes_of(value);
    dst[..bytes.len()].copy_from_slice(bytes);
}

impl Dev {
    /// Open `path` through `driver`. Counts no ioctl.
    pub(crate) fn open(driver: Arc<dyn Driver>, path: &str) -> Result<Dev> {
        let fd = driver.open(path).map_err(|e| Error::io(STEP_OPEN, e.0))?;
        Ok(Dev { driver, fd, ioctls: 0 })
    }

    /// Ioctls issued so far.
    pub(crate) fn ioctls(&self) -> u64 {
        self.ioctls
    }

    /// The driver (for mmap).
    pub(crate) fn driver(&self) -> &Arc<dyn Driver> {
        &self.driver
    }

    /// The render-node descriptor.
    pub(crate) fn fd(&self) -> Fd {
        self.fd
    }

    fn call(
        &mut self,
        step: &'static str,
        request: u32,
        arg: &mut [u8],
        user: &mut [&mut [u8]],
    ) -> Result<()> {
        self.ioctls += 1;
        self.driver.ioctl(self.fd, request, arg, user).map_err(|e| Error::io(step, e.0))
    }

    fn decode<T: Pod>(step: &'static str, arg: &[u8]) -> Result<T> {
        // `arg_for` always sizes the buffer for the request, so this cannot fail; stay typed.
        decode_arg(arg).map_err(|_| Error::io(step, Errno::EFAULT.0))
    }

    /// `INFO` query `query` (with the `query_hw_ip` view when `hw_ip` is given) into a `T`.
    /// A shorter answer (older kernel) leaves the tail zero.
    pub(crate) fn info<T: Pod>(
        &mut self,
        step: &'static str,
        query: u32,
        hw_ip: InfoQueryHwIp,
    ) -> Result<T> {
        let mut out = vec![0u8; std::mem::size_of::<T>()];
        let info = Info::with_hw_ip(query, hw_ip, user_ptr(&out), out.len() as u32);
        let mut arg = arg_for(DRM_IOCTL_AMDGPU_INFO, &info);
        self.call(step, DRM_IOCTL_AMDGPU_INFO, &mut arg, &mut [&mut out[..]])?;
        Ok(decode_arg_zext(&out))
    }

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
        Ok(Self::decode::<CtxOutAlloc>(STEP_CTX_ALLOC, &arg)?.ctx_id)
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
        Self::decode(STEP_CTX_QUERY, &arg)
    }

    /// `GEM_CREATE`; returns the GEM handle.
    pub(crate) fn gem_create(&mut self, input: GemCreateIn) -> Result<u32> {
        let mut arg = arg_for(DRM_IOCTL_AMDGPU_GEM_CREATE, &input);
        self.call(STEP_GEM_CREATE, DRM_IOCTL_AMDGPU_GEM_CREATE, &mut arg, &mut [])?;
        Ok(Self::decode::<GemCreateOut>(STEP_GEM_CREATE, &arg)?.handle)
    }

    /// `GEM_MMAP`: the offset at which to mmap the render node for `handle`.
    pub(crate) fn gem_mmap_offset(&mut self, handle: u32) -> Result<u64> {
        let mut arg = arg_for(DRM_IOCTL_AMDGPU_GEM_MMAP, &GemMmapIn { handle, pad: 0 });
        self.call(STEP_GEM_MMAP, DRM_IOCTL_AMDGPU_GEM_MMAP, &mut arg, &mut [])?;
        Ok(Self::decode::<GemMmapOut>(STEP_GEM_MMAP, &arg)?.addr_ptr)
    }

    fn gem_va(&mut self, step: &'static str, va: GemVa) -> Result<()> {
        let mut arg = arg_for(DRM_IOCTL_AMDGPU_GEM_VA, &va);
        self.call(step, DRM_IOCTL_AMDGPU_GEM_VA, &mut arg, &mut [])
    }

    /// `GEM_VA MAP` of the whole BO `handle` (`size` bytes) at `va` with `flags`.
    pub(crate) fn va_map(&mut self, handle: u32, va: u64, size: u64, flags: u32) -> Result<()> {
        self.gem_va(
            STEP_VA_MAP,
            GemVa {
                handle,
                operation: AMDGPU_VA_OP_MAP,
                flags,
                va_address: va,
                offset_in_bo: 0,
                map_size: size,
                ..Default::default()
            },
        )
    }

    /// `GEM_VA UNMAP` of the mapping of `handle` at `va` (same size and flags as mapped, the
    /// way libdrm's `amdgpu_bo_va_op` repeats them; the kernel only needs handle and VA).
    pub(crate) fn va_unmap(&mut self, handle: u32, va: u64, size: u64, flags: u32) -> Result<()> {
        self.gem_va(
            STEP_VA_UNMAP,
            GemVa {
                handle,
                operation: AMDGPU_VA_OP_UNMAP,
                flags,
                va_address: va,
                offset_in_bo: 0,
                map_size: size,
                ..Default::default()
            },
        )
    }

    /// DRM core `GEM_CLOSE`.
    pub(crate) fn gem_close(&mut self, handle: u32) -> Result<()> {
        let mut arg = arg_for(DRM_IOCTL_GEM_CLOSE, &GemClose { handle, pad: 0 });
        self.call(STEP_GEM_CLOSE, DRM_IOCTL_GEM_CLOSE, &mut arg, &mut [])
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
        Ok(Self::decode::<CsOut>(STEP_CS, &arg)?.handle)
    }

    /// `WAIT_CS` for kernel fence `handle` until the absolute CLOCK_MONOTONIC time
    /// `deadline_ns`. Returns true when retired, false when still busy.
    pub(crate) fn wait_cs(&mut self, input: WaitCsIn) -> Result<bool> {
        let mut arg = arg_for(DRM_IOCTL_AMDGPU_WAIT_CS, &input);
        self.call(STEP_WAIT_CS, DRM_IOCTL_AMDGPU_WAIT_CS, &mut arg, &mut [])?;
        let out: WaitCsOut = Self::decode(STEP_WAIT_CS, &arg)?;
        Ok(out.status == pm4rt_core::abi::drm::AMDGPU_WAIT_CS_RETIRED)
    }

    /// Close the render node.
    pub(crate) fn close(&self) -> Result<()> {
        self.driver.close(self.fd).map_err(|e| Error::io(STEP_CLOSE, e.0))
    }
}
