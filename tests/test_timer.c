/* Timers: never early, firing order, after == 0, repeating without drift, re-phasing after the
   loop fell behind, again/remaining/start_at, sub-millisecond precision, and a randomised run
   against a reference model of the contract. */
#include "t.h"

#include <stdlib.h>

typedef struct fired {
    evl_timer t;
    evl_time started;                           /* t_clock() when started */
    evl_time after;
    evl_time fired_at;
    int count;
} fired;

static void on_fire(evl_loop *loop, evl_timer *t) {
    fired *f = (fired *)t->data;
    (void)loop;
    f->fired_at = t_clock();
    f->count++;
}

static int order_log[64], order_len;

static void record_order(evl_loop *loop, evl_timer *t) {
    (void)loop;
    if (order_len < 64) order_log[order_len++] = (int)(intptr_t)t->data;
}

static void busy_wait(evl_time duration) {
    evl_time end = t_clock() + duration;
    while (t_clock() < end) {
    }
}

static void timer_never_fires_early(void) {
    evl_loop loop;
    fired f[40];
    int i;
    CHECK_EQ(evl_init(&loop), 0);
    srand(7);
    for (i = 0; i < 40; i++) {
        evl_timer_init(&f[i].t, on_fire);
        f[i].t.data = &f[i];
        f[i].count = 0;
        f[i].after = EVL_US(100) * (evl_time)(rand() % 300);
        f[i].started = t_clock();
        evl_timer_start(&loop, &f[i].t, f[i].after, 0);
        if (i % 8 == 0) busy_wait(EVL_US(700));    /* stale loop time must not make later ones early */
    }
    CHECK_EQ(evl_run(&loop, EVL_FOREVER), 0);
    for (i = 0; i < 40; i++) {
        CHECK_EQ(f[i].count, 1);
        CHECK(f[i].fired_at - f[i].started >= f[i].after);
    }
    evl_deinit(&loop);
}

static void timers_due_together_fire_in_deadline_order(void) {
    evl_loop loop;
    evl_timer t[10];
    evl_time base;
    int i;
    CHECK_EQ(evl_init(&loop), 0);
    base = evl_now_update(&loop);
    for (i = 0; i < 10; i++) {
        evl_timer_init(&t[i], record_order);
        t[i].data = (void *)(intptr_t)(10 - i);
        evl_timer_start_at(&loop, &t[i], base + EVL_MS(10 - i), 0);   /* started in reverse deadline order */
    }
    busy_wait(EVL_MS(15));                      /* all due before the first iteration */
    CHECK_EQ(evl_run(&loop, 0), 0);
    CHECK_EQ(order_len, 10);
    for (i = 0; i < 10; i++) CHECK_EQ(order_log[i], i + 1);
    evl_deinit(&loop);
}

static void equal_deadlines_fire_in_start_order(void) {
    evl_loop loop;
    evl_timer t[20];
    evl_time deadline;
    int i;
    CHECK_EQ(evl_init(&loop), 0);
    deadline = evl_now_update(&loop) + EVL_MS(3);
    for (i = 0; i < 20; i++) {
        evl_timer_init(&t[i], record_order);
        t[i].data = (void *)(intptr_t)i;
    }
    /* start order differs from array order, and some restart: the last start counts */
    for (i = 19; i >= 0; i -= 2) evl_timer_start_at(&loop, &t[i], deadline, 0);
    for (i = 0; i < 20; i += 2) evl_timer_start_at(&loop, &t[i], deadline, 0);
    evl_timer_start_at(&loop, &t[19], deadline, 0);
    CHECK_EQ(evl_run(&loop, EVL_FOREVER), 0);
    CHECK_EQ(order_len, 20);
    {
        int expected[20], k = 0;
        for (i = 17; i >= 1; i -= 2) expected[k++] = i;
        for (i = 0; i < 20; i += 2) expected[k++] = i;
        expected[k++] = 19;
        for (i = 0; i < 20; i++) CHECK_EQ(order_log[i], expected[i]);
    }
    evl_deinit(&loop);
}

static void equal_deadlines_keep_start_order_across_levels(void) {
    /* Far-away deadlines sit in a high level of the wheel and cascade down as time passes; a
       timer started later with the same deadline lands lower.  The order must survive. */
    evl_loop loop;
    evl_timer early, late, other;
    evl_time deadline;
    CHECK_EQ(evl_init(&loop), 0);
    deadline = evl_now_update(&loop) + EVL_MS(300);
    evl_timer_init(&early, record_order);
    evl_timer_init(&late, record_order);
    evl_timer_init(&other, record_order);
    early.data = (void *)1;
    late.data = (void *)2;
    other.data = (void *)3;
    evl_timer_start_at(&loop, &early, deadline, 0);
    evl_timer_start(&loop, &other, EVL_MS(55), 0);
    CHECK_EQ(evl_run(&loop, EVL_MS(56)), 1);    /* other fired; the wheel moved on */
    evl_timer_start_at(&loop, &late, deadline, 0);
    CHECK_EQ(evl_run(&loop, EVL_FOREVER), 0);
    CHECK_EQ(order_len, 3);
    CHECK_EQ(order_log[0], 3);
    CHECK_EQ(order_log[1], 1);
    CHECK_EQ(order_log[2], 2);
    evl_deinit(&loop);
}

/* Deadlines hours to decades away sit in the wheel's top levels and cascade down as time passes.
   Real time cannot be waited for, so the test pushes the loop's cached time forward by hand
   (white-box: evl_run never moves loop.now backwards, so the loop acts as if that time passed). */
static void timers_hours_to_decades_away_fire_at_their_deadline(void) {
    static const evl_time away[] = {EVL_SEC(20 * 3600), EVL_SEC(60 * 86400), EVL_SEC(5 * 365 * 86400),
                                    EVL_SEC(40 * 365 * 86400)};
    static const int expected[] = {1, 2, 5, 3, 4}, active_before[] = {5, 4, 2, 1}, active_after[] = {4, 2, 1, 0};
    evl_loop loop;
    evl_timer t[6];
    evl_time base;
    int i, before;
    CHECK_EQ(evl_init(&loop), 0);
    base = evl_now_update(&loop);
    for (i = 0; i < 6; i++) {
        evl_timer_init(&t[i], record_order);
        t[i].data = (void *)(intptr_t)(i + 1);
    }
    for (i = 0; i < 4; i++) evl_timer_start_at(&loop, &t[i], base + away[i], 0);
    evl_timer_start_at(&loop, &t[4], base + away[1], 0);   /* the same deadline, started later */
    evl_timer_start_at(&loop, &t[5], base + away[0] + EVL_SEC(3600), 0);
    evl_timer_stop(&loop, &t[5]);                          /* stopped while far away: never fires */
    CHECK_EQ(evl_timer_remaining(&loop, &t[3]), away[3]);
    for (i = 0; i < 4; i++) {
        before = order_len;
        loop.now = base + away[i] - EVL_US(2);             /* just before the deadline: nothing */
        CHECK_EQ(evl_run(&loop, 0), active_before[i]);
        CHECK_EQ(order_len, before);
        CHECK_EQ(evl_timer_remaining(&loop, &t[i]), EVL_US(2));
        loop.now = base + away[i];                         /* at the deadline: fires */
        CHECK_EQ(evl_run(&loop, 0), active_after[i]);
        CHECK_EQ(order_len, before + (i == 1 ? 2 : 1));
    }
    CHECK_EQ(order_len, 5);
    for (i = 0; i < 5; i++) CHECK_EQ(order_log[i], expected[i]);
    evl_deinit(&loop);
}

static int zero_fired_inside_start;

static void start_zero_inside(evl_loop *loop, evl_timer *t) {
    evl_timer *other = (evl_timer *)t->data;
    int before = order_len;
    evl_timer_start(loop, other, 0, 0);
    zero_fired_inside_start = order_len != before;
}

static void zero_timeout_fires_in_the_next_iteration_not_inside_start(void) {
    evl_loop loop;
    evl_timer a, b;
    CHECK_EQ(evl_init(&loop), 0);
    evl_timer_init(&a, start_zero_inside);
    evl_timer_init(&b, record_order);
    a.data = &b;
    b.data = (void *)5;
    evl_timer_start(&loop, &a, 0, 0);
    CHECK_EQ(order_len, 0);
    CHECK_EQ(evl_run(&loop, 0), 1);             /* a fired and started b, which waits */
    CHECK_EQ(zero_fired_inside_start, 0);
    CHECK_EQ(order_len, 0);
    CHECK_EQ(evl_run(&loop, 0), 0);
    CHECK_EQ(order_len, 1);
    evl_deinit(&loop);
}

typedef struct phase {
    evl_timer t;
    evl_time first_deadline;
    evl_time repeat;
    int count, wrong;
    evl_time slow_once;                         /* busy time in the callback of the 3rd firing */
} phase;

static void check_phase(evl_loop *loop, evl_timer *t) {
    phase *p = (phase *)t->data;
    p->count++;
    /* the next deadline is the previous one plus repeat, whatever the lateness */
    if (evl_now(loop) + evl_timer_remaining(loop, t) != p->first_deadline + (evl_time)p->count * p->repeat)
        p->wrong++;
    if (p->count == 10) evl_timer_stop(loop, t);
}

static void repeating_timer_keeps_its_phase(void) {
    evl_loop loop;
    phase p;
    CHECK_EQ(evl_init(&loop), 0);
    memset(&p, 0, sizeof p);
    evl_timer_init(&p.t, check_phase);
    p.t.data = &p;
    /* A period the loop keeps up with even when a loaded machine oversleeps tens of ms (wine on two
       busy cores overslept 25 ms), or valgrind. */
    p.repeat = EVL_MS(t_slow ? 100 : 60);
    p.first_deadline = evl_now_update(&loop) + EVL_MS(5);
    evl_timer_start_at(&loop, &p.t, p.first_deadline, p.repeat);
    CHECK_EQ(evl_run(&loop, EVL_FOREVER), 0);
    CHECK_EQ(p.count, 10);
    CHECK_EQ(p.wrong, 0);
    evl_deinit(&loop);
}

static evl_time rephase_remaining, fired_times[3];

static void fall_behind(evl_loop *loop, evl_timer *t) {
    phase *p = (phase *)t->data;
    fired_times[p->count] = evl_now(loop);     /* the loop time each firing was dispatched at */
    p->count++;
    if (p->count == 1) busy_wait(EVL_MS(12));   /* more than two periods */
    if (p->count == 2) rephase_remaining = evl_timer_remaining(loop, t);
    if (p->count == 3) evl_timer_stop(loop, t);
}

static void late_repeating_timer_fires_once_and_rephases(void) {
    evl_loop loop;
    phase p;
    CHECK_EQ(evl_init(&loop), 0);
    memset(&p, 0, sizeof p);
    evl_timer_init(&p.t, fall_behind);
    p.t.data = &p;
    evl_timer_start(&loop, &p.t, EVL_MS(5), EVL_MS(5));
    CHECK_EQ(evl_run(&loop, EVL_FOREVER), 0);
    CHECK_EQ(p.count, 3);
    /* one late call right after the slow one, then a full period: no burst of catch-up calls */
    CHECK(fired_times[1] - fired_times[0] >= EVL_MS(12));
    CHECK(fired_times[2] - fired_times[1] >= EVL_MS(5));
    CHECK_EQ(rephase_remaining, EVL_MS(5));     /* re-phased from the loop time it fired at */
    evl_deinit(&loop);
}

static void again_restarts_from_now_or_stops(void) {
    evl_loop loop;
    evl_timer t;
    evl_time left;
    CHECK_EQ(evl_init(&loop), 0);
    evl_timer_init(&t, record_order);
    evl_timer_again(&loop, &t);                 /* repeat 0, inactive: stays stopped */
    CHECK(!evl_timer_active(&t));
    evl_timer_start(&loop, &t, EVL_MS(2), EVL_SEC(7));
    busy_wait(EVL_MS(3));
    evl_timer_again(&loop, &t);
    CHECK(evl_timer_active(&t));
    left = evl_timer_remaining(&loop, &t);
    CHECK(left <= EVL_SEC(7) && left > EVL_SEC(6));
    t.repeat = 0;
    evl_timer_again(&loop, &t);
    CHECK(!evl_timer_active(&t));
    CHECK_EQ(evl_timer_remaining(&loop, &t), 0);
    evl_deinit(&loop);
}

static void remaining_counts_down_and_is_zero_when_due(void) {
    evl_loop loop;
    evl_timer t;
    evl_time a, b;
    CHECK_EQ(evl_init(&loop), 0);
    evl_timer_init(&t, record_order);
    evl_timer_start(&loop, &t, EVL_MS(20), 0);
    a = evl_timer_remaining(&loop, &t);
    CHECK(a <= EVL_MS(20) && a > EVL_MS(15));
    busy_wait(EVL_MS(5));
    evl_now_update(&loop);
    b = evl_timer_remaining(&loop, &t);
    CHECK(b < a);
    busy_wait(EVL_MS(20));
    evl_now_update(&loop);
    CHECK_EQ(evl_timer_remaining(&loop, &t), 0);
    CHECK(evl_timer_active(&t));
    evl_deinit(&loop);
}

static void start_restarts_an_active_timer(void) {
    evl_loop loop;
    evl_timer t;
    CHECK_EQ(evl_init(&loop), 0);
    evl_timer_init(&t, record_order);
    evl_timer_start(&loop, &t, EVL_SEC(50), 0);
    evl_timer_start(&loop, &t, EVL_MS(300), 0);
    CHECK(evl_timer_remaining(&loop, &t) <= EVL_MS(300));
    CHECK_EQ(evl_run(&loop, 0), 1);             /* counted once */
    CHECK_EQ(evl_run(&loop, EVL_FOREVER), 0);
    CHECK_EQ(order_len, 1);
    evl_deinit(&loop);
}

static void start_at_a_past_deadline_fires_next_iteration(void) {
    evl_loop loop;
    evl_timer t;
    CHECK_EQ(evl_init(&loop), 0);
    evl_timer_init(&t, record_order);
    evl_timer_start_at(&loop, &t, 1, 0);
    CHECK_EQ(evl_run(&loop, 0), 0);
    CHECK_EQ(order_len, 1);
    evl_deinit(&loop);
}

static void forever_timer_keeps_the_loop_alive_but_never_fires(void) {
    evl_loop loop;
    evl_timer t;
    CHECK_EQ(evl_init(&loop), 0);
    evl_timer_init(&t, record_order);
    evl_timer_start(&loop, &t, EVL_FOREVER, 0);
    CHECK_EQ(evl_run(&loop, EVL_MS(20)), 1);
    CHECK_EQ(order_len, 0);
    CHECK(evl_timer_remaining(&loop, &t) > EVL_SEC(100000000));
    evl_deinit(&loop);
}

static int compare_time(const void *a, const void *b) {
    evl_time x = *(const evl_time *)a, y = *(const evl_time *)b;
    return x < y ? -1 : x > y;
}

/* The median lateness of a 1 ms timer: a loop that rounds its wait to whole milliseconds is about
   a millisecond late; ours waits with nanosecond timeouts (or a timerfd on older kernels). */
static void one_millisecond_timer_is_not_a_millisecond_late(void) {
    evl_loop loop;
    fired f;
    evl_time late[21];
    int i;
    if (t_slow) t_skip("timing under valgrind/qemu says nothing about the kernel wait");
    CHECK_EQ(evl_init(&loop), 0);
    evl_timer_init(&f.t, on_fire);
    f.t.data = &f;
    for (i = 0; i < 21; i++) {
        f.started = t_clock();
        evl_timer_start(&loop, &f.t, EVL_MS(1), 0);
        CHECK_EQ(evl_run(&loop, EVL_FOREVER), 0);
        late[i] = f.fired_at - f.started - EVL_MS(1);
    }
    qsort(late, 21, sizeof late[0], compare_time);
    CHECK_OP(late[10], <, EVL_US(500));
    evl_deinit(&loop);
}

/* ---- Randomised run against a model ------------------------------------------------------------
   Random starts, restarts, stops and deadlines spread over every wheel level; the loop time is
   advanced in random steps.  Each firing must be due, in (deadline, start order) order, and no
   due timer may be left unfired after a pass. */

#define MODEL_N 300

typedef struct model {
    evl_timer t;
    int active;
    evl_time deadline;
    unsigned long seq;
} model;

static model models[MODEL_N];
static unsigned long seq_counter;
static evl_time last_deadline, shared_deadline;
static unsigned long last_seq;
static int model_errors, model_fired;

static void model_fire(evl_loop *loop, evl_timer *t) {
    model *m = (model *)t->data;
    if (!m->active || m->deadline > evl_now(loop)) model_errors++;
    if (m->deadline < last_deadline || (m->deadline == last_deadline && m->seq < last_seq)) model_errors++;
    last_deadline = m->deadline;
    last_seq = m->seq;
    m->active = 0;
    model_fired++;
}

static evl_time random_after(void) {
    static const evl_time scale[] = {EVL_US(1), EVL_US(50), EVL_MS(1), EVL_MS(20), EVL_MS(300), EVL_SEC(20)};
    return scale[rand() % 6] * (evl_time)(rand() % 64);
}

static void randomised_timers_agree_with_the_model(void) {
    evl_loop loop;
    int round, i;
    CHECK_EQ(evl_init(&loop), 0);
    srand(12345);
    for (i = 0; i < MODEL_N; i++) {
        evl_timer_init(&models[i].t, model_fire);
        models[i].t.data = &models[i];
    }
    for (round = 0; round < 400; round++) {
        int ops = rand() % 40;
        evl_time pass_time;
        /* One shared deadline for 20 rounds: equal deadlines started from different wheel
           positions, so at different levels, must still fire in start order. */
        if (round % 20 == 0) shared_deadline = evl_now(&loop) + EVL_MS((evl_time)(rand() % 400));
        while (ops--) {
            model *m = &models[rand() % MODEL_N];
            int what = rand() % 10;
            if (what < 6) {
                /* equal deadlines on purpose: start_at some timers on one shared deadline */
                evl_time d = what < 2 ? shared_deadline : evl_now(&loop) + random_after();
                evl_timer_start_at(&loop, &m->t, d, 0);
                m->active = 1;
                m->deadline = d;
                m->seq = ++seq_counter;
            } else if (what < 9) {
                evl_timer_stop(&loop, &m->t);
                m->active = 0;
            } else {
                CHECK_EQ(evl_timer_active(&m->t), m->active);
            }
        }
        last_deadline = 0;
        last_seq = 0;
        busy_wait(EVL_US(50) * (evl_time)(rand() % 20));
        pass_time = evl_now_update(&loop);      /* evl_run reads the clock again, later */
        CHECK(evl_run(&loop, 0) >= 0);
        for (i = 0; i < MODEL_N; i++) {
            if (models[i].active && models[i].deadline <= pass_time) model_errors++;
            CHECK_EQ(evl_timer_active(&models[i].t), models[i].active);
        }
        CHECK_EQ(model_errors, 0);
    }
    CHECK(model_fired > 1000);
    evl_deinit(&loop);
}

static void many_timers_fire_exactly_once_each(void) {
    enum { N = 20000 };
    static fired f[N];
    evl_loop loop;
    int i;
    CHECK_EQ(evl_init(&loop), 0);
    srand(99);
    for (i = 0; i < N; i++) {
        evl_timer_init(&f[i].t, on_fire);
        f[i].t.data = &f[i];
        f[i].count = 0;
        f[i].after = EVL_US((evl_time)(rand() % 50000));
        f[i].started = t_clock();
        evl_timer_start(&loop, &f[i].t, f[i].after, 0);
    }
    for (i = 0; i < N; i += 3) evl_timer_stop(&loop, &f[i].t);
    CHECK_EQ(evl_run(&loop, EVL_FOREVER), 0);
    for (i = 0; i < N; i++) {
        CHECK_EQ(f[i].count, i % 3 ? 1 : 0);
        if (f[i].count) CHECK(f[i].fired_at - f[i].started >= f[i].after);
    }
    evl_deinit(&loop);
}

const t_case timer_tests[] = {
    T(timer_never_fires_early),
    T(timers_due_together_fire_in_deadline_order),
    T(equal_deadlines_fire_in_start_order),
    T(equal_deadlines_keep_start_order_across_levels),
    T(timers_hours_to_decades_away_fire_at_their_deadline),
    T(zero_timeout_fires_in_the_next_iteration_not_inside_start),
    T(repeating_timer_keeps_its_phase),
    T(late_repeating_timer_fires_once_and_rephases),
    T(again_restarts_from_now_or_stops),
    T(remaining_counts_down_and_is_zero_when_due),
    T(start_restarts_an_active_timer),
    T(start_at_a_past_deadline_fires_next_iteration),
    T(forever_timer_keeps_the_loop_alive_but_never_fires),
    T(one_millisecond_timer_is_not_a_millisecond_late),
    T(randomised_timers_agree_with_the_model),
    T(many_timers_fire_exactly_once_each),
    T_END,
};
