/* DNS with c-ares against a real dnsmasq started on a free port: 500 names resolved at once,
   answered by dnsmasq itself (*.example.test -> 127.0.0.42), refused (a domain it has no server
   for), or forwarded to a port where a socket takes the queries and never answers, so that c-ares
   times out.  Every answer and every timeout is checked.  A second batch after the first has
   finished gets a new socket from c-ares, usually with the number of the one it closed. */
#include "integ.h"

#include <arpa/inet.h>
#include <ares.h>
#include <netdb.h>
#include <netinet/in.h>

#include "../../examples/glue/evl_ares.h"

#define NAMES 500
#define ANSWERED 430                            /* name0..name429.example.test */
#define SILENT 50                               /* slowN.slow.test: forwarded, never answered */
#define UNKNOWN (NAMES - ANSWERED - SILENT)     /* nameN.nowhere.test: no server for it */
#define SECOND_BATCH 20

typedef struct lookup {
    int status, calls, timeouts;
    struct in_addr addr;
} lookup;

static lookup lookups[NAMES + SECOND_BATCH];
static int done;

static void on_host(void *arg, int status, int timeouts, struct hostent *host) {
    lookup *l = (lookup *)arg;
    l->status = status;
    l->timeouts = timeouts;
    l->calls++;
    if (status == ARES_SUCCESS) {
        CHECK(host->h_addrtype == AF_INET && host->h_addr_list[0] != NULL);
        memcpy(&l->addr, host->h_addr_list[0], sizeof l->addr);
    }
    done++;
}

static void name_of(int i, char *name, size_t size) {
    if (i < ANSWERED || i >= NAMES) snprintf(name, size, "name%d.example.test", i);
    else if (i < ANSWERED + SILENT) snprintf(name, size, "slow%d.slow.test", i);
    else snprintf(name, size, "name%d.nowhere.test", i);
}

static int run_until_done(evl_loop *loop, int want, evl_time limit) {
    evl_time end = t_clock() + limit;
    while (done < want && t_clock() < end) CHECK(evl_run(loop, EVL_MS(50)) >= 0);
    return done >= want;
}

static void five_hundred_names_at_once_answers_refusals_and_timeouts(void) {
    char dir[256], log[300], port_arg[32], server_arg[64], pid_arg[300], servers[64];
    const char *dnsmasq = integ_require("dnsmasq", "dnsmasq-base");
    struct sockaddr_in silent_addr;
    socklen_t len = sizeof silent_addr;
    struct ares_options options;
    evl_loop loop;
    evl_ares a;
    pid_t server;
    int port, silent, i, base[64], nbase, answered = 0, timed_out = 0, refused = 0, attempt;
    evl_time started, elapsed;

    /* The upstream that never answers: a bound UDP socket nobody reads (no ICMP error either). */
    silent = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    memset(&silent_addr, 0, sizeof silent_addr);
    silent_addr.sin_family = AF_INET;
    silent_addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    CHECK_EQ(bind(silent, (struct sockaddr *)&silent_addr, sizeof silent_addr), 0);
    CHECK_EQ(getsockname(silent, (struct sockaddr *)&silent_addr, &len), 0);

    integ_tmpdir(dir, sizeof dir, "dns");
    snprintf(log, sizeof log, "%s/dnsmasq.log", dir);
    for (attempt = 0;; attempt++) {             /* the port may be taken before dnsmasq binds it */
        port = integ_free_port(SOCK_DGRAM);
        snprintf(port_arg, sizeof port_arg, "--port=%d", port);
        snprintf(server_arg, sizeof server_arg, "--server=/slow.test/127.0.0.1#%d", ntohs(silent_addr.sin_port));
        snprintf(pid_arg, sizeof pid_arg, "--pid-file=%s/dnsmasq.pid", dir);
        {
            char *argv[] = {(char *)dnsmasq, (char *)"--no-daemon", port_arg, (char *)"--no-resolv",
                            (char *)"--no-hosts", (char *)"--address=/example.test/127.0.0.42", server_arg,
                            (char *)"--listen-address=127.0.0.1", (char *)"--bind-interfaces",
                            (char *)"--conf-file=/dev/null", pid_arg, NULL};
            server = integ_spawn(argv, log);
        }
        if (integ_await_tcp(port, server, log, EVL_SEC(10)) == 0) break; /* dnsmasq answers on TCP too */
        CHECK(attempt < 3);
    }

    CHECK_EQ(ares_library_init(ARES_LIB_INIT_ALL), ARES_SUCCESS);
    CHECK_EQ(evl_init(&loop), 0);
    nbase = integ_registered(&loop, base, 64);
    memset(&options, 0, sizeof options);
    options.timeout = 500;                      /* ms for the first try, doubled for the next */
    options.tries = 2;
    /* Without NOCHECKRESP, c-ares takes a REFUSED answer for a broken server and tries again until
       its tries run out: the caller then sees ARES_ETIMEOUT, not the refusal. */
    options.flags = ARES_FLAG_NOSEARCH | ARES_FLAG_NOCHECKRESP;
    CHECK_EQ(evl_ares_init(&a, &loop, &options, ARES_OPT_TIMEOUTMS | ARES_OPT_TRIES | ARES_OPT_FLAGS), 0);
    snprintf(servers, sizeof servers, "127.0.0.1:%d", port);
    CHECK_EQ(ares_set_servers_ports_csv(a.channel, servers), ARES_SUCCESS);

    started = t_clock();
    for (i = 0; i < NAMES; i++) {
        char name[64];
        name_of(i, name, sizeof name);
        ares_gethostbyname(a.channel, name, AF_INET, on_host, &lookups[i]);
    }
    CHECK(run_until_done(&loop, NAMES, EVL_SEC(20)));
    elapsed = t_clock() - started;
    for (i = 0; i < NAMES; i++) {
        lookup *l = &lookups[i];
        CHECK_EQ(l->calls, 1);
        if (i < ANSWERED) {
            CHECK_EQ(l->status, ARES_SUCCESS);
            CHECK_EQ(ntohl(l->addr.s_addr), 0x7f00002a);        /* 127.0.0.42 */
            answered++;
        } else if (i < ANSWERED + SILENT) {
            CHECK_EQ(l->status, ARES_ETIMEOUT);
            CHECK_EQ(l->timeouts, 2);           /* both tries timed out */
            timed_out++;
        } else {
            CHECK_EQ(l->status, ARES_EREFUSED);
            refused++;
        }
    }
    CHECK(elapsed >= EVL_MS(1500));             /* the timeouts came from c-ares's timer, not early */
    CHECK(!a.full);

    /* c-ares closed its socket once no query needed it; a second batch opens another. */
    for (i = NAMES; i < NAMES + SECOND_BATCH; i++) {
        char name[64];
        name_of(i, name, sizeof name);
        ares_gethostbyname(a.channel, name, AF_INET, on_host, &lookups[i]);
    }
    CHECK(run_until_done(&loop, NAMES + SECOND_BATCH, EVL_SEC(10)));
    for (i = NAMES; i < NAMES + SECOND_BATCH; i++) {
        CHECK_EQ(lookups[i].status, ARES_SUCCESS);
        CHECK_EQ(ntohl(lookups[i].addr.s_addr), 0x7f00002a);
    }
    integ_note("%d answered (127.0.0.42), %d refused, %d timed out after 2 tries (500 + 1000 ms); all in %.2f s",
               answered, refused, timed_out, (double)elapsed / 1e9);
    integ_note("c-ares used %u sockets, %u of them with the number of the one closed before", a.opened,
               a.same_number);
    CHECK(a.opened >= 2);
    CHECK(a.same_number >= 1);

    evl_ares_deinit(&a);
    CHECK_EQ(integ_registered(&loop, base, 64), nbase);
    ares_library_cleanup();
    evl_deinit(&loop);
    integ_stop(server);
    close(silent);
    integ_rmtree(dir);
}

const t_case dns_tests[] = {
    T(five_hundred_names_at_once_answers_refusals_and_timeouts),
    T_END,
};
