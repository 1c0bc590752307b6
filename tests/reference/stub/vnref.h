/*
 * C interface of the venus-tests reference harness: a shared library built
 * from Mesa's generated Venus encoders (vn_protocol_driver_*.h), the stub
 * vn_cs.h/vn_ring.h beside this file, vnref_runtime.c and the dispatch table
 * that gen_wrappers.py generates.
 *
 * `args[i]` points at the value of the command's i-th C parameter, the
 * encoder and cmd_flags excluded: at a VkDevice for `VkDevice device`, at the
 * pointer for `const VkBufferCreateInfo* pCreateInfo` or `VkBuffer* pBuffer`,
 * at a uint32_t for `uint32_t count`. Array parameters (`const float
 * blendConstants[4]`) are pointers. A NULL args[i] stands for a zero value.
 *
 * Results: >= 0 a byte count; VNREF_ERR_UNKNOWN (-1) no such command;
 * VNREF_ERR_OVERFLOW (-2) the buffer was too small (encode) or the data ran
 * out or had a bad array size (decode); VNREF_ERR_ASSERT (-3) an assert() in
 * Mesa's code failed (vnref_last_assert() says which).
 *
 * Not thread-safe: the protocol configuration and the assert record are
 * process-wide.
 */

#ifndef VNREF_H
#define VNREF_H

#include <stddef.h>
#include <stdint.h>

#define VNREF_ERR_UNKNOWN (-1L)
#define VNREF_ERR_OVERFLOW (-2L)
#define VNREF_ERR_ASSERT (-3L)

/* return kinds of a reply decoder */
#define VNREF_RETURN_VOID 0
#define VNREF_RETURN_VKRESULT 1
#define VNREF_RETURN_U64 2

/*
 * Renderer protocol seen by the encoders. ext_mask_words: 32 words in the
 * capset layout (extension N is bit N%32 of word N/32); as in Mesa, if bit 0
 * of word 0 is clear (or the pointer is NULL) every extension counts as
 * present, and only extensions 1..VN_INFO_EXTENSION_MAX_NUMBER are used.
 * api_version: the renderer's vk_xml_version, e.g. VK_MAKE_API_VERSION(0, 1,
 * 3, 269). Default: every extension, 1.3.269.
 */
void vnref_set_protocol(const uint32_t *ext_mask_words, uint32_t api_version);

int vnref_command_count(void);
const char *vnref_command_name(int i);
/* -1 if unknown */
int vnref_command_param_count(const char *name);
/* declaration of parameter i as written in Mesa, e.g. "VkDevice device" */
const char *vnref_command_param(const char *name, int i);
/* VNREF_RETURN_*, or -1 if unknown */
int vnref_command_return_kind(const char *name);

/* vn_sizeof_vkXxx: bytes the command occupies (cmd_flags does not matter) */
long vnref_sizeof_command(const char *name, uint32_t cmd_flags, const void *const *args);
/* fills out[0..cap) with `fill`, then vn_encode_vkXxx; returns bytes written */
long vnref_encode_command(const char *name, uint32_t cmd_flags, const void *const *args,
                          uint8_t *out, size_t cap, uint8_t fill);
/* vn_sizeof_vkXxx_reply */
long vnref_sizeof_reply(const char *name, const void *const *args);
/*
 * vn_decode_vkXxx_reply over data[0..len): writes through the output
 * parameters in args and stores the return value (VkResult sign-extended) in
 * *ret if ret is not NULL; returns bytes consumed.
 */
long vnref_decode_reply(const char *name, const uint8_t *data, size_t len,
                        void *const *args, uint64_t *ret);

/* the first failed assert() of the last call, or NULL */
const char *vnref_last_assert(void);

/* ---- between vnref_runtime.c and the generated dispatch table ---- */

struct vn_cs_encoder;
struct vn_cs_decoder;

struct vnref_command {
   const char *name;
   int param_count;
   const char *const *params;
   int return_kind;
   size_t (*size)(const void *const *args);
   void (*encode)(struct vn_cs_encoder *enc, uint32_t cmd_flags, const void *const *args);
   size_t (*reply_size)(const void *const *args);
   uint64_t (*decode_reply)(struct vn_cs_decoder *dec, void *const *args);
};

/* sorted by name (strcmp) */
extern const struct vnref_command vnref_commands[];
extern const int vnref_commands_len;
extern const uint32_t vnref_extension_max_number;

#endif /* VNREF_H */
