/* gpio_sysfs - following a GPIO input through sysfs, the way the kernel wants it read.
 *
 *   ./gpio_sysfs VALUE_FILE [COUNT]
 *
 * VALUE_FILE is a GPIO's value file (/sys/class/gpio/gpio17/value, after `echo 17 > export` and
 * `echo both > gpio17/edge`), or any file that announces changes the same way (/proc/self/mounts:
 * mount something and see).  The file is watched for EVL_PRI alone - it is always readable, so
 * EVL_READ would call back without end - and on each change read again from offset 0, which also
 * re-arms the notification.  Ends after COUNT changes (default: never; Ctrl-C).  See docs/gpio.md. */
#define _GNU_SOURCE 1
#define EVLOOP_IMPLEMENTATION
#include "../evloop.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define EVL_GPIO_VALUE_MAX 16384                /* room for /proc/self/mounts too */
#include "glue/evl_gpio.h"

static int wanted;

static void on_change(evl_gpio_value *g, const char *value) {
    const char *last_line = strrchr(value, '\n');
    printf("change %u at %.3f s: %s\n", g->changes, (double)evl_now(g->loop) / 1e9,
           last_line ? last_line + 1 : value);  /* a value file has one line; a table, its last */
    if (wanted && (int)g->changes == wanted) evl_stop(g->loop);
}

static void on_interrupt(evl_loop *loop, evl_signal *s, int signum) {
    (void)s, (void)signum;
    evl_stop(loop);
}

int main(int argc, char **argv) {
    evl_loop loop;
    evl_gpio_value g;
    evl_signal interrupt;
    int rc;
    if (argc < 2) {
        fprintf(stderr, "usage: %s VALUE_FILE [COUNT]\n", argv[0]);
        return 2;
    }
    wanted = argc > 2 ? atoi(argv[2]) : 0;
    if (evl_init(&loop) < 0) return 1;
    if ((rc = evl_gpio_value_start(&loop, &g, argv[1], on_change)) < 0) {
        fprintf(stderr, "%s: %s\n", argv[1], strerror(-rc));
        return 1;
    }
    printf("%s: %zu bytes now; waiting for changes\n", argv[1], g.len);
    evl_signal_init(&interrupt, on_interrupt, SIGINT);
    evl_signal_start(&loop, &interrupt);
    evl_unref(&loop, &interrupt);
    evl_run(&loop, EVL_FOREVER);
    evl_gpio_value_stop(&g);
    evl_signal_stop(&loop, &interrupt);
    evl_deinit(&loop);
    return 0;
}
