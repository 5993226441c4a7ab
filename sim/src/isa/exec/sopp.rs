//! SOPP: program control (`s_endpgm`, branches, barriers) and the scheduling hints and
//! waits, which have no effect because every access completes at once.

use super::{Result, Step};
use crate::isa::wave::Wave;

impl Step<'_> {
    pub(super) fn sopp(&mut self, w: &mut Wave) -> Result<()> {
        let imm = self.inst.bits(15, 0);
        let name = self.inst.op.name;
        let take = match name {
            "s_endpgm" => {
                w.ended = true;
                return Ok(());
            }
            // Scheduling hints and waits: the interpreter completes every access at once.
            "s_nop"
            | "s_delay_alu"
            | "s_clause"
            | "s_waitcnt"
            | "s_waitcnt_depctr"
            | "s_wait_loadcnt"
            | "s_wait_storecnt"
            | "s_wait_kmcnt"
            | "s_wait_dscnt"
            | "s_wait_loadcnt_dscnt"
            | "s_wait_storecnt_dscnt"
            | "s_wait_samplecnt"
            | "s_wait_bvhcnt"
            | "s_wait_expcnt"
            | "s_wait_alu"
            | "s_set_inst_prefetch_distance"
            | "s_sendmsg" => return Ok(()),
            // gfx11 s_barrier; gfx12 s_barrier_wait (after s_barrier_signal -1).
            "s_barrier" | "s_barrier_wait" => {
                self.barrier = true;
                return Ok(());
            }
            "s_branch" => true,
            "s_cbranch_scc0" => !w.scc,
            "s_cbranch_scc1" => w.scc,
            "s_cbranch_vccz" => w.vcc() == 0,
            "s_cbranch_vccnz" => w.vcc() != 0,
            "s_cbranch_execz" => w.exec() == 0,
            "s_cbranch_execnz" => w.exec() != 0,
            _ => return Err(self.unimplemented()),
        };
        if take {
            self.branch(imm)?;
        }
        Ok(())
    }
}
