/* glib_embed - evloop and GLib in one thread, both ways round.
 *
 *   ./glib_embed
 *
 * First GLib owns the thread: a GMainLoop runs, and evloop lives in it as one GSource (a GTK or
 * GStreamer program adding evloop's watchers).  Then evloop owns the thread: GLib's default
 * context is driven by evloop's PREPARE and CHECK hooks (an evloop program using a GLib-based
 * library, such as GDBus).  In each half a timer of either side prints, and the run ends by
 * itself.  See docs/glib.md. */
#define _GNU_SOURCE 1
#define EVLOOP_IMPLEMENTATION
#include "../evloop.h"

#include <glib.h>
#include <stdio.h>

#include "glue/evl_glib.h"

static GMainLoop *main_loop;
static evl_time start;
static int evl_ticks, glib_ticks;

static double ms(evl_loop *loop) { return (double)(evl_now_update(loop) - start) / 1e6; }

static void on_evl_tick(evl_loop *loop, evl_timer *t) {
    printf("%6.1f ms  evloop timer (%d)\n", ms(loop), ++evl_ticks);
    if (evl_ticks % 4 == 0) {
        evl_timer_stop(loop, t);
        if (main_loop) g_main_loop_quit(main_loop);
    }
}

static gboolean on_glib_tick(gpointer data) {
    printf("%6.1f ms  GLib timeout (%d)\n", ms((evl_loop *)data), ++glib_ticks);
    return G_SOURCE_CONTINUE;
}

int main(void) {
    evl_loop loop;
    evl_timer tick;
    evl_gmain g;
    GSource *source;
    guint glib_timer;
    if (evl_init(&loop) < 0) return 1;
    evl_timer_init(&tick, on_evl_tick);

    printf("-- evloop inside a GMainLoop\n");
    start = evl_now_update(&loop);
    main_loop = g_main_loop_new(NULL, FALSE);
    source = evl_gsource_new(&loop, NULL);
    evl_timer_start(&loop, &tick, EVL_MS(20), EVL_MS(20));
    glib_timer = g_timeout_add(30, on_glib_tick, &loop);
    g_main_loop_run(main_loop);                 /* until evloop's 4th tick quits it */
    g_source_remove(glib_timer);
    g_source_destroy(source);
    g_source_unref(source);
    g_main_loop_unref(main_loop);
    main_loop = NULL;

    printf("-- GLib's context driven by evloop\n");
    start = evl_now_update(&loop);
    if (evl_gmain_start(&g, &loop, NULL) < 0) return 1;
    evl_timer_start(&loop, &tick, EVL_MS(20), EVL_MS(20));
    glib_timer = g_timeout_add(30, on_glib_tick, &loop);
    evl_run(&loop, EVL_FOREVER);                /* until the 8th tick stops the timer */
    g_source_remove(glib_timer);
    evl_gmain_stop(&g);

    evl_deinit(&loop);
    return evl_ticks == 8 && glib_ticks >= 4 ? 0 : 1;
}
