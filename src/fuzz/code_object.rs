//! Target `code_object`: the code-object loader (ELF, notes, MessagePack metadata, kernel
//! descriptors) on arbitrary bytes and on byte-level mutations of the committed kernels.
//!
//! Input: byte 0 picks the mode:
//! - `0`: the rest is the file;
//! - `1` / `2`: the committed gfx1201 / gfx1100 code object of `pm4rt-kernels`, truncated to
//!   `u32 % (len + 1)` bytes when byte 1 is odd, with the patches that follow applied
//!   (each `u32` offset modulo the length, then one byte to XOR in). Random bytes rarely form
//!   an ELF whose notes and symbols line up; small edits of a real one reach the metadata and
//!   descriptor checks;
//! - anything else: the rest is a MessagePack document ([`msgpack::decode`]).
//!
//! Checked: the loader and the MessagePack reader return (no panic); a loaded code object is
//! self-consistent (each kernel's code and descriptor lie in the image, the code is
//! executable) and the simulator's kernel registry builds from it or fails with a typed error.

use pm4rt_core::code_object::{msgpack, CodeObject, KERNEL_DESCRIPTOR_SIZE};
use pm4rt_core::GfxTarget;
use pm4rt_kernels::Target;

use super::input::Input;

/// Most patches applied to a committed code object per input.
const MAX_PATCHES: usize = 64;

/// Runs the target on one input; panics only on a broken invariant.
pub fn run(data: &[u8]) {
    let Some((&mode, rest)) = data.split_first() else { return };
    match mode {
        0 => load(rest),
        1 | 2 => {
            let base = pm4rt_kernels::code_object(if mode == 1 {
                Target::Gfx1201
            } else {
                Target::Gfx1100
            });
            let mut bytes = base.to_vec();
            let mut inp = Input::new(rest);
            let flags = inp.u8();
            if flags & 1 != 0 {
                let keep = inp.u32() as usize % (bytes.len() + 1);
                bytes.truncate(keep);
            }
            for _ in 0..MAX_PATCHES {
                if inp.is_empty() || bytes.is_empty() {
                    break;
                }
                let at = inp.u32() as usize % bytes.len();
                bytes[at] ^= inp.u8();
            }
            load(&bytes);
        }
        _ => {
            let _ = msgpack::decode(rest);
        }
    }
}

fn load(bytes: &[u8]) {
    let Ok(co) = CodeObject::parse(bytes) else { return };
    let _ = CodeObject::load(bytes, GfxTarget::Gfx1201);
    for k in co.kernels() {
        let code = co.code_bytes(k);
        assert_eq!(code.len() as u64, k.code_size, "kernel {} code outside the image", k.name);
        assert!(co.is_executable(k.entry_offset, k.code_size), "kernel {} code", k.name);
        let d = k.descriptor_offset as usize;
        assert!(
            d.checked_add(KERNEL_DESCRIPTOR_SIZE).is_some_and(|e| e <= co.image().len()),
            "kernel {} descriptor outside the image",
            k.name
        );
        assert!(k.descriptor.check(co.target()).is_ok(), "kernel {} descriptor", k.name);
        assert!(co.kernel(&k.name).is_ok());
    }
    let _ = pm4rt_sim::dispatch::KernelRegistry::from_code_object(&co);
}
