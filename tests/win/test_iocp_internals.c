/* White-box tests of the IOCP backend: a private copy of the library (EVLOOP_STATIC), so that a
   console event can be delivered the way Windows delivers it (the registered handler, called on a
   thread of its own) where no console exists to send one, as under wine without a terminal. */
#define EVLOOP_STATIC
#define EVLOOP_IMPLEMENTATION
#include "../t.h"

static int calls[EVL__MAX_SIGNAL + 1];

static void count_signal(evl_loop *loop, evl_signal *s, int signum) {
    (void)loop;
    (void)s;
    calls[signum]++;
}

static DWORD WINAPI deliver(LPVOID arg) {
    return (DWORD)evl__iocp_console_event((DWORD)(uintptr_t)arg);
}

static BOOL deliver_from_a_thread(DWORD event) {
    DWORD answer = 0;
    HANDLE th = CreateThread(NULL, 0, deliver, (LPVOID)(uintptr_t)event, 0, NULL);
    CHECK(th != NULL);
    CHECK_EQ(WaitForSingleObject(th, 10000), WAIT_OBJECT_0);
    CHECK(GetExitCodeThread(th, &answer));
    CloseHandle(th);
    return answer != 0;
}

static void console_events_arrive_as_sigint_and_sigbreak(void) {
    evl_loop loop;
    evl_signal i, b;
    CHECK_EQ(evl_init(&loop), 0);
    CHECK(!deliver_from_a_thread(CTRL_C_EVENT));        /* nobody watches: the next handler's */
    evl_signal_init(&i, count_signal, SIGINT);
    CHECK_EQ(evl_signal_start(&loop, &i), 0);
    evl_signal_init(&b, count_signal, SIGBREAK);
    CHECK_EQ(evl_signal_start(&loop, &b), 0);
    CHECK(deliver_from_a_thread(CTRL_C_EVENT));
    CHECK(t_run_until(&loop, &calls[SIGINT], EVL_SEC(5)));
    CHECK_EQ(calls[SIGBREAK], 0);
    CHECK(deliver_from_a_thread(CTRL_BREAK_EVENT));
    CHECK(t_run_until(&loop, &calls[SIGBREAK], EVL_SEC(5)));
    CHECK_EQ(calls[SIGINT], 1);
    CHECK(!deliver_from_a_thread(CTRL_LOGOFF_EVENT));   /* not a console program's event */
    evl_signal_stop(&loop, &i);
    CHECK(!deliver_from_a_thread(CTRL_C_EVENT));        /* handed on again once unwatched */
    evl_deinit(&loop);
    CHECK(!deliver_from_a_thread(CTRL_BREAK_EVENT));
}

/* The thread that delivers a close event never returns (Windows ends the process after it), so
   the loop must see it while that thread waits. */
static void closing_the_console_is_sighup(void) {
    evl_loop loop;
    evl_signal h;
    HANDLE th;
    CHECK_EQ(evl_init(&loop), 0);
    evl_signal_init(&h, count_signal, SIGHUP);
    CHECK_EQ(evl_signal_start(&loop, &h), 0);
    th = CreateThread(NULL, 0, deliver, (LPVOID)(uintptr_t)CTRL_CLOSE_EVENT, 0, NULL);
    CHECK(th != NULL);
    CHECK(t_run_until(&loop, &calls[SIGHUP], EVL_SEC(5)));
    CHECK_EQ(WaitForSingleObject(th, 0), WAIT_TIMEOUT);
    TerminateThread(th, 0);
    CloseHandle(th);
}

const t_case iocp_internals_tests[] = {
    T(console_events_arrive_as_sigint_and_sigbreak),
    T(closing_the_console_is_sighup),
    T_END,
};
