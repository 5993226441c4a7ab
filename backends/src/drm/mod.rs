//! Pieces shared by the DRM tiers (cs and umq): the render node with the INFO / GEM / VA
//! ioctls ([`dev`]), the BO record and BO creation ([`bo`]), and the GPU target and VA range
//! derived from INFO at open ([`target`]), and the sync objects that report `GEM_VA`
//! page-table updates ([`syncobj`], umq only). The GPU VA allocator is `crate::va`, which the kfd
//! tier uses too.
//!
//! Moved here from `cs` so the user-queue tier reuses them; the cs tier's behaviour and public
//! step names (`cs::STEP_*`) are unchanged.

pub(crate) mod bo;
pub(crate) mod dev;
pub(crate) mod syncobj;
pub(crate) mod target;
