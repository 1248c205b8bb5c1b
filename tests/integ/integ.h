/* integ.h - the integration tests' own helpers, on top of the suite's harness (../t.h): peers
   started as real processes on free ports, awaited until they answer, stopped by their pid.

   A peer that is not installed fails its test: CI installs every one (.ci/run), so a missing
   binary means a broken machine, not a reason to pass quietly. */
#ifndef EVL_INTEG_H
#define EVL_INTEG_H

#include "../t.h"

#include <sys/types.h>

/* A port on 127.0.0.1 that no TCP or UDP socket uses right now (type: the one tried first). */
int integ_free_port(int type);

/* The full path of a program in PATH, /usr/sbin or /sbin; fails the test if it is not there. */
const char *integ_require(const char *program, const char *package);

/* Starts argv as a child (its output appended to log_path), killed with SIGKILL should the test
   process die first.  Returns its pid. */
pid_t integ_spawn(char *const argv[], const char *log_path);

/* Waits until a TCP connect to 127.0.0.1:port succeeds, polling every 5 ms for at most limit;
   fails the test, quoting the peer's log, if the peer exits or the time runs out. */
void integ_wait_tcp(int port, pid_t pid, const char *log_path, evl_time limit);
/* The same, returning -1 (and reaping it) if the peer exited first, so the caller can try another
   port: a free port may be taken by someone else before the peer binds it. */
int integ_await_tcp(int port, pid_t pid, const char *log_path, evl_time limit);

/* SIGTERM, then waits for the peer to exit (SIGKILL after 5 s).  Returns its wait status. */
int integ_stop(pid_t pid);

/* A fresh directory under $TMPDIR, and removing it with what is inside. */
void integ_tmpdir(char *path, size_t size, const char *tag);
void integ_rmtree(const char *path);

/* The descriptors registered in the loop's epoll set, from /proc/self/fdinfo: how a test sees
   that no registration was left behind.  Returns how many were stored in fds (at most max). */
int integ_registered(const evl_loop *loop, int *fds, int max);
int integ_is_registered(const evl_loop *loop, int fd);

/* What a test measured, printed as "#   ..." lines above its result. */
void integ_note(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif
