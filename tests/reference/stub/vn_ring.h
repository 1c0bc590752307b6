/*
 * Stand-in for Mesa's src/virtio/vulkan/vn_ring.h, written for the
 * venus-tests reference harness. The generated headers define
 * vn_submit_*, vn_call_* and vn_async_* helpers on top of a ring; the harness
 * never calls them, but they must compile, so this provides the names with
 * inert bodies.
 */

#ifndef VNREF_STUB_VN_RING_H
#define VNREF_STUB_VN_RING_H

#include <stddef.h>

#include "vn_cs.h"

#define VN_TRACE_FUNC() ((void)0)

struct vn_ring;

struct vn_ring_submit_command {
   struct vn_cs_encoder enc;
   struct vn_cs_decoder dec;
};

static inline struct vn_cs_encoder *
vn_ring_submit_command_init(struct vn_ring *ring,
                            struct vn_ring_submit_command *submit,
                            void *cmd_data,
                            size_t cmd_size,
                            size_t reply_size)
{
   (void)ring;
   (void)reply_size;
   submit->enc = (struct vn_cs_encoder){ .buf = cmd_data, .cap = cmd_size };
   return &submit->enc;
}

static inline void
vn_ring_submit_command(struct vn_ring *ring,
                       struct vn_ring_submit_command *submit)
{
   (void)ring;
   (void)submit;
}

static inline struct vn_cs_decoder *
vn_ring_get_command_reply(struct vn_ring *ring,
                          struct vn_ring_submit_command *submit)
{
   (void)ring;
   (void)submit;
   return NULL;
}

static inline void
vn_ring_free_command_reply(struct vn_ring *ring,
                           struct vn_ring_submit_command *submit)
{
   (void)ring;
   (void)submit;
}

#endif /* VNREF_STUB_VN_RING_H */
