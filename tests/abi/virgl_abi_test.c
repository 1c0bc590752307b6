/*
 * Exercises venus-rs's libvirglrenderer.so.1 through its C ABI the way QEMU 10.0
 * drives it (capsets before init, callbacks delivered in poll, blobs mapped for
 * the host-visible window, 2D resources for the console and cursor), plus
 * hostile arguments. Built and run by tests/tests/virgl_abi.rs:
 *
 *   virgl_abi_test [STREAM REPLY_OUT]
 *
 * STREAM is a Venus command stream made by the Rust test: it sets the reply
 * stream to resource REPLY_RES (64 KiB at offset 0), creates instance 1,
 * physical device 2, device 3 with queue 4 bound to ring_idx 1, and allocates
 * host-visible memory MEMORY_ID (64 KiB). The reply bytes are written to
 * REPLY_OUT for the Rust test to decode.
 *
 * VENUS_HOST_GRANULARITY, when set, is the granularity the capset tail and
 * every mapping must show. Prints PASS and exits 0 when every check held.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <time.h>

#include <virglrenderer.h>

#define REPLY_RES 30
#define REPLY_SIZE 65536
#define MEMORY_ID 5
#define MEMORY_SIZE 65536

static int checks, failures;

#define CHECK(cond, ...)                                                         \
   do {                                                                          \
      checks++;                                                                  \
      if (!(cond)) {                                                             \
         failures++;                                                             \
         fprintf(stderr, "FAIL %s:%d: %s: ", __FILE__, __LINE__, #cond);       \
         fprintf(stderr, __VA_ARGS__);                                           \
         fputc('\n', stderr);                                                    \
      }                                                                          \
   } while (0)

/* ---- callbacks ------------------------------------------------------------- */

static int cookie_object;

#define MAX_SEEN 256
static uint32_t seen_fences[MAX_SEEN];
static int seen_fence_count;
static struct {
   uint32_t ctx, ring;
   uint64_t fence;
} seen_ctx_fences[MAX_SEEN];
static int seen_ctx_fence_count;
static int bad_cookie, in_poll, outside_poll_calls;

static void on_write_fence(void *cookie, uint32_t fence)
{
   if (cookie != &cookie_object)
      bad_cookie++;
   if (!in_poll)
      outside_poll_calls++;
   if (seen_fence_count < MAX_SEEN)
      seen_fences[seen_fence_count++] = fence;
}

static void on_write_context_fence(void *cookie, uint32_t ctx_id, uint32_t ring_idx,
                                   uint64_t fence_id)
{
   if (cookie != &cookie_object)
      bad_cookie++;
   if (!in_poll)
      outside_poll_calls++;
   if (seen_ctx_fence_count < MAX_SEEN) {
      seen_ctx_fences[seen_ctx_fence_count].ctx = ctx_id;
      seen_ctx_fences[seen_ctx_fence_count].ring = ring_idx;
      seen_ctx_fences[seen_ctx_fence_count].fence = fence_id;
      seen_ctx_fence_count++;
   }
}

/* As QEMU 10.0 fills it (version 3 without an EGL display). */
static struct virgl_renderer_callbacks callbacks = {
   .version = 3,
   .write_fence = on_write_fence,
   .write_context_fence = on_write_context_fence,
};

static void poll_once(void)
{
   in_poll = 1;
   virgl_renderer_poll();
   in_poll = 0;
}

static int fence_seen(uint32_t fence)
{
   for (int i = 0; i < seen_fence_count; i++)
      if (seen_fences[i] == fence)
         return 1;
   return 0;
}

static int ctx_fence_seen(uint32_t ctx, uint32_t ring, uint64_t fence)
{
   for (int i = 0; i < seen_ctx_fence_count; i++)
      if (seen_ctx_fences[i].ctx == ctx && seen_ctx_fences[i].ring == ring &&
          seen_ctx_fences[i].fence == fence)
         return 1;
   return 0;
}

/* Polls (as QEMU's 10 ms timer does) until the fence shows up, up to 20 s. */
static int wait_ctx_fence(uint32_t ctx, uint32_t ring, uint64_t fence)
{
   for (int i = 0; i < 20000; i++) {
      poll_once();
      if (ctx_fence_seen(ctx, ring, fence))
         return 1;
      nanosleep(&(struct timespec){ 0, 1000000 }, NULL);
   }
   return 0;
}

static int wait_fence(uint32_t fence)
{
   for (int i = 0; i < 20000; i++) {
      poll_once();
      if (fence_seen(fence))
         return 1;
      nanosleep(&(struct timespec){ 0, 1000000 }, NULL);
   }
   return 0;
}

/* ---- helpers ---------------------------------------------------------------- */

static uint64_t granularity;

static int create_host_blob(uint32_t res, uint32_t ctx, uint64_t blob_id, uint64_t size,
                            uint32_t flags)
{
   struct virgl_renderer_resource_create_blob_args a = {
      .res_handle = res,
      .ctx_id = ctx,
      .blob_mem = VIRGL_RENDERER_BLOB_MEM_HOST3D,
      .blob_flags = flags,
      .blob_id = blob_id,
      .size = size,
   };
   return virgl_renderer_resource_create_blob(&a);
}

static int create_venus_context(uint32_t id, const char *label)
{
   char name[64] = { 0 };
   snprintf(name, sizeof(name), "%s", label);
   return virgl_renderer_context_create_with_flags(id, 4, (uint32_t)strlen(name), name);
}

/* Maps a blob and checks alignment and size; returns the pointer or NULL. */
static unsigned char *map_blob(uint32_t res, uint64_t at_least, uint64_t *size_out)
{
   void *p = NULL;
   uint64_t size = 0;
   int r = virgl_renderer_resource_map(res, &p, &size);
   CHECK(r == 0, "map of %u: %d", res, r);
   if (r != 0)
      return NULL;
   CHECK(((uintptr_t)p % granularity) == 0, "map %p not aligned to %llu", p,
         (unsigned long long)granularity);
   CHECK(size % granularity == 0 && size >= at_least, "map size %llu (want >= %llu)",
         (unsigned long long)size, (unsigned long long)at_least);
   if (size_out)
      *size_out = size;
   return p;
}

/* ---- the tests ---------------------------------------------------------------- */

static void test_capsets_before_init(void)
{
   uint32_t ver = 99, size = 0;
   virgl_renderer_get_cap_set(4, &ver, &size);
   CHECK(ver == 0 && size == 176, "venus capset: version %u size %u", ver, size);
   for (uint32_t set = 0; set < 8; set++) {
      if (set == 4)
         continue;
      ver = 7, size = 7;
      virgl_renderer_get_cap_set(set, &ver, &size);
      CHECK(size == 0 && ver == 0, "capset %u offered: version %u size %u", set, ver, size);
   }
   virgl_renderer_get_cap_set(4, NULL, NULL);          /* must not crash */
   virgl_renderer_get_cap_set(0xffffffffu, NULL, &size);

   unsigned char caps[176 + 16];
   memset(caps, 0xcc, sizeof(caps));
   virgl_renderer_fill_caps(4, 0, caps);
   CHECK(memcmp(caps + 160, "VNSG", 4) == 0, "tail magic");
   uint32_t tail_version;
   memcpy(&tail_version, caps + 164, 4);
   CHECK(tail_version == 1, "tail version %u", tail_version);
   memcpy(&granularity, caps + 168, 8);
   CHECK(granularity >= 4096 && (granularity & (granularity - 1)) == 0,
         "granularity %llu", (unsigned long long)granularity);
   if (granularity < 4096 || (granularity & (granularity - 1)))
      granularity = 4096;
   const char *want = getenv("VENUS_HOST_GRANULARITY");
   if (want)
      CHECK(granularity == strtoull(want, NULL, 0), "granularity %llu, asked %s",
            (unsigned long long)granularity, want);
   CHECK(caps[176] == 0xcc, "fill_caps wrote past 176 bytes");
   printf("capset: 176 bytes, granularity %llu\n", (unsigned long long)granularity);

   unsigned char other[16];
   memset(other, 0xcc, sizeof(other));
   virgl_renderer_fill_caps(1, 0, other);
   CHECK(other[0] == 0xcc, "fill_caps wrote an unoffered capset");
   virgl_renderer_fill_caps(4, 0, NULL);                /* must not crash */

   CHECK(create_venus_context(1, "early") < 0, "context before init");
   CHECK(virgl_renderer_create_fence(1, 0) < 0, "fence before init");
}

static void test_init(void)
{
   int flags = VIRGL_RENDERER_VENUS | VIRGL_RENDERER_RENDER_SERVER;
   CHECK(virgl_renderer_init(&cookie_object, flags, NULL) == -EINVAL, "NULL callbacks");
   struct virgl_renderer_callbacks v0 = { .version = 0 };
   CHECK(virgl_renderer_init(&cookie_object, flags, &v0) == -EINVAL, "version 0");
   CHECK(virgl_renderer_init(&cookie_object, flags, &callbacks) == 0, "init");
   CHECK(virgl_renderer_init(&cookie_object, flags, &callbacks) == 0, "repeated init");
}

static void test_contexts(void)
{
   CHECK(create_venus_context(1, "abi-test") == 0, "venus context 1");
   CHECK(create_venus_context(1, "abi-test") == 0, "same context again");
   CHECK(virgl_renderer_context_create(1, 0, NULL) == -EINVAL, "ctx 1 with another capset");
   CHECK(create_venus_context(0, "zero") == -EINVAL, "context id 0");
   CHECK(virgl_renderer_context_create_with_flags(7, 0x104, 0, NULL) == -EINVAL,
         "unknown context flags");
   CHECK(virgl_renderer_context_create_with_flags(7, 5, 0, NULL) == -EINVAL, "capset 5");
   /* QEMU passes the guest's nlen with its 64-byte name buffer. */
   char name[64];
   memset(name, 'n', sizeof(name));
   CHECK(virgl_renderer_context_create_with_flags(8, 4, 0xffffffffu, name) == 0,
         "huge nlen with an unterminated 64-byte name");
   virgl_renderer_context_destroy(8);
   CHECK(virgl_renderer_context_create(3, 7, "inert") == 0, "inert (capset 0) context");
   int flags = VIRGL_RENDERER_VENUS;
   CHECK(virgl_renderer_init((void *)1, flags, &callbacks) == -EBUSY,
         "init with other arguments while in use");
}

static void test_fences(void)
{
   CHECK(virgl_renderer_create_fence(5, 0x0206) == 0, "ctx0 fence");
   CHECK(!fence_seen(5), "callbacks only inside poll");
   CHECK(wait_fence(5), "write_fence(5) never came");
   CHECK(virgl_renderer_context_create_fence(1, VIRGL_RENDERER_FENCE_FLAG_MERGEABLE, 0, 77) == 0,
         "context fence ring 0");
   CHECK(wait_ctx_fence(1, 0, 77), "write_context_fence(1, 0, 77) never came");
   CHECK(virgl_renderer_context_create_fence(1, 0, 64, 1) == -EINVAL, "ring 64");
   CHECK(virgl_renderer_context_create_fence(99, 0, 0, 1) == -ENOENT, "unknown context");
   /* A ring no queue is bound to: refused, but retired so the guest never hangs. */
   CHECK(virgl_renderer_context_create_fence(1, 0, 3, 78) < 0, "unbound ring");
   CHECK(wait_ctx_fence(1, 3, 78), "unbound-ring fence not retired");
   CHECK(virgl_renderer_context_create_fence(3, 0, 0, 79) == 0, "inert context fence");
   CHECK(wait_ctx_fence(3, 0, 79), "inert-context fence not retired");
}

static void test_host_blobs(void)
{
   const uint64_t size = 100000; /* not a page multiple */
   CHECK(create_host_blob(10, 1, 0, size, VIRGL_RENDERER_BLOB_FLAG_USE_MAPPABLE) == 0,
         "host blob");
   struct virgl_renderer_resource_info info;
   memset(&info, 0x55, sizeof(info));
   CHECK(virgl_renderer_resource_get_info(10, &info) == 0, "get_info after blob create");
   CHECK(info.handle == 10 && info.fd == -1 && info.tex_id == 0, "blob info %u %d %u",
         info.handle, info.fd, info.tex_id);
   struct virgl_renderer_resource_info_ext ext;
   memset(&ext, 0, sizeof(ext));
   CHECK(virgl_renderer_resource_get_info_ext(10, &ext) == 0, "get_info_ext");
   CHECK(ext.version == 0 && ext.base.handle == 10 && !ext.has_dmabuf_export, "info_ext");
   uint32_t map_info = 0;
   CHECK(virgl_renderer_resource_get_map_info(10, &map_info) == 0, "map info");
   CHECK(map_info == VIRGL_RENDERER_MAP_CACHE_CACHED, "map info %u", map_info);

   uint64_t mapped = 0;
   unsigned char *p = map_blob(10, size, &mapped);
   if (p) {
      for (uint64_t i = 0; i < mapped; i += 4093)
         p[i] = (unsigned char)(i * 7);
      int ok = 1;
      for (uint64_t i = 0; i < mapped; i += 4093)
         ok &= p[i] == (unsigned char)(i * 7);
      CHECK(ok, "read back through the mapping");
   }
   void *q;
   uint64_t qs;
   CHECK(virgl_renderer_resource_map(10, &q, &qs) == -EINVAL, "second map");
   CHECK(virgl_renderer_resource_map(10, NULL, &qs) == -EINVAL, "NULL map pointer");
   CHECK(virgl_renderer_resource_unmap(10) == 0, "unmap");
   CHECK(virgl_renderer_resource_unmap(10) == -EINVAL, "second unmap");
   virgl_renderer_resource_unref(10);
   CHECK(virgl_renderer_resource_get_info(10, &info) == -ENOENT, "info after unref");
   virgl_renderer_resource_unref(10); /* unknown: ignored */

   /* Not mappable: no map info, no map. */
   CHECK(create_host_blob(11, 1, 0, 4096, 0) == 0, "unmappable blob");
   CHECK(virgl_renderer_resource_get_map_info(11, &map_info) == -EINVAL, "map info");
   CHECK(virgl_renderer_resource_map(11, &q, &qs) == -EINVAL, "map unmappable");
   virgl_renderer_resource_unref(11);

   /* Hostile creates. */
   uint32_t m = VIRGL_RENDERER_BLOB_FLAG_USE_MAPPABLE;
   CHECK(virgl_renderer_resource_create_blob(NULL) == -EINVAL, "NULL args");
   CHECK(create_host_blob(0, 1, 0, 4096, m) == -EINVAL, "resource id 0");
   CHECK(create_host_blob(12, 1, 0, 0, m) == -EINVAL, "size 0");
   CHECK(create_host_blob(12, 1, 0, 1ull << 50, m) < 0, "absurd size");
   CHECK(create_host_blob(12, 1, 0, UINT64_MAX, m) < 0, "UINT64_MAX size");
   CHECK(create_host_blob(12, 99, 0, 4096, m) == -ENOENT, "unknown context");
   CHECK(create_host_blob(12, 3, 0, 4096, m) == -EINVAL, "inert context");
   CHECK(create_host_blob(12, 1, 0xdead, 4096, m) < 0, "unknown device memory id");
   struct virgl_renderer_resource_create_blob_args a = {
      .res_handle = 12, .ctx_id = 1, .blob_mem = VIRGL_RENDERER_BLOB_MEM_HOST3D_GUEST,
      .size = 4096,
   };
   CHECK(virgl_renderer_resource_create_blob(&a) == -EINVAL, "HOST3D_GUEST");
   a.blob_mem = 77;
   CHECK(virgl_renderer_resource_create_blob(&a) == -EINVAL, "blob_mem 77");
   struct iovec one = { malloc(64), 64 };
   a.blob_mem = VIRGL_RENDERER_BLOB_MEM_HOST3D;
   a.iovecs = &one;
   a.num_iovs = 1;
   CHECK(virgl_renderer_resource_create_blob(&a) == -EINVAL, "HOST3D with iovecs");
   /* A GUEST blob needs enough backing; its iovecs come back at detach. */
   a.blob_mem = VIRGL_RENDERER_BLOB_MEM_GUEST;
   a.size = 65;
   CHECK(virgl_renderer_resource_create_blob(&a) == -EINVAL, "guest blob larger than backing");
   a.size = 64;
   CHECK(virgl_renderer_resource_create_blob(&a) == 0, "guest blob");
   CHECK(virgl_renderer_resource_create_blob(&a) == -EINVAL, "duplicate id");
   CHECK(virgl_renderer_resource_get_info(12, &info) == 0, "guest blob info");
   CHECK(virgl_renderer_resource_map(12, &q, &qs) == -EINVAL, "map a guest blob");
   struct iovec *back = NULL;
   int n = 0;
   virgl_renderer_resource_detach_iov(12, &back, &n);
   CHECK(back == &one && n == 1, "guest blob iovecs handed back: %p %d", (void *)back, n);
   virgl_renderer_resource_unref(12);
   free(one.iov_base);

   /* A blob mapped when the guest destroys its context stays valid. */
   CHECK(create_venus_context(4, "short-lived") == 0, "context 4");
   CHECK(create_host_blob(13, 4, 0, 8192, m) == 0, "blob of context 4");
   p = map_blob(13, 8192, NULL);
   virgl_renderer_context_destroy(4);
   if (p) {
      p[0] = 42;
      CHECK(p[0] == 42, "mapping after its context was destroyed");
   }
   CHECK(virgl_renderer_resource_unmap(13) == 0, "unmap after context destroy");
   virgl_renderer_resource_unref(13);
}

static void test_plain_resources(void)
{
   enum { W = 64, H = 64, STRIDE = W * 4 };
   struct virgl_renderer_resource_create_args args = {
      .handle = 20, .target = 2, .format = 1 /* B8G8R8A8_UNORM */, .bind = 2,
      .width = W, .height = H, .depth = 1, .array_size = 1, .flags = 1,
   };
   CHECK(virgl_renderer_resource_create(&args, NULL, 0) == 0, "2D resource");
   CHECK(virgl_renderer_resource_create(&args, NULL, 0) == -EINVAL, "duplicate 2D id");

   /* Guest backing in three uneven pieces. */
   unsigned char *guest = malloc(STRIDE * H);
   for (int i = 0; i < STRIDE * H; i++)
      guest[i] = (unsigned char)(i * 13 + 1);
   struct iovec *iov = malloc(3 * sizeof(*iov));
   iov[0] = (struct iovec){ guest, 1000 };
   iov[1] = (struct iovec){ guest + 1000, 7 };
   iov[2] = (struct iovec){ guest + 1007, STRIDE * H - 1007 };
   CHECK(virgl_renderer_resource_attach_iov(20, iov, 3) == 0, "attach");
   CHECK(virgl_renderer_resource_attach_iov(20, iov, 3) == -EINVAL, "second attach");

   struct virgl_box whole = { 0, 0, 0, W, H, 1 };
   CHECK(virgl_renderer_transfer_write_iov(20, 0, 0, 0, 0, &whole, 0, NULL, 0) == 0,
         "transfer to host");

   struct virgl_renderer_resource_info info;
   CHECK(virgl_renderer_resource_get_info(20, &info) == 0, "2D info");
   CHECK(info.width == W && info.height == H && info.virgl_format == 1 &&
         info.stride == STRIDE && info.tex_id == 0 && info.flags == 1 && info.fd == -1,
         "2D info %ux%u fmt %u stride %u", info.width, info.height, info.virgl_format,
         info.stride);

   uint32_t cw = 0, ch = 0;
   unsigned char *cursor = virgl_renderer_get_cursor_data(20, &cw, &ch);
   CHECK(cursor != NULL && cw == W && ch == H, "cursor data %p %ux%u", (void *)cursor, cw, ch);
   if (cursor) {
      CHECK(memcmp(cursor, guest, STRIDE * H) == 0, "cursor contents");
      free(cursor); /* QEMU frees it */
   }

   /* A sub-box at its offset in the guest image, as the guest kernel sends it. */
   struct virgl_box sub = { 8, 4, 0, 16, 8, 1 };
   uint64_t offset = 4 * STRIDE + 8 * 4;
   for (int y = 0; y < 8; y++)
      memset(guest + offset + y * STRIDE, 0xa0 + y, 16 * 4);
   CHECK(virgl_renderer_transfer_write_iov(20, 0, 0, 0, 0, &sub, offset, NULL, 0) == 0,
         "sub-box to host");
   /* Read it back packed (stride 64) into a separate buffer. */
   unsigned char packed[16 * 4 * 8];
   memset(packed, 0, sizeof(packed));
   struct iovec out = { packed, sizeof(packed) };
   CHECK(virgl_renderer_transfer_read_iov(20, 0, 0, 16 * 4, 0, &sub, 0, &out, 1) == 0,
         "sub-box from host");
   int ok = 1;
   for (int y = 0; y < 8; y++)
      for (int x = 0; x < 64; x++)
         ok &= packed[y * 64 + x] == 0xa0 + y;
   CHECK(ok, "sub-box round trip");
   /* And the whole image back into the backing. */
   memset(guest, 0, STRIDE * H);
   CHECK(virgl_renderer_transfer_read_iov(20, 0, 0, 0, 0, &whole, 0, NULL, 0) == 0,
         "transfer from host");
   CHECK(guest[offset] == 0xa0 && guest[offset + 7 * STRIDE] == 0xa7 && guest[1] == 14,
         "backing after read");

   /* Hostile transfers. */
   struct virgl_box outside = { 60, 0, 0, 8, 1, 1 };
   CHECK(virgl_renderer_transfer_write_iov(20, 0, 0, 0, 0, &outside, 0, NULL, 0) == -EINVAL,
         "box outside");
   struct virgl_box wrap = { 0xffffffffu, 0, 0, 2, 1, 1 };
   CHECK(virgl_renderer_transfer_write_iov(20, 0, 0, 0, 0, &wrap, 0, NULL, 0) == -EINVAL,
         "box wraps");
   struct virgl_box deep = { 0, 0, 0, W, H, 0xffffffffu };
   CHECK(virgl_renderer_transfer_write_iov(20, 0, 0, 0, 0, &deep, 0, NULL, 0) == -EINVAL,
         "box depth");
   CHECK(virgl_renderer_transfer_write_iov(20, 0, 0, 0, 0, NULL, 0, NULL, 0) == -EINVAL,
         "NULL box");
   CHECK(virgl_renderer_transfer_write_iov(20, 0, 0, 0, 0, &whole, 1, NULL, 0) == -EINVAL,
         "one byte past the backing");
   CHECK(virgl_renderer_transfer_write_iov(20, 0, 0, 0, 0, &whole, UINT64_MAX, NULL, 0) ==
            -EINVAL,
         "offset overflow");
   CHECK(virgl_renderer_transfer_write_iov(20, 0, 0, 0xffffffffu, 0xffffffffu, &whole, 0, NULL,
                                           0) == -EINVAL,
         "huge strides");
   CHECK(virgl_renderer_transfer_write_iov(20, 0, 1, 0, 0, &whole, 0, NULL, 0) == -EINVAL,
         "mip level 1");
   CHECK(virgl_renderer_transfer_write_iov(20, 0, -1, 0, 0, &whole, 0, NULL, 0) == -EINVAL,
         "negative level");
   CHECK(virgl_renderer_transfer_read_iov(20, 0, 0, 0, 0, &whole, 0, &out, -1) == -EINVAL,
         "negative iovec count");
   CHECK(virgl_renderer_transfer_read_iov(20, 0, 0, 0, 0, &whole, 0, &out, 1 << 20) == -ENOMEM,
         "too many iovecs");
   CHECK(virgl_renderer_transfer_write_iov(99, 0, 0, 0, 0, &whole, 0, NULL, 0) == -ENOENT,
         "unknown resource");
   struct iovec null_base = { NULL, 64 };
   CHECK(virgl_renderer_transfer_read_iov(20, 0, 0, 0, 0, &sub, 0, &null_base, 1) == -EINVAL,
         "iovec with a NULL base");

   struct iovec *back = NULL;
   int n = 0;
   virgl_renderer_resource_detach_iov(20, &back, &n);
   CHECK(back == iov && n == 3, "detach hands back the array: %p %d", (void *)back, n);
   back = (void *)1;
   n = 5;
   virgl_renderer_resource_detach_iov(20, &back, &n);
   CHECK(back == NULL && n == 0, "nothing attached");
   virgl_renderer_resource_detach_iov(20, NULL, NULL);
   CHECK(virgl_renderer_transfer_write_iov(20, 0, 0, 0, 0, &whole, 0, NULL, 0) == -EINVAL,
         "no backing");

   /* Hostile creates. */
   CHECK(virgl_renderer_resource_create(NULL, NULL, 0) == -EINVAL, "NULL args");
   struct virgl_renderer_resource_create_args bad = args;
   bad.handle = 21;
   bad.width = 0;
   CHECK(virgl_renderer_resource_create(&bad, NULL, 0) == -EINVAL, "width 0");
   bad.width = 100000;
   CHECK(virgl_renderer_resource_create(&bad, NULL, 0) == -ENOMEM, "width 100000");
   bad.width = 16384;
   bad.height = 16384;
   CHECK(virgl_renderer_resource_create(&bad, NULL, 0) == -ENOMEM, "1 GiB image");
   bad = args;
   bad.handle = 21;
   bad.format = 9999;
   CHECK(virgl_renderer_resource_create(&bad, NULL, 0) == -EINVAL, "unknown format");
   bad.format = 1;
   bad.array_size = 0xffffffffu;
   CHECK(virgl_renderer_resource_create(&bad, NULL, 0) == -ENOMEM, "array size");
   bad = args;
   bad.handle = 0;
   CHECK(virgl_renderer_resource_create(&bad, NULL, 0) == -EINVAL, "handle 0");
   CHECK(virgl_renderer_resource_attach_iov(99, NULL, 0) == -ENOENT, "attach unknown");
   CHECK(virgl_renderer_resource_attach_iov(20, NULL, 5) == -EINVAL, "NULL iovecs");
   CHECK(virgl_renderer_resource_attach_iov(20, iov, -1) == -EINVAL, "negative count");
   CHECK(virgl_renderer_resource_get_info(20, NULL) == -EINVAL, "NULL info");
   CHECK(virgl_renderer_resource_get_info(-1, &info) == -ENOENT, "negative id");
   CHECK(virgl_renderer_get_cursor_data(20, NULL, &ch) == NULL, "NULL width");
   CHECK(virgl_renderer_get_cursor_data(99, &cw, &ch) == NULL, "unknown cursor");

   /* A buffer resource (target 0) and a non-cursor format. */
   struct virgl_renderer_resource_create_args buf = {
      .handle = 22, .target = 0, .format = 64, .width = 4096, .height = 1, .depth = 1,
      .array_size = 1,
   };
   CHECK(virgl_renderer_resource_create(&buf, NULL, 0) == 0, "buffer resource");
   CHECK(virgl_renderer_get_cursor_data(22, &cw, &ch) == NULL, "buffer is no cursor");
   virgl_renderer_resource_unref(22);

   virgl_renderer_ctx_attach_resource(1, 20);
   virgl_renderer_ctx_attach_resource(99, 20);
   virgl_renderer_ctx_attach_resource(1, 99);
   virgl_renderer_ctx_detach_resource(1, 20);
   virgl_renderer_ctx_detach_resource(-5, -5);
   virgl_renderer_resource_unref(20);
   free(iov);
   free(guest);
}

static void test_submits(void)
{
   uint32_t aligned[4] = { 0 };
   CHECK(virgl_renderer_submit_cmd(aligned, 1, 0) == 0, "zero-length submit");
   CHECK(virgl_renderer_submit_cmd(NULL, 1, 0) == 0, "zero-length NULL submit");
   CHECK(virgl_renderer_submit_cmd(NULL, 1, 2) == -EFAULT, "NULL buffer");
   CHECK(virgl_renderer_submit_cmd((char *)aligned + 1, 1, 2) == -EFAULT, "misaligned buffer");
   CHECK(virgl_renderer_submit_cmd(aligned, 1, -1) == -EINVAL, "negative length");
   CHECK(virgl_renderer_submit_cmd(aligned, 1, 0x7fffffff) == -ENOMEM, "huge length");
   CHECK(virgl_renderer_submit_cmd(aligned, 99, 1) == -ENOENT, "unknown context");
   CHECK(virgl_renderer_submit_cmd(aligned, 3, 1) == -EINVAL, "inert context");

   /* Garbage makes context 2 fatal; context 1 is unaffected. */
   CHECK(create_venus_context(2, "victim") == 0, "context 2");
   uint32_t garbage[2] = { 0xffffu, 0 };
   CHECK(virgl_renderer_submit_cmd(garbage, 2, 2) < 0, "garbage accepted");
   uint32_t empty_instance_version[2] = { 0, 0 };
   CHECK(virgl_renderer_submit_cmd(empty_instance_version, 2, 2) < 0, "fatal stays fatal");
   CHECK(virgl_renderer_context_create_fence(2, 0, 0, 9) == 0, "fence on a fatal context");
   CHECK(wait_ctx_fence(2, 0, 9), "fatal context's fence not retired");
   CHECK(virgl_renderer_context_create_fence(1, 0, 0, 80) == 0, "context 1 after 2 died");
   CHECK(wait_ctx_fence(1, 0, 80), "context 1 fence");
   CHECK(create_host_blob(14, 1, 0, 4096, 0) == 0, "context 1 still creates blobs");
   virgl_renderer_resource_unref(14);
   virgl_renderer_context_destroy(2);
   CHECK(virgl_renderer_context_create_fence(2, 0, 0, 10) == -ENOENT, "destroyed context");
   virgl_renderer_context_destroy(2);   /* unknown: ignored */
   virgl_renderer_context_destroy(999);
}

static void *read_file(const char *path, size_t *len)
{
   FILE *f = fopen(path, "rb");
   if (!f)
      return NULL;
   fseek(f, 0, SEEK_END);
   long n = ftell(f);
   fseek(f, 0, SEEK_SET);
   /* submit_cmd wants 4-byte alignment; malloc gives 16. */
   void *buf = malloc(n > 0 ? (size_t)n : 1);
   if (buf && fread(buf, 1, (size_t)n, f) != (size_t)n) {
      free(buf);
      buf = NULL;
   }
   fclose(f);
   *len = (size_t)n;
   return buf;
}

static void test_venus_stream(const char *stream_path, const char *reply_path)
{
   uint32_t m = VIRGL_RENDERER_BLOB_FLAG_USE_MAPPABLE;
   CHECK(create_host_blob(REPLY_RES, 1, 0, REPLY_SIZE, m) == 0, "reply blob");
   unsigned char *reply = map_blob(REPLY_RES, REPLY_SIZE, NULL);
   size_t len = 0;
   void *stream = read_file(stream_path, &len);
   CHECK(stream != NULL && len % 4 == 0, "reading %s", stream_path);
   if (!stream || !reply)
      return;
   int r = virgl_renderer_submit_cmd(stream, 1, (int)(len / 4));
   CHECK(r == 0, "Venus stream of %zu bytes: %d", len, r);
   free(stream);
   FILE *f = fopen(reply_path, "wb");
   CHECK(f && fwrite(reply, 1, REPLY_SIZE, f) == REPLY_SIZE, "writing %s", reply_path);
   if (f)
      fclose(f);

   /* The queue bound to ring 1 retires fences on that timeline. */
   CHECK(virgl_renderer_context_create_fence(1, VIRGL_RENDERER_FENCE_FLAG_MERGEABLE, 1, 500) ==
            0,
         "fence on ring 1");
   CHECK(virgl_renderer_context_create_fence(1, 0, 1, 501) == 0, "fence on ring 1");
   CHECK(wait_ctx_fence(1, 1, 501) && ctx_fence_seen(1, 1, 500), "ring 1 fences");

   /* Host-visible device memory as a blob, mapped twice: the same pages. */
   CHECK(create_host_blob(31, 1, MEMORY_ID, MEMORY_SIZE, m) == 0, "device memory blob");
   CHECK(create_host_blob(32, 1, MEMORY_ID, MEMORY_SIZE, m) == 0, "second blob of it");
   CHECK(create_host_blob(33, 1, MEMORY_ID, MEMORY_SIZE * 2, m) < 0, "larger than the memory");
   unsigned char *a = map_blob(31, MEMORY_SIZE, NULL);
   unsigned char *b = map_blob(32, MEMORY_SIZE, NULL);
   if (a && b) {
      /* Our own mappings differ; with VENUS_HOST_MEMORY=map-ptr both are the
       * driver's single mapping. Either way they show the same pages. */
      for (int i = 0; i < MEMORY_SIZE; i += 512)
         a[i] = (unsigned char)(i >> 9);
      int same = 1;
      for (int i = 0; i < MEMORY_SIZE; i += 512)
         same &= b[i] == (unsigned char)(i >> 9);
      CHECK(same, "device memory seen through both blobs");
   }
   CHECK(virgl_renderer_resource_unmap(31) == 0 && virgl_renderer_resource_unmap(32) == 0,
         "unmap memory blobs");
   virgl_renderer_resource_unref(31);
   virgl_renderer_resource_unref(32);
   CHECK(virgl_renderer_resource_unmap(REPLY_RES) == 0, "unmap reply blob");
   virgl_renderer_resource_unref(REPLY_RES);
}

static void test_reset(void)
{
   uint32_t m = VIRGL_RENDERER_BLOB_FLAG_USE_MAPPABLE;
   CHECK(create_host_blob(40, 1, 0, 4096, m) == 0, "blob before reset");
   unsigned char *p = map_blob(40, 4096, NULL);
   CHECK(virgl_renderer_create_fence(41, 0) == 0, "fence before reset");
   virgl_renderer_reset();
   /* QEMU may still map a blob the reset released: the range stays usable. */
   if (p) {
      p[0] = 1;
      CHECK(p[0] == 1, "released mapping stays valid");
   }
   struct virgl_renderer_resource_info info;
   CHECK(virgl_renderer_resource_get_info(40, &info) == -ENOENT, "resources gone");
   CHECK(virgl_renderer_context_create_fence(1, 0, 0, 1) == -ENOENT, "contexts gone");
   int flags = VIRGL_RENDERER_VENUS | VIRGL_RENDERER_RENDER_SERVER;
   CHECK(virgl_renderer_init(&cookie_object, flags, &callbacks) == 0, "init after reset");
   poll_once();
   CHECK(!fence_seen(41), "a fence from before the reset was delivered");
   CHECK(create_venus_context(1, "after-reset") == 0, "context after reset");
   CHECK(virgl_renderer_context_create_fence(1, 0, 0, 600) == 0, "fence after reset");
   CHECK(wait_ctx_fence(1, 0, 600), "fence after reset");
   CHECK(create_host_blob(42, 1, 0, 4096, m) == 0, "blob after reset");
}

static void test_cleanup(void)
{
   virgl_renderer_cleanup(NULL);
   CHECK(create_venus_context(1, "after-cleanup") < 0, "context after cleanup");
   struct virgl_renderer_resource_info info;
   CHECK(virgl_renderer_resource_get_info(42, &info) < 0, "resource after cleanup");
   uint32_t ver, size = 0;
   virgl_renderer_get_cap_set(4, &ver, &size);
   CHECK(size == 176, "capset after cleanup: %u", size);
   virgl_renderer_poll();
   virgl_renderer_cleanup(NULL);
   virgl_renderer_reset();
}

int main(int argc, char **argv)
{
   setvbuf(stdout, NULL, _IONBF, 0);
   test_capsets_before_init();
   test_init();
   test_contexts();
   test_fences();
   test_host_blobs();
   test_plain_resources();
   test_submits();
   if (argc >= 3)
      test_venus_stream(argv[1], argv[2]);
   test_reset();
   test_cleanup();
   CHECK(bad_cookie == 0, "%d callbacks with the wrong cookie", bad_cookie);
   CHECK(outside_poll_calls == 0, "%d callbacks outside poll", outside_poll_calls);
   printf("virgl_abi_test: %d checks, %d failures\n", checks, failures);
   if (failures)
      return 1;
   printf("PASS\n");
   return 0;
}
