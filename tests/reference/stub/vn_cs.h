/*
 * Stand-in for Mesa's src/virtio/vulkan/vn_cs.h, written for the venus-tests
 * reference harness. Mesa's generated vn_protocol_driver_*.h headers include
 * "vn_cs.h" and expect the encoder/decoder types and helpers defined here.
 *
 * The encoder writes into one caller-provided byte buffer. Like Mesa's,
 * vn_cs_encoder_write copies `val_size` bytes and advances by `size`, so the
 * pad bytes in between keep whatever the buffer held before (the harness
 * prefills the buffer to find them). Writing past the end sets `overflow`
 * and stops storing bytes while the position keeps counting.
 *
 * The decoder reads from one byte buffer; running out of data or a bad
 * array size sets `fatal` (Mesa aborts instead).
 *
 * Handles are their own ids: load returns the handle's raw value, store
 * writes the id into the handle variable.
 *
 * Protocol gating (renderer extensions and API version) comes from the
 * globals below, which vnref_set_protocol() fills.
 */

#ifndef VNREF_STUB_VN_CS_H
#define VNREF_STUB_VN_CS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <vulkan/vulkan.h>

/*
 * Generated code calls assert() for sanity checks (e.g. assert(false) when a
 * pAllocator is passed). Record them instead of aborting the test process,
 * so the harness can report the failure to its caller.
 */
#include <assert.h>
#undef assert
void vnref_assert_fail(const char *expr, const char *file, int line);
#define assert(expr)                                                         \
   ((expr) ? (void)0 : vnref_assert_fail(#expr, __FILE__, __LINE__))

/* number of the highest extension bit the harness tracks (32 words) */
#define VNREF_EXTENSION_BITS 1024

extern uint32_t vnref_protocol_api_version;
extern uint32_t vnref_protocol_extensions[VNREF_EXTENSION_BITS / 32];

struct vn_cs_encoder {
   uint8_t *buf;
   size_t cap;
   size_t pos;
   bool overflow;
};

struct vn_cs_decoder {
   const uint8_t *buf;
   size_t len;
   size_t pos;
   bool fatal;
};

static inline size_t
vn_cs_encoder_get_len(const struct vn_cs_encoder *enc)
{
   return enc->pos;
}

static inline bool
vn_cs_encoder_reserve(struct vn_cs_encoder *enc, size_t size)
{
   if (enc->overflow || size > enc->cap - enc->pos) {
      enc->overflow = true;
      return false;
   }
   return true;
}

static inline void
vn_cs_encoder_write(struct vn_cs_encoder *enc,
                    size_t size,
                    const void *val,
                    size_t val_size)
{
   assert(val_size <= size);
   if (!enc->overflow && size <= enc->cap - enc->pos) {
      /* only val_size bytes: the rest of `size` is pad and stays as it was */
      if (val_size)
         memcpy(enc->buf + enc->pos, val, val_size);
   } else {
      enc->overflow = true;
   }
   enc->pos += size;
}

static inline void
vn_cs_decoder_set_fatal(const struct vn_cs_decoder *dec)
{
   ((struct vn_cs_decoder *)dec)->fatal = true;
}

static inline bool
vnref_decoder_fetch(const struct vn_cs_decoder *dec,
                    size_t size,
                    void *val,
                    size_t val_size)
{
   assert(val_size <= size);
   if (dec->fatal || size > dec->len - dec->pos) {
      vn_cs_decoder_set_fatal(dec);
      if (val_size)
         memset(val, 0, val_size);
      return false;
   }
   if (val_size)
      memcpy(val, dec->buf + dec->pos, val_size);
   return true;
}

static inline void
vn_cs_decoder_read(struct vn_cs_decoder *dec,
                   size_t size,
                   void *val,
                   size_t val_size)
{
   if (vnref_decoder_fetch(dec, size, val, val_size))
      dec->pos += size;
}

static inline void
vn_cs_decoder_peek(const struct vn_cs_decoder *dec,
                   size_t size,
                   void *val,
                   size_t val_size)
{
   vnref_decoder_fetch(dec, size, val, val_size);
}

static inline uint64_t
vn_cs_handle_load_id(const void **handle, VkObjectType type)
{
   (void)type;
   return (uint64_t)(uintptr_t)*handle;
}

static inline void
vn_cs_handle_store_id(void **handle, uint64_t id, VkObjectType type)
{
   (void)type;
   *handle = (void *)(uintptr_t)id;
}

static inline bool
vn_cs_renderer_protocol_has_api_version(uint32_t api_version)
{
   return vnref_protocol_api_version >= api_version;
}

static inline bool
vn_cs_renderer_protocol_has_extension(uint32_t ext_number)
{
   if (ext_number >= VNREF_EXTENSION_BITS)
      return false;
   return (vnref_protocol_extensions[ext_number / 32] >> (ext_number % 32)) & 1;
}

#endif /* VNREF_STUB_VN_CS_H */
