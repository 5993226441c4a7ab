//! The facade's error type: a core [`pm4rt_core::Error`] or a failure of the engine layer.

/// Result alias for the facade.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything the facade (runtime, engine ops, CLI helpers) can report.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A submitter or codec failure.
    #[error(transparent)]
    Core(#[from] pm4rt_core::Error),
    /// A value the GPU (or simulator) wrote is not the one expected.
    #[error("{what} at offset {offset:#x} wrote {got:#x}, expected {want:#x}")]
    Mismatch {
        /// Which operation produced the value.
        what: String,
        /// Byte offset inside its buffer.
        offset: u64,
        /// The value found.
        got: u64,
        /// The value expected.
        want: u64,
    },
    /// A tier name that is not umq, kfd, cs or sim.
    #[error("unknown tier {0:?} (expected umq, kfd, cs or sim)")]
    InvalidTier(String),
    /// An `--emulate` preset name that does not exist.
    #[error("unknown preset {name:?} (known: {known})")]
    UnknownPreset {
        /// The name asked for.
        name: String,
        /// The known names, comma separated.
        known: String,
    },
    /// No tier qualified; one line per tier says why.
    #[error("no usable tier:\n{0}")]
    NoTier(String),
}
