/* tu2.h - what test_ctx_tu2.c, the second translation unit, offers test_ctx.c. */
#ifndef EVL_TEST_TU2_H
#define EVL_TEST_TU2_H
#if defined(__cplusplus)
extern "C" {
#endif
const char *tu2_backend_name(void);
void tu2_start(evl__ctx *ctx, void *stack, size_t size, evl__ctx *back, int *log);
void tu2_release(evl__ctx *ctx);
#if defined(__cplusplus)
}
#endif
#endif
