//! A session on the kfd tier of the emulated RX 7900 XTX (gfx1100): its dispatches carry
//! RSRC1.PRIV (gfx11 KFD queues, tinygrad's "priv=1 on gfx11 for cwsr"), clear
//! COMPUTE_RESTART_X/Y/Z, end with a CS partial flush, and the IB is NOP-padded to 8 dwords;
//! the emulated device must execute all of it and compute the right result.

use std::time::Duration;

use pm4rt::probe::ProbeOptions;
use pm4rt::runtime::{candidates, select, Machine, Policy};
use pm4rt::session::Session;
use pm4rt::Tier;

#[test]
fn gfx1100_kfd_session_runs_a_batch_of_dependent_dispatches() {
    let machine = Machine::emulated("rx7900xtx").unwrap();
    let cands: Vec<_> = candidates(&machine, &Policy::default())
        .into_iter()
        .filter(|c| c.tier == Tier::Kfd)
        .collect();
    let sel = select(cands, &ProbeOptions::default()).unwrap();
    assert_eq!(sel.chosen.tier, Tier::Kfd);
    let mut s = Session::new(sel.submitter).unwrap();
    assert_eq!(s.gfx(), pm4rt::GfxTarget::Gfx1100);
    let [x, y, z] = [4, 4, 4].map(|n| s.alloc_vec(n).unwrap());
    s.write_vec(x, &[1.0, -2.5, 3.25, 8.0]).unwrap();
    let mut b = s.batch();
    b.copy(x, y).unwrap();
    b.copy(y, z).unwrap(); // reads what the first dispatch wrote
    b.submit_and_wait(Duration::from_secs(10)).unwrap();
    assert_eq!(s.read_vec(z).unwrap(), [1.0, -2.5, 3.25, 8.0]);
}
