/* inotify_watch - printing what happens in a directory, from inotify on an evloop loop.
 *
 *   ./inotify_watch DIR [COUNT]
 *
 * Reports files created, written, renamed (both names, paired by the kernel's cookie) and
 * deleted.  Ends after COUNT events (default: never; Ctrl-C).  See docs/inotify.md. */
#define _GNU_SOURCE 1
#define EVLOOP_IMPLEMENTATION
#include "../evloop.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "glue/evl_inotify.h"

static int wanted, seen;

static const char *what(unsigned mask) {
    if (mask & IN_CREATE) return "created";
    if (mask & IN_CLOSE_WRITE) return "written";
    if (mask & IN_MOVED_FROM) return "renamed from";
    if (mask & IN_MOVED_TO) return "renamed to";
    if (mask & IN_DELETE) return "deleted";
    if (mask & IN_Q_OVERFLOW) return "(events lost: rescan)";
    return "?";
}

static void on_event(evl_dirwatch *d, unsigned mask, unsigned cookie, const char *name) {
    if (cookie) printf("%-13s %s (cookie %u)\n", what(mask), name, cookie);
    else printf("%-13s %s\n", what(mask), name);
    if (wanted && ++seen == wanted) evl_stop(d->loop);
}

static void on_interrupt(evl_loop *loop, evl_signal *s, int signum) {
    (void)s, (void)signum;
    evl_stop(loop);
}

int main(int argc, char **argv) {
    evl_loop loop;
    evl_dirwatch d;
    evl_signal interrupt;
    int rc;
    if (argc < 2) {
        fprintf(stderr, "usage: %s DIR [COUNT]\n", argv[0]);
        return 2;
    }
    wanted = argc > 2 ? atoi(argv[2]) : 0;
    if (evl_init(&loop) < 0) return 1;
    rc = evl_dirwatch_start(&loop, &d, argv[1], IN_CREATE | IN_CLOSE_WRITE | IN_MOVED_FROM | IN_MOVED_TO | IN_DELETE,
                            on_event);
    if (rc < 0) {
        fprintf(stderr, "%s: %s\n", argv[1], strerror(-rc));
        return 1;
    }
    evl_signal_init(&interrupt, on_interrupt, SIGINT);
    evl_signal_start(&loop, &interrupt);
    evl_unref(&loop, &interrupt);
    evl_run(&loop, EVL_FOREVER);
    evl_dirwatch_stop(&d);
    evl_signal_stop(&loop, &interrupt);
    evl_deinit(&loop);
    return 0;
}
