//! Pieces shared by the DRM tiers (cs and umq): the render node with the INFO / GEM / VA
//! ioctls ([`dev`]) and the BO record and creation ([`bo`]). (The GPU VA allocator they used to share here is now `crate::va`, also
//! used by the kfd tier.)
//!
//! Moved here from `cs` unchanged so the user-queue tier reuses them; the cs tier's behaviour
//! and public step names (`cs::STEP_*`) are identical.

pub(crate) mod bo;
pub(crate) mod dev;
