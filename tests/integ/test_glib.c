/* GLib and evloop in one thread, both ways round, with real GLib timeouts, idle sources and fd
   sources interleaving with evloop's timers and io watchers (examples/glue/evl_glib.h). */
#include "integ.h"

#include <glib-unix.h>
#include <glib.h>

#include "../../examples/glue/evl_glib.h"

static char order[512];
static int norder;
static void note(char c) {
    if (norder < (int)sizeof order - 1) order[norder++] = c;
}

/* "e" then "g" then "e" then "g" somewhere in the order: each side ran between the other's. */
static int interleaved(void) {
    const char *p = strchr(order, 'e');
    p = p ? strchr(p, 'g') : NULL;
    p = p ? strchr(p, 'e') : NULL;
    return p && strchr(p, 'g') != NULL;
}

/* ---- 1. evloop inside a GMainLoop ----------------------------------------------------------- */

static GMainLoop *main_loop;
static int evl_ticks, glib_ticks, idles, piped;
static int pipe_fds[2];

static void evl_tick(evl_loop *loop, evl_timer *t) {
    (void)loop;
    note('e');
    if (++evl_ticks == 10) {
        evl_timer_stop(loop, t);
        g_main_loop_quit(main_loop);
    }
}

static gboolean glib_tick(gpointer data) {
    (void)data;
    note('g');
    glib_ticks++;
    CHECK_EQ(write(pipe_fds[1], "p", 1), 1);    /* for evloop's io watcher */
    return G_SOURCE_CONTINUE;
}

static gboolean glib_idle(gpointer data) {
    (void)data;
    return ++idles < 50 ? G_SOURCE_CONTINUE : G_SOURCE_REMOVE;
}

static void evl_pipe(evl_loop *loop, evl_io *w, unsigned revents) {
    char c;
    (void)loop, (void)revents;
    if (read(w->fd, &c, 1) == 1) piped++;
}

static void evloop_runs_inside_a_gmainloop_beside_glib_timers_and_idles(void) {
    evl_loop loop;
    evl_timer tick;
    evl_io in;
    GSource *source;
    evl_time start, elapsed;
    guint timeout_id;
    CHECK_EQ(evl_init(&loop), 0);
    CHECK_EQ(pipe2(pipe_fds, O_NONBLOCK | O_CLOEXEC), 0);
    start = t_clock();
    evl_timer_init(&tick, evl_tick);
    evl_timer_start(&loop, &tick, EVL_MS(10), EVL_MS(10));
    evl_io_init(&in, evl_pipe, pipe_fds[0], EVL_READ);
    CHECK_EQ(evl_io_start(&loop, &in), 0);
    main_loop = g_main_loop_new(NULL, FALSE);
    source = evl_gsource_new(&loop, NULL);
    timeout_id = g_timeout_add(15, glib_tick, NULL);
    g_idle_add(glib_idle, NULL);
    g_main_loop_run(main_loop);                 /* until evloop's 10th tick quits it */
    CHECK_EQ(evl_ticks, 10);
    elapsed = t_clock() - start;
    CHECK(elapsed >= EVL_MS(100));              /* evloop's timer was not early inside GLib */
    CHECK(glib_ticks >= 3);
    CHECK_EQ(idles, 50);
    CHECK(piped >= 1);                          /* GLib wrote, evloop's watcher read */
    CHECK(interleaved());
    integ_note("inside GLib: 10 evloop ticks in %.1f ms, %d GLib ticks, %d idles, %d bytes piped; order %.40s...",
               (double)elapsed / 1e6, glib_ticks, idles, piped, order);
    g_source_remove(timeout_id);
    g_source_destroy(source);
    g_source_unref(source);
    g_main_loop_unref(main_loop);
    evl_io_stop(&loop, &in);
    evl_deinit(&loop);
    close(pipe_fds[0]);
    close(pipe_fds[1]);
}

/* ---- 2. GLib's default context driven by evloop --------------------------------------------- */

static int fd_events, idle_runs;
static guint fd_source;

static gboolean glib_fd_ready(gint fd, GIOCondition condition, gpointer data) {
    char c;
    (void)data;
    if ((condition & G_IO_IN) && read(fd, &c, 1) == 1) fd_events++;
    note('f');
    return G_SOURCE_CONTINUE;
}

static gboolean glib_once(gpointer data) {
    (void)data;
    idle_runs++;
    return G_SOURCE_REMOVE;
}

static void evl_write_pipe(evl_loop *loop, evl_timer *t) {
    (void)loop, (void)t;
    note('e');
    CHECK_EQ(write(pipe_fds[1], "x", 1), 1);
}

static void glib_runs_from_evloop_hooks_and_follows_a_replaced_descriptor(void) {
    evl_loop loop;
    evl_gmain g;
    evl_timer writer;
    int old_read, base[32], nbase, i;
    evl_time end;
    CHECK_EQ(evl_init(&loop), 0);
    nbase = integ_registered(&loop, base, 32);
    CHECK_EQ(evl_gmain_start(&g, &loop, NULL), 0);
    CHECK_EQ(pipe2(pipe_fds, O_NONBLOCK | O_CLOEXEC), 0);
    fd_source = g_unix_fd_add(pipe_fds[0], G_IO_IN, glib_fd_ready, NULL);
    g_timeout_add(15, glib_tick, NULL);         /* writes the pipe too: GLib feeds its own fd source */
    g_idle_add(glib_once, NULL);
    evl_timer_init(&writer, evl_write_pipe);
    evl_timer_start(&loop, &writer, EVL_MS(10), EVL_MS(10));
    end = t_clock() + EVL_SEC(5);
    while ((fd_events < 10 || glib_ticks < 3) && t_clock() < end) CHECK(evl_run(&loop, EVL_MS(10)) >= 0);
    CHECK(fd_events >= 10 && glib_ticks >= 3);
    CHECK_EQ(idle_runs, 1);
    CHECK(interleaved());

    /* The fd source is removed and its pipe closed; a new pipe gets the same numbers and a new
       fd source.  The watcher on that number must hear the new pipe. */
    evl_timer_stop(&loop, &writer);
    CHECK(evl_run(&loop, EVL_MS(20)) >= 0);
    g_source_remove(fd_source);
    old_read = pipe_fds[0];
    close(pipe_fds[0]);
    close(pipe_fds[1]);
    CHECK_EQ(pipe2(pipe_fds, O_NONBLOCK | O_CLOEXEC), 0);
    CHECK_EQ(pipe_fds[0], old_read);
    fd_source = g_unix_fd_add(pipe_fds[0], G_IO_IN, glib_fd_ready, NULL);
    fd_events = 0;
    CHECK_EQ(write(pipe_fds[1], "y", 1), 1);
    end = t_clock() + EVL_SEC(5);
    while (fd_events < 1 && t_clock() < end) CHECK(evl_run(&loop, EVL_MS(10)) >= 0);
    CHECK(fd_events >= 1);
    integ_note("GLib on evloop: fd source, timeouts and an idle ran; after the pipe was replaced on fd %d, "
               "its new fd source heard %d bytes",
               old_read, fd_events);

    g_source_remove(fd_source);
    for (i = 0; i < 10 && g_main_context_pending(NULL); i++) CHECK(evl_run(&loop, 0) >= 0);
    evl_gmain_stop(&g);
    CHECK_EQ(integ_registered(&loop, base, 32), nbase);
    evl_deinit(&loop);
    close(pipe_fds[0]);
    close(pipe_fds[1]);
}

const t_case glib_tests[] = {
    T(evloop_runs_inside_a_gmainloop_beside_glib_timers_and_idles),
    T(glib_runs_from_evloop_hooks_and_follows_a_replaced_descriptor),
    T_END,
};
