/* The one translation unit with the implementation.  Assertions on API misuse are counted instead
   of aborting, so the misuse tests can check that misuse is reported and then ignored safely; any
   other test fails on the first one. */
#include "t.h"

int t_asserts_expected;
int t_asserts;

void t_assert_failed(const char *what, const char *file, int line);
void t_assert_failed(const char *what, const char *file, int line) {
    t_asserts++;
    if (!t_asserts_expected) t_fail(file, line, what, "EVLOOP_ASSERT fired");
}

#define EVLOOP_ASSERT(x) ((x) ? (void)0 : t_assert_failed(#x, __FILE__, __LINE__))
#define EVLOOP_IMPLEMENTATION
#include "../evloop.h"
