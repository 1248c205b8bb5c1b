/* size.h - shared by the size_<library>.c programs.
 *
 * Each size program is a small but complete user of one library: one io watcher (a pipe), one timer
 * (1 ms), one signal watcher (SIGUSR1, raised from the timer callback) and one cross-thread wake-up
 * (sent from a second thread). Every callback stops its watcher, so the loop ends by itself; the
 * program fails unless all four ran. run.py reads the program's .text size (the library is linked
 * statically where Debian ships an archive), and the program prints sizeof of each watcher type and of
 * the loop, and how much heap the library holds after creating the loop and after starting the four
 * watchers (glibc's mallinfo2, so it counts every malloc the library makes, whatever its allocator).
 */
#ifndef SIZE_H
#define SIZE_H

#include "bench.h"

#include <malloc.h>
#include <pthread.h>
#include <signal.h>

static int size_hits;
static int size_pipe[2];
static size_t size_heap_base;

static inline size_t size_heap_now(void) {
    struct mallinfo2 mi = mallinfo2();
    return mi.uordblks;
}

/* Call first: warms up stdio (whose buffers are heap too) and makes the pipe. */
static inline void size_begin(void) {
    bench_info("program", "size");
    fflush(stdout);
    BENCH_CHECK(pipe(size_pipe) == 0, "pipe: %s", strerror(errno));
    size_heap_base = size_heap_now();
}

static inline void size_report_heap(const char *key) { bench_result(key, (double)(size_heap_now() - size_heap_base)); }

static inline void size_start_thread(void *(*fn)(void *)) {
    pthread_t t;
    BENCH_CHECK(pthread_create(&t, NULL, fn, NULL) == 0, "pthread_create failed");
    pthread_detach(t);
}

static inline int size_end(void) {
    BENCH_CHECK(size_hits == 4, "only %d of the 4 watchers ran", size_hits);
    return 0;
}

#endif /* SIZE_H */
