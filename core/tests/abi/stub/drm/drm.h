/* Stub for <drm/drm.h>: Debian's linux-libc-dev ships <linux/kfd_ioctl.h>, which includes
 * <drm/drm.h>, but not the DRM headers themselves (libdrm-dev puts them under
 * /usr/include/libdrm). kfd_ioctl.h only needs the fixed-width __u32/__u64 types. */
#ifndef PM4RT_STUB_DRM_DRM_H
#define PM4RT_STUB_DRM_DRM_H
#include <linux/types.h>
#endif
