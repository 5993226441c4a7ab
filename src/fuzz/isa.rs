//! Target `isa`: the ISA decoder, disassembler and interpreter on arbitrary machine code.
//!
//! Input: byte 0 = flags (bit 0: gfx1100, else gfx1201; bits 1-2: waves in the workgroup - 1);
//! the next [`USER_SGPR_BYTES`] bytes are the user SGPRs' values (little-endian dwords, the
//! first pair replaced by [`DATA_VA`] when bit 3 is set, so loads and stores reach mapped
//! memory); the rest, up to [`MAX_CODE_BYTES`], is the code.
//!
//! Checked:
//! - [`decode_all`] returns (no panic); on success the instructions tile the code (each starts
//!   where the previous ended, none runs past the end) and each has a non-empty text form; on
//!   error the error's offset lies inside the code. [`decode_one`] at every early dword offset
//!   returns too.
//! - When the code decodes, one workgroup runs on the interpreter with a data BO at
//!   [`DATA_VA`] and [`LDS_BYTES`] of LDS, bounded by [`MAX_STEPS`] instructions: it ends, or
//!   stops with a typed [`ExecError`] (unimplemented instruction, bad branch, page fault, LDS
//!   range, step limit). Panics are bugs.

use pm4rt_core::BoHandle;
use pm4rt_sim::isa::decode::decode_one;
use pm4rt_sim::isa::{
    decode_all, run_workgroup, text, DecodeError, ExecError, Program, Target, Wave, WaveLaunch,
};
use pm4rt_sim::memory::{GpuMemory, Perms};

/// VA of the data BO the user SGPRs may point at.
pub const DATA_VA: u64 = 0x2_0000_0000;
/// Size of the data BO.
pub const DATA_BYTES: u64 = 64 * 1024;
/// Input bytes that fill the user SGPRs (s0..s7).
pub const USER_SGPR_BYTES: usize = 32;
/// Largest code taken from the input (bytes).
pub const MAX_CODE_BYTES: usize = 16 * 1024;
/// LDS of the workgroup.
pub const LDS_BYTES: usize = 4096;
/// Instructions the whole workgroup may execute.
pub const MAX_STEPS: u64 = 20_000;
/// VA the code is reported at in errors.
pub const CODE_VA: u64 = 0x3_0000_0000;

/// Runs the target on one input; panics only on a broken invariant.
pub fn run(data: &[u8]) {
    let _ = execute(data);
}

/// Runs one input: `None` when it is empty or its code does not decode, else the
/// interpreter's outcome.
pub fn execute(data: &[u8]) -> Option<Result<(), ExecError>> {
    let (&flags, rest) = data.split_first()?;
    let target = if flags & 1 != 0 { Target::Gfx11 } else { Target::Gfx12 };
    let waves = usize::from(flags >> 1 & 3) + 1;
    let (sgpr_bytes, code) = rest.split_at(rest.len().min(USER_SGPR_BYTES));
    let code = &code[..code.len().min(MAX_CODE_BYTES)];

    check_decoder(target, code);
    let program = Program::decode(target, code).ok()?;

    let mut user: Vec<u32> = sgpr_bytes
        .chunks(4)
        .map(|c| c.iter().rev().fold(0u32, |acc, &b| acc << 8 | u32::from(b)))
        .collect();
    if flags & 8 != 0 && user.len() >= 2 {
        user[0] = DATA_VA as u32;
        user[1] = (DATA_VA >> 32) as u32;
    }
    let mem = GpuMemory::new();
    mem.create_bo(BoHandle(1), DATA_BYTES).expect("fixed BO size");
    mem.map(BoHandle(1), DATA_VA, Perms::READ_WRITE).expect("fixed VA");
    let size = [32 * waves as u32, 1, 1];
    // RSRC2: USER_SGPR count in [5:1], TGID_X_EN (bit 7) so gfx11 gets a workgroup id.
    let rsrc2 = (user.len() as u32) << 1 | 1 << 7;
    let mut wave_states: Vec<Wave> = (0..waves)
        .map(|w| {
            Wave::launch(&WaveLaunch {
                target,
                user_sgprs: &user,
                rsrc2,
                workgroup: [0, 0, 0],
                first_item: 32 * w as u32,
                workgroup_size: size,
            })
        })
        .collect();
    let mut lds = vec![0u8; LDS_BYTES];
    Some(run_workgroup(&program, &mut wave_states, &mem, &mut lds, CODE_VA, MAX_STEPS))
}

/// The decoder's invariants on `code` (module docs).
fn check_decoder(target: Target, code: &[u8]) {
    match decode_all(target, code) {
        Ok(insts) => {
            let mut at = 0;
            for inst in &insts {
                assert_eq!(inst.offset, at, "instructions do not tile the code");
                at += inst.size();
                assert!(at <= code.len(), "instruction at {} runs past the end", inst.offset);
                assert!(!text::format(target, inst).is_empty(), "empty text at {}", inst.offset);
            }
        }
        Err(DecodeError::Unknown { offset, .. } | DecodeError::Truncated { offset, .. }) => {
            assert!(offset < code.len(), "error offset {offset} outside the code");
        }
        Err(DecodeError::Unaligned(n)) => assert_eq!(n, code.len()),
    }
    let dwords: Vec<u32> =
        code.chunks_exact(4).map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect();
    // Decoding from any dword (an operand or literal read as an opcode) returns too, and so
    // does decoding nothing at all.
    for start in 0..=dwords.len().min(64) {
        if let Ok(inst) = decode_one(target, &dwords[start..], start * 4) {
            assert!(inst.size() <= (dwords.len() - start) * 4, "decode_one past the end");
            let _ = text::format(target, &inst);
        }
    }
}
