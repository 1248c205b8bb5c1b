/* dns_resolve - resolving names with c-ares without blocking the loop.
 *
 *   ./dns_resolve [--server IP[:PORT]] NAME...
 *
 * Every name is looked up at once (IPv4 and IPv6); each answer is printed as it comes, with the
 * time it took, while a 10 ms timer keeps ticking on the same loop.  Without --server, the
 * system's resolv.conf is used.  See docs/dns.md. */
#define _GNU_SOURCE 1
#define EVLOOP_IMPLEMENTATION
#include "../evloop.h"

#include <arpa/inet.h>
#include <ares.h>
#include <netdb.h>
#include <stdio.h>
#include <string.h>

#include "glue/evl_ares.h"

typedef struct lookup {
    const char *name;
    int family;
    evl_time started;
} lookup;

static evl_loop loop;
static int left, ticks;

static void on_host(void *arg, int status, int timeouts, struct hostent *host) {
    lookup *l = (lookup *)arg;
    double ms = (double)(evl_now_update(&loop) - l->started) / 1e6;
    char text[INET6_ADDRSTRLEN];
    int i;
    if (status != ARES_SUCCESS) {
        printf("%-30s %s  %s (%d timeouts, %.1f ms)\n", l->name, l->family == AF_INET ? "A   " : "AAAA",
               ares_strerror(status), timeouts, ms);
    } else {
        for (i = 0; host->h_addr_list[i]; i++)
            printf("%-30s %s  %s (%.1f ms)\n", l->name, l->family == AF_INET ? "A   " : "AAAA",
                   inet_ntop(host->h_addrtype, host->h_addr_list[i], text, sizeof text), ms);
    }
    if (--left == 0) evl_stop(&loop);
}

static void on_tick(evl_loop *l, evl_timer *t) {
    (void)l, (void)t;
    ticks++;
}

int main(int argc, char **argv) {
    static lookup lookups[2 * 64];
    struct ares_options options;
    evl_ares a;
    evl_timer tick;
    int i = 1, n = 0;
    memset(&options, 0, sizeof options);
    if (ares_library_init(ARES_LIB_INIT_ALL) != ARES_SUCCESS || evl_init(&loop) < 0) return 1;
    options.timeout = 1000;
    options.tries = 2;
    options.flags = ARES_FLAG_NOCHECKRESP;      /* report REFUSED/SERVFAIL as such, not as a retry */
    if (evl_ares_init(&a, &loop, &options, ARES_OPT_TIMEOUTMS | ARES_OPT_TRIES | ARES_OPT_FLAGS) != 0) return 1;
    if (argc > 2 && !strcmp(argv[1], "--server")) {
        if (ares_set_servers_ports_csv(a.channel, argv[2]) != ARES_SUCCESS) return 2;
        i = 3;
    }
    if (i >= argc) {
        fprintf(stderr, "usage: %s [--server IP[:PORT]] NAME...\n", argv[0]);
        return 2;
    }
    evl_timer_init(&tick, on_tick);
    evl_timer_start(&loop, &tick, EVL_MS(10), EVL_MS(10));
    evl_unref(&loop, &tick);
    for (; i < argc && n < 2 * 64; i++) {
        int family;
        for (family = 0; family < 2; family++, n++) {
            lookups[n].name = argv[i];
            lookups[n].family = family ? AF_INET6 : AF_INET;
            lookups[n].started = evl_now_update(&loop);
            left++;
            ares_gethostbyname(a.channel, argv[i], lookups[n].family, on_host, &lookups[n]);
        }
    }
    if (left) evl_run(&loop, EVL_FOREVER);
    printf("%d lookups; a 10 ms timer ticked %d times meanwhile\n", n, ticks);
    evl_ares_deinit(&a);
    evl_timer_stop(&loop, &tick);
    evl_deinit(&loop);
    ares_library_cleanup();
    return 0;
}
