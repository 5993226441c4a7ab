//! Pieces shared by the DRM tiers (cs and umq): the render node with the INFO / GEM / VA
//! ioctls ([`dev`]) and the GPU VA allocator ([`va`]).
//!
//! Moved here from `cs` unchanged so the user-queue tier reuses them; the cs tier's behaviour
//! and public step names (`cs::STEP_*`) are identical.

pub(crate) mod dev;
pub(crate) mod va;
