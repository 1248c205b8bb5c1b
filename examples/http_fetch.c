/* http_fetch - fetching URLs concurrently with libcurl's multi-socket API on an evloop loop.
 *
 *   ./http_fetch URL...
 *
 * Every URL is fetched at once (at most 20 at a time); each line reports the status, the size of
 * the body and the time it took, or libcurl's error.  A ticking timer on the same loop shows that
 * nothing blocks while the transfers run.  See docs/http.md. */
#define _GNU_SOURCE 1
#define EVLOOP_IMPLEMENTATION
#include "../evloop.h"

#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "glue/evl_curl.h"

#define MAX_IN_FLIGHT 20

typedef struct fetch {
    const char *url;
    size_t bytes;
    evl_time started;
} fetch;

static fetch *fetches;
static int count, next, left, ticks;

static size_t on_body(char *data, size_t size, size_t n, void *arg) {
    (void)data;
    ((fetch *)arg)->bytes += size * n;          /* a real program would keep or parse it */
    return size * n;
}

static void start_next(evl_curl *c) {
    fetch *f;
    CURL *easy;
    if (next == count) return;
    f = &fetches[next++];
    f->started = evl_now_update(c->loop);
    easy = curl_easy_init();
    curl_easy_setopt(easy, CURLOPT_URL, f->url);
    curl_easy_setopt(easy, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(easy, CURLOPT_WRITEDATA, f);
    curl_easy_setopt(easy, CURLOPT_PRIVATE, f);
    curl_easy_setopt(easy, CURLOPT_FOLLOWLOCATION, 1L);
    curl_easy_setopt(easy, CURLOPT_TIMEOUT, 30L);
    curl_multi_add_handle(c->multi, easy);
}

static void on_done(evl_curl *c, CURL *easy, CURLcode result) {
    fetch *f;
    long status = 0;
    curl_easy_getinfo(easy, CURLINFO_PRIVATE, (char **)&f);
    curl_easy_getinfo(easy, CURLINFO_RESPONSE_CODE, &status);
    if (result == CURLE_OK)
        printf("%ld %8zu bytes %7.1f ms  %s\n", status, f->bytes, (double)(evl_now_update(c->loop) - f->started) / 1e6,
               f->url);
    else
        printf("--- %s  %s\n", curl_easy_strerror(result), f->url);
    curl_multi_remove_handle(c->multi, easy);
    curl_easy_cleanup(easy);
    if (--left == 0) evl_stop(c->loop);
    else start_next(c);
}

static void on_tick(evl_loop *loop, evl_timer *t) {
    (void)loop, (void)t;
    ticks++;
}

int main(int argc, char **argv) {
    evl_loop loop;
    evl_curl c;
    evl_timer tick;
    int i;
    if (argc < 2) {
        fprintf(stderr, "usage: %s URL...\n", argv[0]);
        return 2;
    }
    count = left = argc - 1;
    fetches = (fetch *)calloc((size_t)count, sizeof *fetches);
    if (!fetches || curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK || evl_init(&loop) < 0) return 1;
    for (i = 0; i < count; i++) fetches[i].url = argv[i + 1];
    if (evl_curl_init(&c, &loop, on_done) < 0) return 1;
    evl_timer_init(&tick, on_tick);
    evl_timer_start(&loop, &tick, EVL_MS(10), EVL_MS(10));
    evl_unref(&loop, &tick);
    for (i = 0; i < MAX_IN_FLIGHT; i++) start_next(&c);
    evl_run(&loop, EVL_FOREVER);
    printf("%d URLs; a 10 ms timer ticked %d times meanwhile\n", count, ticks);
    evl_curl_deinit(&c);
    evl_timer_stop(&loop, &tick);
    evl_deinit(&loop);
    curl_global_cleanup();
    free(fetches);
    return 0;
}
