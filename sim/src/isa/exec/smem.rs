//! SMEM: scalar loads of one to sixteen dwords from the SGPR-pair base.

use super::{sign_extend, Result, Step};
use crate::isa::wave::Wave;
use crate::isa::Target;

impl Step<'_> {
    pub(super) fn smem(&mut self, w: &mut Wave) -> Result<()> {
        let inst = self.inst;
        if !inst.op.name.starts_with("s_load_b") {
            return Err(self.unimplemented());
        }
        let (offset, soffset) = match self.program.target() {
            Target::Gfx11 => (sign_extend(inst.bits(52, 32), 21), inst.bits(63, 57)),
            Target::Gfx12 => (sign_extend(inst.bits(55, 32), 24), inst.bits(63, 57)),
        };
        let base = w.s64(inst.bits(5, 0) * 2);
        let addr = base.wrapping_add(offset as i64 as u64).wrapping_add(u64::from(w.s(soffset)));
        let n = self.width('d');
        let d = inst.bits(12, 6);
        for i in 0..n {
            let v = self.mem.read_u32(addr.wrapping_add(u64::from(i) * 4))?;
            w.set_s(d + i, v);
        }
        Ok(())
    }
}
