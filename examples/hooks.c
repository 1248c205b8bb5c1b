/* hooks - PREPARE and CHECK hooks, the way to plug another library's work into the loop.
 *
 *   ./hooks
 *
 * A pretend "logger library" collects lines that callbacks produce and wants to write them in one
 * batch per loop iteration.  A CHECK hook flushes after each iteration's callbacks; a PREPARE hook
 * is where such a library would tell the loop about its own timeouts before it sleeps (here it
 * only counts how often the loop went to sleep).  Hooks are unreferenced so they never keep the
 * loop alive on their own. */
#define _GNU_SOURCE 1
#define EVLOOP_IMPLEMENTATION
#include "../evloop.h"

#include <stdio.h>
#include <string.h>

static char pending[1024];
static size_t pending_len;
static int sleeps;

static void log_line(const char *line) {
    size_t n = strlen(line);
    if (pending_len + n + 1 >= sizeof pending) return;
    memcpy(pending + pending_len, line, n);
    pending_len += n;
    pending[pending_len++] = '\n';
}

static void before_sleep(evl_loop *loop, evl_hook *h) {
    (void)loop;
    (void)h;
    sleeps++;
}

static void after_wake(evl_loop *loop, evl_hook *h) {
    (void)loop;
    (void)h;
    if (!pending_len) return;
    printf("--- flush (%d sleeps so far) ---\n%.*s", sleeps, (int)pending_len, pending);
    pending_len = 0;
}

static void tick(evl_loop *loop, evl_timer *t) {
    static int n;
    char line[64];
    snprintf(line, sizeof line, "timer %s fired", (const char *)t->data);
    log_line(line);
    if (++n == 6) evl_stop(loop);
}

int main(void) {
    evl_loop loop;
    evl_hook prepare, check;
    evl_timer a, b;
    if (evl_init(&loop) < 0) return 1;
    evl_hook_init(&prepare, before_sleep, EVL_PREPARE);
    evl_hook_init(&check, after_wake, EVL_CHECK);
    evl_hook_start(&loop, &prepare);
    evl_hook_start(&loop, &check);
    evl_unref(&loop, &prepare);
    evl_unref(&loop, &check);
    evl_timer_init(&a, tick);
    evl_timer_init(&b, tick);
    a.data = (void *)"A";
    b.data = (void *)"B";
    evl_timer_start(&loop, &a, EVL_MS(20), EVL_MS(20));
    evl_timer_start(&loop, &b, EVL_MS(20), EVL_MS(40));     /* often due together with A */
    evl_run(&loop, EVL_FOREVER);
    after_wake(&loop, &check);          /* the last lines, logged by the callback that stopped */
    evl_deinit(&loop);
    return 0;
}
