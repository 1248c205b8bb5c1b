/* Priority events (EVL_PRI), the GPIO pattern, with the sources this machine can produce: the
   sysfs/procfs change notification of /proc/self/mounts inside a private mount namespace, read
   exactly as a GPIO value file is (examples/glue/evl_gpio.h: watch EVL_PRI alone, lseek and read
   again on each change); the busy loop that watching such a file for EVL_READ makes, and how
   evl_dump names it; and a TCP urgent byte.  Real GPIO lines need hardware: see docs/gpio.md. */
#include "integ.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sched.h>
#include <sys/mount.h>

#define EVL_GPIO_VALUE_MAX 65536                /* the whole mount table, not one digit */
#include "../../examples/glue/evl_gpio.h"

static int write_file(const char *path, const char *text) {
    int fd = open(path, O_WRONLY | O_CLOEXEC), ok;
    if (fd < 0) return -1;
    ok = write(fd, text, strlen(text)) == (ssize_t)strlen(text);
    close(fd);
    return ok ? 0 : -1;
}

/* A mount namespace of our own, so that mounting is allowed and seen by nobody else: as root
   directly, otherwise inside a user namespace.  Skips the test if neither is allowed. */
static void private_mount_namespace(void) {
    if (unshare(CLONE_NEWNS) < 0) {
        char map[64];
        uid_t uid = getuid();
        gid_t gid = getgid();
        if (unshare(CLONE_NEWUSER | CLONE_NEWNS) < 0) t_skip("no mount namespace (neither root nor user namespaces)");
        write_file("/proc/self/setgroups", "deny");
        snprintf(map, sizeof map, "0 %u 1", (unsigned)uid);
        CHECK_EQ(write_file("/proc/self/uid_map", map), 0);
        snprintf(map, sizeof map, "0 %u 1", (unsigned)gid);
        CHECK_EQ(write_file("/proc/self/gid_map", map), 0);
    }
    CHECK_EQ(mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL), 0);
}

static int changes;
static char last[EVL_GPIO_VALUE_MAX];
static void on_change(evl_gpio_value *g, const char *value) {
    (void)g;
    changes++;
    snprintf(last, sizeof last, "%s", value);
}

static void mount_table_changes_arrive_as_pri_and_are_read_again(void) {
    char dir[256];
    evl_loop loop;
    evl_gpio_value g;
    int fd, base[16], nbase;
    private_mount_namespace();
    integ_tmpdir(dir, sizeof dir, "pri");
    CHECK_EQ(evl_init(&loop), 0);
    nbase = integ_registered(&loop, base, 16);
    CHECK_EQ(evl_gpio_value_start(&loop, &g, "/proc/self/mounts", on_change), 0);
    CHECK(g.len > 0 && strstr(g.value, dir) == NULL);
    CHECK(evl_run(&loop, EVL_MS(30)) >= 0);
    CHECK_EQ(changes, 0);                       /* nothing changed: no call, no busy loop */

    CHECK_EQ(mount("evl-integ", dir, "tmpfs", 0, "size=64k"), 0);
    CHECK(t_run_until(&loop, &changes, EVL_SEC(5)));
    CHECK_EQ(changes, 1);
    CHECK(strstr(last, dir) != NULL);           /* read again from the start: the new table */
    CHECK(evl_run(&loop, EVL_MS(30)) >= 0);
    CHECK_EQ(changes, 1);                       /* one change, one call */

    /* Closed and opened again (a GPIO exported anew): the same number, followed. */
    fd = g.io.fd;
    evl_gpio_value_stop(&g);
    CHECK_EQ(evl_gpio_value_start(&loop, &g, "/proc/self/mounts", on_change), 0);
    CHECK_EQ(g.io.fd, fd);
    changes = 0;
    CHECK_EQ(umount(dir), 0);
    CHECK(t_run_until(&loop, &changes, EVL_SEC(5)));
    CHECK(strstr(last, dir) == NULL);
    evl_gpio_value_stop(&g);
    CHECK_EQ(integ_registered(&loop, base, 16), nbase);
    evl_deinit(&loop);
    rmdir(dir);
}

static int busy_calls;
static void count_call(evl_loop *loop, evl_io *w, unsigned revents) {
    (void)loop, (void)w, (void)revents;
    busy_calls++;
}

/* The mistake the GPIO pattern avoids: such a file is always readable, so EVL_READ makes every
   iteration call back at once.  The loop cannot tell this from real work, but evl_dump shows it:
   the descriptor reported READ by the last wait, again and again. */
static void a_sysfs_style_file_watched_for_read_is_named_by_evl_dump(void) {
    evl_loop loop;
    evl_io w;
    char dump[4096], expect[64];
    FILE *out;
    size_t n;
    evl_time start;
    int fd = open("/proc/self/mounts", O_RDONLY | O_CLOEXEC);
    CHECK(fd >= 0);
    CHECK_EQ(evl_init(&loop), 0);
    evl_io_init(&w, count_call, fd, EVL_READ);
    CHECK_EQ(evl_io_start(&loop, &w), 0);
    start = t_clock();
    CHECK(evl_run(&loop, EVL_MS(20)) >= 0);
    integ_note("/proc/self/mounts watched for EVL_READ: %d callbacks in %.1f ms (always readable)", busy_calls,
               (double)(t_clock() - start) / 1e6);
    CHECK(busy_calls >= 2);                     /* a quiet file would have made none */
    out = tmpfile();
    CHECK(out != NULL);
    evl_dump(&loop, out);
    rewind(out);
    n = fread(dump, 1, sizeof dump - 1, out);
    dump[n] = 0;
    fclose(out);
    snprintf(expect, sizeof expect, "fd %d READ", fd);
    CHECK(strstr(dump, "last wait reported") != NULL);
    CHECK(strstr(dump, expect) != NULL);
    evl_io_stop(&loop, &w);
    close(fd);
    evl_deinit(&loop);
}

static int urgent_seen, urgent_byte = -1;
static unsigned urgent_revents;
static void on_urgent(evl_loop *loop, evl_io *w, unsigned revents) {
    char c;
    (void)loop;
    urgent_revents |= revents;
    if (recv(w->fd, &c, 1, MSG_OOB) == 1) {     /* out of band: taking it ends the PRI state */
        urgent_byte = c;
        urgent_seen++;
    }
}

static void tcp_urgent_data_is_pri_and_taking_it_ends_it(void) {
    struct sockaddr_in a;
    socklen_t len = sizeof a;
    int lst = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), client, server;
    evl_loop loop;
    evl_io w;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    CHECK(bind(lst, (struct sockaddr *)&a, sizeof a) == 0 && listen(lst, 1) == 0);
    CHECK_EQ(getsockname(lst, (struct sockaddr *)&a, &len), 0);
    client = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    CHECK_EQ(connect(client, (struct sockaddr *)&a, sizeof a), 0);
    server = accept4(lst, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
    CHECK(server >= 0);
    CHECK_EQ(evl_init(&loop), 0);
    evl_io_init(&w, on_urgent, server, EVL_PRI);
    CHECK_EQ(evl_io_start(&loop, &w), 0);
    CHECK(evl_run(&loop, EVL_MS(20)) >= 0);
    CHECK_EQ(urgent_seen, 0);
    CHECK_EQ(send(client, "!", 1, MSG_OOB), 1);
    CHECK(t_run_until(&loop, &urgent_seen, EVL_SEC(5)));
    CHECK_EQ(urgent_byte, '!');
    CHECK(urgent_revents & EVL_PRI);
    CHECK(evl_run(&loop, EVL_MS(20)) >= 0);
    CHECK_EQ(urgent_seen, 1);                   /* reported once */
    evl_io_stop(&loop, &w);
    evl_deinit(&loop);
    close(server);
    close(client);
    close(lst);
}

const t_case pri_tests[] = {
    T(mount_table_changes_arrive_as_pri_and_are_read_again),
    T(a_sysfs_style_file_watched_for_read_is_named_by_evl_dump),
    T(tcp_urgent_data_is_pri_and_taking_it_ends_it),
    T_END,
};
