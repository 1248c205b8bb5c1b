/* inotify, and fanotify where the kernel allows it (unprivileged since Linux 5.13): a directory
   watched while the test creates, modifies, renames and deletes files in it; every event checked
   in order, with names and the rename's cookie.  The inotify descriptor is then closed and made
   again (the same number comes back). */
#include "integ.h"

#include <sys/fanotify.h>
#include <sys/stat.h>

#include "../../examples/glue/evl_inotify.h"

#define MASK (IN_CREATE | IN_MODIFY | IN_CLOSE_WRITE | IN_MOVED_FROM | IN_MOVED_TO | IN_DELETE)

typedef struct seen_event {
    unsigned mask, cookie;
    char name[32];
} seen_event;

static seen_event events[64];
static int nevents;

static void on_event(evl_dirwatch *d, unsigned mask, unsigned cookie, const char *name) {
    (void)d;
    if (nevents == 64) return;
    events[nevents].mask = mask;
    events[nevents].cookie = cookie;
    snprintf(events[nevents].name, sizeof events[0].name, "%s", name);
    nevents++;
}

static void touch_write(const char *dir, const char *name, const char *text) {
    char path[300];
    int fd;
    snprintf(path, sizeof path, "%s/%s", dir, name);
    fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    CHECK(fd >= 0);
    CHECK_EQ(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    close(fd);
}

static void in_dir(char *path, size_t size, const char *dir, const char *name) {
    snprintf(path, size, "%s/%s", dir, name);
}

static int wait_events(evl_loop *loop, int want) {
    evl_time end = t_clock() + EVL_SEC(5);
    while (nevents < want && t_clock() < end) CHECK(evl_run(loop, EVL_MS(10)) >= 0);
    return nevents >= want;
}

#define EXPECT(i, m, n) CHECK(events[i].mask == (m) && !strcmp(events[i].name, (n)))

static void inotify_reports_create_modify_move_delete_in_order(void) {
    char dir[256], a[300], b[300];
    evl_loop loop;
    evl_dirwatch d;
    int fd, base[16], nbase;
    integ_tmpdir(dir, sizeof dir, "inotify");
    CHECK_EQ(evl_init(&loop), 0);
    nbase = integ_registered(&loop, base, 16);
    CHECK_EQ(evl_dirwatch_start(&loop, &d, dir, MASK, on_event), 0);
    touch_write(dir, "a", "hello");             /* create, modify, close-write */
    in_dir(a, sizeof a, dir, "a");
    in_dir(b, sizeof b, dir, "b");
    CHECK_EQ(rename(a, b), 0);                  /* moved-from a, moved-to b, one cookie */
    CHECK_EQ(unlink(b), 0);                     /* delete */
    CHECK(wait_events(&loop, 6));
    CHECK_EQ(nevents, 6);
    EXPECT(0, IN_CREATE, "a");
    EXPECT(1, IN_MODIFY, "a");
    EXPECT(2, IN_CLOSE_WRITE, "a");
    EXPECT(3, IN_MOVED_FROM, "a");
    EXPECT(4, IN_MOVED_TO, "b");
    CHECK(events[3].cookie != 0 && events[3].cookie == events[4].cookie);
    EXPECT(5, IN_DELETE, "b");

    /* Made again: the same number, a new watcher on it, events still arrive. */
    fd = d.io.fd;
    evl_dirwatch_stop(&d);
    CHECK_EQ(evl_dirwatch_start(&loop, &d, dir, MASK, on_event), 0);
    CHECK_EQ(d.io.fd, fd);
    nevents = 0;
    touch_write(dir, "c", "");
    CHECK(wait_events(&loop, 2));
    EXPECT(0, IN_CREATE, "c");
    CHECK(events[1].mask == IN_CLOSE_WRITE || events[1].mask == IN_MODIFY);
    evl_dirwatch_stop(&d);
    CHECK_EQ(integ_registered(&loop, base, 16), nbase);
    evl_deinit(&loop);
    integ_rmtree(dir);
}

/* ---- fanotify: directory entry events with names (FAN_REPORT_DFID_NAME) --------------------- */

static seen_event fan[16];
static int nfan;

static void on_fanotify(evl_loop *loop, evl_io *w, unsigned revents) {
    char buf[4096] __attribute__((aligned(8)));
    ssize_t n;
    (void)loop, (void)revents;
    while ((n = read(w->fd, buf, sizeof buf)) > 0) {
        struct fanotify_event_metadata *m = (struct fanotify_event_metadata *)(void *)buf;
        for (; FAN_EVENT_OK(m, n); m = FAN_EVENT_NEXT(m, n)) {
            struct fanotify_event_info_fid *info = (struct fanotify_event_info_fid *)(m + 1);
            struct file_handle *h = (struct file_handle *)(void *)info->handle;
            if (nfan == 16 || info->hdr.info_type != FAN_EVENT_INFO_TYPE_DFID_NAME) continue;
            fan[nfan].mask = (unsigned)m->mask;
            snprintf(fan[nfan].name, sizeof fan[0].name, "%s", (char *)h->f_handle + h->handle_bytes);
            nfan++;
        }
    }
}

static int wait_fan(evl_loop *loop, int want) {
    evl_time end = t_clock() + EVL_SEC(5);
    while (nfan < want && t_clock() < end) CHECK(evl_run(loop, EVL_MS(10)) >= 0);
    return nfan >= want;
}

static void fanotify_reports_entries_by_name(void) {
    char dir[256], a[300], b[300];
    evl_loop loop;
    evl_io w;
    int fd = fanotify_init(FAN_CLASS_NOTIF | FAN_REPORT_DFID_NAME | FAN_NONBLOCK | FAN_CLOEXEC, O_RDONLY), i;
    /* Unprivileged since Linux 5.13 for inode marks with FID reports; CAP_SYS_ADMIN before. */
    if (fd < 0 && errno == EPERM) t_skip("fanotify refused: before Linux 5.13 it needs CAP_SYS_ADMIN");
    if (fd < 0 && errno == EINVAL) t_skip("no FAN_REPORT_DFID_NAME (Linux 5.9)");
    CHECK(fd >= 0);
    integ_tmpdir(dir, sizeof dir, "fanotify");
    CHECK_EQ(fanotify_mark(fd, FAN_MARK_ADD, FAN_CREATE | FAN_MOVED_FROM | FAN_MOVED_TO | FAN_DELETE, AT_FDCWD, dir),
             0);
    CHECK_EQ(evl_init(&loop), 0);
    evl_io_init(&w, on_fanotify, fd, EVL_READ);
    CHECK_EQ(evl_io_start(&loop, &w), 0);
    /* Each step is read before the next: fanotify merges queued events on one name. */
    in_dir(a, sizeof a, dir, "a");
    in_dir(b, sizeof b, dir, "b");
    touch_write(dir, "a", "x");
    CHECK(wait_fan(&loop, 1));
    CHECK_EQ(rename(a, b), 0);
    CHECK(wait_fan(&loop, 3));
    CHECK_EQ(unlink(b), 0);
    CHECK(wait_fan(&loop, 4));
    CHECK_EQ(nfan, 4);
    CHECK(fan[0].mask == FAN_CREATE && !strcmp(fan[0].name, "a"));
    CHECK(fan[1].mask == FAN_MOVED_FROM && !strcmp(fan[1].name, "a"));
    CHECK(fan[2].mask == FAN_MOVED_TO && !strcmp(fan[2].name, "b"));
    CHECK(fan[3].mask == FAN_DELETE && !strcmp(fan[3].name, "b"));
    for (i = 0; i < nfan; i++) CHECK(fan[i].name[0] != 0);
    evl_io_stop(&loop, &w);
    close(fd);
    evl_deinit(&loop);
    integ_rmtree(dir);
}

const t_case inotify_tests[] = {
    T(inotify_reports_create_modify_move_delete_in_order),
    T(fanotify_reports_entries_by_name),
    T_END,
};
