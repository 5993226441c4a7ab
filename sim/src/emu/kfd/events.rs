//! KFD events: CREATE / DESTROY_EVENT, WAIT_EVENTS (`kfd_events.c`), and the engine's
//! interrupt hook that signals them (`kfd_signal_event_interrupt`).

use super::*;

/// Signalled state shared with the engine's interrupt hook and the waiters.
#[derive(Debug, Default)]
pub(crate) struct EventHub {
    signaled: Mutex<HashMap<u32, Option<k::KfdEventData>>>,
    cv: Condvar,
}

impl EventHub {
    pub(super) fn signal(&self, id: u32, data: Option<k::KfdEventData>) {
        let mut s = self.signaled.lock().unwrap_or_else(|e| e.into_inner());
        s.insert(id, data);
        self.cv.notify_all();
    }
}

impl State {
    pub(super) fn hook_engine(&mut self) {
        let key = Arc::as_ptr(&self.engine) as usize;
        if self.kfd.hooked_engine == key {
            return;
        }
        self.kfd.hooked_engine = key;
        let hub = Arc::clone(&self.kfd.hub);
        // kfd_signal_event_interrupt: INT_CTXID names the event; the slot must have been
        // written (no longer UNSIGNALED_EVENT_SLOT) for the partial-id lookup to accept it.
        self.engine.set_interrupt_hook(Some(Arc::new(move |irq: &Interrupt| {
            if irq.int_sel >= 2 && irq.ctxid < k::KFD_SIGNAL_EVENT_LIMIT && irq.data != UNSIGNALED {
                hub.signal(irq.ctxid, None);
            }
        })));
    }
}

pub(super) fn create_event(
    dev: &EmulatedDevice,
    fd: Fd,
    a: &mut [u8],
    _: &mut UserMem,
) -> Result<(), Errno> {
    let mut args: k::CreateEventArgs = decode_arg(a).map_err(|_| Errno::EFAULT)?;
    let mut s = dev.lock();
    let p = proc_of(&mut s, fd)?;
    if args.event_page_offset != 0 {
        // kfd_kmap_event_page: once per process, a GTT BO of this process on this GPU.
        let ok = p.event_page.is_none()
            && (args.event_page_offset >> 32) as u32 == EMU_GPU_ID
            && p.allocs.get(&args.event_page_offset).is_some_and(|al| {
                al.flags & k::KFD_IOC_ALLOC_MEM_FLAGS_GTT != 0
                    && al.size >= k::KFD_EVENT_PAGE_SIZE as u64
            });
        if !ok {
            return Err(einval(&mut s, "CREATE_EVENT: bad or second event page".into()));
        }
        p.event_page = Some(args.event_page_offset);
    }
    let id = match args.event_type {
        k::KFD_IOC_EVENT_SIGNAL => {
            (0..k::KFD_SIGNAL_EVENT_LIMIT).find(|i| !p.events.contains_key(i))
        }
        k::KFD_IOC_EVENT_HW_EXCEPTION | k::KFD_IOC_EVENT_MEMORY => {
            (FIRST_NONSIGNAL_EVENT_ID..i32::MAX as u32).find(|i| !p.events.contains_key(i))
        }
        t => return Err(einval(&mut s, format!("CREATE_EVENT: type {t} not modelled"))),
    };
    let Some(id) = id else { return Err(s.fail(Errno::ENOSPC, "CREATE_EVENT: no free id")) };
    p.events.insert(id, Event { ty: args.event_type, auto_reset: args.auto_reset != 0 });
    args.event_id = id;
    if args.event_type == k::KFD_IOC_EVENT_SIGNAL {
        args.event_slot_index = id;
        args.event_trigger_data = id;
        // The slot starts unsignalled.
        let page = p.event_page.and_then(|h| p.allocs.get(&h)).map(|al| al.gem.id);
        if let Some(bo) = page {
            let _ = s.mem.write_bo(bo, u64::from(id) * 8, &UNSIGNALED.to_le_bytes());
        }
    }
    update_arg(a, &args).map_err(|_| Errno::EFAULT)
}

pub(super) fn destroy_event(
    dev: &EmulatedDevice,
    fd: Fd,
    a: &mut [u8],
    _: &mut UserMem,
) -> Result<(), Errno> {
    let args: k::DestroyEventArgs = decode_arg(a).map_err(|_| Errno::EFAULT)?;
    let mut s = dev.lock();
    if proc_of(&mut s, fd)?.events.remove(&args.event_id).is_none() {
        return Err(einval(&mut s, format!("DESTROY_EVENT: unknown event {}", args.event_id)));
    }
    s.kfd.hub.signaled.lock().unwrap_or_else(|e| e.into_inner()).remove(&args.event_id);
    Ok(())
}

pub(super) fn wait_events(
    dev: &EmulatedDevice,
    fd: Fd,
    a: &mut [u8],
    u: &mut UserMem,
) -> Result<(), Errno> {
    let mut args: k::WaitEventsArgs = decode_arg(a).map_err(|_| Errno::EFAULT)?;
    let n = args.num_events as usize;
    let raw = u.read(args.events_ptr, n.checked_mul(EVENT_DATA_SIZE).ok_or(Errno::EINVAL)?)?;
    let mut data: Vec<k::KfdEventData> =
        pm4rt_core::abi::ioctl::decode_array(&raw, n).map_err(|_| Errno::EFAULT)?;
    let (hub, events, cap, engine) = {
        let mut s = dev.lock();
        let p = proc_of(&mut s, fd)?;
        let mut evs = Vec::new();
        for d in &data {
            match p.events.get(&d.event_id) {
                Some(e) => evs.push(*e),
                None => {
                    return Err(einval(
                        &mut s,
                        format!("WAIT_EVENTS: unknown event {}", d.event_id),
                    ))
                }
            }
        }
        (Arc::clone(&s.kfd.hub), evs, s.preset.wait_cap, Arc::clone(&s.engine))
    };
    let timeout = Duration::from_millis(u64::from(args.timeout)).min(cap);
    let start = Instant::now();
    let mut sig = hub.signaled.lock().unwrap_or_else(|e| e.into_inner());
    let result = loop {
        // Engine halts become exceptions (the emulator's interrupt source for faults).
        if let Some((_, err)) = engine.halted() {
            for (d, e) in data.iter().zip(&events) {
                if sig.contains_key(&d.event_id) {
                    continue;
                }
                let mut ed = k::KfdEventData::for_event(d.event_id);
                match (e.ty, &err) {
                    (k::KFD_IOC_EVENT_MEMORY, Error::Fault { va }) => {
                        ed.set_memory_exception(&k::MemoryExceptionData {
                            not_present: 1,
                            va: *va,
                            gpu_id: EMU_GPU_ID,
                            ..Default::default()
                        });
                        sig.insert(d.event_id, Some(ed));
                    }
                    (k::KFD_IOC_EVENT_HW_EXCEPTION, e2) if !matches!(e2, Error::Fault { .. }) => {
                        ed.set_hw_exception(&k::HwExceptionData {
                            gpu_id: EMU_GPU_ID,
                            ..Default::default()
                        });
                        sig.insert(d.event_id, Some(ed));
                    }
                    _ => {}
                }
            }
        }
        let hit: Vec<usize> = (0..n).filter(|&i| sig.contains_key(&data[i].event_id)).collect();
        // test_event_condition: with wait_for_all every event must be signalled, otherwise
        // any one will do; no events at all is complete either way.
        let complete = hit.len() == n || (args.wait_for_all == 0 && !hit.is_empty());
        let timed_out = !complete && start.elapsed() >= timeout;
        if complete || timed_out {
            for i in hit {
                let id = data[i].event_id;
                if complete {
                    if let Some(Some(ed)) = sig.get(&id) {
                        data[i].payload = ed.payload;
                    }
                }
                // init_event_waiter / set_event: a waiter consumes an auto-reset signal
                // whether or not the wait completes.
                if events[i].auto_reset {
                    sig.remove(&id);
                }
            }
            break if complete {
                k::KFD_IOC_WAIT_RESULT_COMPLETE
            } else {
                k::KFD_IOC_WAIT_RESULT_TIMEOUT
            };
        }
        let slice = timeout.saturating_sub(start.elapsed()).min(Duration::from_millis(2));
        sig = hub.cv.wait_timeout(sig, slice).map(|(g, _)| g).unwrap_or_else(|e| e.into_inner().0);
    };
    drop(sig);
    u.write(args.events_ptr, pm4rt_core::abi::ioctl::slice_bytes(&data))?;
    args.wait_result = result;
    update_arg(a, &args).map_err(|_| Errno::EFAULT)
}
