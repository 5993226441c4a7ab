//! A decoded kernel: its instructions in order, found by byte offset for branches, decoded once
//! and shared. [`ProgramCache`] keeps one [`Program`] per (target, code bytes, how decoded),
//! so a kernel dispatched many times is decoded once.
//!
//! Two ways to decode: [`Program::decode`] takes a kernel whose code size is known (pm4rt's
//! kernels, from their code object) and refuses any byte that does not decode;
//! [`Program::decode_prefix`] takes the bytes from an entry point to the end of their mapping
//! (code the simulator knows nothing about) and decodes up to the first `s_code_end` (the
//! padding LLVM places after the last function of a code object) or the first bytes that do
//! not decode, which are kept as [`Program::tail`]: a wave that reaches them stops with that
//! error, one that never does runs normally.

use super::decode::{decode_all, decode_one, DecodeError, Inst};
use super::Target;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

/// The cache's map: (target, code bytes) to the decoded program.
type ProgramMap = HashMap<(Target, bool, Vec<u8>), Arc<Program>>;

/// The decoded instructions of one kernel's code.
#[derive(Debug, PartialEq, Eq)]
pub struct Program {
    target: Target,
    insts: Vec<Inst>,
    tail: Option<DecodeError>,
}

impl Program {
    /// Decode `code` for `target`.
    pub fn decode(target: Target, code: &[u8]) -> Result<Program, DecodeError> {
        Ok(Program { target, insts: decode_all(target, code)?, tail: None })
    }

    /// Decode the instructions at the start of `code` up to the first `s_code_end`, the end of
    /// `code`, or the first bytes that do not decode (then [`Program::tail`]).
    ///
    /// Errors: the [`DecodeError`] of the first instruction when not even that decodes.
    pub fn decode_prefix(target: Target, code: &[u8]) -> Result<Program, DecodeError> {
        let dwords: Vec<u32> =
            code.chunks_exact(4).map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect();
        let mut insts = Vec::new();
        let mut tail = None;
        let mut i = 0;
        while i < dwords.len() {
            match decode_one(target, &dwords[i..], i * 4) {
                Ok(inst) if inst.op.name == "s_code_end" => break,
                Ok(inst) => {
                    i += inst.len;
                    insts.push(inst);
                }
                Err(e) if insts.is_empty() => return Err(e),
                Err(e) => {
                    tail = Some(e);
                    break;
                }
            }
        }
        Ok(Program { target, insts, tail })
    }

    /// Why decoding stopped before the end of the bytes ([`Program::decode_prefix`] only).
    pub fn tail(&self) -> Option<&DecodeError> {
        self.tail.as_ref()
    }

    /// The target the code was decoded for.
    pub fn target(&self) -> Target {
        self.target
    }

    /// The instructions in code order.
    pub fn insts(&self) -> &[Inst] {
        &self.insts
    }

    /// Index of the instruction starting at byte `offset`, if one does.
    pub fn index_of(&self, offset: usize) -> Option<usize> {
        self.insts.binary_search_by_key(&offset, |i| i.offset).ok()
    }
}

/// Decoded programs shared between dispatches, keyed by target and code bytes.
#[derive(Debug, Default)]
pub struct ProgramCache {
    programs: Mutex<ProgramMap>,
}

impl ProgramCache {
    /// An empty cache.
    pub fn new() -> ProgramCache {
        ProgramCache::default()
    }

    /// The program of `code`, decoding it on first use.
    pub fn get(&self, target: Target, code: &[u8]) -> Result<Arc<Program>, DecodeError> {
        self.get_with(target, code, false)
    }

    /// The program [`Program::decode_prefix`] makes of `code`, decoding it on first use.
    pub fn get_prefix(&self, target: Target, code: &[u8]) -> Result<Arc<Program>, DecodeError> {
        self.get_with(target, code, true)
    }

    fn get_with(
        &self,
        target: Target,
        code: &[u8],
        prefix: bool,
    ) -> Result<Arc<Program>, DecodeError> {
        let key = (target, prefix, code.to_vec());
        if let Some(p) = self.lock().get(&key) {
            return Ok(Arc::clone(p));
        }
        let program = Arc::new(if prefix {
            Program::decode_prefix(target, code)?
        } else {
            Program::decode(target, code)?
        });
        self.lock().insert(key, Arc::clone(&program));
        Ok(program)
    }

    /// Number of distinct programs decoded so far.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// True when nothing has been decoded yet.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn lock(&self) -> MutexGuard<'_, ProgramMap> {
        // A poisoned lock only means another thread panicked while inserting; the map is
        // still a valid cache.
        self.programs.lock().unwrap_or_else(|e| e.into_inner())
    }
}
