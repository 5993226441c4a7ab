//! The absolute CLOCK_MONOTONIC deadline `WAIT_CS` expects.
//!
//! `drm_amdgpu_wait_cs_in.timeout` is an absolute time in nanoseconds: the kernel's
//! `amdgpu_gem_timeout` subtracts `ktime_get()` (CLOCK_MONOTONIC) from it, treats a value with
//! the top bit set (negative as `int64_t`) as "wait forever", and a past value as "poll".
//! libdrm's `amdgpu_cs_calculate_timeout` converts a relative timeout by adding
//! `clock_gettime(CLOCK_MONOTONIC)` (Mesa's copy saturates on overflow). pm4rt never waits
//! forever: the deadline saturates at `i64::MAX` so the kernel's "infinite" encoding is never
//! produced by accident.

use std::time::Duration;

/// A source of CLOCK_MONOTONIC time in nanoseconds (injectable for tests).
pub type MonotonicClock = fn() -> u64;

/// The system's CLOCK_MONOTONIC in nanoseconds (`clock_gettime`, through rustix).
pub fn monotonic_now_ns() -> u64 {
    let ts = rustix::time::clock_gettime(rustix::time::ClockId::Monotonic);
    (ts.tv_sec.max(0) as u64).saturating_mul(1_000_000_000).saturating_add(ts.tv_nsec.max(0) as u64)
}

/// `now_ns + timeout`, saturating at `i64::MAX` (never the kernel's infinite encoding).
pub fn absolute_deadline_ns(now_ns: u64, timeout: Duration) -> u64 {
    let rel = u64::try_from(timeout.as_nanos()).unwrap_or(u64::MAX);
    now_ns.saturating_add(rel).min(i64::MAX as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deadline_adds_and_saturates_below_the_infinite_encoding() {
        assert_eq!(absolute_deadline_ns(5_000_000_000, Duration::from_millis(250)), 5_250_000_000);
        assert_eq!(absolute_deadline_ns(7, Duration::ZERO), 7);
        assert_eq!(absolute_deadline_ns(1 << 62, Duration::MAX), i64::MAX as u64);
        assert_eq!(absolute_deadline_ns(u64::MAX, Duration::from_secs(1)), i64::MAX as u64);
    }

    #[test]
    fn monotonic_clock_moves_forward() {
        let a = monotonic_now_ns();
        std::thread::sleep(Duration::from_millis(2));
        let b = monotonic_now_ns();
        assert!(b >= a + 1_000_000, "{a} -> {b}");
    }
}
