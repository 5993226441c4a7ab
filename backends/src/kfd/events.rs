//! What a `WAIT_EVENTS` answer means for the queue: a signalled MEMORY event is a GPU page
//! fault at the reported VA, a signalled HW_EXCEPTION event a lost device
//! (`kfd_events.c: kfd_signal_vm_fault_event` / `kfd_signal_reset_event` fill
//! `memory_exception_data` / `hw_exception_data`, with the GPU's `gpu_id` set).

use std::time::Duration;

use pm4rt_core::abi::kfd::KfdEventData;
use pm4rt_core::Error;

/// The error a signalled exception event stands for, if any of `data` is one.
pub(crate) fn exception(data: &[KfdEventData], mem_event: u32, hw_event: u32) -> Option<Error> {
    for d in data {
        if d.event_id == mem_event {
            let m = d.memory_exception();
            if m.gpu_id != 0 {
                return Some(Error::Fault { va: m.va });
            }
        } else if d.event_id == hw_event {
            let h = d.hw_exception();
            if h.gpu_id != 0 {
                return Some(Error::DeviceLost {
                    reason: format!(
                        "KFD hardware exception on gpu_id {:#x}: reset type {}, cause {}, \
                         memory lost {}",
                        h.gpu_id, h.reset_type, h.reset_cause, h.memory_lost
                    ),
                });
            }
        }
    }
    None
}

/// `WAIT_EVENTS`' `timeout` in milliseconds for `left`: rounded up, at least 1 (0 is
/// `KFD_EVENT_TIMEOUT_IMMEDIATE`) and below `u32::MAX` (`KFD_EVENT_TIMEOUT_INFINITE`, "wait
/// forever"; `kfd_events.c: user_timeout_to_jiffies`).
pub(crate) fn timeout_ms(left: Duration) -> u32 {
    u32::try_from(left.as_micros().div_ceil(1000)).unwrap_or(u32::MAX - 1).clamp(1, u32::MAX - 1)
}
