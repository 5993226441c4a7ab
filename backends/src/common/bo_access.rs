//! CPU reads and writes of a caller's BO through its mapping, with the checks the
//! [`pm4rt_core::Submitter`] contract asks of every tier: a BO without CPU access is
//! [`Error::Unsupported`], a range past its (page-rounded) size is [`Error::OutOfBounds`].

use pm4rt_core::{BoHandle, Error, Mapping, Result};

/// The mapping of `bo` if `[offset, offset + len)` lies inside its `size` bytes.
fn checked(
    bo: BoHandle,
    cpu: Option<&dyn Mapping>,
    size: u64,
    offset: u64,
    len: usize,
) -> Result<(&dyn Mapping, usize)> {
    let m =
        cpu.ok_or_else(|| Error::Unsupported(format!("{bo} was allocated without CPU access")))?;
    let len = len as u64;
    match offset.checked_add(len) {
        Some(end) if end <= size => {
            let at = usize::try_from(offset).map_err(|_| Error::OutOfBounds {
                bo,
                offset,
                len,
                size,
            })?;
            Ok((m, at))
        }
        _ => Err(Error::OutOfBounds { bo, offset, len, size }),
    }
}

/// Copy `data` into `bo` at byte `offset`; a failing mapping access is [`Error::Io`] at `step`.
///
/// Errors: [`Error::Unsupported`] (no CPU mapping), [`Error::OutOfBounds`], [`Error::Io`].
pub(crate) fn write(
    bo: BoHandle,
    cpu: Option<&dyn Mapping>,
    size: u64,
    offset: u64,
    data: &[u8],
    step: &'static str,
) -> Result<()> {
    let (m, at) = checked(bo, cpu, size, offset, data.len())?;
    m.write(at, data).map_err(|e| Error::io(step, e))
}

/// Copy `out.len()` bytes of `bo` from byte `offset` into `out`; errors as [`write()`].
pub(crate) fn read(
    bo: BoHandle,
    cpu: Option<&dyn Mapping>,
    size: u64,
    offset: u64,
    out: &mut [u8],
    step: &'static str,
) -> Result<()> {
    let (m, at) = checked(bo, cpu, size, offset, out.len())?;
    m.read(at, out).map_err(|e| Error::io(step, e))
}

#[cfg(test)]
mod tests {
    use super::*;
    use pm4rt_core::HostMapping;

    #[test]
    fn bounds_access_and_errors() {
        let bo = BoHandle(3);
        let m = HostMapping::new(16, 0);
        write(bo, Some(&m), 16, 12, &[1, 2, 3, 4], "s").unwrap();
        let mut out = [0u8; 2];
        read(bo, Some(&m), 16, 13, &mut out, "s").unwrap();
        assert_eq!(out, [2, 3]);
        let e = write(bo, Some(&m), 16, 13, &[0; 4], "s").unwrap_err();
        assert!(matches!(e, Error::OutOfBounds { offset: 13, len: 4, size: 16, .. }), "{e}");
        let e = read(bo, Some(&m), 16, u64::MAX, &mut out, "s").unwrap_err();
        assert!(matches!(e, Error::OutOfBounds { .. }), "{e}");
        // No CPU mapping is reported before the range.
        let e = read(bo, None, 16, 100, &mut out, "s").unwrap_err();
        assert!(matches!(e, Error::Unsupported(_)), "{e}");
        // The mapping's own failure becomes Io at the step.
        let e = write(bo, Some(&m), 32, 20, &[0; 4], "my step").unwrap_err();
        assert!(
            matches!(e, Error::Io { step: "my step", errno: pm4rt_core::Errno::EFAULT }),
            "{e}"
        );
    }
}
