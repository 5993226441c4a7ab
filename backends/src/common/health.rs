//! The sticky health of a queue.
//!
//! Once a queue faulted or its device or context was lost, it stays so: the [`Submitter`]
//! contract makes every later submission fail with [`Error::DeviceLost`], and a wait for a
//! fence that had not retired reports the original error again.
//!
//! [`Submitter`]: pm4rt_core::Submitter

use pm4rt_core::{Error, Result};

/// Healthy, or the error that stopped the queue.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct QueueHealth {
    failed: Option<Error>,
}

impl QueueHealth {
    /// Record `e` as the reason the queue stopped (the first reason stays) and return it.
    pub(crate) fn fail(&mut self, e: Error) -> Error {
        self.failed.get_or_insert(e).clone()
    }

    /// The error that stopped the queue, if any.
    pub(crate) fn failure(&self) -> Option<&Error> {
        self.failed.as_ref()
    }

    /// Ok while healthy; otherwise [`Error::DeviceLost`]: the stored one as it is, any other
    /// failure (a fault) wrapped as "the queue is halted".
    ///
    /// Errors: [`Error::DeviceLost`].
    pub(crate) fn check_submit(&self) -> Result<()> {
        match &self.failed {
            None => Ok(()),
            Some(e @ Error::DeviceLost { .. }) => Err(e.clone()),
            Some(other) => {
                Err(Error::DeviceLost { reason: format!("the queue is halted: {other}") })
            }
        }
    }

    /// Ok while healthy; otherwise the stored error.
    ///
    /// Errors: the error that stopped the queue.
    pub(crate) fn check_wait(&self) -> Result<()> {
        self.failed.clone().map_or(Ok(()), Err)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fault_sticks_and_halts_submission() {
        let mut h = QueueHealth::default();
        assert_eq!(h.check_submit(), Ok(()));
        assert_eq!(h.check_wait(), Ok(()));
        assert_eq!(h.fail(Error::Fault { va: 0x1000 }), Error::Fault { va: 0x1000 });
        h.fail(Error::DeviceLost { reason: "later".into() });
        assert_eq!(h.check_wait(), Err(Error::Fault { va: 0x1000 }), "the first reason stays");
        assert_eq!(
            h.check_submit(),
            Err(Error::DeviceLost {
                reason: "the queue is halted: GPU page fault at VA 0x1000".into()
            })
        );
    }

    #[test]
    fn device_loss_is_reported_as_it_is() {
        let mut h = QueueHealth::default();
        let lost = Error::DeviceLost { reason: "VRAM lost".into() };
        h.fail(lost.clone());
        assert_eq!(h.check_submit(), Err(lost.clone()));
        assert_eq!(h.check_wait(), Err(lost));
    }
}
