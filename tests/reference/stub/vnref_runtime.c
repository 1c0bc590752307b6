/*
 * Runtime of the venus-tests reference harness: protocol configuration,
 * assert recording and the public entry points of vnref.h over the
 * generated dispatch table.
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vn_cs.h"
#include "vnref.h"

uint32_t vnref_protocol_api_version = VK_MAKE_API_VERSION(0, 1, 3, 269);
uint32_t vnref_protocol_extensions[VNREF_EXTENSION_BITS / 32];
static int vnref_protocol_initialized;

static char vnref_assert_message[512];
static int vnref_assert_failed;

void
vnref_assert_fail(const char *expr, const char *file, int line)
{
   if (vnref_assert_failed)
      return;
   vnref_assert_failed = 1;
   snprintf(vnref_assert_message, sizeof(vnref_assert_message),
            "%s:%d: assert(%s)", file, line, expr);
}

const char *
vnref_last_assert(void)
{
   return vnref_assert_failed ? vnref_assert_message : NULL;
}

static void
vnref_begin_call(void)
{
   vnref_assert_failed = 0;
   vnref_assert_message[0] = '\0';
   if (!vnref_protocol_initialized)
      vnref_set_protocol(NULL, VK_MAKE_API_VERSION(0, 1, 3, 269));
}

void
vnref_set_protocol(const uint32_t *ext_mask_words, uint32_t api_version)
{
   const int all = !ext_mask_words || !(ext_mask_words[0] & 1);
   uint32_t max = vnref_extension_max_number;
   if (max >= VNREF_EXTENSION_BITS)
      max = VNREF_EXTENSION_BITS - 1;

   memset(vnref_protocol_extensions, 0, sizeof(vnref_protocol_extensions));
   for (uint32_t n = 1; n <= max; n++) {
      if (all || ((ext_mask_words[n / 32] >> (n % 32)) & 1))
         vnref_protocol_extensions[n / 32] |= UINT32_C(1) << (n % 32);
   }
   vnref_protocol_api_version = api_version;
   vnref_protocol_initialized = 1;
}

static int
vnref_compare_name(const void *key, const void *elem)
{
   return strcmp(key, ((const struct vnref_command *)elem)->name);
}

static const struct vnref_command *
vnref_find(const char *name)
{
   if (!name)
      return NULL;
   return bsearch(name, vnref_commands, (size_t)vnref_commands_len,
                  sizeof(vnref_commands[0]), vnref_compare_name);
}

int
vnref_command_count(void)
{
   return vnref_commands_len;
}

const char *
vnref_command_name(int i)
{
   if (i < 0 || i >= vnref_commands_len)
      return NULL;
   return vnref_commands[i].name;
}

int
vnref_command_param_count(const char *name)
{
   const struct vnref_command *cmd = vnref_find(name);
   return cmd ? cmd->param_count : -1;
}

const char *
vnref_command_param(const char *name, int i)
{
   const struct vnref_command *cmd = vnref_find(name);
   if (!cmd || i < 0 || i >= cmd->param_count)
      return NULL;
   return cmd->params[i];
}

int
vnref_command_return_kind(const char *name)
{
   const struct vnref_command *cmd = vnref_find(name);
   return cmd ? cmd->return_kind : -1;
}

long
vnref_sizeof_command(const char *name, uint32_t cmd_flags, const void *const *args)
{
   (void)cmd_flags;
   const struct vnref_command *cmd = vnref_find(name);
   if (!cmd || !cmd->size)
      return VNREF_ERR_UNKNOWN;
   vnref_begin_call();
   const size_t size = cmd->size(args);
   return vnref_assert_failed ? VNREF_ERR_ASSERT : (long)size;
}

long
vnref_encode_command(const char *name, uint32_t cmd_flags, const void *const *args,
                     uint8_t *out, size_t cap, uint8_t fill)
{
   const struct vnref_command *cmd = vnref_find(name);
   if (!cmd || !cmd->encode)
      return VNREF_ERR_UNKNOWN;
   vnref_begin_call();
   if (cap)
      memset(out, fill, cap);
   struct vn_cs_encoder enc = { .buf = out, .cap = out ? cap : 0 };
   cmd->encode(&enc, cmd_flags, args);
   if (vnref_assert_failed)
      return VNREF_ERR_ASSERT;
   if (enc.overflow)
      return VNREF_ERR_OVERFLOW;
   return (long)enc.pos;
}

long
vnref_sizeof_reply(const char *name, const void *const *args)
{
   const struct vnref_command *cmd = vnref_find(name);
   if (!cmd || !cmd->reply_size)
      return VNREF_ERR_UNKNOWN;
   vnref_begin_call();
   const size_t size = cmd->reply_size(args);
   return vnref_assert_failed ? VNREF_ERR_ASSERT : (long)size;
}

long
vnref_decode_reply(const char *name, const uint8_t *data, size_t len,
                   void *const *args, uint64_t *ret)
{
   const struct vnref_command *cmd = vnref_find(name);
   if (!cmd || !cmd->decode_reply)
      return VNREF_ERR_UNKNOWN;
   vnref_begin_call();
   struct vn_cs_decoder dec = { .buf = data, .len = data ? len : 0 };
   const uint64_t value = cmd->decode_reply(&dec, args);
   if (ret)
      *ret = value;
   if (vnref_assert_failed)
      return VNREF_ERR_ASSERT;
   if (dec.fatal)
      return VNREF_ERR_OVERFLOW;
   return (long)dec.pos;
}
