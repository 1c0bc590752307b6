/*
 * virglrenderer.h — the C interface of venus-rs's libvirglrenderer.so.1.
 *
 * This library replaces virglrenderer for a VMM (QEMU 10.0's virtio-gpu-gl
 * device) and serves Venus (Vulkan, capset 4) only, through the venus-rs host
 * translator. It declares exactly the functions the library exports: the 28 that
 * QEMU 10.0 imports. Types, flag values and struct layouts are binary
 * compatible with virglrenderer 1.1.0, so a VMM built against either runs with
 * this library.
 *
 * Conventions:
 *  - Functions returning int return 0 or a negative errno (-EINVAL bad
 *    argument, -ENOENT unknown context/resource id, -ENOMEM size or count out
 *    of range, -EBUSY, -EFAULT bad command buffer, -ENODEV no host Vulkan,
 *    -EIO host failure or a fatal Venus context).
 *  - Callbacks are invoked only from inside virgl_renderer_poll().
 *  - There is no GL: plain resources live in host memory, tex_id is always 0.
 *
 * SPDX-License-Identifier: MIT
 */
#ifndef VIRGLRENDERER_H
#define VIRGLRENDERER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* The virglrenderer release whose interface this one matches. */
#define VIRGL_VERSION_MAJOR 1
#define VIRGL_VERSION_MINOR 1
#define VIRGL_VERSION_MICRO 0

#define VIRGL_EXPORT __attribute__((visibility("default")))

struct iovec;

/* ---- initialization and callbacks ---------------------------------------- */

typedef void *virgl_renderer_gl_context;

/* Passed to create_gl_context (never called by this library). */
struct virgl_renderer_gl_ctx_param {
   int version;
   bool shared;
   int major_ver;
   int minor_ver;
   int compat_ctx;
};

/* Highest callbacks version understood. Which members a caller provides depends
 * on .version: 1 up to make_current, 2 adds get_drm_fd, 3 adds
 * write_context_fence and get_server_fd, 4 adds get_egl_display. Only
 * write_fence and (version >= 3) write_context_fence are ever called. */
#define VIRGL_RENDERER_CALLBACKS_VERSION 4

struct virgl_renderer_callbacks {
   int version;
   /* A ctx-0 fence (virgl_renderer_create_fence) has retired. */
   void (*write_fence)(void *cookie, uint32_t fence);
   virgl_renderer_gl_context (*create_gl_context)(void *cookie, int scanout_idx,
                                                  struct virgl_renderer_gl_ctx_param *param);
   void (*destroy_gl_context)(void *cookie, virgl_renderer_gl_context ctx);
   int (*make_current)(void *cookie, int scanout_idx, virgl_renderer_gl_context ctx);
   /* version 2 */
   int (*get_drm_fd)(void *cookie);
   /* version 3: a context fence has retired; fences of one (ctx_id, ring_idx)
    * retire in the order they were created. */
   void (*write_context_fence)(void *cookie, uint32_t ctx_id, uint32_t ring_idx,
                               uint64_t fence_id);
   int (*get_server_fd)(void *cookie, uint32_t version);
   /* version 4 */
   void *(*get_egl_display)(void *cookie);
};

/* virgl_renderer_init flags. VIRGL_RENDERER_VENUS is what matters; the others
 * are accepted and ignored. */
#define VIRGL_RENDERER_USE_EGL            (1 << 0)
#define VIRGL_RENDERER_THREAD_SYNC        (1 << 1)
#define VIRGL_RENDERER_USE_GLX            (1 << 2)
#define VIRGL_RENDERER_USE_SURFACELESS    (1 << 3)
#define VIRGL_RENDERER_USE_GLES           (1 << 4)
#define VIRGL_RENDERER_USE_EXTERNAL_BLOB  (1 << 5)
#define VIRGL_RENDERER_VENUS              (1 << 6)
#define VIRGL_RENDERER_NO_VIRGL           (1 << 7)
#define VIRGL_RENDERER_ASYNC_FENCE_CB     (1 << 8)
#define VIRGL_RENDERER_RENDER_SERVER      (1 << 9)
#define VIRGL_RENDERER_DRM                (1 << 10)

/* Creates the host renderer (if the capset query has not already) and registers
 * the callbacks. Again with the same arguments: 0. With other arguments while
 * contexts or resources exist: -EBUSY. */
VIRGL_EXPORT int virgl_renderer_init(void *cookie, int flags,
                                     struct virgl_renderer_callbacks *cb);
/* Delivers retired fences through the callbacks. */
VIRGL_EXPORT void virgl_renderer_poll(void);
/* Releases everything, the host renderer included. */
VIRGL_EXPORT void virgl_renderer_cleanup(void *cookie);
/* Destroys every context and resource; virgl_renderer_init may follow. */
VIRGL_EXPORT void virgl_renderer_reset(void);
/* No GL: does nothing. */
VIRGL_EXPORT void virgl_renderer_force_ctx_0(void);

/* ---- capsets --------------------------------------------------------------- */

/* Capset 4 (Venus): version 0, 176 bytes — the 160 standard bytes and a 16-byte
 * tail: "VNSG", u32 version 1, u64 sharing granularity (little endian). Any
 * other capset: size 0. Both may be called before virgl_renderer_init. */
VIRGL_EXPORT void virgl_renderer_get_cap_set(uint32_t set, uint32_t *max_ver,
                                             uint32_t *max_size);
VIRGL_EXPORT void virgl_renderer_fill_caps(uint32_t set, uint32_t version, void *caps);

/* ---- contexts ---------------------------------------------------------------- */

#define VIRGL_RENDERER_CONTEXT_FLAG_CAPSET_ID_MASK 0xff

/* Context ids are nonzero. Capset 4 creates a Venus context; capsets 0-2 an
 * inert one that takes no commands (the guest kernel creates such a context for
 * every DRM client). At most 64 bytes of name are read. */
VIRGL_EXPORT int virgl_renderer_context_create(uint32_t handle, uint32_t nlen,
                                               const char *name);
VIRGL_EXPORT int virgl_renderer_context_create_with_flags(uint32_t ctx_id, uint32_t ctx_flags,
                                                          uint32_t nlen, const char *name);
VIRGL_EXPORT void virgl_renderer_context_destroy(uint32_t handle);

/* Runs ndw dwords of Venus commands; buffer must be 4-byte aligned. A malformed
 * stream makes that context fatal (later submits fail); others are unaffected. */
VIRGL_EXPORT int virgl_renderer_submit_cmd(void *buffer, int ctx_id, int ndw);

/* ---- fences ---------------------------------------------------------------- */

#define VIRGL_RENDERER_FENCE_FLAG_MERGEABLE (1 << 0)

/* A ctx-0 fence: retires at the next poll (write_fence). */
VIRGL_EXPORT int virgl_renderer_create_fence(int client_fence_id, uint32_t ctx_id);
/* A fence on timeline ring_idx (< 64) of a context: ring 0 retires at once, ring
 * N once the queue bound to it is done (write_context_fence). */
VIRGL_EXPORT int virgl_renderer_context_create_fence(uint32_t ctx_id, uint32_t flags,
                                                     uint32_t ring_idx, uint64_t fence_id);

/* ---- resources ------------------------------------------------------------- */

/* Resource ids are global across contexts and nonzero. */
struct virgl_renderer_resource_create_args {
   uint32_t handle;
   uint32_t target;     /* 0 buffer, 1 1D, 2 2D, 3 3D, 5 rect, 6 1D array, 7 2D array */
   uint32_t format;     /* virgl format: 32-bit RGBA/BGRA, B5G6R5 or R8 */
   uint32_t bind;
   uint32_t width;
   uint32_t height;
   uint32_t depth;
   uint32_t array_size;
   uint32_t last_level; /* only level 0 is stored */
   uint32_t nr_samples;
   uint32_t flags;
};

/* A region of a resource in pixels. */
struct virgl_box {
   uint32_t x, y, z;
   uint32_t w, h, d;
};

/* A plain resource in host memory (at most 16384 per side, 256 layers, 256 MiB;
 * 1 GiB for all together), optionally with its guest backing. */
VIRGL_EXPORT int virgl_renderer_resource_create(struct virgl_renderer_resource_create_args *args,
                                                struct iovec *iov, uint32_t num_iovs);
VIRGL_EXPORT void virgl_renderer_resource_unref(uint32_t res_handle);

/* Guest memory backing: detach hands back the array that was attached. */
VIRGL_EXPORT int virgl_renderer_resource_attach_iov(int res_handle, struct iovec *iov,
                                                    int num_iovs);
VIRGL_EXPORT void virgl_renderer_resource_detach_iov(int res_handle, struct iovec **iov,
                                                     int *num_iovs);

/* Copies a box between a plain resource and guest memory: iov when given, else
 * the attached backing. stride / layer_stride 0 mean the resource's own; offset
 * is where the box's first byte is in guest memory. ctx_id is ignored. */
VIRGL_EXPORT int virgl_renderer_transfer_read_iov(uint32_t handle, uint32_t ctx_id,
                                                  uint32_t level, uint32_t stride,
                                                  uint32_t layer_stride, struct virgl_box *box,
                                                  uint64_t offset, struct iovec *iov,
                                                  int iovec_cnt);
VIRGL_EXPORT int virgl_renderer_transfer_write_iov(uint32_t handle, uint32_t ctx_id, int level,
                                                   uint32_t stride, uint32_t layer_stride,
                                                   struct virgl_box *box, uint64_t offset,
                                                   struct iovec *iovec, unsigned int iovec_cnt);

struct virgl_renderer_resource_info {
   uint32_t handle;
   uint32_t virgl_format;
   uint32_t width;
   uint32_t height;
   uint32_t depth;
   uint32_t flags;
   uint32_t tex_id;  /* always 0 */
   uint32_t stride;
   int drm_fourcc;   /* always 0 */
   int fd;           /* always -1 */
};

#define VIRGL_RENDERER_RESOURCE_INFO_EXT_VERSION 0

struct virgl_renderer_resource_info_ext {
   int version;
   struct virgl_renderer_resource_info base;
   bool has_dmabuf_export;
   int planes;
   uint64_t modifiers;
   void *d3d_tex2d;
};

/* Plain resources report their image; blobs their handle only. */
VIRGL_EXPORT int virgl_renderer_resource_get_info(int res_handle,
                                                  struct virgl_renderer_resource_info *info);
VIRGL_EXPORT int virgl_renderer_resource_get_info_ext(int res_handle,
                                                      struct virgl_renderer_resource_info_ext *info);

/* A malloc'ed copy of a 32-bit image (free() it) and its size; NULL otherwise. */
VIRGL_EXPORT void *virgl_renderer_get_cursor_data(uint32_t resource_id, uint32_t *width,
                                                  uint32_t *height);

/* ---- blobs ------------------------------------------------------------------ */

#define VIRGL_RENDERER_BLOB_MEM_GUEST             0x0001
#define VIRGL_RENDERER_BLOB_MEM_HOST3D            0x0002
#define VIRGL_RENDERER_BLOB_MEM_HOST3D_GUEST      0x0003
#define VIRGL_RENDERER_BLOB_MEM_GUEST_VRAM        0x0004

#define VIRGL_RENDERER_BLOB_FLAG_USE_MAPPABLE     0x0001
#define VIRGL_RENDERER_BLOB_FLAG_USE_SHAREABLE    0x0002
#define VIRGL_RENDERER_BLOB_FLAG_USE_CROSS_DEVICE 0x0004

struct virgl_renderer_resource_create_blob_args {
   uint32_t res_handle;
   uint32_t ctx_id;
   uint32_t blob_mem;
   uint32_t blob_flags;
   uint64_t blob_id;   /* HOST3D: 0 = new shared memory, else a VkDeviceMemory id */
   uint64_t size;
   const struct iovec *iovecs;
   uint32_t num_iovs;
};

/* GUEST blobs keep their iovecs; HOST3D blobs are memory of the Venus context
 * ctx_id. HOST3D_GUEST and GUEST_VRAM are refused. */
VIRGL_EXPORT int
virgl_renderer_resource_create_blob(const struct virgl_renderer_resource_create_blob_args *args);

#define VIRGL_RENDERER_MAP_CACHE_MASK      0x0f
#define VIRGL_RENDERER_MAP_CACHE_NONE      0x00
#define VIRGL_RENDERER_MAP_CACHE_CACHED    0x01
#define VIRGL_RENDERER_MAP_CACHE_UNCACHED  0x02
#define VIRGL_RENDERER_MAP_CACHE_WC        0x03

/* Mappable HOST3D blobs only. The address and size are multiples of the sharing
 * granularity (the capset tail's); the memory stays valid until unmap, and even
 * if the guest destroys the context or frees the device memory meanwhile.
 * Mapping twice without an unmap is refused. */
VIRGL_EXPORT int virgl_renderer_resource_get_map_info(uint32_t res_handle, uint32_t *map_info);
VIRGL_EXPORT int virgl_renderer_resource_map(uint32_t res_handle, void **map, uint64_t *out_size);
VIRGL_EXPORT int virgl_renderer_resource_unmap(uint32_t res_handle);

/* ---- resources and contexts -------------------------------------------------- */

/* Accepted; a host blob is not imported into a context other than its own. */
VIRGL_EXPORT void virgl_renderer_ctx_attach_resource(int ctx_id, int res_handle);
VIRGL_EXPORT void virgl_renderer_ctx_detach_resource(int ctx_id, int res_handle);

#ifdef __cplusplus
}
#endif

#endif /* VIRGLRENDERER_H */
