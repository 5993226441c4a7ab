//! Pieces shared by the DRM tiers (cs and umq): the render node with the INFO / GEM / VA
//! ioctls ([`ioctls`]), the BO record and BO creation ([`bo`]), the GPU target and VA range
//! derived from INFO at open ([`target`]), and the sync objects that report `GEM_VA`
//! page-table updates ([`syncobj`], umq only).

pub(crate) mod bo;
pub(crate) mod ioctls;
pub(crate) mod syncobj;
pub(crate) mod target;
