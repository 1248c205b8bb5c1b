/* gpio_chardev - edge events of a GPIO line through the character device (GPIO uAPI v2).
 *
 *   ./gpio_chardev /dev/gpiochip0 OFFSET [COUNT]
 *
 * Requests line OFFSET of the chip as an input with both edges detected; the kernel queues each
 * edge with a timestamp on a descriptor that is readable while events wait, an ordinary EVL_READ
 * watcher.  Prints each edge; ends after COUNT edges (default: never; Ctrl-C).  Needs a GPIO chip
 * (real hardware, or the gpio-sim module).  See docs/gpio.md. */
#define _GNU_SOURCE 1
#define EVLOOP_IMPLEMENTATION
#include "../evloop.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "glue/evl_gpio.h"

#ifndef EVL_GPIO_HAS_CHARDEV
int main(void) {
    fprintf(stderr, "built without <linux/gpio.h> (GPIO uAPI v2, Linux 5.10)\n");
    return 1;
}
#else
static int wanted, seen;

static void on_edge(evl_gpio_line *l, const struct gpio_v2_line_event *e) {
    printf("line %u: %s edge at %llu.%09llu (event %u)\n", e->offset,
           e->id == GPIO_V2_LINE_EVENT_RISING_EDGE ? "rising" : "falling",
           (unsigned long long)(e->timestamp_ns / 1000000000u), (unsigned long long)(e->timestamp_ns % 1000000000u),
           e->line_seqno);
    if (wanted && ++seen == wanted) evl_stop(l->loop);
}

static void on_interrupt(evl_loop *loop, evl_signal *s, int signum) {
    (void)s, (void)signum;
    evl_stop(loop);
}

int main(int argc, char **argv) {
    evl_loop loop;
    evl_gpio_line line;
    evl_signal interrupt;
    int rc;
    if (argc < 3) {
        fprintf(stderr, "usage: %s /dev/gpiochipN OFFSET [COUNT]\n", argv[0]);
        return 2;
    }
    wanted = argc > 3 ? atoi(argv[3]) : 0;
    if (evl_init(&loop) < 0) return 1;
    rc = evl_gpio_line_start(&loop, &line, argv[1], (unsigned)atoi(argv[2]),
                             GPIO_V2_LINE_FLAG_EDGE_RISING | GPIO_V2_LINE_FLAG_EDGE_FALLING, on_edge);
    if (rc < 0) {
        fprintf(stderr, "%s line %s: %s\n", argv[1], argv[2], strerror(-rc));
        return 1;
    }
    evl_signal_init(&interrupt, on_interrupt, SIGINT);
    evl_signal_start(&loop, &interrupt);
    evl_unref(&loop, &interrupt);
    evl_run(&loop, EVL_FOREVER);
    evl_gpio_line_stop(&line);
    evl_signal_stop(&loop, &interrupt);
    evl_deinit(&loop);
    return 0;
}
#endif
