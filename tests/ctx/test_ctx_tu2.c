/* test_ctx_tu2.c - a second translation unit that includes the context layer, as an
   EVLOOP_STATIC build of evloop would: its static copies and the first unit's
   must link together (one weak copy of the asm) and work on each other's
   contexts. Also compiled as C++ in one of the test builds, and as a shared
   library (tests/matrix.sh, "ctx-shared"): a context of the library's code is
   then switched to from the program's and back, which shows that a switch
   keeps each side's module pointer (the TOC in r2 on PowerPC 64, $gp on MIPS
   n64). */
#if !defined(_WIN32) && !defined(_GNU_SOURCE)
#define _GNU_SOURCE 1
#endif
/* The context layer alone, from evloop.h (see "Fibers: the context switch" there). */
#define EVL__CONTEXT_ONLY
#define EVLOOP_IMPLEMENTATION
#include "../../evloop.h"

#include "tu2.h"

struct tu2_state {
    evl__ctx *self;
    evl__ctx *back;
    int *log;
};
static struct tu2_state tu2;

static void tu2_entry(void *arg) {
    struct tu2_state *st = (struct tu2_state *)arg;
    st->log[0] = 1;
    evl__ctx_switch(st->self, st->back); /* this unit's copy of the switch */
    st->log[2] = st->log[1] + 1;
    evl__ctx_exit(st->self, st->back);
}

const char *tu2_backend_name(void) { return EVL__CTX_BACKEND_NAME; }

void tu2_start(evl__ctx *ctx, void *stack, size_t size, evl__ctx *back, int *log) {
    tu2.self = ctx;
    tu2.back = back;
    tu2.log = log;
    evl__ctx_init(ctx, stack, size, tu2_entry, &tu2);
}

void tu2_release(evl__ctx *ctx) { evl__ctx_release(ctx); }
