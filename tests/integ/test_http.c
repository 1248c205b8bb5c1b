/* HTTP with libcurl's multi-socket API against a real server (python3 -m http.server) started on
   a free port: 200 URLs with 20 in flight, every body compared byte for byte with the file
   served, 404s for missing files, and connections refused by a port nobody listens on.  The
   server closes every connection (HTTP/1.0), so socket numbers are reused all the time: the
   same-number case, hundreds of times. */
#include "integ.h"

#include <curl/curl.h>
#include <sys/stat.h>

#include "../../examples/glue/evl_curl.h"

#define URLS 200
#define IN_FLIGHT 20
#define MISSING 15                              /* URLs 180..194: no such file, 404 */
#define REFUSED 5                               /* URLs 195..199: a port nobody listens on */
#define FILES (URLS - MISSING - REFUSED)

typedef struct transfer {
    CURL *easy;
    int index;
    unsigned char *body;
    size_t len, cap;
    int done;
    CURLcode result;
    long status;
} transfer;

static transfer transfers[URLS];
static char dir[256];
static int port, refused_port, next_url, finished, in_flight, max_in_flight;
static int seen_fd[1024], reused_numbers;

/* The content of file i: a size and bytes that differ from file to file. */
static size_t file_size(int i) { return (size_t)(i * 7919) % 150001 + (i % 3 == 0 ? 0 : 1); }
static unsigned char file_byte(int i, size_t k) { return (unsigned char)((k * 31 + (size_t)i * 17 + (k >> 8)) & 0xff); }

static void write_files(void) {
    int i;
    for (i = 0; i < FILES; i++) {
        char path[300];
        size_t k, n = file_size(i);
        FILE *f;
        snprintf(path, sizeof path, "%s/f%d", dir, i);
        f = fopen(path, "wb");
        CHECK(f != NULL);
        for (k = 0; k < n; k++) fputc(file_byte(i, k), f);
        fclose(f);
    }
}

static size_t on_body(char *data, size_t size, size_t n, void *arg) {
    transfer *t = (transfer *)arg;
    size_t len = size * n;
    if (t->len + len > t->cap) {
        t->cap = (t->len + len) * 2;
        t->body = (unsigned char *)realloc(t->body, t->cap);
        CHECK(t->body != NULL);
    }
    memcpy(t->body + t->len, data, len);
    t->len += len;
    return len;
}

/* Every socket libcurl hands over: a number it used before is the same-number case. */
static curl_socket_t on_open(void *arg, curlsocktype purpose, struct curl_sockaddr *a) {
    curl_socket_t s = socket(a->family, a->socktype | SOCK_CLOEXEC, a->protocol);
    (void)arg, (void)purpose;
    if (s >= 0 && s < 1024 && seen_fd[s]++) reused_numbers++;
    return s;
}

static void add_next(evl_curl *c) {
    transfer *t;
    char url[128];
    if (next_url == URLS) return;
    t = &transfers[next_url];
    t->index = next_url++;
    if (t->index < FILES) snprintf(url, sizeof url, "http://127.0.0.1:%d/f%d", port, t->index);
    else if (t->index < FILES + MISSING) snprintf(url, sizeof url, "http://127.0.0.1:%d/missing%d", port, t->index);
    else snprintf(url, sizeof url, "http://127.0.0.1:%d/f0", refused_port);
    t->easy = curl_easy_init();
    CHECK(t->easy != NULL);
    curl_easy_setopt(t->easy, CURLOPT_URL, url);
    curl_easy_setopt(t->easy, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(t->easy, CURLOPT_WRITEDATA, t);
    curl_easy_setopt(t->easy, CURLOPT_PRIVATE, t);
    curl_easy_setopt(t->easy, CURLOPT_TIMEOUT_MS, 20000L);
    curl_easy_setopt(t->easy, CURLOPT_OPENSOCKETFUNCTION, on_open);
    CHECK_EQ(curl_multi_add_handle(c->multi, t->easy), CURLM_OK);
    if (++in_flight > max_in_flight) max_in_flight = in_flight;
}

static void on_done(evl_curl *c, CURL *easy, CURLcode result) {
    transfer *t;
    curl_easy_getinfo(easy, CURLINFO_PRIVATE, (char **)&t);
    t->result = result;
    curl_easy_getinfo(easy, CURLINFO_RESPONSE_CODE, &t->status);
    t->done++;
    finished++;
    in_flight--;
    curl_multi_remove_handle(c->multi, easy);
    curl_easy_cleanup(easy);
    add_next(c);
}

static void two_hundred_urls_twenty_at_a_time_bodies_exact_with_404s_and_refusals(void) {
    char log[300], port_text[16];
    const char *python = integ_require("python3", "python3");
    evl_loop loop;
    evl_curl c;
    pid_t server;
    int i, base[64], nbase, ok = 0, not_found = 0, refused = 0;
    size_t bytes = 0;
    integ_tmpdir(dir, sizeof dir, "http");
    write_files();
    snprintf(log, sizeof log, "%s.log", dir);
    port = integ_free_port(SOCK_STREAM);
    refused_port = integ_free_port(SOCK_STREAM);
    snprintf(port_text, sizeof port_text, "%d", port);
    {
        char *argv[] = {(char *)python, (char *)"-m", (char *)"http.server", (char *)"--bind", (char *)"127.0.0.1",
                        (char *)"--directory", dir, port_text, NULL};
        server = integ_spawn(argv, log);
    }
    integ_wait_tcp(port, server, log, EVL_SEC(20));

    CHECK_EQ(curl_global_init(CURL_GLOBAL_DEFAULT), CURLE_OK);
    CHECK_EQ(evl_init(&loop), 0);
    nbase = integ_registered(&loop, base, 64);
    CHECK_EQ(evl_curl_init(&c, &loop, on_done), 0);
    for (i = 0; i < IN_FLIGHT; i++) add_next(&c);
    {
        evl_time end = t_clock() + EVL_SEC(40);
        while (finished < URLS && t_clock() < end) CHECK(evl_run(&loop, EVL_MS(100)) >= 0);
    }
    CHECK_EQ(finished, URLS);
    CHECK(max_in_flight == IN_FLIGHT);

    for (i = 0; i < URLS; i++) {
        transfer *t = &transfers[i];
        CHECK_EQ(t->done, 1);
        if (i < FILES) {
            size_t k, n = file_size(i);
            CHECK_EQ(t->result, CURLE_OK);
            CHECK_EQ(t->status, 200);
            CHECK_EQ(t->len, n);
            for (k = 0; k < n; k++)
                if (t->body[k] != file_byte(i, k)) CHECK_EQ(k, n);  /* names the first bad byte */
            ok++;
            bytes += n;
        } else if (i < FILES + MISSING) {
            CHECK_EQ(t->result, CURLE_OK);
            CHECK_EQ(t->status, 404);
            not_found++;
        } else {
            CHECK_EQ(t->result, CURLE_COULDNT_CONNECT);
            refused++;
        }
        free(t->body);
    }
    integ_note("%d bodies identical (%zu bytes in all), %d not found, %d refused; %u sockets watched, "
               "numbers reused %d times; at most %d transfers in flight",
               ok, bytes, not_found, refused, c.sockets, reused_numbers, max_in_flight);
    CHECK(reused_numbers > 0);
    CHECK_EQ(c.watched, 0u);                    /* every socket was REMOVEd */
    evl_curl_deinit(&c);
    CHECK_EQ(integ_registered(&loop, base, 64), nbase);  /* nothing left behind */
    curl_global_cleanup();
    evl_deinit(&loop);
    integ_stop(server);
    integ_rmtree(dir);
    unlink(log);
}

const t_case http_tests[] = {
    T(two_hundred_urls_twenty_at_a_time_bodies_exact_with_404s_and_refusals),
    T_END,
};
