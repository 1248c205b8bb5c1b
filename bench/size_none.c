/* size baseline: the same helpers (size.h) and nothing else, so run.py can show how much of each size
 * program is the library. */
#include "size.h"

static void *sender(void *arg) {
    (void)arg;
    return NULL;
}

int main(void) {
    size_begin();
    size_start_thread(sender);
    BENCH_CHECK(write(size_pipe[1], "x", 1) == 1, "write failed");
    size_hits = 4;
    return size_end();
}
