//! A decoded kernel: its instructions in order, found by byte offset for branches, decoded once
//! and shared. [`ProgramCache`] keeps one [`Program`] per (target, code bytes), so a kernel
//! dispatched many times is decoded once.

use super::decode::{decode_all, DecodeError, Inst};
use super::Target;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

/// The cache's map: (target, code bytes) to the decoded program.
type ProgramMap = HashMap<(Target, Vec<u8>), Arc<Program>>;

/// The decoded instructions of one kernel's code.
#[derive(Debug, PartialEq, Eq)]
pub struct Program {
    target: Target,
    insts: Vec<Inst>,
}

impl Program {
    /// Decode `code` for `target`.
    pub fn decode(target: Target, code: &[u8]) -> Result<Program, DecodeError> {
        Ok(Program { target, insts: decode_all(target, code)? })
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
        let key = (target, code.to_vec());
        if let Some(p) = self.lock().get(&key) {
            return Ok(Arc::clone(p));
        }
        let program = Arc::new(Program::decode(target, code)?);
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
