/* async - worker threads hand results back to the loop thread.
 *
 *   ./async
 *
 * Each worker computes something slow, puts the result in a mutex-protected queue and calls
 * evl_async_send.  The loop thread's callback drains the queue.  Sends that happen before the
 * callback runs coalesce into one call, so the callback always drains everything there is. */
#define _GNU_SOURCE 1
#define EVLOOP_IMPLEMENTATION
#include "../evloop.h"

#include <pthread.h>
#include <stdio.h>

enum { WORKERS = 4, JOBS_EACH = 5 };

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static unsigned long results[WORKERS * JOBS_EACH];
static int produced, consumed;

static unsigned long slow_square(unsigned long x) {
    unsigned long i, sum = 0;
    for (i = 0; i < x * 100000; i++) sum += x;   /* x * x * 100000, the slow way */
    return sum / 100000;
}

static void *worker(void *arg) {
    evl_async *done = (evl_async *)arg;
    int i;
    for (i = 0; i < JOBS_EACH; i++) {
        unsigned long r = slow_square((unsigned long)i + 1);
        pthread_mutex_lock(&lock);
        results[produced++] = r;
        pthread_mutex_unlock(&lock);
        evl_async_send(done);           /* thread-safe; wakes the loop if it sleeps */
    }
    return NULL;
}

static void on_results(evl_loop *loop, evl_async *a) {
    int n;
    pthread_mutex_lock(&lock);
    n = produced - consumed;
    while (consumed < produced) printf("  result %2d: %lu\n", consumed, results[consumed]), consumed++;
    pthread_mutex_unlock(&lock);
    printf("callback drained %d result%s\n", n, n == 1 ? "" : "s");
    if (consumed == WORKERS * JOBS_EACH) evl_async_stop(loop, a);
}

int main(void) {
    evl_loop loop;
    evl_async done;
    pthread_t threads[WORKERS];
    int i;
    if (evl_init(&loop) < 0) return 1;
    evl_async_init(&done, on_results);
    evl_async_start(&loop, &done);      /* start before any thread may send */
    for (i = 0; i < WORKERS; i++) pthread_create(&threads[i], NULL, worker, &done);
    evl_run(&loop, EVL_FOREVER);        /* until on_results stops the async */
    for (i = 0; i < WORKERS; i++) pthread_join(threads[i], NULL);
    evl_deinit(&loop);
    return 0;
}
